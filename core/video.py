"""Streaming video access: open, probe and iterate frames with their real timestamps.

Frames are decoded one at a time (a whole video is never held in memory). OpenCV's FFmpeg
backend applies the rotation stored in phone videos' metadata, so frames come out upright;
the rotation is also reported. Timestamps are the presentation times stored in the file, so
phones' variable frame rates are kept rather than assumed away.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

try:  # OpenCV's own warnings (e.g. "can't be used to capture by name") would only repeat our message
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:  # pragma: no cover - older OpenCV builds
    pass

# A still photo is not a video: refused by name (FFmpeg would read it as a 1-frame "video").
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".heic", ".heif")
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")
MIN_FRAMES = 2


class VideoError(RuntimeError):
    """A video that cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # pixels, after applying rotation metadata
    height: int
    fps_nominal: float
    frame_count_container: int  # what the container claims; may be approximate
    rotation_deg: int  # rotation metadata the decoder applied (0, 90, 180, 270)
    codec: str


@dataclass
class Frame:
    index: int
    time_s: float
    image: np.ndarray | None  # (height, width, 3) BGR uint8, None when only timestamps were asked for


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise VideoError(f"{path}: video not found")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise VideoError(f"{path}: cannot be opened as a video; check the file copied completely, or re-export it as H.264 .mp4")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def probe(path: str | Path) -> VideoInfo:
    """Read a video's header and its first frame (for the upright size)."""
    path = Path(path)
    cap = _open(path)
    try:
        ok, img = cap.read()
        if not ok or img is None:
            raise VideoError(f"{path}: no frame could be decoded; the file is corrupt or uses a codec OpenCV cannot read; re-export it as H.264 .mp4")
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00") or "?"
        return VideoInfo(
            path=path,
            width=int(img.shape[1]),
            height=int(img.shape[0]),
            fps_nominal=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count_container=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            rotation_deg=int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360,
            codec=codec,
        )
    finally:
        cap.release()


def is_still_image(path: str | Path) -> bool:
    """True for a photo (by its name or its first bytes), whatever OpenCV would make of it."""
    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return any(head.startswith(m) for m in _IMAGE_MAGIC[:-1]) or (head.startswith(b"RIFF") and head[8:12] == b"WEBP") \
        or head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1")


def check_video(path: str | Path) -> VideoInfo:
    """``probe`` plus the checks a usable recording passes (a video, not a photo; 2 frames or more in its
    header); VideoError naming the file and what to do otherwise. Cheap: decodes only the first frame."""
    path = Path(path)
    if path.is_file() and is_still_image(path):
        raise VideoError(f"{path}: a still image, not a video; record the trial as a video with this phone "
                         "(a few seconds at 30-240 frames/s)")
    info = probe(path)
    if 0 < info.frame_count_container < MIN_FRAMES:
        raise VideoError(f"{path}: only {info.frame_count_container} frame; a trial needs a video of at least "
                         f"{MIN_FRAMES} frames (in practice seconds); record it again")
    return info


def iter_frames(path: str | Path, images: bool | set[int] = True) -> Iterator[Frame]:
    """Yield every frame with its timestamp; decode pixels for all frames, none, or a set of indices.

    Timestamps come from the container (presentation times); where the backend reports none,
    they fall back to index / nominal fps.
    """
    path = Path(path)
    cap = _open(path)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
    try:
        index = 0
        last_t = -np.inf
        while cap.grab():
            t_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            t = t_ms / 1000.0 if t_ms is not None and t_ms >= 0 else index / fps
            if index > 0 and t <= last_t:  # some containers report nothing useful: fall back
                t = last_t + 1.0 / fps
            last_t = t
            want = images if isinstance(images, bool) else index in images
            img = None
            if want:
                ok, img = cap.retrieve()
                if not ok:
                    raise VideoError(f"{path}: frame {index} could not be decoded; the file may be damaged")
            yield Frame(index, t, img)
            index += 1
    finally:
        cap.release()
