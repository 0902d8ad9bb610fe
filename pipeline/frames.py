"""Stage ``frames``: check each camera's video and record its real per-frame timestamps.

A camera without a video (2D keypoint files only, keypoints.backend: json) gets the same outputs
from its JSON files: one frame per file number, at the frame rate session.yaml declares for it,
its image size from calibration/cameras.yaml (or from the JSON files if they state it; else null),
and no contact sheet.

Outputs in ``output/<trial>/frames/``:
  frames.json              per camera: size, rotation, nominal and measured fps, frame count,
                           duration, variable-frame-rate flag (``source``: video or pose2d)
  timestamps_<camera>.csv  frame index and presentation time (s) of every frame
  contact_sheet.png        a grid of evenly spaced frames per camera, to check what each phone saw
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.video import MIN_FRAMES, VideoError, check_video, iter_frames
from pipeline.runner import StageContext, StageInputError


@dataclass(frozen=True)
class FramesOutput:
    """What the frames stage hands on: per camera its record (size, rotation, fps, frame count, ...:
    the ``frames.json`` entry) and every frame's presentation time (s, the camera's own clock)."""

    trial: str
    cameras: dict[str, dict[str, Any]]
    time_s: dict[str, np.ndarray]  # camera -> (frames,)

    def size(self, cam: str) -> tuple[int, int] | None:
        """(width, height) of a camera's upright picture; None for 2D keypoint files of unknown size."""
        rec = self.cameras[cam]
        return None if rec["width"] is None else (rec["width"], rec["height"])

    def save(self, out_dir: Path) -> None:
        for cam, t in self.time_s.items():
            np.savetxt(out_dir / f"timestamps_{cam}.csv", np.column_stack([np.arange(len(t)), t]),
                       fmt=["%d", "%.6f"], delimiter=",", header="frame,time_s", comments="")
        (out_dir / "frames.json").write_text(json.dumps({"trial": self.trial, "cameras": self.cameras}, indent=2))

    @classmethod
    def load_records(cls, stage_dir: Path) -> dict[str, dict[str, Any]]:
        """Only the per-camera records (``frames.json``), without reading every frame time."""
        return json.loads((stage_dir / "frames.json").read_text())["cameras"]

    @classmethod
    def load(cls, stage_dir: Path) -> FramesOutput:
        doc = json.loads((stage_dir / "frames.json").read_text())
        times = {c: np.loadtxt(stage_dir / f"timestamps_{c}.csv", delimiter=",", skiprows=1, ndmin=2)[:, 1]
                 for c in doc["cameras"]}
        return cls(doc["trial"], doc["cameras"], times)


def frames_inputs(ctx: StageContext) -> list[Path]:
    """Fingerprint inputs: each camera's video; for a camera without one, its JSON keypoint files
    (they give the frame count) and the calibration (image size). The declared fps is a parameter
    of the stage (pipeline/stages.py)."""
    out: list[Path] = []
    no_video = [c.id for c in ctx.session.cameras if c.id not in ctx.trial.videos]
    for c in ctx.session.cameras:
        if c.id in ctx.trial.videos:
            out.append(ctx.trial.videos[c.id])
        elif c.id in ctx.trial.pose2d:
            out += sorted(ctx.trial.pose2d[c.id].glob("*.json"))
    if no_video:
        if ctx.session.cameras_file.is_file():
            out.append(ctx.session.cameras_file)
    return out


def timing_stats(times_s: np.ndarray, irregular_share: float) -> dict[str, Any]:
    """Frame-interval statistics of one video. times_s: (frames,) seconds."""
    dt = np.diff(times_s)
    if len(dt) == 0:
        return {"fps_measured": 0.0, "irregular_intervals": 0, "variable_frame_rate": False}
    med = float(np.median(dt))
    irregular = int(np.sum(np.abs(dt - med) > irregular_share * med)) if med > 0 else len(dt)
    return {
        "fps_measured": round(1.0 / med, 4) if med > 0 else 0.0,
        "interval_min_ms": round(1000 * float(dt.min()), 3),
        "interval_max_ms": round(1000 * float(dt.max()), 3),
        "irregular_intervals": irregular,
        "variable_frame_rate": irregular > 0,
    }


