"""The clinician's report: a per-trial ``report`` stage (figures and what they show) and the session's
document, ``output/report.html`` and ``output/report.pdf`` (biomech/report.py builds and renders it).

The stage (dynamic trials) reads the analyse stage's ``analysis.json`` and ``angles.csv`` and writes, in
output/<trial>/report/:
  curves.png      hip, knee and ankle flexion, hip adduction, pelvis tilt and lumbar extension over time
                  (``report.curves``), right red, left blue, repetitions shaded
  asymmetry.png   left/right asymmetry index per metric: each repetition and the mean
  section.json    what the trial's section shows: key results, the repetition table, figures, notes

The session's document is assembled after the verdicts (``write_session_report``, called at the end of
``pipeline.orchestrate.run_session`` and by ``python app.py report SESSION``). Besides the stage's
files it reads what the verdict was judged on (every stage's manifest summary, sync.json, the static
trial's scaling fit), ``<trial>/verdict.json``, ``summary.json`` and, where it exists, the mocap
comparison in ``<trial>/compare/``. Only current stage folders are read: outputs moved aside as
``<stage>.stale/`` are never shown. A trial whose stages failed still gets its section: the verdict
and the quality numbers that exist.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biomech.report import (NOT_RUN, BatchRow, BatchTrial, ExpectedAccuracy, Figure, QualityItem, SessionData, TrialData,
                            build_document, fmt, render_batch_index, render_html, render_pdf)
from core.digest import file_sha256
from models.augmenter_validation import expected_accuracy, load_validation
from pipeline.analyse import AnalyseOutput
from pipeline.frames import FramesOutput
from pipeline.runner import StageContext, read_manifest
from pipeline.scale import ScaleOutput
from pipeline.sync import SyncOutput
from sessions.settings import VerdictSettings
from pipeline.verdict import CHECKS, grade
from sessions.session import Session

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("curves.png", "asymmetry.png", "section.json")
REP_COLOURS = {"full": "tab:green", "partial": "tab:orange", "cut_start": "0.6", "cut_end": "0.6"}
# How a coordinate reads in plain words (sign conventions of our model, as OpenSim's).
CURVE_TITLES = {
    "hip_flexion": "hip flexion (+) / extension (-)",
    "knee_angle": "knee flexion",
    "ankle_angle": "ankle dorsiflexion (+) / plantarflexion (-)",
    "hip_adduction": "hip adduction (+) / abduction (-)",
    "pelvis_tilt": "pelvis tilt (+ backwards, - forwards)",
    "lumbar_extension": "lumbar extension (+) / flexion (-)",
}
ASYM_METRICS = (("knee flexion", "knee_flexion_asymmetry_pct"), ("hip flexion", "hip_flexion_asymmetry_pct"),
                ("ankle dorsiflexion", "ankle_dorsiflexion_asymmetry_pct"))
# The quality numbers the verdict judges, in plain words: check key -> (label, what it means).
QUALITY_WORDS = {
    "subject_coverage": ("subject followed (worst camera)", "share of frames in which the same person was followed"),
    "sync_confidence": ("camera sync correlation (worst)", "how well the cameras' movements agree once aligned in time"),
    "triangulated_share": ("keypoints placed in 3D", "share of keypoint positions seen by enough cameras"),
    "reprojection_px_per_1000px": ("reprojection error", "how far the cameras' views of the same point disagree "
                                   "(median; px per 1000 px of image)"),
    "span_share": ("analysable span", "share of the trial kept (keypoints missing at the ends are trimmed)"),
    "filled_share": ("filled over short gaps", "share of body keypoint positions interpolated, not measured"),
    "bridged_frame_share": ("frames bridged over long gaps", "frames where angles next to a missing keypoint are empty"),
    "static_marker_rms_mm": ("standing-pose marker error", "how well the scaled model fits the standing pose (RMS)"),
    "ik_marker_rms_mm": ("IK marker error", "how closely the model follows the markers (mean RMS)"),
    "ik_flagged_share": ("frames with a large marker error", "share of frames above ik.flag_rms_mm"),
    "out_of_range_share": ("angle outside the model's range", "share of frames with the worst joint angle out of range"),
}


# ---------------------------------------------------------------------------------------------
# The stage


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _shade_reps(ax: Any, reps: list[dict[str, Any]]) -> None:
    for r in reps:
        ax.axvspan(r["start_s"], r["end_s"], color=REP_COLOURS.get(r["status"], "0.6"), alpha=0.13, lw=0)


def plot_curves(time_s: np.ndarray, angles: dict[str, np.ndarray], curves: list[str], reps: list[dict[str, Any]],
                title: str, path: Path, dpi: int) -> list[str]:
    """Angle-time curves, one panel per entry of ``curves`` (``<name>_r``/``_l`` overlaid, right red, left
    blue, or ``<name>`` in black), repetitions shaded. Returns the curves that had no data."""
    plt = _plt()
    present = [c for c in curves if f"{c}_r" in angles or f"{c}_l" in angles or c in angles]
    missing = [c for c in curves if c not in present]
    if not present:
        return missing
    cols = 2 if len(present) > 1 else 1
    rows = int(np.ceil(len(present) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.3 * rows + 0.8), sharex=True, squeeze=False)
    for k, c in enumerate(present):
        ax = axes[k // cols][k % cols]
        _shade_reps(ax, reps)
        if c in angles:
            ax.plot(time_s, angles[c], color="k", lw=1.3)
        for side, colour in (("r", "tab:red"), ("l", "tab:blue")):
            if f"{c}_{side}" in angles:
                ax.plot(time_s, angles[f"{c}_{side}"], color=colour, lw=1.3)
        ax.set_title(CURVE_TITLES.get(c, c.replace("_", " ")) + " (deg)", fontsize=10)
        ax.grid(alpha=0.3)
    for k in range(len(present), rows * cols):
        axes[k // cols][k % cols].axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color="tab:red", lw=2, label="right"), Line2D([], [], color="tab:blue", lw=2, label="left")]
    statuses = list(dict.fromkeys(r["status"] for r in reps))
    words = {"full": "repetition", "partial": "partial repetition", "cut_start": "cut repetition", "cut_end": "cut repetition"}
    for s in dict.fromkeys(words[s] for s in statuses if s in words):
        st = next(k for k, v in words.items() if v == s)
        handles.append(Patch(color=REP_COLOURS[st], alpha=0.3, label=s))
    fig.legend(handles=handles, loc="upper right", ncol=len(handles), fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return missing


def plot_asymmetry(reps: list[dict[str, Any]], path: Path, dpi: int) -> bool:
    """Asymmetry index per metric over the full repetitions: a bar for the mean, a dot per repetition.
    Returns False (and writes nothing) when no repetition has an index."""
    full = [r for r in reps if r.get("status") == "full"]
    rows = [(label, [r[key] for r in full if r.get(key) is not None]) for label, key in ASYM_METRICS]
    rows = [(label, v) for label, v in rows if v]
    if not rows:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.65 * len(rows) + 1.4))
    lim = max(10.0, max(abs(x) for _, v in rows for x in v) * 1.25)
    for i, (label, v) in enumerate(rows):
        m = float(np.mean(v))
        ax.barh(i, m, color="tab:red" if m > 0 else "tab:blue", alpha=0.55, height=0.55)
        ax.plot(v, [i] * len(v), "o", color="k", ms=4)
        ax.text(lim * 0.98, i, f"mean {m:+.1f} %", va="center", ha="right", fontsize=9)
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.set_xlim(-lim, lim)
    ax.invert_yaxis()
    ax.set_xlabel("asymmetry index (%):  <- left larger   |   right larger ->")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Left/right asymmetry of the peaks (bar: mean of the full repetitions; dots: each repetition)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return True


def _stat(session: dict[str, Any], key: str) -> dict[str, Any]:
    return session.get(key) or {}


def _mean_sd(session: dict[str, Any], key: str, spec: str, unit: str) -> str:
    st = _stat(session, key)
    if st.get("mean") is None:
        return "n/a"
    sd = f" (SD {fmt(st['sd'], spec)})" if st.get("sd") is not None else ""
    return f"{fmt(st['mean'], spec)} {unit}{sd}"


def key_results(analysis: dict[str, Any]) -> list[list[str]]:
    """The trial's main numbers in words: repetitions and session means, or ranges of motion."""
    sq = analysis.get("squats")
    if sq:
        s = sq.get("session", {})
        lr = lambda key, spec=".0f": f"R {_mean_sd(s, key.format('r'), spec, 'deg')}  /  L {_mean_sd(s, key.format('l'), spec, 'deg')}"
        asym = _stat(s, "knee_flexion_asymmetry_pct").get("mean")
        rows = [
            ["repetitions counted", f"{sq['reps_full']} full" + (f" ({sq['reps_partial']} partial and {sq['reps_cut']} cut "
                                                                 f"listed, not counted)" if sq['reps_partial'] or sq['reps_cut'] else "")],
            ["squat depth (mean)", _mean_sd(s, "depth_cm", ".1f", "cm") +
             (f", {_mean_sd(s, 'depth_pct_leg', '.0f', '% of leg length')}" if _stat(s, "depth_pct_leg").get("mean") is not None else "")],
            ["peak knee flexion (mean)", lr("knee_flexion_peak_{}_deg")],
            ["peak hip flexion (mean)", lr("hip_flexion_peak_{}_deg")],
            ["peak ankle dorsiflexion (mean)", lr("ankle_dorsiflexion_peak_{}_deg")],
            ["knee flexion asymmetry (mean)", "n/a" if asym is None else
             f"{asym:+.1f} % ({'right' if asym > 0 else 'left'} flexes further)" if asym else "0 %"],
            ["timing (mean)", f"descent {_mean_sd(s, 'descent_s', '.2f', 's')}, pause {_mean_sd(s, 'pause_s', '.2f', 's')}, "
                              f"ascent {_mean_sd(s, 'ascent_s', '.2f', 's')}"],
        ]
        return rows
    coords = analysis.get("coordinates", {})
    rows = []
    for name in ("hip_flexion_r", "hip_flexion_l", "knee_angle_r", "knee_angle_l", "ankle_angle_r", "ankle_angle_l"):
        c = coords.get(name)
        if c and c.get("range") is not None:
            rows.append([f"{name.replace('_', ' ')} range of motion",
                         f"{c['range']:.0f} deg ({c['min']:.0f} to {c['max']:.0f})"])
    return rows


