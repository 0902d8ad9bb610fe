"""2D keypoints from another detector's output: OpenPose / Pose2Sim JSON files, one per frame.

Each file holds ``{"people": [{"pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...]}, ...]}``, the format
OpenPose writes and Pose2Sim (RTMPose) reads and writes. Frames are ordered by the last number in the
file name (``cam1_000000000042_keypoints.json``). The skeleton is recognised by its keypoint count:

  BODY_25 (25, OpenPose), HALPE_26 (26, Pose2Sim/RTMPose default), COCO_133 (133, whole body; its
  first 23 points are COCO-17 plus the six foot points).

Skeletons without a neck or mid-hip get them as the midpoint of the shoulders / hips, as in
models/pose_mediapipe.py. A point with confidence 0 is missing.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from core.keypoints import INDEX, VIDEO_KEYPOINTS

SKELETONS: dict[str, dict[str, int]] = {
    "BODY_25": {"Neck": 1, "RShoulder": 2, "RElbow": 3, "RWrist": 4, "LShoulder": 5, "LElbow": 6, "LWrist": 7,
                "midHip": 8, "RHip": 9, "RKnee": 10, "RAnkle": 11, "LHip": 12, "LKnee": 13, "LAnkle": 14,
                "LBigToe": 19, "LSmallToe": 20, "LHeel": 21, "RBigToe": 22, "RSmallToe": 23, "RHeel": 24},
    "HALPE_26": {"LShoulder": 5, "RShoulder": 6, "LElbow": 7, "RElbow": 8, "LWrist": 9, "RWrist": 10, "LHip": 11,
                 "RHip": 12, "LKnee": 13, "RKnee": 14, "LAnkle": 15, "RAnkle": 16, "Neck": 18, "midHip": 19,
                 "LBigToe": 20, "RBigToe": 21, "LSmallToe": 22, "RSmallToe": 23, "LHeel": 24, "RHeel": 25},
    "COCO_133": {"LShoulder": 5, "RShoulder": 6, "LElbow": 7, "RElbow": 8, "LWrist": 9, "RWrist": 10, "LHip": 11,
                 "RHip": 12, "LKnee": 13, "RKnee": 14, "LAnkle": 15, "RAnkle": 16, "LBigToe": 17, "LSmallToe": 18,
                 "LHeel": 19, "RBigToe": 20, "RSmallToe": 21, "RHeel": 22},
}
BY_COUNT = {25: "BODY_25", 26: "HALPE_26", 133: "COCO_133"}


class PoseJsonError(ValueError):
    """A JSON keypoint folder or file is unusable; the message names it and says what to do."""


def _frame_number(path: Path) -> int:
    nums = re.findall(r"\d+", path.stem)
    if not nums:
        raise PoseJsonError(f"{path}: no frame number in the file name; name files like <camera>_000000000042_keypoints.json")
    return int(nums[-1])


def person_to_video(flat: list[float], source: Path) -> np.ndarray:
    """One person's flat keypoint list -> (20, 3) x, y, confidence."""
    arr = np.asarray(flat, float)
    if arr.size % 3 or arr.size // 3 not in BY_COUNT:
        raise PoseJsonError(f"{source}: a person has {arr.size} values; expected 3 x (25, 26 or 133) keypoints "
                            "(BODY_25, HALPE_26 or COCO_133)")
    pts = arr.reshape(-1, 3)
    mapping = SKELETONS[BY_COUNT[len(pts)]]
    out = np.full((len(VIDEO_KEYPOINTS), 3), np.nan)
    out[:, 2] = 0.0
    for name, j in mapping.items():
        out[INDEX[name]] = pts[j]
    for name, (a, b) in {"Neck": ("RShoulder", "LShoulder"), "midHip": ("RHip", "LHip")}.items():
        if name not in mapping:
            pa, pb = out[INDEX[a]], out[INDEX[b]]
            out[INDEX[name], :2] = 0.5 * (pa[:2] + pb[:2])
            out[INDEX[name], 2] = min(pa[2], pb[2])
    missing = out[:, 2] <= 0
    out[missing, :2] = np.nan
    out[missing, 2] = 0.0
    return out


def pose_json_files(folder: Path) -> tuple[list[Path], list[int]]:
    """One camera's JSON files in frame order and their frame numbers (from the file names). Frame
    ``numbers[0]`` is row 0 of read_pose_json_dir; a number missing in between is a frame with nobody."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PoseJsonError(f"{folder}: keypoint folder not found; put one JSON file per frame there "
                            "(OpenPose --write_json output) or use keypoints.backend: mediapipe")
    files = sorted(folder.glob("*.json"), key=_frame_number)
    if not files:
        raise PoseJsonError(f"{folder}: no .json files; expected one OpenPose/Pose2Sim JSON file per video frame")
    numbers = [_frame_number(f) for f in files]
    if len(set(numbers)) != len(numbers):
        raise PoseJsonError(f"{folder}: two files share a frame number; keep one JSON output per camera in this folder")
    return files, numbers


def pose_json_image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) in pixels if the JSON file states them (top-level ``image_size: [w, h]`` or
    ``image_width``/``image_height``; OpenPose itself writes neither), else None."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PoseJsonError(f"{path}: not readable JSON ({exc}); re-export it from the detector") from None
    size = doc.get("image_size") if isinstance(doc, dict) else None
    if size is None and isinstance(doc, dict) and "image_width" in doc and "image_height" in doc:
        size = [doc["image_width"], doc["image_height"]]
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        return None
    return (w, h) if w > 0 and h > 0 else None


def read_pose_json_dir(folder: Path, max_people: int) -> np.ndarray:
    """All frames of one camera. Returns (frames, max_people, 20, 3); people beyond max_people are dropped
    (the ones with the lowest total confidence)."""
    files, numbers = pose_json_files(folder)
    n_frames = numbers[-1] - numbers[0] + 1
    out = np.full((n_frames, max_people, len(VIDEO_KEYPOINTS), 3), np.nan)
    out[..., 2] = 0.0
    for f, num in zip(files, numbers):
        try:
            doc = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PoseJsonError(f"{f}: not readable JSON ({exc}); re-export it from the detector") from None
        people = [person_to_video(p.get("pose_keypoints_2d", []), f) for p in doc.get("people", [])
                  if p.get("pose_keypoints_2d")]
        people.sort(key=lambda p: -float(np.sum(p[:, 2])))
        for k, p in enumerate(people[:max_people]):
            out[num - numbers[0], k] = p
    return out
