"""The keypoints and sync stages end to end: MediaPipe on the demo videos, the JSON backend with a
bystander, and the real Pose2Sim demo videos (skipped without ../shared)."""
from __future__ import annotations

from dataclasses import replace

import json
import shutil

import numpy as np
import pytest
import yaml

from biomech.mot import read_mot
from biomech.trc import read_trc
from calibration.camera import load_cameras
from core.keypoints import VIDEO_KEYPOINTS
from pipeline.keypoints import read_keypoints_csv
from pipeline.orchestrate import run_session
from core.video import iter_frames
from tests.conftest import SETTINGS, SHARED_DATA, needs_shared

DEMO_OFFSET_S = {"cam1": 0.0, "cam2": 0.3}  # cam2 starts 0.3 s late (demo/make_demo_session.py)


def _run(root, stages, trials=None, **sections):
    """Run ``stages``; ``sections`` are config overrides by section, e.g. keypoints={"backend": "json"}."""
    return run_session(root, trials=trials, overrides={"run": {"stages": stages}, **sections}, show_progress=False)


@pytest.mark.slow
def test_mediapipe_keypoints_and_sync_on_demo(demo_copy):
    _run(demo_copy, ["frames", "keypoints", "sync"])
    out = demo_copy / "output" / "squats"
    report = json.loads((out / "keypoints" / "keypoints.json").read_text())
    for cam in ("cam1", "cam2"):
        t, kp = read_keypoints_csv(out / "keypoints" / f"{cam}.csv")
        assert kp.shape == (len(t), 20, 3) and np.all(np.diff(t) > 0)
        assert report["cameras"][cam]["subject_coverage"] == 1.0
        assert report["cameras"][cam]["mean_detection_rate"] > 0.9
        assert (out / "keypoints" / f"overlay_{cam}.png").stat().st_size > 10_000
    sync = json.loads((out / "sync" / "sync.json").read_text())
    # Within half a frame (30 fps) of the truth, from the detector's keypoints of two different views.
    assert sync["cameras"]["cam2"]["offset_s"] == pytest.approx(0.3, abs=0.5 / 30)
    assert sync["cameras"]["cam2"]["confidence"] > 0.6
    assert (out / "sync" / "sync.png").is_file()
    static = json.loads((demo_copy / "output" / "static" / "sync" / "sync.json").read_text())
    assert any("hardly moves" in w for w in static["warnings"])  # a still subject cannot be synchronised
    # Re-running re-uses the cached detections even when the selection settings change.
    log = demo_copy / "output" / "log.txt"
    _run(demo_copy, ["frames", "keypoints", "sync"], keypoints={"max_track_gap_s": 0.5})
    assert log.read_text().count("detections reused") == 4


def _truth_2d(root, trial, cam, n_frames):
    """Projection of the true 3D keypoints into a demo camera at its frame times. (frames, 20, 2)."""
    table = read_trc(root / "mocap" / f"{trial}.trc")
    camera = {c.name: c for c in load_cameras(root / "calibration" / "virtual_cameras.yaml")}[cam]
    t = np.arange(n_frames) / 30.0 + DEMO_OFFSET_S[cam]
    idx = [table.names.index(k) for k in VIDEO_KEYPOINTS]
    pts = np.stack([np.interp(t, table.time_s, table.positions_m[:, i, a]) for i in idx for a in range(3)], -1)
    return camera.project(pts.reshape(-1, 3)).reshape(n_frames, 20, 2)


def _body25(kp: np.ndarray) -> list[float]:
    from models.pose_openpose import SKELETONS

    out = np.zeros((25, 3))
    for name, j in SKELETONS["BODY_25"].items():
        out[j, :2] = kp[VIDEO_KEYPOINTS.index(name)]
        out[j, 2] = 0.9
    return out.ravel().tolist()