def _tile(img: np.ndarray, width: int, label: str) -> np.ndarray:
    h = int(round(img.shape[0] * width / img.shape[1]))
    tile = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
    cv2.putText(tile, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def evenly_spaced(n_frames: int, count: int) -> list[int]:
    """``count`` evenly spaced frame indices from the first to the last of ``n_frames``, ascending (fewer
    where they coincide; none for a count of 0): the frames a contact or overlay sheet shows."""
    return sorted(set(np.linspace(0, n_frames - 1, count).round().astype(int).tolist()))


def contact_sheet(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Stack tiles into one image; rows may differ in tile height (different phones)."""
    lines = []
    width = max(sum(t.shape[1] for t in row) for row in rows)
    for row in rows:
        h = max(t.shape[0] for t in row)
        line = np.full((h, width, 3), 32, np.uint8)
        x = 0
        for t in row:
            line[: t.shape[0], x : x + t.shape[1]] = t
            x += t.shape[1]
        lines.append(line)
    return np.vstack(lines)


def scan_camera(ctx: StageContext, cam: str, path: Path) -> tuple[dict[str, Any], np.ndarray, list[np.ndarray]]:
    """Decode one camera's video once: timestamps of all frames, pixels of the contact-sheet frames."""
    cfg = ctx.settings.frames
    try:
        info = check_video(path)
    except VideoError as exc:
        raise StageInputError(str(exc)) from None
    n_est = max(info.frame_count_container, 1)
    n_tiles = cfg.contact_sheet_frames if cfg.contact_sheet else 0
    picks = set(evenly_spaced(n_est, n_tiles))
    times, tiles = [], []
    try:
        for fr in ctx.progress(iter_frames(path, images=picks), total=info.frame_count_container or None, desc=cam):
            times.append(fr.time_s)
            if fr.image is not None:
                tiles.append(_tile(fr.image, cfg.contact_sheet_tile_width_px, f"{cam}  {fr.time_s:.2f}s"))
    except VideoError as exc:
        raise StageInputError(str(exc)) from None
    t = np.asarray(times)
    if len(t) == 0:
        raise StageInputError(f"{path}: no frame could be decoded; re-export the video as H.264 .mp4")
    if len(t) < MIN_FRAMES:
        raise StageInputError(f"{path}: only {len(t)} frame decodes; a trial needs a video of at least {MIN_FRAMES} "
                              "frames (in practice seconds); record it again")
    expected = info.frame_count_container
    if expected > 0 and len(t) < (1 - cfg.max_missing_frame_share) * expected:
        raise StageInputError(
            f"{path}: truncated: its header announces {expected} frames but only {len(t)} decode; copy the file from the phone again"
        )
    record = {
        "file": str(path),
        "width": info.width,
        "height": info.height,
        "rotation_deg": info.rotation_deg,
        "codec": info.codec,
        "fps_nominal": round(info.fps_nominal, 4),
        "frames": int(len(t)),
        "frames_in_header": expected,
        "start_s": round(float(t[0]), 6),
        "duration_s": round(float(t[-1] - t[0]), 6),
        **timing_stats(t, cfg.irregular_interval_share),
    }
    return record, t, tiles


def _calibrated_sizes(ctx: StageContext) -> dict[str, tuple[int, int]]:
    """Image size per camera from calibration/cameras.yaml, or {} when there is no usable file
    (the 3D stages then say how to calibrate)."""
    from calibration.camera import CameraFileError, load_cameras

    if not ctx.session.cameras_file.is_file():
        return {}
    try:
        return {c.name: c.image_size for c in load_cameras(ctx.session.cameras_file)}
    except CameraFileError as exc:
        ctx.log.warning("%s; image sizes of cameras without a video are left empty", exc)
        return {}


def scan_keypoint_files(ctx: StageContext, cam: str, sizes: dict[str, tuple[int, int]]) -> tuple[dict[str, Any], np.ndarray]:
    """Frame times of a camera that has 2D keypoint files but no video: file number / declared fps."""
    from models.pose_openpose import PoseJsonError, pose_json_files, pose_json_image_size

    folder = ctx.trial.pose2d.get(cam)
    fps = ctx.trial.fps.get(cam)
    if folder is None or fps is None:  # load_session refuses such a session; kept for a hand-made Trial
        raise StageInputError(f"{ctx.session.yaml_path}: trial {ctx.trial.name!r} camera {cam!r} has no video; give its "
                              f"2D keypoint files ({ctx.settings.keypoints.json_dir}/{ctx.trial.name}/{cam}/) and "
                              f"its frame rate (cameras: - {{id: {cam}, fps: 60}})")
    try:
        files, numbers = pose_json_files(folder)
        size = sizes.get(cam) or pose_json_image_size(files[0])
    except PoseJsonError as exc:
        raise StageInputError(str(exc)) from None
    t = np.arange(numbers[0], numbers[-1] + 1) / fps
    record = {
        "file": str(folder),
        "source": "pose2d",
        "width": size[0] if size else None,
        "height": size[1] if size else None,
        "rotation_deg": 0,
        "codec": None,
        "fps_nominal": round(float(fps), 4),
        "fps_declared": float(fps),
        "frames": int(len(t)),
        "frames_in_header": None,
        "keypoint_files": len(files),
        "start_s": round(float(t[0]), 6),
        "duration_s": round(float(t[-1] - t[0]), 6),
        **timing_stats(t, ctx.settings.frames.irregular_interval_share),
    }
    if size is None:
        ctx.log.warning("%s: image size unknown (no calibration/cameras.yaml entry for %s and none in the JSON files)",
                        folder, cam)
    return record, t


def run_frames(ctx: StageContext) -> None:
    cfg = ctx.settings.frames
    cameras: dict[str, Any] = {}
    times: dict[str, np.ndarray] = {}
    sheet_rows = []
    sizes = _calibrated_sizes(ctx) if any(c.id not in ctx.trial.videos for c in ctx.session.cameras) else {}
    cams = [c.id for c in ctx.session.cameras]
    # Each video decoded in a thread of its own: OpenCV decodes without the GIL, so the cameras take
    # about as long as the longest of them.
    with ThreadPoolExecutor(max_workers=max(1, len(ctx.trial.videos))) as pool:
        scans = {cam: pool.submit(scan_camera, ctx, cam, ctx.trial.videos[cam]) for cam in cams if cam in ctx.trial.videos}
    for cam in cams:
        if cam in ctx.trial.videos:
            record, t, tiles = scans[cam].result()
            record["source"] = "video"
        else:
            (record, t), tiles = scan_keypoint_files(ctx, cam, sizes), []
            ctx.log.info("%s/%s: no video; %d frames at the declared %g fps from the 2D keypoint files in %s "
                         "(no contact sheet for this camera)", ctx.trial.name, cam, record["frames"], record["fps_declared"],
                         record["file"])
        fps = record["fps_measured"]
        if not cfg.min_fps <= fps <= cfg.max_fps:
            ctx.log.warning(
                "%s: %.1f fps is outside the validated %g-%g fps; results may be less accurate",
                record["file"], fps, cfg.min_fps, cfg.max_fps,
            )
        if record["variable_frame_rate"]:
            ctx.log.info("%s: variable frame rate (%d irregular intervals); real timestamps are used", record["file"], record["irregular_intervals"])
        cameras[cam], times[cam] = record, t
        if tiles:
            sheet_rows.append(tiles)
    FramesOutput(ctx.trial.name, cameras, times).save(ctx.out_dir)
    if sheet_rows:
        cv2.imwrite(str(ctx.out_dir / "contact_sheet.png"), contact_sheet(sheet_rows))
    durations = [c["duration_s"] for c in cameras.values()]
    ctx.summary.update(
        cameras=len(cameras),
        frames={k: v["frames"] for k, v in cameras.items()},
        fps={k: v["fps_measured"] for k, v in cameras.items()},
        message=f"{len(cameras)} cameras, {min(durations):.1f}-{max(durations):.1f} s, "
        + "/".join(f"{v['fps_measured']:.0f}" for v in cameras.values()) + " fps",
    )
