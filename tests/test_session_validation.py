"""Session loading: a table of bad inputs, each with its own clear message, and the good cases."""
from __future__ import annotations

import copy

import pytest

from sessions.session import SessionError, load_session
from tests.conftest import DEMO_SESSION, VALID_VIDEOS, valid_doc, write_session


def edit(path: str, value, doc=None):
    """Set (or delete with value=DELETE) a dotted path like 'subject.height_m' or 'cameras.1.id'."""
    doc = copy.deepcopy(doc or valid_doc())
    node = doc
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    last = int(parts[-1]) if isinstance(node, list) else parts[-1]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


DELETE = object()

# (case id, session.yaml document, videos to create, expected text in the one problem reported)
BAD = [
    ("height in cm", edit("subject.height_m", 175), VALID_VIDEOS, "looks like centimetres; write it in metres (1.75)"),
    ("height missing", edit("subject.height_m", DELETE), VALID_VIDEOS, "subject.height_m is missing"),
    ("height not a number", edit("subject.height_m", "tall"), VALID_VIDEOS, "not a number"),
    ("height implausible", edit("subject.height_m", 3.5), VALID_VIDEOS, "outside 0.5-2.5 m"),
    ("mass in grams", edit("subject.mass_kg", 70000), VALID_VIDEOS, "looks like grams"),
    ("mass implausible", edit("subject.mass_kg", 500), VALID_VIDEOS, "not pounds"),
    ("height_cm key", edit("subject.height_cm", 175, edit("subject.height_m", 1.75)), VALID_VIDEOS, "give height in metres as height_m"),
    ("sex invalid", edit("subject.sex", "q"), VALID_VIDEOS, "use f, m or x"),
    ("no subject id", edit("subject.id", DELETE), VALID_VIDEOS, "subject.id is missing"),
    ("one camera", edit("cameras", [{"id": "cam1"}]), {"static1": ["cam1"], "squats1": ["cam1"]}, "at least 2 cameras"),
    ("duplicate camera", edit("cameras", [{"id": "cam1"}, {"id": "cam1"}, {"id": "cam2"}]), VALID_VIDEOS, "camera id 'cam1' appears twice"),
    ("bad camera id", edit("cameras.1.id", "cam 2"), {"static1": ["cam1", "cam 2"], "squats1": ["cam1", "cam 2"]}, "may hold only letters"),
    ("missing video", valid_doc(), {"static1": ["cam1", "cam2"], "squats1": ["cam1"]}, "no video of camera 'cam2' for trial 'squats1'"),
    ("unknown camera video", valid_doc(), {"static1": ["cam1", "cam2"], "squats1": ["cam1", "cam2", "cam3"]}, "video for unknown camera 'cam3'"),
    ("duplicate trial", edit("trials", [{"name": "static1"}, {"name": "static1"}]), VALID_VIDEOS, "trial name 'static1' appears twice"),
    ("bad trial kind", edit("trials.1.kind", "walking"), VALID_VIDEOS, "use 'static'"),
    ("mocap missing", edit("trials.1.mocap", "mocap/squats1.trc"), VALID_VIDEOS, "mocap file of trial 'squats1' not found"),
    ("mocap not trc", edit("trials.1.mocap", "mocap/squats1.c3d"), VALID_VIDEOS, "is not a .trc file"),
    ("board square in cm", edit("checkerboard.square_mm", 6), VALID_VIDEOS, "looks like centimetres or metres"),
    ("board square board", edit("checkerboard.cols", 4), VALID_VIDEOS, "square board cannot be oriented"),
    ("board placement", edit("checkerboard.placement", "wall"), VALID_VIDEOS, "use 'vertical' or 'ground'"),
    ("board rows", edit("checkerboard.rows", 1.5), VALID_VIDEOS, "number of INNER corners"),
    ("unknown top key", edit("subjects", {}), VALID_VIDEOS, "unknown top-level key 'subjects'"),
    ("unknown config key", edit("config", {"frames": {"min_fsp": 20}}), VALID_VIDEOS, "Did you mean 'frames.min_fps'"),
    ("config wrong type", edit("config", {"frames": {"min_fps": "fast"}}), VALID_VIDEOS, "'frames.min_fps' must be int"),
    ("no cameras", edit("cameras", DELETE), VALID_VIDEOS, "'cameras' is missing"),
    ("hint outside picture", edit("subject.seen_at", {"camera": "cam1", "x": 540, "y": 0.5}), VALID_VIDEOS, "shares of the picture's width"),
    ("hint unknown camera", edit("subject.seen_at", {"camera": "cam9", "x": 0.5, "y": 0.5}), VALID_VIDEOS, "names camera 'cam9'"),
    ("hint unknown trial", edit("subject.seen_at", [{"camera": "cam1", "x": 0.5, "y": 0.5, "trial": "jumps"}]), VALID_VIDEOS,
     "names trial 'jumps'"),
    ("hint no camera", edit("subject.seen_at", {"x": 0.5, "y": 0.5}), VALID_VIDEOS, "seen_at.camera is missing"),
]


