"""Render a checkerboard into a virtual camera: known truth for tests and for the demo session."""
from __future__ import annotations

import cv2
import numpy as np

from calibration.camera import Camera
from calibration.checkerboard import Board


def board_texture(board: Board, px_per_m: float = 2500.0) -> tuple[np.ndarray, np.ndarray]:
    """Board image and the (3, 3) map from texture pixels to board-plane metres.

    Inner corner (i, j) sits at (j, i) * square in the board frame. The square diagonally outside
    corner (0, 0) is black, the one outside the last corner is white when rows + cols is odd.
    A white margin of one square surrounds the pattern, as on printed boards.
    """
    s = board.square_m
    x0, y0 = -2 * s, -2 * s
    w_m, h_m = (board.cols + 3) * s, (board.rows + 3) * s
    W, H = int(round(w_m * px_per_m)), int(round(h_m * px_per_m))
    tex = np.full((H, W), 255, np.uint8)
    for a in range(board.rows + 1):
        for b in range(board.cols + 1):
            if (a + b) % 2 == 0:
                xa, ya = (b - 1) * s - x0, (a - 1) * s - y0
                tex[int(round(ya * px_per_m)) : int(round((ya + s) * px_per_m)), int(round(xa * px_per_m)) : int(round((xa + s) * px_per_m))] = 20
    # texture pixel u covers [u - 0.5, u + 0.5]; its square edges sit at half-integers
    to_board = np.array([[1 / px_per_m, 0, x0 + 0.5 / px_per_m], [0, 1 / px_per_m, y0 + 0.5 / px_per_m], [0, 0, 1]])
    return tex, to_board


def render_board(cam: Camera, board: Board, R_b2c: np.ndarray, t_b2c: np.ndarray,
                 background: int = 110, noise: float = 2.0, seed: int = 0) -> np.ndarray:
    """(height, width, 3) BGR image of the board seen by ``cam`` (distortion ignored: cameras here have none)."""
    tex, to_board = board_texture(board)
    ss = 4  # render at 4x and average down: anti-aliased edges, so corners are not biased
    K_hi = cam.K.copy()
    K_hi[:2] *= ss
    K_hi[:2, 2] += (ss - 1) / 2  # pixel centres: u_hi = ss * (u + 0.5) - 0.5
    H = K_hi @ np.column_stack([R_b2c[:, 0], R_b2c[:, 1], t_b2c]) @ to_board
    w, h = cam.image_size
    big = cv2.warpPerspective(tex, H, (w * ss, h * ss), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=background)
    img = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += np.random.default_rng(seed).normal(0, noise, img.shape)
    return cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def board_to_camera(cam: Camera, R_w2b: np.ndarray, origin_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Board-to-camera pose of a board placed in the world: x_board = R_w2b @ (x_world - origin_w)."""
    R = cam.R @ R_w2b.T
    return R, cam.R @ origin_w + cam.t
