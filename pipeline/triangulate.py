"""Stage ``triangulate``: synchronised 2D keypoints -> 3D points per frame.

Every camera's keypoints are resampled onto one common timeline (the reference camera's clock, at its
frame rate, over the time all cameras recorded), using the offsets from ``sync``; a keypoint is
interpolated only between two frames that both have it. Left/right swaps that a minority of the
cameras make are undone from the other views (3+ cameras), then points are triangulated with
outlier-camera rejection (pipeline/triangulate_points.py).

Output: points.npz (``TriangulateOutput``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.camera import CameraFileError
from calibration.session_calibration import cameras_for_videos, session_cameras
from core.keypoints import INDEX, LR_PAIRS, VIDEO_KEYPOINTS
from pipeline.frames import FramesOutput
from pipeline.keypoints import KeypointsOutput
from pipeline.runner import StageContext, StageInputError
from pipeline.sync import SyncOutput
from pipeline.triangulate_points import fix_cross_view_swaps, triangulate

PAIRS = [(INDEX[r], INDEX[l]) for r, l in LR_PAIRS]


@dataclass(frozen=True)
class TriangulateOutput:
    """The triangulated keypoints on the common timeline (``points.npz``)."""

    time_s: np.ndarray  # (frames,) common clock
    points_m: np.ndarray  # (frames, 20, 3), NaN where not triangulated
    error_px: np.ndarray  # (frames, 20) reprojection error
    used: np.ndarray  # (frames, 20, cameras) bool: cameras that took part
    confidence: np.ndarray  # (frames, 20) mean 2D confidence of the cameras used
    cameras: list[str]
    seen: np.ndarray  # (frames, 20, cameras) bool: cameras that saw the point confidently enough
    swaps_fixed: np.ndarray  # (cameras,) left/right swaps undone from the other views

    def save(self, out_dir: Path) -> None:
        np.savez_compressed(out_dir / "points.npz", time_s=self.time_s, points_m=self.points_m, error_px=self.error_px,
                            used=self.used, confidence=self.confidence, cameras=np.array(self.cameras), seen=self.seen,
                            swaps_fixed=self.swaps_fixed)

    @classmethod
    def load(cls, stage_dir: Path) -> TriangulateOutput:
        with np.load(stage_dir / "points.npz") as z:
            return cls(z["time_s"], z["points_m"], z["error_px"], z["used"], z["confidence"],
                       [str(c) for c in z["cameras"]], z["seen"], z["swaps_fixed"])


def resample_keypoints(time_s: np.ndarray, kp: np.ndarray, at_s: np.ndarray) -> np.ndarray:
    """Linear interpolation of (frames, K, 3) keypoints at times ``at_s`` (same clock); a keypoint
    is missing where either neighbouring frame lacks it. Returns (len(at_s), K, 3)."""
    out = np.full((len(at_s),) + kp.shape[1:], np.nan)
    out[..., 2] = 0.0
    right = np.clip(np.searchsorted(time_s, at_s), 1, len(time_s) - 1)
    left = right - 1
    span = time_s[right] - time_s[left]
    w = np.clip((at_s - time_s[left]) / np.where(span > 0, span, 1.0), 0.0, 1.0)[:, None]
    inside = (at_s >= time_s[0] - 1e-9) & (at_s <= time_s[-1] + 1e-9)
    ok = (kp[left, :, 2] > 0) & (kp[right, :, 2] > 0) & inside[:, None]
    ok &= np.isfinite(kp[left, :, 0]) & np.isfinite(kp[right, :, 0])
    for a in range(3):
        val = (1 - w) * kp[left, :, a] + w * kp[right, :, a]
        out[..., a] = np.where(ok, val, np.nan if a < 2 else 0.0)
    return out


def run_triangulate(ctx: StageContext) -> None:
    cfg = ctx.settings.triangulate
    cams = [c.id for c in ctx.session.cameras]
    try:
        cameras = session_cameras(ctx.session)
    except CameraFileError as exc:
        raise StageInputError(str(exc)) from None
    offsets = SyncOutput.load(ctx.stage_dir("sync")).offsets_s
    kp = KeypointsOutput.load(ctx.stage_dir("keypoints"), cams)
    common = {c: kp.time_s[c] + offsets[c] for c in cams}
    start = max(t[0] for t in common.values())
    stop = min(t[-1] for t in common.values())
    ref_t = common[cams[0]]
    fps = 1.0 / float(np.median(np.diff(ref_t)))
    if stop - start < 10.0 / fps:
        raise StageInputError(f"{ctx.trial.name}: the cameras' recordings overlap for only {max(stop - start, 0):.2f} s "
                              "after synchronisation; check sync/sync.json and that all phones filmed the same trial")
    times = ref_t[(ref_t >= start - 1e-9) & (ref_t <= stop + 1e-9)]
    frames = FramesOutput.load(ctx.stage_dir("frames"))
    sizes = {c: frames.size(c) for c in cams if frames.size(c) is not None}  # None: keypoint files only, no picture
    try:  # refused when a video's aspect differs from its calibration; rescaled or an encoder crop otherwise
        cameras, notes = cameras_for_videos(cameras, sizes, {c: ctx.trial.source(c) for c in cams},
                                            ctx.session.cameras_file)
    except CameraFileError as exc:
        raise StageInputError(str(exc)) from None
    for note in notes:
        ctx.log.warning("%s", note)
    obs = np.stack([resample_keypoints(common[c], kp.points[c], times) for c in cams])  # (C, F, K, 3)
    uv, conf = obs[..., :2], np.nan_to_num(obs[..., 2])
    swapped = np.zeros((len(times), len(cams), len(PAIRS)), bool)
    if cfg.fix_swaps:
        uv, conf, swapped = fix_cross_view_swaps(cameras, uv, conf, PAIRS, cfg)
    tri = triangulate(cameras, uv, conf, cfg)
    conf_used = np.where(tri.used, np.moveaxis(conf, 0, -1), 0.0)  # (F, K, C)
    n_used = tri.used.sum(axis=-1)
    mean_conf = np.where(n_used > 0, conf_used.sum(axis=-1) / np.maximum(n_used, 1), 0.0)
    seen = np.moveaxis(conf >= cfg.min_confidence, 0, -1)  # (F, K, C) which camera saw each point
    ok = np.isfinite(tri.points_m[..., 0])
    if not ok.any():
        raise StageInputError(f"{ctx.trial.name}: no keypoint could be triangulated in any frame. "
                              + seen_report(cams, seen, np.ones_like(ok), list(VIDEO_KEYPOINTS))
                              + f". A point needs at least 2 cameras that see it with confidence >= "
                              f"triangulate.min_confidence ({cfg.min_confidence}); check that setting, that every "
                              "phone films the whole body, and the calibration (calibration/cameras.yaml)")
    TriangulateOutput(times, tri.points_m, tri.error_px, tri.used, mean_conf, cams, seen,
                      swapped.sum(axis=(0, 2))).save(ctx.out_dir)
    err = tri.error_px[ok]
    ctx.summary.update(frames=int(len(times)), triangulated=round(float(ok.mean()), 4), outlier_px=round(tri.outlier_px, 1),
                       reprojection_px_median=round(float(np.median(err)), 2),
                       image_height_px=int(min(min(c.image_size) for c in cameras)),
                       message=f"{len(times)} frames at {fps:.0f} Hz, {100 * ok.mean():.0f}% of points triangulated, "
                               f"reprojection error median {np.median(err) if err.size else float('nan'):.1f} px")


def seen_report(cams: list[str], seen: np.ndarray, where: np.ndarray, names: list[str]) -> str:
    """Plain words on which cameras saw the named keypoints in the frames ``where`` (F, K) marks;
    keypoints seen alike are named together.

    seen: (F, K, C) bool."""
    groups: dict[str, list[str]] = {}
    for name in names:
        k = INDEX[name]
        frames = where[:, k]
        if frames.any():
            shares = ", ".join(f"{c} {100 * seen[frames, k, i].mean():.0f}%" for i, c in enumerate(cams))
            groups.setdefault(shares, []).append(name)
    words = lambda ks: f"all {len(ks)} keypoints" if len(ks) == len(VIDEO_KEYPOINTS) else ", ".join(ks)
    return "; ".join(f"{words(ks)} seen by {shares} of those frames" for shares, ks in groups.items())
