"""Calibration: synthetic boards with known truth, real checkerboard images, importers, the session flow."""
from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from calibration.camera import Camera, load_cameras, look_at, save_cameras
from calibration.checkerboard import Board, find_corners
from calibration.extrinsics import BoardView, solve_extrinsics
from calibration.importers import (CalibrationImportError, import_cameras, read_opencap_pickle, read_pose2sim_toml,
                                   read_qualisys, write_pose2sim_toml)
from calibration.intrinsics import (CalibrationError, calibrate_intrinsics, intrinsics_from_folder, intrinsics_from_preset,
                                    load_presets, save_preset, View)
from calibration.session_calibration import calibrate_session
from calibration.synthetic import board_to_camera, render_board
from sessions.session import load_session
from tests.conftest import ROOT, SETTINGS, SHARED_DATA, needs_shared

K_PHONE = [[1400.0, 0, 540], [0, 1400.0, 960], [0, 0, 1]]
BOARD = Board(8, 11, 0.06)  # OpenCap's default board: 8x11 inner corners, 60 mm squares
# A vertical board facing +Z: board x = world X, board y = world -Y (rows run downwards).
R_VERTICAL = np.diag([1.0, -1.0, -1.0])
# The same board turned by half a turn in its plane: the black-square corner is now bottom right.
R_VERTICAL_TURNED = np.diag([-1.0, 1.0, -1.0])
# A board on the floor: board x = X, board y = Z, normal down (the board is seen from above).
R_GROUND = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


def rig(placement: str, n: int = 4, distance: float = 3.0) -> list[Camera]:
    """Phones in an arc in front of the board, at different heights, looking at it."""
    cams = []
    for i, az in enumerate(np.linspace(-55, 55, n)):
        a = np.radians(az)
        centre = [distance * np.sin(a), [0.8, 1.1, 1.5, 0.9][i % 4] + (0.6 if placement == "ground" else 0), distance * np.cos(a)]
        R, t = look_at(centre, [0, 1.0 if placement == "vertical" else 0.0, 0])
        cams.append(Camera(f"phone{i + 1}", (1080, 1920), K_PHONE, np.zeros(5), R, t))
    return cams


def observe(cams, board, R_w2b, origin, seed=0):
    views = []
    for c in cams:
        Rb, tb = board_to_camera(c, R_w2b, origin)
        uv = find_corners(render_board(c, board, Rb, tb, seed=seed), board)
        assert uv is not None, f"board not found in {c.name}"
        views.append(BoardView(Camera(c.name, c.image_size, c.K), uv, "synthetic"))
    return views


def pose_errors(truth: list[Camera], est: list[Camera], origin: np.ndarray) -> tuple[float, float]:
    """Worst camera-centre error (mm) and rotation error (deg), truth re-expressed with the board origin."""
    pos, ang = [], []
    for c, e in zip(truth, est):
        pos.append(1000 * np.linalg.norm(e.centre_m - (c.centre_m - origin)))
        dR = e.R @ c.R.T
        ang.append(np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1))))
    return max(pos), max(ang)


@pytest.mark.parametrize("placement,R_w2b,origin,first_corner", [
    ("vertical", R_VERTICAL, np.array([-0.3, 1.3, 0.0]), np.array([-0.3, 1.3, 0.0])),
    ("vertical", R_VERTICAL_TURNED, np.array([0.3, 0.88, 0.0]), np.array([0.3, 0.88, 0.0])),
    ("ground", R_GROUND, np.array([-0.3, 0.0, -0.2]), np.array([-0.3, 0.0, -0.2])),
], ids=["vertical", "vertical-turned-180", "ground"])
def test_extrinsics_recover_known_poses(placement, R_w2b, origin, first_corner):
    cams = rig(placement)
    res = solve_extrinsics(observe(cams, BOARD, R_w2b, origin), BOARD, placement)
    pos_mm, ang_deg = pose_errors(cams, res.cameras, first_corner)
    assert pos_mm < 2.0 and ang_deg < 0.2, (pos_mm, ang_deg)
    assert max(res.error_px.values()) < 0.2 and res.warnings == []
    for c in res.cameras:  # Y up: every phone is above the floor / around the board's height
        assert c.centre_m[1] > (0.5 if placement == "ground" else -1.0)


