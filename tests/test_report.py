"""The clinician's report: the pure document builder on made-up data (verdict first, warnings for
out-of-range quality numbers, a self-contained page), the PDF, the batch index; slow: a synthetic
session end to end (run -> report.html / report.pdf, `app.py report`, `app.py batch`)."""
from __future__ import annotations

from dataclasses import replace

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from biomech.report import (BatchRow, BatchTrial, Banner, Figure, Para, SessionData, Table, TrialData, build_document,
                            render_batch_index, render_html, render_pdf)
from pipeline.report import plain_flags, quality_items
from sessions.config import ConfigError, apply_overrides, load_defaults
from sessions.settings import VerdictSettings
from tests.conftest import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1], color="tab:red")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    plt.close(fig)
    return buf.getvalue()


def _rep(n: int, status: str = "full") -> dict:
    return {"number": n, "status": status, "start_s": n, "bottom_s": n + 0.5, "end_s": n + 1, "descent_s": 0.6,
            "pause_s": 0.1, "ascent_s": 0.7, "depth_cm": 40.0 + n, "depth_pct_leg": 48.0,
            "knee_flexion_peak_r_deg": 110.0, "knee_flexion_peak_l_deg": 100.0, "hip_flexion_peak_r_deg": 95.0,
            "hip_flexion_peak_l_deg": None, "knee_flexion_asymmetry_pct": 9.5}


def _session(limits: VerdictSettings | None = None) -> SessionData:
    cfg = load_defaults()
    png = _png()
    good = TrialData("squats1", "dynamic", "ok", [], recording=[("duration", "6.9 s")], activity="squats",
                     results=[("repetitions counted", "3 full")], reps=[_rep(1), _rep(2), _rep(3, "partial")],
                     figures=[Figure(png, "curves"), Figure(png, "asymmetry")],
                     quality=quality_items({"ik": {"marker_rms_mean_mm": 12.0}}, None, "dynamic", SETTINGS.verdict))
    bad_summaries = {"triangulate": {"triangulated": 0.3, "reprojection_px_median": 80.0, "image_height_px": 1000},
                     "ik": {"marker_rms_mean_mm": 35.0}}
    bad = TrialData("squats2", "dynamic", "unusable",
                    ["doubtful: the model follows the markers with 35 mm RMS error on average", "unusable: only 30% of the keypoint positions could be triangulated (doubtful below 90%, unusable below 50%)"],
                    recording=[("duration", "5.0 s")], activity="squats",
                    figures=[Figure(png, "curves")],
                    quality=quality_items(bad_summaries, None, "dynamic", limits or SETTINGS.verdict))
    static = TrialData("static", "static", "ok", static_fit=[("marker error (RMS)", "13.7 mm")])
    return SessionData("/data/s01", "S01", 1.68, 62.6, "f", "2026-12-01 10:00:00", [("cam1", "iPhone13,3"), ("cam2", "")],
                       [good, bad, static], "v1.0-3-gabc", cfg)


def test_an_unusable_trial_says_so_first():
    doc = build_document(_session())
    # the first page: the unusable trial named in red before anything else
    assert isinstance(doc.front[0], Para) and doc.front[0].tone == "bad" and "squats2 is UNUSABLE" in doc.front[0].text
    assert "triangulated" in doc.front[0].text  # the reason that made it unusable, not the first one listed
    verdicts = next(b for b in doc.front if isinstance(b, Table) and b.columns[:1] == ["trial"])
    row = next(i for i, r in enumerate(verdicts.rows) if r[0] == "squats2")
    assert verdicts.rows[row][3] == "UNUSABLE" and verdicts.tones[row] == "bad" and "triangulated" in verdicts.rows[row][4]
    # its section: the warning and the verdict with its reason come before any result
    section = next(s for s in doc.sections if "squats2" in s.title)
    assert isinstance(section.blocks[0], Para) and section.blocks[0].tone == "bad" and "UNUSABLE" in section.blocks[0].text
    assert isinstance(section.blocks[1], Banner) and section.blocks[1].tone == "bad"
    assert section.blocks[1].lines[0].startswith("unusable: only 30%")  # worst first
    assert section.blocks[1].lines[1].startswith("doubtful:")
    html = render_html(doc)
    body = html[html.index("id=\"trial-squats2\""):]
    assert body.index("THIS TRIAL IS UNUSABLE") < body.index("<img")
    assert html.index("squats2 is UNUSABLE") < html.index("<nav>")  # before the table of contents


