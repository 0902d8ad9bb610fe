"""The LSTM augmenter: OpenCap parity, our file format, the augment stage's input handling."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from biomech.trc import MarkerTable, read_trc, write_trc
from models.augmenter import (LOWER_KEYPOINTS, LOWER_MARKERS, UPPER_KEYPOINTS, UPPER_MARKERS, Augmenter,
                              AugmenterError, LSTMAugmenterNet, augment, load_augmenters, marker_anchor, save_augmenters)
from pipeline.augment import augment_table
from core.gaps import fill_gaps
from tests.conftest import ROOT, SHARED_DATA, needs_shared

AUG = SHARED_DATA / "opencap-core" / "augmenter"
VIDEO_KEYPOINTS = ["Neck", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist", "midHip", "RHip", "LHip",
                   "RKnee", "LKnee", "RAnkle", "LAnkle", "RBigToe", "RSmallToe", "RHeel", "LBigToe", "LSmallToe", "LHeel"]


@pytest.fixture(scope="module")
def opencap():
    from models.keras_import import import_opencap_dir

    return import_opencap_dir(AUG)


@pytest.fixture(scope="module")
def reference():
    d = np.load(AUG / "v0.3_reference_io.npz")
    return {k: d[k] for k in d.files}


@needs_shared
def test_raw_outputs_match_opencap_reference(opencap, reference):
    for m in opencap:
        raw = m.raw_outputs(reference[f"{m.name}_std_inputs"])
        assert np.abs(raw - reference[f"{m.name}_raw_outputs"]).max() < 1e-4


@needs_shared
def test_markers_match_opencap_reference(opencap, reference):
    names = [str(n) for n in reference["keypoint_names"]]
    kp = reference["keypoints"].astype(float)
    for m in opencap:
        std = m.standardised_inputs(kp, names, float(reference["height_m"]), float(reference["mass_kg"]))
        assert np.abs(std - reference[f"{m.name}_std_inputs"]).max() < 1e-3
        markers = m.predict(kp, names, float(reference["height_m"]), float(reference["mass_kg"]))
        assert 1000 * np.abs(markers - reference[f"{m.name}_markers"]).max() < 0.1  # mm


@needs_shared
def test_marker_names_sit_on_their_anatomy(reference):
    """The output order we name is right: each marker is nearest its keypoint; lateral is outside medial."""
    names = [str(n) for n in reference["keypoint_names"]]
    kp = reference["keypoints"]
    for marker, key, table, order in [("r_ankle_study", "RAnkle", "lower", LOWER_MARKERS), ("L_calc_study", "LHeel", "lower", LOWER_MARKERS),
                                      ("RHJC_study", "RHip", "lower", LOWER_MARKERS), ("L_toe_study", "LBigToe", "lower", LOWER_MARKERS),
                                      ("C7_study", "Neck", "lower", LOWER_MARKERS), ("r_lwrist_study", "RWrist", "upper", UPPER_MARKERS),
                                      ("L_melbow_study", "LElbow", "upper", UPPER_MARKERS)]:
        pos = reference[f"{table}_markers"][:, order.index(marker)]
        nearest = np.argmin(np.linalg.norm(pos[:, None] - kp, axis=2).mean(0))
        assert names[nearest] == key, marker
    lower = reference["lower_markers"]
    mid = 0.5 * (kp[:, names.index("RHip")] + kp[:, names.index("LHip")])
    side = lambda m: np.mean(np.abs(lower[:, LOWER_MARKERS.index(m), 2] - mid[:, 2]))
    assert side("r_knee_study") > side("r_mknee_study") and side("L_ankle_study") > side("L_mankle_study")


@pytest.mark.slow
@needs_shared
def test_import_cli_writes_a_file_that_loads_identically(tmp_path, opencap, reference):
    out = tmp_path / "opencap_v03.pt"
    res = subprocess.run([sys.executable, str(ROOT / "app.py"), "augmenter", "import-opencap", str(AUG), "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "lower: 15 keypoints -> 35 markers" in res.stdout
    loaded = load_augmenters(out)
    for a, b in zip(opencap, loaded):
        x = reference[f"{a.name}_std_inputs"]
        np.testing.assert_array_equal(a.raw_outputs(x), b.raw_outputs(x))


def small_models(seed: int = 0) -> list[Augmenter]:
    """Untrained models with the real shapes: enough to test file handling and the stage's plumbing."""
    torch.manual_seed(seed)
    out = []
    for name, kps, mks in [("lower", LOWER_KEYPOINTS, LOWER_MARKERS), ("upper", UPPER_KEYPOINTS, UPPER_MARKERS)]:
        n_in = 3 * len(kps) + 2
        out.append(Augmenter(name, kps, mks, [16, 16], np.zeros(n_in), np.ones(n_in), LSTMAugmenterNet(n_in, [16, 16], 3 * len(mks)).eval()))
    return out


