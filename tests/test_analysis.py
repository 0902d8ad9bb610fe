"""The analyse stage: squat repetitions on simulated curves with known truth, the heading, empty frames,
the output files; and (slow) the stage at the end of a synthetic session's run."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from biomech.analysis import (activity_from_name, analyse_trial, asymmetry_index, pelvis_matrices,
                              relative_to_heading, zxy_angles, _rot)
from biomech.mot import CoordinateTable, read_mot
from pipeline.analyse import OUTPUTS, angles_frame, reps_frame, write_analysis
from sessions.config import ConfigError, apply_overrides, load_defaults
from sessions.settings import AnalyseSettings
from tests.conftest import SETTINGS

RATE_HZ = 60.0
DROP_M = 0.40  # pelvis drop of a rep of depth 1
STAND_M = 0.95
KNEE_R_DEG, KNEE_L_DEG = 110.0, 100.0  # right knee 10 deg deeper: asymmetry positive
LEG_M = 0.85


def settings(**changes) -> AnalyseSettings:
    return replace(SETTINGS.analyse, **changes)


def squat_profile(reps: list[dict], lead_s: float, tail_s: float) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(time_s, depth 0..1, truth per rep). Each rep: depth (0..1), descent_s, pause_s, ascent_s, rest_s
    (standing after it); 'start_phase' (0..1 of the descent already done at t=0) cuts the first rep."""
    parts, t0, truth = [], 0.0, []
    dt = 1 / RATE_HZ
    parts.append(np.zeros(int(round(lead_s * RATE_HZ))))
    t0 = len(parts[0]) * dt
    for r in reps:
        a = r["depth"]
        desc = a * (0.5 - 0.5 * np.cos(np.pi * np.arange(0, r["descent_s"], dt) / r["descent_s"]))
        pause = np.full(int(round(r["pause_s"] * RATE_HZ)), a)
        asc = a * (0.5 + 0.5 * np.cos(np.pi * np.arange(0, r["ascent_s"], dt) / r["ascent_s"]))
        rest = np.zeros(int(round(r["rest_s"] * RATE_HZ)))
        seg = np.concatenate([desc, pause, asc])
        truth.append({"start_s": t0, "bottom_s": t0 + r["descent_s"] + r["pause_s"] / 2,
                      "end_s": t0 + len(seg) * dt, **r})
        parts += [seg, rest]
        t0 += (len(seg) + len(rest)) * dt
    parts.append(np.zeros(int(round(tail_s * RATE_HZ))))
    depth = np.concatenate(parts)
    return np.arange(len(depth)) * dt, depth, truth


def table_from_depth(time_s: np.ndarray, depth: np.ndarray, noise_deg: float = 0.0, seed: int = 0) -> CoordinateTable:
    """A squat in coordinates: knees right 110 / left 100 deg at depth 1, hips 90, ankles 30, pelvis drop 40 cm."""
    rng = np.random.default_rng(seed)
    n = len(time_s)
    noise = lambda: rng.normal(0, noise_deg, n)
    cols = {
        "pelvis_tilt": -25 * depth, "pelvis_list": np.zeros(n), "pelvis_rotation": np.zeros(n),
        "pelvis_tx": np.zeros(n), "pelvis_ty": STAND_M - DROP_M * depth + rng.normal(0, 0.002 if noise_deg else 0, n),
        "pelvis_tz": np.zeros(n), "lumbar_extension": -10 * depth,
        "hip_flexion_r": 90 * depth + noise(), "hip_flexion_l": 86 * depth + noise(),
        "hip_adduction_r": 3 * depth - 2, "hip_adduction_l": -4 * depth,
        "knee_angle_r": KNEE_R_DEG * depth + noise(), "knee_angle_l": KNEE_L_DEG * depth + noise(),
        "ankle_angle_r": 30 * depth + noise(), "ankle_angle_l": 30 * depth + noise(),
    }
    names = list(cols)
    values = np.stack([cols[k] if k.endswith(("_tx", "_ty", "_tz")) else np.radians(cols[k]) for k in names], axis=1)
    return CoordinateTable(time_s, names, values)


