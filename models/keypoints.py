"""The video keypoints every 2D backend produces, and their skeleton.

Names and order are OpenCap's video keypoints (see ARCHITECTURE.md), so 2D files, the video .trc and
the augmenter all speak the same language.
"""
from __future__ import annotations

VIDEO_KEYPOINTS = ["Neck", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist", "midHip", "RHip", "LHip",
                   "RKnee", "LKnee", "RAnkle", "LAnkle", "RBigToe", "RSmallToe", "RHeel", "LBigToe", "LSmallToe", "LHeel"]
INDEX = {name: i for i, name in enumerate(VIDEO_KEYPOINTS)}

# Left/right groups that a detector can swap as a whole; each is fixed independently.
ARM_PAIRS = [("RShoulder", "LShoulder"), ("RElbow", "LElbow"), ("RWrist", "LWrist")]
LEG_PAIRS = [("RHip", "LHip"), ("RKnee", "LKnee"), ("RAnkle", "LAnkle"), ("RBigToe", "LBigToe"),
             ("RSmallToe", "LSmallToe"), ("RHeel", "LHeel")]
LR_PAIRS = ARM_PAIRS + LEG_PAIRS


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