@pytest.mark.parametrize("case,doc,videos,expected", BAD, ids=[b[0] for b in BAD])
def test_each_bad_input_gets_its_own_clear_message(tmp_path, case, doc, videos, expected):
    root = write_session(tmp_path / "s", doc, videos)
    with pytest.raises(SessionError) as info:
        load_session(root)
    hits = [p for p in info.value.problems if expected in p]
    assert hits, f"{case}: no problem mentions {expected!r}; got {info.value.problems}"
    assert all("session.yaml" in p or str(root) in p for p in info.value.problems), "every problem names its file"


def test_empty_video_names_the_file(tmp_path):
    root = write_session(tmp_path / "s", valid_doc(), VALID_VIDEOS)
    (root / "videos" / "squats1" / "cam2.mp4").write_bytes(b"")
    with pytest.raises(SessionError, match=r"squats1/cam2\.mp4: .* is empty \(0 bytes\)"):
        load_session(root)


def test_every_problem_is_reported_at_once(tmp_path):
    doc = edit("subject.height_m", 180, edit("subject.mass_kg", 80000, edit("cameras", [{"id": "cam1"}])))
    root = write_session(tmp_path / "s", doc, {"static1": ["cam1"]})
    with pytest.raises(SessionError) as info:
        load_session(root)
    text = "\n".join(info.value.problems)
    for expected in ("centimetres", "grams", "at least 2 cameras", "trial 'squats1'"):
        assert expected in text
    assert len(info.value.problems) >= 4


def test_missing_and_broken_session_yaml(tmp_path):
    with pytest.raises(SessionError, match="session folder not found"):
        load_session(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SessionError, match="needs a session.yaml"):
        load_session(tmp_path / "empty")
    write_session(tmp_path / "broken", "subject: {id: S01\ncameras: [", None)
    with pytest.raises(SessionError, match=r"session.yaml, line \d+: not valid YAML"):
        load_session(tmp_path / "broken")


def test_valid_session_loads_with_overrides(tmp_path):
    doc = edit("config", {"frames": {"contact_sheet_frames": 4}})
    root = write_session(tmp_path / "s", doc, VALID_VIDEOS)
    s = load_session(root, {"frames": {"min_fps": 24}})
    assert s.subject.height_m == 1.75 and s.subject.sex == "m"
    assert [c.id for c in s.cameras] == ["cam1", "cam2"] and s.cameras[0].device == "iPhone13,3"
    assert [t.name for t in s.trials] == ["static1", "squats1"]
    assert s.trial("squats1").videos["cam2"] == (root / "videos" / "squats1" / "cam2.mp4").resolve()
    assert s.config["frames"]["contact_sheet_frames"] == 4  # from session.yaml
    assert s.config["frames"]["min_fps"] == 24  # from the command line
    assert len(s.warnings) == 1 and "no camera calibration yet" in s.warnings[0]
    (root / "calibration").mkdir()
    (root / "calibration" / "cameras.yaml").write_text("{}")
    assert load_session(root).warnings == []


def test_subject_hint_loads(tmp_path):
    doc = edit("subject.seen_at", [{"camera": "cam2", "x": 0.4, "y": 0.6, "time_s": 1.5, "trial": "squats1"},
                                   {"camera": "cam1", "x": 0.5, "y": 0.5}])
    hints = load_session(write_session(tmp_path / "s", doc, VALID_VIDEOS)).subject.seen_at
    assert [(h.camera, h.x, h.y, h.time_s, h.trial) for h in hints] == [("cam2", 0.4, 0.6, 1.5, "squats1"),
                                                                     ("cam1", 0.5, 0.5, 0.0, None)]


def test_trials_are_discovered_from_video_folders(tmp_path):
    root = write_session(tmp_path / "s", edit("trials", DELETE), {"static_pose": ["cam1", "cam2"], "squats2": ["cam1", "cam2"]})
    s = load_session(root)
    assert {t.name: t.kind for t in s.trials} == {"squats2": "dynamic", "static_pose": "static"}


def test_no_static_trial_is_a_warning(tmp_path):
    root = write_session(tmp_path / "s", edit("trials", [{"name": "squats1"}]), {"squats1": ["cam1", "cam2"]})
    s = load_session(root)
    assert any("no static trial" in w for w in s.warnings)


def test_embedded_demo_session_is_valid():
    s = load_session(DEMO_SESSION)
    assert len(s.cameras) == 2 and {t.kind for t in s.trials} == {"static", "dynamic"}
    assert all(t.mocap is not None and t.mocap.is_file() for t in s.trials)