def test_reps_counted_exactly_with_pauses_a_partial_rep_and_known_peaks():
    reps = [dict(depth=1.0, descent_s=1.0, pause_s=0.0, ascent_s=1.0, rest_s=0.4),
            dict(depth=0.9, descent_s=0.8, pause_s=1.5, ascent_s=1.2, rest_s=2.0),  # pause at the bottom, long rest
            dict(depth=0.45, descent_s=0.6, pause_s=0.0, ascent_s=0.6, rest_s=0.8),  # partial
            dict(depth=1.0, descent_s=1.2, pause_s=0.3, ascent_s=0.9, rest_s=0.3)]
    t, depth, truth = squat_profile(reps, lead_s=1.0, tail_s=1.0)
    a = analyse_trial(table_from_depth(t, depth, noise_deg=0.4), "squats1", settings(), leg_length_m=LEG_M)
    assert a.activity == "squats"
    sq = a.squats
    assert [r.status for r in sq.reps] == ["full", "full", "partial", "full"], sq.to_json()["notes"]
    assert len(sq.counted()) == 3 and not sq.segmentation.starts_mid_rep and not sq.segmentation.ends_mid_rep
    for rep, tr in zip(sq.reps, truth):
        assert rep.knee_flexion_peak_r_deg == pytest.approx(KNEE_R_DEG * tr["depth"], abs=2.0)
        assert rep.knee_flexion_peak_l_deg == pytest.approx(KNEE_L_DEG * tr["depth"], abs=2.0)
        assert rep.hip_flexion_peak_r_deg == pytest.approx(90 * tr["depth"], abs=2.0)
        assert rep.ankle_dorsiflexion_peak_r_deg == pytest.approx(30 * tr["depth"], abs=2.0)
        assert rep.hip_adduction_peak_r_deg == pytest.approx(3 * tr["depth"] - 2, abs=0.3)
        assert rep.hip_abduction_peak_r_deg == pytest.approx(2.0, abs=0.3)  # adduction -2 standing = 2 abduction
        assert rep.hip_abduction_peak_l_deg == pytest.approx(4 * tr["depth"], abs=0.3)
        assert rep.pelvis_tilt_at_bottom_deg == pytest.approx(-25 * tr["depth"], abs=1.0)
        assert rep.lumbar_extension_at_bottom_deg == pytest.approx(-10 * tr["depth"], abs=0.5)
        assert rep.depth_cm == pytest.approx(100 * DROP_M * tr["depth"], abs=1.0)
        assert rep.depth_pct_leg == pytest.approx(100 * DROP_M * tr["depth"] / LEG_M, abs=1.5)
        # the right knee flexes 10 % further: positive asymmetry, (110 - 100) / 105
        assert rep.knee_flexion_asymmetry_pct == pytest.approx(100 * 10 / 105, abs=2.5)
        assert rep.start_s == pytest.approx(tr["start_s"], abs=0.25) and rep.end_s == pytest.approx(tr["end_s"], abs=0.25)
        assert rep.bottom_s == pytest.approx(tr["bottom_s"], abs=tr["pause_s"] / 2 + 0.1)
        assert rep.pause_s == pytest.approx(tr["pause_s"], abs=0.25)
        assert rep.descent_s + rep.pause_s + rep.ascent_s == pytest.approx(rep.end_s - rep.start_s, abs=1e-6)
    assert sq.reps[1].descent_s == pytest.approx(0.8, abs=0.3) and sq.reps[1].ascent_s == pytest.approx(1.2, abs=0.3)
    stats = sq.session_stats()
    assert stats["knee_flexion_peak_r_deg"]["n"] == 3, "session means are over the full repetitions"
    assert stats["knee_flexion_peak_r_deg"]["mean"] == pytest.approx(KNEE_R_DEG * (1 + 0.9 + 1) / 3, abs=2.0)
    assert stats["knee_flexion_peak_r_deg"]["sd"] > 0
    k = a.key_numbers()
    assert k["reps"] == 3 and k["reps_partial"] == 1 and k["knee_flexion_asymmetry_pct"] > 0
    assert "3 reps (1 partial, 0 cut)" in a.message()


