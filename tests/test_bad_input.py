"""Bad input, as a user would give it, through the real command line (``app.main``; a few rows also as a
separate ``python app.py`` process). Each row is one distinct mistake; every row checks the exit code,
that the message names the file or setting, that no traceback reaches the console, and, for mistakes
met after some work was done, that the earlier outputs are still there, unchanged.

Fixtures (built once per module, copied per row):
  plain   a session.yaml with placeholder video files (enough for everything checked on loading)
  media   the demo session (real videos) with its true cameras as calibration/cameras.yaml
  worked  ``media`` whose static trial already ran frames..filter on true 2D keypoints (JSON backend)
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import yaml

from app import main
from demo import copy_demo_session
from tests.conftest import DEMO_SESSION, ROOT, VALID_VIDEOS, valid_doc, write_session

WORK_STAGES = ["frames", "keypoints", "sync", "triangulate", "filter"]
EARLIER = ("output/static/frames/frames.json", "output/static/keypoints/cam1.csv", "output/static/sync/sync.json",
           "output/static/triangulate/points.npz", "output/static/filter/keypoints.trc")
UNTOUCHED = EARLIER + ("output/log.txt", "output/summary.json")  # a refused run writes nothing


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    top = tmp_path_factory.mktemp("bad_input")
    plain = write_session(top / "plain", valid_doc(), VALID_VIDEOS)
    media = copy_demo_session(top / "media", true_cameras=True)
    worked = top / "worked"
    shutil.copytree(media, worked)
    from tests.test_front_end_stages import _write_true_json

    _write_true_json(worked, "static", bystander=False)
    _edit_yaml(worked / "session.yaml", lambda d: d.update(config={"run": {"stages": WORK_STAGES},
                                                                     "keypoints": {"backend": "json"}}))
    assert main(["run", str(worked), "--trial", "static", "--no-progress"]) == 0
    cmp = top / "cmp"
    cmp.mkdir()
    from biomech.mot import write_mot
    from tests.test_compare import _tables

    ours, ref = _tables(0.5)
    write_mot(cmp / "ours.mot", ours)
    write_mot(cmp / "ref.mot", ref)
    from biomech.trc import MarkerTable, write_trc

    foreign = MarkerTable(np.arange(0, 1, 0.01), ["X1", "X2", "X3"], np.zeros((100, 3, 3)), 100.0)
    write_trc(cmp / "foreign.trc", foreign)
    write_trc(cmp / "foreign_static.trc", foreign)
    return {"plain": plain, "media": media, "worked": worked, "cmp": cmp}


def _edit_yaml(path: Path, fn: Callable[[dict], object]) -> None:
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _session_config(section: str, key: str, value) -> Callable:
    def setup(root: Path, **_):
        _edit_yaml(root / "session.yaml", lambda d: d.setdefault("config", {}).setdefault(section, {}).update({key: value}))
    return setup


def _session(fn: Callable[[dict], object]) -> Callable:
    return lambda root, **_: _edit_yaml(root / "session.yaml", fn)


def _cameras(cam: str, **changes) -> Callable:
    def setup(root: Path, **_):
        _edit_yaml(root / "calibration" / "cameras.yaml", lambda d: d[cam].update(changes))
    return setup


def _write_video(path: Path, frames: int, size=(360, 640)) -> None:
    path.unlink(missing_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 40 + i, np.uint8))
    writer.release()


def _one_frame(rel: str) -> Callable:
    return lambda root, **_: _write_video(root / rel, 1)


def _still(rel: str) -> Callable:
    def setup(root: Path, **_):
        ok, png = cv2.imencode(".png", np.full((640, 360, 3), 90, np.uint8))
        (root / rel).write_bytes(png.tobytes())
    return setup


def _garbage(rel: str) -> Callable:
    return lambda root, **_: (root / rel).write_bytes(b"this is not a video" * 64)


def _read_only(root: Path, monkeypatch, **_):
    out = root / "output"
    if os.geteuid() != 0:
        out.chmod(0o555)
        return
    # root writes anywhere: make the write test fail as a read-only folder makes it fail
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def _locked(root: Path, request, **_) -> dict[str, str]:
    """Another process holds the session's run lock, as a running `app.py run` does."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from pipeline.lock import session_lock
        with session_lock(Path({str(root / 'output')!r})):
            print("locked", flush=True)
            sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    request.addfinalizer(lambda: (holder.kill(), holder.wait()))
    assert holder.stdout.readline().strip() == "locked"
    return {"pid": str(holder.pid)}


