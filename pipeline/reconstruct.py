"""Stages ``triangulate`` and ``filter``: synchronised 2D keypoints -> the video-keypoint .trc.

triangulate: every camera's keypoints are resampled onto one common timeline (the reference
camera's clock, at its frame rate, over the time all cameras recorded), using the offsets from
``sync``; a keypoint is interpolated only between two frames that both have it. Left/right swaps
that a minority of the cameras make are undone from the other views (3+ cameras), then points are
triangulated with outlier-camera rejection (pipeline/triangulation.py).
  points.npz   time_s (frames,), points_m (frames, 20, 3), error_px (frames, 20),
               used (frames, 20, cameras), confidence (frames, 20) mean of the cameras used

filter: wrong points removed, Kalman + RTS smoother, short gaps filled, zero-lag Butterworth
(pipeline/filtering.py).
  keypoints.trc  the 20 video keypoints, metres, world frame (Y up), at the video rate, over the
                 trial's analysable span: frames at the ends where a keypoint of filter.span_keypoints
                 is still missing after gap filling are trimmed (quality.json "span" says what and why)
  quality.json   per keypoint: share of frames triangulated, mean cameras used, reprojection
                 error (mean, median, 95th percentile), measurements gated out, gaps left empty
  keypoints.png  raw and filtered trajectories of a few keypoints, to check by eye
"""
from __future__ import annotations

import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from biomech.trc import MarkerTable, write_trc  # noqa: E402
from calibration.camera import CameraFileError  # noqa: E402
from calibration.session_calibration import cameras_for_videos, session_cameras  # noqa: E402
from core.keypoints import INDEX, LR_PAIRS, VIDEO_KEYPOINTS  # noqa: E402
from pipeline.filtering import measurement_std, smooth_keypoints  # noqa: E402
from core.gaps import analysable_span, describe_runs, nan_runs  # noqa: E402
from pipeline.keypoints2d import read_keypoints_csv  # noqa: E402
from pipeline.runner import StageContext, StageInputError  # noqa: E402
from pipeline.triangulation import fix_cross_view_swaps, triangulate  # noqa: E402