EMPTY_FLAG = re.compile(r"^(\w+): (\d+) of (\d+) frames empty \(not seen\); skipped in every metric$")


def plain_flags(flags: list[str]) -> list[str]:
    """The analysis' flags, with the per-coordinate 'frames empty' ones merged into one sentence."""
    empty = [m for m in map(EMPTY_FLAG.match, flags) if m]
    rest = [f for f in flags if not EMPTY_FLAG.match(f)]
    if empty:
        rest.insert(0, "Joint angles left empty where a keypoint they depend on was not seen (skipped in every number "
                       "above): " + ", ".join(f"{m[1]} {m[2]} of {m[3]} frames" for m in empty) + ".")
    return rest


def run_report(ctx: StageContext) -> None:
    """The trial's figures and section.json (module docstring)."""
    cfg = ctx.settings.report
    done = AnalyseOutput.load(ctx.stage_dir("analyse"))
    analysis, time_s, angles = done.analysis, done.time_s, done.angles_deg
    reps = (analysis.get("squats") or {}).get("reps", [])
    dpi = int(cfg.dpi)
    out = ctx.out_dir
    figures, notes = [], []
    title = f"{ctx.trial.name}: joint angles over time" + (f", {sum(r['status'] == 'full' for r in reps)} repetitions shaded" if reps else "")
    missing = plot_curves(time_s, angles, list(cfg.curves), reps, title, out / "curves.png", dpi)
    if (out / "curves.png").is_file():
        figures.append({"file": "curves.png", "caption": "Joint angles over time (degrees), right red, left blue; pelvis "
                        "and trunk in black. Pelvis angles are relative to the subject's own facing direction. Shaded: "
                        "squat repetitions (green full, orange partial, grey cut). Gaps: the joint was not seen."})
    if missing:
        notes.append(f"not in this trial's joint angles, so not plotted: {', '.join(missing)}")
    if plot_asymmetry(reps, out / "asymmetry.png", dpi):
        figures.append({"file": "asymmetry.png", "caption": "Asymmetry at a glance: (right - left) / mean x 100 % of "
                        "each repetition's peak; positive (red, to the right) = right side larger, negative (blue) = "
                        "left side larger."})
    elif reps:
        notes.append("no asymmetry index: no full repetition had both sides' peaks")
    notes += plain_flags(analysis.get("flags", []))
    notes += (analysis.get("squats") or {}).get("notes", [])
    section = {"trial": ctx.trial.name, "activity": analysis.get("activity", ""), "results": key_results(analysis),
               "reps": reps, "figures": figures, "notes": notes,
               "span_s": [analysis.get("start_s"), analysis.get("end_s")]}
    (out / "section.json").write_text(json.dumps(section, indent=2))
    ctx.summary.update(figures=len(figures), reps=len(reps), message=f"{len(figures)} figures, {len(reps)} repetitions")


