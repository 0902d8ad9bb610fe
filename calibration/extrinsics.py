"""Extrinsics from one checkerboard seen by every camera (OpenCap's protocol).

World frame (Y up, OpenSim's), origin at the board's first inner corner (the corner next to the
black outer square on a board with rows + cols odd):
- board ``vertical``: Y points up along the board, Z is the board's normal towards the cameras,
  X = Y x Z runs along the board horizontally. The floor is below the origin; later stages
  can shift the floor to y = 0 from the feet.
- board ``ground`` (lying on the floor): Y is the board's normal pointing up (towards the
  cameras), X runs along the board's rows of corners from the first corner, Z = X x Y.

Which way is up is taken from the cameras: phones are filmed upright (rotation metadata applied),
so the image's up direction, seen from every camera, agrees on the board's vertical axis.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.camera import Camera
from calibration.checkerboard import Board
from calibration.intrinsics import CalibrationError

log = logging.getLogger("markerless.calibration")


@dataclass
class BoardView:
    """The board as one camera sees it: corners (rows*cols, 2) pixels, row-major, canonical start if known."""

    camera: Camera
    corners: np.ndarray
    source: str = ""


@dataclass
class ExtrinsicsResult:
    cameras: list[Camera]
    error_px: dict[str, float]  # RMS reprojection error of the board per camera
    flipped: list[str] = field(default_factory=list)  # cameras whose corner order was reversed
    warnings: list[str] = field(default_factory=list)


def board_pose(view: BoardView, board: Board) -> tuple[np.ndarray, np.ndarray, float]:
    """Board-to-camera rotation (3, 3), translation (3,) metres, and RMS reprojection error (px)."""
    obj = board.object_points()
    img = view.corners.reshape(-1, 1, 2).astype(np.float64)
    cam = view.camera
    ok, rvec, tvec = cv2.solvePnP(obj, img, cam.K, cam.dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise CalibrationError(f"camera {cam.name}: the board pose could not be solved from {view.source}")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, cam.K, cam.dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, cam.K, cam.dist)
    err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - view.corners) ** 2, axis=1))))
    R, _ = cv2.Rodrigues(rvec)
    return R, tvec.ravel(), err


def _reverse(view: BoardView) -> BoardView:
    return BoardView(view.camera, view.corners[::-1].copy(), view.source)


def solve_extrinsics(views: list[BoardView], board: Board, placement: str,
                     warn_px: float = 1.5, fail_px: float = 5.0) -> ExtrinsicsResult:
    """World-to-camera R, t of every camera from one shared board; see the module docstring for axes."""
    if len(views) < 2:
        raise CalibrationError(f"the board was found by {len(views)} camera(s); every camera must see the whole board")
    if placement == "ground" and not board.colour_asymmetric:
        raise CalibrationError(
            f"a {board.rows}x{board.cols} board lying on the floor looks the same turned by 180 degrees, so cameras "
            "cannot agree on its corner order; use a board with rows + cols odd (e.g. 4x7) or place it vertical")
    poses = {v.camera.name: board_pose(v, board) for v in views}
    up_cam = np.array([0.0, -1.0, 0.0])  # image up, in camera coordinates
    ups = {n: R.T @ up_cam for n, (R, t, e) in poses.items()}  # image up, in each camera's board frame
    flipped: list[str] = []
    warnings: list[str] = []
    if placement == "vertical":
        axis = int(np.argmax(np.sum([np.abs(u[:2]) for u in ups.values()], axis=0)))  # 0: rows run vertical? x, 1: y
        majority = np.sign(np.sum([np.sign(u[axis]) for u in ups.values()])) or 1.0
        for i, v in enumerate(views):
            n = v.camera.name
            sign = np.sign(ups[n][axis])
            wanted = majority if board.colour_asymmetric else 1.0
            if sign != wanted:
                views[i] = _reverse(v)  # a half turn about the board normal
                poses[n] = board_pose(views[i], board)
                flipped.append(n)
                if board.colour_asymmetric:
                    warnings.append(f"camera {n}: corner order disagreed with the other cameras and was reversed; check its view of the board")
        up_sign = majority if board.colour_asymmetric else 1.0
        y_b = np.zeros(3)
        y_b[axis] = up_sign
    else:
        y_b = None
    # Normal towards the cameras, in board coordinates (the same for all cameras once orders agree).
    centres_b = [-R.T @ t for R, t, e in poses.values()]
    z_sign = 1.0 if np.mean([c[2] for c in centres_b]) > 0 else -1.0
    normal_b = np.array([0.0, 0.0, z_sign])
    if placement == "vertical":
        Y, Z = y_b, normal_b
        X = np.cross(Y, Z)
    else:
        Y, X = normal_b, np.array([1.0, 0.0, 0.0])
        Z = np.cross(X, Y)
    A = np.column_stack([X, Y, Z])  # x_board = A @ x_world
    cams, errors = [], {}
    for v in views:
        R_b, t_b, err = poses[v.camera.name]
        c = v.camera
        cams.append(Camera(c.name, c.image_size, c.K, c.dist, R_b @ A, t_b,
                           info={**c.info, "extrinsics": f"checkerboard {placement}", "board_error_px": round(err, 4)}))
        errors[c.name] = err
        if err > fail_px:
            raise CalibrationError(
                f"camera {c.name}: board reprojection error {err:.1f} px is implausible (over {fail_px} px); "
                "the intrinsics do not fit this camera or the board was detected wrongly: check the image and the intrinsics")
        if err > warn_px:
            warnings.append(f"camera {c.name}: board reprojection error {err:.2f} px is high (over {warn_px} px)")
    for c in cams:
        if placement == "ground" and c.centre_m[1] <= 0:
            warnings.append(f"camera {c.name}: placed at or below the floor ({c.centre_m[1]:.2f} m); check the board placement setting")
    for w in warnings:
        log.warning(w)
    return ExtrinsicsResult(cams, errors, flipped, warnings)