PAIRS = [(INDEX[r], INDEX[l]) for r, l in LR_PAIRS]


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
    cfg = ctx.config["triangulate"]
    cams = [c.id for c in ctx.session.cameras]
    try:
        cameras = session_cameras(ctx.session)
    except CameraFileError as exc:
        raise StageInputError(str(exc)) from None
    sync = json.loads((ctx.stage_dir("sync") / "sync.json").read_text())
    data = {c: read_keypoints_csv(ctx.stage_dir("keypoints") / f"{c}.csv") for c in cams}
    common = {c: data[c][0] + sync["cameras"][c]["offset_s"] for c in cams}
    start = max(t[0] for t in common.values())
    stop = min(t[-1] for t in common.values())
    ref_t = common[cams[0]]
    fps = 1.0 / float(np.median(np.diff(ref_t)))
    if stop - start < 10.0 / fps:
        raise StageInputError(f"{ctx.trial.name}: the cameras' recordings overlap for only {max(stop - start, 0):.2f} s "
                              "after synchronisation; check sync/sync.json and that all phones filmed the same trial")
    times = ref_t[(ref_t >= start - 1e-9) & (ref_t <= stop + 1e-9)]
    videos = json.loads((ctx.stage_dir("frames") / "frames.json").read_text())["cameras"]
    sizes = {c: (videos[c]["width"], videos[c]["height"]) for c in cams
             if videos[c]["width"] is not None}  # None: keypoint files only, no picture to compare
    try:  # refused when a video's aspect differs from its calibration; rescaled or an encoder crop otherwise
        cameras, notes = cameras_for_videos(cameras, sizes, {c: ctx.trial.source(c) for c in cams},
                                            ctx.session.cameras_file)
    except CameraFileError as exc:
        raise StageInputError(str(exc)) from None
    for note in notes:
        ctx.log.warning("%s", note)
    obs = np.stack([resample_keypoints(common[c], data[c][1], times) for c in cams])  # (C, F, K, 3)
    uv, conf = obs[..., :2], np.nan_to_num(obs[..., 2])
    swapped = np.zeros((len(times), len(cams), len(PAIRS)), bool)
    if cfg["fix_swaps"]:
        uv, conf, swapped = fix_cross_view_swaps(cameras, uv, conf, PAIRS, min_conf=cfg["min_confidence"],
                                                   outlier_px=cfg["outlier_px"])
    tri = triangulate(cameras, uv, conf, min_conf=cfg["min_confidence"], outlier_px=cfg["outlier_px"],
                      outlier_scale=cfg["outlier_scale"])
    conf_used = np.where(tri.used, np.moveaxis(conf, 0, -1), 0.0)  # (F, K, C)
    n_used = tri.used.sum(axis=-1)
    mean_conf = np.where(n_used > 0, conf_used.sum(axis=-1) / np.maximum(n_used, 1), 0.0)
    seen = np.moveaxis(conf >= cfg["min_confidence"], 0, -1)  # (F, K, C) which camera saw each point
    ok = np.isfinite(tri.points_m[..., 0])
    if not ok.any():
        raise StageInputError(f"{ctx.trial.name}: no keypoint could be triangulated in any frame. "
                              + _seen_report(cams, seen, np.ones_like(ok), list(VIDEO_KEYPOINTS))
                              + f". A point needs at least 2 cameras that see it with confidence >= "
                              f"triangulate.min_confidence ({cfg['min_confidence']}); check that setting, that every "
                              "phone films the whole body, and the calibration (calibration/cameras.yaml)")
    np.savez_compressed(ctx.out_dir / "points.npz", time_s=times, points_m=tri.points_m, error_px=tri.error_px,
                        used=tri.used, confidence=mean_conf, cameras=np.array(cams), seen=seen,
                        swaps_fixed=swapped.sum(axis=(0, 2)))
    err = tri.error_px[ok]
    ctx.summary.update(frames=int(len(times)), triangulated=round(float(ok.mean()), 4), outlier_px=round(tri.outlier_px, 1),
                       reprojection_px_median=round(float(np.median(err)), 2),
                       image_height_px=int(min(min(c.image_size) for c in cameras)),
                       message=f"{len(times)} frames at {fps:.0f} Hz, {100 * ok.mean():.0f}% of points triangulated, "
                               f"reprojection error median {np.median(err) if err.size else float('nan'):.1f} px")


def _seen_report(cams: list[str], seen: np.ndarray, where: np.ndarray, names: list[str]) -> str:
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


def activity_cutoff(ctx: StageContext, cfg: dict) -> float:
    """The low-pass cutoff: ``filter.cutoff_hz`` when set, else by the activity the trial's name says."""
    if cfg["cutoff_hz"] > 0:
        return float(cfg["cutoff_hz"])
    name = ctx.trial.name.lower()
    if ctx.trial.kind == "static":
        return float(cfg["cutoffs_hz"]["static"])
    for activity, pattern in (("walking", r"walk|gait|run"), ("jumping", r"jump|hop|drop"), ("squats", r"squat|sts|sit|lunge")):
        if re.search(pattern, name):
            return float(cfg["cutoffs_hz"][activity])
    return float(cfg["cutoffs_hz"]["other"])


def check_cutoff(ctx: StageContext, cfg: dict, cutoff: float, rate: float) -> None:
    """A low-pass cutoff at or above the Nyquist frequency (half the frame rate) filters nothing: refuse it."""
    if cutoff < rate / 2:
        return
    key = "filter.cutoff_hz" if cfg["cutoff_hz"] > 0 else f"filter.cutoffs_hz ({ctx.trial.name}'s activity)"
    raise StageInputError(f"{key} is {cutoff:g} Hz, at or above the Nyquist frequency {rate / 2:.4g} Hz of trial "
                          f"{ctx.trial.name!r} (filmed at {rate:.0f} frames/s); set it below {rate / 2:.4g} Hz in "
                          "session.yaml (config: filter:) or with --set, or 0 to choose by activity")


