"""The command line as a user runs it: help, exit codes, run, batch, validate, demo."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, valid_doc, write_session


def app(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", [[], ["run"], ["batch"], ["demo"], ["report"], ["validate"], ["stages"], ["config"]])
def test_help_everywhere(command):
    res = app(*command, "--help")
    assert res.returncode == 0 and "usage: app.py" in res.stdout


def test_stages_lists_what_is_available():
    res = app("stages")
    assert res.returncode == 0
    assert "frames       available" in res.stdout and "filter       available" in res.stdout and "ik           available" in res.stdout and "analyse      available" in res.stdout and "report       available" in res.stdout


def test_bad_session_exits_2_with_every_problem(tmp_path):
    doc = valid_doc()
    doc["subject"]["height_m"] = 172
    root = write_session(tmp_path / "s", doc, {"static1": ["cam1", "cam2"]})
    res = app("run", str(root))
    assert res.returncode == 2
    assert "looks like centimetres" in res.stderr and "no video of camera 'cam1' for trial 'squats1'" in res.stderr
    assert not (root / "output").exists(), "nothing runs on a bad session"


@pytest.mark.slow
def test_bad_set_and_unknown_trial_exit_2(demo_copy):
    res = app("run", str(demo_copy), "--set", "frames.min_fsp=3")
    assert res.returncode == 2 and "Did you mean 'frames.min_fps'" in res.stderr
    res = app("run", str(demo_copy), "--trial", "jumps")
    assert res.returncode == 2 and "no trial named 'jumps'" in res.stderr
    res = app("run", str(demo_copy), "--from", "nothing")
    assert res.returncode == 2 and "no such stage" in res.stderr


@pytest.mark.slow
def test_run_then_rerun_skips_and_reports(demo_copy):
    shutil.copy(demo_copy / "calibration" / "virtual_cameras.yaml", demo_copy / "calibration" / "cameras.yaml")
    first = app("run", str(demo_copy), "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "static/frames: done" in first.stdout and "not available yet" not in first.stdout
    assert "report.html" in first.stdout and (demo_copy / "output" / "report.html").is_file()
    second = app("run", str(demo_copy), "--no-progress")
    assert "static/frames: up to date" in second.stdout and "squats/frames: up to date" in second.stdout
    summary = json.loads((demo_copy / "output" / "summary.json").read_text())
    assert summary["failed"] == [] and len(summary["outcomes"]) == 22  # 2 trials x 11 stages
    assert (demo_copy / "output" / "log.txt").read_text().count("session ") == 2  # appended per run


def test_validate_and_config(demo_copy):
    res = app("validate", str(demo_copy))
    assert res.returncode == 0 and "valid" in res.stdout and "trial squats [dynamic]" in res.stdout
    res = app("config", str(demo_copy), "--set", "frames.contact_sheet_frames=3")
    assert res.returncode == 0 and "contact_sheet_frames: 3" in res.stdout


@pytest.mark.slow
def test_batch_keeps_going_past_bad_sessions(tmp_path, demo_copy):
    root = tmp_path / "all"
    shutil.copy(demo_copy / "calibration" / "virtual_cameras.yaml", demo_copy / "calibration" / "cameras.yaml")
    shutil.copytree(demo_copy, root / "good")
    write_session(root / "bad", {"subject": {"id": "x"}}, None)
    (root / "broken_video").mkdir()
    shutil.copytree(demo_copy, root / "broken_video", dirs_exist_ok=True)
    (root / "broken_video" / "videos" / "squats" / "cam1.mp4").write_bytes(b"garbage" * 50)
    res = app("batch", str(root), "--no-progress")
    assert res.returncode == 1
    rows = {Path(e["session"]).name: e for e in json.loads((root / "batch_summary.json").read_text())["sessions"]}
    assert rows["good"]["status"] == "ok"
    assert rows["bad"]["status"] == "invalid" and "height_m is missing" in rows["bad"]["detail"]
    assert rows["broken_video"]["status"] == "trial failed" and rows["broken_video"]["failed_trials"] == ["squats"]
    assert (root / "broken_video" / "output" / "static" / "frames" / "frames.json").is_file(), "other trial kept"
    assert "1/3 sessions ran without failures" in res.stdout


@pytest.mark.slow
def test_demo_copies_and_resumes(tmp_path):
    dest = tmp_path / "demo-run"
    first = app("demo", "--dest", str(dest), "--no-progress")
    assert first.returncode == 0, first.stderr
    assert (dest / "output" / "squats" / "frames" / "contact_sheet.png").is_file()
    second = app("demo", "--dest", str(dest), "--no-progress")
    assert second.returncode == 0 and "squats/frames: up to date" in second.stdout
