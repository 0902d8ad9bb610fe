"""Training and evaluation data for the marker augmenter, made with our OpenSim model.

A synthetic subject is our generic model scaled per segment (stature 1.50-1.95 m, segment
proportions varied, widths following the body-mass index). Movements from
``biomech.motion_library`` drive it; forward kinematics gives every body's pose per frame, from
which the 43 ``_study`` markers (targets) and the 20 video keypoints (inputs) follow. The inputs
then get the errors a phone-based reconstruction makes (``KeypointErrors``): a per-subject offset
of each keypoint in its segment (a detector's joint is not the anatomical joint centre), slow
correlated wobble (triangulated, filtered noise), white jitter, small per-keypoint lags, and short
dropouts filled by the same cubic interpolation as the pipeline's.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

from biomech.landmarks import STUDY_MARKERS, VIDEO_MARKERS
from biomech.mot import CoordinateTable
from biomech.model_builder import DEFAULT_MODEL
from biomech.motion_library import motion
from biomech.opensim_env import load_model, osim
from biomech.synthetic_motion import coordinate_names, scaled_copy
from core.gaps import fill_gaps
from core.keypoints import SIDE, unsided

KEYPOINTS = list(VIDEO_MARKERS)  # the 20 video keypoints
MARKERS = list(STUDY_MARKERS)  # the 43 anatomical markers
HIP_KEYPOINTS = ("RHip", "LHip", "midHip")
# Share of each movement kind in a training set (squats are what our users record most).
MOTION_MIX = {"squat": 0.3, "sit_to_stand": 0.15, "lunge": 0.12, "walking": 0.15, "arm_raises": 0.1, "free": 0.18}


@dataclass
class Subject:
    height_m: float
    mass_kg: float
    factors: dict[str, tuple[float, float, float]]  # body -> scale factors (x, y, z) of our generic model


# Bodies that scale together: (bodies, which axes are "length" (1) and which "width" (0)).
_SEGMENTS = {
    "pelvis": (["pelvis"], (0, 1, 0)), "thigh": (["femur"], (0, 1, 0)), "shank": (["tibia"], (0, 1, 0)),
    "foot": (["talus", "calcn", "toes"], (1, 1, 0)), "torso": (["torso"], (0, 1, 0)),
    "upper_arm": (["humerus"], (0, 1, 0)), "forearm": (["ulna", "radius", "hand"], (0, 1, 0)),
}


def random_subject(rng: np.random.Generator, generic_height_m: float = 1.75) -> Subject:
    """Stature 1.50-1.95 m, BMI 18-33; each segment's length +-4 % (SD) around the stature's, its
    width and depth +-3 % and 1.2 % per BMI point above 22. Left and right alike."""
    height = rng.uniform(1.50, 1.95)
    bmi = rng.uniform(18.0, 33.0)
    s = height / generic_height_m
    factors = {}
    for _, (bodies, is_length) in _SEGMENTS.items():
        length = s * (1 + rng.normal(0, 0.04))
        width = s * (1 + rng.normal(0, 0.03) + 0.012 * (bmi - 22))
        f = tuple(float(length if L else width) for L in is_length)
        for b in bodies:
            for side in ("r", "l"):
                factors[b if b in ("pelvis", "torso") else f"{b}_{side}"] = f
    return Subject(float(height), float(bmi * height ** 2), factors)


@dataclass
class KeypointErrors:
    """What a phone-based reconstruction does to keypoints (all SDs, metres; ranges drawn per trial)."""

    offset_m: float = 0.010  # per keypoint, per subject, per axis, in its segment's frame
    hip_offset_m: float = 0.020  # hips: detectors' hip points sit far from the hip joint centre
    wobble_m: tuple[float, float] = (0.002, 0.012)  # slow correlated error
    wobble_cutoff_hz: tuple[float, float] = (0.5, 4.0)
    jitter_m: tuple[float, float] = (0.0, 0.004)  # frame-to-frame
    lag_s: float = 0.015  # per keypoint, uniform in +-lag_s
    dropouts_per_s: float = 0.08  # per keypoint
    dropout_frames: tuple[int, int] = (2, 10)
    clean_share: float = 0.15  # trials left without any error
    # Where a 2D detector's keypoints sit on the body, as a shift (m) from our model's keypoint (its joint
    # centre or foot point) in the generic model's body frame, scaled with the body; applied to every
    # trial, error-free ones included. Empty: our definitions. ``augmenter train`` measures OpenCap's
    # detector-keypoint definitions on the shared lab subject (bench/lab_sessions.lab_training_data).
    definition_shift_m: dict[str, list[float]] = field(default_factory=dict)

    def offsets(self, rng: np.random.Generator, names: list[str]) -> np.ndarray:
        """(keypoints, 3) segment-frame offsets; left mirrors right (a detector's bias is symmetric)
        plus a little of its own."""
        out = np.zeros((len(names), 3))
        shared: dict[str, np.ndarray] = {}
        for i, n in enumerate(names):
            base = unsided(n)
            sd = self.hip_offset_m if n in HIP_KEYPOINTS else self.offset_m
            if base not in shared:
                shared[base] = rng.normal(0, sd, 3)
            o = shared[base].copy()
            if SIDE.get(n) == "L":
                o[2] = -o[2]
            out[i] = o + rng.normal(0, 0.3 * sd, 3)
        return out

    def apply(self, rng: np.random.Generator, time_s: np.ndarray, points_m: np.ndarray) -> np.ndarray:
        """(frames, keypoints, 3) with wobble, jitter, lags and filled dropouts (offsets are applied
        before, in the segment frames)."""
        n, k, _ = points_m.shape
        rate = 1.0 / float(np.median(np.diff(time_s)))
        out = points_m.copy()
        lags = rng.uniform(-self.lag_s, self.lag_s, k)
        for j in range(k):
            for a in range(3):
                out[:, j, a] = np.interp(time_s - lags[j], time_s, points_m[:, j, a])
        cutoff = min(rng.uniform(*self.wobble_cutoff_hz), 0.4 * rate)
        sos = butter(2, cutoff / (rate / 2), output="sos")
        slow = sosfiltfilt(sos, rng.normal(0, 1, (n + 200, k, 3)), axis=0)[100:-100]
        slow *= rng.uniform(*self.wobble_m) / max(float(slow.std()), 1e-12)
        out += slow + rng.normal(0, rng.uniform(*self.jitter_m), out.shape)
        n_drop = rng.poisson(self.dropouts_per_s * k * n / rate)
        for _ in range(n_drop):
            j, length = rng.integers(k), rng.integers(self.dropout_frames[0], self.dropout_frames[1] + 1)
            if n > length + 4:
                a = rng.integers(2, n - length - 2)
                out[a:a + length, j] = np.nan
        filled, _ = fill_gaps(time_s, out, n)  # dropouts may overlap: fill every interior gap
        return filled


@dataclass
class Trial:
    """One synthetic trial: truth and reconstruction-like inputs, metres, OpenSim world frame."""

    kind: str
    rate_hz: float
    height_m: float
    mass_kg: float
    keypoints_m: np.ndarray  # (frames, 20, 3) with errors
    clean_keypoints_m: np.ndarray  # (frames, 20, 3) exact keypoints (joint centres and foot points, or the detector's definitions)
    markers_m: np.ndarray  # (frames, 43, 3) exact anatomical markers


def body_poses(model: osim.Model, coords: CoordinateTable) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Body names, rotations (frames, bodies, 3, 3) and origins (frames, bodies, 3) in ground."""
    state = model.initSystem()
    cs = model.getCoordinateSet()
    cols = [cs.get(n) for n in coords.names]
    bs = model.getBodySet()
    bodies = [bs.get(i) for i in range(bs.getSize())]
    rot = np.empty((len(coords.time_s), len(bodies), 3, 3))
    org = np.empty((len(coords.time_s), len(bodies), 3))
    for i in range(len(coords.time_s)):
        for c, v in zip(cols, coords.values[i]):
            c.setValue(state, float(v), False)
        model.realizePosition(state)
        for b, body in enumerate(bodies):
            T = body.getTransformInGround(state)
            R, p = T.R(), T.p()
            rot[i, b] = [[R.get(u, v) for v in range(3)] for u in range(3)]
            org[i, b] = (p.get(0), p.get(1), p.get(2))
    return [b.getName() for b in bodies], rot, org


def marker_anchors(model: osim.Model, bodies: list[str], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Body index (markers,) and location in that body's frame (markers, 3) of each named marker."""
    ms = model.getMarkerSet()
    missing = [n for n in names if not ms.contains(n)]
    if missing:
        raise ValueError(f"model {model.getName()} lacks markers {missing}")
    idx, loc = [], []
    for n in names:
        mk = ms.get(n)
        idx.append(bodies.index(mk.getParentFrameName().split("/")[-1]))
        v = mk.get_location()
        loc.append((v.get(0), v.get(1), v.get(2)))
    return np.array(idx), np.array(loc)


def points_in_ground(rot: np.ndarray, org: np.ndarray, body_idx: np.ndarray, local_m: np.ndarray) -> np.ndarray:
    """(frames, points, 3) ground positions of body-fixed points."""
    return np.einsum("fpij,pj->fpi", rot[:, body_idx], local_m) + org[:, body_idx]


@dataclass
class DataSpec:
    subjects: int = 160
    trials_per_subject: int = 8
    duration_s: tuple[float, float] = (4.0, 10.0)
    rate_hz: tuple[float, float] = (30.0, 120.0)
    motion_mix: dict[str, float] = field(default_factory=lambda: dict(MOTION_MIX))
    errors: KeypointErrors = field(default_factory=KeypointErrors)
    seed: int = 0


def subject_trials(model: osim.Model, subject: Subject, motions: list[tuple[str, CoordinateTable]],
                   errors: KeypointErrors, rng: np.random.Generator) -> list[Trial]:
    """Trials of one synthetic body (``model``, already scaled for ``subject``) doing ``motions``
    ((kind, coordinates) pairs); one keypoint offset draw for the subject, errors per trial."""
    bodies = [model.getBodySet().get(i).getName() for i in range(model.getBodySet().getSize())]
    kp_body, kp_local = marker_anchors(model, bodies, KEYPOINTS)
    mk_body, mk_local = marker_anchors(model, bodies, MARKERS)
    if errors.definition_shift_m:
        shift = np.array([errors.definition_shift_m.get(k, (0.0, 0.0, 0.0)) for k in KEYPOINTS])
        kp_local = kp_local + shift * np.array([subject.factors.get(bodies[b], (1.0, 1.0, 1.0)) for b in kp_body])
    offsets = errors.offsets(rng, KEYPOINTS)
    out = []
    for kind, coords in motions:
        _, rot, org = body_poses(model, coords)
        clean = points_in_ground(rot, org, kp_body, kp_local)
        if rng.random() < errors.clean_share:
            noisy = clean.copy()
        else:
            noisy = errors.apply(rng, coords.time_s, points_in_ground(rot, org, kp_body, kp_local + offsets))
        rate = 1.0 / float(np.median(np.diff(coords.time_s)))
        out.append(Trial(kind, rate, subject.height_m, subject.mass_kg, noisy, clean,
                         points_in_ground(rot, org, mk_body, mk_local)))
    return out


def make_trials(spec: DataSpec, model_path: str | Path = DEFAULT_MODEL, progress: Iterable | None = None) -> list[Trial]:
    """Synthetic trials for ``spec.subjects`` random subjects (deterministic for a seed)."""
    rng = np.random.default_rng(spec.seed)
    generic = load_model(model_path)
    kinds = list(spec.motion_mix)
    p = np.array([spec.motion_mix[k] for k in kinds], float)
    trials = []
    subjects = range(spec.subjects) if progress is None else progress
    for _ in subjects:
        subject = random_subject(rng)
        model = scaled_copy(generic, subject.factors)
        names = coordinate_names(model)
        cs = model.getCoordinateSet()
        ranges = {n: (np.degrees(cs.get(n).getRangeMin()), np.degrees(cs.get(n).getRangeMax())) for n in names}
        motions = []
        for _ in range(spec.trials_per_subject):
            kind = str(rng.choice(kinds, p=p / p.sum()))
            rate = float(rng.uniform(*spec.rate_hz))
            motions.append((kind, motion(kind, names, ranges, rng, rng.uniform(*spec.duration_s), rate)))
        trials.extend(subject_trials(model, subject, motions, spec.errors, rng))
    return trials


def save_trials(path: str | Path, trials: list[Trial]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(t.keypoints_m) for t in trials])
    np.savez_compressed(
        path, lengths=lengths, kinds=np.array([t.kind for t in trials]), rate_hz=np.array([t.rate_hz for t in trials]),
        height_m=np.array([t.height_m for t in trials]), mass_kg=np.array([t.mass_kg for t in trials]),
        keypoints=np.concatenate([t.keypoints_m for t in trials]).astype(np.float32),
        clean_keypoints=np.concatenate([t.clean_keypoints_m for t in trials]).astype(np.float32),
        markers=np.concatenate([t.markers_m for t in trials]).astype(np.float32),
    )
    return path


def load_trials(path: str | Path) -> list[Trial]:
    z = np.load(path)
    ends = np.cumsum(z["lengths"])
    starts = ends - z["lengths"]
    return [Trial(str(z["kinds"][i]), float(z["rate_hz"][i]), float(z["height_m"][i]), float(z["mass_kg"][i]),
                  z["keypoints"][a:b].astype(np.float64), z["clean_keypoints"][a:b].astype(np.float64),
                  z["markers"][a:b].astype(np.float64))
            for i, (a, b) in enumerate(zip(starts, ends))]
