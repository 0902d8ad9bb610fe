"""The 2D keypoint file: one CSV per camera and trial, ``output/<trial>/keypoints/<camera>.csv``.

Columns: ``frame`` (0-based index in the video), ``time_s`` (the frame's presentation time on the
camera's own clock), then for every video keypoint (core/keypoints.py, in that order)
``<name>_x``, ``<name>_y`` (pixels, origin top-left of the upright image, x right, y down) and
``<name>_c`` (confidence 0-1). A keypoint not found in a frame has empty x/y and confidence 0.
Add the camera's ``offset_s`` from ``sync/sync.json`` to ``time_s`` to get the common clock.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from core.keypoints import VIDEO_KEYPOINTS

COLUMNS = ["frame", "time_s"] + [f"{k}_{a}" for k in VIDEO_KEYPOINTS for a in ("x", "y", "c")]


class KeypointFileError(ValueError):
    pass


def write_keypoints_csv(path: Path, time_s: np.ndarray, kp: np.ndarray) -> None:
    """time_s: (frames,); kp: (frames, 20, 3) pixels and confidence, NaN x/y where missing."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for f in range(len(time_s)):
            row = [str(f), f"{time_s[f]:.6f}"]
            for x, y, c in kp[f]:
                if np.isfinite(x) and np.isfinite(y) and c > 0:
                    row += [f"{x:.2f}", f"{y:.2f}", f"{c:.3f}"]
                else:
                    row += ["", "", "0"]
            w.writerow(row)


def read_keypoints_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Returns time_s (frames,) and kp (frames, 20, 3)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise KeypointFileError(f"{path}: cannot be read ({exc})") from None
    if not rows or rows[0] != COLUMNS:
        raise KeypointFileError(f"{path}: not a 2D keypoint file (header differs); re-run the keypoints stage")
    data = np.array([[float(v) if v != "" else np.nan for v in r] for r in rows[1:]], float).reshape(-1, len(COLUMNS))
    return data[:, 1], data[:, 2:].reshape(len(data), len(VIDEO_KEYPOINTS), 3)