# ---------------------------------------------------------------------------------------------
# The session's document


@dataclass
class ReportFiles:
    html: Path
    pdf: Path | None
    json: Path
    pdf_pages: int


def software_version() -> str:
    """``git describe`` of the project's code, else 'unknown'."""
    try:
        res = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--tags"], capture_output=True,
                             text=True, timeout=10)
        return res.stdout.strip() or "unknown" if res.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _maybe(load, path: Path):
    """What ``load`` makes of a file or stage folder for the report, or None when it is missing or
    unreadable (the report shows what there is)."""
    try:
        return load(path)
    except (OSError, ValueError, KeyError):
        return None


def _json(path: Path) -> dict[str, Any] | None:
    return _maybe(lambda p: json.loads(p.read_text()), path)


def _summaries(tdir: Path) -> dict[str, dict[str, Any]]:
    """stage -> manifest summary of every current stage folder of a trial."""
    out = {}
    if tdir.is_dir():
        for folder in sorted(p for p in tdir.iterdir() if p.is_dir() and not p.name.startswith(".") and "." not in p.name):
            m = read_manifest(folder)
            if m is not None:
                out[folder.name] = m.get("summary", {})
    return out


def quality_items(summaries: dict[str, dict[str, Any]], sync: dict[str, Any] | None, kind: str,
                  limits: VerdictSettings) -> list[QualityItem]:
    """The data-quality page of a trial: every number the verdict judges, with its usual range (the
    'doubtful' limit of ``limits``) and how it was judged, plus the cameras and their sync offsets."""
    items: list[QualityItem] = []
    frames = summaries.get("frames", {})
    if frames.get("fps"):
        items.append(QualityItem("cameras used", ", ".join(f"{c} ({fps:g} fps)" for c, fps in frames["fps"].items()),
                                 meaning="cameras whose videos or keypoint files were used"))
    if sync and sync.get("cameras") and kind != "static":  # standing still gives nothing to sync on
        d, u = limits.sync_confidence
        for cam, s in sync["cameras"].items():
            if cam == sync.get("reference_camera"):
                continue
            r = s.get("confidence")
            level = "" if r is None else grade(r, d, u, higher_is_worse=False)
            items.append(QualityItem(f"sync {cam} vs {sync.get('reference_camera')}",
                                     f"offset {1000 * s['offset_s']:+.0f} ms, r {fmt(r, '.2f')}",
                                     f"r ≥ {d:.2f}", level,
                                     "time offset found between the phones, and the correlation it gave"))
    for check in CHECKS:
        if check.stage not in summaries or kind not in check.kinds:
            continue
        s = summaries[check.stage]
        v = check.value(s)
        if v is None:
            continue
        d, u = getattr(limits, check.key)
        level = grade(v, d, u, check.higher_is_worse)
        label, meaning = QUALITY_WORDS.get(check.key, (check.key, ""))
        value = check.unit(v)
        if check.key == "reprojection_px_per_1000px" and s.get("reprojection_px_median") is not None:
            value = f"{value} per 1000 px ({s['reprojection_px_median']:.1f} px median)"
        elif check.key == "span_share" and s.get("span_s"):
            value = f"{value} ({s['span_s'][0]:.2f}-{s['span_s'][1]:.2f} s)"
        elif check.key == "ik_marker_rms_mm":
            value = f"{value} mm" + (f" (worst frame {s['marker_rms_max_mm']:.0f} mm)" if s.get("marker_rms_max_mm") else "")
        elif check.key == "static_marker_rms_mm":
            value = f"{value} mm"
        usual = f"{'≤' if check.higher_is_worse else '≥'} {check.unit(d)}"
        items.append(QualityItem(label, value, usual, level, meaning))
    return items


