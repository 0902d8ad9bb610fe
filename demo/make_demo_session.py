"""Make the embedded demo session: a synthetic person doing squats, filmed by two virtual phones.

Everything here is our own: a stick-and-capsule figure driven by a parametric squat, with segment
proportions from Drillis & Contini (1966), as tabulated in Winter, "Biomechanics and Motor Control
of Human Movement" (4th ed., 2009), Fig. 4.1. The phones are unsynchronised (camera 2 starts
0.3 s late), so the session exercises what real recordings need. The true 3D keypoints are written
as ``mocap/<trial>.trc`` and the true cameras as ``calibration/virtual_cameras.yaml``, so later
stages can be checked against known truth.

Run: python demo/make_demo_session.py [OUT_DIR]   (default: demo/session)
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

from biomech.trc import MarkerTable, write_trc
from calibration.camera import Camera, look_at
from calibration.checkerboard import Board
from calibration.synthetic import board_to_camera, render_board
from core.keypoints import VIDEO_KEYPOINTS

KEYPOINTS = VIDEO_KEYPOINTS
HEIGHT_M, MASS_KG = 1.70, 65.0
IMAGE_W, IMAGE_H, FOCAL_PX = 360, 640, 560.0
VIDEO_FPS, MOCAP_HZ = 30.0, 100.0
CAMERAS = {"cam1": {"azimuth_deg": 40.0, "start_s": 0.0}, "cam2": {"azimuth_deg": -45.0, "start_s": 0.3}}
# The extrinsics board: 5x8 inner corners, 100 mm squares, standing vertical at the subject's place,
# facing the cameras (+X). Board axes in world: x along -Z, y down, first corner top at +Z.
BOARD = Board(5, 8, 0.100)
BOARD_R_W2B = np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])
BOARD_ORIGIN_M = np.array([0.0, 1.3, 0.35])
TRIALS = {"static": {"kind": "static", "seconds": 2.5, "squats": 0}, "squats": {"kind": "dynamic", "seconds": 7.0, "squats": 3}}


def squat_depth(t: np.ndarray, n_squats: int, seconds: float) -> np.ndarray:
    """(frames,) 0 standing .. 1 deepest; smooth squats between 1 s of quiet standing at each end."""
    if n_squats == 0:
        return np.zeros_like(t)
    phase = np.clip((t - 1.0) / (seconds - 2.0), 0, 1) * n_squats
    return 0.5 - 0.5 * np.cos(2 * np.pi * phase)


def skeleton(depth: np.ndarray, sway_m: np.ndarray) -> np.ndarray:
    """(frames, 20, 3) keypoints in metres, OpenSim frame (X forward, Y up, Z right)."""
    H = HEIGHT_M
    shank, thigh, trunk = 0.246 * H, 0.245 * H, 0.288 * H  # knee-ankle, hip-knee, hip-shoulder
    upper_arm, forearm = 0.186 * H, 0.146 * H
    ankle_h, hip_half, shoulder_half = 0.039 * H, 0.05 * H, 0.10 * H
    ankle_dorsi = np.radians(32) * depth
    knee_flex = np.radians(105) * depth
    trunk_lean = np.radians(38) * depth
    arm_raise = np.radians(85) * depth
    n = len(depth)
    out = np.zeros((n, len(KEYPOINTS), 3))
    k = {name: i for i, name in enumerate(KEYPOINTS)}
    for side, z in (("R", 1.0), ("L", -1.0)):
        ankle = np.stack([sway_m, np.full(n, ankle_h), np.full(n, z * (hip_half + 0.02))], 1)
        shank_dir = np.stack([np.sin(ankle_dorsi), np.cos(ankle_dorsi), np.zeros(n)], 1)
        knee = ankle + shank * shank_dir + np.array([0, 0, z * 0.015])
        th = ankle_dorsi - knee_flex
        hip = knee + thigh * np.stack([np.sin(th), np.cos(th), np.zeros(n)], 1)
        hip[:, 2] = z * hip_half
        out[:, k[side + "Ankle"]] = ankle
        out[:, k[side + "Knee"]] = knee
        out[:, k[side + "Hip"]] = hip
        out[:, k[side + "Heel"]] = ankle + np.array([-0.045, -ankle_h + 0.01, 0])
        out[:, k[side + "BigToe"]] = ankle + np.array([0.16, -ankle_h + 0.01, z * -0.01])
        out[:, k[side + "SmallToe"]] = ankle + np.array([0.13, -ankle_h + 0.01, z * 0.035])
    mid = 0.5 * (out[:, k["RHip"]] + out[:, k["LHip"]])
    out[:, k["midHip"]] = mid
    trunk_dir = np.stack([np.sin(trunk_lean), np.cos(trunk_lean), np.zeros(n)], 1)
    neck = mid + (trunk + 0.03 * H) * trunk_dir
    out[:, k["Neck"]] = neck
    for side, z in (("R", 1.0), ("L", -1.0)):
        shoulder = mid + trunk * trunk_dir + np.array([0, 0, z * shoulder_half])
        arm_dir = np.stack([np.sin(arm_raise), -np.cos(arm_raise), np.full(n, z * 0.08)], 1)
        arm_dir /= np.linalg.norm(arm_dir, axis=1, keepdims=True)
        elbow = shoulder + upper_arm * arm_dir
        out[:, k[side + "Shoulder"]] = shoulder
        out[:, k[side + "Elbow"]] = elbow
        out[:, k[side + "Wrist"]] = elbow + forearm * arm_dir
    return out


def camera_pose(azimuth_deg: float, distance_m: float = 3.0, height_m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera R, t for a camera on a circle around the subject, looking at the pelvis."""
    a = np.radians(azimuth_deg)
    return look_at([distance_m * np.cos(a), height_m, distance_m * np.sin(a)], [0.0, 0.9, 0.0])


