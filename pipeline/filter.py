"""Stage ``filter``: wrong points removed, Kalman + RTS smoother, short gaps filled, zero-lag
Butterworth (pipeline/filter_kalman.py), then the trial's analysable span.

Outputs (``FilterOutput``):
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from biomech.trc import MarkerTable, read_trc, write_trc  # noqa: E402
from core.gaps import analysable_span, describe_runs, nan_runs  # noqa: E402
from core.keypoints import INDEX, VIDEO_KEYPOINTS  # noqa: E402
from pipeline.filter_kalman import measurement_std, smooth_keypoints  # noqa: E402
from pipeline.runner import StageContext, StageInputError  # noqa: E402
from pipeline.triangulate import TriangulateOutput, seen_report  # noqa: E402
from sessions.settings import FilterSettings  # noqa: E402


@dataclass(frozen=True)
class FilterOutput:
    """What the filter stage hands on: the filtered video keypoints over the analysable span
    (``keypoints.trc``) and their quality numbers (``quality.json``)."""

    keypoints: MarkerTable
    quality: dict[str, Any]

    TRC = "keypoints.trc"

    def save(self, out_dir: Path) -> None:
        write_trc(out_dir / self.TRC, self.keypoints)
        (out_dir / "quality.json").write_text(json.dumps(self.quality, indent=2))

    @classmethod
    def trc_path(cls, stage_dir: Path) -> Path:
        """The marker file itself, for the OpenSim tools that read it (scale, ik)."""
        return stage_dir / cls.TRC

    @classmethod
    def load(cls, stage_dir: Path) -> FilterOutput:
        return cls(read_trc(stage_dir / cls.TRC), json.loads((stage_dir / "quality.json").read_text()))


def activity_cutoff(ctx: StageContext, cfg: FilterSettings) -> float:
    """The low-pass cutoff: ``filter.cutoff_hz`` when set, else by the activity the trial's name says."""
    if cfg.cutoff_hz > 0:
        return float(cfg.cutoff_hz)
    name = ctx.trial.name.lower()
    if ctx.trial.kind == "static":
        return float(cfg.cutoffs_hz["static"])
    for activity, pattern in (("walking", r"walk|gait|run"), ("jumping", r"jump|hop|drop"), ("squats", r"squat|sts|sit|lunge")):
        if re.search(pattern, name):
            return float(cfg.cutoffs_hz[activity])
    return float(cfg.cutoffs_hz["other"])


def check_cutoff(ctx: StageContext, cfg: FilterSettings, cutoff: float, rate: float) -> None:
    """A low-pass cutoff at or above the Nyquist frequency (half the frame rate) filters nothing: refuse it."""
    if cutoff < rate / 2:
        return
    key = "filter.cutoff_hz" if cfg.cutoff_hz > 0 else f"filter.cutoffs_hz ({ctx.trial.name}'s activity)"
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
    cfg = ctx.settings.filter
    tri = TriangulateOutput.load(ctx.stage_dir("triangulate"))
    time_s, pts, err, used, conf = tri.time_s, tri.points_m, tri.error_px, tri.used, tri.confidence
    rate = 1.0 / float(np.median(np.diff(time_s)))
    cutoff = activity_cutoff(ctx, cfg)
    check_cutoff(ctx, cfg, cutoff, rate)
    std = measurement_std(err, np.where(conf > 0, conf, np.nan), cfg.measurement_std_m, cfg.reprojection_ref_px)
    res = smooth_keypoints(pts, rate, std, cfg, cutoff)
    span = trial_span(ctx, cfg, pts, res.points_m, rate, tri.seen, tri.cameras)
    a, b = span["frames"]
    table = MarkerTable((time_s - time_s[0])[a:b], list(VIDEO_KEYPOINTS), res.points_m[a:b], rate)
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
    FilterOutput(table, quality).save(ctx.out_dir)
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


def trial_span(ctx: StageContext, cfg: FilterSettings, raw: np.ndarray, smooth: np.ndarray, rate: float, seen: np.ndarray,
               cams: list[str]) -> dict:
    """The analysable span of the trial (frames where every ``filter.span_keypoints`` is present after
    gap filling) and what limits it; raises when it is shorter than ``filter.min_span_s``.

    raw, smooth: (frames, 20, 3) triangulated and filtered keypoints; seen: (frames, 20, cameras)."""
    names = list(cfg.span_keypoints)
    unknown = [n for n in names if n not in INDEX]
    if unknown:
        raise StageInputError(f"filter.span_keypoints names unknown keypoints {unknown}; known: {list(VIDEO_KEYPOINTS)}")
    idx = [INDEX[n] for n in names]
    present = np.isfinite(smooth[:, idx, 0])
    frames = len(smooth)
    span = analysable_span(present)
    a, b = span if span else (0, 0)
    if (b - a) / rate < cfg.min_span_s:
        missing = ~np.isfinite(smooth[..., 0])
        worst = sorted(names, key=lambda n: -missing[:, INDEX[n]].mean())
        worst = [n for n in worst if missing[:, INDEX[n]].any()][:6]
        detail = "; ".join(f"{n} missing at frames {describe_runs(nan_runs(~missing[:, INDEX[n]]))}" for n in worst)
        raise StageInputError(
            f"{ctx.trial.name}: the body cannot be reconstructed: the keypoints filter.span_keypoints lists are present "
            f"together for only {(b - a) / rate:.2f} s (filter.min_span_s = {cfg.min_span_s} s). {detail}. Cameras: "
            + seen_report(cams, seen, missing, worst)
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