def test_left_deeper_gives_negative_asymmetry():
    assert asymmetry_index(110.0, 100.0, 10.0) == pytest.approx(100 * 10 / 105)
    assert asymmetry_index(100.0, 110.0, 10.0) == pytest.approx(-100 * 10 / 105)
    assert asymmetry_index(3.0, 1.0, 10.0) is None and asymmetry_index(None, 50.0, 10.0) is None


def test_a_trial_cut_mid_rep_reports_the_cut_reps_and_counts_the_rest():
    reps = [dict(depth=1.0, descent_s=1.0, pause_s=0.5, ascent_s=1.0, rest_s=1.0) for _ in range(4)]
    t, depth, truth = squat_profile(reps, lead_s=1.0, tail_s=1.0)
    keep = (t > truth[0]["start_s"] + 1.2) & (t < truth[3]["start_s"] + 0.7)  # starts in the 1st pause, ends in the 4th descent
    t, depth = t[keep] - t[keep][0], depth[keep]
    a = analyse_trial(table_from_depth(t, depth), "Squat_cut", settings())
    sq = a.squats
    assert [r.status for r in sq.reps] == ["cut_start", "full", "full", "cut_end"]
    assert len(sq.counted()) == 2 and sq.segmentation.starts_mid_rep and sq.segmentation.ends_mid_rep
    assert sq.reps[0].descent_s is None and sq.reps[-1].ascent_s is None
    assert a.key_numbers()["reps_cut"] == 2


def test_a_bouncing_pause_at_the_bottom_is_one_rep():
    reps = [dict(depth=1.0, descent_s=1.0, pause_s=2.0, ascent_s=1.0, rest_s=1.0) for _ in range(2)]
    t, depth, truth = squat_profile(reps, lead_s=1.0, tail_s=1.0)
    bottom = depth > 0.99
    depth = depth - bottom * 0.06 * (0.5 - 0.5 * np.cos(2 * np.pi * 2.0 * t))  # 2.4 cm, 2 Hz bounce at the bottom
    a = analyse_trial(table_from_depth(t, depth, noise_deg=0.5, seed=3), "squats", settings())
    assert [r.status for r in a.squats.reps] == ["full", "full"]
    assert all(r.pause_s > 1.0 for r in a.squats.reps)


def test_empty_frames_are_skipped_and_flagged_never_a_crash():
    reps = [dict(depth=1.0, descent_s=1.0, pause_s=0.0, ascent_s=1.0, rest_s=1.0) for _ in range(3)]
    t, depth, truth = squat_profile(reps, lead_s=1.0, tail_s=1.0)
    table = table_from_depth(t, depth)
    v = table.values
    names = table.names
    near = lambda tt, half: np.abs(t - tt) < half
    v[near(truth[0]["bottom_s"], 0.15), names.index("knee_angle_l")] = np.nan  # the left knee unseen at the 1st bottom
    v[near(truth[1]["bottom_s"], 0.2), names.index("pelvis_ty")] = np.nan  # pelvis unseen at the 2nd bottom
    v[near(truth[2]["start_s"] + 1.0, 1.5), names.index("ankle_angle_l")] = np.nan  # the 3rd rep without left ankle
    v[:, names.index("pelvis_list")] = np.nan  # a coordinate never seen
    v[:5, :] = np.nan  # IK left the first frames empty altogether
    a = analyse_trial(table, "squats", settings(max_gap_s=0.3))
    sq = a.squats
    assert [r.status for r in sq.reps] == ["full"] * 3
    r1, r2, r3 = sq.reps
    # the left knee's peak was not seen: not measured, no asymmetry, not in the session mean
    assert "knee_angle_l empty" in r1.flags and "peaks not measured" in r1.flags
    assert r1.knee_flexion_peak_l_deg is None and r1.knee_flexion_asymmetry_pct is None
    assert r1.hip_flexion_peak_l_deg == pytest.approx(86, abs=0.5) and r1.hip_flexion_asymmetry_pct > 0
    assert sq.session_stats()["knee_flexion_peak_l_deg"]["n"] == 2
    assert r1.knee_flexion_peak_r_deg == pytest.approx(KNEE_R_DEG, abs=0.5)
    assert 100 * DROP_M - 6 < r2.depth_cm < 100 * DROP_M and "pelvis_ty empty in" in r2.flags  # deepest frames unseen
    assert r2.knee_flexion_peak_r_deg == pytest.approx(KNEE_R_DEG, abs=0.5)
    assert r3.ankle_dorsiflexion_peak_l_deg is None and r3.ankle_dorsiflexion_asymmetry_pct is None
    assert "ankle_angle_l empty in" in r3.flags
    doc = a.to_json()
    json.dumps(doc, allow_nan=False)  # no NaN anywhere in analysis.json
    assert doc["coordinates"]["pelvis_list"]["valid_share"] == 0.0 and doc["coordinates"]["pelvis_list"]["max"] is None
    assert any(f.startswith("pelvis_list: ") for f in a.flags)
    # a whole trial empty: no reps, no crash
    empty = CoordinateTable(t, names, np.full_like(v, np.nan))
    e = analyse_trial(empty, "squats", settings())
    assert e.squats.reps == [] and "0 reps" in e.message()
    json.dumps(e.to_json(), allow_nan=False)