def _recording(session: Session, name: str, tdir: Path, summaries: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    rows = []
    cameras = _maybe(FramesOutput.load_records, tdir / "frames")
    if cameras:
        durations = [c.get("duration_s") for c in cameras.values() if c.get("duration_s")]
        if durations:
            rows.append(("duration", f"{max(durations):.1f} s"))
        rows.append(("cameras", ", ".join(f"{cam}: {c.get('frames')} frames at {c.get('fps_measured') or c.get('fps_nominal') or 0:.0f} fps"
                                          f" ({c.get('source', 'video')})" for cam, c in cameras.items())))
    trial = session.trial(name)
    if trial.mocap:
        rows.append(("mocap reference", trial.mocap.name))
    return rows


def _static_fit(tdir: Path, summaries: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    s = summaries.get("scale")
    if not s:
        return []
    rows = [("markers used", str(s.get("markers", ""))),
            ("standing pose window", "-".join(f"{x:.2f}" for x in s.get("time_range_s", [])) + " s"),
            ("marker error (RMS)", f"{fmt(s.get('static_marker_rms_mm'), '.1f')} mm"),
            ("largest marker error", f"{fmt(s.get('static_marker_max_mm'), '.1f')} mm")]
    scale = _maybe(ScaleOutput.load, tdir / "scale")
    factors = (scale.summary.get("scale_factors") if scale else None) or {}
    seg = {k: v for k, v in factors.items() if k in ("pelvis", "femur_r", "femur_l", "tibia_r", "tibia_l", "torso")}
    if seg:
        rows.append(("segment scale factors", ", ".join(f"{k} {np.mean(v):.2f}" for k, v in seg.items())))
    return rows


def _figure(path: Path, caption: str) -> Figure | None:
    return Figure(path.read_bytes(), caption) if path.is_file() else None


def _outcome_notes(summary: dict[str, Any] | None, name: str) -> list[str]:
    """The last run's failed, blocked and unavailable stages of a trial, in a few lines."""
    if not summary:
        return []
    mine = [o for o in summary.get("outcomes", []) if o["trial"] == name]
    notes = [f"stage {o['stage']} FAILED: {o['message']}" for o in mine if o["status"] == "FAILED"]
    blocked = [o["stage"] for o in mine if o["status"] == "blocked"]
    if blocked:
        notes.append(f"not run, waiting for an earlier stage: {', '.join(blocked)}")
    notes += [f"stage {o['stage']} not available yet" + (f" ({o['message']})" if o.get("message") else "")
              for o in mine if o["status"] == "not available yet"]
    return notes


def trial_accuracy(summaries: dict[str, dict[str, Any]], activity: str,
                   settings: dict[str, Any]) -> tuple[ExpectedAccuracy | None, str]:
    """The typical errors the accuracy benchmark measured for this trial's activity with the augmenter weights
    its augment stage used (models/augmenter_validation.py), or (None, why not)."""
    weights = summaries.get("augment", {}).get("weights")
    if not weights:
        return None, "No accuracy measurement applies: this trial's angles were not made from augmented markers."
    path = Path(weights)
    if not path.is_file():
        return None, f"No accuracy measurement: the augmenter weights this trial used are gone ({path})."
    cameras = len(summaries.get("frames", {}).get("fps", {})) or 2
    return expected_accuracy(load_validation(path), file_sha256(path), activity, cameras, settings)


def trial_data(session: Session, name: str, limits: VerdictSettings, summary: dict[str, Any] | None,
               settings: dict[str, Any] | None = None) -> TrialData:
    """What the report shows of one trial, from its current outputs (``settings``: the run's effective config,
    which the typical errors are checked against)."""
    trial = session.trial(name)
    tdir = session.output_dir / name
    summaries = _summaries(tdir)
    verdict = _json(tdir / "verdict.json")
    level = verdict["level"] if verdict else NOT_RUN
    t = TrialData(name, trial.kind, level, list(verdict["reasons"]) if verdict else [])
    t.recording = _recording(session, name, tdir, summaries)
    sync_out = _maybe(SyncOutput.load, tdir / "sync") if "sync" in summaries else None
    sync = sync_out.doc if sync_out else None
    t.quality = quality_items(summaries, sync, trial.kind, limits)
    if trial.kind == "static":
        t.static_fit = _static_fit(tdir, summaries)
    section = _json(tdir / "report" / "section.json") if "report" in summaries else None
    if section:
        t.activity = section.get("activity", "")
        t.results = [tuple(r) for r in section.get("results", [])]
        t.reps = section.get("reps", [])
        t.figures = [f for f in (_figure(tdir / "report" / x["file"], x["caption"]) for x in section.get("figures", [])) if f]
        t.notes = list(section.get("notes", []))
        if t.results:
            t.accuracy, t.accuracy_note = trial_accuracy(summaries, t.activity, settings if settings is not None else session.config)
    elif trial.kind == "dynamic" and level != NOT_RUN:
        t.notes.append("No joint-angle results for this trial: the stages that make them did not finish (below).")
    t.notes += _outcome_notes(summary, name)
    cdir = tdir / "compare"
    comparison = _json(cdir / "comparison.json") if cdir.is_dir() else None
    if comparison is not None:
        t.comparison = comparison
        t.comparison_figures = [f for f in (
            _figure(cdir / "comparison.png", "Our joint angles (colour) over the mocap reference's (black), after the time shift."),
            _figure(cdir / "bland_altman.png", "Bland-Altman: difference (ours - mocap) against the mean of both; "
                    "lines at the mean difference and +-1.96 SD.")) if f]
    return t


def session_data(session: Session, settings: dict[str, Any] | None = None) -> SessionData:
    """The report's data from a session's outputs; ``settings``: the run's effective config (default:
    the session's config as loaded)."""
    out = session.output_dir
    summary = _json(out / "summary.json")
    settings = settings if settings is not None else session.config
    limits = VerdictSettings.from_dict(settings["verdict"], "verdict")
    trials = [trial_data(session, t.name, limits, summary, settings) for t in session.trials]
    trials.sort(key=lambda t: t.kind != "dynamic")  # results first, the standing trial after
    s = session.subject
    return SessionData(str(session.root), s.id, s.height_m, s.mass_kg, s.sex,
                       (summary or {}).get("finished") or time.strftime("%Y-%m-%d %H:%M:%S"),
                       [(c.id, c.device or "") for c in session.cameras], trials, software_version(), settings,
                       list(session.warnings))


def has_been_run(session: Session) -> bool:
    """True once a run has written ``output/summary.json``."""
    return (session.output_dir / "summary.json").is_file()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_session_report(session: Session, settings: dict[str, Any] | None = None) -> ReportFiles:
    """Write output/report.html, report.pdf (``report.pdf`` setting) and report.json (the data shown,
    without the images, plus the settings, so ``app.py report`` can re-make the same document)."""
    out = session.output_dir
    if settings is None:  # re-assembling: the settings of the run that made the outputs
        settings = (_json(out / "report.json") or {}).get("settings") or session.config
    data = session_data(session, settings)
    doc = build_document(data)
    html_path, json_path = out / "report.html", out / "report.json"
    _write_atomic(html_path, render_html(doc).encode("utf-8"))
    pages, pdf_path = 0, None
    if settings["report"]["pdf"]:
        pdf_path = out / "report.pdf"
        tmp = out / ".report.pdf.partial"
        pages = render_pdf(doc, tmp)
        os.replace(tmp, pdf_path)
    record = asdict(data)
    for t in record["trials"]:
        for key in ("figures", "comparison_figures"):
            t[key] = [f["caption"] for f in t[key]]
    _write_atomic(json_path, json.dumps(record, indent=2, default=str).encode("utf-8"))
    return ReportFiles(html_path, pdf_path, json_path, pages)


# ---------------------------------------------------------------------------------------------
# Batch overview


def batch_rows(root: Path, entries: list[Any]) -> list[BatchRow]:
    """One row per batch entry (pipeline.batch.BatchEntry): status, verdicts, key numbers from the
    trials' current analyse and ik outputs, and the link to the session's report relative to ``root``."""
    rows = []
    for e in entries:
        out = Path(e.session) / "output"
        report = out / "report.html"
        link = os.path.relpath(report, root) if report.is_file() else None
        trials = []
        for name, verdict in (e.verdicts or {}).items():
            a = (read_manifest(out / name / "analyse") or {}).get("summary", {})
            ik = (read_manifest(out / name / "ik") or {}).get("summary", {})
            trials.append(BatchTrial(name, verdict, a.get("reps"), a.get("knee_flexion_peak_r_deg"),
                                     a.get("knee_flexion_peak_l_deg"), ik.get("marker_rms_mean_mm")))
        rel = os.path.relpath(e.session, root)
        rows.append(BatchRow(rel, e.status, e.detail, link, trials))
    return rows


def write_batch_index(root: str | Path, entries: list[Any]) -> Path:
    """Write ROOT/batch_index.html (biomech.report.render_batch_index)."""
    root = Path(root)
    path = root / "batch_index.html"
    _write_atomic(path, render_batch_index(batch_rows(root, entries), time.strftime("%Y-%m-%d %H:%M:%S")).encode("utf-8"))
    return path