def test_quality_numbers_outside_their_range_get_a_warning():
    limits = SETTINGS.verdict
    items = {q.label: q for q in quality_items(
        {"triangulate": {"triangulated": 0.3, "reprojection_px_median": 30.0, "image_height_px": 1000},
         "ik": {"marker_rms_mean_mm": 35.0, "marker_rms_max_mm": 60.0}, "filter": {"span_share": 1.0, "span_s": [0, 5]}},
        {"reference_camera": "cam1", "cameras": {"cam1": {"offset_s": 0.0, "confidence": 1.0},
                                                 "cam2": {"offset_s": -0.25, "confidence": 0.2}}},
        "dynamic", limits)}
    assert items["keypoints placed in 3D"].level == "unusable"  # 30 % < 50 %
    assert items["reprojection error"].level == "doubtful"  # 30 px per 1000 px: between 20 and 50
    assert items["IK marker error"].level == "doubtful" and "35 mm" in items["IK marker error"].value
    assert items["analysable span"].level == "ok"
    sync = items["sync cam2 vs cam1"]
    assert sync.level == "unusable" and "-250 ms" in sync.value
    html = render_html(build_document(_session()))
    rows = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", html) if "keypoints placed in 3D" in r]
    assert any("WARNING" in r and "class=\"bad\"" in r for r in rows)
    ik = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", html) if "IK marker error" in r]
    assert any("12 mm" in r and "WARNING" not in r for r in ik)  # the good trial's number carries no warning
    assert any("35 mm" in r and "WARNING" in r and "class=\"warn\"" in r for r in ik)


def test_limits_come_from_the_session_config():
    limits = replace(SETTINGS.verdict, ik_marker_rms_mm=(40.0, 60.0))
    items = {q.label: q for q in quality_items({"ik": {"marker_rms_mean_mm": 35.0}}, None, "dynamic", limits)}
    assert items["IK marker error"].level == "ok" and items["IK marker error"].usual == "≤ 40"


