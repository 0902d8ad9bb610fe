"""End-to-end speed of the issue's reference trial on this machine: a real recording as a 10 s, 2-phone,
60 fps trial, run from scratch by ``app.py run`` in a fresh process, exactly as a user runs it.

The trial: cam01 and cam02 of the shared Pose2Sim demo (1080x1920, 60 fps, 100 frames each) played
forwards and backwards to 600 frames, with the lab's calibration (``make_real_two_phone``; the same
trial ``tests/test_real_two_phone.py`` runs). No static trial, so no scaling stage.

Rows: the shipped settings, and ``keypoints.people_search_s: 0`` (the second MediaPipe tracker searching
in every frame, as before that setting). Each is run ``--repeats`` times with the output folder removed
in between (the detection cache too), because this machine's speed varies from run to run; the table
gives the median and range of the wall time, the median of each stage's seconds, and the CPU time.

Prints a table, writes bench/results/trial_speed.json. Without ../shared it says so and exits 0.
Run: python -m bench.trial_speed [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
P2S = ROOT.parent / "shared" / "data" / "pose2sim-demo"
RESULTS = ROOT / "bench" / "results"
TRIAL_FRAMES, FPS = 600, 60.0
TARGET_S = 30.0  # the target for this trial on a 2-core CPU
STAGES = ("frames", "keypoints", "sync", "triangulate", "filter", "augment", "ik", "analyse", "report")
CONFIGS = {"shipped": [], "search every frame": ["--set", "keypoints.people_search_s=0"]}


def _ping_pong(src: Path, dst: Path, frames: int) -> None:
    """``src`` played forwards and backwards until ``frames`` frames, written as mp4 at 60 fps."""
    cap = cv2.VideoCapture(str(src))
    images = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        images.append(img)
    cap.release()
    order = images + images[-2:0:-1]
    h, w = images[0].shape[:2]
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    for i in range(frames):
        out.write(order[i % len(order)])
    out.release()


def make_real_two_phone(root: Path, frames: int = TRIAL_FRAMES) -> Path:
    """The 2-phone real session in ``root``: videos/squats/cam01.mp4, cam02.mp4, session.yaml and the
    lab's calibration as calibration/cameras.yaml. Needs ../shared/data/pose2sim-demo."""
    from calibration.camera import save_cameras
    from calibration.importers import import_cameras

    (root / "videos" / "squats").mkdir(parents=True, exist_ok=True)
    for cam in ("cam01", "cam02"):
        _ping_pong(P2S / "videos" / f"{cam}.mp4", root / "videos" / "squats" / f"{cam}.mp4", frames)
    (root / "session.yaml").write_text(yaml.safe_dump({
        "subject": {"id": "p2s", "height_m": 1.72, "mass_kg": 70.0, "sex": "m"},
        "cameras": [{"id": "cam01"}, {"id": "cam02"}], "trials": [{"name": "squats", "kind": "dynamic"}]}))
    (root / "calibration").mkdir(exist_ok=True)
    save_cameras(root / "calibration" / "cameras.yaml", import_cameras(P2S / "calibration" / "Calib.qca.txt"),
                 comment="imported from Calib.qca.txt")
    return root


def run_once(session: Path, extra: list[str]) -> dict:
    """``app.py run`` from scratch in a child process: wall and CPU seconds, each stage's seconds."""
    shutil.rmtree(session / "output", ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, str(ROOT / "app.py"), "run", str(session), "--no-progress", *extra],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads((session / "output" / "summary.json").read_text())
    stages = {o["stage"]: o["seconds"] for o in summary["outcomes"] if o["status"] == "done"}
    return {"exit": run.returncode, "wall_s": round(wall, 2),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
            "stages_s": stages, "verdict": summary["verdicts"]["squats"]["level"],
            "failed": [o["stage"] for o in summary["outcomes"] if o["status"] == "failed"]}


def summarise(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    return {"wall_median_s": round(float(np.median(walls)), 2), "wall_range_s": [min(walls), max(walls)],
            "cpu_median_s": round(float(np.median([r["cpu_s"] for r in runs])), 2),
            "stages_median_s": {s: round(float(np.median([r["stages_s"].get(s, 0.0) for r in runs])), 2) for s in STAGES},
            "runs": runs}


def table(results: dict[str, dict]) -> str:
    head = "| settings | wall s (median) | range | CPU s | " + " | ".join(STAGES) + " | outside stages |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        st = r["stages_median_s"]
        lines.append(f"| {name} | {r['wall_median_s']:.1f} | {r['wall_range_s'][0]:.1f}-{r['wall_range_s'][1]:.1f} | "
                     f"{r['cpu_median_s']:.0f} | " + " | ".join(f"{st[s]:.1f}" for s in STAGES)
                     + f" | {r['wall_median_s'] - sum(st.values()):.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.trial_speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per settings row (median and range reported)")
    ap.add_argument("--out", type=Path, default=RESULTS / "trial_speed.json")
    args = ap.parse_args(argv)
    if not (P2S / "videos" / "cam01.mp4").is_file():
        print(f"skipped: {P2S} is not here (the shared real videos)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        session = make_real_two_phone(Path(tmp) / "real2")
        results = {}
        for name, extra in CONFIGS.items():
            runs = []
            for k in range(args.repeats):
                print(f"{name}: run {k + 1} of {args.repeats} ...", flush=True)
                runs.append(run_once(session, extra))
                if runs[-1]["failed"]:
                    print(f"  failed stages: {runs[-1]['failed']}")
            results[name] = summarise(runs)
    print(f"\n10 s, 2 phones, 60 fps ({2 * TRIAL_FRAMES} frames), from scratch, {args.repeats} runs each; stages: median s")
    print(table(results))
    shipped = results["shipped"]["wall_median_s"]
    print(f"\ntarget: end to end <= {TARGET_S:.0f} s on this CPU: {shipped:.1f} s median "
          f"({'met' if shipped <= TARGET_S else 'NOT met'})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"trial": {"frames_per_camera": TRIAL_FRAMES, "cameras": 2, "fps": FPS},
                                    "target_s": TARGET_S, "repeats": args.repeats, "results": results}, indent=1) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
