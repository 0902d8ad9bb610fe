"""Find and fill gaps (NaN runs) in marker trajectories."""
from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline


def nan_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of runs where ``valid`` (frames,) is False."""
    bad = np.concatenate([[False], ~valid, [False]])
    edges = np.flatnonzero(np.diff(bad.astype(int)))
    return list(zip(edges[::2], edges[1::2]))


def fill_gaps(time_s: np.ndarray, positions: np.ndarray, max_gap_frames: int, context_frames: int = 0,
              end_frames: int = 0) -> tuple[np.ndarray, dict[int, list[tuple[int, int]]]]:
    """Fill NaN runs of at most ``max_gap_frames`` per marker.

    positions: (frames, markers, 3). By default a cubic spline through every valid sample fills
    them (right for clean data). With ``context_frames`` > 0 each gap is filled by a cubic fitted
    by least squares to the valid samples within that many frames (at least the gap's length) on
    either side: an interpolating spline through noisy samples swings through a gap with the
    noise of the samples next to it, a fit over a few frames each side does not. In that mode a
    gap at an end of the trial of at most ``end_frames`` is extrapolated by a straight line
    fitted to the ``context_frames`` valid samples next to it.
    Returns the filled copy and, per marker index, the runs that were too long (or at an end of
    the trial, where there is nothing to interpolate from).
    """
    out = positions.copy()
    unfilled: dict[int, list[tuple[int, int]]] = {}
    T = len(time_s)
    for m in range(positions.shape[1]):
        valid = np.all(np.isfinite(positions[:, m]), axis=1)
        if valid.all():
            continue
        runs = nan_runs(valid)
        at_end = [(a, b) for a, b in runs if a == 0 or b == T]
        end_fill = context_frames > 0 and valid.sum() >= 2
        long_runs = [(a, b) for a, b in runs
                     if ((b - a > end_frames or not end_fill) if (a, b) in at_end else b - a > max_gap_frames)]
        short_runs = [r for r in runs if r not in long_runs]
        if short_runs and context_frames > 0:
            for a, b in short_runs:
                reach = max(context_frames, b - a)
                near = np.flatnonzero(valid[max(a - reach, 0) : min(b + reach, T)]) + max(a - reach, 0)
                if (a, b) in at_end:  # one side only: a line, not a cubic flung past its data
                    near = near[:context_frames] if a == 0 else near[-context_frames:]
                deg = min(1 if (a, b) in at_end else 3, len(near) - 1)
                t0 = time_s[a]  # centred for a well-conditioned fit
                coef = np.polynomial.polynomial.polyfit(time_s[near] - t0, positions[near, m], deg)
                out[a:b, m] = np.polynomial.polynomial.polyval(time_s[a:b] - t0, coef).T
        elif short_runs and valid.sum() >= 2:
            spline = CubicSpline(time_s[valid], positions[valid, m], axis=0)
            for a, b in short_runs:
                out[a:b, m] = spline(time_s[a:b])
        if long_runs:
            unfilled[m] = long_runs
    return out, unfilled


def runs_mask(frames: int, runs: list[tuple[int, int]]) -> np.ndarray:
    """(frames,) True inside the (start, stop) runs: the inverse of ``nan_runs``."""
    mask = np.zeros(frames, bool)
    for a, b in runs:
        mask[a:b] = True
    return mask


def analysable_span(present: np.ndarray) -> tuple[int, int] | None:
    """(start, stop) frames from the first to the last frame where every keypoint is present.

    present: (frames, keypoints) bool. Frames before and after are what the trial loses at its ends
    (a foot still out of view when the recording starts); None when no frame has them all.
    """
    full = np.flatnonzero(present.all(axis=1))
    return (int(full[0]), int(full[-1]) + 1) if full.size else None


def describe_runs(runs: list[tuple[int, int]]) -> str:
    """'1-15, 184-216': (start, stop) runs as 1-based inclusive frame ranges."""
    return ", ".join(f"{a + 1}-{b}" for a, b in runs)
