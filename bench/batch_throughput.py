"""Batch throughput: sessions per hour on this machine with the local engine and with the Ray engine
(`app.py batch ROOT --engine ray`, a local Ray cluster), the Ray engine's overhead, and a projection
for clusters of N CPU nodes and M GPU nodes from the measured per-stage times.

Sessions are copies of the embedded demo session (2 phones, a static trial and a squat trial). Steps:

1. profile: one session through the local engine with one detection worker, so each stage's time in its
   manifest is the CPU time it needs (core-seconds); the keypoints stage is the work a GPU node takes over;
2. ``--sessions`` copies through ``app.py batch`` with each engine, timed from the command's start to its
   end (process start, imports, the local Ray cluster's start and stop included); the angle files of both
   must be byte-identical;
3. the Ray cluster's own cost: ``ray.init`` + ``ray.shutdown`` with no tasks;
4. the projection. Measured here: the per-session core-seconds W (W_det of them in the keypoints stage)
   and the Ray run's efficiency e = sessions x W / (wall x cores), the share of this machine's core time
   that went into the product's work. Projected: a cluster of C cores in all runs 3600 e C / W sessions
   per hour; with GPU nodes, detection leaves the CPUs, so at most 3600 e C / (W - W_det), if the GPUs
   keep up: each must then detect the frames/s printed (not measured here when no GPU was lent; compare
   with bench/detection_speed.py on a GPU machine). Nodes have ``--cores-per-node`` cores.

Writes bench/results/batch_throughput.json (--quick, the CI size, 2 sessions: batch_throughput_quick.json).
Run: .venv/bin/python bench/batch_throughput.py [--quick] [--sessions N] [--cores-per-node 16]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo import copy_demo_session

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def copy_demo(dest: Path) -> Path:
    return copy_demo_session(dest, true_cameras=True)


def timed_app(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    return time.perf_counter() - t0, res


def stage_seconds(session: Path) -> dict[str, float]:
    """Stage -> seconds over all trials, from the manifests of a run."""
    out: dict[str, float] = {}
    for m in sorted((session / "output").glob("*/*/_stage.json")):
        rec = json.loads(m.read_text())
        out[rec["stage"]] = out.get(rec["stage"], 0.0) + float(rec["seconds"])
    return out


def frames_per_session(session: Path) -> int:
    total = 0
    for f in (session / "output").glob("*/frames/frames.json"):
        total += sum(int(c["frames"]) for c in json.loads(f.read_text())["cameras"].values())
    return total


def angle_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.mot")) if ".stale" not in str(p)}


def ray_start_stop_s() -> float:
    from pipeline.batch_ray import LOOPBACK_ONLY_ENV

    os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")  # as the batch command's local cluster: loopback only
    import ray

    t0 = time.perf_counter()
    ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False, logging_level="ERROR")
    ray.shutdown()
    return time.perf_counter() - t0


def projection(work_s: float, det_s: float, efficiency: float, frames: int, cores_per_node: int) -> list[dict]:
    rows = []
    for cpu_nodes in (1, 4, 16):
        for gpu_nodes in (0, 1, 4):
            cores = (cpu_nodes + gpu_nodes) * cores_per_node
            per_session = work_s - det_s if gpu_nodes else work_s
            per_hour = 3600 * efficiency * cores / per_session
            need_fps = per_hour * frames / 3600 / gpu_nodes if gpu_nodes else None
            rows.append({"cpu_nodes": cpu_nodes, "gpu_nodes": gpu_nodes, "cores": cores,
                         "sessions_per_hour": per_hour, "gpu_fps_needed_each": need_fps})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI size: 2 sessions")
    ap.add_argument("--sessions", type=int, default=None, help="sessions per batch (default 4; --quick 2)")
    ap.add_argument("--cores-per-node", type=int, default=16, help="cores of each node in the projection")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if importlib.util.find_spec("ray") is None:  # not imported here: the local cluster's loopback switch is read at import
        print("batch_throughput: Ray is not installed (make venv-ray); skipped")
        return 0
    n = args.sessions or (2 if args.quick else 4)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        tmp = Path(tmp)
        prof = copy_demo(tmp / "profile" / "s")
        prof_wall, res = timed_app("run", str(prof), "--no-progress", "--set", "keypoints.workers=1")
        if res.returncode != 0:
            print(res.stdout[-2000:], res.stderr[-2000:])
            return 1
        stages = stage_seconds(prof)
        work_s, det_s = sum(stages.values()), stages.get("keypoints", 0.0)
        frames = frames_per_session(prof)
        walls, outputs = {}, {}
        for engine in ("local", "ray"):
            root = tmp / engine
            for i in range(n):
                copy_demo(root / f"s{i}")
            walls[engine], res = timed_app("batch", str(root), "--engine", engine, "--no-progress")
            if res.returncode != 0:
                print(res.stdout[-2000:], res.stderr[-2000:])
                return 1
            outputs[engine] = angle_files(root)
        identical = outputs["local"] == outputs["ray"] and bool(outputs["local"])
        start_stop = ray_start_stop_s()
    per_hour = {e: 3600 * n / w for e, w in walls.items()}
    efficiency = n * work_s / (walls["ray"] * cores)
    proj = projection(work_s, det_s, efficiency, frames, args.cores_per_node)

    print(f"\nBatch throughput: {n} demo sessions (2 phones, static + squats, {frames} frames per session), "
          f"{cores} cores here\n")
    print("| engine | wall s | sessions/hour | s per session |")
    print("|---|---|---|---|")
    for e in ("local", "ray"):
        print(f"| {e} | {walls[e]:.1f} | {per_hour[e]:.0f} | {walls[e] / n:.1f} |")
    print(f"\nRay overhead: {walls['ray'] - walls['local']:+.1f} s on the batch ({100 * (walls['ray'] / walls['local'] - 1):+.0f} %); "
          f"a local cluster's start + stop alone: {start_stop:.1f} s. Angle files identical: {identical}.")
    print(f"Per session (one detection worker, core-seconds): {work_s:.1f} s of stages, {det_s:.1f} s of them in keypoints "
          f"(2D detection); the profile run took {prof_wall:.1f} s end to end.")
    print("  " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])))
    print(f"Ray efficiency here: e = {efficiency:.2f} (share of the cores' time spent on stages)\n")
    print(f"Projection ({args.cores_per_node} cores per node, e = {efficiency:.2f}; GPU rows: an upper bound that holds "
          "only if each GPU detects at the frames/s given, not measured here)\n")
    print("| CPU nodes | GPU nodes | cores | sessions/hour | GPU frames/s needed, each |")
    print("|---|---|---|---|---|")
    for r in proj:
        need = f"{r['gpu_fps_needed_each']:.0f}" if r["gpu_fps_needed_each"] else "-"
        print(f"| {r['cpu_nodes']} | {r['gpu_nodes']} | {r['cores']} | {r['sessions_per_hour']:.0f} | {need} |")
    out = args.out or RESULTS / ("batch_throughput_quick.json" if args.quick else "batch_throughput.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "sessions": n, "cores": cores, "frames_per_session": frames, "wall_s": walls, "sessions_per_hour": per_hour,
        "ray_start_stop_s": start_stop, "angle_files_identical": identical, "stage_core_seconds": stages,
        "work_s": work_s, "detection_s": det_s, "ray_efficiency": efficiency, "projection": proj,
        "cores_per_node": args.cores_per_node}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
