"""Video front-end benchmark on the real Pose2Sim demo videos (1080x1920 portrait, 60 fps, 4 phones).

Measures: decoding speed, MediaPipe detection speed (one process, and all cores over 4 videos),
the subject's detection rate per camera, and synchronisation: offsets found, and how well a known
change is recovered when k = 1..30 frames are cut from the start of one camera (keypoint level for
all k; video level, i.e. detection re-run on the cut video, for a few k) or a fractional delay is
applied by resampling. Writes bench/results/video_frontend.json and overlay images.
Run: .venv/bin/python bench/video_frontend.py   (skips without ../shared/data)
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
from pipeline.keypoints_detect import detect_video, search_every_frames
from pipeline.keypoints import read_keypoints_csv
from pipeline.orchestrate import run_session
from pipeline.keypoints_people import link_tracks
from pipeline.keypoints_swaps import fix_swaps
from pipeline.sync_offsets import speed_signal, synchronise
from core.video import iter_frames
from sessions.settings import default_settings

SETTINGS = default_settings()  # config.yaml's values, as the stages run with them

DATA = ROOT.parent / "shared" / "data" / "pose2sim-demo"
CAMS = ["cam01", "cam02", "cam03", "cam04"]
RESULTS = ROOT / "bench" / "results"


def decode_fps(video: Path, repeats: int = 3) -> float:
    n, t0 = 0, time.perf_counter()
    for _ in range(repeats):
        for _ in iter_frames(video):
            n += 1
    return n / (time.perf_counter() - t0)


def detect_fps(video: Path, max_people: int) -> float:
    t0 = time.perf_counter()
    cfg = SETTINGS.keypoints
    people = detect_video(str(video), max_people, cfg.min_detection_confidence, cfg.people_search_s)
    return len(people) / (time.perf_counter() - t0)


def cut_errors(data, signals, base, c: int, fps: float) -> list[float]:
    """|recovered - applied| change of camera c's offset, frames, for k = 1..30 frames cut."""
    t, kp = data[c]
    errs = []
    for k in range(1, 31):
        sigs = list(signals)
        sigs[c] = speed_signal(t[k:] - t[k], kp[k:], SETTINGS.sync, SETTINGS.sync.rate_hz)
        off = synchronise(sigs, SETTINGS.sync).offsets_s
        if c == 0:  # the reference itself was cut: every other camera's offset drops by k frames
            errs.append(float(np.max(np.abs((off[1:] - base[1:]) * fps + k))))
        else:
            errs.append(float(abs((off[c] - base[c]) * fps - k)))
    return errs


def frac_errors(data, signals, base, c: int, fps: float) -> list[float]:
    t, kp = data[c]
    errs = []
    for frac in (0.25, 0.5, 0.75):
        shifted = kp.copy()
        for j in range(kp.shape[1]):
            for a in range(2):
                shifted[:, j, a] = np.interp(t + frac / fps, t, kp[:, j, a], left=np.nan, right=np.nan)
        sigs = list(signals)
        sigs[c] = speed_signal(t, shifted, SETTINGS.sync, SETTINGS.sync.rate_hz)
        off = synchronise(sigs, SETTINGS.sync).offsets_s
        errs.append(float(abs((off[c] - base[c]) * fps - frac)) if c else float(np.max(np.abs((off[1:] - base[1:]) * fps + frac))))
    return errs


def video_cut_errors(videos: list[Path], data, signals, base, c: int, fps: float, ks=(5, 15, 30)) -> dict[int, float]:
    """Cut the video itself: detection starts at frame k with a fresh tracker."""
    from models.pose_mediapipe import MediaPipeDetector

    out = {}
    for k in ks:
        det = MediaPipeDetector(SETTINGS.keypoints.max_people, SETTINGS.keypoints.min_detection_confidence,
                                search_every_frames(SETTINGS.keypoints.people_search_s, fps))
        frames = [det(fr.image) for fr in iter_frames(videos[c]) if fr.index >= k]
        det.close()
        people = np.asarray(frames)
        tracks = link_tracks(people, SETTINGS.keypoints, 30)
        best = int(np.argmax(np.sum(tracks[..., 2] > 0, axis=(0, 2))))
        kp, _ = fix_swaps(tracks[:, best], SETTINGS.keypoints.swap_prior)
        t = data[c][0][k:] - data[c][0][k]
        sigs = list(signals)
        sigs[c] = speed_signal(t[: len(kp)], kp[: len(t)], SETTINGS.sync, SETTINGS.sync.rate_hz)
        off = synchronise(sigs, SETTINGS.sync).offsets_s
        out[k] = float(abs((off[c] - base[c]) * fps - k))
    return out


