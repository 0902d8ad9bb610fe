"""Replaying recorded movements on synthetic bodies (models.augmenter_replay) and the posture prior."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from biomech.motion_library import motion, standing_posture
from biomech.mot import CoordinateTable
from models.augmenter_data import KEYPOINTS, body_poses, marker_anchors, points_in_ground
from models.augmenter_replay import ReplaySource, ReplaySpec, mirrored, replay_trials, varied
from core.keypoints import VIDEO_KEYPOINTS, mirror_index


@pytest.fixture(scope="module")
def ranges(ranges_rad):
    return ranges_rad


def _source(ranges, kind="walking", seconds=1.5, seed=0, name="rec") -> ReplaySource:
    deg = {n: tuple(np.degrees(v)) for n, v in ranges.items()}
    coords = motion(kind, list(ranges), deg, np.random.default_rng(seed), seconds, 100.0)
    if kind == "walking":  # the library walks on the spot; a lab's subject walks 1.3 m/s forward
        coords.values[:, coords.names.index("pelvis_tx")] = 1.3 * coords.time_s
    return ReplaySource(name, kind, coords, coords.values[0].copy(), 1.75)


def test_mirrored_motion_is_the_mirror_image(model, ranges):
    src = _source(ranges)
    sub = CoordinateTable(src.coords.time_s[::30], src.coords.names, src.coords.values[::30])
    bodies, rot, org = body_poses(model, sub)
    kb, kl = marker_anchors(model, bodies, KEYPOINTS)
    a = points_in_ground(rot, org, kb, kl)
    _, rot, org = body_poses(model, mirrored(sub))
    b = points_in_ground(rot, org, kb, kl)

    partner = dict(zip(VIDEO_KEYPOINTS, (VIDEO_KEYPOINTS[i] for i in mirror_index())))
    swapped = b[:, [KEYPOINTS.index(partner[k]) for k in KEYPOINTS]] * np.array([1.0, 1.0, -1.0])
    assert np.max(np.abs(swapped - a)) < 1e-9  # right of the mirror = left of the original, z flipped
    assert np.max(np.abs(b - a)) > 0.05
    assert np.array_equal(mirrored(mirrored(sub)).values, sub.values)


def test_plain_replay_reproduces_the_source(ranges):
    """No warp, speed, amplitude, mirror or sway: the clip between the held ends is the source."""
    src = _source(ranges)
    spec = ReplaySpec(speed=(1.0, 1.0), warp=0.0, amplitude=(1.0, 1.0), mirror_share=0.0, rate_hz=(100.0, 100.0),
                      sway_deg=0.0, pad_s=(0.5, 0.5), min_duration_s=0.0)
    out = varied(src, np.random.default_rng(0), spec, 1.75, ranges)
    n = len(src.coords.time_s)
    clip = out.values[50:50 + n]
    rot = [j for j, c in enumerate(out.names) if c not in ("pelvis_tx", "pelvis_ty", "pelvis_tz")]
    assert len(out.time_s) == n + 100 and np.allclose(np.diff(out.time_s), 0.01)
    assert np.max(np.abs(clip[:, rot] - src.coords.values[:, rot])) < np.radians(0.2)
    tx = out.names.index("pelvis_tx")  # the pelvis walks on through the held ends: no jump at the seams
    assert np.max(np.abs(np.diff(out.values[:, tx]))) < 3 * np.max(np.abs(np.diff(src.coords.values[:, tx])))


def test_variations_stay_in_range_scale_translations_and_fill_a_window(ranges):
    src = _source(ranges, seconds=1.2)
    spec = ReplaySpec()
    rng = np.random.default_rng(3)
    tall = varied(src, rng, replace(spec, mirror_share=0.0, amplitude=(1.0, 1.0)), 1.75 * 1.1, ranges)
    for j, n in enumerate(tall.names):
        if not n.startswith("pelvis_t") or n == "pelvis_tilt":
            lo, hi = ranges[n]
            assert lo <= tall.values[:, j].min() and tall.values[:, j].max() <= hi, n
    ty = tall.names.index("pelvis_ty")
    assert np.median(tall.values[:, ty]) == pytest.approx(1.1 * np.median(src.coords.values[:, ty]), rel=0.05)
    for seed in range(5):
        v = varied(src, np.random.default_rng(seed), spec, 1.75, ranges)
        assert v.time_s[-1] >= spec.min_duration_s - 0.05  # a 1.2 s stride padded with standing


def test_replay_trials_draw_activities_by_weight_and_are_deterministic(ranges):
    sources = [_source(ranges, "walking", name="w1"), _source(ranges, "walking", seed=1, name="w2"),
               _source(ranges, "squat", seconds=3.0, name="sq")]
    spec = ReplaySpec(subjects=2, trials_per_subject=3, activity_weights={"squat": 1.0, "walking": 1.0})
    a = replay_trials(sources, spec)
    b = replay_trials(sources, spec)
    assert len(a) == 6 and all(np.array_equal(x.keypoints_m, y.keypoints_m) for x, y in zip(a, b))
    assert all(t.keypoints_m.shape[1:] == (20, 3) and t.markers_m.shape[1:] == (43, 3) for t in a)
    only_squat = replay_trials(sources, replace(spec, activity_weights={"walking": 0.0}))
    assert {t.kind for t in only_squat} == {"squat"}


def test_standing_posture_tilts_the_pelvis_forward_and_keeps_the_trunk_upright():
    rng = np.random.default_rng(0)
    draws = [standing_posture(rng) for _ in range(500)]
    tilt = np.array([-d["pelvis_tilt"] for d in draws])
    lordosis = np.array([d["lumbar_extension"] for d in draws])
    assert 9.5 < tilt.mean() < 12.5 and tilt.min() >= 0 and tilt.max() <= 22
    assert np.all(lordosis >= 0.6 * tilt - 1e-9) and np.all(lordosis <= 1.1 * tilt + 1e-9)


def test_detector_definitions_move_the_keypoints_with_the_body(model, ranges):
    from models.augmenter_data import KeypointErrors, Subject, subject_trials

    deg = {n: tuple(np.degrees(v)) for n, v in ranges.items()}
    coords = motion("squat", list(ranges), deg, np.random.default_rng(2), 2.0, 30.0)
    subject = Subject(1.75, 70.0, {})  # the generic body: scale factors 1
    plain = KeypointErrors(clean_share=1.0)
    shifted = replace(plain, definition_shift_m={"RHip": [0.02, 0.0, 0.0], "RHeel": [0.05, -0.01, 0.0]})
    a = subject_trials(model, subject, [("squat", coords)], plain, np.random.default_rng(0))[0]
    b = subject_trials(model, subject, [("squat", coords)], shifted, np.random.default_rng(0))[0]
    moved = np.linalg.norm(b.clean_keypoints_m - a.clean_keypoints_m, axis=2)  # (frames, keypoints)
    assert np.allclose(moved[:, KEYPOINTS.index("RHip")], 0.02, atol=1e-9)
    assert np.allclose(moved[:, KEYPOINTS.index("RHeel")], np.hypot(0.05, 0.01), atol=1e-9)
    others = [j for j, k in enumerate(KEYPOINTS) if k not in ("RHip", "RHeel")]
    assert np.max(moved[:, others]) < 1e-12 and np.array_equal(a.markers_m, b.markers_m)