def test_long_gap_in_pelvis_height_flags_the_rep_as_uncertain():
    reps = [dict(depth=1.0, descent_s=1.0, pause_s=0.0, ascent_s=1.0, rest_s=1.0) for _ in range(2)]
    t, depth, truth = squat_profile(reps, lead_s=1.0, tail_s=1.0)
    table = table_from_depth(t, depth)
    table.values[np.abs(t - truth[1]["bottom_s"]) < 0.4, table.names.index("pelvis_ty")] = np.nan
    a = analyse_trial(table, "squats", settings(max_gap_s=0.5))
    assert len(a.squats.reps) == 2 and "bounds uncertain" in a.squats.reps[1].flags and not a.squats.reps[0].flags


def test_standing_still_or_another_activity_gives_no_reps_but_range_of_motion():
    t = np.arange(0, 4, 1 / RATE_HZ)
    still = analyse_trial(table_from_depth(t, 0.02 * np.sin(t)), "squats", settings())
    assert still.squats.reps == [] and "below" in still.squats.segmentation.notes[0]
    walk_depth = 0.5 - 0.5 * np.cos(2 * np.pi * t)
    w = analyse_trial(table_from_depth(t, walk_depth), "walk_fast", settings())
    assert w.activity == "walking" and w.squats is None
    knee = {c.coordinate: c for c in w.coordinates}["knee_angle_r"]
    assert knee.range == pytest.approx(KNEE_R_DEG, abs=0.1) and knee.time_of_max_s == pytest.approx(0.5, abs=0.02)
    assert "walking: range of motion" in w.message()
    forced = analyse_trial(table_from_depth(t, walk_depth), "trial3", settings(activity="squats"))
    assert forced.activity == "squats" and forced.activity_source == "analyse.activity" and len(forced.squats.reps) >= 3
    assert [activity_from_name(n) for n in ("Squats_2", "sts1", "dropjump", "gait", "static_x", "x")] == \
        ["squats", "sit_to_stand", "jump", "walking", "other", "other"]