def test_symmetric_vertical_board_is_settled_by_up_direction():
    board = Board(8, 10, 0.06)  # rows + cols even: looks the same after a half turn
    cams = rig("vertical")
    origin = np.array([-0.27, 1.3, 0.0])
    res = solve_extrinsics(observe(cams, board, R_VERTICAL, origin), board, "vertical")
    # Y up: the origin is the corner from which the board's y axis runs upwards, the bottom-right one
    bottom_right = origin + R_VERTICAL.T @ board.object_points()[-1]
    pos_mm, ang_deg = pose_errors(cams, res.cameras, bottom_right)  # same axes, origin moved
    # The point here is which corner and which axes (a wrong choice is off by ~0.5 m or 180 deg);
    # the accuracy itself is tested above with the same rig.
    assert pos_mm < 3.0 and ang_deg < 0.2
    assert len(res.flipped) == len(cams)
    for c in res.cameras:
        assert np.dot(c.R.T @ np.array([0, -1.0, 0]), [0, 1, 0]) > 0.8, "image up is world up"


def test_symmetric_board_on_the_floor_is_refused():
    board = Board(6, 8, 0.06)
    cams = rig("ground", n=2)
    views = observe(cams, board, R_GROUND, np.array([-0.2, 0, -0.2]))
    with pytest.raises(CalibrationError, match="looks the same turned by 180 degrees"):
        solve_extrinsics(views, board, "ground")


def test_wrong_corner_detection_is_an_error_not_a_silent_calibration():
    cams = rig("vertical", n=2)
    views = observe(cams, BOARD, R_VERTICAL, np.array([-0.3, 1.3, 0.0]))
    rng = np.random.default_rng(1)
    views[1].corners = views[1].corners[rng.permutation(len(views[1].corners))]
    with pytest.raises(CalibrationError, match=r"camera phone2: board reprojection error .* implausible"):
        solve_extrinsics(views, BOARD, "vertical")


@pytest.mark.slow
def test_intrinsics_from_synthetic_views_match_truth():
    truth = Camera("phone", (1080, 1920), K_PHONE)
    rng = np.random.default_rng(3)
    views = []
    for i in range(10):
        R_b2c = cv2.Rodrigues(rng.uniform(-0.5, 0.5, 3))[0] @ np.diag([1.0, 1.0, 1.0])
        t_b2c = np.array([rng.uniform(-0.45, 0.05), rng.uniform(-0.6, 0.2), rng.uniform(1.1, 1.8)])
        img = render_board(truth, BOARD, R_b2c, t_b2c, seed=i)
        uv = find_corners(img, BOARD)
        if uv is not None:
            views.append(View(f"v{i}", uv))
    res = calibrate_intrinsics(views, BOARD, truth.image_size, "phone", SETTINGS.calibration)
    assert len(views) >= 6 and res.rms_px < 0.2
    assert res.camera.K[0, 0] == pytest.approx(1400, rel=0.01) and res.camera.K[1, 1] == pytest.approx(1400, rel=0.01)
    assert np.abs(res.camera.K[:2, 2] - [540, 960]).max() < 15


def test_too_few_views_says_what_to_record():
    with pytest.raises(CalibrationError, match="only 2 usable checkerboard view.*not found in: a.png"):
        calibrate_intrinsics([View("x", np.zeros((88, 2)))] * 2, BOARD, (100, 100), "c", SETTINGS.calibration,
                             not_found=["a.png"])