def _rm(rel: str) -> Callable:
    return lambda root, **_: shutil.rmtree(root / rel)


# ---------------------------------------------------------------- the table

@dataclass
class Row:
    id: str
    argv: list[str]  # {root}: the row's session copy, {cmp}: compare files, {demo}: the shipped demo session
    code: int
    expect: tuple[str, ...]  # in stdout + stderr; formatted like argv (and with what setup returns)
    base: str = "plain"
    setup: Callable | None = None
    kept: tuple[str, ...] = ()  # files (relative to the row's session) that must be there, unchanged, afterwards
    subprocess: bool = False  # run as a separate `python app.py` process
    nothing_written: bool = False  # no output/ folder afterwards


RUN = ["run", "{root}", "--no-progress"]
RUN_STATIC = ["run", "{root}", "--trial", "static", "--no-progress"]
CFG = "{root}/session.yaml (config)"

ROWS = [
    # settings out of range, refused on loading (exit 2, nothing runs), naming setting, value, range, source
    Row("cutoff-negative", RUN + ["--set", "filter.cutoff_hz=-1"], 2, ("--set: 'filter.cutoff_hz' is -1.0", "at least 0"), nothing_written=True),
    Row("min-confidence-above-1", RUN, 2, (f"{CFG}: 'triangulate.min_confidence' is 1.5", "at most 1"),
        setup=_session_config("triangulate", "min_confidence", 1.5), nothing_written=True),
    Row("detection-confidence-negative", RUN + ["--set", "keypoints.min_detection_confidence=-0.1"], 2,
        ("'keypoints.min_detection_confidence' is -0.1", "at least 0 and at most 1"), nothing_written=True),
    Row("sync-lag-zero", RUN + ["--set", "sync.max_lag_s=0"], 2, ("--set: 'sync.max_lag_s' is 0.0", "above 0"), subprocess=True,
        nothing_written=True),
    Row("sync-rate-negative", RUN, 2, (f"{CFG}: 'sync.rate_hz' is -200.0", "above 0"),
        setup=_session_config("sync", "rate_hz", -200), nothing_written=True),
    Row("filter-gap-negative", RUN + ["--set", "filter.max_gap_s=-0.1"], 2, ("'filter.max_gap_s' is -0.1",), nothing_written=True),
    Row("augment-gap-negative", RUN, 2, (f"{CFG}: 'augment.max_gap_s' is -1.0",),
        setup=_session_config("augment", "max_gap_s", -1), nothing_written=True),
    Row("outlier-px-zero", RUN + ["--set", "triangulate.outlier_px=0"], 2, ("'triangulate.outlier_px' is 0.0", "above 0"),
        nothing_written=True),
    Row("max-people-zero", RUN + ["--set", "keypoints.max_people=0"], 2, ("'keypoints.max_people' is 0", "whole number at least 1"),
        nothing_written=True),
    Row("max-people-fraction", RUN + ["--set", "keypoints.max_people=1.5"], 2, ("'keypoints.max_people' is 1.5", "whole number"),
        nothing_written=True),
    Row("workers-negative", RUN + ["--set", "keypoints.workers=-1"], 2, ("'keypoints.workers' is -1",), nothing_written=True),
    Row("ik-accuracy-zero", RUN, 2, (f"{CFG}: 'ik.accuracy' is 0.0", "above 0"),
        setup=_session_config("ik", "accuracy", 0), nothing_written=True),
    Row("share-above-1", RUN + ["--set", "frames.max_missing_frame_share=1.5"], 2,
        ("'frames.max_missing_frame_share' is 1.5", "at most 1"), nothing_written=True),
    Row("backend-unknown", RUN + ["--set", "keypoints.backend=openpose"], 2, ("'keypoints.backend' is 'openpose'", "one of auto, mediapipe, blazepose-torch, json"),
        nothing_written=True),
    Row("device-unknown", RUN, 2, (f"{CFG}: 'augment.device' is 'gpu'", "one of auto, cpu, cuda"),
        setup=_session_config("augment", "device", "gpu"), nothing_written=True),
    Row("scale-markers-unknown", RUN + ["--set", "scale.markers=mocap"], 2, ("'scale.markers' is 'mocap'", "auto, augmented, video"),
        nothing_written=True),
    Row("log-level-unknown", RUN + ["--set", "run.log_level=verbose"], 2, ("'run.log_level' is 'verbose'", "debug, info, warning, error"),
        nothing_written=True),
    Row("time-range-reversed", RUN + ["--set", "scale.time_range_s=[3,1]"], 2, ("'scale.time_range_s' is [3, 1]", "start < end"),
        nothing_written=True),
    Row("min-fps-above-max", RUN + ["--set", "frames.min_fps=300"], 2, ("'frames.min_fps' (300) is above 'frames.max_fps' (240)",),
        nothing_written=True),
    Row("setting-misspelt", RUN + ["--set", "frames.min_fsp=3"], 2, ("unknown setting 'frames.min_fsp'", "Did you mean 'frames.min_fps'"),
        nothing_written=True),
    Row("setting-wrong-type", RUN, 2, (f"{CFG}: 'frames.contact_sheet' must be bool",),
        setup=_session_config("frames", "contact_sheet", "yes"), nothing_written=True),
    Row("config-command-checks-too", ["config", "--set", "sync.rate_hz=0"], 2, ("--set: 'sync.rate_hz' is 0",)),
    # session.yaml (sessions/session.py)
    Row("height-in-cm", RUN, 2, ("session.yaml: subject.height_m is 175", "looks like centimetres"),
        setup=_session(lambda d: d["subject"].update(height_m=175)), nothing_written=True),
    Row("mass-in-grams", RUN, 2, ("session.yaml: subject.mass_kg is 70000", "looks like grams"),
        setup=_session(lambda d: d["subject"].update(mass_kg=70000)), nothing_written=True),
    Row("one-camera", RUN, 2, ("session.yaml: 1 camera(s) listed", "at least 2"),
        setup=_session(lambda d: d.update(cameras=[{"id": "cam1"}])), nothing_written=True),
    Row("video-missing", RUN, 2, ("videos/squats1/cam2.mp4: no video of camera 'cam2' for trial 'squats1'",),
        setup=lambda root, **_: (root / "videos" / "squats1" / "cam2.mp4").unlink(), nothing_written=True),
    Row("video-empty", RUN, 2, ("videos/static1/cam1.mp4: video of camera 'cam1' for trial 'static1' is empty (0 bytes)",),
        setup=lambda root, **_: (root / "videos" / "static1" / "cam1.mp4").write_bytes(b""), nothing_written=True),
    Row("top-level-key-unknown", RUN, 2, ("session.yaml: unknown top-level key 'subjects'",),
        setup=_session(lambda d: d.update(subjects={})), nothing_written=True),
    Row("yaml-broken", ["validate", "{root}"], 2, ("session.yaml, line", "not valid YAML"),
        setup=lambda root, **_: (root / "session.yaml").write_text("subject: {id: S01\ncameras: [\n")),
    Row("board-square", RUN, 2, ("session.yaml: checkerboard has 5x5 inner corners",),
        setup=_session(lambda d: d["checkerboard"].update(rows=5, cols=5)), nothing_written=True),
    Row("mocap-missing", RUN, 2, ("mocap/squats1.trc: mocap file of trial 'squats1' not found",),
        setup=_session(lambda d: d["trials"][1].update(mocap="mocap/squats1.trc")), nothing_written=True),
    Row("session-folder-missing", ["run", "{root}/nowhere"], 2, ("nowhere: session folder not found",)),
    Row("trial-unknown", RUN + ["--trial", "jumps"], 2, ("session.yaml: no trial named 'jumps'",), nothing_written=True),
    Row("stage-unknown", ["run", "{root}", "--no-progress", "--from", "nothing"], 2, ("--from nothing: no such stage",),
        base="worked", kept=UNTOUCHED),
    # recordings and calibration, found by `validate` before any work (every problem at once)
    Row("validate-still-image", ["validate", "{root}"], 2, ("videos/static/cam1.mp4: a still image, not a video",),
        base="media", setup=_still("videos/static/cam1.mp4"), subprocess=True),
    Row("validate-one-frame", ["validate", "{root}"], 2, ("videos/squats/cam2.mp4: only 1 frame",),
        base="media", setup=_one_frame("videos/squats/cam2.mp4")),
    Row("validate-not-a-video", ["validate", "{root}"], 2, ("videos/static/cam2.mp4: cannot be opened as a video",),
        base="media", setup=_garbage("videos/static/cam2.mp4")),
    Row("validate-zero-frames", ["validate", "{root}"], 2, ("videos/static/cam1.mp4: cannot be opened as a video",),
        base="media", setup=lambda root, **_: _write_video(root / "videos" / "static" / "cam1.mp4", 0)),
    Row("validate-aspect-differs", ["validate", "{root}"], 2,
        ("videos/static/cam1.mp4: 360x640", "calibration/cameras.yaml calibrated camera cam1 at 640x360", "turned a quarter"),
        base="media", setup=_cameras("cam1", image_size=[640, 360])),
    Row("validate-camera-not-calibrated", ["validate", "{root}"], 2, ("cameras.yaml: no calibration for camera(s) ['cam2']",),
        base="media", setup=lambda root, **_: _edit_yaml(root / "calibration" / "cameras.yaml", lambda d: d.pop("cam2"))),
    Row("validate-camera-file-broken", ["validate", "{root}"], 2, ("cameras.yaml: not valid YAML",),
        base="media", setup=lambda root, **_: (root / "calibration" / "cameras.yaml").write_text("cam1: [\n")),
    Row("validate-lists-every-problem", ["validate", "{root}"], 2,
        ("videos/static/cam1.mp4: a still image", "videos/squats/cam2.mp4: only 1 frame", "calibrated camera cam2 at 640x360"),
        base="media", setup=lambda root, **kw: (_still("videos/static/cam1.mp4")(root), _one_frame("videos/squats/cam2.mp4")(root),
                                                _cameras("cam2", image_size=[640, 360])(root))),
    Row("validate-resolution-rescaled", ["validate", "{root}"], 0, ("valid", "calibrated camera cam1 at 720x1280 (same aspect)",
                                                                    "intrinsics rescaled by 0.5"),
        base="media", setup=_cameras("cam1", image_size=[720, 1280])),
    Row("validate-encoder-crop-accepted", ["validate", "{root}"], 0, ("valid", "calibrated camera cam2 at 362x640",
                                                                      "encoder's crop of 2x0 px"),
        base="media", setup=_cameras("cam2", image_size=[362, 640])),
    # met while running, after earlier work: that work stays
    Row("run-still-image", RUN_STATIC, 1, ("videos/static/cam1.mp4: a still image, not a video",),
        base="worked", setup=_still("videos/static/cam1.mp4"), kept=EARLIER),
    Row("run-one-frame-video", RUN_STATIC, 1, ("videos/static/cam2.mp4: only 1 frame",),
        base="worked", setup=_one_frame("videos/static/cam2.mp4"), kept=EARLIER),
    Row("run-aspect-differs", RUN_STATIC, 1, ("calibration/cameras.yaml calibrated camera cam2 at 640x360",),
        base="worked", setup=_cameras("cam2", image_size=[640, 360]), kept=EARLIER),
    Row("run-cutoff-above-nyquist", RUN_STATIC + ["--set", "filter.cutoff_hz=20"], 1,
        ("filter.cutoff_hz is 20 Hz, at or above the Nyquist frequency 15 Hz",),
        base="worked", kept=EARLIER),
    Row("run-json-keypoints-missing", RUN_STATIC, 1, ("pose2d/static/cam2",),
        base="worked", setup=_rm("pose2d/static/cam2"), kept=EARLIER[:1] + EARLIER[2:]),
    Row("run-output-read-only", RUN_STATIC, 2, ("{root}/output: the output folder cannot be written",),
        base="worked", setup=_read_only, kept=UNTOUCHED),
    Row("run-already-running", RUN_STATIC, 2, ("another run (pid {pid}", "--wait"),
        base="worked", setup=_locked, kept=UNTOUCHED),
    # compare
    Row("compare-height-in-cm", ["compare", "{cmp}/ours.mot", "{demo}/mocap/squats.trc", "--static", "{demo}/mocap/static.trc",
                                 "--height", "180", "--mass", "70"], 2, ("--height 180: looks like centimetres",)),
    Row("compare-mass-in-grams", ["compare", "{cmp}/ours.mot", "{cmp}/ref.mot", "--mass", "70000"], 2, ("--mass 70000: looks like grams",)),
    Row("compare-markers-do-not-match", ["compare", "{cmp}/ours.mot", "{cmp}/foreign.trc", "--static", "{cmp}/foreign_static.trc",
                                         "--height", "1.7", "--mass", "65"], 2,
        ("foreign.trc: its markers (X1, X2, X3) are neither a lab's mocap markers", "nor our 20 video keypoints")),
    Row("compare-trc-without-subject", ["compare", "{cmp}/ours.mot", "{demo}/mocap/squats.trc"], 2, ("needs --height M --mass KG",)),
    Row("compare-shift-at-limit", ["compare", "{cmp}/ours.mot", "{cmp}/ref.mot", "--max-shift", "0.2", "--no-plot",
                                   "--out", "{root}/cmp"], 0, ("sits at the search limit (+-0.2 s)", "--max-shift")),
    Row("compare-file-missing", ["compare", "{cmp}/nothing.mot", "{cmp}/ref.mot"], 2, ("nothing.mot",)),
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, bases, tmp_path, capsys, monkeypatch, request):
    root = tmp_path / "session"
    shutil.copytree(bases[row.base], root, symlinks=True)
    if row.base == "worked":  # stage fingerprints hold the videos' paths: bring the copy up to date first
        assert main(["run", str(root), "--trial", "static", "--no-progress"]) == 0
        capsys.readouterr()
    extra = row.setup(root, monkeypatch=monkeypatch, request=request) if row.setup else None
    extra = extra if isinstance(extra, dict) else {}
    fmt = {"root": str(root), "cmp": str(bases["cmp"]), "demo": str(DEMO_SESSION), **extra}
    argv = [a.format(**fmt) for a in row.argv]
    before = {rel: _digest(root / rel) for rel in row.kept}
    if row.subprocess:
        res = subprocess.run([sys.executable, str(ROOT / "app.py"), *argv], capture_output=True, text=True, timeout=120)
        code, out, err = res.returncode, res.stdout, res.stderr
    else:
        code = main(argv)
        captured = capsys.readouterr()
        out, err = captured.out, captured.err
    text = out + err
    assert code == row.code, text
    for want in row.expect:
        assert want.format(**fmt) in text, text
    assert "Traceback" not in text
    for rel, digest in before.items():
        # Kept as it was: in place, or (a stage that failed on it, and those after) moved aside as no
        # longer current to output/<trial>/<stage>.stale/, never deleted.
        parts = Path(rel).parts
        aside = root.joinpath(*parts[:-2], parts[-2] + ".stale", parts[-1])
        here = root / rel if (root / rel).is_file() else aside
        assert here.is_file() and _digest(here) == digest, f"{rel} lost or changed"
    if row.nothing_written:
        assert not (root / "output").exists()


