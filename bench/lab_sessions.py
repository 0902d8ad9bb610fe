"""Simulated phone sessions from real motion capture: the shared Subject 4 trials seen by virtual phones.

The truth is the lab's own: its scaled model (``Models/optimized_scale_and_markers.osim``, a
LaiUhlrich2022-family model) driven by its IK (``IK/<trial>_ik.mot``). The 20 video keypoints are
OpenCap's definitions of what a 2D detector marks on that model (``opencap-core/opensim/
LaiUhlrich2022_markers_openpose.xml``: joint centres, heel and toe points), scaled by the lab model's
per-body scale factors. So the keypoints follow another model's joint definitions than ours, as a real
detector's do.

Detector errors (``ERROR_LEVELS``; ours, documented here, not measured on a detector):

- 3D, per keypoint and session: a constant bias in the subject's heading frame (forward, up, right),
  normal with ``bias_m`` per axis (``hip_bias_m`` for the hips: detectors place hips worst), and a
  slow wobble (smoothed noise, 0.5-3 Hz, ``wobble_m`` RMS per axis);
- 2D, per camera: ``demo.synthetic_session.ErrorModel`` (jitter, dropouts in runs, brief left/right
  swaps of a limb group, outliers); points outside a phone's image are not detected.

Phones: portrait 1080x1920, focal length about 1450 px, no distortion, within +-40 deg of the
subject's mean facing direction, 3-4 m from the middle of its path (walking: 4.5-5.5 m), lens 0.9-1.4 m
high, 60 frames/s, each starting up to 0.5 s late. The world frame is the lab's (Y up), so angles and
markers compare without any alignment; the phones' clocks do not start with the lab's.

    from bench.lab_sessions import make_lab_session
    made = make_lab_session(tmp / "s", "squats1", cameras=2, level="realistic", seed=0)
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml
from scipy.interpolate import CubicSpline
from scipy.signal import butter, filtfilt

from biomech.ik import coordinate_name
from biomech.mocap import reference_angles
from biomech.mot import CoordinateTable, read_mot
from biomech.opensim_env import load_model
from calibration.camera import Camera, look_at, save_cameras
from demo.synthetic_session import (IMAGE_SIZE, ErrorModel, _head_points, apply_errors, phone_azimuths, phone_camera,
                                    write_detections)
from demo.make_demo_session import KEYPOINTS  # the order write_detections() expects
from models.augmenter_data import body_poses, points_in_ground
from core.keypoints import VIDEO_KEYPOINTS, mirror_index

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
S4 = DATA / "opencap-labval-subject4"
OPENPOSE_XML = DATA / "opencap-core" / "opensim" / "LaiUhlrich2022_markers_openpose.xml"
LAB_MODEL = S4 / "Models" / "optimized_scale_and_markers.osim"
# The subject, as the shared data's README gives it (the lab model's mass is 62.6 kg too).
HEIGHT_M, MASS_KG = 1.68, 62.6
STATIC = "static1"
FPS = 60.0
ACTIVITY = {"squats": "squats", "STSweak": "sit-to-stand weak", "STS": "sit-to-stand", "DJAsym": "drop jump asym",
            "DJ": "drop jump", "walking": "walking", "static": "standing"}
# Never trained or tuned on: one trial of each activity, the benchmark's default (squats has no other trial,
# so it is held out by activity as well).
HELD_OUT = ("squats1", "STS1", "DJ3", "walking4")


def activity(trial: str) -> str:
    return next(v for k, v in ACTIVITY.items() if trial.startswith(k))


def lab_trials() -> list[str]:
    """Every shared trial with the lab's IK, static included."""
    return sorted(p.name[:-len("_ik.mot")] for p in (S4 / "IK").glob("*_ik.mot"))


def training_trials() -> list[str]:
    """The shared trials an augmenter may be trained on: all but ``HELD_OUT``."""
    return [t for t in lab_trials() if t not in HELD_OUT]


@dataclass(frozen=True)
class DetectorErrors:
    """3D errors of a detector's keypoint definitions (see module docstring) and its 2D errors."""

    bias_m: float
    hip_bias_m: float
    wobble_m: float
    image: ErrorModel


ERROR_LEVELS = {
    "clean": DetectorErrors(0.0, 0.0, 0.0, ErrorModel.perfect()),
    "moderate": DetectorErrors(0.008, 0.012, 0.004, ErrorModel(jitter_px=1.0, missing_share=0.01, swap_share=0.0,
                                                              outlier_share=0.005)),
    "realistic": DetectorErrors(0.015, 0.025, 0.008, ErrorModel()),
}