def _write_true_json(root, trial: str, bystander: bool, seed: int = 0) -> None:
    """Per-frame OpenPose JSON of the true 2D keypoints + 1 px noise (and a bigger, still bystander)."""
    rng = np.random.default_rng(seed)
    for cam in ("cam1", "cam2"):
        n = sum(1 for _ in iter_frames(root / "videos" / trial / f"{cam}.mp4", images=False))
        truth = _truth_2d(root, trial, cam, n)
        centre = np.nanmean(truth, axis=(0, 1))
        # A bystander: the subject's first (standing) pose, 1.4x bigger, still but for detector jitter.
        other = (truth[0] - centre) * 1.4 + centre + np.array([150.0, 20.0])
        folder = root / "pose2d" / trial / cam
        folder.mkdir(parents=True)
        for f in range(n):
            people = [_body25(truth[f] + rng.normal(0, 1.0, (20, 2)))]
            if bystander:
                people.append(_body25(other + rng.normal(0, 1.0, (20, 2))))
                if rng.random() < 0.5:
                    people.reverse()
            (folder / f"{cam}_{f:012d}_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": p} for p in people]}))
    # The true cameras: the 3D output is then in the truth's frame and compares directly.
    shutil.copy(root / "calibration" / "virtual_cameras.yaml", root / "calibration" / "cameras.yaml")


@pytest.mark.slow
def test_scale_and_ik_stages_on_augmented_markers_and_on_video_keypoints(demo_copy):
    """Static + squats from true 2D keypoints: our shipped augmenter adds the 43 markers, the static
    trial scales our model on them, both trials get joint angles that OpenSim reads, with plots and
    summaries. Then the same on the 20 video keypoints alone (scale.markers: video): only scale and
    ik run again."""
    import opensim

    for trial in ("static", "squats"):
        _write_true_json(demo_copy, trial, bystander=False, seed=1)
    stages = ["frames", "keypoints", "sync", "triangulate", "filter", "augment", "scale", "ik"]
    for markers in ("augmented", "video"):
        outcomes = _run(demo_copy, stages, keypoints={"backend": "json"}, scale={"markers": markers})
        status = {(o.trial, o.stage): o.status for o in outcomes.outcomes}
        assert status[("static", "scale")] == "done" and status[("static", "ik")] == "done"
        assert status[("squats", "ik")] == "done"
        if markers == "video":
            assert status[("squats", "filter")] == status[("squats", "augment")] == "up to date"
        scale = json.loads((demo_copy / "output" / "static" / "scale" / "scaled_scale.json").read_text())
        assert scale["static_marker_rms_mm"] < 15
        ik_dir = demo_copy / "output" / "squats" / "ik"
        summary = json.loads((ik_dir / "squats_ik_summary.json").read_text())
        assert summary["marker_rms_mean_mm"] < 25
        manifest = json.loads((ik_dir / "_stage.json").read_text())
        assert manifest["summary"]["markers"] == markers
        mot = read_mot(ik_dir / "squats.mot")
        knee = np.degrees(mot.column("knee_angle_r"))
        assert knee.max() > 70 and knee.min() < 15  # the demo subject squats deep from standing
        assert np.degrees(np.abs(mot.column("lumbar_extension"))).max() < 30
        assert opensim.TimeSeriesTable(str(ik_dir / "squats.mot")).getNumRows() == len(mot.time_s)
        assert (ik_dir / "angles.png").stat().st_size > 20_000
    markers = read_trc(demo_copy / "output" / "squats" / "augment" / "markers.trc")
    assert len(markers.names) == 63 and "r.ASIS_study" in markers.names
    # Unchanged inputs: a re-run skips both stages.
    again = _run(demo_copy, stages, keypoints={"backend": "json"}, scale={"markers": "video"})
    assert {o.status for o in again.outcomes if o.stage in ("scale", "ik")} == {"up to date", "n/a"}


