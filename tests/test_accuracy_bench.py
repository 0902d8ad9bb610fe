"""The end-to-end accuracy benchmark (bench/accuracy.py, bench/lab_sessions.py) and IK's keypoint weights."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
from bench.accuracy import ankle_where_lab_subtalar_free, coordinate_errors, phase_errors
from bench.lab_sessions import HELD_OUT, S4, lab_training_data, training_trials
from biomech.mot import CoordinateTable
from pipeline.scale import keypoint_weights, static_pulls, static_targets_rad

needs_lab = pytest.mark.skipif(not S4.is_dir(), reason=f"{S4} not present (shared Subject 4 mocap data)")


def test_coordinate_errors_on_known_differences():
    t = np.arange(0, 4, 0.01)
    ref = np.radians(np.stack([40 * np.sin(t), 10 * np.cos(t)], axis=1))
    ours = ref + np.radians(np.stack([np.full_like(t, 3.0), 2.0 * np.sign(np.sin(7 * t))], axis=1))
    names = ["knee_angle_r", "hip_flexion_r"]
    e = coordinate_errors(CoordinateTable(t, names, ours), CoordinateTable(t, names, ref))
    assert e["knee_angle_r"]["mae"] == pytest.approx(3.0, abs=0.01)
    assert e["knee_angle_r"]["offset"] == pytest.approx(3.0, abs=0.01)
    assert e["knee_angle_r"]["mae_offset_removed"] == pytest.approx(0.0, abs=0.01)
    assert e["hip_flexion_r"]["mae"] == pytest.approx(2.0, abs=0.05)  # +-2 deg square wave: no offset to remove
    assert e["hip_flexion_r"]["mae_offset_removed"] == pytest.approx(2.0, abs=0.1)


def test_ankle_against_the_lab_skips_the_frames_where_its_subtalar_sits_on_the_limit():
    """Where the lab's clamped subtalar is on its limit its ankle took the rest of the foot's rotation: those
    frames are left out of 'ank/f' and counted in the on-limit share."""
    t = np.arange(0, 2, 0.01)
    on = (t > 0.5) & (t < 1.0)  # a quarter of the frames
    names = ["ankle_angle_r", "subtalar_angle_r"]
    lab = np.stack([10 * np.sin(t), np.where(on, -35.0, -10.0)], axis=1)
    ours = lab + np.stack([np.where(on, 8.0, 1.0), np.where(on, 20.0, 0.0)], axis=1)
    e = ankle_where_lab_subtalar_free(CoordinateTable(t, names, np.radians(ours)), CoordinateTable(t, names, np.radians(lab)),
                                      {"r": 35.0})
    assert e["ankle_angle_r"]["mae_subtalar_free"] == pytest.approx(1.0, abs=0.01)
    assert e["ankle_angle_r"]["lab_subtalar_on_limit_share"] == pytest.approx(on.mean(), abs=0.01)
    assert e["ankle_angle_r"]["frames"] == pytest.approx((~on).sum(), abs=2)
    assert coordinate_errors(CoordinateTable(t, names, np.radians(ours)),
                             CoordinateTable(t, names, np.radians(lab)))["ankle_angle_r"]["mae"] > 2.5  # all frames


def test_phase_errors_put_each_error_in_its_phase():
    """Squats with a hip error only at depth and a pelvis error only while standing: each shows in its own phase
    (signed, R/L mean), and a trial that never bends its knees far has no depth phase."""
    t = np.arange(0, 6, 0.01)
    knee = 50 * (1 - np.cos(2 * np.pi * t / 3))  # 0 -> 100 -> 0 twice
    names = ["pelvis_tilt", "hip_flexion_r", "hip_flexion_l", "knee_angle_r", "knee_angle_l"]
    ref = np.stack([-0.3 * knee, knee, knee, knee, knee], axis=1)
    depth, standing = knee >= 70, knee < 20
    ours = ref.copy()
    ours[depth, 1] -= 6.0
    ours[depth, 2] -= 2.0
    ours[standing, 0] += 5.0
    e = phase_errors(CoordinateTable(t, names, np.radians(ours)), CoordinateTable(t, names, np.radians(ref)))
    assert set(e) == {"standing", "mid", "depth"}
    assert e["depth"]["hip_flexion"]["error"] == pytest.approx(-4.0, abs=0.05)
    assert e["depth"]["pelvis_tilt"]["error"] == pytest.approx(0.0, abs=0.05)
    assert e["standing"]["pelvis_tilt"]["error"] == pytest.approx(5.0, abs=0.05)
    assert e["standing"]["hip_flexion"]["error"] == pytest.approx(0.0, abs=0.05)
    assert e["mid"]["hip_flexion"]["error"] == pytest.approx(0.0, abs=0.05)
    assert e["depth"]["frames"] == pytest.approx(depth.sum(), abs=2)
    assert e["depth"]["knee_angle"]["ref"] > 80
    shallow = phase_errors(CoordinateTable(t, names, np.radians(ours * 0.4)), CoordinateTable(t, names, np.radians(ref * 0.4)))
    assert set(shallow) == {"standing", "mid"}


@needs_lab
def test_lab_training_data_holds_out_the_benchmark_trials_and_measures_detector_definitions(tmp_path):
    trials = training_trials()
    assert not set(trials) & set(HELD_OUT) and "static1" in trials and len(trials) >= 10
    from sessions.settings import default_settings
    from pipeline.scale import ik_marker_weights

    sources, shifts = lab_training_data(["static1", "DJ2"], tmp_path, ik_marker_weights(default_settings()))
    assert [s.name for s in sources] == ["static1", "DJ2"] and sources[1].activity == "drop jump"
    still = sources[0]
    # the static trial stands where its solved standing pose is (within a few degrees of sway)
    rot = [j for j, n in enumerate(still.coords.names) if not n.startswith("pelvis_t") or n == "pelvis_tilt"]
    assert np.degrees(np.median(np.abs(still.coords.values[:, rot] - still.rest[rot]))) < 3
    mm = {k: 1000 * np.array(v) for k, v in shifts.items()}
    assert np.allclose(mm["RHip"] * [1, 1, -1], mm["LHip"]) and np.allclose(mm["RHeel"] * [1, 1, -1], mm["LHeel"])
    # OpenCap's detector hips sit ahead of the hip joint centre; its heel ahead of our heel point
    assert 5 < mm["RHip"][0] < 40 and 20 < mm["RHeel"][0] < 80
    assert all(np.linalg.norm(v) < 80 for v in mm.values())


def test_keypoint_weights_patterns():
    assert keypoint_weights({}) == {}
    w = keypoint_weights({"*Hip": 2.0, "RKnee": 3.0})
    assert w["RHip"] == w["LHip"] == w["midHip"] == 2.0 and w["RKnee"] == 3.0
    assert w["LKnee"] == 0.0 and w["Neck"] == 0.0  # not named: left out of IK
    assert set(keypoint_weights({"*": 5.0}).values()) == {5.0}


def test_static_pulls_resolve_to_the_models_coordinates():
    from biomech.model_builder import DEFAULT_MODEL
    from biomech.opensim_env import load_model
    from biomech.synthetic_motion import coordinate_names

    coords = coordinate_names(load_model(DEFAULT_MODEL))
    assert static_pulls(coords, {}) == {}
    pulls = static_pulls(coords, {"ankle_angle_r": 0.3, "knee_angle_*": 0.1, "ankle_angle_*": 0.1, "no_such_*": 1})
    assert pulls == {"knee_angle_r": 0.1, "knee_angle_l": 0.1, "ankle_angle_r": 0.3, "ankle_angle_l": 0.1}
    assert static_targets_rad(coords, {}) == {}
    targets = static_targets_rad(coords, {"pro_sup_*": 130.0, "ankle_angle_l": -5})
    assert set(targets) == {"pro_sup_r", "pro_sup_l", "ankle_angle_l"}
    assert np.degrees(targets["pro_sup_r"]) == pytest.approx(130.0) and np.degrees(targets["ankle_angle_l"]) == pytest.approx(-5)


@needs_lab
def test_lab_keypoints_sit_on_the_lab_markers():
    """The lab model's keypoints (OpenCap's definitions, scaled) agree with the lab's real markers: the knee
    keypoint lies between the epicondyle markers, the ankle between the malleoli, the heel near the calcaneus."""
    from bench.lab_sessions import lab_truth
    from biomech.trc import read_trc
    from demo.make_demo_session import KEYPOINTS

    truth = lab_truth("squats1")
    lab = read_trc(S4 / "MarkerData" / "squats1.trc")
    assert truth.keypoints_m.shape == (len(truth.time_s), 20, 3) and np.isfinite(truth.keypoints_m).all()

    def mk(name):
        return np.stack([np.interp(truth.time_s, lab.time_s, lab.positions_m[:, lab.names.index(name), d])
                         for d in range(3)], axis=1)

    def kp(name):
        return truth.keypoints_m[:, KEYPOINTS.index(name)]

    d_knee = np.nanmedian(np.linalg.norm(kp("RKnee") - mk("r_knee"), axis=1))
    d_ankle = np.nanmedian(np.linalg.norm(kp("RAnkle") - mk("r_ankle"), axis=1))
    d_heel = np.nanmedian(np.linalg.norm(kp("RHeel") - mk("r_calc"), axis=1))
    assert 0.02 < d_knee < 0.08 and 0.02 < d_ankle < 0.07 and d_heel < 0.06, (d_knee, d_ankle, d_heel)
    # right is +Z of the subject: hips 15-22 cm apart, the right one on the right
    assert 0.12 < np.median(np.linalg.norm(kp("RHip") - kp("LHip"), axis=1)) < 0.24


@needs_lab
def test_lab_session_is_deterministic_and_complete(tmp_path):
    from bench.lab_sessions import make_lab_session

    a = make_lab_session(tmp_path / "a", "DJ3", cameras=3, level="moderate", seed=4)
    b = make_lab_session(tmp_path / "b", "DJ3", cameras=3, level="moderate", seed=4)
    assert a.start_s == b.start_s and len(a.start_s) == 3
    fa = sorted((tmp_path / "a" / "pose2d" / "DJ3" / "cam2").iterdir())
    fb = sorted((tmp_path / "b" / "pose2d" / "DJ3" / "cam2").iterdir())
    assert [f.name for f in fa] == [f.name for f in fb] and fa[10].read_text() == fb[10].read_text()
    assert (tmp_path / "a" / "pose2d" / "static1" / "cam1").is_dir()
    meta = json.loads((tmp_path / "a" / "synthetic.json").read_text())
    assert meta["level"] == "moderate" and meta["applied"]["DJ3"]["cam1"]["missing"] > 0


@pytest.mark.slow
@needs_lab
def test_accuracy_benchmark_quick_regression(tmp_path):
    """The CI size of `python app.py bench accuracy` (squats1, 2 phones, realistic errors) through the shipped
    pipeline: limits a little above what it measured (see README), so a regression fails the build."""
    from bench.accuracy import main

    out = tmp_path / "accuracy.json"
    assert main(["--quick", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    (row,) = res["rows"]
    assert row["verdict"]["squats1"] in ("ok", "doubtful") and not row["failed"]
    a, b = row["vs_ours_on_mocap"], row["vs_lab_ik"]

    def both(table, base):
        return max(table[f"{base}_r"]["mae"], table[f"{base}_l"]["mae"])

    # measured (2026-12-03, anchored weights, static pose pulled to neutral at knees/ankles): worst side knee
    # 5.5 / hip 6.6 against (a), knee 2.4 / hip 6.0 / ankle 5.7 against (b); markers 25.0 mm offset-removed;
    # sync 1.5 ms (without the static pulls: knee 5.9 / hip 6.3, knee 3.2 / hip 5.6 / ankle 12.6; mid-hip-relative
    # weights before: knee 6.8 / hip 7.7, knee 4.1 / hip 6.9; before recorded movement: knee 4.9 / hip 12.1,
    # knee 2.7 / hip 10.4).
    # The hip depends much on the draw of the 25 mm hip-keypoint biases and on the training run (another run of the same recipe: hip 6.0, knee 5.0), hence the margin.
    assert both(a, "knee_angle") <= 8.0
    assert both(a, "hip_flexion") <= 10.0
    assert both(b, "knee_angle") <= 5.0
    assert both(b, "hip_flexion") <= 9.0
    assert both(b, "ankle_angle") <= 8.0
    assert row["markers"]["offset_removed_mm"] <= 30.0
    assert row["sync_error_ms"] <= 20.0
    assert out.with_suffix(".png").is_file()
    # the two references against each other on the same markers (measured 2026-12-04, squats1, right side:
    # hip 3.6, knee 3.2, ankle 7.4 deg MAE): no video is involved, so these stay put whatever the pipeline does
    floor = res["reference_agreement"]["squats1"]
    assert 2.0 <= floor["hip_flexion_r"]["mae"] <= 5.0 and 2.0 <= floor["knee_angle_r"]["mae"] <= 4.5
    assert 5.0 <= floor["ankle_angle_r"]["mae"] <= 10.0
    assert floor["hip_flexion_r"]["frames"] > 1000  # the whole trial, on the mocap clock
    # per-phase errors: squats1 has all three phases, and the frames add up to the compared ones
    phases = row["phases_vs_ours_on_mocap"]
    assert set(phases) == {"standing", "mid", "depth"} and phases["depth"]["knee_angle"]["ref"] > 80
    assert sum(p["frames"] for p in phases.values()) == a["knee_angle_r"]["frames"]


@pytest.mark.slow
@needs_lab
def test_accuracy_benchmark_short_walking_trial_runs_and_synchronises(tmp_path):
    """walking4 (1.1 s, two steps, 2 phones that overlap for 0.9 s) failed: sync took the second phone's
    labels mirrored half a stride away (0.55 s off), and the feet then did not triangulate."""
    from bench.accuracy import main

    out = tmp_path / "walking.json"
    assert main(["--trials", "walking4", "--cameras", "2", "--levels", "clean", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert not row["failed"] and row["verdict"]["walking4"] in ("ok", "doubtful")
    assert row["sync_error_ms"] <= 30.0  # measured 11 ms
    assert max(row["vs_ours_on_mocap"][f"knee_angle_{s}"]["mae"] for s in "rl") <= 6.0  # measured 3.0 (R/L mean)