def test_mixed_image_sizes_are_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((100, 200, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((120, 200, 3), np.uint8))
    with pytest.raises(CalibrationError, match="different sizes"):
        intrinsics_from_folder(tmp_path, BOARD, "c", SETTINGS.calibration)


def test_presets_and_rotated_presets(tmp_path):
    cam = Camera("x", (1920, 1080), [[1500, 0, 950], [0, 1500, 530], [0, 0, 1]], [0.1, -0.2, 0.001, 0.002, 0])
    table = tmp_path / "presets.yaml"
    save_preset(table, "PhoneX", cam)
    presets = load_presets([table])
    same = intrinsics_from_preset("PhoneX", (1920, 1080), "c1", presets)
    np.testing.assert_allclose(same.K, cam.K)
    portrait = intrinsics_from_preset("PhoneX", (1080, 1920), "c2", presets)
    # a point seen by the landscape camera, turned 90 degrees clockwise, lands where the portrait model puts it
    p = np.array([[0.2, -0.1, 2.0]])
    uv_land = cam.project(p)[0]
    p_rot = np.array([[-p[0, 1], p[0, 0], p[0, 2]]])  # camera turned: x' = -y, y' = x
    uv_port = portrait.project(p_rot)[0]
    np.testing.assert_allclose(uv_port, [1080 - 1 - uv_land[1], uv_land[0]], atol=1e-6)
    with pytest.raises(CalibrationError, match="no intrinsics preset for device 'PhoneY'"):
        intrinsics_from_preset("PhoneY", (1080, 1920), "c", presets)


def test_camera_file_and_pose2sim_toml_round_trip(tmp_path):
    cams = rig("vertical", n=3)
    cams[0].dist = np.array([-0.05, 0.12, 0.001, -0.0005, 0.0])
    loaded = load_cameras(save_cameras(tmp_path / "cams.yaml", cams))
    back = read_pose2sim_toml(write_pose2sim_toml(tmp_path / "Calib.toml", loaded))
    pts = np.random.default_rng(0).uniform([-1, 0, -1], [1, 2, 1], (50, 3))
    for a, b in zip(cams, back):
        np.testing.assert_allclose(a.project(pts), b.project(pts), atol=1e-4)


def test_undistort_inverts_distortion():
    cam = Camera("c", (1080, 1920), K_PHONE, [-0.05, 0.14, 0.0006, 0.0007, 0], *look_at([0, 1, 3], [0, 1, 0]))
    pts = np.random.default_rng(0).uniform([-0.8, 0.2, -0.5], [0.8, 1.8, 0.5], (100, 3))
    undist = cam.undistort(cam.project(pts))
    x = pts @ cam.R.T + cam.t
    np.testing.assert_allclose(undist, (x[:, :2] / x[:, 2:]) @ cam.K[:2, :2].T + cam.K[:2, 2], atol=1e-3)


def test_opencap_pickle_import(tmp_path):
    cam = rig("vertical", n=1)[0]
    d = {"intrinsicMat": cam.K, "distortion": np.array([[-0.04, 0.1, 0.0, 0.0, 0.0]]), "rotation": cam.R,
         "translation": (cam.t * 1000).reshape(3, 1), "imageSize": np.array([[1920], [1080]])}
    (tmp_path / "Cam0").mkdir()
    with open(tmp_path / "Cam0" / "cameraIntrinsicsExtrinsics.pickle", "wb") as fh:
        pickle.dump(d, fh)
    got = read_opencap_pickle(tmp_path / "Cam0" / "cameraIntrinsicsExtrinsics.pickle")
    assert got.name == "Cam0" and got.image_size == (1080, 1920)
    np.testing.assert_allclose(got.centre_m, cam.centre_m, atol=1e-9)


def test_bad_camera_files_name_the_file(tmp_path):
    (tmp_path / "x.toml").write_text("not = [toml")
    with pytest.raises(CalibrationImportError, match="x.toml: not a readable TOML"):
        import_cameras(tmp_path / "x.toml")
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(CalibrationImportError, match="unknown calibration format"):
        import_cameras(tmp_path / "x.csv")


def test_demo_session_calibration_matches_the_true_cameras(demo_copy):
    res = calibrate_session(load_session(demo_copy))
    truth = yaml.safe_load((demo_copy / "calibration" / "virtual_cameras.yaml").read_text())
    from demo.make_demo_session import BOARD_ORIGIN_M, BOARD_R_W2B

    # Our world: origin at the board's first corner, Y up, Z the board normal towards the cameras.
    world_from_demo = np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]])
    for cam in res.result.cameras:
        R_true, t_true = np.array(truth[cam.name]["R"]), np.array(truth[cam.name]["t"])
        centre_true = world_from_demo @ (-R_true.T @ t_true - BOARD_ORIGIN_M)
        assert np.linalg.norm(cam.centre_m - centre_true) < 0.01  # within 1 cm at 3 m with a 360x640 image
    assert (demo_copy / "calibration" / "check_cam1.png").is_file()
    report = json.loads((demo_copy / "calibration" / "calibration_report.json").read_text())
    assert report["cameras"]["cam1"]["intrinsics"] == "preset virtual@360x640"


def test_session_without_board_image_names_the_missing_file(demo_copy):
    (demo_copy / "calibration" / "extrinsics" / "cam2.png").unlink()
    with pytest.raises(CalibrationError, match=r"extrinsics/cam2.png: no image or video of the board for camera cam2"):
        calibrate_session(load_session(demo_copy))


