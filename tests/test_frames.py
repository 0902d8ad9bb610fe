"""Stage ``frames`` on real encoded videos: timestamps, rotation metadata, damaged files, caching."""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.frames import timing_stats
from pipeline.orchestrate import run_session
from pipeline.runner import DONE, FAILED, UP_TO_DATE
from core.video import VideoError, iter_frames, probe

NO_LATER = {"run": {"stages": ["frames"]}}


def set_mp4_rotation(src: Path, dst: Path, degrees: int) -> None:
    """Write a copy of an .mp4 whose track header carries a display rotation, as phones write it."""
    data = bytearray(src.read_bytes())
    i = data.find(b"tkhd")
    assert data[i + 4] == 0, "expects a version-0 track header"
    one = 0x10000
    matrices = {90: (0, one, 0, -one, 0, 0), 180: (-one, 0, 0, 0, -one, 0), 270: (0, -one, 0, one, 0, 0)}
    a, b, u, c, d, v = matrices[degrees]
    data[i + 44 : i + 80] = struct.pack(">9i", a, b, u, c, d, v, 0, 0, 0x40000000)
    dst.write_bytes(bytes(data))


def outcomes(result):
    return {(o.trial, o.stage): o for o in result.outcomes}


def test_frames_stage_on_demo_session(demo_copy):
    result = run_session(demo_copy, overrides=NO_LATER, show_progress=False)
    assert result.exit_code == 0
    out = demo_copy / "output" / "squats" / "frames"
    info = json.loads((out / "frames.json").read_text())["cameras"]
    assert set(info) == {"cam1", "cam2"}
    for cam, rec in info.items():
        assert (rec["width"], rec["height"], rec["rotation_deg"]) == (360, 640, 0)
        assert rec["fps_measured"] == pytest.approx(30.0, abs=0.01)
        assert rec["variable_frame_rate"] is False
        ts = np.loadtxt(out / f"timestamps_{cam}.csv", delimiter=",", skiprows=1)
        assert len(ts) == rec["frames"] and np.all(np.diff(ts[:, 1]) > 0)
    assert info["cam2"]["frames"] < info["cam1"]["frames"], "cam2 started 0.3 s later"
    assert (out / "contact_sheet.png").stat().st_size > 10_000
    again = run_session(demo_copy, overrides=NO_LATER, show_progress=False)
    assert {o.status for o in again.outcomes} == {UP_TO_DATE}


def test_changed_video_reruns_only_its_trial(demo_copy):
    run_session(demo_copy, overrides=NO_LATER, show_progress=False)
    shutil.copy(demo_copy / "videos" / "static" / "cam2.mp4", demo_copy / "videos" / "squats" / "cam2.mp4")
    res = outcomes(run_session(demo_copy, overrides=NO_LATER, show_progress=False))
    assert res[("squats", "frames")].status == DONE and res[("static", "frames")].status == UP_TO_DATE


def test_rotation_metadata_is_applied_and_reported(tmp_path, demo_copy):
    src = demo_copy / "videos" / "static" / "cam1.mp4"
    for deg in (90, 180, 270):
        set_mp4_rotation(src, tmp_path / f"r{deg}.mp4", deg)
        info = probe(tmp_path / f"r{deg}.mp4")
        assert info.rotation_deg == deg
        assert (info.width, info.height) == ((640, 360) if deg in (90, 270) else (360, 640))
    first_plain = next(iter_frames(src)).image
    first_180 = next(iter_frames(tmp_path / "r180.mp4")).image
    assert np.abs(first_180.astype(int) - first_plain[::-1, ::-1].astype(int)).mean() < 2.0


def test_damaged_videos_fail_their_trial_with_the_file_named(demo_copy):
    bad = demo_copy / "videos" / "squats" / "cam2.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    result = run_session(demo_copy, overrides=NO_LATER, show_progress=False)
    res = outcomes(result)
    assert result.exit_code == 1 and result.failed_trials == ["squats"]
    assert res[("static", "frames")].status == DONE
    assert res[("squats", "frames")].status == FAILED and str(bad) in res[("squats", "frames")].message
    assert "re-export" in res[("squats", "frames")].message


def test_truncated_video_is_an_error_naming_the_file(tmp_path, demo_copy):
    src = demo_copy / "videos" / "squats" / "cam1.mp4"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(VideoError, match=str(cut)):
        probe(cut)


def test_timing_stats_flags_variable_frame_rate():
    regular = np.arange(100) / 60.0
    assert timing_stats(regular, 0.25)["variable_frame_rate"] is False
    assert timing_stats(regular, 0.25)["fps_measured"] == pytest.approx(60.0)
    jittery = regular.copy()
    jittery[50:] += 0.01  # one late frame, as phones under load produce
    stats = timing_stats(jittery, 0.25)
    assert stats["variable_frame_rate"] is True and stats["irregular_intervals"] == 1
