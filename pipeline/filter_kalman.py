"""Smoothing of triangulated keypoints: a constant-acceleration Kalman filter with outlier gating,
an RTS smoother backwards, then OpenCap's zero-lag Butterworth low-pass.

The motion model and its process noise come from filterpy (``Q_discrete_white_noise``); the
filter itself runs batched over every keypoint and axis at once in numpy, because a Python loop
of filterpy objects over 20 keypoints x 3 axes x thousands of frames is too slow. The test suite
checks that it gives filterpy's ``KalmanFilter`` + ``rts_smoother`` results exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from filterpy.common import Q_discrete_white_noise

from core.gaps import fill_gaps
from core.signal import zero_lag_lowpass
from sessions.settings import FilterSettings


@dataclass
class FilterResult:
    """points_m: (frames, keypoints, 3) smoothed, NaN in gaps longer than the fill limit.
    rejected: (frames, keypoints) measurements gated out as implausible jumps.
    long_gaps: keypoint index -> (start, stop) frame runs left empty."""

    points_m: np.ndarray
    rejected: np.ndarray
    long_gaps: dict[int, list[tuple[int, int]]]


def motion_model(dt: float, jerk_std: float) -> tuple[np.ndarray, np.ndarray]:
    """State (position, velocity, acceleration) of one axis: transition F (3, 3) and process noise Q (3, 3)."""
    F = np.array([[1.0, dt, 0.5 * dt * dt], [0.0, 1.0, dt], [0.0, 0.0, 1.0]])
    return F, Q_discrete_white_noise(dim=3, dt=dt, var=jerk_std**2)


def kalman_rts(z: np.ndarray, meas_std: np.ndarray, dt: float, jerk_std: float) -> np.ndarray:
    """Filter forwards and smooth backwards many independent 3D tracks (no gating: outliers are
    removed beforehand, see ``robust_smooth``).

    z: (frames, tracks, 3) measurements, NaN where missing; meas_std: (frames, tracks) metres.
    Returns smoothed positions (frames, tracks, 3).
    """
    T, N, _ = z.shape
    F, Q = motion_model(dt, jerk_std)
    # One 3-state filter per track and axis; the axes of a track share P (same noise, same skips).
    x = np.zeros((N, 3, 3))  # (tracks, axis, state)
    first = np.argmax(np.isfinite(z[..., 0]), axis=0)
    x[:, :, 0] = z[first, np.arange(N)]
    x[~np.isfinite(x)] = 0.0
    P = np.tile(np.diag([1.0, 10.0, 100.0]), (N, 1, 1))
    xs_f, Ps_f, xs_p, Ps_p = (np.empty((T, N, 3, 3)), np.empty((T, N, 3, 3)), np.empty((T, N, 3, 3)), np.empty((T, N, 3, 3)))
    for t in range(T):
        if t > 0:
            x = np.einsum("ij,naj->nai", F, x)
            P = F @ P @ F.T + Q
        xs_p[t], Ps_p[t] = x, P
        zt = z[t]
        use = np.all(np.isfinite(zt), axis=1)
        if use.any():
            S = P[use, 0, 0] + np.minimum(meas_std[t, use], 1e3) ** 2
            K = P[use, :, 0] / S[:, None]  # (n, 3)
            x[use] += K[:, None, :] * (zt[use] - x[use, :, 0])[:, :, None]
            P[use] = P[use] - K[:, :, None] * P[use][:, None, 0, :]
        xs_f[t], Ps_f[t] = x, P
    # RTS smoother, backwards
    xs = xs_f.copy()
    for t in range(T - 2, -1, -1):
        C = Ps_f[t] @ F.T @ np.linalg.inv(Ps_p[t + 1])  # (N, 3, 3)
        xs[t] = xs_f[t] + np.einsum("nij,naj->nai", C, xs[t + 1] - xs_p[t + 1])
    return xs[..., 0]


def local_outliers(z: np.ndarray, half_window: int, floor_m: float, k: float) -> np.ndarray:
    """Hampel test in 3D with the local trend removed: (frames, tracks) True where a point lies
    further from what its neighbourhood says than ``k`` robust standard deviations of that
    neighbourhood, and at least ``floor_m``.

    The neighbourhood is the ``2 * half_window + 1`` measured frames around the point (shifted
    inwards at the ends of the track). Its velocity is the median of its frame-to-frame steps; the
    point's expected position is the median of the neighbours carried to its frame at that
    velocity. Medians move only when half their inputs are wrong, so isolated wrong points and
    short runs of them (a 2D outlier along an epipolar line, a swapped label) stand out wherever
    they fall, while steady motion of any speed does not. Counting measured frames rather than
    frames keeps the window as strong next to gaps as anywhere else. z: (frames, tracks, 3), NaN
    where missing.
    """
    T, N, _ = z.shape
    out = np.zeros((T, N), bool)
    for n in range(N):
        frames = np.flatnonzero(np.all(np.isfinite(z[:, n]), axis=1))
        m = len(frames)
        if m < 3:
            continue
        w = min(2 * half_window + 1, m)
        start = np.clip(np.arange(m) - half_window, 0, m - w)
        win = start[:, None] + np.arange(w)  # (m, w) indices into the measured frames
        pts, t = z[frames, n][win], frames[win].astype(float)  # (m, w, 3), (m, w)
        velocity = np.median(np.diff(pts, axis=1) / np.diff(t, axis=1)[..., None], axis=1)  # (m, 3)
        carried = pts - velocity[:, None, :] * (t - frames[:, None])[..., None]
        expected = np.median(carried, axis=1)  # (m, 3)
        # Spread of the neighbourhood (median absolute deviation, in 3D): wide where the motion
        # curves fast within the window, narrow where it is steady; robust like the median.
        spread = 1.4826 * np.median(np.linalg.norm(carried - expected[:, None], axis=-1), axis=1)
        dev = np.linalg.norm(z[frames, n] - expected, axis=-1)
        out[frames, n] = dev > np.maximum(floor_m, k * spread)
    return out


def robust_smooth(z: np.ndarray, meas_std: np.ndarray, dt: float, cfg: FilterSettings) -> tuple[np.ndarray, np.ndarray]:
    """Outlier-proof Kalman + RTS smoothing of (frames, tracks, 3) points with (frames, tracks) noise (m).

    1. Points that a local-median (Hampel) test flags are dropped (filter.outlier_half_window,
       .outlier_floor_m, .outlier_k).
    2. Kalman + RTS (filter.jerk_std) on the rest; points further than filter.gate_sigma standard deviations (3D,
       measurement noise) from that smoothed track are dropped. Gating against a track smoothed
       from both sides cannot lock out the way forward-only innovation gating does (after a gap,
       an accepted outlier would make every true point after it look implausible).
    3. Kalman + RTS on what is left.
    Returns smoothed positions (frames, tracks, 3) and the rejected mask (frames, tracks).
    """
    jerk_std, gate_sigma = cfg.jerk_std, cfg.gate_sigma
    valid = np.all(np.isfinite(z), axis=-1)
    rejected = valid & local_outliers(z, cfg.outlier_half_window, cfg.outlier_floor_m, cfg.outlier_k)
    clean = np.where(rejected[..., None], np.nan, z)
    first = kalman_rts(clean, meas_std, dt, jerk_std)
    d2 = np.sum((clean - first) ** 2, axis=-1) / np.minimum(meas_std, 1e3) ** 2
    rejected |= valid & (np.nan_to_num(d2, nan=0.0) > 3 * gate_sigma**2)
    clean = np.where(rejected[..., None], np.nan, z)
    return kalman_rts(clean, meas_std, dt, jerk_std), rejected


def measurement_std(error_px: np.ndarray, confidence: np.ndarray, base_m: float, ref_px: float) -> np.ndarray:
    """Per-point measurement noise (m): ``base_m`` for a well-seen point, growing with the
    reprojection error beyond ``ref_px`` and with low detector confidence. Inputs (frames, keypoints)."""
    err = np.nan_to_num(error_px, nan=ref_px, posinf=10 * ref_px)
    return base_m * np.maximum(1.0, err / ref_px) / np.clip(np.nan_to_num(confidence, nan=0.1), 0.1, 1.0)


def smooth_keypoints(points_m: np.ndarray, rate_hz: float, meas_std_m: np.ndarray, cfg: FilterSettings,
                     cutoff_hz: float) -> FilterResult:
    """Robust Kalman + RTS (``robust_smooth``), gap filling, Butterworth at ``cutoff_hz`` for (frames, keypoints, 3).

    Frames without a (kept) measurement are filled, when the gap is at most filter.max_gap_s long,
    by a cubic fitted to the smoothed track over 0.1 s (or the gap's length) on either side: over
    a gap the constant-acceleration model extrapolates the noisy acceleration estimates of its
    edges, a fit over both sides does not. A gap of up to 0.1 s at either end of the trial (a
    first frame gated out, say) is extrapolated by a line; longer ones, and longer gaps, stay empty."""
    T, K, _ = points_m.shape
    max_gap_s = cfg.max_gap_s
    smoothed, rejected = robust_smooth(points_m, meas_std_m, 1.0 / rate_hz, cfg)
    measured = np.all(np.isfinite(points_m), axis=-1) & ~rejected
    filled, long_gaps = fill_gaps(np.arange(T) / rate_hz, np.where(measured[..., None], smoothed, np.nan),
                                  int(round(max_gap_s * rate_hz)), context_frames=int(round(0.1 * rate_hz)),
                                  end_frames=int(round(0.1 * rate_hz)))
    return FilterResult(zero_lag_lowpass(filled, rate_hz, cutoff_hz), rejected, long_gaps)
