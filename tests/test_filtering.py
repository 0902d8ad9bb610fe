"""Kalman + RTS + Butterworth smoothing of 3D keypoints."""
from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter

from pipeline.filtering import butterworth, kalman_rts, motion_model, smooth_keypoints


def track(T=300, rate=60.0, noise=0.01, seed=0):
    t = np.arange(T) / rate
    truth = np.stack([np.sin(t), 0.5 * np.cos(2 * t), 0.1 * t], 1)
    return t, truth, truth + np.random.default_rng(seed).normal(0, noise, truth.shape)


def test_batched_filter_equals_filterpy():
    _, truth, z = track()
    z[100:104] = np.nan
    ours, _ = kalman_rts(z[:, None], np.full((len(z), 1), 0.01), 1 / 60, 50.0, 1e9)
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


def test_smoothing_reduces_noise_and_gates_jumps():
    _, truth, z = track()
    rmse_raw = np.sqrt(np.mean((z - truth) ** 2))
    z[[50, 150, 220]] += [0.4, -0.3, 0.5]  # implausible jumps
    res = smooth_keypoints(z[:, None], 60.0, np.full((len(z), 1), 0.01))
    assert res.rejected[[50, 150, 220], 0].all() and res.rejected.sum() <= 5
    assert np.sqrt(np.nanmean((res.points_m[:, 0] - truth) ** 2)) < 0.7 * rmse_raw


def test_short_gaps_filled_long_gaps_reported():
    _, truth, z = track()
    z[100:106] = np.nan  # 0.1 s
    z[200:260] = np.nan  # 1 s
    res = smooth_keypoints(z[:, None], 60.0, np.full((len(z), 1), 0.01), max_gap_s=0.25)
    assert np.all(np.isfinite(res.points_m[100:106, 0]))
    assert np.abs(res.points_m[100:106, 0] - truth[100:106]).max() < 0.02
    assert np.isnan(res.points_m[200:260, 0]).all() and res.long_gaps == {0: [(200, 260)]}


def test_butterworth_is_zero_lag_low_pass():
    t = np.arange(600) / 100.0
    slow, fast = np.sin(2 * np.pi * 1.0 * t), 0.2 * np.sin(2 * np.pi * 30.0 * t)
    out = butterworth((slow + fast)[:, None], 100.0, 6.0)[:, 0]
    assert np.abs(out[50:-50] - slow[50:-50]).max() < 0.02  # no phase lag, the 30 Hz part gone
