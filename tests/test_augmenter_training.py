"""Our augmenter's training data (motions, subjects, keypoint errors), training, and shipped weights."""
from __future__ import annotations

import json

import numpy as np
import pytest

from biomech.ik import model_marker_positions
from biomech.motion_library import MOTIONS, motion
from models.augmenter import LOWER_KEYPOINTS, LOWER_MARKERS, ensemble_groups, load_augmenters
from models.augmenter_data import (KEYPOINTS, MARKERS, DataSpec, KeypointErrors, body_poses, make_trials, marker_anchors,
                                   points_in_ground, random_subject)
from models.augmenter_eval import placement_corrected, squared_errors, summarise
from models.augmenter_train import TrainSpec, WindowSampler, member_metas, random_rotations, train_augmenter
from models.augmenter import DEFAULT_WEIGHTS


@pytest.fixture(scope="module")
def ranges(ranges_rad):
    return {n: tuple(np.degrees(v)) for n, v in ranges_rad.items()}


@pytest.mark.parametrize("kind", list(MOTIONS))
def test_motions_stay_in_range_and_differ_by_seed(kind, ranges):
    names = list(ranges)
    a = motion(kind, names, ranges, np.random.default_rng(1), 5.0, 60.0)
    b = motion(kind, names, ranges, np.random.default_rng(2), 5.0, 60.0)
    assert a.values.shape == (300, len(names)) and np.all(np.isfinite(a.values))
    for j, n in enumerate(names):
        if n.startswith("pelvis_t") and n != "pelvis_tilt":
            continue
        lo, hi = np.radians(ranges[n])
        assert a.values[:, j].min() >= lo and a.values[:, j].max() <= hi, n
    assert not np.allclose(a.values, b.values)
    again = motion(kind, names, ranges, np.random.default_rng(1), 5.0, 60.0)
    assert np.array_equal(a.values, again.values)  # deterministic for a seed


def test_squat_bends_knees_and_keeps_feet_flat(ranges):
    names = list(ranges)
    m = motion("squat", names, ranges, np.random.default_rng(3), 8.0, 50.0)
    deg = {n: np.degrees(m.values[:, j]) for j, n in enumerate(names)}
    assert deg["knee_angle_r"].max() > 35
    # flat feet: hip flexion = (knee - ankle) + anterior pelvic tilt, up to the wobble added to each
    chain = deg["knee_angle_r"] - deg["ankle_angle_r"] - deg["pelvis_tilt"]
    assert np.corrcoef(chain, deg["hip_flexion_r"])[0, 1] > 0.95


def test_walking_swings_legs_in_antiphase(ranges):
    names = list(ranges)
    m = motion("walking", names, ranges, np.random.default_rng(4), 6.0, 100.0)
    r, l = (np.degrees(m.values[:, names.index(f"hip_flexion_{s}")]) for s in "rl")
    assert np.ptp(r) > 25 and np.corrcoef(r, l)[0, 1] < -0.5


def test_body_poses_reproduce_opensim_marker_positions(model, ranges):
    coords = motion("free", list(ranges), ranges, np.random.default_rng(5), 1.0, 30.0)
    bodies, rot, org = body_poses(model, coords)
    idx, local = marker_anchors(model, bodies, KEYPOINTS + MARKERS)
    ours = points_in_ground(rot, org, idx, local)
    ref = model_marker_positions(model, coords, KEYPOINTS + MARKERS)
    assert np.max(np.abs(ours - ref)) < 1e-9
    assert np.allclose(rot @ np.swapaxes(rot, -1, -2), np.eye(3), atol=1e-9)


