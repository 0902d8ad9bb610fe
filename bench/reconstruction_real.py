"""3D reconstruction on real video: the 4 Pose2Sim demo videos through our own stages (frames,
MediaPipe keypoints, velocity sync, triangulate, filter) with the lab's Qualisys calibration.

Reports reprojection error (px), share triangulated, cameras used, and the coefficient of variation
(CV = SD / mean) of thigh (hip-knee) and shank (knee-ankle) lengths over the trial, raw triangulated
vs filtered: a rigid bone's length should not change, so its CV measures 3D jitter and bias
(the issue's target: under 5 %). Needs ../shared/data (prints "skipped" otherwise).
Run: .venv/bin/python bench/reconstruction_real.py
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
from biomech.trc import read_trc
from calibration.camera import save_cameras
from calibration.importers import read_qualisys
from core.keypoints import INDEX
from pipeline.orchestrate import run_session

DATA = ROOT.parent / "shared" / "data" / "pose2sim-demo"
CAMS = ["cam01", "cam02", "cam03", "cam04"]
SEGMENTS = {"thigh R": ("RHip", "RKnee"), "thigh L": ("LHip", "LKnee"), "shank R": ("RKnee", "RAnkle"),
            "shank L": ("LKnee", "LAnkle")}


def make_session(root: Path) -> None:
    (root / "videos" / "trial").mkdir(parents=True)
    for c in CAMS:
        shutil.copy(DATA / "videos" / f"{c}.mp4", root / "videos" / "trial" / f"{c}.mp4")
    (root / "calibration").mkdir()
    save_cameras(root / "calibration" / "cameras.yaml", read_qualisys(DATA / "calibration" / "Calib.qca.txt"),
                 comment="Pose2Sim demo, the lab's Qualisys calibration")
    (root / "session.yaml").write_text(yaml.safe_dump({
        "subject": {"id": "p2s", "height_m": 1.72, "mass_kg": 70.0, "sex": "m"},
        "cameras": [{"id": c} for c in CAMS], "trials": [{"name": "trial", "kind": "dynamic"}]}))


def lengths_cv(points: np.ndarray) -> dict[str, dict[str, float]]:
    """Per segment: mean length (mm) and CV (%) over frames where both ends exist. points: (frames, 20, 3) m."""
    out = {}
    for name, (a, b) in SEGMENTS.items():
        length = np.linalg.norm(points[:, INDEX[a]] - points[:, INDEX[b]], axis=-1)
        length = length[np.isfinite(length)]
        out[name] = {"mean_mm": round(1000 * float(length.mean()), 1), "cv_pct": round(100 * float(length.std() / length.mean()), 2)}
    return out


def main() -> int:
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p2s"
        make_session(root)
        t0 = time.time()
        run_session(root, overrides={"run": {"stages": ["frames", "keypoints", "sync", "triangulate", "filter"]}},
                    show_progress=False)
        seconds = time.time() - t0
        out = root / "output" / "trial"
        with np.load(out / "triangulate" / "points.npz") as z:
            raw, err, used = z["points_m"], z["error_px"], z["used"]
        filtered = read_trc(out / "filter" / "keypoints.trc").positions_m
        quality = json.loads((out / "filter" / "quality.json").read_text())
        sync = json.loads((out / "sync" / "sync.json").read_text())
        threshold = json.loads((out / "triangulate" / "_stage.json").read_text())["summary"]["outlier_px"]
    ok = np.isfinite(err)
    result = {
        "frames": int(len(raw)),
        "seconds_all_stages": round(seconds, 1),
        "sync_offsets_ms": {c: round(1000 * v["offset_s"], 2) for c, v in sync["cameras"].items()},
        "triangulated_share": round(float(ok.mean()), 4),
        "cameras_used_mean": round(float(used.sum(-1)[ok].mean()), 2),
        "outlier_threshold_px": threshold,
        "reprojection_px": {"mean": round(float(err[ok].mean()), 2), "median": round(float(np.median(err[ok])), 2),
                            "p95": round(float(np.percentile(err[ok], 95)), 2)},
        "gated_out": int(sum(k["gated_out"] for k in quality["keypoints"].values())),
        "cutoff_hz": quality["cutoff_hz"],
        "segments_raw": lengths_cv(raw),
        "segments_filtered": lengths_cv(filtered),
    }
    print(f"Pose2Sim demo, {result['frames']} frames, 4 cameras, lab calibration; all stages {result['seconds_all_stages']} s")
    print(f"triangulated {100 * result['triangulated_share']:.1f} %, cameras used {result['cameras_used_mean']}, "
          f"outlier threshold {threshold} px, reprojection px {result['reprojection_px']}, gated out {result['gated_out']}")
    print(f"{'segment':<8} {'raw mm':>7} {'raw CV %':>8} {'filt mm':>8} {'filt CV %':>9}")
    for name in SEGMENTS:
        r, f = result["segments_raw"][name], result["segments_filtered"][name]
        print(f"{name:<8} {r['mean_mm']:>7} {r['cv_pct']:>8} {f['mean_mm']:>8} {f['cv_pct']:>9}")
    dest = ROOT / "bench" / "results"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "reconstruction_real.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