def keypoint_table(frames: int = 120, rate: float = 60.0) -> MarkerTable:
    rng = np.random.default_rng(0)
    base = rng.uniform(-0.2, 0.2, (len(VIDEO_KEYPOINTS), 3)) + [0, 1.0, 0]
    t = np.arange(frames) / rate
    pos = base[None] + 0.05 * np.sin(2 * np.pi * 0.5 * t)[:, None, None]
    return MarkerTable(t, list(VIDEO_KEYPOINTS), pos, rate)


def test_save_load_round_trip(tmp_path):
    models = small_models()
    loaded = load_augmenters(save_augmenters(tmp_path / "a.pt", models))
    x = np.random.default_rng(1).normal(size=(30, 47))
    np.testing.assert_array_equal(models[0].raw_outputs(x), loaded[0].raw_outputs(x))
    assert loaded[1].markers == UPPER_MARKERS
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(AugmenterError, match="junk.pt: not an augmenter file"):
        load_augmenters(tmp_path / "junk.pt")


def test_an_ensemble_predicts_the_mean_of_its_members(tmp_path):
    """Models sharing a name are ensemble members: augment averages them, in a list or combined into one file."""
    from models.augmenter_train import combine_files

    a, b = small_models(0), small_models(1)
    kp = keypoint_table(40).positions_m
    names_a, pa = augment(a, kp, VIDEO_KEYPOINTS, 1.7, 65.0)
    _, pb = augment(b, kp, VIDEO_KEYPOINTS, 1.7, 65.0)
    assert not np.allclose(pa, pb)
    names_ab, pab = augment(a + b, kp, VIDEO_KEYPOINTS, 1.7, 65.0)
    assert names_ab == names_a == LOWER_MARKERS + UPPER_MARKERS
    np.testing.assert_allclose(pab, 0.5 * (pa + pb), atol=1e-9)
    fa = save_augmenters(tmp_path / "a.pt", a, {"data": {"shared_trials": ["DJ2"], "seed": 0}})
    fb = save_augmenters(tmp_path / "b.pt", b, {"data": {"shared_trials": ["walking1"], "seed": 1}})
    meta = combine_files([fa, fb], tmp_path / "ab.pt", log=lambda *_: None)
    assert meta["data"] == {"shared_trials": ["DJ2", "walking1"], "seeds": [0, 1]} and len(meta["members"]) == 2
    combined = load_augmenters(tmp_path / "ab.pt")
    assert [m.name for m in combined] == ["lower", "upper", "lower", "upper"]
    np.testing.assert_allclose(augment(combined, kp, VIDEO_KEYPOINTS, 1.7, 65.0)[1], pab, atol=1e-6)
    assert '"DJ2"' in (tmp_path / "ab.json").read_text()  # what bench/accuracy.py reads to keep trials out


def test_ensemble_members_of_different_layouts_are_refused():
    a, b = small_models(0), small_models(1)
    b[0].markers = b[0].markers[::-1]
    with pytest.raises(AugmenterError, match="ensemble 'lower': members predict different markers"):
        augment(a + b, keypoint_table(10).positions_m, VIDEO_KEYPOINTS, 1.7, 65.0)