@lru_cache(maxsize=1)
def _openpose_markers() -> dict[str, tuple[str, np.ndarray]]:
    """OpenCap's keypoint -> (body, location in the generic model's body frame, m)."""
    out = {}
    for mk in ET.parse(OPENPOSE_XML).getroot().iter("Marker"):
        body = mk.findtext("socket_parent_frame").split("/")[-1]
        out[mk.get("name")] = (body, np.array([float(v) for v in mk.findtext("location").split()]))
    return out


def _body_scale(model, body: str) -> np.ndarray:
    """The ScaleTool's scale factors of ``body``, read from its scaled geometry (1 when it has none)."""
    b = model.getBodySet().get(body)
    if b.getPropertyByName("attached_geometry").size() == 0:
        return np.ones(3)
    v = b.get_attached_geometry(0).get_scale_factors()
    return np.array([v.get(0), v.get(1), v.get(2)])


@dataclass
class LabTruth:
    """A lab trial's truth at the mocap rate: time (frames,), keypoints (frames, 20, 3) in KEYPOINTS
    order, and the lab model's body rotations (frames, bodies, 3, 3) with their names."""

    time_s: np.ndarray
    keypoints_m: np.ndarray
    bodies: list[str]
    rotations: np.ndarray


@lru_cache(maxsize=1)
def _lab_model():
    return load_model(LAB_MODEL)


@lru_cache(maxsize=1)
def lab_marker_bodies() -> dict[str, str]:
    """The lab's marker name -> the lab model's body it sits on."""
    ms = _lab_model().getMarkerSet()
    return {ms.get(i).getName(): ms.get(i).getParentFrameName().split("/")[-1] for i in range(ms.getSize())}


@lru_cache(maxsize=32)
def lab_truth(trial: str) -> LabTruth:
    """The lab model driven by the lab's IK of ``trial``: keypoints and body rotations (cached)."""
    model = _lab_model()
    coords = read_mot(S4 / "IK" / f"{trial}_ik.mot")
    bodies, rot, org = body_poses(model, coords)
    defs = _openpose_markers()
    idx = np.array([bodies.index(defs[k][0]) for k in KEYPOINTS])
    local = np.array([defs[k][1] * _body_scale(model, defs[k][0]) for k in KEYPOINTS])
    return LabTruth(coords.time_s, points_in_ground(rot, org, idx, local), bodies, rot)