def test_at_least_30_rows_and_each_its_own():
    assert len(ROWS) >= 30
    assert len({r.id for r in ROWS}) == len(ROWS)


def _lock_holder(root, then: str) -> subprocess.Popen:
    """Another process that holds the session's lock, then runs ``then`` (Python) while holding it."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from pipeline.lock import session_lock
        with session_lock(Path({str(root / 'output')!r})):
            print("locked", flush=True)
            {then}
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return holder


@pytest.mark.slow
def test_second_run_waits_with_wait(bases, tmp_path):
    """--wait: the second run waits for the first to let go, then runs."""
    root = tmp_path / "session"
    shutil.copytree(bases["worked"], root)
    holder = _lock_holder(root, "sys.stdin.read()")
    second = None
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "run", str(root), "--trial", "static", "--no-progress",
                                   "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first_line = second.stderr.readline()
        assert f"pid {holder.pid}" in first_line and "waiting" in first_line
        assert second.poll() is None  # still waiting
        holder.stdin.close()  # the first run finishes
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        assert "static/filter:" in out and "Traceback" not in err
    finally:
        for proc in (holder, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_killed_run_leaves_no_stale_lock(bases, tmp_path):
    root = tmp_path / "session"
    shutil.copytree(bases["worked"], root)
    holder = _lock_holder(root, "time.sleep(60)")
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    assert (root / "output" / ".lock").is_file()  # the file stays, but nobody holds it
    assert main(["run", str(root), "--trial", "static", "--no-progress"]) == 0


def test_mocap_marker_coverage_names_the_missing_markers(tmp_path):
    from biomech.compare import CompareError, marker_coverage

    note = marker_coverage("lab.trc", ["C7", "r.ASIS", "L.ASIS"], ["C7", "r.ASIS", "L.ASIS", "r.PSIS", "L.PSIS"], "the set")
    assert note.startswith("lab.trc: 2 of the 5 markers of the set are missing (r.PSIS, L.PSIS)")
    assert marker_coverage("lab.trc", ["C7"], ["C7"], "the set") is None
    with pytest.raises(CompareError, match="none of the 2 markers"):
        marker_coverage("lab.trc", ["x"], ["C7", "r.ASIS"], "the set")


def test_cameras_for_videos_fits_or_refuses():
    from calibration.camera import Camera, CameraFileError
    from calibration.session_calibration import cameras_for_videos

    K = [[1500.0, 0, 544.0], [0, 1500.0, 960.0], [0, 0, 1]]
    cams = [Camera("a", (1088, 1920), K), Camera("b", (1088, 1920), K), Camera("c", (1088, 1920), K)]
    fitted, notes = cameras_for_videos(cams, {"a": (1080, 1920), "b": (544, 960), "c": (1088, 1920)})
    assert fitted[0].image_size == (1080, 1920) and np.allclose(fitted[0].K, K)  # encoder crop: K kept
    assert fitted[1].image_size == (544, 960) and np.allclose(fitted[1].K[:2], np.array(K)[:2] / 2)  # rescaled
    assert fitted[2] is cams[2] and len(notes) == 2
    with pytest.raises(CameraFileError, match="aspect"):
        cameras_for_videos(cams, {"a": (1920, 1080)})