def test_combine_cli_refuses_a_single_file_and_names_a_missing_one(tmp_path, capsys):
    import app

    fa = save_augmenters(tmp_path / "a.pt", small_models(0))
    assert app.main(["augmenter", "combine", str(fa), "--out", str(tmp_path / "x.pt")]) == 2
    assert "two augmenter files or more" in capsys.readouterr().err
    assert app.main(["augmenter", "combine", str(fa), str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "nope.pt: augmenter file not found" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_every_marker_has_an_anchor_on_its_own_body_part_and_side():
    assert marker_anchor("r_mknee_study") == "RKnee" and marker_anchor("L_thigh2_study") == "LKnee"
    assert marker_anchor("r.ASIS_study") == "RHip" and marker_anchor("L.PSIS_study") == "LHip"
    assert marker_anchor("RHJC_study") == "RHip" and marker_anchor("L_sh3_study") == "LAnkle"
    assert marker_anchor("r_5meta_study") == "RAnkle" and marker_anchor("L_calc_study") == "LAnkle"
    assert marker_anchor("C7_study") == "Neck" and marker_anchor("L_mwrist_study") == "LWrist"
    for kps, mks in ((LOWER_KEYPOINTS, LOWER_MARKERS), (UPPER_KEYPOINTS, UPPER_MARKERS)):
        anchors = [marker_anchor(m) for m in mks]
        assert set(anchors) <= set(kps)
    # the augment stage empties a marker where a keypoint it depends on was bridged: its anchor is one of them
    from biomech.landmarks import marker_keypoints

    depends = marker_keypoints()
    assert all(marker_anchor(m) in depends[m] for m in LOWER_MARKERS + UPPER_MARKERS)
    with pytest.raises(ValueError, match="no anchor keypoint known for marker 'nose'"):
        marker_anchor("nose")


def test_an_anchored_model_predicts_around_its_anchors_and_keeps_them_in_its_file(tmp_path):
    lower = small_models()[0]
    lower.anchors = [marker_anchor(m) for m in LOWER_MARKERS]
    loaded = load_augmenters(save_augmenters(tmp_path / "a.pt", [lower]))[0]
    assert loaded.anchors == lower.anchors
    assert small_models()[0].anchors is None and load_augmenters(save_augmenters(tmp_path / "b.pt", small_models()))[0].anchors is None
    kp = keypoint_table(frames=30)
    pred = loaded.predict(kp.positions_m, kp.names, 1.7, 65.0)
    raw = loaded.raw_outputs(loaded.standardised_inputs(kp.positions_m, kp.names, 1.7, 65.0)).reshape(30, -1, 3)
    anchor = kp.positions_m[:, [kp.names.index(a) for a in lower.anchors]]
    np.testing.assert_allclose(pred, anchor + 1.7 * raw, atol=1e-9)


def test_augment_table_writes_all_markers_and_opens_in_opensim(tmp_path):
    import opensim

    table = keypoint_table()
    out = augment_table(table, small_models(), 1.7, 65.0, 0.2, False).table
    assert out.names == VIDEO_KEYPOINTS + LOWER_MARKERS + UPPER_MARKERS and len(out.names) == 63
    path = write_trc(tmp_path / "markers.trc", out)
    osim = opensim.TimeSeriesTableVec3(str(path))
    assert osim.getNumColumns() == 63 and osim.getNumRows() == 120


def test_short_gaps_are_filled_long_gaps_empty_only_the_markers_that_depend_on_them():
    table = keypoint_table()
    truth = table.positions_m.copy()
    k = VIDEO_KEYPOINTS.index("RKnee")
    table.positions_m[50:55, k] = np.nan  # 5 frames = 83 ms
    filled, unfilled = fill_gaps(table.time_s, table.positions_m, 12)
    assert unfilled == {} and np.abs(filled[50:55, k] - truth[50:55, k]).max() < 1e-3
    table.positions_m[60:90, VIDEO_KEYPOINTS.index("LAnkle")] = np.nan  # 0.5 s: bridged, not an error
    table.positions_m[20:27, VIDEO_KEYPOINTS.index("midHip")] = np.nan  # no model reads midHip
    res = augment_table(table, small_models(), 1.7, 65.0, 0.2, False, source="keypoints.trc")
    report = res.report()
    assert report["bridged"] == {"LAnkle": [[61, 90]]} and report["filled"]["RKnee"] == [[51, 55]]
    assert report["bridged_frame_share"] == pytest.approx(30 / 120)
    out = res.table
    from biomech.landmarks import marker_keypoints

    left_shank_foot = [m for m, kps in marker_keypoints().items() if "LAnkle" in kps]
    assert {"L_ankle_study", "L_sh1_study", "L_calc_study", "L_toe_study"} <= set(left_shank_foot)
    assert "L_knee_study" not in left_shank_foot
    for m in out.names[20:]:
        seg = out.positions_m[60:90, out.names.index(m)]
        assert np.all(np.isnan(seg)) if m in left_shank_foot else np.all(np.isfinite(seg)), m
    assert np.all(np.isfinite(out.positions_m[:60, 20:])) and np.all(np.isfinite(out.positions_m[90:, 20:]))


def test_floor_offset_puts_the_feet_on_the_floor():
    table = keypoint_table()
    out = augment_table(table, small_models(), 1.7, 65.0, 0.2, True).table
    feet = [out.names.index(k) for k in ["RHeel", "LHeel", "RBigToe", "LBigToe", "RSmallToe", "LSmallToe"]]
    assert np.percentile(out.positions_m[:, feet, 1], 1) == pytest.approx(0.0, abs=1e-9)


def test_missing_inputs_are_refused():
    with pytest.raises(AugmenterError, match="missing samples.*RHip: frames 1-5"):
        augment(small_models(), np.full((5, 20, 3), np.nan), VIDEO_KEYPOINTS, 1.7, 65.0)
    partial = np.zeros((9, 20, 3))
    partial[2:4, VIDEO_KEYPOINTS.index("LHeel")] = np.nan
    partial[:, VIDEO_KEYPOINTS.index("midHip")] = np.nan  # not read by any model
    with pytest.raises(AugmenterError, match=r"\(LHeel: frames 3-4\)"):
        augment(small_models(), partial, VIDEO_KEYPOINTS, 1.7, 65.0)
    with pytest.raises(AugmenterError, match=r"keypoints \['RHeel'\] missing"):
        small_models()[0].standardised_inputs(np.zeros((5, 19, 3)), [n for n in VIDEO_KEYPOINTS if n != "RHeel"], 1.7, 65.0)


def test_augment_stage_in_the_runner_reruns_when_the_subject_changes(tmp_path):
    import yaml

    from pipeline.filter import FilterOutput
    from pipeline.logs import session_logging
    from pipeline.runner import DONE, UP_TO_DATE, Runner, Stage
    from pipeline.stages import STAGES
    from sessions.session import load_session
    from tests.conftest import VALID_VIDEOS, valid_doc, write_session

    weights = save_augmenters(tmp_path / "w.pt", small_models())
    doc = valid_doc()
    doc["config"] = {"augment": {"weights": str(weights)}}
    root = write_session(tmp_path / "s", doc, VALID_VIDEOS)

    def fake_filter(ctx):  # stands in for the 3D reconstruction stages: hands over what the filter stage does
        FilterOutput(keypoint_table(), quality={}).save(ctx.out_dir)

    stages = [Stage("filter", fake_filter), STAGES["augment"]]

    def run():
        session = load_session(root)
        with session_logging(session.output_dir / "log.txt"):
            return {(o.trial, o.stage): o.status for o in Runner(session, stages, show_progress=False).run()}

    assert run()[("squats1", "augment")] == DONE
    markers = read_trc(root / "output" / "squats1" / "augment" / "markers.trc")
    assert len(markers.names) == 63 and "RHJC_study" in markers.names
    assert run()[("squats1", "augment")] == UP_TO_DATE
    doc["subject"]["height_m"] = 1.80
    (root / "session.yaml").write_text(yaml.safe_dump(doc))
    assert run()[("squats1", "augment")] == DONE and run()[("static1", "filter")] == UP_TO_DATE


@pytest.mark.parametrize("members", [1, 2], ids=["one model", "ensemble"])
def test_a_long_arm_gap_empties_only_the_arm_markers_there(members):
    models = [m for seed in range(members) for m in small_models(seed)]
    table = keypoint_table()
    w = VIDEO_KEYPOINTS.index("LWrist")
    table.positions_m[:40, w] = np.nan  # hidden for the first 0.67 s (and at the trial's start)
    table.positions_m[70:100, VIDEO_KEYPOINTS.index("RElbow")] = np.nan
    res = augment_table(table, models, 1.7, 65.0, 0.2, False, source="keypoints.trc")
    out = res.table
    col = lambda names: [out.names.index(m) for m in names]
    l_forearm, r_arm = col(["L_lwrist_study", "L_mwrist_study"]), col(["r_lelbow_study", "r_melbow_study",
                                                                       "r_lwrist_study", "r_mwrist_study"])
    assert np.all(np.isnan(out.positions_m[:40][:, l_forearm])) and np.all(np.isnan(out.positions_m[70:100][:, r_arm]))
    others = [i for i in range(20, len(out.names)) if i not in l_forearm + r_arm]
    assert np.all(np.isfinite(out.positions_m[:, others])), "shoulders, trunk and legs are untouched"
    assert np.all(np.isfinite(out.positions_m[40:70][:, l_forearm + r_arm]))
    assert np.all(np.isnan(out.positions_m[:40, w]))  # the keypoint itself stays unmeasured
    assert set(res.report()["bridged"]) == {"LWrist", "RElbow"}
    table.positions_m[70:100, VIDEO_KEYPOINTS.index("RShoulder")] = np.nan  # the lower-body model reads it too
    out = augment_table(table, models, 1.7, 65.0, 0.2, False, source="keypoints.trc").table
    assert np.all(np.isnan(out.positions_m[70:100][:, col(["C7_study", "r_shoulder_study", "L_shoulder_study"])]))
    assert np.all(np.isfinite(out.positions_m[70:100][:, col(["RHJC_study", "r_knee_study", "L_calc_study"])]))


def test_a_keypoint_never_seen_empties_its_markers_for_the_whole_trial():
    table = keypoint_table()
    table.positions_m[:, VIDEO_KEYPOINTS.index("RWrist")] = np.nan
    out = augment_table(table, small_models(), 1.7, 65.0, 0.2, False).table
    assert np.all(np.isnan(out.positions_m[:, out.names.index("r_lwrist_study")]))
    assert np.all(np.isfinite(out.positions_m[:, out.names.index("r_lelbow_study")]))
