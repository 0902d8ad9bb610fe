"""The ``blazepose-torch`` keypoints backend over whole videos: every person in every frame.

Frames are decoded in a background thread (OpenCV releases the GIL while decoding) into batches of
``batch_frames``; each batch goes to the device at once (pinned memory and non-blocking copies on
CUDA), through the detector and the landmark model (models/blazepose_torch.py), and comes back as
the same array the MediaPipe backend produces: (frames, max_people, 20, 3), people ordered by the
detector's confidence, NaN / 0 where a slot is empty. Person selection (pipeline/keypoints_people.py)
then sees everyone found, in every frame.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

from models.blazepose_torch import BlazePoseTorch
from core.keypoints import VIDEO_KEYPOINTS
from models.pose_mediapipe import blazepose_to_video
from core.video import iter_frames

_END = object()


def frame_batches(path: str | Path, batch: int) -> Iterator[np.ndarray]:
    """(n <= batch, height, width, 3) RGB uint8 batches of a video, decoded ahead in a thread."""
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def decode() -> None:
        try:
            buf, n = None, 0
            for fr in iter_frames(path):
                if stop.is_set():
                    return
                if buf is None:  # each frame converted straight into its batch (stacking copies cost more than decoding)
                    buf = np.empty((batch,) + fr.image.shape, np.uint8)
                cv2.cvtColor(fr.image, cv2.COLOR_BGR2RGB, dst=buf[n])
                n += 1
                if n == batch:
                    q.put(buf)
                    buf, n = None, 0
            if n:
                q.put(buf[:n])
            q.put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    thread = threading.Thread(target=decode, daemon=True, name=f"decode {Path(path).name}")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def people_array(det, n_frames: int, max_people: int) -> np.ndarray:
    """Detections of a batch -> (n_frames, max_people, 20, 3) video keypoints, most confident first."""
    out = np.full((n_frames, max_people, len(VIDEO_KEYPOINTS), 3), np.nan)
    out[..., 2] = 0.0
    slot = np.zeros(n_frames, int)
    for j in np.argsort(-det.score, kind="stable"):
        f = det.frame[j]
        if slot[f] < max_people:
            out[f, slot[f]] = blazepose_to_video(det.landmarks[j].astype(np.float64))
            slot[f] += 1
    return out


def detect_videos_torch(paths: dict[str, Path], model: BlazePoseTorch, batch_frames: int,
                        progress: Callable[[str, int], None] | None = None) -> dict[str, np.ndarray]:
    """Every video through ``model`` -> {camera: (frames, max_people, 20, 3)}; ``progress(camera, frames)``
    after each batch."""
    out = {}
    for cam, path in paths.items():
        parts = []
        for frames in frame_batches(path, batch_frames):
            with torch.inference_mode():
                det = model(frames)
            parts.append(people_array(det, len(frames), model.max_people))
            if progress is not None:
                progress(cam, len(frames))
        out[cam] = np.concatenate(parts) if parts else np.zeros((0, model.max_people, len(VIDEO_KEYPOINTS), 3))
    return out