def plot_trajectories(path, time_s: np.ndarray, raw: np.ndarray, smooth: np.ndarray,
                      span: tuple[int, int] | None = None) -> None:
    """A few keypoints' triangulated (dots) and filtered (lines) coordinates; frames outside the
    analysable ``span`` (start, stop) are shaded grey."""
    names = ["RKnee", "LAnkle", "RWrist", "midHip"]
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 8), sharex=True)
    for ax, name in zip(axes, names):
        k = INDEX[name]
        for a, axis_name in enumerate("xyz"):
            ax.plot(time_s, raw[:, k, a], ".", ms=2, alpha=0.4, color=f"C{a}")
            ax.plot(time_s, smooth[:, k, a], lw=1.2, color=f"C{a}", label=axis_name)
        ax.set_ylabel(f"{name} (m)")
        ax.legend(fontsize=7, loc="upper right", ncol=3)
    title = "triangulated (dots) and filtered (lines)"
    if span is not None and (span[0] > 0 or span[1] < len(time_s)):
        title += "; grey: trimmed, outside the analysable span"
        for ax in axes:
            if span[0] > 0:
                ax.axvspan(time_s[0], time_s[span[0]], color="0.85", zorder=0)
            if span[1] < len(time_s):
                ax.axvspan(time_s[span[1] - 1], time_s[-1], color="0.85", zorder=0)
    axes[0].set_title(title)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_filter(ctx: StageContext) -> None:
    cfg = ctx.config["filter"]
    with np.load(ctx.stage_dir("triangulate") / "points.npz") as z:
        time_s, pts, err, used, conf = z["time_s"], z["points_m"], z["error_px"], z["used"], z["confidence"]
        z_cams, z_seen = [str(c) for c in z["cameras"]], z["seen"]
    rate = 1.0 / float(np.median(np.diff(time_s)))
    cutoff = activity_cutoff(ctx, cfg)
    check_cutoff(ctx, cfg, cutoff, rate)
    std = measurement_std(err, np.where(conf > 0, conf, np.nan), cfg["measurement_std_m"], cfg["reprojection_ref_px"])
    res = smooth_keypoints(pts, rate, std, jerk_std=cfg["jerk_std"], gate_sigma=cfg["gate_sigma"], cutoff_hz=cutoff,
                           max_gap_s=cfg["max_gap_s"])
    span = trial_span(ctx, cfg, pts, res.points_m, rate, z_seen, z_cams)
    a, b = span["frames"]
    table = MarkerTable((time_s - time_s[0])[a:b], list(VIDEO_KEYPOINTS), res.points_m[a:b], rate)
    write_trc(ctx.out_dir / "keypoints.trc", table)
    quality: dict = {"rate_hz": round(rate, 3), "cutoff_hz": cutoff, "frames": int(len(time_s)),
                     "span": {k: v for k, v in span.items() if k != "frames"}, "keypoints": {}}
    for k, name in enumerate(VIDEO_KEYPOINTS):
        ok = np.isfinite(pts[:, k, 0])
        e = err[ok, k]
        quality["keypoints"][name] = {
            "triangulated_share": round(float(ok.mean()), 4),
            "cameras_used_mean": round(float(used[ok, k].sum(axis=-1).mean()), 2) if ok.any() else 0.0,
            "reprojection_px_mean": round(float(e.mean()), 2) if e.size else None,
            "reprojection_px_median": round(float(np.median(e)), 2) if e.size else None,
            "reprojection_px_p95": round(float(np.percentile(e, 95)), 2) if e.size else None,
            "gated_out": int(res.rejected[:, k].sum()),
            "gaps_left_empty": [[int(a), int(b)] for a, b in res.long_gaps.get(k, [])],
            "output_share": round(float(np.isfinite(res.points_m[:, k, 0]).mean()), 4),
        }
    (ctx.out_dir / "quality.json").write_text(json.dumps(quality, indent=2))
    plot_trajectories(ctx.out_dir / "keypoints.png", time_s - time_s[0], pts, res.points_m, span["frames"])
    gaps = {VIDEO_KEYPOINTS[k]: runs for k, runs in res.long_gaps.items()}
    for name, runs in gaps.items():
        ctx.log.info("%s: %s has gaps left empty at frames %s", ctx.trial.name, name, describe_runs(runs))
    all_err = err[np.isfinite(err)]
    trimmed = span["trimmed_start_s"] + span["trimmed_end_s"]
    ctx.summary.update(cutoff_hz=cutoff, span_share=span["share"], span_s=[span["start_s"], span["end_s"]],
                       filled_share=span["filled_share"],
                       message=f"{len(time_s)} frames, cutoff {cutoff:g} Hz, reprojection "
                       f"mean {all_err.mean() if all_err.size else float('nan'):.1f} px, {len(gaps)} keypoints with gaps left empty"
                       + (f", {trimmed:.2f} s trimmed at the ends (span {span['start_s']:.2f}-{span['end_s']:.2f} s)"
                          if trimmed > 0 else ""))
    if trimmed > 0:
        ctx.log.warning("%s: analysable span %.2f-%.2f s of %.2f s: %s", ctx.trial.name, span["start_s"], span["end_s"],
                        span["duration_s"], "; ".join(f"{k} {v}" for k, v in span["limited_by"].items()))