def test_pelvis_angles_are_relative_to_the_subjects_heading():
    t = np.arange(0, 3, 1 / RATE_HZ)
    n = len(t)
    tilt = np.radians(-20 * (0.5 - 0.5 * np.cos(2 * np.pi * t / 3)))
    lst = np.radians(3 * np.sin(2 * np.pi * t))
    rot = np.radians(5 * np.sin(2 * np.pi * t / 1.5))
    R_subject = pelvis_matrices(tilt, lst, rot)
    assert np.allclose(np.stack(zxy_angles(R_subject)), np.stack([tilt, lst, rot]))
    # The board faced elsewhere: the world is turned 90 deg about the vertical from the subject's view.
    turn = _rot("y", np.array([np.radians(-90)]))[0]
    world = np.stack(zxy_angles(turn @ R_subject), axis=1)
    assert np.degrees(world[:, 2]).mean() == pytest.approx(-90, abs=1), "pelvis_rotation reads -90 deg in the world frame"
    pos_subject = np.stack([0.1 * t, np.full(n, 0.9), np.zeros(n)], axis=1)  # walks forward 0.1 m/s
    pos_world = pos_subject @ turn.T
    names = ["pelvis_tilt", "pelvis_list", "pelvis_rotation", "pelvis_tx", "pelvis_ty", "pelvis_tz", "knee_angle_r"]
    values = np.column_stack([world, pos_world, np.radians(40 * np.ones(n))])
    values[10:20, :3] = np.nan  # empty frames stay empty
    rel, heading = relative_to_heading(CoordinateTable(t, names, values))
    # the median heading of the forward axis: -90 deg, up to how rotation and tilt combine
    assert heading.median_world_deg == pytest.approx(-90, abs=0.5)
    ok = np.isfinite(rel.column("pelvis_tilt"))
    assert ok.sum() == n - 10
    for name, truth in (("pelvis_tilt", tilt), ("pelvis_list", lst), ("pelvis_rotation", rot)):
        assert np.allclose(rel.column(name)[ok], truth[ok], atol=np.radians(0.5)), name
    d = np.radians(heading.median_world_deg + 90)  # exactly: the subject's frame turned by what is left
    exact = np.stack(zxy_angles(_rot("y", np.array([-d]))[0] @ R_subject), axis=1)
    assert np.allclose(np.column_stack([rel.column(n) for n in names[:3]])[ok], exact[ok], atol=1e-9)
    assert np.allclose(rel.column("pelvis_tx"), 0.1 * t * np.cos(d), atol=1e-9)
    assert np.allclose(rel.column("pelvis_tz"), 0.1 * t * np.sin(d), atol=1e-9)
    assert np.allclose(rel.column("knee_angle_r"), np.radians(40)), "joint angles are not touched"
    assert np.nanmax(np.abs(heading.relative_deg)) == pytest.approx(5, abs=0.6)
    # near +-180 deg the median does not jump across the wrap
    turn = _rot("y", np.array([np.radians(179)]))[0]
    rel, heading = relative_to_heading(CoordinateTable(t, names[:3], np.stack(zxy_angles(turn @ R_subject), axis=1)))
    assert heading.median_world_deg == pytest.approx(179, abs=0.5)
    assert np.allclose(rel.column("pelvis_rotation"), rot, atol=np.radians(0.5))


