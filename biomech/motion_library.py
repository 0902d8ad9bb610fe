"""Parametric human movements in joint-coordinate space for our model (synthetic data with truth).

Each generator draws its parameters from a random generator and returns a ``CoordinateTable``
(frames, coordinates) in radians at the requested rate: squats of varied depth, stance width,
toe-out, trunk lean, speed and arm posture; sit-to-stand and stand-to-sit; forward lunges;
walking; arm raises; and free random movement of every joint. All of them add a small slow
wobble to every coordinate so no two trials are alike, and every value stays inside the model's
ranges. Translations are zero apart from the pelvis height: the augmenter works relative to the
hips, so where the body stands does not matter.

People do not stand at our model's neutral pose: our pelvis frame has the ASIS and PSIS level, and a
standing person's pelvis is tilted forward (ASIS below PSIS) by about 5-20 deg, about 11 on average
in published measurements (the shared lab subject stands at 10.6 in our model solved on its mocap),
with the lumbar spine extended (lordosis) to keep the trunk upright. ``standing_posture`` draws such a
posture per trial and every movement but free movement starts from it.

Sign conventions of our model (checked against marker positions): hip/knee/shoulder/elbow flexion,
ankle dorsiflexion, hip and shoulder adduction are positive; ``pelvis_tilt`` is positive
backwards (anterior tilt negative), ``lumbar_extension`` positive backwards.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.interpolate import CubicSpline

from biomech.mot import CoordinateTable

Curves = dict[str, np.ndarray]  # coordinate -> (frames,) degrees
SIDES = ("r", "l")


def smooth_phase(t: np.ndarray, starts: list[float], down_s: list[float], hold_s: list[float], up_s: list[float]) -> np.ndarray:
    """(frames,) 0 -> 1 -> 0 repetitions: each rep starts at ``starts[i]``, goes down in ``down_s[i]``
    (cosine ramp), holds ``hold_s[i]`` and comes back up in ``up_s[i]``."""
    phi = np.zeros_like(t)
    for t0, d, h, u in zip(starts, down_s, hold_s, up_s):
        down = (t >= t0) & (t < t0 + d)
        phi[down] = 0.5 - 0.5 * np.cos(np.pi * (t[down] - t0) / d)
        phi[(t >= t0 + d) & (t < t0 + d + h)] = 1.0
        up = (t >= t0 + d + h) & (t < t0 + d + h + u)
        phi[up] = 0.5 + 0.5 * np.cos(np.pi * (t[up] - t0 - d - h) / u)
    return phi


def repetitions(rng: np.random.Generator, duration_s: float, rep_s: tuple[float, float],
                pause_s: tuple[float, float] = (0.2, 1.2)) -> tuple[list[float], list[float], list[float], list[float]]:
    """Start times and down/hold/up durations of as many repetitions as fit in ``duration_s``."""
    starts, downs, holds, ups = [], [], [], []
    t = rng.uniform(0.0, 0.8)
    while True:
        total = rng.uniform(*rep_s)
        d, h = total * rng.uniform(0.35, 0.55), total * rng.uniform(0.0, 0.15)
        u = total - d - h
        if t + total > duration_s:
            break
        starts.append(t), downs.append(d), holds.append(h), ups.append(u)
        t += total + rng.uniform(*pause_s)
    if not starts:  # a short trial: one repetition over most of it
        total = 0.9 * duration_s
        starts, downs, holds, ups = [0.05 * duration_s], [0.45 * total], [0.1 * total], [0.45 * total]
    return starts, downs, holds, ups


def wobble(rng: np.random.Generator, t: np.ndarray, amplitude_deg: float) -> np.ndarray:
    """(frames,) slow random movement: two sinusoids of 0.1-0.8 Hz, peak about ``amplitude_deg``."""
    out = np.zeros_like(t)
    for _ in range(2):
        out += rng.uniform(0.3, 0.6) * amplitude_deg * np.sin(2 * np.pi * rng.uniform(0.1, 0.8) * t + rng.uniform(0, 2 * np.pi))
    return out


def both(curves: Curves, name: str, right: np.ndarray, left: np.ndarray | None = None) -> None:
    curves[f"{name}_r"] = right
    curves[f"{name}_l"] = right if left is None else left


def arm_posture(rng: np.random.Generator, t: np.ndarray, phi: np.ndarray, curves: Curves) -> None:
    """Arms during a lower-limb task: hanging, reaching forward with the movement, crossed on the
    chest, or hands on the hips."""
    kind = rng.choice(["hanging", "forward", "crossed", "hips"])
    if kind == "hanging":
        both(curves, "arm_flex", 5 + wobble(rng, t, 8)), both(curves, "arm_add", -8 + wobble(rng, t, 4))
        both(curves, "elbow_flex", 10 + wobble(rng, t, 8))
    elif kind == "forward":
        reach = rng.uniform(50, 100)
        both(curves, "arm_flex", reach * phi + rng.uniform(0, 20) * (1 - phi)), both(curves, "arm_add", rng.uniform(-10, 10) + 0 * t)
        both(curves, "elbow_flex", rng.uniform(0, 40) + wobble(rng, t, 5))
    elif kind == "crossed":
        both(curves, "arm_flex", rng.uniform(60, 90) + 0 * t), both(curves, "arm_add", rng.uniform(20, 40) + 0 * t)
        both(curves, "elbow_flex", rng.uniform(90, 130) + 0 * t)
    else:
        both(curves, "arm_flex", rng.uniform(-20, 0) + 0 * t), both(curves, "arm_add", rng.uniform(-45, -25) + 0 * t)
        both(curves, "elbow_flex", rng.uniform(80, 110) + 0 * t)
    both(curves, "arm_rot", rng.uniform(-20, 30) + wobble(rng, t, 5))
    both(curves, "pro_sup", rng.uniform(20, 90) + wobble(rng, t, 10))


def lower_limb_chain(curves: Curves, side: str, knee: np.ndarray, ankle: np.ndarray, anterior_tilt: np.ndarray) -> None:
    """Hip flexion that keeps the foot flat: thigh lean from vertical (knee - ankle) plus pelvic tilt."""
    curves[f"knee_angle_{side}"] = knee
    curves[f"ankle_angle_{side}"] = ankle
    curves[f"hip_flexion_{side}"] = knee - ankle + anterior_tilt


def squat(rng: np.random.Generator, t: np.ndarray) -> Curves:
    depth = rng.uniform(40, 125)  # knee flexion at the bottom, deg
    reps = repetitions(rng, t[-1], (1.2, 5.0))
    phi = smooth_phase(t, *reps)
    knee = depth * phi
    ankle = np.minimum(rng.uniform(0.25, 0.5) * knee, rng.uniform(25, 40))
    if rng.random() < 0.15:  # heels rise at the bottom
        ankle = ankle - rng.uniform(10, 25) * phi ** 2
    tilt = rng.uniform(0.1, 0.4) * knee  # anterior pelvic tilt, deg
    c: Curves = {"pelvis_tilt": -tilt, "lumbar_extension": -rng.uniform(0.0, 0.25) * knee}
    for s in SIDES:
        lower_limb_chain(c, s, knee + wobble(rng, t, 3), ankle + wobble(rng, t, 2), tilt)
    width, toe_out = rng.uniform(0, 25), rng.uniform(0, 30)
    valgus = rng.uniform(-8, 12)  # knees in (positive) or out during the descent
    both(c, "hip_adduction", -width + valgus * phi + wobble(rng, t, 2), -width + valgus * phi + wobble(rng, t, 2))
    both(c, "hip_rotation", -toe_out + 0.5 * valgus * phi + wobble(rng, t, 3), -toe_out + 0.5 * valgus * phi + wobble(rng, t, 3))
    both(c, "subtalar_angle", (width - 10) * 0.4 + wobble(rng, t, 3))
    arm_posture(rng, t, phi, c)
    return c


def sit_to_stand(rng: np.random.Generator, t: np.ndarray) -> Curves:
    """Seated (phase 1) to standing (phase 0) and back, with the forward trunk lean of the rise."""
    reps = repetitions(rng, t[-1], (2.0, 6.0), (0.5, 2.0))
    stand = smooth_phase(t, *reps)  # 0 seated, 1 standing
    seat_knee, seat_hip = rng.uniform(80, 105), rng.uniform(75, 100)
    lean_peak = rng.uniform(20, 45)
    lean = lean_peak * np.sin(np.pi * stand) ** 2  # leans forward mid-rise
    knee = seat_knee * (1 - stand)
    ankle = rng.uniform(0, 15) * (1 - stand) + 0.15 * lean
    tilt = lean * rng.uniform(0.5, 0.8) + rng.uniform(-15, 5) * (1 - stand)
    c: Curves = {"pelvis_tilt": -tilt, "lumbar_extension": -(lean - tilt) * rng.uniform(0.3, 0.8)}
    for s in SIDES:
        c[f"knee_angle_{s}"] = knee + wobble(rng, t, 3)
        c[f"ankle_angle_{s}"] = ankle + wobble(rng, t, 2)
        c[f"hip_flexion_{s}"] = seat_hip * (1 - stand) + tilt + wobble(rng, t, 3)
    both(c, "hip_adduction", -rng.uniform(0, 15) + wobble(rng, t, 3))
    both(c, "hip_rotation", -rng.uniform(0, 20) + wobble(rng, t, 3))
    arm_posture(rng, t, 1 - stand, c)
    return c


def lunge(rng: np.random.Generator, t: np.ndarray) -> Curves:
    front, back = ("r", "l") if rng.random() < 0.5 else ("l", "r")
    phi = smooth_phase(t, *repetitions(rng, t[-1], (1.5, 4.0)))
    c: Curves = {"pelvis_tilt": -rng.uniform(0, 15) * phi, "lumbar_extension": rng.uniform(-10, 5) * phi}
    front_knee = rng.uniform(70, 110) * phi
    c[f"knee_angle_{front}"] = front_knee
    c[f"ankle_angle_{front}"] = rng.uniform(0.15, 0.3) * front_knee
    c[f"hip_flexion_{front}"] = front_knee * rng.uniform(0.75, 0.95)
    c[f"knee_angle_{back}"] = rng.uniform(60, 100) * phi
    c[f"hip_flexion_{back}"] = -rng.uniform(5, 20) * phi
    c[f"ankle_angle_{back}"] = -rng.uniform(0, 25) * phi
    c[f"mtp_angle_{back}"] = rng.uniform(20, 35) * phi
    both(c, "hip_adduction", -rng.uniform(0, 10) + wobble(rng, t, 3))
    both(c, "hip_rotation", -rng.uniform(0, 15) + wobble(rng, t, 3))
    arm_posture(rng, t, phi, c)
    return c


# Sagittal angles over one gait cycle from right heel strike (deg), smoothed normative shapes
# (after Winter's gait data): knots at these percentages of the cycle.
_GAIT_PCT = np.array([0, 10, 20, 30, 40, 50, 60, 65, 70, 80, 90, 100]) / 100
_GAIT = {
    "hip_flexion": [30, 25, 15, 5, -3, -10, -5, 5, 15, 27, 33, 30],
    "knee_angle": [5, 17, 15, 8, 5, 8, 35, 50, 60, 45, 15, 5],
    "ankle_angle": [0, -5, 3, 8, 10, 5, -15, -15, -8, 0, 2, 0],
}


def walking(rng: np.random.Generator, t: np.ndarray) -> Curves:
    cycle_s = 60.0 / rng.uniform(45, 62)  # strides per minute
    amp = rng.uniform(0.75, 1.2)
    c: Curves = {}
    for s, shift in (("r", 0.0), ("l", 0.5)):
        pct = (t / cycle_s + shift + rng.uniform(-0.01, 0.01)) % 1.0
        for name, knots in _GAIT.items():
            curve = CubicSpline(_GAIT_PCT, np.array(knots, float), bc_type="periodic")(pct)
            c[f"{name}_{s}"] = amp * curve + wobble(rng, t, 2)
        c[f"hip_adduction_{s}"] = 4 * np.sin(2 * np.pi * (pct - 0.05)) + wobble(rng, t, 2)
        c[f"hip_rotation_{s}"] = -5 + 5 * np.sin(2 * np.pi * pct) + wobble(rng, t, 3)
        c[f"arm_flex_{s}"] = -rng.uniform(8, 25) * np.cos(2 * np.pi * pct) * amp + 5
        c[f"elbow_flex_{s}"] = 20 + 10 * (1 - np.cos(2 * np.pi * pct)) + wobble(rng, t, 3)
        c[f"arm_add_{s}"] = -8 + wobble(rng, t, 3)
        c[f"mtp_angle_{s}"] = 20 * np.exp(-((pct - 0.6) / 0.05) ** 2)
    gait = 2 * np.pi * t / cycle_s
    c["pelvis_rotation"] = rng.uniform(3, 8) * np.sin(gait)
    c["pelvis_list"] = rng.uniform(2, 6) * np.sin(2 * gait)
    c["pelvis_tilt"] = -rng.uniform(0, 12) + 2 * np.sin(2 * gait)
    c["lumbar_rotation"] = -0.7 * c["pelvis_rotation"]
    return c


def arm_raises(rng: np.random.Generator, t: np.ndarray) -> Curves:
    c: Curves = {}
    for s in SIDES:
        phi = smooth_phase(t, *repetitions(rng, t[-1], (1.5, 4.0), (0.0, 1.0)))
        plane = rng.choice(["flexion", "abduction", "scaption"])
        top = rng.uniform(80, 170)
        flex, abd = {"flexion": (1.0, 0.0), "abduction": (0.0, 1.0), "scaption": (0.6, 0.6)}[plane]
        c[f"arm_flex_{s}"] = flex * top * phi + wobble(rng, t, 5)
        c[f"arm_add_{s}"] = -abd * top * phi - 5 + wobble(rng, t, 4)
        c[f"arm_rot_{s}"] = rng.uniform(-30, 40) * phi + wobble(rng, t, 8)
        c[f"elbow_flex_{s}"] = rng.uniform(0, 140) * phi ** rng.uniform(0.5, 2) + rng.uniform(0, 20)
        c[f"pro_sup_{s}"] = rng.uniform(10, 150) + wobble(rng, t, 15)
    for s in SIDES:
        c[f"knee_angle_{s}"] = rng.uniform(0, 10) + wobble(rng, t, 3)
    return c


def free_movement(rng: np.random.Generator, t: np.ndarray) -> Curves:
    """Every joint wandering (for coverage of poses the tasks above do not reach)."""
    c: Curves = {}
    spans = {"hip_flexion": (-10, 90), "knee_angle": (0, 110), "ankle_angle": (-30, 25), "hip_adduction": (-30, 15),
             "hip_rotation": (-35, 35), "subtalar_angle": (-15, 20), "mtp_angle": (-10, 30), "arm_flex": (-30, 150),
             "arm_add": (-120, 20), "arm_rot": (-60, 60), "elbow_flex": (0, 140), "pro_sup": (0, 160)}
    for base, (lo, hi) in spans.items():
        for s in SIDES:
            centre, half = rng.uniform(lo, hi), (hi - lo) * rng.uniform(0.1, 0.35)
            c[f"{base}_{s}"] = centre + wobble(rng, t, half)
    c["pelvis_tilt"] = rng.uniform(-30, 10) + wobble(rng, t, 10)
    c["pelvis_list"] = wobble(rng, t, 8)
    c["lumbar_extension"] = rng.uniform(-40, 10) + wobble(rng, t, 10)
    c["lumbar_bending"] = wobble(rng, t, 15)
    c["lumbar_rotation"] = wobble(rng, t, 20)
    return c


def standing_posture(rng: np.random.Generator) -> Curves:
    """A person's habitual standing posture (deg, constant): forward pelvic tilt T ~ N(11, 4) clipped to
    0-22, lumbar extension of 0.6-1.1 T (the trunk stays upright), hip flexion of 0.4-1.0 T (the
    thighs stay near vertical)."""
    tilt = float(np.clip(rng.normal(11.0, 4.0), 0.0, 22.0))
    lordosis, hips = rng.uniform(0.6, 1.1) * tilt, rng.uniform(0.4, 1.0) * tilt
    return {"pelvis_tilt": -tilt, "lumbar_extension": lordosis, "hip_flexion_r": hips, "hip_flexion_l": hips}


MOTIONS: dict[str, Callable[[np.random.Generator, np.ndarray], Curves]] = {
    "squat": squat, "sit_to_stand": sit_to_stand, "lunge": lunge, "walking": walking,
    "arm_raises": arm_raises, "free": free_movement,
}


def motion(kind: str, coordinates: list[str], ranges_deg: dict[str, tuple[float, float]], rng: np.random.Generator,
           duration_s: float, rate_hz: float, default_pelvis_height_m: float = 1.0) -> CoordinateTable:
    """A ``kind`` movement (a key of ``MOTIONS``) for a model with these coordinate names and ranges.

    Coordinates the movement leaves alone get a small wobble around neutral; every rotation is
    clipped 1 deg inside its range. Returns (frames, coordinates), radians and metres.
    """
    if kind not in MOTIONS:
        raise ValueError(f"unknown motion {kind!r}; choose from {', '.join(MOTIONS)}")
    t = np.arange(int(round(duration_s * rate_hz))) / rate_hz
    curves = MOTIONS[kind](rng, t)
    if kind != "free":
        for name, deg in standing_posture(rng).items():
            curves[name] = curves.get(name, 0.0) + deg
    values = np.zeros((len(t), len(coordinates)))
    for j, name in enumerate(coordinates):
        if name in ("pelvis_tx", "pelvis_tz"):
            continue
        if name == "pelvis_ty":
            values[:, j] = default_pelvis_height_m
            continue
        deg = curves.get(name, 0.0) + wobble(rng, t, rng.uniform(1.5, 4.0))
        if name == "pelvis_rotation":
            deg = deg + rng.uniform(-180, 180)
        lo, hi = ranges_deg[name]
        values[:, j] = np.radians(np.clip(deg, lo + 1.0, hi - 1.0))
    return CoordinateTable(t, list(coordinates), values)
