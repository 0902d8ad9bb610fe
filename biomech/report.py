"""The clinician's report of a session: a document built from typed data, rendered as HTML and PDF.

Pure functions: ``build_document`` turns a ``SessionData`` (who, when, what was recorded, per trial the
verdict, results, figures as PNG bytes and quality numbers) into a ``Document`` of sections and blocks;
``render_html`` makes one self-contained HTML page of it (inline CSS, figures as base64 ``data:`` URIs,
no external resources) and ``render_pdf`` the same content as A4 pages with matplotlib (text pages and
figure pages), so neither needs a browser. Gathering the data from a session's outputs is done by
``pipeline/report.py``.

Reading order, for a clinician: the verdict of every trial first (an unusable trial says so in red on
the first page and at the top of its section), then per trial the results (angle-time curves, the
repetition table, asymmetry), the data quality with a warning next to each number outside its usual
range, the comparison with marker-based motion capture when there is one, and last the software
version and settings. No normative ranges are shown: none is cited.
"""
from __future__ import annotations

import base64
import html
import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.levels import DOUBTFUL, INCOMPLETE, OK, UNUSABLE

NOT_RUN = "not run"  # a trial with no verdict yet (beside the verdict levels of core/levels.py)
# Verdict level -> tone of its text and banner.
TONE = {OK: "ok", DOUBTFUL: "warn", UNUSABLE: "bad", INCOMPLETE: "warn", NOT_RUN: "muted"}
COLOURS = {"ok": "#1a7f37", "warn": "#a35200", "bad": "#b00020", "muted": "#666666", "": "#111111"}
VERDICT_WORDS = {
    OK: "OK. No quality number is outside its usual range.",
    DOUBTFUL: "DOUBTFUL. Some quality numbers are outside their usual range; read the results with care.",
    UNUSABLE: "UNUSABLE. Do not use this trial's joint angles or numbers.",
    INCOMPLETE: "INCOMPLETE. The run stopped before the joint angles; nothing to judge yet.",
    NOT_RUN: "NOT RUN. This trial has no outputs yet.",
}


# ---------------------------------------------------------------------------------------------
# The data a report is made of


@dataclass
class QualityItem:
    """One data-quality number: what it is, its value as text, its usual range and how it was judged.

    level: ok / doubtful / unusable (against the session's verdict limits), or '' for a number shown
    for information only (no limit).
    """

    label: str
    value: str
    usual: str = ""
    level: str = ""
    meaning: str = ""


@dataclass
class Figure:
    """A PNG image and what it shows."""

    png: bytes
    caption: str


@dataclass
class ExpectedAccuracy:
    """The typical errors of one trial's angles, as the accuracy benchmark measured them on a lab trial of the
    same activity (models/augmenter_validation.py).

    rows: (angle in words, MAE vs our model on mocap, MAE vs the lab's IK, deg, None where not measured;
    True where the cameras cannot tell the angle from its neighbour: the pelvis-lumbar split).
    """

    activity: str
    trial: str  # the lab trial they were measured on
    phones: int
    level: str
    measured: str
    rows: list[tuple[str, float | None, float | None, bool]]
    notes: list[str] = field(default_factory=list)


@dataclass
class TrialData:
    """Everything the report shows about one trial (angles in degrees, times in seconds)."""

    name: str
    kind: str  # 'static' or 'dynamic'
    verdict: str  # ok / doubtful / unusable / incomplete / not run
    reasons: list[str] = field(default_factory=list)
    recording: list[tuple[str, str]] = field(default_factory=list)  # (what, value): duration, cameras, ...
    activity: str = ""
    results: list[tuple[str, str]] = field(default_factory=list)  # key results in words
    reps: list[dict[str, Any]] = field(default_factory=list)  # rows of the analyse stage's reps table
    figures: list[Figure] = field(default_factory=list)  # angle-time curves, asymmetry
    quality: list[QualityItem] = field(default_factory=list)
    static_fit: list[tuple[str, str]] = field(default_factory=list)  # static trials: the scaling fit
    comparison: dict[str, Any] | None = None  # Comparison.summary() of biomech/compare.py
    comparison_figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # flags of the analysis, missing outputs, ...
    accuracy: ExpectedAccuracy | None = None  # typical errors measured on a lab trial of the same activity
    accuracy_note: str = ""  # why there are none, when there are none