def test_json_backend_keeps_the_subject_not_the_bigger_bystander(demo_copy):
    _write_true_json(demo_copy, "squats", bystander=True)
    _run(demo_copy, ["frames", "keypoints", "sync", "triangulate", "filter"], trials=["squats"], keypoints={"backend": "json"})
    out = demo_copy / "output" / "squats"
    for cam in ("cam1", "cam2"):
        t, kp = read_keypoints_csv(out / "keypoints" / f"{cam}.csv")
        truth = _truth_2d(demo_copy, "squats", cam, len(t))
        assert np.nanmax(np.linalg.norm(kp[..., :2] - truth, axis=-1)) < 6.0  # the subject in every frame
    sync = json.loads((out / "sync" / "sync.json").read_text())
    assert sync["cameras"]["cam2"]["offset_s"] == pytest.approx(0.3, abs=0.002)

    # 3D: the video .trc against the true keypoints, both on cam1's clock (truth time 0 = cam1 frame 0).
    est = read_trc(out / "filter" / "keypoints.trc")
    with np.load(out / "triangulate" / "points.npz") as z:
        t0 = float(z["time_s"][0])
    t = est.time_s + t0
    assert 0.3 <= t0 <= 0.3 + 1 / 30 + 1e-3  # cam2 started late: the common part starts at its first frame
    table = read_trc(demo_copy / "mocap" / "squats.trc")
    idx = [table.names.index(k) for k in VIDEO_KEYPOINTS]
    truth3d = np.stack([np.interp(t, table.time_s, table.positions_m[:, i, a]) for i in idx for a in range(3)], -1)
    err = np.linalg.norm(est.positions_m - truth3d.reshape(len(t), 20, 3), axis=-1)
    assert np.sqrt(np.mean(err ** 2)) < 0.010  # metres, 1 px noise, two phones
    quality = json.loads((out / "filter" / "quality.json").read_text())
    assert all(q["triangulated_share"] == 1.0 and q["reprojection_px_median"] < 3 for q in quality["keypoints"].values())
    assert (out / "filter" / "keypoints.png").is_file()


P2S = SHARED_DATA / "pose2sim-demo"
P2S_CAMS = ["cam01", "cam02", "cam03", "cam04"]


@pytest.fixture(scope="module")
def pose2sim_run(tmp_path_factory):
    if not P2S.is_dir():
        pytest.skip(f"third-party test data not present at {P2S}")
    root = tmp_path_factory.mktemp("p2s")
    (root / "videos" / "trial").mkdir(parents=True)
    for c in P2S_CAMS:
        shutil.copy(P2S / "videos" / f"{c}.mp4", root / "videos" / "trial" / f"{c}.mp4")
    (root / "session.yaml").write_text(yaml.safe_dump({
        "subject": {"id": "p2s", "height_m": 1.72, "mass_kg": 70.0, "sex": "m"},
        "cameras": [{"id": c} for c in P2S_CAMS], "trials": [{"name": "trial", "kind": "dynamic"}]}))
    _run(root, ["frames", "keypoints", "sync"])
    return root


@pytest.mark.slow
@needs_shared
def test_pose2sim_subject_tracked_in_every_frame(pose2sim_run):
    """Every frame of every camera holds the subject, never the bystander (in cam01 and cam02): the
    four views triangulate into one person with the lab's calibration in every single frame."""
    from calibration.importers import read_qualisys
    from pipeline.triangulate_points import triangulate

    out = pose2sim_run / "output" / "trial"
    report = json.loads((out / "keypoints" / "keypoints.json").read_text())
    sync = json.loads((out / "sync" / "sync.json").read_text())
    data = [read_keypoints_csv(out / "keypoints" / f"{c}.csv") for c in P2S_CAMS]
    for c in P2S_CAMS:
        assert report["cameras"][c]["subject_coverage"] == 1.0
        assert report["cameras"][c]["mean_detection_rate"] > 0.9
    cams = {c.name: c for c in read_qualisys(P2S / "calibration" / "Calib.qca.txt")}
    ref_t = data[0][0]
    uv, conf = [], []
    for c, (t, kp) in zip(P2S_CAMS, data):
        tc = t + sync["cameras"][c]["offset_s"]
        idx = np.clip(np.searchsorted(tc, ref_t - 1e-6), 0, len(t) - 1)
        uv.append(kp[idx, :, :2])
        conf.append(kp[idx, :, 2])
    tri = triangulate([cams[c] for c in P2S_CAMS], np.stack(uv), np.nan_to_num(np.stack(conf)),
                      replace(SETTINGS.triangulate, min_confidence=0.5))
    per_frame = np.nanmedian(tri.error_px, axis=1)
    assert np.all(per_frame < 25.0), per_frame.max()


