"""The ground layer's shared helpers against known truth: the one zero-lag low-pass, the peak
refinement, body measures in the picture, and the camera group."""
from __future__ import annotations

import numpy as np

from calibration.camera import Camera, look_at
from calibration.camera_group import CameraGroup
from core.keypoints import INDEX, SIDE, VIDEO_KEYPOINTS, body_centre, body_size, unsided
from core.signal import parabolic_peak, zero_lag_lowpass


def test_lowpass_keeps_gaps_and_short_runs_and_has_no_lag():
    t = np.arange(400) / 100.0
    x = np.sin(2 * np.pi * 1.0 * t) + 0.3 * np.sin(2 * np.pi * 30.0 * t)
    x[100:110] = np.nan
    x[200:205] = 5.0  # a short run between gaps: too short to filter, kept as it is
    x[195:200] = np.nan
    x[205:210] = np.nan
    out = zero_lag_lowpass(x, 100.0, 6.0)
    assert np.array_equal(np.isnan(out), np.isnan(x))
    assert np.array_equal(out[200:205], x[200:205])
    inside = slice(20, 90)
    assert np.max(np.abs(out[inside] - np.sin(2 * np.pi * t[inside]))) < 0.02  # 30 Hz gone, 1 Hz not shifted


def test_lowpass_trim_empties_run_edges_and_short_runs():
    x = np.cumsum(np.random.default_rng(0).normal(size=(300, 2)), axis=0)
    x[150:152, 0] = np.nan
    out = zero_lag_lowpass(x, 50.0, 5.0, padlen=30, trim=3)
    assert np.isnan(out[:3, 0]).all() and np.isnan(out[147:155, 0]).all() and np.isnan(out[-3:, 1]).all()
    assert np.isfinite(out[3:147, 0]).all() and np.isfinite(out[3:-3, 1]).all()
    short = np.full(20, np.nan)
    short[5:13] = 1.0  # 8 samples <= 2 * 3 + 3
    assert np.isnan(zero_lag_lowpass(short, 50.0, 5.0, trim=3)).all()


def test_lowpass_is_a_copy_when_nothing_to_filter():
    x = np.arange(50.0)
    for cutoff in (0.0, 25.0, 40.0):
        out = zero_lag_lowpass(x, 50.0, cutoff)
        assert np.array_equal(out, x) and out is not x


def test_parabolic_peak_finds_the_true_vertex():
    xs = np.arange(10.0)
    y = -(xs - 4.3) ** 2 + 2.0
    frac, top = parabolic_peak(y, int(np.argmax(y)))
    assert abs(4 + frac - 4.3) < 1e-12 and abs(top - 2.0) < 1e-12
    assert parabolic_peak(y, 0) == (0.0, float(y[0]))  # at an end: nothing to refine
    y[5] = np.nan
    assert parabolic_peak(y, 4) == (0.0, float(y[4]))


def test_body_measures_ignore_unconfident_points():
    kp = np.zeros((len(VIDEO_KEYPOINTS), 3))
    kp[INDEX["Neck"]] = [100, 100, 0.9]
    kp[INDEX["LAnkle"]] = [120, 400, 0.9]
    kp[INDEX["RWrist"]] = [900, 900, 0.1]  # below CONFIDENT: not part of the body
    assert body_size(kp[None])[0] == 300
    assert np.allclose(body_centre(kp), [110, 250])
    assert unsided("RKnee") == unsided("LKnee") == "Knee" and unsided("midHip") == "midHip"
    assert SIDE["LHeel"] == "L" and "Neck" not in SIDE


def test_camera_group_triangulates_and_measures_reprojection():
    rng = np.random.default_rng(3)
    cams = []
    for i, az in enumerate((-40, 0, 40)):
        a = np.radians(az)
        R, t = look_at([3.5 * np.sin(a), 1.2, 3.5 * np.cos(a)], [0, 1.0, 0])
        cams.append(Camera(f"c{i}", (1080, 1920), [[1400, 0, 540], [0, 1400, 960], [0, 0, 1]], [-0.05, 0.1, 0, 0, 0], R, t))
    group = CameraGroup(cams)
    pts = rng.uniform([-0.4, 0.1, -0.3], [0.4, 1.8, 0.3], (50, 3))
    uv = group.project(pts)  # (C, N, 2), distorted
    assert uv.shape == (3, 50, 2)
    w = np.ones((3, 50))
    w[2, :10] = 0  # one camera does not see the first ten points
    assert np.max(np.abs(group.triangulate(uv, w) - pts)) < 1e-6
    assert np.max(group.errors_px(pts, uv)) < 1e-6
    moved = uv.copy()
    moved[1, :, 0] += 3.0
    assert np.allclose(group.errors_px(pts, moved)[1], 3.0)
    w[1:, 20] = 0  # seen by one camera only: no point
    assert np.isnan(group.triangulate(uv, w)[20]).all()