@dataclass
class SessionData:
    """A session's report: who, when, what, the trials, and what made it."""

    session: str
    subject_id: str
    height_m: float
    mass_kg: float
    sex: str
    run_date: str
    cameras: list[tuple[str, str]]  # (id, device or '')
    trials: list[TrialData]
    version: str
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# The document: sections of blocks


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: str = ""


@dataclass
class Para:
    text: str
    tone: str = ""  # '', ok, warn, bad, muted
    bold: bool = False


@dataclass
class Banner:
    """A boxed statement (the verdict): a title line and reasons, in the tone's colour."""

    title: str
    lines: list[str]
    tone: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    tones: list[str] = field(default_factory=list)  # per row ('' = normal)
    caption: str = ""
    small: bool = False


@dataclass
class Image:
    figure: Figure


@dataclass
class Details:
    """Collapsed text (the settings): a summary line and preformatted text."""

    summary: str
    text: str


Block = Heading | Para | Banner | Table | Image | Details


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Block]
    new_page: bool = True  # PDF: start on a new page


@dataclass
class Document:
    title: str
    front: list[Block]  # first page: who, when, what, every verdict
    sections: list[Section]


SEX = {"f": "female", "m": "male", "x": "not stated / other"}
# The per-rep table: (column, key in the reps rows, format).
REP_TABLE = [
    ("rep", "number", "d"), ("status", "status", "s"), ("depth cm", "depth_cm", ".1f"),
    ("depth % leg", "depth_pct_leg", ".0f"),
    ("knee R", "knee_flexion_peak_r_deg", ".0f"), ("knee L", "knee_flexion_peak_l_deg", ".0f"),
    ("hip R", "hip_flexion_peak_r_deg", ".0f"), ("hip L", "hip_flexion_peak_l_deg", ".0f"),
    ("ankle R", "ankle_dorsiflexion_peak_r_deg", ".0f"), ("ankle L", "ankle_dorsiflexion_peak_l_deg", ".0f"),
    ("descent s", "descent_s", ".2f"), ("pause s", "pause_s", ".2f"), ("ascent s", "ascent_s", ".2f"),
    ("asym. knee %", "knee_flexion_asymmetry_pct", "+.1f"), ("asym. hip %", "hip_flexion_asymmetry_pct", "+.1f"),
    ("asym. ankle %", "ankle_dorsiflexion_asymmetry_pct", "+.1f"),
]
# Results shown on the first page, by their label in TrialData.results.
GLANCE = ("repetitions counted", "squat depth (mean)", "peak knee flexion (mean)")
STATUS_WORDS = {"full": "full", "partial": "partial", "cut_start": "cut (start)", "cut_end": "cut (end)"}
ASYMMETRY_NOTE = ("Asymmetry index = (right - left) / mean(right, left) x 100 %: positive = the right side's value is "
                  "larger, negative = the left side's is. Computed only where both sides' peaks average at least "
                  "analyse.asymmetry_min_deg.")
PEAK_NOTE = ("Peaks in degrees (flexion and ankle dorsiflexion positive); depth = drop of the pelvis from standing, "
             "in cm and as % of leg length. Partial and cut repetitions are listed but not counted in the means. "
             "An empty cell: the joint was not seen at the bottom of that repetition.")


def fmt(v: Any, spec: str = ".1f") -> str:
    """A number in ``spec`` (``''`` for None); text as it is."""
    if v is None:
        return ""
    if spec == "s" or isinstance(v, str):
        return STATUS_WORDS.get(v, str(v)) if spec == "s" else str(v)
    try:
        return format(int(v) if spec == "d" else float(v), spec)
    except (TypeError, ValueError):
        return str(v)


def anchor(name: str) -> str:
    return "trial-" + "".join(c if c.isalnum() else "-" for c in name)


RANK = {UNUSABLE: 0, DOUBTFUL: 1, INCOMPLETE: 2}