def _heading_frame(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre of the subject's path on the floor (3,) and its mean facing axes (3, 3): rows forward, up,
    right, from the hips of (frames, 20, 3) keypoints."""
    hips = kp[:, [KEYPOINTS.index("RHip"), KEYPOINTS.index("LHip")]]
    right = np.nanmean(hips[:, 0] - hips[:, 1], axis=0)
    right[1] = 0.0
    right /= np.linalg.norm(right)
    up = np.array([0.0, 1.0, 0.0])
    fwd = np.cross(up, right)
    mid = hips.mean(axis=1)
    centre = 0.5 * (np.nanmin(mid, axis=0) + np.nanmax(mid, axis=0))
    centre[1] = 0.0
    return centre, np.stack([fwd, up, right])


def place_lab_cameras(n: int, kp: np.ndarray, rng: np.random.Generator, walking: bool) -> list[Camera]:
    """n phones around the subject's mean facing direction (module docstring)."""
    centre, axes = _heading_frame(kp)
    path_m = float(np.ptp(kp[:, KEYPOINTS.index("RHip"), [0, 2]], axis=0).max())
    cams = []
    for i, az in enumerate(phone_azimuths(n, rng)):
        d = float(rng.uniform(4.5, 5.5) if walking else rng.uniform(3.0, 4.0)) + 0.5 * path_m
        a = np.radians(az)
        pos = centre + d * (np.cos(a) * axes[0] + np.sin(a) * axes[2]) + np.array([0.0, rng.uniform(0.9, 1.4), 0.0])
        R, t = look_at(pos, centre + np.array([0.0, 0.9, 0.0]))
        cams.append(phone_camera(i, R, t, az, rng, "bench/lab_sessions.py"))
    return cams


def _smooth_noise(rng: np.random.Generator, n: int, rate_hz: float, rms: float, shape: tuple) -> np.ndarray:
    """(n, *shape) noise low-passed at a random 0.5-3 Hz, scaled to ``rms``."""
    if rms <= 0 or n < 16:
        return np.zeros((n, *shape))
    w = rng.normal(size=(n, *shape))
    b, a = butter(2, float(rng.uniform(0.5, 3.0)) / (rate_hz / 2))
    w = filtfilt(b, a, w, axis=0)
    return rms * w / max(float(np.std(w)), 1e-12)


def detector_points(truth: LabTruth, errors: DetectorErrors, rng: np.random.Generator, axes: np.ndarray) -> np.ndarray:
    """(frames, 20, 3) what the detector's keypoint definitions put where the truth is (3D errors)."""
    n = len(truth.time_s)
    sd = np.full(len(KEYPOINTS), errors.bias_m)
    sd[[KEYPOINTS.index(k) for k in ("RHip", "LHip", "midHip")]] = errors.hip_bias_m
    bias = rng.normal(size=(len(KEYPOINTS), 3)) * sd[:, None]
    bias[KEYPOINTS.index("midHip")] = 0.5 * (bias[KEYPOINTS.index("RHip")] + bias[KEYPOINTS.index("LHip")])
    rate = 1.0 / float(np.median(np.diff(truth.time_s)))
    wobble = _smooth_noise(rng, n, rate, errors.wobble_m, (len(KEYPOINTS), 3))
    return truth.keypoints_m + (bias + wobble) @ axes  # heading-frame offsets to world


@dataclass
class LabSession:
    root: Path
    trial: str
    cameras: int
    level: str
    seed: int
    start_s: dict[str, float]  # camera -> lab time of its frame 0


def _write_trial(root: Path, name: str, kp_lab: np.ndarray, time_s: np.ndarray, cams: list[Camera],
                 start_s: dict[str, float], image: ErrorModel, rng: np.random.Generator) -> dict:
    spline = CubicSpline(time_s, kp_lab, axis=0)
    applied = {}
    for cam in cams:
        t = np.arange(start_s[cam.name], time_s[-1], 1.0 / FPS)
        kp = spline(t)
        pts = np.concatenate([kp, _head_points(kp)], axis=1)
        uv = cam.project(pts)
        det, counts = apply_errors(uv, image, rng)
        outside = ~((uv[..., 0] >= 0) & (uv[..., 0] < IMAGE_SIZE[0]) & (uv[..., 1] >= 0) & (uv[..., 1] < IMAGE_SIZE[1]))
        det[outside] = [np.nan, np.nan, 0.0]
        counts["outside_image"] = int(outside.sum())
        write_detections(root, name, cam.name, det)
        applied[cam.name] = counts
    return applied


def make_lab_session(root: str | Path, trial: str, *, cameras: int = 2, level: str = "realistic", seed: int = 0,
                     max_start_s: float = 0.5, config: dict | None = None) -> LabSession:
    """Write a pose2d session (static1 + ``trial``) of the lab subject into ``root``; deterministic per seed.
    ``config``: session config overrides (merged over keypoints.backend: json)."""
    if level not in ERROR_LEVELS:
        raise ValueError(f"level {level!r}: one of {', '.join(ERROR_LEVELS)}")
    root = Path(root)
    errors = ERROR_LEVELS[level]
    rng = np.random.default_rng(seed)
    dyn = lab_truth(trial)
    walking = trial.lower().startswith("walk")
    cams = place_lab_cameras(cameras, dyn.keypoints_m, rng, walking)
    start = {c.name: round(float(rng.uniform(0.0, max_start_s)), 6) for c in cams}
    applied = {}
    # One set of 3D detector biases per session (a detector errs the same way on every trial), drawn from
    # the seed alone, so sessions with 2, 3 or 4 phones of one seed share them and compare fairly.
    bias_rng_state = int(np.random.default_rng([seed, 3]).integers(0, 2**31))
    for name in (STATIC, trial):
        truth = lab_truth(name)
        pts = detector_points(truth, errors, np.random.default_rng(bias_rng_state), _heading_frame(truth.keypoints_m)[1])
        applied[name] = _write_trial(root, name, pts, truth.time_s, cams, start, errors.image, rng)
    save_cameras(root / "calibration" / "cameras.yaml", cams, "the true virtual cameras of bench/lab_sessions.py")
    cfg = {"keypoints": {"backend": "json"}}
    for section, values in (config or {}).items():
        cfg.setdefault(section, {}).update(values)
    session = {
        "subject": {"id": "subject4", "height_m": HEIGHT_M, "mass_kg": MASS_KG, "sex": "f"},
        "cameras": [{"id": c.name, "fps": FPS} for c in cams],
        "trials": [{"name": STATIC, "kind": "static"}, {"name": trial, "kind": "dynamic"}],
        "config": cfg,
    }
    (root / "session.yaml").write_text(f"# Simulated from the shared Subject 4 {trial} (bench/lab_sessions.py), "
                                       f"{cameras} phones, {level} errors, seed {seed}\n" + yaml.safe_dump(session, sort_keys=False))
    (root / "synthetic.json").write_text(json.dumps({
        "made_by": "bench/lab_sessions.py", "trial": trial, "seed": seed, "level": level, "errors": asdict(errors),
        "clock": "camera c's frame i is at lab time start_s[c] + i / fps", "start_s": start, "applied": applied}, indent=2))
    return LabSession(root, trial, cameras, level, seed, start)


def _static_pose(path: Path, names: list[str]) -> np.ndarray:
    """(coordinates,) the ScaleTool's static pose (its .mot names columns by state path) in ``names`` order."""
    pose = read_mot(path)
    by_name = {coordinate_name(n): j for j, n in enumerate(pose.names)}
    return np.array([pose.values[0, by_name[n]] for n in names])


def in_body_frame(rot: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(frames, 3) ground-frame vectors expressed in a body's frame; rot: (frames, 3, 3) body-to-ground."""
    return np.einsum("fji,fj->fi", rot, vectors)


def lab_training_data(trials: list[str], work: str | Path, marker_weights: dict[str, float]):
    """What ``augmenter train`` learns from the shared lab trials: our model solved on the lab's markers of
    each trial (scaled on the static trial, ``compare``'s path, IK weights ``marker_weights``) as replay
    sources (``models.augmenter_replay``), and OpenCap's detector-keypoint definitions measured on our
    model (``KeypointErrors.definition_shift_m``): where this subject's keypoints (``lab_truth``) sit in
    our solved model's body frames, median over every frame, divided by the body's scale factors, minus
    our generic model's keypoint, left and right made mirror images."""
    from biomech.model_builder import DEFAULT_MODEL
    from biomech.scaling import read_scale_factors
    from models.augmenter_data import KEYPOINTS as OURS, marker_anchors
    from models.augmenter_replay import ReplaySource

    generic = load_model(DEFAULT_MODEL)
    names = [generic.getBodySet().get(i).getName() for i in range(generic.getBodySet().getSize())]
    kp_body, kp_local = marker_anchors(generic, names, OURS)
    sources, local = [], {k: [] for k in OURS}
    for trial in trials:
        ref_dir = Path(work) / trial
        ref = reference_angles(S4 / "MarkerData" / f"{trial}.trc", S4 / "MarkerData" / f"{STATIC}.trc", HEIGHT_M,
                               MASS_KG, ref_dir, weights=marker_weights)
        table: CoordinateTable = ref.table
        sources.append(ReplaySource(trial, activity(trial), table,
                                    _static_pose(ref_dir / "mocap_scaled_static.mot", table.names), HEIGHT_M))
        solved = load_model(ref_dir / "mocap_scaled.osim")
        factors = read_scale_factors(ref_dir / "mocap_scaled_scale_factors.xml")
        _, rot, org = body_poses(solved, table)
        truth = lab_truth(trial)
        kp = np.stack([np.stack([np.interp(table.time_s, truth.time_s, truth.keypoints_m[:, KEYPOINTS.index(k), d],
                                           left=np.nan, right=np.nan) for d in range(3)], -1) for k in OURS], 1)
        for j, k in enumerate(OURS):
            p = in_body_frame(rot[:, kp_body[j]], kp[:, j] - org[:, kp_body[j]]) / np.array(factors.get(names[kp_body[j]], (1, 1, 1)))
            local[k].append(p[np.all(np.isfinite(p), axis=1)])
    raw = {k: np.median(np.concatenate(local[k]), axis=0) - kp_local[j] for j, k in enumerate(OURS)}
    # a detector marks left and right alike: one definition per pair, mirrored (z is sideways)
    mirror = np.array([1.0, 1.0, -1.0])
    partner = dict(zip(VIDEO_KEYPOINTS, (VIDEO_KEYPOINTS[i] for i in mirror_index())))
    shifts = {k: [round(float(x), 4) for x in 0.5 * (v + raw[partner[k]] * (mirror if partner[k] != k else 1.0))]
              for k, v in raw.items()}
    return sources, shifts


