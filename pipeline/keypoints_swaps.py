"""Fix left/right swaps within one camera by temporal consistency.

Detectors sometimes exchange a person's left and right limbs for a few frames (typically when the
person faces away or the legs cross). For each group (arms, legs) the labelling of every frame is
chosen by a two-state Viterbi pass: the path that moves the group's keypoints the least from frame
to frame, with a small cost per swapped frame so that, where motion cannot tell, the detector's own
labels are kept. A group missing in a frame is bridged from the last frame that had it.
"""
from __future__ import annotations

import numpy as np

from core.keypoints import ARM_PAIRS, CONFIDENT, INDEX, LEG_PAIRS, body_size

def _group_swaps(kp: np.ndarray, pairs: list[tuple[str, str]], size: float, swap_prior: float,
                 min_conf: float) -> np.ndarray:
    """(frames,) bool: frames whose pairs should be exchanged. kp: (frames, K, 3)."""
    r = [INDEX[a] for a, _ in pairs]
    l_ = [INDEX[b] for _, b in pairs]
    ok = (kp[:, r, 2] >= min_conf) & (kp[:, l_, 2] >= min_conf)  # (F, pairs)
    frames = np.flatnonzero(ok.any(axis=1))
    swap = np.zeros(len(kp), bool)
    if len(frames) < 2:
        return swap
    R, L, OK = kp[frames][:, r, :2], kp[frames][:, l_, :2], ok[frames]
    n = len(frames)
    # acc[s] = lowest cost of a labelling of frames[:i+1] ending in state s (0 keep, 1 swap)
    acc = np.array([0.0, swap_prior * size])
    back = np.zeros((n, 2), int)
    for i in range(1, n):
        both = OK[i - 1] & OK[i]
        if not both.any():  # nothing in common: any labelling is as good, the prior decides
            same = cross = 0.0
        else:
            same = np.sum(np.linalg.norm(R[i, both] - R[i - 1, both], axis=1) + np.linalg.norm(L[i, both] - L[i - 1, both], axis=1))
            cross = np.sum(np.linalg.norm(R[i, both] - L[i - 1, both], axis=1) + np.linalg.norm(L[i, both] - R[i - 1, both], axis=1))
        step = np.array([[same, cross], [cross, same]])  # step[prev, cur]
        tot = acc[:, None] + step
        back[i] = np.argmin(tot, axis=0)
        acc = tot[back[i], [0, 1]] + np.array([0.0, swap_prior * size])
    state = int(np.argmin(acc))
    for i in range(n - 1, -1, -1):
        swap[frames[i]] = bool(state)
        state = back[i, state]
    return swap


def fix_swaps(kp: np.ndarray, swap_prior: float, min_conf: float = CONFIDENT) -> tuple[np.ndarray, dict[str, int]]:
    """Relabel left/right per frame. kp: (frames, K, 3) one person. Returns fixed copy and swapped frame counts.

    swap_prior (keypoints.swap_prior): the cost of one relabelled frame, as a share of body size: small
    next to a real swap (which moves the points by the left-right separation), large next to jitter."""
    out = kp.copy()
    sizes = body_size(kp)
    size = float(np.nanmedian(sizes)) if np.isfinite(sizes).any() else 1.0
    counts = {}
    for name, pairs in (("arms", ARM_PAIRS), ("legs", LEG_PAIRS)):
        swap = _group_swaps(kp, pairs, size, swap_prior, min_conf)
        counts[name] = int(swap.sum())
        for a, b in pairs:
            ia, ib = INDEX[a], INDEX[b]
            out[swap, ia], out[swap, ib] = kp[swap, ib], kp[swap, ia]
    return out, counts