@pytest.mark.slow
@needs_shared
def test_pose2sim_sync_recovers_cut_and_fractional_offsets(pose2sim_run):
    """Cut k frames from the start of one camera (k = 1..30) or delay it by a fraction of a frame:
    the change in its offset is recovered within half a frame (60 fps)."""
    from pipeline.sync_offsets import speed_signal, synchronise

    out = pose2sim_run / "output" / "trial"
    data = [read_keypoints_csv(out / "keypoints" / f"{c}.csv") for c in P2S_CAMS]
    signals = [speed_signal(t, kp, SETTINGS.sync, SETTINGS.sync.rate_hz) for t, kp in data]
    base = synchronise(signals, SETTINGS.sync).offsets_s
    worst = {}
    for c in (1, 2):  # cam02, cam03
        t, kp = data[c]
        errs = []
        for k in range(1, 31):
            sigs = list(signals)
            sigs[c] = speed_signal(t[k:] - t[k], kp[k:], SETTINGS.sync, SETTINGS.sync.rate_hz)
            errs.append(abs((synchronise(sigs, SETTINGS.sync).offsets_s[c] - base[c]) * 60 - k))
        for frac in (0.25, 0.5, 0.75):
            # The phone started frac of a frame later: resample its keypoints at those instants.
            shifted = kp.copy()
            ts = t + frac / 60
            for j in range(20):
                for a in range(2):
                    shifted[:, j, a] = np.interp(ts, t, kp[:, j, a], left=np.nan, right=np.nan)
            sigs = list(signals)
            sigs[c] = speed_signal(t, shifted, SETTINGS.sync, SETTINGS.sync.rate_hz)
            errs.append(abs((synchronise(sigs, SETTINGS.sync).offsets_s[c] - base[c]) * 60 - frac))
        worst[P2S_CAMS[c]] = max(errs)
    assert max(worst.values()) < 0.5, worst


@pytest.mark.slow
@needs_shared
def test_pose2sim_reconstruction_keeps_bones_rigid(pose2sim_run, tmp_path):
    """The real 4-camera videos through triangulate and filter with the lab's calibration: every
    point triangulated, and thigh and shank lengths vary by under 5 % (CV) over the trial."""
    from calibration.camera import save_cameras
    from calibration.importers import read_qualisys
    from core.keypoints import INDEX

    root = tmp_path / "p2s"
    shutil.copytree(pose2sim_run, root)
    (root / "calibration").mkdir(exist_ok=True)
    save_cameras(root / "calibration" / "cameras.yaml", read_qualisys(P2S / "calibration" / "Calib.qca.txt"))
    _run(root, ["frames", "keypoints", "sync", "triangulate", "filter"])
    out = root / "output" / "trial"
    pts = read_trc(out / "filter" / "keypoints.trc").positions_m
    assert np.isfinite(pts).all()
    for a, b in [("RHip", "RKnee"), ("LHip", "LKnee"), ("RKnee", "RAnkle"), ("LKnee", "LAnkle")]:
        length = np.linalg.norm(pts[:, INDEX[a]] - pts[:, INDEX[b]], axis=-1)
        assert length.std() / length.mean() < 0.05, (a, b, length.std() / length.mean())