def _level_of(reason: str) -> str:
    return reason.split(": ", 1)[0] if reason.split(": ", 1)[0] in TONE else ""


def worst_first(reasons: list[str]) -> list[str]:
    """The verdict's reasons, those that made it unusable first (each keeps its 'unusable:' / 'doubtful:')."""
    return sorted(reasons, key=lambda r: RANK.get(_level_of(r), 3))


def main_reason(t: TrialData) -> str:
    """The reason that decided the verdict, without its level prefix."""
    r = worst_first(t.reasons)
    return r[0].split(": ", 1)[1] if r and _level_of(r[0]) else r[0] if r else ""


def verdict_banner(t: TrialData) -> Banner:
    return Banner(f"Verdict: {VERDICT_WORDS.get(t.verdict, t.verdict)}", worst_first(t.reasons), TONE.get(t.verdict, ""))


def quality_table(items: list[QualityItem]) -> Table:
    tones, rows = [], []
    for q in items:
        status = {OK: "ok", DOUBTFUL: "WARNING: outside the usual range", UNUSABLE: "WARNING: far outside the usual range"}
        rows.append([q.label, q.value, q.usual, status.get(q.level, ""), q.meaning])
        tones.append(TONE.get(q.level, "") if q.level in (DOUBTFUL, UNUSABLE) else "")
    return Table(["quantity", "value", "usual range", "status", "what it means"], rows, tones,
                 caption="Usual ranges are the session's verdict limits (config.yaml, verdict:). A number outside them "
                         "is marked WARNING.")


def reps_table(reps: list[dict[str, Any]]) -> Table:
    rows = [[fmt(r.get(key), spec) for _, key, spec in REP_TABLE] for r in reps]
    tones = ["" if r.get("status") == "full" else "muted" for r in reps]
    return Table([c for c, _, _ in REP_TABLE], rows, tones, caption=PEAK_NOTE, small=True)


def trial_blocks(t: TrialData) -> list[Block]:
    """A trial's section: the verdict first, then results, quality, comparison and notes."""
    blocks: list[Block] = []
    if t.verdict == UNUSABLE:
        blocks.append(Para("THIS TRIAL IS UNUSABLE. Its joint angles and numbers must not be used.", "bad", bold=True))
    blocks.append(verdict_banner(t))
    if t.recording:
        blocks += [Heading("What was recorded", 3), Table(["", ""], [[a, b] for a, b in t.recording])]
    if t.kind == "static":
        blocks.append(Heading("Scaling fit (standing trial)", 3))
        blocks.append(Para("The standing trial sizes the model to the subject. The marker error says how well the "
                           "scaled model fits the standing pose."))
        if t.static_fit:
            blocks.append(Table(["", ""], [[a, b] for a, b in t.static_fit]))
        else:
            blocks.append(Para("No scaling result: the scale stage did not finish.", "warn"))
    else:
        if t.results:
            blocks += [Heading("Results", 3), Table(["", ""], [[a, b] for a, b in t.results])]
        for f in t.figures:
            blocks.append(Image(f))
        if t.reps:
            blocks += [Heading("Repetitions", 3), reps_table(t.reps), Para(ASYMMETRY_NOTE, "muted")]
        elif t.activity == "squats":
            blocks.append(Para("No squat repetition was found in this trial.", "warn"))
        if t.accuracy is not None or t.accuracy_note:
            blocks += accuracy_blocks(t.accuracy, t.accuracy_note)
    if t.quality:
        blocks += [Heading("Data quality", 3), quality_table(t.quality)]
    if t.comparison is not None:
        blocks += comparison_blocks(t.comparison, t.comparison_figures)
    if t.notes:
        blocks += [Heading("Notes", 3)] + [Para(n, "muted") for n in t.notes]
    return blocks


