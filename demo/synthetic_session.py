"""Synthetic sessions with known truth: 2D keypoint files (no videos) of the demo's subject, seen by
N virtual phones, with a realistic detector error model.

The motion is the demo's own (demo/make_demo_session.py: a static trial and a squats trial of a
1.70 m subject); the phones are portrait 1080x1920, focal length about 1450 px, 3-4 m from the
subject within +-45 degrees of its front, 60 frames/s, each starting up to 0.5 s late. The 20 video
keypoints (core/keypoints.py) plus five head points are projected into each phone, the errors of
``ErrorModel`` are applied, and each frame is written as an OpenPose BODY_25 JSON file.

BODY_25 <-> our keypoints (models/pose_openpose.py, SKELETONS["BODY_25"]): Neck 1 and MidHip 8 are
BODY_25 points of their own (our reader takes them as they are; it derives Neck and midHip from the
shoulders/hips only for HALPE_26 and COCO_133), so they are written as the true Neck and midHip.
Nose 0, REye 15, LEye 16, REar 17 and LEar 18, which we do not use, are written from a head placed
above the neck, so other tools (Pose2Sim) see a complete skeleton.

Written, under ``root``:
  session.yaml                   subject (the demo's), cameras with fps, trials static + squats,
                                 config keypoints.backend: json
  calibration/cameras.yaml       the true cameras (calibration/camera.py format)
  pose2d/<trial>/<cam>/<cam>_<frame:012d>_keypoints.json   one file per frame
  mocap/<trial>.trc              the true 3D keypoints (20 video keypoints, 100 Hz, true clock)
  synthetic.json                 what was made: seed, error model, each camera's start time on the
                                 true clock, frames, and how many errors of each kind were applied

Clocks: the truth's time 0 is the start of the trial; camera c's frame i is at true time
``start_s[c] + i / fps[c]`` and its own clock reads ``i / fps[c]``.

    from demo.synthetic_session import ErrorModel, make_pose2d_session
    synth = make_pose2d_session(tmp_path / "s", cameras=3, seed=1)            # realistic errors
    synth = make_pose2d_session(tmp_path / "s", errors=ErrorModel.perfect())  # exact projections
    synth.true_points("squats", times_s)  # (frames, 20, 3) truth at any true times

Run: python demo/synthetic_session.py OUT_DIR [--cameras N] [--seed S] [--perfect]
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from biomech.trc import MarkerTable, write_trc
from calibration.camera import Camera, save_cameras
from demo.make_demo_session import (HEIGHT_M, KEYPOINTS, MASS_KG, MOCAP_HZ, TRIALS, camera_pose, skeleton,
                                    squat_depth)
from core.gaps import nan_runs
from core.keypoints import ARM_PAIRS, LEG_PAIRS
from models.pose_openpose import SKELETONS

IMAGE_SIZE = (1080, 1920)  # portrait phone, width x height
FOCAL_PX = 1450.0
BODY25_HEAD = {"Nose": 0, "REye": 15, "LEye": 16, "REar": 17, "LEar": 18}
# Head points relative to the head centre (0.13 m above the neck, as the demo draws it), metres,
# OpenSim frame (X forward, Y up, Z right).
HEAD_OFFSETS = {"Nose": (0.09, 0.0, 0.0), "REye": (0.075, 0.03, 0.03), "LEye": (0.075, 0.03, -0.03),
                "REar": (0.0, 0.02, 0.075), "LEar": (0.0, 0.02, -0.075)}
SECONDS_PER_SQUAT = (TRIALS["squats"]["seconds"] - 2.0) / TRIALS["squats"]["squats"]  # the demo's pace


@dataclass(frozen=True)
class ErrorModel:
    """What a 2D detector does wrong, per camera (defaults: a good detector on a phone video).

    jitter_px: Gaussian noise (standard deviation, pixels) on every coordinate.
    missing_share: share of keypoint-frames not detected, in runs of ``missing_run`` frames
      (inclusive range); written with confidence 0.
    swap_share: share of frames in which one camera labels a leg or an arm pair (a whole limb
      group) left for right, in runs of ``swap_run`` frames.
    outlier_share: share of keypoint-frames displaced by ``outlier_px`` pixels (uniform) in a random
      direction (a detector latching onto the wrong thing), with an ordinary confidence.
    confidence: range of the confidences of detected points: each camera x keypoint draws a level in
      this range, each frame adds a little noise (0.03), clipped to the range.
    """

    jitter_px: float = 2.0
    missing_share: float = 0.02
    missing_run: tuple[int, int] = (2, 10)
    swap_share: float = 0.01
    swap_run: tuple[int, int] = (1, 5)
    outlier_share: float = 0.01
    outlier_px: tuple[float, float] = (50.0, 300.0)
    confidence: tuple[float, float] = (0.6, 0.95)

    @classmethod
    def perfect(cls) -> "ErrorModel":
        """Exact projections, nothing missing, swapped or wrong."""
        return cls(jitter_px=0.0, missing_share=0.0, swap_share=0.0, outlier_share=0.0)


@dataclass
class SyntheticSession:
    """What make_pose2d_session wrote and the truth behind it."""

    root: Path
    cameras: list[Camera]  # the true cameras, in session order
    fps: dict[str, float]  # camera -> frame rate
    start_s: dict[str, float]  # camera -> true time of its frame 0
    trials: dict[str, dict]  # name -> {"kind", "seconds", "squats", "sway_phase"}
    errors: ErrorModel
    seed: int
    applied: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # trial -> cam -> error counts

    def true_points(self, trial: str, times_s: np.ndarray) -> np.ndarray:
        """(len(times_s), 20, 3) true keypoints (KEYPOINTS order, metres) at true times ``times_s``."""
        return true_keypoints(self.trials[trial], np.asarray(times_s, float))

    def camera_times(self, trial: str, cam: str) -> np.ndarray:
        """True times of every frame camera ``cam`` recorded in ``trial``."""
        return _frame_times(self.trials[trial]["seconds"], self.start_s[cam], self.fps[cam])


def true_keypoints(spec: dict, t: np.ndarray) -> np.ndarray:
    """The demo subject's keypoints at true times t: (frames, 20, 3)."""
    sway = 0.004 * np.sin(2 * np.pi * 0.3 * t + spec["sway_phase"])
    return skeleton(squat_depth(t, spec["squats"], spec["seconds"]), sway)


