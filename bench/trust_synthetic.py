"""Trust on realistic 2-phone sessions: do they complete as shipped, and what do the verdicts say?

Sessions from demo/synthetic_session.py: the demo subject (static + squats) seen by 2 virtual
portrait phones with the documented detector error model (2 px jitter, 2 % of keypoint-frames
missing in runs of 2-10, brief left/right swaps in 1 % of frames, 1 % outliers of 50-300 px).
Each session runs through IK with the shipped settings (keypoints.backend: json). For each one the
same session with perfect 2D (same phones, same seed) is run too, and the joint angles compared:
the knee/hip angle difference is what the detector errors cost after our gap handling.
Before issue 14's gap handling, 11 of 12 such sessions failed in `augment`.
Run: .venv/bin/python bench/trust_synthetic.py [--sessions 12] [--cameras 2]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from biomech.mot import read_mot
from demo.synthetic_session import ErrorModel, make_pose2d_session
from pipeline.orchestrate import run_session

COORDS = ("knee_angle_r", "knee_angle_l", "hip_flexion_r", "hip_flexion_l")


def angle_difference(ours: Path, ref: Path) -> dict[str, float]:
    """Mean absolute difference (deg) per coordinate on common times (nan frames skipped)."""
    a, b = read_mot(ours), read_mot(ref)
    out = {}
    for c in COORDS:
        va = np.interp(b.time_s, a.time_s, a.column(c), left=np.nan, right=np.nan)
        d = np.degrees(np.abs(va - b.column(c)))
        out[c] = round(float(np.nanmean(d)), 2) if np.isfinite(d).any() else None
    return out


def sync_error_ms(root: Path, synth, trial: str) -> float | None:
    """Largest error (ms) of the sync offsets against the phones' true start times."""
    path = root / "output" / trial / "sync" / "sync.json"
    if not path.is_file():
        return None
    cams = json.loads(path.read_text())["cameras"]
    start = synth.start_s  # camera -> true time of its frame 0 (the same in every trial)
    names = list(cams)
    return round(max(abs(cams[c]["offset_s"] - (start[c] - start[names[0]])) for c in names) * 1000, 1)


def one(root: Path, seed: int, cameras: int, errors: ErrorModel) -> dict:
    synth = make_pose2d_session(root, cameras=cameras, seed=seed, errors=errors)
    t0 = time.perf_counter()
    run = run_session(root, show_progress=False)
    status = {(o.trial, o.stage): o.status for o in run.outcomes}
    out = root / "output" / "squats"
    row = {"seed": seed, "seconds": round(time.perf_counter() - t0, 1), "exit": run.exit_code,
           "completed": all(status.get(("squats", s)) in ("done", "up to date") for s in ("augment", "ik"))
           and status.get(("static", "scale")) in ("done", "up to date"),
           "failed": [f"{o.trial}/{o.stage}: {o.message[:120]}" for o in run.outcomes if o.status == "FAILED"],
           "verdict": {t: v.level for t, v in run.verdicts.items()},
           "reasons": {t: v.reasons for t, v in run.verdicts.items() if v.reasons}}
    v = run.verdicts["squats"].numbers
    row.update(span_share=v.get("span_share"), bridged_share=v.get("bridged_frame_share"),
               ik_rms_mm=v.get("ik_marker_rms_mm"), sync_confidence=v.get("sync_confidence"),
               sync_error_ms=sync_error_ms(root, synth, "squats"))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=12)
    ap.add_argument("--cameras", type=int, default=2)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.sessions):
            row = one(Path(tmp) / f"s{seed}", seed, args.cameras, ErrorModel())
            ref = one(Path(tmp) / f"p{seed}", seed, args.cameras, ErrorModel.perfect())
            mots = [Path(tmp) / f"{k}{seed}" / "output" / "squats" / "ik" / "squats.mot" for k in ("s", "p")]
            row["angle_mae_vs_perfect_deg"] = angle_difference(*mots) if all(m.is_file() for m in mots) else None
            row["perfect_verdict"] = ref["verdict"]
            rows.append(row)
            print(f"seed {seed}: completed {row['completed']}, verdict {row['verdict']}, {row['seconds']} s", flush=True)
    print(f"\n{args.cameras} phones, realistic detector errors, shipped settings")
    print(f"{'seed':>4}  {'done':>5}  {'static':>9}  {'squats':>9}  {'span':>5}  {'bridged':>7}  {'IK mm':>6}  "
          f"{'sync r':>6}  {'sync err ms':>11}  {'knee R/L, hip R/L MAE vs perfect 2D (deg)':<44}")
    for r in rows:
        mae = r["angle_mae_vs_perfect_deg"] or {}
        print(f"{r['seed']:>4}  {str(r['completed']):>5}  {r['verdict'].get('static', ''):>9}  "
              f"{r['verdict'].get('squats', ''):>9}  {r['span_share'] or 0:>5.2f}  {r['bridged_share'] or 0:>7.2f}  "
              f"{r['ik_rms_mm'] or float('nan'):>6.1f}  {r['sync_confidence'] or float('nan'):>6.2f}  "
              f"{r['sync_error_ms'] if r['sync_error_ms'] is not None else float('nan'):>11.1f}  " + " / ".join(f"{mae.get(c) or float('nan'):.1f}" for c in COORDS))
    done = sum(r["completed"] for r in rows)
    print(f"\ncompleted through IK: {done} of {len(rows)}")
    for r in rows:
        for t, reasons in r["reasons"].items():
            for why in reasons:
                print(f"  seed {r['seed']} {t}: {why}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "trust_synthetic.json").write_text(json.dumps({"cameras": args.cameras, "sessions": rows}, indent=2))
    print(f"written {out / 'trust_synthetic.json'}")


if __name__ == "__main__":
    main()
