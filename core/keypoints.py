"""The video keypoints every 2D backend produces, and their skeleton.

Names and order are OpenCap's video keypoints (see ARCHITECTURE.md), so 2D files, the video .trc and
the augmenter all speak the same language.
"""
from __future__ import annotations

import warnings

import numpy as np

VIDEO_KEYPOINTS = ["Neck", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist", "midHip", "RHip", "LHip",
                   "RKnee", "LKnee", "RAnkle", "LAnkle", "RBigToe", "RSmallToe", "RHeel", "LBigToe", "LSmallToe", "LHeel"]
INDEX = {name: i for i, name in enumerate(VIDEO_KEYPOINTS)}

# A 2D keypoint at or above this confidence counts as seen when a body is measured in the picture
# (its size, centre and distance to another detection; left/right checks; the sync speed signal).
# Triangulation has its own threshold (triangulate.min_confidence in config.yaml).
CONFIDENT = 0.3

# Left/right groups that a detector can swap as a whole; each is fixed independently.
ARM_PAIRS = [("RShoulder", "LShoulder"), ("RElbow", "LElbow"), ("RWrist", "LWrist")]
LEG_PAIRS = [("RHip", "LHip"), ("RKnee", "LKnee"), ("RAnkle", "LAnkle"), ("RBigToe", "LBigToe"),
             ("RSmallToe", "LSmallToe"), ("RHeel", "LHeel")]
LR_PAIRS = ARM_PAIRS + LEG_PAIRS
SIDE = {r: "R" for r, _ in LR_PAIRS} | {l_: "L" for _, l_ in LR_PAIRS}  # sided keypoint -> "R" / "L"


def unsided(name: str) -> str:
    """'RKnee' and 'LKnee' -> 'Knee'; a keypoint of the midline (Neck, midHip) stays as it is."""
    return name[1:] if name in SIDE else name


def mirror_index() -> list[int]:
    """Index map that exchanges every left keypoint with its right partner."""
    idx = list(range(len(VIDEO_KEYPOINTS)))
    for r, l in LR_PAIRS:
        idx[INDEX[r]], idx[INDEX[l]] = INDEX[l], INDEX[r]
    return idx


# Bones drawn in overlays: (from, to, side) with side "R", "L" or "C".
SKELETON = [
    ("Neck", "RShoulder", "R"), ("Neck", "LShoulder", "L"), ("RShoulder", "RElbow", "R"), ("RElbow", "RWrist", "R"),
    ("LShoulder", "LElbow", "L"), ("LElbow", "LWrist", "L"), ("Neck", "midHip", "C"), ("midHip", "RHip", "R"),
    ("midHip", "LHip", "L"), ("RHip", "RKnee", "R"), ("RKnee", "RAnkle", "R"), ("LHip", "LKnee", "L"),
    ("LKnee", "LAnkle", "L"), ("RAnkle", "RHeel", "R"), ("RHeel", "RBigToe", "R"), ("RBigToe", "RSmallToe", "R"),
    ("RSmallToe", "RHeel", "R"), ("LAnkle", "LHeel", "L"), ("LHeel", "LBigToe", "L"), ("LBigToe", "LSmallToe", "L"),
    ("LSmallToe", "LHeel", "L"),
]


def body_size(kp: np.ndarray, min_conf: float = CONFIDENT) -> np.ndarray:
    """Height of the confident keypoints' bounding box. kp: (..., K, 3) -> (...), NaN where < 2 points."""
    ok = kp[..., 2] >= min_conf
    y = np.where(ok, kp[..., 1], np.nan)
    x = np.where(ok, kp[..., 0], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are expected (nobody there)
        size = np.fmax(np.nanmax(y, -1) - np.nanmin(y, -1), np.nanmax(x, -1) - np.nanmin(x, -1))
    size[np.sum(ok, -1) < 2] = np.nan
    return size


def body_centre(kp: np.ndarray, min_conf: float = CONFIDENT) -> np.ndarray:
    """Mean of the confident keypoints. kp: (..., K, 3) -> (..., 2), NaN where none."""
    ok = kp[..., 2] >= min_conf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.stack([np.nanmean(np.where(ok, kp[..., a], np.nan), -1) for a in (0, 1)], -1)