def test_outputs_open_in_pandas_and_angles_csv_round_trips(tmp_path):
    reps = [dict(depth=d, descent_s=1.0, pause_s=0.2, ascent_s=1.0, rest_s=1.0) for d in (1.0, 0.95, 0.4)]
    t, depth, truth = squat_profile(reps, lead_s=1.0, tail_s=1.0)
    table = table_from_depth(t, depth)
    table.values[50:60, table.names.index("knee_angle_l")] = np.nan
    a = analyse_trial(table, "squats", settings(), leg_length_m=LEG_M)
    out = tmp_path / "analyse"
    write_analysis(a, out, load_defaults()["analyse"], plot=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    sheets = pd.read_excel(out / "analysis.xlsx", sheet_name=None)
    assert list(sheets) == ["reps", "summary", "angles"]
    assert len(sheets["reps"]) == 3 and list(sheets["reps"]["status"]) == ["full", "full", "partial"]
    assert sheets["reps"]["knee_flexion_peak_r_deg"].iloc[0] == pytest.approx(KNEE_R_DEG, abs=0.5)
    summary = sheets["summary"].set_index("quantity")
    assert summary.loc["reps_full", "mean"] == 2 and summary.loc["knee_angle_r", "range"] == pytest.approx(KNEE_R_DEG, abs=0.1)
    angles = pd.read_csv(out / "angles.csv")
    assert list(angles.columns) == ["time_s"] + [n for n in table.names if not n.endswith(("_tx", "_ty", "_tz"))]
    expect = angles_frame(a)
    assert np.allclose(angles.to_numpy(), expect.to_numpy(), equal_nan=True, atol=1e-6)
    assert angles["knee_angle_l"].isna().sum() == 10 and angles["knee_angle_r"].max() == pytest.approx(KNEE_R_DEG, abs=0.01)
    assert np.allclose(sheets["angles"].to_numpy(dtype=float), expect.to_numpy(), equal_nan=True, atol=1e-6)
    reps_csv = pd.read_csv(out / "reps.csv")
    assert len(reps_csv) == 3 and list(reps_csv.columns) == list(reps_frame(a).columns)
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["squats"]["reps_full"] == 2 and doc["settings"]["partial_share"] == 0.7
    # a trial with no repetitions still writes a reps table (header only)
    w = analyse_trial(table, "walk", settings())
    write_analysis(w, tmp_path / "w", {}, plot=False)
    assert len(pd.read_csv(tmp_path / "w" / "reps.csv")) == 0


def test_analyse_settings_are_range_checked():
    defaults = load_defaults()
    AnalyseSettings.from_dict(defaults["analyse"], "analyse")  # every setting the code reads is in config.yaml
    for key, bad in (("partial_share", 1.5), ("activity", "yoga"), ("smooth_hz", 0), ("standing_share", 1.0)):
        with pytest.raises(ConfigError, match=f"analyse.{key}"):
            apply_overrides(defaults, [("--set", {"analyse": {key: bad}})])


@pytest.mark.slow
def test_analyse_stage_counts_the_synthetic_sessions_three_squats(tmp_path):
    from demo.make_demo_session import TRIALS
    from demo.synthetic_session import make_pose2d_session
    from pipeline.orchestrate import run_session

    synth = make_pose2d_session(tmp_path / "s", cameras=2, seed=1)
    run = run_session(synth.root, show_progress=False)
    status = {(o.trial, o.stage): o.status for o in run.outcomes}
    assert status[("squats", "analyse")] == "done" and status[("static", "analyse")] == "n/a"
    assert status[("squats", "report")] == "done"
    out = synth.root / "output" / "squats" / "analyse"
    assert all((out / name).is_file() for name in OUTPUTS)
    doc = json.loads((out / "analysis.json").read_text())
    sq = doc["squats"]
    assert TRIALS["squats"]["squats"] == 3
    assert sq["reps_full"] == 3 and sq["reps_partial"] == 0 and sq["reps_cut"] == 0, sq
    # The demo's squat: 105 deg knee flexion at depth, one every 5/3 s after 1 s standing (true clock);
    # the .mot's clock starts with the reference phone, start_s[ref] later on the true clock.
    mot = read_mot(synth.root / "output" / "squats" / "ik" / "squats.mot")
    period = (TRIALS["squats"]["seconds"] - 2.0) / 3
    true_bottoms = 1.0 + period * (np.arange(3) + 0.5)
    bottoms = np.array([r["bottom_s"] for r in sq["reps"]])
    shift = np.median(true_bottoms - bottoms)
    assert min(abs(shift - s) for s in synth.start_s.values()) < 0.1, (shift, synth.start_s)
    assert np.allclose(bottoms + shift, true_bottoms, atol=0.1)
    for r in sq["reps"]:
        for side in "rl":
            peak = r[f"knee_flexion_peak_{side}_deg"]
            # seed 1 loses the left knee in both phones around the 2nd bottom: that peak is not measured
            assert peak == pytest.approx(105, abs=8) if peak is not None else "peaks not measured" in r["flags"]
        assert r["end_s"] - r["start_s"] == pytest.approx(period, abs=0.4)
        assert 20 < r["depth_cm"] < 60 and r["depth_pct_leg"] is not None
    assert sum(r["knee_flexion_peak_l_deg"] is not None for r in sq["reps"]) >= 2
    manifest = json.loads((out / "_stage.json").read_text())
    assert manifest["summary"]["reps"] == 3 and manifest["message"].startswith("3 reps")
    assert set(manifest["made_from"]["upstream"]) == {"ik", "filter"}
    assert len(pd.read_csv(out / "angles.csv")) == len(mot.time_s)
    assert list(pd.read_excel(out / "analysis.xlsx", sheet_name=None)) == ["reps", "summary", "angles"]