def accuracy_blocks(a: ExpectedAccuracy | None, note: str) -> list[Block]:
    """How far to trust the angles: the errors our benchmark measured against motion capture on a held-out lab
    trial of the same activity, with what they do and do not cover."""
    out: list[Block] = [Heading("How accurate these angles are", 3)]
    if a is None:
        return out + [Para(note, "muted")]
    out.append(Para(f"Typical errors of these angles, measured against marker-based motion capture on a lab trial "
                    f"of the same activity ({a.activity.replace('_', '-')}, {a.phones} phones, realistic detector "
                    f"errors; measured {a.measured}). On average a frame's angle is this far from the motion capture's; some frames are further."))
    rows = [[name + (" *" if estimate else ""), fmt(same, ".1f"), fmt(lab, ".1f")] for name, same, lab, estimate in a.rows]
    out.append(Table(["angle", "typical error (deg)", "against a lab's standard model (deg)"], rows, small=True,
                     caption="Mean absolute error, right/left mean. First column: against the same body model fitted "
                             "to the motion capture markers (the software's own error). Second: against the lab's "
                             "own model and its inverse kinematics, whose joint definitions differ from ours (the "
                             "pelvis's and the lumbar spine's most). * The cameras see the trunk's lean, not how it splits between pelvis and lumbar "
                             "spine: read these two as estimates."))
    out.append(Para("Measured on one subject with simulated phone views (our model of a detector's errors), "
                    "not on this person: a guide to the size of the error, not a bound.", "muted"))
    out += [Para(n, "warn") for n in a.notes]
    return out


def comparison_blocks(s: dict[str, Any], figures: list[Figure]) -> list[Block]:
    """The mocap comparison page from ``Comparison.summary()``."""
    out: list[Block] = [Heading("Comparison with marker-based motion capture", 3)]
    shift = s.get("time_shift_s")
    out.append(Para(f"Our joint angles against the mocap reference, after a time shift of "
                    f"{fmt(None if shift is None else 1000 * shift, '.0f')} ms (mean r {fmt(s.get('shift_mean_r'), '.2f')}), "
                    f"{s.get('frames_compared', '')} frames compared. Mean absolute error over the angles: "
                    f"{fmt(s.get('mean_mae_deg'), '.1f')} deg (RMSE {fmt(s.get('mean_rmse_deg'), '.1f')} deg)."))
    rows = [[c.get("coordinate", ""), c.get("unit", ""), fmt(c.get("rmse"), ".1f"), fmt(c.get("mae"), ".1f"),
             fmt(c.get("max_error"), ".1f"), fmt(c.get("offset"), "+.1f"), fmt(c.get("pearson_r"), ".2f"),
             fmt(c.get("rom_diff"), "+.1f")] for c in s.get("coordinates", [])]
    out.append(Table(["coordinate", "unit", "RMSE", "MAE", "max", "offset", "r", "ROM diff"], rows, small=True,
                     caption="offset = mean of ours minus mocap; ROM diff = our range of motion minus mocap's."))
    for w in s.get("warnings", []):
        out.append(Para(f"Warning: {w}", "warn"))
    out += [Image(f) for f in figures]
    return out


def settings_text(settings: dict[str, Any], indent: int = 0) -> str:
    """Settings as YAML like config.yaml's: sections as blocks, lists and values inline."""
    lines = []
    for key, value in settings.items():
        pad = "  " * indent
        if isinstance(value, dict) and value and indent == 0:
            lines.append(f"{pad}{key}:")
            lines.append(settings_text(value, indent + 1))
        else:
            flow = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
            lines.append(f"{pad}{key}: {flow}")
    return "\n".join(lines)


