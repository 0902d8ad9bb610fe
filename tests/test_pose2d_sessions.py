"""Sessions of 2D keypoint files without videos (keypoints.backend: json), and the synthetic session
generator demo/synthetic_session.py that makes them with known truth."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from biomech.trc import read_trc
from demo.synthetic_session import ErrorModel, make_pose2d_session
from core.keypoints import VIDEO_KEYPOINTS
from models.pose_openpose import read_pose_json_dir
from pipeline.keypoints import read_keypoints_csv
from pipeline.orchestrate import run_session
from sessions.session import SessionError, load_session
from tests.conftest import VALID_VIDEOS, valid_doc, write_session

FRONT_END = ["frames", "keypoints", "sync", "triangulate", "filter"]


def _run(root, stages, trials=None, **sections):
    return run_session(root, trials=trials, overrides={"run": {"stages": stages}, **sections}, show_progress=False)


def _edit_yaml(root, change) -> None:
    doc = yaml.safe_load((root / "session.yaml").read_text())
    change(doc)
    (root / "session.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def perfect(tmp_path_factory):
    """A 2-camera session of exact 2D projections, 4 s squats + the 2.5 s static trial."""
    return make_pose2d_session(tmp_path_factory.mktemp("perfect") / "s", cameras=2, seconds=4.0,
                               errors=ErrorModel.perfect(), seed=3)


# --- loading and validation ---------------------------------------------------------------------

def test_json_only_session_loads_and_validates(tmp_path):
    synth = make_pose2d_session(tmp_path / "s", cameras=3, seconds=3.0, errors=ErrorModel.perfect(), seed=1,
                                trials=("static",))
    assert not (synth.root / "videos").exists()
    s = load_session(synth.root)
    assert [c.id for c in s.cameras] == ["cam1", "cam2", "cam3"] and all(c.fps == 60.0 for c in s.cameras)
    (trial,) = s.trials
    assert trial.name == "static" and trial.kind == "static" and trial.videos == {}
    assert trial.pose2d == {c: (synth.root / "pose2d" / "static" / c).resolve() for c in ("cam1", "cam2", "cam3")}
    assert trial.fps == {"cam1": 60.0, "cam2": 60.0, "cam3": 60.0}
    assert trial.source("cam2") == trial.pose2d["cam2"]
    assert s.warnings == []  # a static trial, and the true cameras are written


def test_trials_are_discovered_from_pose2d_folders(tmp_path):
    synth = make_pose2d_session(tmp_path / "s", seconds=3.0, errors=ErrorModel.perfect())
    _edit_yaml(synth.root, lambda d: d.pop("trials"))
    s = load_session(synth.root)
    assert {t.name: t.kind for t in s.trials} == {"squats": "dynamic", "static": "static"}
    assert all(t.videos == {} and set(t.pose2d) == {"cam1", "cam2"} for t in s.trials)


def test_missing_fps_names_trial_and_camera_and_says_to_add_it(tmp_path):
    synth = make_pose2d_session(tmp_path / "s", seconds=3.0, errors=ErrorModel.perfect(), trials=("squats",))

    def drop_cam2_fps(doc):
        doc["cameras"][1].pop("fps")
    _edit_yaml(synth.root, drop_cam2_fps)
    with pytest.raises(SessionError) as info:
        load_session(synth.root)
    (problem,) = info.value.problems
    assert str(synth.root / "pose2d" / "squats" / "cam2") in problem
    assert "trial 'squats' camera 'cam2'" in problem and "no video" in problem and "fps: 60" in problem
    # A trial may declare it instead: one number, or one per camera.
    for fps, expected in ((30, 30.0), ({"cam2": 59.94}, 59.94)):
        _edit_yaml(synth.root, lambda d: d["trials"][0].__setitem__("fps", fps))
        assert load_session(synth.root).trial("squats").fps["cam2"] == expected
    assert load_session(synth.root).trial("squats").fps["cam1"] == 60.0  # the camera's own, not overridden


@pytest.mark.parametrize("where,value,expected", [
    ("camera", 0, "camera 'cam1' has fps 0"), ("camera", "sixty", "camera 'cam1' has fps 'sixty'"),
    ("trial", -5, "trial 'squats' has fps -5"), ("trial", {"cam9": 60}, "fps for unknown camera 'cam9'"),
])
def test_bad_fps_values_are_rejected(tmp_path, where, value, expected):
    synth = make_pose2d_session(tmp_path / "s", seconds=3.0, errors=ErrorModel.perfect(), trials=("squats",))
    target = (lambda d: d["cameras"][0]) if where == "camera" else (lambda d: d["trials"][0])
    _edit_yaml(synth.root, lambda d: target(d).__setitem__("fps", value))
    with pytest.raises(SessionError) as info:
        load_session(synth.root)
    assert any(expected in p and "session.yaml" in p for p in info.value.problems), info.value.problems


def test_keypoint_files_without_videos_need_the_json_backend(tmp_path):
    synth = make_pose2d_session(tmp_path / "s", seconds=3.0, errors=ErrorModel.perfect(), trials=("squats",))
    _edit_yaml(synth.root, lambda d: d.pop("config"))
    with pytest.raises(SessionError) as info:
        load_session(synth.root)
    (problem,) = info.value.problems
    assert problem.startswith(str(synth.root / "pose2d" / "squats")) and "keypoints: {backend: json}" in problem
    assert load_session(synth.root, {"keypoints": {"backend": "json"}}).trial("squats").videos == {}  # or on the command line


def test_json_backend_camera_without_video_or_keypoint_files(tmp_path):
    doc = valid_doc()
    doc["config"] = {"keypoints": {"backend": "json"}}
    root = write_session(tmp_path / "s", doc, {"static1": ["cam1", "cam2"], "squats1": ["cam1"]})
    folder = root / "pose2d" / "squats1" / "cam2"
    folder.mkdir(parents=True)
    with pytest.raises(SessionError) as info:
        load_session(root)
    (problem,) = info.value.problems
    assert problem.startswith(str(folder)) and "no 2D keypoint files (and no video) of camera 'cam2'" in problem
    # With its keypoint files and a frame rate, the camera needs no video; the other keeps its video.
    (folder / "cam2_000000000000_keypoints.json").write_text('{"people": []}')
    doc["cameras"][1]["fps"] = 30
    write_session(root, doc)
    trial = load_session(root).trial("squats1")
    assert set(trial.videos) == {"cam1"} and set(trial.pose2d) == {"cam2"} and trial.fps == {"cam2": 30.0}


def test_video_sessions_are_unchanged(tmp_path):
    root = write_session(tmp_path / "s", valid_doc(), VALID_VIDEOS)
    s = load_session(root)
    assert all(set(t.videos) == {"cam1", "cam2"} and t.pose2d == {} for t in s.trials)
    (root / "videos" / "squats1" / "cam2.mp4").unlink()
    with pytest.raises(SessionError, match=r"squats1/cam2\.mp4: no video of camera 'cam2'"):
        load_session(root)


# --- the generator -------------------------------------------------------------------------------

def test_generator_writes_body25_of_the_true_projections(perfect):
    root = perfect.root
    assert yaml.safe_load((root / "session.yaml").read_text())["config"] == {"keypoints": {"backend": "json"}}
    cams = {c.name: c for c in perfect.cameras}
    assert cams["cam1"].image_size == (1080, 1920) and 1400 < cams["cam1"].K[0, 0] < 1500
    for cam in cams.values():
        distance = np.linalg.norm(cam.centre_m[[0, 2]])
        azimuth = np.degrees(np.arctan2(cam.centre_m[2], cam.centre_m[0]))
        assert 3.0 <= distance <= 4.0 and abs(azimuth) <= 45
    truth = read_trc(root / "mocap" / "squats.trc")
    assert truth.names == list(VIDEO_KEYPOINTS)
    for c, cam in cams.items():
        assert 0 <= perfect.start_s[c] <= 0.5
        det = read_pose_json_dir(root / "pose2d" / "squats" / c, max_people=1)[:, 0]
        t = perfect.camera_times("squats", c)
        assert len(det) == len(t)
        expected = cam.project(perfect.true_points("squats", t))
        assert np.abs(det[..., :2] - expected).max() < 0.01  # pixels (3 decimals in the files)
        assert det[..., 2].min() >= 0.6 and det[..., 2].max() <= 0.95
    np.testing.assert_allclose(truth.positions_m, perfect.true_points("squats", truth.time_s), atol=1e-5)


def test_generator_is_deterministic_and_its_errors_are_as_documented(tmp_path):
    a = make_pose2d_session(tmp_path / "a", cameras=2, seconds=10.0, seed=5, trials=("squats",))
    b = make_pose2d_session(tmp_path / "b", cameras=2, seconds=10.0, seed=5, trials=("squats",))
    c = make_pose2d_session(tmp_path / "c", cameras=2, seconds=10.0, seed=6, trials=("squats",))
    f = "pose2d/squats/cam2/cam2_000000000100_keypoints.json"
    assert (a.root / f).read_text() == (b.root / f).read_text() != (c.root / f).read_text()
    assert (a.root / "calibration" / "cameras.yaml").read_text() == (b.root / "calibration" / "cameras.yaml").read_text()
    assert a.applied == b.applied and a.start_s == b.start_s
    model = ErrorModel()
    for cam, n in a.applied["squats"].items():
        keypoint_frames = n["frames"] * 25
        assert 0.5 * model.missing_share < n["missing"] / keypoint_frames < 1.6 * model.missing_share
        assert 0.6 * model.outlier_share < n["outliers"] / keypoint_frames < 1.4 * model.outlier_share
        assert 0 < n["swapped_frames"] <= 4 * model.swap_share * n["frames"]
        det = read_pose_json_dir(a.root / "pose2d" / "squats" / cam, max_people=1)[:, 0]
        truth = a.cameras[int(cam[-1]) - 1].project(a.true_points("squats", a.camera_times("squats", cam)))
        err = np.linalg.norm(det[..., :2] - truth, axis=-1)
        seen = det[..., 2] > 0
        assert 0.6 < np.nanmedian(err[seen]) / (model.jitter_px * np.sqrt(np.log(4))) < 1.4  # Rayleigh median
        assert np.all(np.isnan(det[~seen, 0]))
    summary = json.loads((a.root / "synthetic.json").read_text())
    assert summary["cameras"]["cam1"]["start_s"] == a.start_s["cam1"] and summary["errors"]["jitter_px"] == 2.0


# --- the stages on a JSON-only session ------------------------------------------------------------

def test_front_end_stages_recover_the_true_3d_keypoints(perfect):
    root = perfect.root
    result = _run(root, FRONT_END)
    assert result.exit_code == 0
    cams = [c.name for c in perfect.cameras]
    log = (root / "output" / "log.txt").read_text()
    assert "no contact sheet" in log and "no overlay images" in log
    for trial in perfect.trials:
        out = root / "output" / trial
        frames = json.loads((out / "frames" / "frames.json").read_text())["cameras"]
        for c in cams:
            rec = frames[c]
            assert rec["source"] == "pose2d" and (rec["width"], rec["height"]) == (1080, 1920)
            assert rec["fps_measured"] == pytest.approx(60.0) and rec["frames"] == len(perfect.camera_times(trial, c))
            stamps = np.loadtxt(out / "frames" / f"timestamps_{c}.csv", delimiter=",", skiprows=1)
            np.testing.assert_allclose(stamps[:, 1], np.arange(rec["frames"]) / 60.0, atol=1e-6)
            t, kp = read_keypoints_csv(out / "keypoints" / f"{c}.csv")
            assert len(t) == rec["frames"] and kp[..., 2].min() > 0
            assert not (out / "keypoints" / f"overlay_{c}.png").exists()
        assert not (out / "frames" / "contact_sheet.png").exists()
        sync = json.loads((out / "sync" / "sync.json").read_text())["cameras"]
        if trial == "squats":  # a moving subject synchronises the phones; a still one cannot
            for c in cams:
                assert sync[c]["offset_s"] == pytest.approx(perfect.start_s[c] - perfect.start_s[cams[0]], abs=0.002)
        # The .trc starts at the first common frame, on the reference camera's clock (sync offset 0):
        # true time = trc time + that frame's time on cam1's clock + cam1's true start.
        est = read_trc(out / "filter" / "keypoints.trc")
        with np.load(out / "triangulate" / "points.npz") as z:
            t0 = float(z["time_s"][0])
        truth = perfect.true_points(trial, est.time_s + t0 + perfect.start_s[cams[0]])
        err_mm = 1000 * np.linalg.norm(est.positions_m - truth, axis=-1)
        assert np.isfinite(err_mm).all()
        assert np.median(err_mm) < 1.0 and err_mm.max() < 5.0, (trial, np.median(err_mm), err_mm.max())
    # Unchanged inputs: nothing re-runs.
    again = _run(root, FRONT_END)
    assert {o.status for o in again.outcomes} == {"up to date"}


def test_frames_without_calibration_leave_the_size_empty(tmp_path):
    synth = make_pose2d_session(tmp_path / "s", seconds=3.0, errors=ErrorModel.perfect(), trials=("squats",))
    (synth.root / "calibration" / "cameras.yaml").unlink()
    result = _run(synth.root, ["frames", "keypoints", "sync"])
    assert {o.status for o in result.outcomes} == {"done"}
    # 3 s of this motion barely moves: the verdict says sync cannot be trusted (and the run exits 1).
    assert result.verdicts["squats"].level == "unusable" and "correlation" in result.verdicts["squats"].reasons[0]
    out = synth.root / "output" / "squats"
    rec = json.loads((out / "frames" / "frames.json").read_text())["cameras"]["cam1"]
    assert rec["width"] is None and rec["height"] is None and rec["fps_declared"] == 60.0
    assert (out / "sync" / "sync.json").is_file()
    # The declared fps is an input of the frames stage: changing it re-runs the stage.
    _edit_yaml(synth.root, lambda d: d["cameras"][0].__setitem__("fps", 30))
    _run(synth.root, ["frames"])
    rec = json.loads((out / "frames" / "frames.json").read_text())["cameras"]["cam1"]
    assert rec["fps_measured"] == pytest.approx(30.0)


def test_realistic_detector_errors_three_phones(tmp_path):
    synth = make_pose2d_session(tmp_path / "s", cameras=3, seconds=5.0, seed=2, trials=("squats",))
    assert _run(synth.root, FRONT_END).exit_code == 0
    out = synth.root / "output" / "squats"
    est = read_trc(out / "filter" / "keypoints.trc")
    with np.load(out / "triangulate" / "points.npz") as z:
        t0 = float(z["time_s"][0])
    truth = synth.true_points("squats", est.time_s + t0 + synth.start_s["cam1"])
    err_mm = 1000 * np.linalg.norm(est.positions_m - truth, axis=-1)
    ok = np.isfinite(err_mm)
    assert ok.mean() > 0.99
    assert np.median(err_mm[ok]) < 6.0 and np.percentile(err_mm[ok], 95) < 20.0


def test_a_camera_without_video_beside_one_with_video(demo_copy):
    """The demo's squats with cam2's video removed: cam2 is timed from its keypoint files and fps."""
    from tests.test_front_end_stages import _truth_2d, _write_true_json

    _write_true_json(demo_copy, "squats", bystander=False)
    (demo_copy / "videos" / "squats" / "cam2.mp4").unlink()
    _edit_yaml(demo_copy, lambda d: d["cameras"][1].__setitem__("fps", 30))
    assert _run(demo_copy, FRONT_END, trials=["squats"], keypoints={"backend": "json"}).exit_code == 0
    out = demo_copy / "output" / "squats"
    frames = json.loads((out / "frames" / "frames.json").read_text())["cameras"]
    assert frames["cam1"]["source"] == "video" and frames["cam2"]["source"] == "pose2d"
    assert (frames["cam2"]["width"], frames["cam2"]["height"]) == (360, 640)  # from the calibration
    assert (out / "keypoints" / "overlay_cam1.png").is_file() and not (out / "keypoints" / "overlay_cam2.png").exists()
    sync = json.loads((out / "sync" / "sync.json").read_text())
    assert sync["cameras"]["cam2"]["offset_s"] == pytest.approx(0.3, abs=0.002)  # demo: cam2 starts 0.3 s late
    t, kp = read_keypoints_csv(out / "keypoints" / "cam2.csv")
    assert np.nanmax(np.linalg.norm(kp[..., :2] - _truth_2d(demo_copy, "squats", "cam2", len(t)), axis=-1)) < 6.0


@pytest.mark.slow
def test_augment_scale_and_ik_run_on_a_json_only_session(perfect):
    result = _run(perfect.root, FRONT_END + ["augment", "scale", "ik"])
    assert result.exit_code == 0, [(o.trial, o.stage, o.status, o.message) for o in result.outcomes]
    assert (perfect.root / "output" / "static" / "scale" / "scaled.osim").is_file()
    assert (perfect.root / "output" / "squats" / "ik" / "squats.mot").is_file()