def main() -> int:
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present")
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    videos = [DATA / "videos" / f"{c}.mp4" for c in CAMS]
    result: dict = {"video": "Pose2Sim demo, 1080x1920 (cam03/04 1088x1920), 60 fps, 100 frames per camera"}
    result["decode_fps"] = round(decode_fps(videos[0]), 1)
    result["detect_fps_one_process"] = {f"max_people={m}": round(detect_fps(videos[0], m), 1) for m in (1, 2)}

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p2s"
        (root / "videos" / "trial").mkdir(parents=True)
        for c, v in zip(CAMS, videos):
            shutil.copy(v, root / "videos" / "trial" / f"{c}.mp4")
        (root / "session.yaml").write_text(yaml.safe_dump({
            "subject": {"id": "p2s", "height_m": 1.72, "mass_kg": 70.0, "sex": "m"},
            "cameras": [{"id": c} for c in CAMS], "trials": [{"name": "trial", "kind": "dynamic"}]}))
        run_session(root, overrides={"run": {"stages": ["frames"]}}, show_progress=False)
        t0 = time.perf_counter()
        run_session(root, overrides={"run": {"stages": ["frames", "keypoints"]}}, show_progress=False)
        wall = time.perf_counter() - t0
        result["keypoints_stage_all_cores"] = {"videos": 4, "frames": 400, "seconds": round(wall, 2),
                                               "fps_total": round(400 / wall, 1)}
        run_session(root, overrides={"run": {"stages": ["frames", "keypoints", "sync"]}}, show_progress=False)
        out = root / "output" / "trial"
        report = json.loads((out / "keypoints" / "keypoints.json").read_text())
        result["detection"] = {c: {"subject_coverage": r["subject_coverage"], "mean_detection_rate": r["mean_detection_rate"],
                                   "max_people_in_a_frame": r["max_people_in_a_frame"], "swapped_frames": r["swapped_frames"]}
                               for c, r in report["cameras"].items()}
        sync = json.loads((out / "sync" / "sync.json").read_text())
        result["sync"] = {"offsets_ms": {c: round(v["offset_s"] * 1000, 2) for c, v in sync["cameras"].items()},
                          "confidence": {c: v["confidence"] for c, v in sync["cameras"].items()},
                          "pair_residual_ms": sync["pair_residual_ms"]}
        for f in list((out / "keypoints").glob("overlay_*.png")) + [out / "sync" / "sync.png"]:
            shutil.copy(f, RESULTS / f"video_frontend_{f.name}")
        data = [read_keypoints_csv(out / "keypoints" / f"{c}.csv") for c in CAMS]
    signals = [speed_signal(t, kp, SETTINGS.sync, SETTINGS.sync.rate_hz) for t, kp in data]
    base = synchronise(signals, SETTINGS.sync).offsets_s
    fps = 60.0
    table = {}
    for c, name in enumerate(CAMS):
        cuts = cut_errors(data, signals, base, c, fps)
        fr = frac_errors(data, signals, base, c, fps)
        table[name] = {"cut_max_err_frames": round(max(cuts), 3), "cut_mean_err_frames": round(float(np.mean(cuts)), 3),
                       "cut_k_over_half_frame": [k + 1 for k, e in enumerate(cuts) if e > 0.5],
                       "fractional_max_err_frames": round(max(fr), 3)}
    table["cam02"]["video_cut_err_frames"] = {k: round(v, 3) for k, v in video_cut_errors(videos, data, signals, base, 1, fps).items()}
    result["sync_cut_test"] = table

    print(f"decode: {result['decode_fps']} fps (1080x1920, one process)")
    print("detect, one process:", result["detect_fps_one_process"])
    print("keypoints stage, 4 videos on all cores:", result["keypoints_stage_all_cores"])
    print("\ncamera  coverage  detection rate  people  swaps")
    for c, r in result["detection"].items():
        print(f"{c:7} {r['subject_coverage']:8.2f}  {r['mean_detection_rate']:14.3f}  {r['max_people_in_a_frame']:6d}  {r['swapped_frames']}")
    print("\nsync offsets (ms):", result["sync"]["offsets_ms"], "pair residual", result["sync"]["pair_residual_ms"], "ms")
    print("\ncut test (camera cut by k = 1..30 frames; error in frames at 60 fps)")
    for c, r in table.items():
        print(f"  {c}: " + ", ".join(f"{k} {v}" for k, v in r.items()))
    (RESULTS / "video_frontend.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