def build_document(d: SessionData) -> Document:
    """The report of a session (see the module docstring for the order)."""
    front: list[Block] = []
    unusable = [t for t in d.trials if t.verdict == UNUSABLE]
    for t in unusable:
        front.append(Para(f"Trial {t.name} is UNUSABLE: do not use its joint angles or numbers. "
                          + (f"Reason: {main_reason(t)}." if t.reasons else ""), "bad", bold=True))
    front.append(Table(["", ""], [
        ["subject", d.subject_id],
        ["height", f"{d.height_m:.2f} m"], ["mass", f"{d.mass_kg:.1f} kg"], ["sex", SEX.get(d.sex, d.sex)],
        ["processed", d.run_date], ["session", d.session],
        ["cameras", ", ".join(c + (f" ({dev})" if dev else "") for c, dev in d.cameras)],
    ]))
    front.append(Heading("Trials and verdicts", 3))
    rows, tones = [], []
    for t in d.trials:
        duration = dict(t.recording).get("duration", "")
        rows.append([t.name, t.kind, duration, t.verdict.upper() if t.verdict != OK else OK, main_reason(t)])
        tones.append(TONE.get(t.verdict, "") if t.verdict != OK else "ok")
    front.append(Table(["trial", "kind", "duration", "verdict", "main reason"], rows, tones,
                       caption="ok: nothing outside its usual range; doubtful: read with care; unusable: do not use."))
    glance = [[t.name + (" (UNUSABLE)" if t.verdict == UNUSABLE else "")] + [dict(t.results).get(k, "") for k in GLANCE]
              for t in d.trials if t.results]
    if glance:
        front += [Heading("Results at a glance", 3),
                  Table(["trial", "repetitions", "depth", "peak knee flexion"], glance,
                        ["bad" if t.verdict == UNUSABLE else "" for t in d.trials if t.results],
                        caption="Means over the full repetitions (SD in brackets); details in each trial's section.")]
    for w in d.warnings:
        front.append(Para(f"Warning: {w}", "warn"))
    sections = [Section(f"Trial {t.name} ({'standing, for scaling' if t.kind == 'static' else t.activity or t.kind})",
                        anchor(t.name), trial_blocks(t)) for t in d.trials]
    settings = settings_text(d.settings)
    sections.append(Section("Software and settings", "software", [
        Table(["", ""], [["software version", d.version], ["report made", d.run_date]]),
        Para("The settings that made these results (defaults of config.yaml with the session's and the run's "
             "overrides):", "muted"),
        Details("settings (click to open)", settings),
    ]))
    return Document(f"Movement analysis report: {d.subject_id}", front, sections)