def test_random_subjects_span_statures_and_are_symmetric():
    rng = np.random.default_rng(0)
    subjects = [random_subject(rng) for _ in range(200)]
    heights = np.array([s.height_m for s in subjects])
    bmi = np.array([s.mass_kg / s.height_m ** 2 for s in subjects])
    assert 1.50 <= heights.min() < 1.56 and 1.89 < heights.max() <= 1.95 and 18 <= bmi.min() and bmi.max() <= 33
    for s in subjects[:20]:
        assert s.factors["femur_r"] == s.factors["femur_l"] and s.factors["tibia_r"] == s.factors["tibia_l"]
    thigh = np.array([s.factors["femur_r"][1] / (s.height_m / 1.75) for s in subjects])
    assert 0.02 < thigh.std() < 0.06  # proportions vary around the stature's


def test_keypoint_errors_have_the_drawn_size_and_leave_no_gaps():
    rng = np.random.default_rng(0)
    errors = KeypointErrors()
    offsets = errors.offsets(rng, KEYPOINTS)
    r, l = offsets[KEYPOINTS.index("RKnee")], offsets[KEYPOINTS.index("LKnee")]
    assert np.sign(r[2]) == -np.sign(l[2]) or min(abs(r[2]), abs(l[2])) < 0.006  # mirrored across the midline
    t = np.arange(600) / 60.0
    clean = np.zeros((600, 20, 3)) + np.sin(t)[:, None, None]
    noisy = errors.apply(rng, t, clean)
    assert np.all(np.isfinite(noisy))
    rms_mm = 1000 * np.sqrt(np.mean(np.sum((noisy - clean) ** 2, axis=2)))
    assert 2 < rms_mm < 40
    quiet = KeypointErrors(wobble_m=(0, 0), jitter_m=(0, 0), lag_s=0.0, dropouts_per_s=0.0)
    assert np.allclose(quiet.apply(rng, t, clean), clean)


def test_rotated_training_windows_keep_distances():
    R = random_rotations(np.random.default_rng(0), 50, 4.0)
    assert np.allclose(R @ np.swapaxes(R, 1, 2), np.eye(3), atol=1e-12) and np.allclose(np.linalg.det(R), 1)
    tilt = np.degrees(np.arccos(R[:, 1, 1]))
    assert tilt.max() < 6  # Y stays near up
    trials = make_trials(DataSpec(subjects=1, trials_per_subject=2, duration_s=(4, 5), rate_hz=(30, 40), seed=3))
    sampler = WindowSampler(LOWER_KEYPOINTS, LOWER_MARKERS, 60).fill(trials)
    x, y = sampler.batch(np.random.default_rng(1), 8, 4.0)
    assert x.shape == (8, 60, 3 * 15 + 2) and y.shape == (8, 60, 3 * 35)
    # heights ride along unrotated; keypoint-to-keypoint distances are those of some window of the data
    pts = x[..., :45].reshape(8, 60, 15, 3)
    d = np.linalg.norm(pts[..., 5, :] - pts[..., 7, :], axis=-1)  # knee to ankle, in heights
    ref = np.linalg.norm(sampler.rel_in[:, 5] - sampler.rel_in[:, 7], axis=-1)
    assert ref.min() - 1e-5 <= d.min() and d.max() <= ref.max() + 1e-5
    assert np.allclose(x[..., 45], trials[0].height_m, atol=1e-5)


@pytest.mark.slow
def test_a_short_training_run_learns(tmp_path):
    trials = make_trials(DataSpec(subjects=2, trials_per_subject=3, duration_s=(4, 5), seed=7))
    aug, hist = train_augmenter("lower", LOWER_KEYPOINTS, LOWER_MARKERS, trials,
                                TrainSpec(hidden=[32], steps=250, batch=16, window=60, warmup_steps=20), progress=False,
                                log=lambda *_: None)
    first, last = hist["steps"][0]["rms_mm"], hist["steps"][-1]["rms_mm"]
    assert last < 0.2 * first
    errs = summarise([squared_errors([aug], t.keypoints_m, KEYPOINTS, t.markers_m, MARKERS, t.height_m, t.mass_kg) for t in trials])
    assert errs["all"] < 0.5 * first and set(errs["groups"]) >= {"pelvis", "knee", "foot"}