def test_html_is_self_contained():
    html = render_html(build_document(_session()))
    assert not re.search(r"https?://", html), "no external resource"
    assert "<link" not in html and "@import" not in html and "url(" not in html and "<script" not in html
    imgs = re.findall(r"<img\b[^>]*>", html)
    assert len(imgs) == 3
    assert all(re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', i) for i in imgs)
    assert "<nav>" in html and html.count("<section>") == 4  # 3 trials + software and settings
    assert "v1.0-3-gabc" in html and "<details>" in html  # version; settings collapsed
    # the per-rep table: partial reps listed (greyed), empty cells for peaks not seen
    assert "partial" in html and "+9.5" in html


def test_comparison_page_only_with_a_comparison():
    data = _session()
    assert "motion capture" not in render_html(build_document(data))
    data.trials[0].comparison = {"time_shift_s": 0.12, "shift_mean_r": 0.98, "frames_compared": 300, "mean_mae_deg": 4.2,
                                 "mean_rmse_deg": 5.0, "coordinates": [{"coordinate": "knee_angle_r", "unit": "deg",
                                 "rmse": 5.0, "mae": 4.2, "max_error": 9.0, "offset": 1.5, "pearson_r": 0.99,
                                 "rom_diff": -3.0}], "warnings": []}
    html = render_html(build_document(data))
    assert "Comparison with marker-based motion capture" in html and "knee_angle_r" in html and "120 ms" in html


def test_pdf_has_a4_pages(tmp_path):
    path = tmp_path / "r.pdf"
    pages = render_pdf(build_document(_session()), path)
    raw = path.read_bytes()
    assert raw.startswith(b"%PDF") and pages >= 3
    assert len(re.findall(rb"/Type\s*/Page\b", raw)) == pages
    assert re.search(rb"/MediaBox\s*\[\s*0 0 595\.\d+ 841\.\d+", raw)  # A4 in points


def test_settings_are_shown_as_yaml_that_reads_back():
    import yaml

    from biomech.report import Details, settings_text

    cfg = load_defaults()
    assert yaml.safe_load(settings_text(cfg)) == cfg
    doc = build_document(_session())
    details = [b for b in doc.sections[-1].blocks if isinstance(b, Details)]
    assert details and "verdict:" in details[0].text and "ik_marker_rms_mm: [30.0, 50.0]" in details[0].text


def test_plain_flags_merge_empty_frames():
    out = plain_flags(["knee_angle_l: 17 of 401 frames empty (not seen); skipped in every metric",
                       "hip_flexion_l: 17 of 401 frames empty (not seen); skipped in every metric", "something else"])
    assert len(out) == 2 and "knee_angle_l 17 of 401 frames, hip_flexion_l 17 of 401 frames" in out[0]


def test_batch_index_links_each_report():
    rows = [BatchRow("a/s1", "ok", "", "a/s1/output/report.html", [BatchTrial("squats", "ok", 3, 108.5, 106.0, 10.3)]),
            BatchRow("s2", "invalid", "session.yaml: bad", None, [])]
    html = render_batch_index(rows, "2026-12-01")
    assert 'href="a/s1/output/report.html"' in html and "R 108 / L 106" in html and "no report" in html
    assert not re.search(r"https?://", html)


def test_report_settings_are_range_checked():
    defaults = load_defaults()
    assert set(defaults["report"]) == {"curves", "dpi", "pdf"}
    with pytest.raises(ConfigError, match="report.dpi"):
        apply_overrides(defaults, [("--set", {"report": {"dpi": 10}})])


@pytest.mark.slow
def test_a_synthetic_session_ends_with_its_report(tmp_path):
    from demo.synthetic_session import make_pose2d_session
    from pipeline.orchestrate import run_session

    synth = make_pose2d_session(tmp_path / "all" / "s1", cameras=2, seed=1)
    run = run_session(synth.root, show_progress=False)
    out = synth.root / "output"
    status = {(o.trial, o.stage): o.status for o in run.outcomes}
    assert status[("squats", "report")] == "done" and status[("static", "report")] == "n/a"
    assert run.report is not None and run.report.html == out / "report.html"
    html = (out / "report.html").read_text()
    assert "Trial squats" in html and "Trial static" in html and "Data quality" in html and "Repetitions" in html
    # the shipped weights carry their accuracy record: the squats' typical errors are quoted
    assert "How accurate these angles are" in html and "typical error (deg)" in html
    assert not re.search(r"https?://", html)
    assert all(i.startswith('<img src="data:image/png;base64,') for i in re.findall(r"<img\b[^>]*>", html))
    assert len(re.findall(rb"/Type\s*/Page\b", (out / "report.pdf").read_bytes())) >= 3
    for name in ("curves.png", "asymmetry.png", "section.json"):
        assert (out / "squats" / "report" / name).is_file()

    app = [sys.executable, str(ROOT / "app.py")]
    (out / "report.html").unlink()
    (out / "report.pdf").unlink()
    res = subprocess.run(app + ["report", str(synth.root)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (out / "report.html").is_file() and (out / "report.pdf").is_file()
    assert (out / "report.html").read_text().count("<img") == html.count("<img")

    # the synthetic session names its truth as mocap:, so the run compared it and the report shows it
    assert (out / "squats" / "compare" / "comparison.json").is_file()
    assert "Comparison with marker-based motion capture" in html

    never = tmp_path / "never"
    shutil.copytree(synth.root, never, ignore=shutil.ignore_patterns("output"))
    res = subprocess.run(app + ["report", str(never)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "never been run" in res.stderr

    shutil.copytree(synth.root, tmp_path / "all" / "s2")  # a second session, its outputs up to date
    res = subprocess.run(app + ["batch", str(tmp_path / "all"), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    index = (tmp_path / "all" / "batch_index.html").read_text()
    assert 'href="s1/output/report.html"' in index and 'href="s2/output/report.html"' in index
