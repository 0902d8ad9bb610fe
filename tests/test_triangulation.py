"""Triangulation on synthetic views of a known 3D motion (the demo session's true keypoints)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from biomech.trc import read_trc
from calibration.camera import Camera, look_at
from pipeline.triangulate_points import fix_cross_view_swaps, triangulate
from tests.conftest import DEMO_SESSION, SETTINGS

PAIRS = [(1, 2), (3, 4), (5, 6), (8, 9), (10, 11), (12, 13), (14, 17), (15, 18), (16, 19)]  # R/L in OpenCap order


@pytest.fixture(scope="module")
def scene():
    X = read_trc(DEMO_SESSION / "mocap" / "squats.trc").positions_m[::4]  # (frames, 20, 3), 25 Hz
    cams = []
    for i, az in enumerate([30, -30, 120, -120]):
        a = np.radians(az)
        R, t = look_at([3.5 * np.cos(a), 1.2, 3.5 * np.sin(a)], [0, 0.9, 0])
        cams.append(Camera(f"phone{i + 1}", (1080, 1920), [[1400, 0, 540], [0, 1400, 960], [0, 0, 1]], [-0.05, 0.1, 0.001, 0, 0], R, t))
    uv = np.stack([c.project(X) for c in cams])
    return X, cams, uv, np.full(uv.shape[:3], 0.9)


def rmse_mm(a, b):
    return 1000 * np.sqrt(np.nanmean(np.sum((a - b) ** 2, axis=-1)))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_exact_views_give_exact_points(scene, n):
    X, cams, uv, conf = scene
    tri = triangulate(cams[:n], uv[:n], conf[:n], SETTINGS.triangulate)
    assert rmse_mm(tri.points_m, X) < 0.01 and np.nanmax(tri.error_px) < 0.01


def test_two_cameras_two_pixel_noise_under_15mm(scene):
    X, cams, uv, conf = scene
    noisy = uv[:2] + np.random.default_rng(0).normal(0, 2, uv[:2].shape)
    assert rmse_mm(triangulate(cams[:2], noisy, conf[:2], SETTINGS.triangulate).points_m, X) < 15


def test_two_disagreeing_views_drop_the_point(scene):
    X, cams, uv, conf = scene
    bad = uv[:2].copy()
    bad[1, 5, 10] += [0.0, 150.0]  # a wild detection in the second phone (off its epipolar line)
    tri = triangulate(cams[:2], bad, conf[:2], SETTINGS.triangulate)
    assert np.all(np.isnan(tri.points_m[5, 10])) and not tri.used[5, 10].any()
    others = np.ones(tri.points_m.shape[:2], bool)
    others[5, 10] = False
    assert rmse_mm(tri.points_m[others], X[others]) < 0.01  # every other point kept


def test_an_outlier_camera_is_rejected(scene):
    X, cams, uv, conf = scene
    rng = np.random.default_rng(1)
    noisy = uv[:3] + rng.normal(0, 1, uv[:3].shape)
    bad = noisy.copy()
    bad[2, :, 10] += [150.0, -80.0]  # camera 3 sees the right knee far off in every frame
    clean = triangulate(cams[:3], noisy, conf[:3], SETTINGS.triangulate)
    tri = triangulate(cams[:3], bad, conf[:3], SETTINGS.triangulate)
    assert not tri.used[:, 10, 2].any() and tri.used[:, 10, :2].all()
    assert rmse_mm(tri.points_m[:, 10], X[:, 10]) < 2 * rmse_mm(clean.points_m[:, 10], X[:, 10]) + 1


def test_confidence_threshold_and_too_few_cameras(scene):
    X, cams, uv, conf = scene
    c = conf[:3].copy()
    c[0, :, 5] = 0.1  # camera 1 unsure of the right wrist
    c[1, :, 6] = 0.1
    c[2, :, 6] = 0.1  # only camera 1 sees the left wrist
    tri = triangulate(cams[:3], uv[:3], c, SETTINGS.triangulate)
    assert not tri.used[:, 5, 0].any() and rmse_mm(tri.points_m[:, 5], X[:, 5]) < 0.01
    assert np.isnan(tri.points_m[:, 6]).all()


def test_single_camera_left_right_swaps_are_undone(scene):
    X, cams, uv, conf = scene
    rng = np.random.default_rng(2)
    noisy = uv + rng.normal(0, 2, uv.shape)
    swapped = noisy.copy()
    frames = rng.random(len(X)) < 0.2
    for left, right in PAIRS:
        swapped[1, frames, left], swapped[1, frames, right] = noisy[1, frames, right], noisy[1, frames, left]
    fixed, fixed_conf, mask = fix_cross_view_swaps(cams, swapped, conf, PAIRS, SETTINGS.triangulate)
    assert np.array_equal(mask[:, 1].any(axis=1), frames)
    assert not mask[:, [0, 2, 3]].any()
    np.testing.assert_allclose(fixed, noisy)


def test_outlier_threshold_follows_the_views_own_disagreement(scene):
    # Real phones disagree by several pixels everywhere; a fixed 20 px threshold inside that spread
    # makes points hop between camera subsets. The threshold grows with the median error, so only
    # gross errors are rejected.
    X, cams, uv, conf = scene
    rng = np.random.default_rng(5)
    biased = uv + rng.normal(0, 6, uv.shape) + np.array([8.0, -6.0])[None, None, None] * np.array([1, -1, 1, -1])[:, None, None, None]
    bad = biased.copy()
    bad[2, ::10, 10] += [200.0, 120.0]  # a gross error every 10th frame
    tri = triangulate(cams, bad, conf, SETTINGS.triangulate)
    assert tri.outlier_px > 20.0
    assert not tri.used[::10, 10, 2].any()
    others = np.delete(np.arange(len(X)), np.arange(0, len(X), 10))
    assert tri.used[others][:, :, :].mean() > 0.97  # (almost) every camera kept elsewhere
    fixed = triangulate(cams, bad, conf, replace(SETTINGS.triangulate, outlier_scale=0.0))
    assert fixed.outlier_px == 20.0 and fixed.used[others].mean() < tri.used[others].mean()


def test_cross_view_swaps_of_two_cameras_in_five_are_undone(scene):
    # Any minority of cameras may swap in the same frame (the old one-camera-at-a-time check
    # judged each camera against others that were themselves wrong).
    X, cams4, uv4, conf4 = scene
    extra = Camera("phone5", (1080, 1920), [[1400, 0, 540], [0, 1400, 960], [0, 0, 1]], [0, 0, 0, 0, 0],
                   *look_at([3.8, 1.5, 0.0], [0, 0.9, 0]))
    cams = cams4 + [extra]
    uv = np.concatenate([uv4, extra.project(X)[None]]) + np.random.default_rng(6).normal(0, 2, (5,) + uv4.shape[1:])
    conf = np.full(uv.shape[:3], 0.9)
    swapped = uv.copy()
    frames = np.arange(len(X)) % 7 == 3
    for cam in (1, 3):
        for left, right in PAIRS:
            swapped[cam, frames, left], swapped[cam, frames, right] = uv[cam, frames, right], uv[cam, frames, left]
    fixed, _, mask = fix_cross_view_swaps(cams, swapped, conf, PAIRS, SETTINGS.triangulate)
    assert np.array_equal(mask[:, 1].any(axis=1), frames) and np.array_equal(mask[:, 3].any(axis=1), frames)
    assert not mask[:, [0, 2, 4]].any()
    np.testing.assert_allclose(fixed, uv)