def test_placement_corrected_error_ignores_a_constant_offset_in_the_segment():
    rng = np.random.default_rng(0)
    R = random_rotations(rng, 100, 30.0)
    true = rng.normal(0, 0.3, (100, 3))
    offset_local = np.array([0.02, -0.01, 0.03])
    pred = true + np.einsum("fij,j->fi", R, offset_local)
    assert np.max(placement_corrected(pred, true, R)) < 1e-20
    assert np.sum((pred - true) ** 2, axis=1).mean() == pytest.approx(np.sum(offset_local ** 2))


@pytest.mark.slow
def test_shipped_weights_are_ours_and_accurate_on_new_subjects():
    """The default weights (trained by `app.py augmenter train`) on subjects and motions they never saw."""
    models = load_augmenters(DEFAULT_WEIGHTS)
    groups = ensemble_groups(models)  # an ensemble's members are averaged
    assert [g[0].name for g in groups] == ["lower", "upper"]
    assert [len(g[0].markers) for g in groups] == [35, 8]
    # inputs as the weights were trained to see them: the detector-keypoint definitions in their metadata
    meta = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    member = member_metas(meta)[0]
    errors = KeypointErrors(definition_shift_m=member["data"]["errors"].get("definition_shift_m", {}))
    trials = make_trials(DataSpec(subjects=2, trials_per_subject=4, seed=424242, errors=errors))
    exact = summarise([squared_errors(models, t.clean_keypoints_m, KEYPOINTS, t.markers_m, MARKERS, t.height_m, t.mass_kg)
                       for t in trials])
    noisy = summarise([squared_errors(models, t.keypoints_m, KEYPOINTS, t.markers_m, MARKERS, t.height_m, t.mass_kg)
                       for t in trials])
    assert exact["all"] < 20.0, exact["groups"]
    assert noisy["all"] < 30.0, noisy["groups"]
    assert max(exact["groups"].values()) < 35.0


def test_train_refuses_to_leave_out_a_trial_it_does_not_have(capsys):
    """--leave-out names shared training trials; a typo (or a held-out trial) is bad input, not a silent no-op."""
    from bench.lab_sessions import HELD_OUT, S4
    import app

    if not S4.is_dir():
        pytest.skip(f"{S4} not present")
    for bad in ("squats9", HELD_OUT[0]):
        assert app.main(["augmenter", "train", "--leave-out", f"DJ2,{bad}", "--out", "unused.pt"]) == 2
        err = capsys.readouterr().err
        assert f"--leave-out {bad}" in err and "DJ2, " in err


@pytest.mark.slow
def test_training_an_ensemble_writes_every_member_and_evaluates_each(tmp_path):
    """--members 2: two seeds' models in one file, each member's and the ensemble's held-out error recorded."""
    from models.augmenter_train import train_default

    out = tmp_path / "ens.pt"
    report = train_default(out, DataSpec(subjects=1, trials_per_subject=2, duration_s=(4, 5), seed=5), step_scale=0.002,
                           held_out_subjects=1, progress=False, log=lambda *_: None, members=2)
    assert [m.name for m in load_augmenters(out)] == ["lower", "upper", "lower", "upper"]
    assert [m["data"]["seed"] for m in report["members"]] == [5, 6] and report["data"]["seeds"] == [5, 6]
    members_mm = [m["held_out"]["reconstructed"]["all_mm"] for m in report["members"]]
    assert members_mm[0] != members_mm[1]
    # the mean of two predictions is never further from the truth than the worse of them (RMS, convexity)
    assert report["held_out"]["reconstructed"]["all_mm"] <= max(members_mm) + 1e-6
    assert set(report["history"]) == {"lower #1", "upper #1", "lower #2", "upper #2"}
    assert json.loads(out.with_suffix(".json").read_text())["source"].startswith("ensemble of 2 augmenters")
