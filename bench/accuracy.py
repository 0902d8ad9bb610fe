"""End-to-end accuracy against motion capture: simulated phone sessions of real lab trials, run through
the pipeline exactly as shipped, compared with (a) our model solved on the same mocap markers and
(b) the lab's own reference IK.

Sessions: bench/lab_sessions.py (the shared Subject 4 trials, the lab model's keypoints, our detector
error levels clean / moderate / realistic, 2-4 phones, seeds). Each runs with ``pipeline.orchestrate.
run_session`` and the shipped config.yaml. Our angles are put on the lab's clock with the reference
phone's true start time (no shift search: a sync error counts as error).

Per coordinate: MAE, RMSE, MAE with the mean offset removed, range (ROM) error. Augmented markers:
mean distance to the lab's real markers on the same landmark, raw and with each marker's mean offset
in its lab segment removed (what marker placement on the static trial absorbs).

Held out: the shipped augmenter weights say what they were trained on (models/weights/augmenter.json);
trials they were trained or tuned on are marked in the table and left out of the targets.

Prints tables, writes bench/results/accuracy.json and accuracy.png.
Run: python app.py bench accuracy [--quick] [--trials squats1,STS1] [--cameras 2,3] [--levels realistic]
     [--seeds 0] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from bench.lab_sessions import (HEIGHT_M, HELD_OUT, MASS_KG, S4, STATIC, activity, in_body_frame, lab_marker_bodies,
                                lab_truth, make_lab_session)
from biomech.compare import compare_tables, side_mean
from sessions.settings import Settings
from biomech.landmarks import MOCAP_MARKERS, STUDY_MARKERS
from biomech.mocap import reference_angles
from biomech.mot import CoordinateTable, read_mot
from biomech.trc import read_trc
from models.augmenter import DEFAULT_WEIGHTS
from core.digest import file_sha256
from models.augmenter_validation import summarise as summarise_validation
from pipeline.scale import ik_marker_weights
from pipeline.compare import rotations_only

RESULTS = ROOT / "bench" / "results"
FLEXIONS = ("hip_flexion", "knee_angle", "ankle_angle")
# Every coordinate with a <= 5 deg target (against our model on the mocap markers).
TARGET_5 = ("pelvis_tilt", "pelvis_list", "pelvis_rotation", "hip_flexion_r", "hip_flexion_l", "hip_adduction_r",
            "hip_adduction_l", "hip_rotation_r", "hip_rotation_l", "knee_angle_r", "knee_angle_l", "ankle_angle_r",
            "ankle_angle_l", "lumbar_extension", "lumbar_bending", "lumbar_rotation")
REPORTED = ("subtalar_angle_r", "subtalar_angle_l", "mtp_angle_r", "mtp_angle_l")
DEFAULT_TRIALS = HELD_OUT
# Trials settings were tuned on (config.yaml ik.keypoint_weights was tried and scale.static_coordinate_weights chosen
# there): never counted as held out.
TUNED_ON = ("STSweakLegs1", "DJ2")
QUICK = {"trials": ("squats1",), "cameras": (2,), "levels": ("realistic",), "seeds": (0,)}


def trained_on(weights: Path = DEFAULT_WEIGHTS) -> list[str]:
    """Shared-data trials the augmenter ``weights`` were trained on (from their metadata)."""
    meta = Path(weights).with_suffix(".json")
    if not meta.is_file():
        return []
    return list(json.loads(meta.read_text()).get("data", {}).get("shared_trials", []))


def coordinate_errors(ours: CoordinateTable, ref: CoordinateTable) -> dict[str, dict]:
    """Per coordinate (deg): mae, rmse, mae_offset_removed, offset, rom_error, on the common frames."""
    cmp = compare_tables(rotations_only(ours), rotations_only(ref), max_shift_s=0.0)
    out = {}
    for j, c in enumerate(cmp.coordinates):
        e = cmp.ours[:, j] - cmp.ref[:, j]
        ok = np.isfinite(e)
        out[c.name] = {"mae": round(c.mae, 2), "rmse": round(c.rmse, 2),
                       "mae_offset_removed": round(float(np.mean(np.abs(e[ok] - e[ok].mean()))), 2),
                       "offset": round(c.offset, 2), "rom_error": round(c.rom_diff, 1), "frames": int(ok.sum())}
    return out


def lab_subtalar_limits_deg() -> dict[str, float]:
    """The lab model's clamped subtalar range (deg) per side: its IK cannot go past it (ours reports ranges,
    it does not enforce them)."""
    from bench.lab_sessions import _lab_model

    cs = _lab_model().getCoordinateSet()
    out = {}
    for side in ("r", "l"):
        c = cs.get(f"subtalar_angle_{side}")
        if c.get_clamped():
            out[side] = float(np.degrees(min(abs(c.getRangeMin()), abs(c.getRangeMax()))))
    return out


def ankle_where_lab_subtalar_free(ours: CoordinateTable, lab: CoordinateTable, limits_deg: dict[str, float],
                                  margin_deg: float = 1.0) -> dict[str, dict]:
    """Ankle angle against the lab's IK, per side, counting only the frames where the lab's subtalar angle is
    off its clamped limit. On the limit the lab's IK puts the foot's remaining rotation into its (oblique-axis)
    ankle, so there its ankle angle is not a free fit of the markers. Also the share of frames on the limit."""
    out = {}
    for side, limit in limits_deg.items():
        names = [f"ankle_angle_{side}", f"subtalar_angle_{side}"]
        cmp = compare_tables(rotations_only(ours), rotations_only(lab), max_shift_s=0.0, coordinates=names)
        idx = {c.name: j for j, c in enumerate(cmp.coordinates)}
        if set(names) - set(idx):
            continue
        e = cmp.ours[:, idx[names[0]]] - cmp.ref[:, idx[names[0]]]
        on_limit = np.abs(cmp.ref[:, idx[names[1]]]) >= limit - margin_deg
        free = np.isfinite(e) & ~on_limit
        out[names[0]] = {"mae_subtalar_free": round(float(np.mean(np.abs(e[free]))), 2) if free.any() else None,
                         "lab_subtalar_on_limit_share": round(float(np.mean(on_limit[np.isfinite(e)])), 3),
                         "frames": int(free.sum())}
    return out


# Movement phases for the per-phase errors, by the reference's mean knee flexion (deg): standing below
# PHASE_STANDING_KNEE_DEG, at depth from PHASE_DEPTH_SHARE of the trial's deepest knee (only in trials whose
# knee bends past PHASE_MIN_DEPTH_DEG; walking has no depth), in between "mid".
PHASE_STANDING_KNEE_DEG = 20.0
PHASE_DEPTH_SHARE = 0.7
PHASE_MIN_DEPTH_DEG = 60.0
PHASE_COORDINATES = ("pelvis_tilt", "lumbar_extension", "hip_flexion", "knee_angle", "ankle_angle")


def phase_errors(ours: CoordinateTable, ref: CoordinateTable) -> dict[str, dict]:
    """Mean signed error (ours - ref, deg, R/L mean for the sided ones) of the sagittal coordinates per movement
    phase (standing / mid / depth, from the reference's knee), with each phase's frame count and the reference's
    mean there. Where an error sits in the movement tells what causes it: a pelvis-lumbar split at depth, a
    standing posture the keypoints do not show, or a range compressed at both ends."""
    names = [n for c in PHASE_COORDINATES for n in ((c,) if c.startswith(("pelvis", "lumbar")) else (f"{c}_r", f"{c}_l"))]
    cmp = compare_tables(rotations_only(ours), rotations_only(ref), max_shift_s=0.0, coordinates=names)
    idx = {c.name: j for j, c in enumerate(cmp.coordinates)}
    if not {"knee_angle_r", "knee_angle_l"} <= set(idx):
        return {}
    knee = 0.5 * (cmp.ref[:, idx["knee_angle_r"]] + cmp.ref[:, idx["knee_angle_l"]])
    deepest = float(np.nanmax(knee))
    phases = {"standing": knee < PHASE_STANDING_KNEE_DEG}
    if deepest >= PHASE_MIN_DEPTH_DEG:
        phases["depth"] = knee >= PHASE_DEPTH_SHARE * deepest
        phases["mid"] = ~phases["standing"] & ~phases["depth"]
    else:
        phases["mid"] = ~phases["standing"]
    out = {}
    for phase, sel in phases.items():
        sel = sel & np.isfinite(knee)
        if not sel.any():
            continue
        row = {"frames": int(sel.sum())}
        for c in PHASE_COORDINATES:
            cols = [idx[n] for n in ((c,) if c in idx else (f"{c}_r", f"{c}_l")) if n in idx]
            if cols:
                e = cmp.ours[np.ix_(sel, cols)] - cmp.ref[np.ix_(sel, cols)]
                row[c] = {"error": round(float(np.nanmean(e)), 2), "ref": round(float(np.nanmean(cmp.ref[np.ix_(sel, cols)])), 1)}
        out[phase] = row
    return out


def marker_errors(markers_trc: Path, trial: str, start_s: float) -> dict:
    """Augmented markers against the lab's on the same landmark: mean distance (mm), raw and with each
    marker's mean offset in its lab segment's frame removed; per marker and over all."""
    ours = read_trc(markers_trc)
    lab = read_trc(S4 / "MarkerData" / f"{trial}.trc")
    truth = lab_truth(trial)
    bodies = lab_marker_bodies()
    by_landmark = {lm: name for name, lm in MOCAP_MARKERS.items()}
    raw, placed = {}, {}
    t = ours.time_s + start_s
    for study, lm in STUDY_MARKERS.items():
        lab_name = by_landmark.get(lm)
        if study not in ours.names or lab_name not in lab.names or lab_name not in bodies:
            continue
        true = np.stack([np.interp(t, lab.time_s, lab.positions_m[:, lab.names.index(lab_name), d], left=np.nan,
                                   right=np.nan) for d in range(3)], axis=1)
        diff = ours.positions_m[:, ours.names.index(study)] - true
        ok = np.all(np.isfinite(diff), axis=1)
        if ok.sum() < 10:
            continue
        raw[study] = float(1000 * np.mean(np.linalg.norm(diff[ok], axis=1)))
        b = truth.bodies.index(bodies[lab_name])
        rot = np.stack([np.stack([np.interp(t, truth.time_s, truth.rotations[:, b, u, v]) for v in range(3)], -1)
                        for u in range(3)], -2)
        local = in_body_frame(rot[ok], diff[ok])
        placed[study] = float(1000 * np.mean(np.linalg.norm(local - local.mean(axis=0), axis=1)))
    return {"raw_mm": round(float(np.mean(list(raw.values()))), 1) if raw else None,
            "offset_removed_mm": round(float(np.mean(list(placed.values()))), 1) if placed else None,
            "markers": len(raw), "per_marker_raw_mm": {k: round(v, 1) for k, v in raw.items()},
            "per_marker_offset_removed_mm": {k: round(v, 1) for k, v in placed.items()}}


class References:
    """Reference (a) per trial: our model solved on the lab's markers (scaled on static1), solved once."""

    def __init__(self, work: Path, config: dict):
        self.work, self.cache = work, {}
        self.weights = ik_marker_weights(Settings.from_config(config))

    def ours_on_mocap(self, trial: str) -> CoordinateTable:
        if trial not in self.cache:
            ref = reference_angles(S4 / "MarkerData" / f"{trial}.trc", S4 / "MarkerData" / f"{STATIC}.trc", HEIGHT_M,
                                   MASS_KG, self.work / "reference" / trial, weights=self.weights)
            self.cache[trial] = ref.table
        return self.cache[trial]


def run_one(work: Path, refs: References, trial: str, cameras: int, level: str, seed: int,
            config: dict | None = None) -> dict:
    from pipeline.orchestrate import run_session

    root = work / f"{trial}_{cameras}cam_{level}_s{seed}"
    made = make_lab_session(root, trial, cameras=cameras, level=level, seed=seed, config=config)
    t0 = time.perf_counter()
    run = run_session(root, show_progress=False)
    seconds = time.perf_counter() - t0
    row = {"trial": trial, "activity": activity(trial), "cameras": cameras, "level": level, "seed": seed,
           "pipeline_seconds": round(seconds, 1), "exit": run.exit_code,
           "verdict": {t: v.level for t, v in run.verdicts.items()},
           "failed": [f"{o.trial}/{o.stage}: {o.message[:160]}" for o in run.outcomes if o.status == "FAILED"]}
    mot = root / "output" / trial / "ik" / f"{trial}.mot"
    if not mot.is_file():
        return row
    sync = json.loads((root / "output" / trial / "sync" / "sync.json").read_text())
    # The pipeline's clock starts where every phone records (triangulate's common span, from 0): on the
    # lab's clock that is the latest phone's true start.
    start = max(made.start_s.values())
    ours = read_mot(mot)
    ours = replace(ours, time_s=ours.time_s + start)
    row["vs_ours_on_mocap"] = coordinate_errors(ours, refs.ours_on_mocap(trial))
    lab = read_mot(S4 / "IK" / f"{trial}_ik.mot")
    row["vs_lab_ik"] = coordinate_errors(ours, lab)
    row["vs_lab_ik_subtalar_free"] = ankle_where_lab_subtalar_free(ours, lab, lab_subtalar_limits_deg())
    row["phases_vs_ours_on_mocap"] = phase_errors(ours, refs.ours_on_mocap(trial))
    row["phases_vs_lab_ik"] = phase_errors(ours, lab)
    row["markers"] = marker_errors(root / "output" / trial / "augment" / "markers.trc", trial, start)
    row["sync_error_ms"] = round(1000 * max(abs(c["offset_s"] - (made.start_s[n] - made.start_s[sync["reference_camera"]])) for n, c in sync["cameras"].items()), 1)
    return row


def _mean(row: dict, ref: str, base: str, key: str = "mae") -> float | None:
    return side_mean(row.get(ref, {}), base, key)


def worst_target5(row: dict) -> tuple[str, float] | None:
    errs = {c: row["vs_ours_on_mocap"][c]["mae"] for c in TARGET_5 if c in row.get("vs_ours_on_mocap", {})}
    return max(errs.items(), key=lambda kv: kv[1]) if errs else None


def print_tables(rows: list[dict], held: set[str]) -> None:
    def f(v):
        return f"{v:6.1f}" if isinstance(v, (int, float)) else f"{'-':>6s}"

    print("\nMAE (deg), R/L mean. (a) = our model solved on the same mocap markers; (b) = the lab's reference IK; "
          "'/o' = mean offset removed; 'ank/f' = ankle (b) on the frames where the lab's subtalar is off its clamped limit "
          "(its share of frames on the limit: 'st@lim'). * = trial the augmenter was trained or the settings tuned on "
          "(not held out)")
    head = (f"{'trial':14s}{'activity':18s}{'cam':>4s}{'level':>10s} | {'hip(a)':>6s}{'knee':>6s}{'ankle':>6s}"
            f"{'pelvT':>6s}{'lumbE':>6s}{'worst<=5':>23s} | {'hip(b)':>6s}{'knee':>6s}{'ankle':>6s}{'ank/o':>6s}{'ank/f':>6s}{'st@lim':>7s}"
            f" | {'mk raw':>6s}{'mk/o':>6s}{'sync':>6s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        mark = "" if r["trial"] in held else "*"
        if "vs_ours_on_mocap" not in r:
            print(f"{r['trial'] + mark:14s}{r['activity']:18s}{r['cameras']:4d}{r['level']:>10s} | FAILED: {r['failed'][:1]}")
            continue
        w = worst_target5(r)
        print(f"{r['trial'] + mark:14s}{r['activity']:18s}{r['cameras']:4d}{r['level']:>10s} | "
              + "".join(f(_mean(r, "vs_ours_on_mocap", c)) for c in (*FLEXIONS, "pelvis_tilt", "lumbar_extension"))
              + f"{(w[0] + ' ' + format(w[1], '.1f')) if w else '-':>23s} | "
              + "".join(f(_mean(r, "vs_lab_ik", c)) for c in FLEXIONS) + f(_mean(r, "vs_lab_ik", "ankle_angle", "mae_offset_removed"))
              + f(_mean(r, "vs_lab_ik_subtalar_free", "ankle_angle", "mae_subtalar_free"))
              + f"{_mean(r, 'vs_lab_ik_subtalar_free', 'ankle_angle', 'lab_subtalar_on_limit_share') or 0:7.0%}"
              + " | " + f(r["markers"]["raw_mm"]) + f(r["markers"]["offset_removed_mm"]) + f(r["sync_error_ms"]))


def print_phases(rows: list[dict], held: set[str]) -> None:
    print("\nMean signed error per movement phase (ours - (a), deg, R/L mean; phase by the reference's knee: standing < "
          f"{PHASE_STANDING_KNEE_DEG:g}, depth >= {PHASE_DEPTH_SHARE:.0%} of the deepest; pelvis tilt positive backwards, "
          "lumbar extension positive backwards). * = not held out")
    short = {"pelvis_tilt": "pelvT", "lumbar_extension": "lumbE", "hip_flexion": "hip", "knee_angle": "knee", "ankle_angle": "ankle"}
    head = f"{'trial':14s}{'cam':>4s}{'level':>10s}" + "".join(
        f" | {p:>8s} " + "".join(f"{short[c]:>6s}" for c in PHASE_COORDINATES) for p in ("standing", "mid", "depth"))
    print(head)
    print("-" * len(head))
    for r in rows:
        ph = r.get("phases_vs_ours_on_mocap")
        if not ph:
            continue
        line = f"{r['trial'] + ('' if r['trial'] in held else '*'):14s}{r['cameras']:4d}{r['level']:>10s}"
        for p in ("standing", "mid", "depth"):
            v = ph.get(p)
            line += f" | {(str(v['frames']) + 'f') if v else '-':>8s} " + "".join(
                f"{v[c]['error']:+6.1f}" if v and c in v else f"{'-':>6s}" for c in PHASE_COORDINATES)
        print(line)


def reference_agreement(refs: "References", trials: list[str]) -> dict[str, dict]:
    """Per trial, (a) against (b): our model solved on the mocap markers against the lab's IK of the same
    markers. No video is involved, so this is how far apart the two references themselves are (joint
    definitions, neutral pose, marker fitting): where they disagree, no pipeline can be within the targets of
    both, and the simulated keypoints follow the lab's model."""
    return {t: coordinate_errors(refs.ours_on_mocap(t), read_mot(S4 / "IK" / f"{t}_ik.mot")) for t in trials}


def print_agreement(agreement: dict[str, dict]) -> None:
    print("\n(a) against (b) on the same mocap markers, no video (MAE deg, R/L mean; '/o' = mean offset removed):")
    head = f"{'trial':14s}" + "".join(f"{c.split('_')[0] + ' ' + k:>13s}" for c in (*FLEXIONS, "pelvis_tilt")
                                      for k in ("raw", "/o"))
    print(head)
    print("-" * len(head))
    for t, errs in agreement.items():
        row = {"vs": errs}
        print(f"{t:14s}" + "".join(f"{_mean(row, 'vs', c, k) or float('nan'):13.1f}" for c in (*FLEXIONS, "pelvis_tilt")
                                   for k in ("mae", "mae_offset_removed")))


def targets(rows: list[dict], held: set[str]) -> dict:
    """The issue's targets (2 phones, realistic errors, held-out trials), each with the measured worst case."""
    sel = [r for r in rows if r["cameras"] == 2 and r["level"] == "realistic" and r["trial"] in held and "vs_lab_ik" in r]
    clean = [r for r in rows if r["level"] == "clean" and r["trial"] in held and "vs_lab_ik" in r]

    def worst(rs, ref, bases, key="mae"):
        vals = [r[ref][f"{b}_{s}"][key] for r in rs for b in bases for s in ("r", "l") if f"{b}_{s}" in r[ref]]
        return round(max(vals), 2) if vals else None

    out = {
        "flexions_vs_ours_on_mocap_le_3": worst(sel, "vs_ours_on_mocap", FLEXIONS),
        "target5_vs_ours_on_mocap_le_5": round(max((worst_target5(r)[1] for r in sel), default=float("nan")), 2) if sel else None,
        "flexions_clean_vs_ours_on_mocap_le_2": worst(clean, "vs_ours_on_mocap", FLEXIONS),
        "flexions_vs_lab_ik_raw_le_5": worst(sel, "vs_lab_ik", FLEXIONS),
    }
    limits = {"flexions_vs_ours_on_mocap_le_3": 3, "target5_vs_ours_on_mocap_le_5": 5,
              "flexions_clean_vs_ours_on_mocap_le_2": 2, "flexions_vs_lab_ik_raw_le_5": 5}
    return {k: {"worst_mae_deg": v, "target_deg": limits[k], "met": (v is not None and v <= limits[k])} for k, v in out.items()}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "vs_lab_ik" in r]
    if not ok:
        return
    labels = [f"{r['trial']}\n{r['cameras']}cam {r['level']}" for r in ok]
    fig, axes = plt.subplots(2, 1, figsize=(min(18, max(8, 0.9 * len(ok))), 8), sharey=True)
    for ax, ref, title, limit in ((axes[0], "vs_ours_on_mocap", "(a) vs our model on the mocap markers", 3),
                                  (axes[1], "vs_lab_ik", "(b) vs the lab's reference IK (raw)", 5)):
        x = np.arange(len(ok))
        for k, c in enumerate(FLEXIONS):
            ax.bar(x + (k - 1) * 0.27, [_mean(r, ref, c) or 0 for r in ok], 0.27, label=c.replace("_", " "))
        ax.axhline(limit, color="k", ls="--", lw=1, label=f"target {limit} deg")
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_title(title + " - failed sessions are not drawn", fontsize=10)
        ax.set_ylabel("MAE (deg), right/left mean")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="app.py bench accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one trial, 2 phones, realistic (the CI size)")
    ap.add_argument("--trials", default=",".join(DEFAULT_TRIALS))
    ap.add_argument("--cameras", default="2,3")
    ap.add_argument("--levels", default="realistic,clean")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--keep", type=Path, default=None, help="keep the sessions in this folder")
    ap.add_argument("--out", type=Path, default=RESULTS / "accuracy.json")
    ap.add_argument("--weights", type=Path, default=None,
                    help="augmenter weights to measure instead of the shipped ones (a .pt with its .json)")
    ap.add_argument("--validation", type=Path, default=None, metavar="FILE",
                    help="also write the per-activity errors of the held-out trials (realistic level) for the session "
                         "report: models/weights/augmenter_validation.json for the shipped weights")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config.yaml setting for every simulated session, e.g. --set ik.keypoint_weights='{\"*\": 5}' "
                         "(repeatable; to measure an idea before it becomes the default)")
    args = ap.parse_args(argv)
    if not S4.is_dir():
        print(f"skipped: {S4} not present (the accuracy benchmark needs the shared mocap data)")
        return 0
    from sessions.config import apply_overrides, load_defaults, parse_set_args

    if args.quick:
        trials, cams, levels, seeds = (list(v) for v in QUICK.values())
    else:
        trials = [t for t in args.trials.split(",") if t]
        cams = [int(c) for c in args.cameras.split(",")]
        levels = [v for v in args.levels.split(",") if v]
        seeds = [int(s) for s in args.seeds.split(",")]
    weights = (args.weights or DEFAULT_WEIGHTS).resolve()
    trained = trained_on(weights)
    held = set(trials) - set(trained) - set(TUNED_ON)
    overrides = parse_set_args(args.set)
    if args.weights:
        overrides.setdefault("augment", {})["weights"] = str(weights)
    # the references use the same settings as the sessions (their IK marker weights)
    config = apply_overrides(load_defaults(), [("--set", overrides)]) if overrides else load_defaults()
    overrides = overrides or None
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        refs = References(work, config)
        for trial in trials:
            for level in levels:
                for n in (cams if level == "realistic" else cams[:1]):
                    for seed in seeds:
                        row = run_one(work, refs, trial, n, level, seed, config=overrides)
                        rows.append(row)
                        print(f"{trial} {n} phones {level} seed {seed}: {row['pipeline_seconds']} s, verdict "
                              f"{row['verdict'].get(trial)}", flush=True)
        agreement = reference_agreement(refs, trials)
    print_tables(rows, held)
    print_phases(rows, held)
    print_agreement(agreement)
    tg = targets(rows, held)
    print("\ntargets (2 phones, realistic, held-out trials):")
    for k, v in tg.items():
        print(f"  {k:42s} worst {v['worst_mae_deg']} deg  ({'met' if v['met'] else 'NOT met'})")
    total = round(time.perf_counter() - t0, 1)
    print(f"{len(rows)} sessions in {total} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"weights": str(weights.name if weights == DEFAULT_WEIGHTS.resolve() else weights), "trained_on": trained, "held_out": sorted(held),
                                    "seconds": total, "targets": tg, "rows": rows, "reference_agreement": agreement},
                                   indent=1) + "\n")
    plot(rows, args.out.with_suffix(".png"))
    print(f"written {args.out} and {args.out.with_suffix('.png')}")
    if args.validation:
        record = summarise_validation(rows, held, file_sha256(weights), config, time.strftime("%Y-%m-%d"))
        if not record["activities"]:
            print(f"not written: {args.validation}: no held-out trial at the realistic level was measured")
            return 1
        args.validation.parent.mkdir(parents=True, exist_ok=True)
        args.validation.write_text(json.dumps(record, indent=1) + "\n")
        print(f"written {args.validation} (activities: {', '.join(record['activities'])}"
              + (f"; failed, left out: {', '.join(record['failed'])}" if record["failed"] else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
