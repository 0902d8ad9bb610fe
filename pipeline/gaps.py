"""Find and fill gaps (NaN runs) in marker trajectories."""
from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline


def nan_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of runs where ``valid`` (frames,) is False."""
    bad = np.concatenate([[False], ~valid, [False]])
    edges = np.flatnonzero(np.diff(bad.astype(int)))
    return list(zip(edges[::2], edges[1::2]))


def fill_gaps(time_s: np.ndarray, positions: np.ndarray, max_gap_frames: int) -> tuple[np.ndarray, dict[int, list[tuple[int, int]]]]:
    """Fill NaN runs of at most ``max_gap_frames`` by cubic interpolation per marker.

    positions: (frames, markers, 3). Returns the filled copy and, per marker index, the runs
    that were too long (or at an end of the trial, where there is nothing to interpolate from).
    """
    out = positions.copy()
    unfilled: dict[int, list[tuple[int, int]]] = {}
    for m in range(positions.shape[1]):
        valid = np.all(np.isfinite(positions[:, m]), axis=1)
        if valid.all():
            continue
        runs = nan_runs(valid)
        long_runs = [(a, b) for a, b in runs if b - a > max_gap_frames or a == 0 or b == len(valid)]
        if valid.sum() >= 2:
            spline = CubicSpline(time_s[valid], positions[valid, m], axis=0)
            for a, b in runs:
                if (a, b) not in long_runs:
                    out[a:b, m] = spline(time_s[a:b])
        if long_runs:
            unfilled[m] = long_runs
    return out, unfilled