# ---------------------------------------------------------------------------------------------
# HTML

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#111;max-width:1100px;margin:0 auto;
padding:0 24px 48px;line-height:1.4;font-size:15px}
header{border-bottom:3px solid #234;margin-bottom:12px;padding:14px 0 8px}
header h1{margin:0;font-size:26px}
h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:36px}
h3{margin:20px 0 6px;font-size:17px}
table{border-collapse:collapse;margin:6px 0 4px;font-size:14px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}
table.small{font-size:12.5px} table.small td{text-align:right} table.small td:nth-child(-n+2){text-align:left}
table.kv td:first-child{font-weight:600;background:#f6f7f8;white-space:nowrap}
tr.bad td{color:#b00020;font-weight:600} tr.warn td{color:#a35200;font-weight:600} tr.muted td{color:#666}
tr.ok td{color:#1a7f37}
.caption{color:#555;font-size:13px;margin:2px 0 10px}
.bad{color:#b00020} .warn{color:#a35200} .ok{color:#1a7f37} .muted{color:#555}
.banner{border:2px solid;border-radius:6px;padding:8px 12px;margin:10px 0}
.banner.bad{background:#fdecee} .banner.warn{background:#fff4e5} .banner.ok{background:#eaf6ec} .banner.muted{background:#f3f3f3}
.banner b{display:block;margin-bottom:4px} .banner ul{margin:2px 0 2px 18px;padding:0;color:#111}
img{max-width:100%;height:auto;display:block;margin:8px 0 2px;border:1px solid #ddd}
nav{background:#f6f7f8;border:1px solid #ddd;padding:6px 14px;margin:14px 0}
nav ol{margin:4px 0;padding-left:22px}
details{margin:6px 0} pre{background:#f6f7f8;border:1px solid #ddd;padding:8px;font-size:12px;overflow-x:auto}
@media print{nav{display:none} h2{page-break-before:always} img{page-break-inside:avoid}}
"""


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _block_html(b: Block) -> str:
    if isinstance(b, Heading):
        ident = f' id="{_e(b.anchor)}"' if b.anchor else ""
        return f"<h{b.level}{ident}>{_e(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        text = f"<b>{_e(b.text)}</b>" if b.bold else _e(b.text)
        return f"<p class=\"{b.tone}\">{text}</p>" if b.tone else f"<p>{text}</p>"
    if isinstance(b, Banner):
        lines = "".join(f"<li>{_e(x)}</li>" for x in b.lines)
        return (f"<div class=\"banner {b.tone}\" style=\"border-color:{COLOURS.get(b.tone, '#111')}\">"
                f"<b class=\"{b.tone}\">{_e(b.title)}</b>{f'<ul>{lines}</ul>' if lines else ''}</div>")
    if isinstance(b, Table):
        kv = not any(b.columns)
        head = "" if kv else "<tr>" + "".join(f"<th>{_e(c)}</th>" for c in b.columns) + "</tr>"
        body = ""
        for i, r in enumerate(b.rows):
            tone = b.tones[i] if i < len(b.tones) else ""
            body += (f"<tr class=\"{tone}\">" if tone else "<tr>") + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>"
        cls = " ".join(c for c in ("small" if b.small else "", "kv" if kv else "") if c)
        cap = f"<div class=\"caption\">{_e(b.caption)}</div>" if b.caption else ""
        attr = f' class="{cls}"' if cls else ""
        return f"<table{attr}>{head}{body}</table>{cap}"
    if isinstance(b, Image):
        data = base64.b64encode(b.figure.png).decode("ascii")
        return (f"<img src=\"data:image/png;base64,{data}\" alt=\"{_e(b.figure.caption)}\">"
                f"<div class=\"caption\">{_e(b.figure.caption)}</div>")
    if isinstance(b, Details):
        return f"<details><summary>{_e(b.summary)}</summary><pre>{_e(b.text)}</pre></details>"
    raise TypeError(f"unknown block {type(b).__name__}")


def render_html(doc: Document) -> str:
    """One self-contained HTML page: inline CSS, figures as data: URIs, nothing fetched."""
    toc = "".join(f"<li><a href=\"#{_e(s.anchor)}\">{_e(s.title)}</a></li>" for s in doc.sections)
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
             f"<title>{_e(doc.title)}</title><style>{CSS}</style></head><body>",
             f"<header><h1>{_e(doc.title)}</h1><div class=\"muted\">Markerless movement analysis from smartphone "
             f"videos. Joint angles in degrees, times in seconds; right side red, left side blue.</div></header>"]
    parts += [_block_html(b) for b in doc.front]
    parts.append(f"<nav><b>Contents</b><ol>{toc}</ol></nav>")
    for s in doc.sections:
        parts.append(f"<section><h2 id=\"{_e(s.anchor)}\">{_e(s.title)}</h2>")
        parts += [_block_html(b) for b in s.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# PDF (A4, matplotlib)

A4_IN = (8.27, 11.69)
MARGIN_IN = 0.6


class _PdfFlow:
    """Lays blocks out top to bottom on A4 pages of a ``PdfPages``; a block that does not fit starts a page."""

    def __init__(self, pdf: Any, title: str):
        self.pdf, self.title = pdf, title
        self.fig = None
        self.page = 0
        self.width = A4_IN[0] - 2 * MARGIN_IN
        self.new_page()

    def new_page(self) -> None:
        import matplotlib.pyplot as plt

        self.finish()
        self.page += 1
        self.fig = plt.figure(figsize=A4_IN)
        self.y = MARGIN_IN  # inches from the top
        self.fig.text(1 - MARGIN_IN / A4_IN[0], 0.3 / A4_IN[1], f"{self.title}  -  page {self.page}",
                      ha="right", va="bottom", fontsize=7, color="#666")

    def finish(self) -> None:
        import matplotlib.pyplot as plt

        if self.fig is not None:
            self.pdf.savefig(self.fig)
            plt.close(self.fig)
            self.fig = None

    def room(self) -> float:
        return A4_IN[1] - MARGIN_IN - self.y

    def need(self, h: float) -> None:
        if h > self.room() and self.y > MARGIN_IN + 0.01:
            self.new_page()

    def text(self, s: str, size: float = 9.0, colour: str = "#111", bold: bool = False, mono: bool = False,
             indent: float = 0.0) -> None:
        width_chars = max(20, int((self.width - indent) * 72 / (size * (0.6 if mono else 0.52))))
        lines = []
        for para in s.split("\n"):
            lines += textwrap.wrap(para, width_chars, drop_whitespace=True, replace_whitespace=False) or [""]
        step = size * 1.35 / 72
        for line in lines:
            self.need(step)
            self.fig.text((MARGIN_IN + indent) / A4_IN[0], 1 - (self.y + size / 72) / A4_IN[1], line, fontsize=size,
                          color=colour, fontweight="bold" if bold else "normal",
                          family="monospace" if mono else "sans-serif", va="baseline")
            self.y += step

    def gap(self, h: float = 0.08) -> None:
        self.y += h

    def table(self, t: Table) -> None:
        size = 6.3 if t.small else 7.2 if len(t.columns) > 3 else 8.0
        cw = size * 0.6 / 72  # monospace character width (in)
        cols = max((len(r) for r in t.rows), default=len(t.columns))
        header = t.columns if any(t.columns) else None
        widths = [max([len(header[j]) if header else 0] + [len(r[j]) for r in t.rows if j < len(r)]) for j in range(cols)]
        avail = int(self.width / cw) - 2 * cols
        while sum(widths) > avail and max(widths) > 8:  # narrow the widest column; its cells wrap
            widths[widths.index(max(widths))] -= 1
        step = size * 1.4 / 72

        def row(cells: list[str], colour: str, bold: bool) -> None:
            wrapped = [textwrap.wrap(c, widths[j]) or [""] for j, c in enumerate(cells)]
            n = max(len(w) for w in wrapped)
            self.need(n * step)
            for k in range(n):
                x = MARGIN_IN
                for j, w in enumerate(wrapped):
                    if k < len(w):
                        self.fig.text(x / A4_IN[0], 1 - (self.y + size / 72) / A4_IN[1], w[k], fontsize=size,
                                      family="monospace", color=colour, fontweight="bold" if bold else "normal")
                    x += (widths[j] + 2) * cw
                self.y += step
            self.y += step * 0.25

        if header:
            row(header, "#234", True)
        for i, r in enumerate(t.rows):
            tone = t.tones[i] if i < len(t.tones) else ""
            row(r + [""] * (cols - len(r)), COLOURS.get(tone, "#111"), tone in ("bad", "warn"))
        if t.caption:
            self.text(t.caption, 7, "#555")
        self.gap()

    def image(self, f: Figure) -> None:
        import matplotlib.image as mpimg

        img = mpimg.imread(io.BytesIO(f.png), format="png")
        h_px, w_px = img.shape[:2]
        w = self.width
        h = w * h_px / w_px
        max_h = A4_IN[1] - 2 * MARGIN_IN - 0.5
        if h > max_h:
            w, h = w * max_h / h, max_h
        self.need(h + 0.3)
        ax = self.fig.add_axes([MARGIN_IN / A4_IN[0], 1 - (self.y + h) / A4_IN[1], w / A4_IN[0], h / A4_IN[1]])
        ax.imshow(img, interpolation="antialiased")
        ax.axis("off")
        self.y += h + 0.05
        self.text(f.caption, 7, "#555")
        self.gap()

    def block(self, b: Block) -> None:
        if isinstance(b, Heading):
            self.need(0.6)
            self.gap(0.1)
            self.text(b.text, {1: 16, 2: 13, 3: 10.5}.get(b.level, 10), "#234", bold=True)
        elif isinstance(b, Para):
            self.text(b.text, 9, COLOURS.get(b.tone, "#111"), bold=b.bold)
            self.gap(0.04)
        elif isinstance(b, Banner):
            self.text(b.title, 10, COLOURS.get(b.tone, "#111"), bold=True)
            for line in b.lines:
                self.text("- " + line, 8.5, COLOURS.get(b.tone, "#111"), indent=0.15)
            self.gap()
        elif isinstance(b, Table):
            self.table(b)
        elif isinstance(b, Image):
            self.image(b.figure)
        elif isinstance(b, Details):
            self.text(b.summary.replace(" (click to open)", ""), 8, "#555", bold=True)
            self.text(b.text, 6, "#333", mono=True)


def render_pdf(doc: Document, path: str | Path) -> int:
    """Write ``doc`` as an A4 PDF (first page: who, when, what and every verdict); returns the page count."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(str(path), metadata={"Title": doc.title, "Creator": "markerless biomechanics report"}) as pdf:
        flow = _PdfFlow(pdf, doc.title)
        flow.text(doc.title, 16, "#234", bold=True)
        flow.text("Markerless movement analysis from smartphone videos. Joint angles in degrees, times in seconds; "
                  "right side red, left side blue.", 8.5, "#555")
        flow.gap(0.15)
        for b in doc.front:
            flow.block(b)
        flow.block(Heading("Contents", 3))
        for k, s in enumerate(doc.sections, 1):
            flow.text(f"{k}. {s.title}", 9)
        for s in doc.sections:
            if s.new_page:
                flow.new_page()
            flow.text(s.title, 13, "#234", bold=True)
            flow.gap(0.05)
            for b in s.blocks:
                flow.block(b)
        flow.finish()
        return flow.page


# ---------------------------------------------------------------------------------------------
# Batch overview


@dataclass
class BatchTrial:
    name: str
    verdict: str
    reps: int | None = None
    knee_flexion_r_deg: float | None = None  # mean peak over the full repetitions
    knee_flexion_l_deg: float | None = None
    ik_marker_rms_mm: float | None = None


@dataclass
class BatchRow:
    """One session of a batch: its status, its trials and the relative link to its report (None: no report)."""

    session: str
    status: str
    detail: str
    report_link: str | None
    trials: list[BatchTrial] = field(default_factory=list)


BATCH_TONE = {"ok": "ok", "unusable": "bad", "trial failed": "bad", "invalid": "bad", "crashed": "bad", "refused": "warn"}


def render_batch_index(rows: list[BatchRow], finished: str) -> str:
    """ROOT/batch_index.html: every session with its status, each trial's verdict and key numbers, and a
    relative link to the session's report.html. Self-contained like the reports."""
    body = []
    for r in rows:
        link = (f"<a href=\"{_e(r.report_link)}\">report</a>" if r.report_link else "<span class=\"muted\">no report</span>")
        trials = r.trials or [BatchTrial("", "")]
        for k, t in enumerate(trials):
            tone = TONE.get(t.verdict, "") if t.verdict else ""
            cells = []
            if k == 0:
                span = f" rowspan=\"{len(trials)}\""
                cells += [f"<td{span}>{_e(r.session)}</td>",
                          f"<td{span} class=\"{BATCH_TONE.get(r.status, '')}\">{_e(r.status)}"
                          f"{'<br><small>' + _e(r.detail) + '</small>' if r.detail and r.status != 'ok' else ''}</td>",
                          f"<td{span}>{link}</td>"]
            knee = "" if t.knee_flexion_r_deg is None and t.knee_flexion_l_deg is None else \
                f"R {fmt(t.knee_flexion_r_deg, '.0f')} / L {fmt(t.knee_flexion_l_deg, '.0f')}"
            cells += [f"<td>{_e(t.name)}</td>", f"<td class=\"{tone}\">{_e(t.verdict)}</td>",
                      f"<td>{fmt(t.reps, 'd')}</td>", f"<td>{_e(knee)}</td>", f"<td>{fmt(t.ik_marker_rms_mm, '.1f')}</td>"]
            body.append("<tr>" + "".join(cells) + "</tr>")
    ok = sum(r.status == "ok" for r in rows)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Batch overview</title>"
            f"<style>{CSS} td.ok{{color:#1a7f37}} td.bad{{color:#b00020;font-weight:600}} td.warn{{color:#a35200}}"
            "</style></head><body><header><h1>Batch overview</h1>"
            f"<div class=\"muted\">{len(rows)} sessions, {ok} without failures or unusable trials; finished {_e(finished)}"
            "</div></header><table><tr><th>session</th><th>status</th><th>report</th><th>trial</th><th>verdict</th>"
            "<th>reps</th><th>mean peak knee flexion (deg)</th><th>IK marker error (mm)</th></tr>"
            + "\n".join(body) + "</table><p class=\"caption\">Verdicts: ok, doubtful (read with care), unusable (do not "
            "use), incomplete (the run stopped early). Knee flexion: mean of the full repetitions' peaks, right / left."
            "</p></body></html>")
