"""The pinhole camera model with OpenCV's distortion, and the session's camera file.

World to camera: ``x_cam = R @ x_world + t`` (metres); camera axes x right, y down, z forward
(OpenCV). Distortion is OpenCV's (k1, k2, p1, p2, k3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml


class CameraFileError(ValueError):
    """A camera file that cannot be used; the message names the file and the problem."""


@dataclass
class Camera:
    """One calibrated camera.

    image_size: (width, height) pixels.
    K: (3, 3) intrinsic matrix, pixels.
    dist: (5,) OpenCV distortion k1, k2, p1, p2, k3.
    R: (3, 3) world-to-camera rotation.
    t: (3,) world-to-camera translation, metres.
    """

    name: str
    image_size: tuple[int, int]
    K: np.ndarray
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))
    info: dict = field(default_factory=dict)  # provenance: source, reprojection errors, ...

    def __post_init__(self) -> None:
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        self.K = np.asarray(self.K, dtype=float).reshape(3, 3)
        d = np.asarray(self.dist, dtype=float).ravel()
        self.dist = np.concatenate([d, np.zeros(max(0, 5 - len(d)))])[:5]
        self.R = np.asarray(self.R, dtype=float).reshape(3, 3)
        self.t = np.asarray(self.t, dtype=float).reshape(3)
        if abs(np.linalg.det(self.R) - 1) > 1e-3:
            raise ValueError(f"camera {self.name}: R is not a rotation (det {np.linalg.det(self.R):.4f})")

    @property
    def P(self) -> np.ndarray:
        """(3, 4) projection matrix K [R | t] for undistorted pixels."""
        return self.K @ np.hstack([self.R, self.t[:, None]])

    @property
    def centre_m(self) -> np.ndarray:
        """(3,) camera centre in world coordinates, metres."""
        return -self.R.T @ self.t

    def project(self, points_m: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> distorted pixels (..., 2). Points behind the camera give NaN."""
        pts = np.asarray(points_m, dtype=float)
        flat = pts.reshape(-1, 3)
        rvec, _ = cv2.Rodrigues(self.R)
        uv, _ = cv2.projectPoints(flat, rvec, self.t, self.K, self.dist)
        uv = uv.reshape(-1, 2)
        behind = (flat @ self.R.T + self.t)[:, 2] <= 0
        uv[behind] = np.nan
        return uv.reshape(pts.shape[:-1] + (2,))

    def undistort(self, uv: np.ndarray) -> np.ndarray:
        """Distorted pixels (..., 2) -> undistorted pixels (..., 2), ready for the projection matrix P."""
        pts = np.asarray(uv, dtype=float)
        flat = pts.reshape(-1, 1, 2)
        if not np.any(self.dist):
            return pts.copy()
        out = cv2.undistortPointsIter(flat, self.K, self.dist, None, self.K,
                                      (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-8))
        return out.reshape(pts.shape)

    def to_dict(self) -> dict:
        rnd = lambda a: np.round(np.asarray(a, dtype=float), 10).tolist()
        return {"image_size": list(self.image_size), "K": rnd(self.K), "dist": rnd(self.dist),
                "R": rnd(self.R), "t": rnd(self.t), "info": self.info}


def save_cameras(path: str | Path, cameras: list[Camera], comment: str = "") -> Path:
    """Write the session's camera file (YAML, one entry per camera)."""
    path = Path(path)
    head = ("# Cameras: x_cam = R x_world + t (metres); K in pixels; dist = OpenCV (k1, k2, p1, p2, k3).\n"
            "# World frame: Y up (OpenSim).\n" + (f"# {comment}\n" if comment else ""))
    body = yaml.safe_dump({c.name: c.to_dict() for c in cameras}, sort_keys=False, default_flow_style=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + body)
    return path


def load_cameras(path: str | Path) -> list[Camera]:
    path = Path(path)
    if not path.is_file():
        raise CameraFileError(f"{path}: camera file not found; run `python app.py calibrate` first")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CameraFileError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or not raw:
        raise CameraFileError(f"{path}: expected one entry per camera")
    cams = []
    for name, d in raw.items():
        try:
            cams.append(Camera(str(name), tuple(d["image_size"]), d["K"], d.get("dist", [0] * 5),
                               d.get("R", np.eye(3)), d.get("t", [0, 0, 0]), d.get("info") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise CameraFileError(f"{path}: camera {name!r} is incomplete or malformed ({exc})") from None
    return cams


def look_at(centre_m, target_m, up=(0.0, 1.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, t) for a camera at ``centre_m`` looking at ``target_m`` with ``up`` up."""
    centre, target = np.asarray(centre_m, float), np.asarray(target_m, float)
    fwd = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    return R, -R @ centre
