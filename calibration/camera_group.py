"""Everything multi-camera in one place: a group of calibrated cameras that projects, undistorts,
triangulates (confidence-weighted DLT) and measures reprojection errors, as aniposelib's CameraGroup
does. The triangulate stage's outlier rejection and swap repair (pipeline/triangulate_points.py),
person selection's geometry check and the calibration benchmark all use it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.camera import Camera


def dlt(P: np.ndarray, uv: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted DLT. P: (C, 3, 4); uv: (C, N, 2) undistorted pixels; w: (C, N) weights (0 = unused).
    Returns (N, 3); rows with fewer than 2 weighted cameras are NaN."""
    uvz = np.nan_to_num(uv)
    rows_u = uvz[..., 0:1] * P[:, None, 2] - P[:, None, 0]  # (C, N, 4)
    rows_v = uvz[..., 1:2] * P[:, None, 2] - P[:, None, 1]
    A = np.concatenate([rows_u, rows_v], axis=0) * np.concatenate([w, w], axis=0)[..., None]  # (2C, N, 4)
    # Scale-normalise each row so that weights, not pixel magnitudes, decide each camera's say.
    A /= np.maximum(np.linalg.norm(A, axis=-1, keepdims=True), 1e-12) / np.concatenate([w, w], axis=0)[..., None].clip(1e-12)
    M = np.einsum("cni,cnj->nij", A, A)  # (N, 4, 4)
    _, vecs = np.linalg.eigh(M)
    X = vecs[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):  # points at infinity come out as inf/NaN
        pts = X[:, :3] / X[:, 3:4]
    pts[(w > 0).sum(axis=0) < 2] = np.nan
    return pts


def reprojection(P: np.ndarray, pts: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(C, N) pixel distances between undistorted observations and projections of (N, 3) points;
    infinite where the point is behind the camera (it cannot have been seen there)."""
    h = np.einsum("cij,nj->cni", P, np.concatenate([pts, np.ones((len(pts), 1))], axis=1))
    proj = h[..., :2] / h[..., 2:3]
    err = np.linalg.norm(proj - uv, axis=-1)
    return np.where(h[..., 2] > 0, err, np.inf)


@dataclass
class CameraGroup:
    """The session's calibrated cameras, in a fixed order (the order of every (C, ...) array)."""

    cameras: list[Camera]

    def __post_init__(self) -> None:
        self.P = np.stack([c.P for c in self.cameras])  # (C, 3, 4)

    def __len__(self) -> int:
        return len(self.cameras)

    def undistort(self, uv: np.ndarray) -> np.ndarray:
        """(C, ..., 2) distorted -> undistorted pixels."""
        return np.stack([c.undistort(uv[i]) for i, c in enumerate(self.cameras)])

    def project(self, points_m: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (C, ..., 2) distorted pixels (NaN behind a camera)."""
        return np.stack([c.project(points_m) for c in self.cameras])

    def triangulate(self, uv: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Plain weighted DLT of distorted observations uv (C, N, 2) with weights (C, N) (0 = not seen):
        (N, 3), NaN where fewer than 2 cameras weigh in. (The triangulate stage adds outlier rejection.)"""
        return dlt(self.P, self.undistort(np.nan_to_num(uv)), weights)

    def errors_px(self, points_m: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """(C, N) pixel distances between distorted observations uv (C, N, 2) and the projections of
        points_m (N, 3)."""
        return np.linalg.norm(self.project(points_m) - uv, axis=-1)