@pytest.mark.slow
def test_blazepose_torch_keypoints_on_demo_near_the_truth(demo_copy):
    """The torch backend through the stage on the demo squats: every frame's subject found, its
    keypoints near the true projections (the rendered figure's joints), cached like MediaPipe's."""
    _run(demo_copy, ["frames", "keypoints"], trials=["squats"], keypoints={"backend": "blazepose-torch"})
    out = demo_copy / "output" / "squats" / "keypoints"
    report = json.loads((out / "keypoints.json").read_text())
    assert report["backend"] == "blazepose-torch"
    for cam in ("cam1", "cam2"):
        t, kp = read_keypoints_csv(out / f"{cam}.csv")
        assert report["cameras"][cam]["subject_coverage"] == 1.0
        assert report["cameras"][cam]["mean_detection_rate"] > 0.9
        truth = _truth_2d(demo_copy, "squats", cam, len(t))
        legs = [VIDEO_KEYPOINTS.index(k) for k in ("RHip", "LHip", "RKnee", "LKnee", "RAnkle", "LAnkle")]
        err = np.linalg.norm(kp[:, legs, :2] - truth[:, legs], axis=-1)
        # the renderer's joints are not where BlazePose puts a person's, so a few tens of pixels of bias
        assert np.nanmedian(err) < 40.0, np.nanmedian(err)
    log = demo_copy / "output" / "log.txt"
    _run(demo_copy, ["frames", "keypoints"], trials=["squats"], keypoints={"backend": "blazepose-torch", "max_track_gap_s": 0.5})
    assert log.read_text().count("detections reused") == 2


@pytest.mark.slow
def test_people_listing_and_seen_at_hint_choose_who_is_the_subject(demo_copy):
    """`app.py people` lists both people with a picture and the line that picks each; written into
    session.yaml, the bystander's line makes the bystander the subject in that camera and, through
    agreement, in the other."""
    from tests.test_cli import app

    _write_true_json(demo_copy, "squats", bystander=True)
    doc = yaml.safe_load((demo_copy / "session.yaml").read_text())
    doc.setdefault("config", {}).setdefault("keypoints", {})["backend"] = "json"
    (demo_copy / "session.yaml").write_text(yaml.safe_dump(doc))
    res = app("people", str(demo_copy), "--trial", "squats", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert not (demo_copy / "output" / "summary.json").exists()  # a look, not a run: no verdicts, no report
    out = demo_copy / "output" / "squats" / "keypoints"
    assert "cam1: 2 people, picture" in res.stdout and (out / "people_cam1.png").stat().st_size > 10_000
    seen = json.loads((out / "keypoints.json").read_text())["cameras"]["cam1"]["people_seen"]["people"]
    subject, other = sorted(seen, key=lambda p: not p["subject"])
    assert subject["subject"] and not other["subject"]
    assert f"x: {other['x']:.2f}, y: {other['y']:.2f}" in res.stdout
    doc["subject"]["seen_at"] = {"camera": "cam1", "x": other["x"], "y": other["y"], "time_s": other["time_s"]}
    (demo_copy / "session.yaml").write_text(yaml.safe_dump(doc))
    _run(demo_copy, ["frames", "keypoints"], trials=["squats"])
    report = json.loads((out / "keypoints.json").read_text())
    assert report["subject_chosen_by"].startswith("subject.seen_at in cam1")
    t, kp = read_keypoints_csv(out / "cam1.csv")
    truth = _truth_2d(demo_copy, "squats", "cam1", len(t))
    assert np.nanmedian(np.linalg.norm(kp[..., :2] - truth, axis=-1)) > 50  # now the bystander
    doc["subject"]["seen_at"] = {"camera": "cam1", "x": 0.02, "y": 0.02}  # a corner where nobody stands
    (demo_copy / "session.yaml").write_text(yaml.safe_dump(doc))
    outcome = _run(demo_copy, ["frames", "keypoints"], trials=["squats"])
    log = (demo_copy / "output" / "log.txt").read_text()
    assert "where nobody was found in trial 'squats'" in log and "app.py people" in log