@needs_shared
@pytest.mark.parametrize("cam", ["cam01", "cam02", "cam03", "cam04"])
def test_real_intrinsics_agree_with_the_lab_reference(cam):
    root = SHARED_DATA / "pose2sim-demo" / "calibration"
    ref = {c.name: c for c in read_qualisys(root / "Calib.qca.txt")}[cam]
    res = intrinsics_from_folder(root / "intrinsics" / cam, Board(4, 7, 0.06), cam, SETTINGS.calibration)
    assert res.camera.image_size == ref.image_size
    assert res.camera.K[0, 0] == pytest.approx(ref.K[0, 0], rel=0.03)
    assert res.camera.K[1, 1] == pytest.approx(ref.K[1, 1], rel=0.03)
    assert np.abs(res.camera.K[:2, 2] - ref.K[:2, 2]).max() < 50
    assert res.rms_px < 0.5


@needs_shared
def test_qualisys_import_is_y_up_and_round_trips_through_pose2sim(tmp_path):
    cams = read_qualisys(SHARED_DATA / "pose2sim-demo" / "calibration" / "Calib.qca.txt")
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    heights = [c.centre_m[1] for c in cams]
    assert all(1.5 < h < 2.5 for h in heights), heights  # lab cameras on tripods/walls, Y up
    for c in cams:  # every camera looks at the capture volume around the origin
        assert (c.R @ np.zeros(3) + c.t)[2] > 1.0
    back = read_pose2sim_toml(write_pose2sim_toml(tmp_path / "Calib.toml", cams))
    for a, b in zip(cams, back):
        np.testing.assert_allclose(a.P, b.P, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_cli_calibrate_import_and_extrinsics(tmp_path, demo_copy):
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "calibrate", "extrinsics", str(demo_copy)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "camera cam1: board error" in out.stdout
    toml = tmp_path / "Calib.toml"
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "calibrate", "import", str(demo_copy / "calibration" / "cameras.yaml"),
                          "--out", str(toml)], capture_output=True, text=True)
    assert out.returncode == 0 and toml.is_file()
    shutil.rmtree(demo_copy / "calibration" / "extrinsics")
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "calibrate", "extrinsics", str(demo_copy)], capture_output=True, text=True)
    assert out.returncode == 2 and "no image or video of the board for camera cam1" in out.stderr


@pytest.mark.slow
def test_calibration_from_videos(tmp_path, demo_copy):
    """Intrinsics from a checkerboard video, and extrinsics from a short video instead of an image."""
    truth = Camera("phone", (720, 1280), [[900.0, 0, 360], [0, 900.0, 640], [0, 0, 1]])
    rng = np.random.default_rng(4)
    (tmp_path / "intr").mkdir()
    writer = cv2.VideoWriter(str(tmp_path / "intr" / "board.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, truth.image_size)
    for i in range(40):
        R_b2c = cv2.Rodrigues(rng.uniform(-0.5, 0.5, 3))[0]
        t_b2c = np.array([rng.uniform(-0.45, 0.05), rng.uniform(-0.5, 0.1), rng.uniform(1.2, 1.8)])
        writer.write(render_board(truth, BOARD, R_b2c, t_b2c, seed=i))
    writer.release()
    res = intrinsics_from_folder(tmp_path / "intr", BOARD, "phone", SETTINGS.calibration)
    assert res.camera.image_size == truth.image_size and len(res.per_view_rms_px) >= 6
    assert res.camera.K[0, 0] == pytest.approx(900, rel=0.03)

    still = cv2.imread(str(demo_copy / "calibration" / "extrinsics" / "cam1.png"))
    writer = cv2.VideoWriter(str(demo_copy / "calibration" / "extrinsics" / "cam1.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30,
                             (still.shape[1], still.shape[0]))
    for _ in range(10):
        writer.write(still)
    writer.release()
    (demo_copy / "calibration" / "extrinsics" / "cam1.png").unlink()
    cal = calibrate_session(load_session(demo_copy))
    assert cal.result.error_px["cam1"] < 0.5


@pytest.mark.slow
def test_cli_unreadable_calibration_video_is_bad_input(tmp_path):
    (tmp_path / "board.mp4").write_bytes(b"junk")
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "calibrate", "intrinsics", "--images", str(tmp_path),
                          "--board", "4x7", "--square-mm", "60", "--out", str(tmp_path / "o.yaml")], capture_output=True, text=True)
    assert out.returncode == 2 and "board.mp4: cannot be opened as a video" in out.stderr
