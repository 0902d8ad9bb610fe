"""Kalman + RTS + Butterworth smoothing of 3D keypoints."""
from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter

from core.signal import zero_lag_lowpass
from pipeline.filter_kalman import kalman_rts, local_outliers, motion_model, smooth_keypoints
from core.gaps import fill_gaps
from tests.conftest import SETTINGS

HAMPEL = (SETTINGS.filter.outlier_half_window, SETTINGS.filter.outlier_floor_m, SETTINGS.filter.outlier_k)


def track(T=300, rate=60.0, noise=0.01, seed=0):
    t = np.arange(T) / rate
    truth = np.stack([np.sin(t), 0.5 * np.cos(2 * t), 0.1 * t], 1)
    return t, truth, truth + np.random.default_rng(seed).normal(0, noise, truth.shape)


def test_batched_filter_equals_filterpy():
    _, truth, z = track()
    z[100:104] = np.nan
    ours = kalman_rts(z[:, None], np.full((len(z), 1), 0.01), 1 / 60, 50.0)
    F, Q = motion_model(1 / 60, 50.0)
    for axis in range(3):
        kf = KalmanFilter(dim_x=3, dim_z=1)
        kf.F, kf.Q, kf.H, kf.R = F, Q, np.array([[1.0, 0, 0]]), np.array([[1e-4]])
        kf.x, kf.P = np.array([z[0, axis], 0, 0]), np.diag([1.0, 10.0, 100.0])
        xs, Ps = [], []
        for i in range(len(z)):
            if i:
                kf.predict()
            if np.isfinite(z[i, axis]):
                kf.update(z[i, axis])
            xs.append(kf.x.copy())
            Ps.append(kf.P.copy())
        ref = kf.rts_smoother(np.array(xs), np.array(Ps))[0][:, 0]
        np.testing.assert_allclose(ours[:, 0, axis], ref, atol=1e-10)