def trial_span(ctx: StageContext, cfg: dict, raw: np.ndarray, smooth: np.ndarray, rate: float, seen: np.ndarray,
               cams: list[str]) -> dict:
    """The analysable span of the trial (frames where every ``filter.span_keypoints`` is present after
    gap filling) and what limits it; raises when it is shorter than ``filter.min_span_s``.

    raw, smooth: (frames, 20, 3) triangulated and filtered keypoints; seen: (frames, 20, cameras)."""
    names = list(cfg["span_keypoints"])
    unknown = [n for n in names if n not in INDEX]
    if unknown:
        raise StageInputError(f"filter.span_keypoints names unknown keypoints {unknown}; known: {list(VIDEO_KEYPOINTS)}")
    idx = [INDEX[n] for n in names]
    present = np.isfinite(smooth[:, idx, 0])
    frames = len(smooth)
    span = analysable_span(present)
    a, b = span if span else (0, 0)
    if (b - a) / rate < cfg["min_span_s"]:
        missing = ~np.isfinite(smooth[..., 0])
        worst = sorted(names, key=lambda n: -missing[:, INDEX[n]].mean())
        worst = [n for n in worst if missing[:, INDEX[n]].any()][:6]
        detail = "; ".join(f"{n} missing at frames {describe_runs(nan_runs(~missing[:, INDEX[n]]))}" for n in worst)
        raise StageInputError(
            f"{ctx.trial.name}: the body cannot be reconstructed: the keypoints filter.span_keypoints lists are present "
            f"together for only {(b - a) / rate:.2f} s (filter.min_span_s = {cfg['min_span_s']} s). {detail}. Cameras: "
            + _seen_report(cams, seen, missing, worst)
            + ". Every keypoint needs at least 2 cameras that see it: film the whole body, feet included, in every "
              "phone from the start to the end of the trial, with nothing in front of the subject")
    limited = {}
    for j, n in enumerate(names):
        if a > 0 and not present[a - 1, j]:
            limited.setdefault(n, []).append(f"missing in the first {a} frames")
        if b < frames and not present[b, j]:
            limited.setdefault(n, []).append(f"missing in the last {frames - b} frames")
    measured = np.isfinite(raw[a:b][:, idx, 0])
    return {
        "frames": (a, b),
        "first_frame": a + 1, "last_frame": b,
        "start_s": round(a / rate, 4), "end_s": round((b - 1) / rate, 4), "duration_s": round(frames / rate, 4),
        "share": round((b - a) / frames, 4),
        "trimmed_start_s": round(a / rate, 4), "trimmed_end_s": round((frames - b) / rate, 4),
        "limited_by": {n: " and ".join(v) for n, v in limited.items()},
        # share of the span's body-keypoint positions that were filled over a short gap, not measured
        "filled_share": round(float((~measured).mean()), 4) if b > a else 0.0,
    }
