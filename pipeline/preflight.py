"""Checks of a session's recordings made before any work: every video opened (header and first frame
only: frame count, size, fps) and the camera file read and matched to the cameras and the videos'
sizes, so `python app.py validate` reports these problems, all at once, before minutes of detection."""
from __future__ import annotations

from dataclasses import dataclass, field

from calibration.camera import CameraFileError, load_cameras
from calibration.session_calibration import cameras_for_videos
from core.video import VideoError, VideoInfo, check_video
from sessions.session import Session


@dataclass
class MediaCheck:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings: usable, but worth knowing
    videos: dict[str, dict[str, VideoInfo]] = field(default_factory=dict)  # trial -> camera -> info


def check_media(session: Session) -> MediaCheck:
    out = MediaCheck()
    fcfg = session.settings.frames
    for trial in session.trials:
        out.videos[trial.name] = {}
        for cam, path in trial.videos.items():
            try:
                info = check_video(path)
            except VideoError as exc:
                out.problems.append(str(exc))
                continue
            out.videos[trial.name][cam] = info
            if info.fps_nominal and not fcfg.min_fps <= info.fps_nominal <= fcfg.max_fps:
                out.notes.append(f"{path}: {info.fps_nominal:.1f} fps is outside the validated "
                                 f"{fcfg.min_fps:g}-{fcfg.max_fps:g} fps; results may be less accurate")
    path = session.cameras_file
    if not path.is_file():
        return out  # the session's own warning says how to calibrate
    try:
        cameras = load_cameras(path)
    except CameraFileError as exc:
        out.problems.append(str(exc))
        return out
    ids = [c.id for c in session.cameras]
    names = [c.name for c in cameras]
    missing = [i for i in ids if i not in names]
    if missing:
        out.problems.append(f"{path}: no calibration for camera(s) {missing} of session.yaml (it has {names}); "
                            f"calibrate every camera: `python app.py calibrate extrinsics {session.root}`")
    extra = [n for n in names if n not in ids]
    if extra:
        out.notes.append(f"{path}: camera(s) {extra} are not in session.yaml; they are not used")
    known = [c for c in cameras if c.name in ids]
    seen: set[str] = set()
    for trial in session.trials:
        sizes = {c: (v.width, v.height) for c, v in out.videos[trial.name].items()}
        try:
            _, notes = cameras_for_videos(known, sizes, trial.videos, path)
        except CameraFileError as exc:
            out.problems += [p for p in str(exc).splitlines() if p not in seen]
            seen.update(str(exc).splitlines())
            continue
        out.notes += notes
    return out