def filterpy_rts(z: np.ndarray, std: np.ndarray, F: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """filterpy's KalmanFilter + rts_smoother on one axis of one track: z (frames,), std (frames,) metres,
    started where ours starts (the first measured position, the same P)."""
    kf = KalmanFilter(dim_x=3, dim_z=1)
    kf.F, kf.Q, kf.H = F, Q, np.array([[1.0, 0, 0]])
    first = np.flatnonzero(np.isfinite(z))
    kf.x, kf.P = np.array([z[first[0]] if first.size else 0.0, 0, 0]), np.diag([1.0, 10.0, 100.0])
    xs, Ps = [], []
    for i in range(len(z)):
        if i:
            kf.predict()
        if np.isfinite(z[i]):
            kf.update(z[i], R=np.array([[min(std[i], 1e3) ** 2]]))
        xs.append(kf.x.copy())
        Ps.append(kf.P.copy())
    return kf.rts_smoother(np.array(xs), np.array(Ps))[0][:, 0]


def test_batched_filter_equals_filterpy_many_tracks():
    """Many tracks at once, each with its own per-frame noise and its own gaps (at the start, inside,
    at the end, single frames), against filterpy run track by track and axis by axis."""
    rng = np.random.default_rng(3)
    T, N, dt = 240, 8, 1 / 60
    t = np.arange(T) * dt
    truth = np.stack([np.stack([np.sin(t * (1 + k)), np.cos(0.5 * t + k), 0.2 * k + 0.05 * t], 1) for k in range(N)], 1)
    std = rng.uniform(0.003, 0.05, (T, N))  # per frame and track, as reprojection error and confidence give
    std[rng.random((T, N)) < 0.03] = 5e3  # a few hopeless measurements: capped at 1e3 m
    z = truth + rng.normal(0, 1, truth.shape) * std[..., None].clip(max=0.05)
    z[:12, 1] = np.nan  # track starts late
    z[100:130, 2] = np.nan  # half a second missing
    z[-20:, 3] = np.nan  # track ends early
    z[rng.random((T, N)) < 0.05] = np.nan  # scattered single frames, every track
    F, Q = motion_model(dt, 50.0)
    ours = kalman_rts(z, std, dt, 50.0)
    for k in range(N):
        for axis in range(3):
            np.testing.assert_allclose(ours[:, k, axis], filterpy_rts(z[:, k, axis], std[:, k], F, Q), atol=1e-9,
                                       err_msg=f"track {k} axis {axis}")


def test_smoothing_reduces_noise_and_gates_jumps():
    _, truth, z = track()
    rmse_raw = np.sqrt(np.mean((z - truth) ** 2))
    z[[50, 150, 220]] += [0.4, -0.3, 0.5]  # implausible jumps
    res = smooth_keypoints(z[:, None], 60.0, np.full((len(z), 1), 0.01), SETTINGS.filter, 12.0)
    assert res.rejected[[50, 150, 220], 0].all() and res.rejected.sum() <= 5
    assert np.sqrt(np.nanmean((res.points_m[:, 0] - truth) ** 2)) < 0.7 * rmse_raw


def test_short_gaps_filled_long_gaps_reported():
    _, truth, z = track()
    z[100:106] = np.nan  # 0.1 s
    z[200:260] = np.nan  # 1 s
    res = smooth_keypoints(z[:, None], 60.0, np.full((len(z), 1), 0.01), SETTINGS.filter, 12.0)
    assert np.all(np.isfinite(res.points_m[100:106, 0]))
    assert np.abs(res.points_m[100:106, 0] - truth[100:106]).max() < 0.02
    assert np.isnan(res.points_m[200:260, 0]).all() and res.long_gaps == {0: [(200, 260)]}


def test_butterworth_is_zero_lag_low_pass():
    t = np.arange(600) / 100.0
    slow, fast = np.sin(2 * np.pi * 1.0 * t), 0.2 * np.sin(2 * np.pi * 30.0 * t)
    out = zero_lag_lowpass((slow + fast)[:, None], 100.0, 6.0)[:, 0]
    assert np.abs(out[50:-50] - slow[50:-50]).max() < 0.02  # no phase lag, the 30 Hz part gone


def test_outlier_after_a_gap_does_not_lock_the_filter_out():
    # Forward-only gating accepted a wild point after a gap (uncertainty grown) and then rejected
    # every true point after it, drifting by metres; gating against the two-sided track does not.
    _, truth, z = track(noise=0.005)
    z[100:110] = np.nan
    z[110] += [0.5, -0.4, 0.3]
    z[111] += [0.45, -0.35, 0.3]  # two wrong in a row
    res = smooth_keypoints(z[:, None], 60.0, np.full((len(z), 1), 0.01), SETTINGS.filter, 12.0)
    assert res.rejected[[110, 111], 0].all() and res.rejected.sum() <= 4
    err = np.linalg.norm(res.points_m[:, 0] - truth, axis=-1)
    assert err[100:130].max() < 0.02 and np.sqrt(np.mean(err**2)) < 0.006


def test_local_outliers_find_short_runs_and_spare_fast_motion():
    t = np.arange(600) / 60.0
    rng = np.random.default_rng(3)
    # Fast, curved motion, 2 Hz at 0.25 m (3 m/s, 40 m/s^2; a hand flicking, a foot in running):
    # nothing flagged.
    fast = np.stack([0.25 * np.sin(2 * np.pi * 2 * t), 0.1 * np.cos(2 * np.pi * 4 * t), 0.5 * t], 1)
    assert not local_outliers((fast + rng.normal(0, 0.004, fast.shape))[:, None], *HAMPEL).any()
    # Walking pace with a 1 Hz swing: a 3-frame run right after a gap and a single wrong point found.
    truth = np.stack([1.2 * t, 0.3 * np.sin(2 * np.pi * 1 * t), 0.1 * np.cos(2 * np.pi * 1 * t)], 1)
    z = truth + rng.normal(0, 0.004, truth.shape)
    z[200:203] += [0.0, 0.3, 0.0]  # a swapped label, say
    z[196:200] = np.nan
    z[400] += [0.1, 0.0, 0.0]
    found = local_outliers(z[:, None], *HAMPEL)[:, 0]
    assert found[[200, 201, 202, 400]].all() and found.sum() == 4


def test_gap_fill_over_noisy_samples_and_short_ends():
    # A fit over a few frames each side fills a gap in noisy samples far better than a spline
    # through every sample; a short gap at an end is extrapolated, a longer one is not.
    t = np.arange(300) / 60.0
    truth = np.stack([np.sin(t), 0.5 * np.cos(2 * t), 0.1 * t], 1)[:, None]
    z = truth + np.random.default_rng(4).normal(0, 0.003, truth.shape)
    z[100:112] = np.nan
    z[:4] = np.nan
    z[-20:] = np.nan
    spline, _ = fill_gaps(t, z, 15)
    local, unfilled = fill_gaps(t, z, 15, context_frames=6, end_frames=6)
    err_spline = np.abs(spline[100:112] - truth[100:112]).max()
    err_local = np.abs(local[100:112] - truth[100:112]).max()
    assert err_local < 0.006 and err_local < err_spline
    assert np.abs(local[:4] - truth[:4]).max() < 0.01
    assert unfilled == {0: [(280, 300)]} and np.isnan(local[-20:]).all()
