"""The ``analyse`` stage: joint-angle analysis of a dynamic trial (biomech/analysis.py) and its files.

Reads the ik stage's ``<trial>.mot`` and the filter stage's ``keypoints.trc`` (leg length from the hip,
knee and ankle keypoints; the midHip keypoint's height when the .mot has no pelvis_ty). Never fails on
what it finds in the angles: empty frames are skipped and flagged, a trial without repetitions says so.

Outputs, in output/<trial>/analyse/:
  analysis.json   everything (activity, heading, repetitions, session means and SD, per coordinate
                  range of motion and peaks, flags), machine readable
  reps.csv        one row per repetition (header only when there are none)
  summary.csv     per coordinate range, peaks and their timing, and per rep metric the session mean,
                  SD, min, max and n over the full repetitions
  angles.csv      time_s and one column per rotational coordinate, degrees, pelvis relative to the heading
  analysis.xlsx   sheets reps, summary, angles (the same tables)
  reps.png        knee and hip flexion, left and right, and the pelvis drop, repetitions shaded
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biomech.analysis import Rep, TrialAnalysis, analyse_trial, leg_length_from_keypoints
from pipeline.filter import FilterOutput
from pipeline.ik import IKOutput
from pipeline.runner import StageContext, StageInputError

OUTPUTS = ("analysis.json", "reps.csv", "summary.csv", "angles.csv", "analysis.xlsx", "reps.png")
REP_COLUMNS = [f for f in Rep.__dataclass_fields__]


@dataclass(frozen=True)
class AnalyseOutput:
    """What the report reads back: ``analysis.json`` and the angle curves of ``angles.csv``."""

    analysis: dict[str, Any]
    time_s: np.ndarray  # (frames,)
    angles_deg: dict[str, np.ndarray]  # rotational coordinate -> (frames,), NaN where IK left a frame empty

    @classmethod
    def load(cls, stage_dir: Path) -> AnalyseOutput:
        if not (stage_dir / "analysis.json").is_file() or not (stage_dir / "angles.csv").is_file():
            raise StageInputError(f"{stage_dir}: analysis.json / angles.csv not found; the analyse stage of this trial "
                                  "has not finished")
        df = pd.read_csv(stage_dir / "angles.csv")
        return cls(json.loads((stage_dir / "analysis.json").read_text()), df["time_s"].to_numpy(float),
                   {c: df[c].to_numpy(float) for c in df.columns if c != "time_s"})


def reps_frame(a: TrialAnalysis) -> pd.DataFrame:
    rows = [r.to_json() for r in a.squats.reps] if a.squats else []
    return pd.DataFrame(rows, columns=REP_COLUMNS)


def summary_frame(a: TrialAnalysis) -> pd.DataFrame:
    rows = []
    for c in a.coordinates:
        j = c.to_json()
        rows.append({"group": "coordinate", "quantity": c.coordinate, "unit": c.unit, "mean": j["mean"], "sd": j["sd"],
                     "min": j["min"], "max": j["max"], "range": j["range"], "n": None,
                     "time_of_min_s": j["time_of_min_s"], "time_of_max_s": j["time_of_max_s"],
                     "valid_share": j["valid_share"]})
    if a.squats:
        sq = a.squats.to_json()
        for key in ("reps_full", "reps_partial", "reps_cut"):
            rows.append({"group": "reps", "quantity": key, "unit": "count", "mean": sq[key], "n": sq[key]})
        for m, st in sq["session"].items():
            unit = "%" if m.endswith("_pct") else "% of leg" if m.endswith("_pct_leg") else m.rsplit("_", 1)[-1]
            rows.append({"group": "reps", "quantity": m, "unit": unit, "mean": st["mean"], "sd": st["sd"],
                         "min": st["min"], "max": st["max"],
                         "range": None if st["min"] is None else round(st["max"] - st["min"], 2), "n": st["n"]})
    cols = ["group", "quantity", "unit", "mean", "sd", "min", "max", "range", "n", "time_of_min_s", "time_of_max_s",
            "valid_share"]
    return pd.DataFrame(rows, columns=cols).astype({"n": "Int64"})


def angles_frame(a: TrialAnalysis) -> pd.DataFrame:
    """time_s and every rotational coordinate in degrees (empty cells where IK left a frame empty)."""
    t = a.table
    mask = t.angle_mask()
    deg = t.in_degrees()
    data = {"time_s": np.round(t.time_s, 6)}
    data.update({n: np.round(deg[:, j], 4) for j, n in enumerate(t.names) if mask[j]})
    return pd.DataFrame(data)


def write_analysis(a: TrialAnalysis, out_dir: Path, settings: dict, plot: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = a.to_json() | {"settings": settings}
    (out_dir / "analysis.json").write_text(json.dumps(doc, indent=2, allow_nan=False, default=str))
    reps, summary, angles = reps_frame(a), summary_frame(a), angles_frame(a)
    reps.to_csv(out_dir / "reps.csv", index=False)
    summary.to_csv(out_dir / "summary.csv", index=False)
    angles.to_csv(out_dir / "angles.csv", index=False)
    with pd.ExcelWriter(out_dir / "analysis.xlsx", engine="openpyxl") as xl:
        reps.to_excel(xl, sheet_name="reps", index=False)
        summary.to_excel(xl, sheet_name="summary", index=False)
        angles.to_excel(xl, sheet_name="angles", index=False)
    if plot:
        plot_reps(a, out_dir / "reps.png")


def plot_reps(a: TrialAnalysis, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = a.table.time_s
    colours = {"full": "tab:green", "partial": "tab:orange", "cut_start": "0.6", "cut_end": "0.6"}
    panels = [("knee flexion (deg)", "knee_angle"), ("hip flexion (deg)", "hip_flexion")]
    seg = a.squats.segmentation if a.squats else None
    n = len(panels) + (seg is not None)
    fig, axes = plt.subplots(n, 1, figsize=(11.5, 2.4 * n + 0.6), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, (label, coord) in zip(axes, panels):
        for side, colour, name in (("r", "tab:red", "right"), ("l", "tab:blue", "left")):
            c = f"{coord}_{side}"
            if c in a.table.names:
                x = np.degrees(a.table.column(c))
                ax.plot(t, x, color=colour, lw=1.3, label=name)
                empty = ~np.isfinite(x)
                if empty.any():  # where IK left this side empty: a bar along the bottom of the panel
                    ax.plot(t, np.where(empty, 0.02 if side == "r" else 0.05, np.nan), color=colour, lw=3,
                            transform=ax.get_xaxis_transform(), label=f"{name} empty (not seen)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if seg is not None:
        ax = axes[-1]
        scale, unit = (100.0, "cm") if seg.unit == "m" else (1.0, "deg")
        ax.plot(t, seg.signal * scale, color="k", lw=1.2, label=f"{a.squats.signal_source} drop (smoothed)")
        ax.axhline(seg.standing_threshold * scale, color="0.4", ls=":", lw=1, label="standing band")
        ax.set_ylabel(f"depth ({unit})")
        ax.grid(alpha=0.3)
        for r, w in zip(a.squats.reps, seg.reps):
            for axx in axes:
                axx.axvspan(r.start_s, r.end_s, color=colours[r.status], alpha=0.15, lw=0)
                axx.axvline(r.bottom_s, color=colours[r.status], lw=0.8, alpha=0.6)
            if w.pause_end > w.pause_start:
                ax.axvspan(t[w.pause_start], t[w.pause_end], color=colours[r.status], alpha=0.3, lw=0,
                           label="pause at the bottom")
            axes[0].text(r.bottom_s, 1.0, f"{r.number} {r.status}" if r.status != "full" else str(r.number),
                         transform=axes[0].get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    if seg is not None:
        handles, labels = axes[-1].get_legend_handles_labels()
        keep = {lab: h for h, lab in zip(handles, labels) if lab and not lab.startswith("_")}
        axes[-1].legend(keep.values(), keep.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1].set_xlabel("time (s)")
    title = f"{a.trial}: {a.activity}"
    if a.squats:
        title += f", {len(a.squats.counted())} full reps (green), partial orange, cut grey"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _keypoints(ctx: StageContext, time_s: np.ndarray) -> tuple[np.ndarray | None, float | None]:
    """(midHip height (frames,) at the .mot's times or None, leg length (m) or None) from the filter
    stage's keypoints: leg length = hip-knee + knee-ankle, median over the standing frames' both legs."""
    fdir = ctx.stage_dir("filter")
    if not FilterOutput.trc_path(fdir).is_file():
        return None, None
    trc = FilterOutput.load(fdir).keypoints
    rows = np.clip(np.searchsorted(trc.time_s, time_s - 1e-6), 0, len(trc.time_s) - 1)
    mid = trc.marker("midHip")[rows, 1] if "midHip" in trc.names else None
    lengths = []
    for side in "RL":
        names = [f"{side}Hip", f"{side}Knee", f"{side}Ankle"]
        if all(n in trc.names for n in names):
            hip, knee, ankle = (trc.marker(n)[rows] for n in names)
            height = mid if mid is not None else hip[:, 1]
            standing = np.isfinite(height) & (height >= np.nanpercentile(height, 75)) if np.isfinite(height).any() else None
            lengths.append(leg_length_from_keypoints(hip, knee, ankle, standing))
    lengths = [v for v in lengths if v is not None]
    return mid, (float(np.mean(lengths)) if lengths else None)


def run_analyse(ctx: StageContext) -> None:
    cfg = ctx.settings.analyse
    ik = IKOutput.load(ctx.stage_dir("ik"), ctx.trial.name)
    table = ik.angles
    if len(table.time_s) < 2:
        raise StageInputError(f"{ik.path}: {len(table.time_s)} frame(s); nothing to analyse")
    midhip, leg = _keypoints(ctx, table.time_s)
    a = analyse_trial(table, ctx.trial.name, cfg, pelvis_height_m=midhip, leg_length_m=leg)
    write_analysis(a, ctx.out_dir, asdict(cfg), plot=cfg.plot)
    ctx.summary.update(a.key_numbers(), message=a.message())
    if a.squats is not None:
        for note in a.squats.segmentation.notes:
            ctx.log.info("%s/analyse: %s", ctx.trial.name, note)
        if a.squats.segmentation.starts_mid_rep or a.squats.segmentation.ends_mid_rep:
            where = " and ".join(w for w, f in (("starts", a.squats.segmentation.starts_mid_rep),
                                                ("ends", a.squats.segmentation.ends_mid_rep)) if f)
            ctx.log.warning("%s/analyse: the trial %s mid-repetition; that repetition is reported as cut, not counted",
                            ctx.trial.name, where)
        if not a.squats.reps:
            ctx.log.warning("%s/analyse: no squat repetition found (%s)", ctx.trial.name,
                            "; ".join(a.squats.segmentation.notes) or "no dip in pelvis height")
    if a.flags:
        ctx.log.info("%s/analyse: %s", ctx.trial.name, "; ".join(a.flags[:6]))
