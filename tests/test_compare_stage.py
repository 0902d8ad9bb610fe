"""The compare stage: a trial with a mocap file is compared with it in the run (others: n/a); the demo's
true 3D keypoints are a reference solved on our model's video marker set; Bland-Altman statistics."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from biomech.compare import CompareError, bland_altman, compare_tables, plot_bland_altman
from biomech.landmarks import MARKER_SETS
from biomech.mocap import recognise_marker_set, reference_angles
from biomech.mot import write_mot
from biomech.trc import MarkerTable, read_trc, write_trc
from pipeline.orchestrate import run_session
from pipeline.stages import STAGES
from sessions.config import ConfigError, apply_overrides, load_defaults
from tests.conftest import DEMO_SESSION
from tests.test_compare import _tables


def test_bland_altman_statistics_match_numpy():
    rng = np.random.default_rng(0)
    ref = rng.normal(40, 20, 500)
    ours = ref + 3.0 + rng.normal(0, 2.0, 500)
    ours[[3, 70]] = np.nan
    ref[[5]] = np.nan
    ba = bland_altman(ours, ref)
    ok = np.isfinite(ours) & np.isfinite(ref)
    d = ours[ok] - ref[ok]
    assert ba["n"] == 497 and np.allclose(ba["diff"], d) and np.allclose(ba["mean"], (ours[ok] + ref[ok]) / 2)
    assert ba["bias"] == pytest.approx(np.mean(d)) and ba["sd"] == pytest.approx(np.std(d, ddof=1))
    assert ba["loa_low"] == pytest.approx(np.mean(d) - 1.96 * np.std(d, ddof=1))
    assert ba["loa_high"] == pytest.approx(np.mean(d) + 1.96 * np.std(d, ddof=1))
    assert ba["bias"] == pytest.approx(3.0, abs=0.3) and ba["sd"] == pytest.approx(2.0, abs=0.3)
    assert np.isnan(bland_altman([1.0], [2.0])["bias"])


def test_comparison_rows_carry_the_limits_of_agreement_and_columns_match_coordinates(tmp_path):
    ours, ref = _tables(0.0)
    ours.values[:, ours.names.index("hip_flexion_r")] = np.nan  # a coordinate IK left empty throughout
    cmp = compare_tables(ours, ref, max_shift_s=0.0)
    names = [c.name for c in cmp.coordinates]
    assert "hip_flexion_r" not in names and cmp.ours.shape[1] == cmp.ref.shape[1] == len(names)
    for j, c in enumerate(cmp.coordinates):
        ba = bland_altman(cmp.ours[:, j], cmp.ref[:, j])
        assert c.offset == pytest.approx(ba["bias"]) and c.limits_of_agreement[1] == pytest.approx(ba["loa_high"])
    row = cmp.table()[0]
    assert {"loa_low", "loa_high"} <= set(row)
    shown = plot_bland_altman(cmp, tmp_path / "ba.png")
    assert shown and set(shown) <= set(names) and (tmp_path / "ba.png").stat().st_size > 10_000


def test_trc_marker_sets_are_recognised_by_their_names():
    assert recognise_marker_set(read_trc(DEMO_SESSION / "mocap" / "squats.trc").names) == "video"
    assert recognise_marker_set(list(MARKER_SETS["mocap"])) == "mocap"
    assert recognise_marker_set(list(MARKER_SETS["video"])[:12]) == "video"  # some keypoints missing
    assert recognise_marker_set(["X1", "Y2"]) is None


def test_reference_angles_refuses_unknown_markers_and_reads_a_mot_as_it_is(tmp_path):
    table = MarkerTable(np.arange(0, 1, 0.01), ["X1", "X2"], np.zeros((100, 2, 3)), 100.0)
    write_trc(tmp_path / "foreign.trc", table)
    with pytest.raises(CompareError, match="neither a lab's mocap markers"):
        reference_angles(tmp_path / "foreign.trc", None, 1.7, 65, tmp_path / "out")
    with pytest.raises(CompareError, match="height and mass"):
        reference_angles(DEMO_SESSION / "mocap" / "squats.trc", None, None, None, tmp_path / "out")
    with pytest.raises(CompareError, match="the static file has other markers"):
        reference_angles(DEMO_SESSION / "mocap" / "squats.trc", tmp_path / "foreign.trc", 1.7, 65, tmp_path / "out")
    _, ref = _tables(0.0)
    write_mot(tmp_path / "ref.mot", ref)
    r = reference_angles(tmp_path / "ref.mot", None, None, None, tmp_path / "out")
    assert r.about["kind"] == "angles" and r.table.names == ref.names and not r.warnings


def test_video_keypoint_trc_is_solved_on_our_model_scaled_on_itself_without_a_static(tmp_path):
    """The demo's static truth as its own reference: no static file, so the model is scaled on its
    stillest window (warned), then IK with the video marker set; standing: knees nearly straight."""
    r = reference_angles(DEMO_SESSION / "mocap" / "static.trc", None, 1.7, 65.0, tmp_path / "out")
    assert r.about["markers"] == "video" and r.about["scaled_on_trial_itself"]
    assert any("no static mocap trial" in w for w in r.warnings)
    assert r.about["ik_marker_rms_mean_mm"] < 25
    knee = np.degrees(r.table.column("knee_angle_r"))
    assert np.all(np.abs(knee) < 15)


def test_compare_stage_sits_between_analyse_and_report_and_its_settings_are_checked():
    defaults = load_defaults()
    order = defaults["run"]["stages"]
    assert order.index("analyse") < order.index("compare") < order.index("report")
    names = list(STAGES)
    assert names.index("analyse") < names.index("compare") < names.index("report")
    st = STAGES["compare"]
    assert st.needs == ("ik",) and st.kinds == ("dynamic",) and "compare" in st.config_sections
    for key, bad in (("max_shift_s", -1.0), ("translations", "yes")):
        with pytest.raises(ConfigError, match=f"compare.{key}"):
            apply_overrides(defaults, [("--set", {"compare": {key: bad}})])


@pytest.mark.slow
def test_the_demo_squats_are_compared_with_their_true_keypoints_and_a_trial_without_mocap_is_na(demo_copy):
    from tests.test_front_end_stages import _write_true_json

    for trial in ("static", "squats"):
        _write_true_json(demo_copy, trial, bystander=False, seed=2)
    stages = ["frames", "keypoints", "sync", "triangulate", "filter", "augment", "scale", "ik", "compare"]
    run = run_session(demo_copy, overrides={"run": {"stages": stages}, "keypoints": {"backend": "json"}}, show_progress=False)
    status = {(o.trial, o.stage): o.status for o in run.outcomes}
    assert status[("squats", "compare")] == "done" and status[("static", "compare")] == "n/a"
    out = demo_copy / "output" / "squats" / "compare"
    doc = json.loads((out / "comparison.json").read_text())
    rows = {r["coordinate"]: r for r in doc["coordinates"]}
    assert doc["reference"]["markers"] == "video" and not doc["reference"]["scaled_on_trial_itself"]
    # our clock starts where both phones record: cam2 starts 0.3 s after the truth's (cam1's) zero
    assert doc["time_shift_s"] == pytest.approx(0.3, abs=0.04)
    for side in ("r", "l"):  # measured: MAE 2.7 / 2.4 deg, r 0.998
        assert rows[f"knee_angle_{side}"]["mae"] < 3.5 and rows[f"knee_angle_{side}"]["pearson_r"] > 0.99
    assert not {"pelvis_tx", "pelvis_ty", "pelvis_tz"} & set(rows)  # translations left out by default
    assert (out / "comparison.png").stat().st_size > 20_000 and (out / "bland_altman.png").stat().st_size > 20_000
    assert (out / "comparison.csv").read_text().startswith("coordinate,unit,rmse")
    manifest = json.loads((out / "_stage.json").read_text())
    s = manifest["summary"]
    assert set(s["flexion_mae_deg"]) == {"hip_flexion_r", "hip_flexion_l", "knee_angle_r", "knee_angle_l",
                                          "ankle_angle_r", "ankle_angle_l"}
    assert s["mean_flexion_mae_deg"] < 7 and "flexion MAE" in s["message"]  # measured 5.9 deg
    assert any("mocap/squats.trc" in k or "mocap/static.trc" in k for k in manifest["made_from"]["inputs"])

    # Without its mocap: file the trial's compare stage is n/a and its older outputs are moved aside.
    doc = yaml.safe_load((demo_copy / "session.yaml").read_text())
    for t in doc["trials"]:
        t.pop("mocap", None)
    (demo_copy / "session.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    again = run_session(demo_copy, overrides={"run": {"stages": stages}, "keypoints": {"backend": "json"}}, show_progress=False)
    status = {(o.trial, o.stage): o for o in again.outcomes}
    assert status[("squats", "compare")].status == "n/a" and "no mocap" in status[("squats", "compare")].message
    assert status[("squats", "ik")].status == "up to date"
    assert not out.exists() and (out.parent / "compare.stale").is_dir()


def _mot_session(tmp_path, max_shift_s: float = 2.0):
    """A session whose squats1 names a reference .mot, with our joint angles in place of an ik stage."""
    from sessions.session import load_session
    from tests.conftest import VALID_VIDEOS, valid_doc, write_session

    doc = valid_doc()
    doc["trials"][1]["mocap"] = "mocap/ref.mot"
    doc["config"] = {"compare": {"max_shift_s": max_shift_s}}
    (tmp_path / "s" / "mocap").mkdir(parents=True)
    ours, ref = _tables(0.137)
    write_mot(tmp_path / "s" / "mocap" / "ref.mot", ref)
    root = write_session(tmp_path / "s", doc, VALID_VIDEOS)
    (root / "output" / "squats1" / "ik").mkdir(parents=True)
    write_mot(root / "output" / "squats1" / "ik" / "squats1.mot", ours)
    session = load_session(root)
    return session, next(t for t in session.trials if t.name == "squats1")


def test_compare_stage_with_a_reference_mot(tmp_path):
    from pipeline.compare import compare_inputs, no_mocap, run_compare
    from pipeline.runner import StageContext

    session, trial = _mot_session(tmp_path)
    static = next(t for t in session.trials if t.kind == "static")
    assert no_mocap(trial) is None and no_mocap(static) == "no mocap: file in session.yaml"
    ctx = StageContext(session, trial, session.config, tmp_path / "out", show_progress=False)
    ctx.out_dir.mkdir()
    assert compare_inputs(ctx) == [trial.mocap]  # a .mot: no model, no static file
    run_compare(ctx)
    doc = json.loads((ctx.out_dir / "comparison.json").read_text())
    assert doc["reference"]["kind"] == "angles" and doc["time_shift_s"] == pytest.approx(0.137, abs=0.004)
    # shared rotations only: pelvis_tx (a translation) is left out, mtp/elbow are on one side only
    assert [r["coordinate"] for r in doc["coordinates"]] == ["knee_angle_r", "hip_flexion_r"]
    assert ctx.summary["flexion_mae_deg"]["knee_angle_r"] == pytest.approx(3.0, abs=0.1)
    assert (ctx.out_dir / "comparison.png").is_file() and (ctx.out_dir / "bland_altman.png").is_file()
    assert not ctx.summary["warnings"]


def test_compare_stage_warns_when_the_shift_sits_at_its_limit(tmp_path):
    from pipeline.compare import run_compare
    from pipeline.runner import StageContext

    session, trial = _mot_session(tmp_path, max_shift_s=0.05)
    ctx = StageContext(session, trial, session.config, tmp_path / "out", show_progress=False)
    ctx.out_dir.mkdir()
    run_compare(ctx)
    assert any("sits at the search limit" in w for w in ctx.summary["warnings"])


def test_the_demo_truth_solved_on_our_model_gives_the_analytic_angles(tmp_path):
    """The reference itself: the demo's true keypoints (made from known knee, ankle and hip angles) solved
    with the video marker set, scaled on the static truth, read back those angles."""
    from demo.make_demo_session import TRIALS, squat_depth

    ik = load_defaults()["ik"]  # as the stage solves it
    r = reference_angles(DEMO_SESSION / "mocap" / "squats.trc", DEMO_SESSION / "mocap" / "static.trc", 1.7, 65.0,
                         tmp_path / "out", weights=ik["marker_weights"], video_coordinate_weights=ik["video_coordinate_weights"])
    assert not r.warnings
    depth = squat_depth(r.table.time_s, TRIALS["squats"]["squats"], TRIALS["squats"]["seconds"])
    for name, at_depth, bound in (("knee_angle_r", 105.0, 0.7), ("knee_angle_l", 105.0, 0.7), ("ankle_angle_r", 32.0, 0.7)):
        x = np.degrees(r.table.column(name))
        x = x - x[depth < 1e-6].mean()  # the standing offset (the model's neutral foot is not the figure's)
        assert np.mean(np.abs(x - at_depth * depth)) < bound, name  # measured 0.3-0.4 deg
    for name in ("hip_rotation_r", "subtalar_angle_r", "mtp_angle_r"):  # a sagittal squat: these stay still
        assert np.ptp(np.degrees(r.table.column(name))) < 6, name
