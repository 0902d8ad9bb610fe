"""Checkerboard corner detection, board geometry and a canonical corner order.

A board is given by its INNER corner counts (rows x cols) and square size. OpenCV may return the
corners starting from either end of the board (a 180-degree ambiguity). When the board has
(rows + cols) odd, as a 4x7 board does, its two ends differ in colour: the square diagonally
outside the first corner is black at one end and white at the other. We put the corners in the
order whose first outer square is black, so every camera numbers the corners alike. Boards with
(rows + cols) even look the same after a half turn; their order is settled by the camera
geometry in ``extrinsics.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SUBPIX = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)


@dataclass(frozen=True)
class Board:
    rows: int  # inner corners along the board's short side as the user counts them
    cols: int
    square_m: float

    @property
    def pattern(self) -> tuple[int, int]:
        """OpenCV pattern size: (corners per row, corners per column)."""
        return (self.cols, self.rows)

    @property
    def colour_asymmetric(self) -> bool:
        return (self.rows + self.cols) % 2 == 1

    def object_points(self) -> np.ndarray:
        """(rows*cols, 3) corner positions in the board frame, metres: x along a row, y down the columns, z = 0."""
        j, i = np.meshgrid(np.arange(self.cols), np.arange(self.rows))
        return np.column_stack([j.ravel(), i.ravel(), np.zeros(j.size)]) * self.square_m


def _to_gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def find_corners(image: np.ndarray, board: Board) -> np.ndarray | None:
    """(rows*cols, 2) sub-pixel corners in row-major order, canonical start; None if not found."""
    gray = _to_gray(image)
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    ok, corners = cv2.findChessboardCorners(gray, board.pattern, flags=flags)
    if ok:
        # The refinement window must stay inside one square, or neighbouring corners bias it.
        grid = corners.reshape(board.rows, board.cols, 2)
        edge = min(np.linalg.norm(np.diff(grid, axis=1), axis=2).min(), np.linalg.norm(np.diff(grid, axis=0), axis=2).min())
        half = int(np.clip(0.25 * edge, 2, 11))
        corners = cv2.cornerSubPix(gray, corners, (half, half), (-1, -1), SUBPIX)
    else:  # the sector-based detector is slower but finds boards the classic one misses
        ok, corners = cv2.findChessboardCornersSB(gray, board.pattern, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
        if not ok:
            return None
    uv = corners.reshape(-1, 2).astype(float)
    return canonical_order(gray, uv, board)


def outer_square_brightness(gray: np.ndarray, uv: np.ndarray, board: Board) -> float:
    """Mean grey level of the square diagonally outside the first corner (0..255; NaN off-image)."""
    grid = uv.reshape(board.rows, board.cols, 2)
    c0, along_row, down_col = grid[0, 0], grid[0, 1] - grid[0, 0], grid[1, 0] - grid[0, 0]
    centre = c0 - 0.5 * along_row - 0.5 * down_col
    r = max(2, int(0.2 * min(np.linalg.norm(along_row), np.linalg.norm(down_col))))
    x, y = int(round(centre[0])), int(round(centre[1]))
    if not (r <= x < gray.shape[1] - r and r <= y < gray.shape[0] - r):
        return float("nan")
    return float(gray[y - r : y + r + 1, x - r : x + r + 1].mean())


def canonical_order(gray: np.ndarray, uv: np.ndarray, board: Board) -> np.ndarray:
    """Reverse the corner order if needed so that the first outer square is the darker end."""
    if not board.colour_asymmetric:
        return uv
    first = outer_square_brightness(gray, uv, board)
    last = outer_square_brightness(gray, uv[::-1], board)
    if np.isfinite(first) and np.isfinite(last) and last < first:
        return uv[::-1].copy()
    return uv


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian: higher is sharper (motion blur lowers it)."""
    return float(cv2.Laplacian(_to_gray(image), cv2.CV_64F).var())