def _frame_times(seconds: float, start_s: float, fps: float) -> np.ndarray:
    return np.arange(start_s, seconds - 0.05, 1.0 / fps)


def _head_points(kp: np.ndarray) -> np.ndarray:
    """(frames, 5, 3) nose, eyes, ears, above the neck, in BODY25_HEAD order."""
    head = kp[:, KEYPOINTS.index("Neck")] + np.array([0.0, 0.13, 0.0])
    return np.stack([head + np.array(HEAD_OFFSETS[n]) for n in BODY25_HEAD], axis=1)


def _body25_indices() -> np.ndarray:
    """BODY_25 index of each of our 20 keypoints (KEYPOINTS order), then of the five head points."""
    b25 = SKELETONS["BODY_25"]
    return np.array([b25[k] for k in KEYPOINTS] + list(BODY25_HEAD.values()))


def phone_azimuths(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) azimuths (deg) of n phones spread evenly over -35..+35 degrees of the subject's front, each
    moved by up to 5 degrees (so within +-40)."""
    if n < 2:
        raise ValueError(f"cameras={n}: 3D needs at least 2 cameras")
    jitter = min(5.0, 70.0 / (n - 1) / 4)
    return np.linspace(-35.0, 35.0, n) + rng.uniform(-jitter, jitter, n)


def phone_camera(index: int, R: np.ndarray, t: np.ndarray, azimuth_deg: float, rng: np.random.Generator,
                 source: str) -> Camera:
    """Phone ``cam<index + 1>`` at pose (R, t): portrait IMAGE_SIZE, focal length within 3 % of FOCAL_PX,
    principal point at the centre, no lens distortion."""
    f = FOCAL_PX * float(rng.uniform(0.97, 1.03))
    K = [[f, 0.0, IMAGE_SIZE[0] / 2], [0.0, f, IMAGE_SIZE[1] / 2], [0.0, 0.0, 1.0]]
    return Camera(f"cam{index + 1}", IMAGE_SIZE, K, np.zeros(5), R, t,
                  {"source": f"{source} (true camera)", "azimuth_deg": round(float(azimuth_deg), 3)})


def place_cameras(n: int, rng: np.random.Generator) -> list[Camera]:
    """n phones at ``phone_azimuths`` around the subject's front (+X), 3-4 m away, lens 0.9-1.4 m high,
    looking at the pelvis (``phone_camera``)."""
    cams = []
    for i, az in enumerate(phone_azimuths(n, rng)):
        R, t = camera_pose(float(az), distance_m=float(rng.uniform(3.0, 4.0)), height_m=float(rng.uniform(0.9, 1.4)))
        cams.append(phone_camera(i, R, t, az, rng, "demo/synthetic_session.py"))
    return cams


def _runs(rng: np.random.Generator, n_frames: int, share: float, run: tuple[int, int]) -> np.ndarray:
    """(n_frames,) bool: runs of run[0]..run[1] frames (uniform) at random places, as many as cover
    ``share`` of the frames on average (runs that overlap merge)."""
    mask = np.zeros(n_frames, bool)
    if share <= 0 or n_frames == 0:
        return mask
    expected = share * n_frames / (0.5 * (run[0] + run[1]))
    n_runs = int(expected) + int(rng.random() < expected - int(expected))
    for _ in range(n_runs):
        length = int(rng.integers(run[0], run[1] + 1))
        start = int(rng.integers(0, max(1, n_frames - length + 1)))
        mask[start:start + length] = True
    return mask


SWAP_GROUPS = [[(KEYPOINTS.index(r), KEYPOINTS.index(l)) for r, l in group] for group in (LEG_PAIRS, ARM_PAIRS)]


def apply_errors(uv: np.ndarray, errors: ErrorModel, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, int]]:
    """True pixels (frames, P, 2) of one camera -> detections (frames, P, 3) x, y, confidence (NaN and
    0 when missing) and the counts of what was done. The first 20 points are KEYPOINTS (swaps act on
    those), any further points only get jitter, outliers and dropouts."""
    n, p = uv.shape[:2]
    out = uv.copy()
    # Left/right swaps of one limb group, in runs.
    swapped = _runs(rng, n, errors.swap_share, errors.swap_run)
    swap_frames = 0
    for start, stop in nan_runs(~swapped):
        group = SWAP_GROUPS[int(rng.integers(0, 2))]
        for r, l in group:
            out[start:stop, [r, l]] = out[start:stop, [l, r]]
        swap_frames += stop - start
    out += rng.normal(0.0, errors.jitter_px, out.shape) if errors.jitter_px > 0 else 0.0
    outliers = rng.random((n, p)) < errors.outlier_share
    angle = rng.uniform(0, 2 * np.pi, (n, p))
    dist = rng.uniform(*errors.outlier_px, (n, p))
    out[outliers] += (dist[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1))[outliers]
    lo, hi = errors.confidence
    level = rng.uniform(lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo), p)
    conf = np.clip(level + rng.normal(0.0, 0.03, (n, p)), lo, hi)
    missing = np.stack([_runs(rng, n, errors.missing_share, errors.missing_run) for _ in range(p)], axis=1)
    det = np.concatenate([out, conf[..., None]], axis=-1)
    det[missing] = [np.nan, np.nan, 0.0]
    counts = {"frames": int(n), "swapped_frames": int(swap_frames), "outliers": int((outliers & ~missing).sum()),
              "missing": int(missing.sum())}
    return det, counts


def write_body25_frame(path: Path, det: np.ndarray) -> None:
    """One OpenPose JSON file: det (25, 3) in BODY_25 order, missing = confidence 0 (written 0, 0, 0)."""
    flat = []
    for x, y, c in det:
        flat += [0.0, 0.0, 0.0] if not c > 0 else [round(float(x), 3), round(float(y), 3), round(float(c), 4)]
    people = [{"person_id": [-1], "pose_keypoints_2d": flat, "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
               "hand_right_keypoints_2d": []}] if any(flat[2::3]) else []
    path.write_text(json.dumps({"version": 1.3, "people": people}))


def write_detections(root: Path, trial: str, cam: str, det: np.ndarray) -> Path:
    """Write one camera's detections (frames, 25, 3) (KEYPOINTS then the head points, as apply_errors
    returns them) as BODY_25 JSON files into root/pose2d/<trial>/<cam>/; returns that folder."""
    body25 = np.zeros((len(det), 25, 3))
    body25[:, _body25_indices()] = det
    folder = root / "pose2d" / trial / cam
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(body25):
        write_body25_frame(folder / f"{cam}_{i:012d}_keypoints.json", frame)
    return folder


def make_pose2d_session(root: str | Path, *, cameras: int = 2, seconds: float | None = None, fps: float | list[float] = 60.0,
                        errors: ErrorModel = ErrorModel(), seed: int = 0, max_start_s: float = 0.5,
                        trials: tuple[str, ...] = ("static", "squats")) -> SyntheticSession:
    """Write a session of 2D keypoint files (no videos) with known truth into ``root`` (see the
    module docstring); deterministic for a given seed.

    cameras: number of phones (>= 2). seconds: length of the dynamic trial (default the demo's 7 s;
    the number of squats follows the demo's pace, at least one); the static trial is the demo's 2.5 s
    (or ``seconds`` if shorter). fps: one frame rate for all phones or one per phone. errors: the
    detector error model (ErrorModel.perfect() for exact projections). max_start_s: each phone starts
    recording at a random true time in [0, max_start_s]. trials: which of the demo's trials to make.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    cams = place_cameras(cameras, rng)
    rates = [float(fps)] * cameras if np.isscalar(fps) else [float(f) for f in fps]
    if len(rates) != cameras or min(rates) <= 0:
        raise ValueError(f"fps={fps!r}: give one frame rate > 0, or one per camera ({cameras})")
    fps_by = {c.name: r for c, r in zip(cams, rates)}
    start_by = {c.name: round(float(rng.uniform(0.0, max_start_s)), 6) for c in cams}
    specs = {}
    for name in trials:
        demo = TRIALS[name]
        length = float(demo["seconds"])
        n_squats = demo["squats"]
        if seconds is not None:
            if demo["kind"] == "static":
                length = min(length, float(seconds))
            else:
                length = float(seconds)
                n_squats = max(1, int(round((length - 2.0) / SECONDS_PER_SQUAT)))
        if length - 0.05 <= max_start_s + 0.5:
            raise ValueError(f"trial {name!r}: {length:g} s is too short for phones starting up to {max_start_s:g} s late")
        specs[name] = {"kind": demo["kind"], "seconds": length, "squats": n_squats,
                       "sway_phase": float(rng.uniform(0, 6))}
    synth = SyntheticSession(root, cams, fps_by, start_by, specs, errors, seed)
    (root / "mocap").mkdir(parents=True, exist_ok=True)
    for name, spec in specs.items():
        t_mocap = np.arange(0, spec["seconds"], 1 / MOCAP_HZ)
        write_trc(root / "mocap" / f"{name}.trc", MarkerTable(t_mocap, list(KEYPOINTS), true_keypoints(spec, t_mocap), MOCAP_HZ))
        synth.applied[name] = {}
        for cam in cams:
            t = synth.camera_times(name, cam.name)
            kp = true_keypoints(spec, t)
            pts = np.concatenate([kp, _head_points(kp)], axis=1)  # (frames, 25, 3): KEYPOINTS then the head
            det, counts = apply_errors(cam.project(pts), errors, rng)
            write_detections(root, name, cam.name, det)
            synth.applied[name][cam.name] = counts
    save_cameras(root / "calibration" / "cameras.yaml", cams, "the true virtual cameras of demo/synthetic_session.py")
    session = {
        "subject": {"id": "synth01", "height_m": HEIGHT_M, "mass_kg": MASS_KG, "sex": "f"},
        "cameras": [{"id": c.name, "fps": fps_by[c.name]} for c in cams],
        "trials": [{"name": n, "kind": s["kind"], "mocap": f"mocap/{n}.trc"} for n, s in specs.items()],
        "config": {"keypoints": {"backend": "json"}},
    }
    (root / "session.yaml").write_text(
        f"# Synthetic session: 2D keypoint files of the demo subject, {cameras} virtual phones, seed {seed}\n"
        "# (made by demo/synthetic_session.py; the truth is in mocap/ and synthetic.json).\n"
        + yaml.safe_dump(session, sort_keys=False))
    (root / "synthetic.json").write_text(json.dumps({
        "made_by": "demo/synthetic_session.py", "seed": seed, "errors": asdict(errors),
        "clock": "camera c's frame i is at true time start_s[c] + i / fps[c]; mocap time is true time",
        "cameras": {c.name: {"fps": fps_by[c.name], "start_s": start_by[c.name], "azimuth_deg": c.info["azimuth_deg"]}
                    for c in cams},
        "trials": specs, "applied": synth.applied,
    }, indent=2))
    return synth


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Write a synthetic session of 2D keypoint files with known truth.")
    ap.add_argument("out", type=Path)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perfect", action="store_true", help="no detector errors")
    a = ap.parse_args(argv)
    synth = make_pose2d_session(a.out, cameras=a.cameras, seconds=a.seconds, seed=a.seed,
                                errors=ErrorModel.perfect() if a.perfect else ErrorModel())
    print(f"{synth.root}: {len(synth.cameras)} cameras, trials {list(synth.trials)}; "
          "run: python app.py run " + str(synth.root))


if __name__ == "__main__":
    main()
