"""Known motions for our model and the marker trajectories they produce (synthetic data with truth).

Used by the round-trip and scaling tests and by benchmarks; the augmenter's training set (a later
piece of work) builds on the same two functions.
"""
from __future__ import annotations

import numpy as np

from biomech.ik import model_marker_names, model_marker_positions
from biomech.mot import CoordinateTable
from biomech.opensim_env import osim
from biomech.trc import MarkerTable


def coordinate_names(model: osim.Model) -> list[str]:
    cs = model.getCoordinateSet()
    return [cs.get(i).getName() for i in range(cs.getSize())]


def squat_motion(model: osim.Model, duration_s: float = 2.0, rate_hz: float = 100.0, depth_deg: float = 90.0,
                 seed: int = 0) -> CoordinateTable:
    """A squat (hips, knees, ankles, trunk together) plus smooth movement of every other coordinate,
    all inside the model's ranges. Returns (frames, coordinates) radians / metres."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration_s, 1.0 / rate_hz)
    phase = 0.5 - 0.5 * np.cos(2 * np.pi * t / duration_s)  # 0 -> 1 -> 0
    names = coordinate_names(model)
    cs = model.getCoordinateSet()
    values = np.zeros((len(t), len(names)))
    squat = {"hip_flexion": 0.95, "knee_angle": 1.0, "ankle_angle": 0.35, "lumbar_extension": -0.25,
             "pelvis_tilt": -0.15, "arm_flex": 0.6, "elbow_flex": 0.5}
    for j, name in enumerate(names):
        c = cs.get(name)
        lo, hi = c.getRangeMin(), c.getRangeMax()
        base = name[:-2] if name.endswith(("_r", "_l")) else name
        if name == "pelvis_ty":
            values[:, j] = c.getDefaultValue() - 0.25 * phase * depth_deg / 90
            continue
        if name in ("pelvis_tx", "pelvis_tz"):
            values[:, j] = 0.05 * np.sin(2 * np.pi * t / duration_s + rng.uniform(0, np.pi))
            continue
        wobble = np.radians(rng.uniform(3, 10)) * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t / duration_s + rng.uniform(0, np.pi))
        v = squat.get(base, 0.0) * np.radians(depth_deg) * phase + wobble
        if base in ("elbow_flex", "pro_sup"):
            v = v + np.radians(30)  # away from the 0 limit
        margin = np.radians(2)
        values[:, j] = np.clip(v, lo + margin, hi - margin)
    return CoordinateTable(t, names, values)


def markers_from_motion(model: osim.Model, motion: CoordinateTable, markers: list[str] | None = None,
                        noise_m: float = 0.0, seed: int = 0) -> MarkerTable:
    """Marker trajectories of ``model`` moved by ``motion`` (optionally with Gaussian noise)."""
    markers = markers or model_marker_names(model)
    pos = model_marker_positions(model, motion, markers)
    if noise_m > 0:
        pos = pos + np.random.default_rng(seed).normal(0.0, noise_m, pos.shape)
    rate = 1.0 / float(np.median(np.diff(motion.time_s))) if len(motion.time_s) > 1 else 100.0
    return MarkerTable(motion.time_s, markers, pos, rate)


def scaled_copy(model: osim.Model, factors: dict[str, tuple[float, float, float]]) -> osim.Model:
    """A copy of ``model`` with bodies scaled by ``factors`` (body -> x, y, z), markers and joints with them."""
    scaled = osim.Model(model)
    state = scaled.initSystem()
    sset = osim.ScaleSet()
    for body, (x, y, z) in factors.items():
        s = osim.Scale()
        s.setSegmentName(body)
        s.setScaleFactors(osim.Vec3(x, y, z))
        s.setApply(True)
        sset.cloneAndAppend(s)
    scaled.scale(state, sset, True)
    scaled.initSystem()
    return scaled