def project(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """points (..., 3) world -> pixels (..., 2) and depth (...,)."""
    cam = points @ R.T + t
    uv = FOCAL_PX * cam[..., :2] / cam[..., 2:3] + np.array([IMAGE_W / 2, IMAGE_H / 2])
    return uv, cam[..., 2]


SEGMENTS = [  # (from, to, radius_m, BGR colour)
    ("RAnkle", "RKnee", 0.05, (90, 60, 40)), ("LAnkle", "LKnee", 0.05, (90, 60, 40)),
    ("RKnee", "RHip", 0.065, (110, 75, 50)), ("LKnee", "LHip", 0.065, (110, 75, 50)),
    ("RHeel", "RBigToe", 0.035, (40, 40, 40)), ("LHeel", "LBigToe", 0.035, (40, 40, 40)),
    ("RShoulder", "RElbow", 0.045, (60, 130, 200)), ("LShoulder", "LElbow", 0.045, (60, 130, 200)),
    ("RElbow", "RWrist", 0.035, (150, 180, 220)), ("LElbow", "LWrist", 0.035, (150, 180, 220)),
]


TORSO = (70, 110, 30)
TORSO_OUTLINE = {TORSO: (50, 80, 20)}


def render(frame_pts: np.ndarray, R: np.ndarray, t: np.ndarray, background: np.ndarray) -> np.ndarray:
    """One figure, (20, 3) keypoints in metres, drawn over ``background``."""
    return render_people([frame_pts], R, t, background)


def render_people(people_pts: list[np.ndarray], R: np.ndarray, t: np.ndarray, background: np.ndarray,
                  torso_colours: list[tuple[int, int, int]] | None = None) -> np.ndarray:
    """Several figures, each (20, 3) keypoints in metres, their parts drawn far to near so that one
    person hides another as they would."""
    img = background.copy()
    items = []
    for n, pts in enumerate(people_pts):
        items += _figure_items(pts, R, t, (torso_colours or [TORSO] * len(people_pts))[n])
    k = {name: i for i, name in enumerate(KEYPOINTS)}
    for _, kind, data, uv, depth in sorted(items, key=lambda x: -x[0]):  # far to near
        if kind == "seg":
            a, b, radius, colour = data
            width = max(2, int(2 * radius * FOCAL_PX / (0.5 * (depth[k[a]] + depth[k[b]]))))
            p, q = uv[k[a]].round().astype(int), uv[k[b]].round().astype(int)
            cv2.line(img, tuple(p), tuple(q), colour, width, cv2.LINE_AA)
        elif kind == "torso":
            names, colour = data
            poly = np.array([uv[k[n]] for n in names]).round().astype(np.int32)
            cv2.fillConvexPoly(img, poly, colour, cv2.LINE_AA)
            cv2.polylines(img, [poly], True, TORSO_OUTLINE.get(colour, tuple(int(0.7 * c) for c in colour)), 8, cv2.LINE_AA)
        else:
            c, d = project(data, R, t)
            cv2.circle(img, tuple(c.round().astype(int)), int(0.11 * FOCAL_PX / d), (120, 160, 210), -1, cv2.LINE_AA)
    return img


def _figure_items(frame_pts: np.ndarray, R: np.ndarray, t: np.ndarray, torso_colour) -> list[tuple]:
    """(depth, kind, data, uv, depth per keypoint) of one figure's parts."""
    k = {name: i for i, name in enumerate(KEYPOINTS)}
    uv, depth = project(frame_pts, R, t)
    items = []
    for a, b, radius, colour in SEGMENTS:
        d = 0.5 * (depth[k[a]] + depth[k[b]])
        items.append((d, "seg", (a, b, radius, colour), uv, depth))
    torso = ["RShoulder", "LShoulder", "LHip", "RHip"]
    items.append((float(np.mean([depth[k[n]] for n in torso])), "torso", (torso, torso_colour), uv, depth))
    head = frame_pts[k["Neck"]] + np.array([0.0, 0.13, 0.0])
    items.append((float(project(head, R, t)[1]), "head", head, uv, depth))
    return items


def background(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    img = np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8)
    img[:] = np.linspace(235, 190, IMAGE_H)[:, None, None].astype(np.uint8)
    for x in np.arange(-3, 3.01, 0.5):
        for line in ([[x, 0, -3], [x, 0, 3]], [[-3, 0, x], [3, 0, x]]):
            pts = np.linspace(line[0], line[1], 40)
            uv, d = project(pts, R, t)
            uv = uv[d > 0.1].round().astype(np.int32)
            cv2.polylines(img, [uv], False, (150, 150, 150), 1, cv2.LINE_AA)
    return img


def make_session(out: Path) -> None:
    rng = np.random.default_rng(7)
    (out / "calibration").mkdir(parents=True, exist_ok=True)
    (out / "mocap").mkdir(exist_ok=True)
    cams = {c: camera_pose(v["azimuth_deg"]) for c, v in CAMERAS.items()}
    for name, spec in TRIALS.items():
        seconds = spec["seconds"]
        t_mocap = np.arange(0, seconds, 1 / MOCAP_HZ)
        sway = 0.004 * np.sin(2 * np.pi * 0.3 * t_mocap + rng.uniform(0, 6))
        truth = skeleton(squat_depth(t_mocap, spec["squats"], seconds), sway)
        write_trc(out / "mocap" / f"{name}.trc", MarkerTable(t_mocap, KEYPOINTS, truth, MOCAP_HZ))
        folder = out / "videos" / name
        folder.mkdir(parents=True, exist_ok=True)
        for cam, (R, t) in cams.items():
            t_video = np.arange(CAMERAS[cam]["start_s"], seconds - 0.05, 1 / VIDEO_FPS)
            depth = squat_depth(t_video, spec["squats"], seconds)
            pts = skeleton(depth, np.interp(t_video, t_mocap, sway))
            bg = background(R, t)
            writer = cv2.VideoWriter(str(folder / f"{cam}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (IMAGE_W, IMAGE_H))
            for frame in pts:
                writer.write(render(frame, R, t, bg))
            writer.release()
    K = [[FOCAL_PX, 0, IMAGE_W / 2], [0, FOCAL_PX, IMAGE_H / 2], [0, 0, 1]]
    (out / "calibration" / "extrinsics").mkdir(exist_ok=True)
    for cam, (R, t) in cams.items():
        c = Camera(cam, (IMAGE_W, IMAGE_H), K, np.zeros(5), R, t)
        Rb, tb = board_to_camera(c, BOARD_R_W2B, BOARD_ORIGIN_M)
        cv2.imwrite(str(out / "calibration" / "extrinsics" / f"{cam}.png"), render_board(c, BOARD, Rb, tb, seed=len(cam)))
    (out / "calibration" / "virtual_cameras.yaml").write_text(
        "# The true virtual cameras of this synthetic session: world to camera x_cam = R x_world + t,\n"
        "# metres, world frame X forward, Y up, Z right (OpenSim), pixels with origin at the top-left.\n"
        f"# The extrinsics board: x_board = R_w2b (x_world - origin), R_w2b = {BOARD_R_W2B.tolist()}, origin = {BOARD_ORIGIN_M.tolist()}\n"
        + yaml.safe_dump({c: {"image_size": [IMAGE_W, IMAGE_H], "K": K, "distortion": [0.0] * 5,
                              "R": np.round(R, 9).tolist(), "t": np.round(t, 9).tolist()}
                          for c, (R, t) in cams.items()}, sort_keys=False)
    )
    session = {
        "subject": {"id": "demo01", "height_m": HEIGHT_M, "mass_kg": MASS_KG, "sex": "f"},
        "cameras": [{"id": c, "device": "virtual"} for c in CAMERAS],
        "checkerboard": {"rows": BOARD.rows, "cols": BOARD.cols, "square_mm": BOARD.square_m * 1000, "placement": "vertical"},
        "trials": [{"name": n, "kind": s["kind"], "mocap": f"mocap/{n}.trc"} for n, s in TRIALS.items()],
    }
    (out / "session.yaml").write_text(
        "# Demo session: a synthetic subject filmed by two virtual phones (made by demo/make_demo_session.py).\n"
        "# mocap/<trial>.trc: the true 3D video keypoints; the compare stage solves them on our model (video\n"
        "# marker set, scaled on mocap/static.trc) and compares the squats' joint angles with ours.\n"
        + yaml.safe_dump(session, sort_keys=False)
    )


if __name__ == "__main__":
    make_session(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "session")
