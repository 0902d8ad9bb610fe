"""Confidence-weighted DLT triangulation, vectorised over frames and keypoints, with outlier cameras
rejected and left/right swaps made by a minority of the cameras undone using the other views.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from calibration.camera import Camera
from calibration.camera_group import CameraGroup, dlt, reprojection
from sessions.settings import TriangulateSettings


@dataclass
class Triangulation:
    """points_m: (frames, keypoints, 3), NaN where fewer than ``min_cams`` cameras qualified.
    error_px: (frames, keypoints) mean reprojection error over the cameras used.
    used: (frames, keypoints, cameras) which cameras made each point.
    swapped: (frames, cameras, pairs) where a camera's left/right labels were exchanged.
    outlier_px: the outlier threshold used (px)."""

    points_m: np.ndarray
    error_px: np.ndarray
    used: np.ndarray
    swapped: np.ndarray | None = None
    outlier_px: float = float("nan")


def triangulate(cams: list[Camera], uv: np.ndarray, conf: np.ndarray, cfg: TriangulateSettings,
                undistorted: bool = False) -> Triangulation:
    """Triangulate (cameras, frames, keypoints, 2) pixels with (cameras, frames, keypoints) confidences.

    A camera counts for a point when its confidence is at least ``min_conf``. Where 3 or more
    cameras count, every pair of them is tried (exhaustive RANSAC: few cameras, so every pair is
    cheap): the pair whose point has the most cameras within ``outlier_px`` (ties: the smallest
    total error) defines the inliers, and the point is re-triangulated from those alone. A point
    seen by exactly 2 cameras whose views disagree by more than ``outlier_px`` (mean reprojection
    error) is dropped: one of them is wrong, and two views cannot tell which; the filter bridges it.

    The threshold is at least ``outlier_scale`` times the trial's median reprojection error with
    every camera: real phones disagree by several pixels everywhere (calibration, each view's
    idea of a joint), and a threshold inside that spread makes points hop between camera subsets
    from frame to frame, which shows as jitter of centimetres (Pose2Sim demo: shank length CV
    11.5 % -> 4 %). Gross errors (a wrong limb, a ghost) stay far outside it.
    ``min_conf``, ``outlier_px``, ``outlier_scale``: triangulate.min_confidence, .outlier_px, .outlier_scale.
    """
    min_conf, outlier_px, outlier_scale = cfg.min_confidence, cfg.outlier_px, cfg.outlier_scale
    C, F, K = conf.shape
    group = CameraGroup(cams)
    und = uv if undistorted else group.undistort(uv)
    P = group.P
    obs = und.reshape(C, F * K, 2)
    w = np.where((conf >= min_conf) & np.all(np.isfinite(uv), axis=-1), conf, 0.0).reshape(C, F * K)
    pts = dlt(P, obs, w)
    with np.errstate(invalid="ignore"):
        first = reprojection(P, pts, obs)[(w > 0) & np.isfinite(pts[:, 0])]
    first = first[np.isfinite(first)]
    outlier_px = max(outlier_px, outlier_scale * float(np.median(first))) if first.size else outlier_px
    many = (w > 0).sum(axis=0) >= 3
    if many.any():
        sub_obs, sub_w = obs[:, many], w[:, many]
        best_score = np.full(many.sum(), -np.inf)
        best_inliers = sub_w > 0
        for a in range(C):
            for b in range(a + 1, C):
                pair_w = np.zeros_like(sub_w)
                pair_w[[a, b]] = sub_w[[a, b]]
                cand = dlt(P, sub_obs, pair_w)
                err = reprojection(P, cand, sub_obs)
                inl = (sub_w > 0) & (err < outlier_px)
                score = inl.sum(0) - 1e-6 * np.where(inl, err, 0).sum(0)  # more inliers, then less error
                score[~np.isfinite(score) | ((pair_w > 0).sum(0) < 2)] = -np.inf
                better = score > best_score
                best_score[better] = score[better]
                best_inliers[:, better] = inl[:, better]
        keep = best_inliers.sum(0) >= 2
        new_w = np.where(best_inliers, sub_w, 0.0)
        w_many = np.where(keep, new_w, sub_w)
        w[:, many] = w_many
        pts[many] = dlt(P, sub_obs, w_many)
    err = reprojection(P, pts, obs)
    used = w > 0
    with np.errstate(invalid="ignore"):  # NaN observations of unused cameras
        mean_err = np.where(used, np.nan_to_num(err, nan=0.0), 0.0).sum(0) / np.maximum(used.sum(0), 1)
    bad_pair = (used.sum(0) == 2) & (mean_err > outlier_px)
    pts[bad_pair], used[:, bad_pair] = np.nan, False
    mean_err[used.sum(0) == 0] = np.nan
    mean_err[~np.isfinite(pts[:, 0])] = np.nan
    return Triangulation(pts.reshape(F, K, 3), mean_err.reshape(F, K), used.T.reshape(F, K, C), outlier_px=outlier_px)


def fix_cross_view_swaps(cams: list[Camera], uv: np.ndarray, conf: np.ndarray, pairs: list[tuple[int, int]],
                         cfg: TriangulateSettings, gain: float = 0.5,
                         undistorted: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exchange left/right labels in the cameras that disagree with the others' labelling.

    For each frame and (left, right) keypoint pair, exchanging the labels of every minority of the
    cameras that see both points is tried (one camera, two of five, ...; at most three): both
    points are triangulated and the labelling whose views agree best (reprojection error, each
    view's capped at 3 x ``outlier_px`` so one wild point does not decide) wins if it at least
    halves (``gain``) the error of the labels as given. An even split is left alone: it cannot be
    told which half is right. Needs 3 or more cameras seeing the pair: with 2, a swap cannot be
    told from a mistake of the other camera (each camera's own labels are made temporally
    consistent before, in pipeline/keypoints_swaps.py).
    Returns corrected uv, conf and the (frames, cameras, pairs) swap mask.
    ``min_conf``, ``outlier_px``: triangulate.min_confidence, .outlier_px.
    """
    min_conf, outlier_px = cfg.min_confidence, cfg.outlier_px
    C, F, _ = conf.shape
    n = len(pairs)
    uv, conf = uv.copy(), conf.copy()
    swapped = np.zeros((F, C, n), bool)
    if C < 3 or n == 0:
        return uv, conf, swapped
    group = CameraGroup(cams)
    und = uv if undistorted else group.undistort(uv)
    P = group.P
    idx = np.array(pairs)
    a, b = und[:, :, idx[:, 0]].reshape(C, F * n, 2), und[:, :, idx[:, 1]].reshape(C, F * n, 2)
    seen = ((conf[:, :, idx[:, 0]] >= min_conf) & (conf[:, :, idx[:, 1]] >= min_conf)).reshape(C, F * n)
    seen &= np.all(np.isfinite(a), axis=-1) & np.all(np.isfinite(b), axis=-1)
    w = seen.astype(float)
    cap = 3 * outlier_px

    def cost(flip: np.ndarray) -> np.ndarray:
        ra, rb = np.where(flip[:, None, None], b, a), np.where(flip[:, None, None], a, b)
        total = np.zeros(F * n)
        for obs in (ra, rb):
            with np.errstate(invalid="ignore"):
                e = reprojection(P, dlt(P, obs, w), obs)
            total += np.where(seen, np.minimum(np.nan_to_num(e, nan=cap), cap), 0.0).sum(0)
        return total

    # The cameras to exchange: every minority set (a set and its complement give the same points
    # with left and right exchanged; the smaller one is the fix), at most 3 cameras for big rigs.
    most = min((C - 1) // 2, 3)
    combos = [np.isin(np.arange(C), sub) for k in range(most + 1) for sub in itertools.combinations(range(C), k)]
    costs = np.stack([cost(f) for f in combos])  # (combos, F * n); combos[0] = labels as given
    best = np.argmin(costs, axis=0)
    flip = np.stack(combos)[best].T & seen  # (C, F * n)
    n_seen = seen.sum(0)
    flip &= ((n_seen >= 3) & (2 * flip.sum(0) < n_seen) & (costs[best, np.arange(F * n)] < gain * costs[0]))[None]
    swapped = flip.reshape(C, F, n).transpose(1, 0, 2)
    c_idx, f_idx, p_idx = np.nonzero(flip.reshape(C, F, n))
    left, right = idx[p_idx, 0], idx[p_idx, 1]
    for arr in (uv, conf):
        l_val, r_val = arr[c_idx, f_idx, left].copy(), arr[c_idx, f_idx, right].copy()
        arr[c_idx, f_idx, left], arr[c_idx, f_idx, right] = r_val, l_val
    return uv, conf, swapped
