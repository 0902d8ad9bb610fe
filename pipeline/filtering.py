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
from scipy.signal import butter, filtfilt

from pipeline.gaps import nan_runs


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


def kalman_rts(z: np.ndarray, meas_std: np.ndarray, dt: float, jerk_std: float, gate_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Filter forwards and smooth backwards many independent 3D tracks.

    z: (frames, tracks, 3) measurements, NaN where missing; meas_std: (frames, tracks) metres.
    A measurement whose normalised innovation (summed over the 3 axes) exceeds ``gate_sigma``
    squared x 3 is skipped. Returns smoothed positions (frames, tracks, 3) and the rejected mask.
    """
    T, N, _ = z.shape
    F, Q = motion_model(dt, jerk_std)
    H = np.array([1.0, 0.0, 0.0])
    # One 3-state filter per track and axis; the axes of a track share P (same noise, same skips).
    x = np.zeros((N, 3, 3))  # (tracks, axis, state)
    first = np.argmax(np.isfinite(z[..., 0]), axis=0)
    x[:, :, 0] = z[first, np.arange(N)]
    x[~np.isfinite(x)] = 0.0
    P = np.tile(np.diag([1.0, 10.0, 100.0]), (N, 1, 1))
    xs_f, Ps_f, xs_p, Ps_p = (np.empty((T, N, 3, 3)), np.empty((T, N, 3, 3)), np.empty((T, N, 3, 3)), np.empty((T, N, 3, 3)))
    rejected = np.zeros((T, N), bool)
    started = np.zeros(N, bool)
    for t in range(T):
        if t > 0:
            x = np.einsum("ij,naj->nai", F, x)
            P = F @ P @ F.T + Q
        xs_p[t], Ps_p[t] = x, P
        zt = z[t]
        valid = np.all(np.isfinite(zt), axis=1)
        R = np.minimum(meas_std[t], 1e3) ** 2
        S = P[:, 0, 0] + R  # (tracks,)
        innov = zt - x[:, :, 0]
        d2 = np.sum(innov**2, axis=1) / S
        gate = valid & started & (d2 > 3 * gate_sigma**2)
        rejected[t] = gate
        use = valid & ~gate
        if use.any():
            K = P[use, :, 0] / S[use, None]  # (n, 3)
            x[use] += K[:, None, :] * np.nan_to_num(innov[use])[:, :, None]
            P[use] = P[use] - K[:, :, None] * P[use][:, None, 0, :]
        started |= valid
        xs_f[t], Ps_f[t] = x, P
    # RTS smoother, backwards
    xs = xs_f.copy()
    for t in range(T - 2, -1, -1):
        C = Ps_f[t] @ F.T @ np.linalg.inv(Ps_p[t + 1])  # (N, 3, 3)
        xs[t] = xs_f[t] + np.einsum("nij,naj->nai", C, xs[t + 1] - xs_p[t + 1])
    return xs[..., 0], rejected


def butterworth(x: np.ndarray, rate_hz: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Zero-lag low-pass (order-2 filter run forwards and backwards: 4th order) per NaN-free run. x: (frames, ...)."""
    if cutoff_hz <= 0 or cutoff_hz >= rate_hz / 2:
        return x.copy()
    b, a = butter(order, cutoff_hz / (rate_hz / 2))
    out = x.copy()
    flat = out.reshape(len(x), -1)
    for j in range(flat.shape[1]):
        valid = np.isfinite(flat[:, j])
        edges = nan_runs(~valid)  # runs of valid samples
        for s, e in edges:
            if e - s > 3 * max(len(a), len(b)):
                flat[s:e, j] = filtfilt(b, a, flat[s:e, j])
    return out


def measurement_std(error_px: np.ndarray, confidence: np.ndarray, base_m: float, ref_px: float) -> np.ndarray:
    """Per-point measurement noise (m): ``base_m`` for a well-seen point, growing with the
    reprojection error beyond ``ref_px`` and with low detector confidence. Inputs (frames, keypoints)."""
    err = np.nan_to_num(error_px, nan=ref_px, posinf=10 * ref_px)
    return base_m * np.maximum(1.0, err / ref_px) / np.clip(np.nan_to_num(confidence, nan=0.1), 0.1, 1.0)


def smooth_keypoints(points_m: np.ndarray, rate_hz: float, meas_std_m: np.ndarray, jerk_std: float = 50.0,
                     gate_sigma: float = 5.0, cutoff_hz: float = 12.0, max_gap_s: float = 0.25) -> FilterResult:
    """Kalman + RTS + Butterworth for (frames, keypoints, 3); gaps longer than ``max_gap_s`` stay empty."""
    T, K, _ = points_m.shape
    smoothed, rejected = kalman_rts(points_m, meas_std_m, 1.0 / rate_hz, jerk_std, gate_sigma)
    measured = np.all(np.isfinite(points_m), axis=-1) & ~rejected
    max_gap = int(round(max_gap_s * rate_hz))
    long_gaps: dict[int, list[tuple[int, int]]] = {}
    for k in range(K):
        runs = [(a, b) for a, b in nan_runs(measured[:, k]) if b - a > max_gap or a == 0 or b == T]
        for a, b in runs:
            smoothed[a:b, k] = np.nan
        if runs:
            long_gaps[k] = runs
    return FilterResult(butterworth(smoothed, rate_hz, cutoff_hz), rejected, long_gaps)
