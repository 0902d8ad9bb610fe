"""Augmenter training trials from recorded human movement: kinematics replayed on synthetic bodies.

A source is our model's coordinates solved on a lab's motion capture (what ``compare`` computes for a
mocap .trc), so it carries how people really couple pelvis, trunk and hips, and how they stand. Each
replayed trial takes a source onto a random synthetic body (``augmenter_data.random_subject``) and
varies it so a handful of recordings cover more than themselves:

- time warp: the whole clip faster or slower (``speed``), with a smooth non-uniform warp on top;
- amplitude: every rotation's excursion from the source's standing pose scaled (``amplitude``);
- mirror: left and right exchanged (``mirror_share`` of the trials);
- heading: any, drawn again for each training window by the sampler (``augmenter_train``);
- rate: the phones' frame rates (``rate_hz``);
- standing before and after: short clips (a drop jump lasts 2.5 s, a stride 1.4 s) are padded with
  the first and last pose held, with a slow sway, so every trial has the frames a training window needs.

Translations are scaled with the body's height; the keypoint errors are those of the synthetic set.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from biomech.model_builder import DEFAULT_MODEL
from biomech.mot import CoordinateTable
from biomech.motion_library import wobble
from biomech.opensim_env import load_model
from biomech.synthetic_motion import coordinate_names, scaled_copy
from models.augmenter_data import KeypointErrors, Trial, random_subject, subject_trials

# Coordinates whose sign flips when left and right are exchanged (rotations about, or translation
# along, the forward or vertical axis of the midline bodies).
MIRROR_NEGATE = ("pelvis_list", "pelvis_rotation", "pelvis_tz", "lumbar_bending", "lumbar_rotation")
TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")


@dataclass
class ReplaySource:
    """One recorded movement: ``coords`` (frames, coordinates) radians/metres of our model, the subject's
    standing pose ``rest`` (coordinates,) (the centre of amplitude changes), its height and activity."""

    name: str
    activity: str
    coords: CoordinateTable
    rest: np.ndarray
    height_m: float


@dataclass
class ReplaySpec:
    subjects: int = 80
    trials_per_subject: int = 8
    speed: tuple[float, float] = (0.75, 1.35)  # playback speed factor
    warp: float = 0.08  # SD of the smooth non-uniform time warp, share of the clip
    amplitude: tuple[float, float] = (0.85, 1.15)
    mirror_share: float = 0.5
    rate_hz: tuple[float, float] = (30.0, 120.0)
    pad_s: tuple[float, float] = (0.5, 2.0)  # standing held before and after the clip
    min_duration_s: float = 4.0  # pad short clips to at least this
    sway_deg: float = 1.0  # slow wobble added to every rotation (no two replays alike)
    # Share of each activity among the replayed trials, relative (1 for any not named): a static trial is
    # one still pose, worth less than a movement.
    activity_weights: dict[str, float] = field(default_factory=lambda: {"standing": 0.5})
    errors: KeypointErrors = field(default_factory=KeypointErrors)
    seed: int = 0


def mirrored(coords: CoordinateTable) -> CoordinateTable:
    """Left and right exchanged: ``_r`` and ``_l`` columns swapped, sideways and axial midline ones negated."""
    values = coords.values.copy()
    index = {n: j for j, n in enumerate(coords.names)}
    for j, n in enumerate(coords.names):
        if n.endswith("_r") and n[:-2] + "_l" in index:
            k = index[n[:-2] + "_l"]
            values[:, [j, k]] = coords.values[:, [k, j]]
        elif n in MIRROR_NEGATE:
            values[:, j] = -coords.values[:, j]
    return CoordinateTable(coords.time_s.copy(), list(coords.names), values)


def _resample(time_s: np.ndarray, values: np.ndarray, at_s: np.ndarray) -> np.ndarray:
    return CubicSpline(time_s, values, axis=0)(np.clip(at_s, time_s[0], time_s[-1]))


def varied(source: ReplaySource, rng: np.random.Generator, spec: ReplaySpec, height_m: float,
           ranges: dict[str, tuple[float, float]]) -> CoordinateTable:
    """One variation of ``source`` for a body of ``height_m``, at a random rate (see module docstring);
    rotations stay inside ``ranges`` (radians)."""
    mirror = rng.random() < spec.mirror_share
    c = mirrored(source.coords) if mirror else source.coords
    rest = mirrored(CoordinateTable(np.zeros(1), c.names, source.rest[None])).values[0] if mirror else source.rest
    names = c.names
    rot = np.array([n not in TRANSLATIONS for n in names])
    # amplitude about the standing pose; translations follow the body's size
    values = c.values.copy()
    values[:, rot] = rest[rot] + rng.uniform(*spec.amplitude) * (values[:, rot] - rest[rot])
    values[:, ~rot] *= height_m / source.height_m
    # time warp: playback speed and a smooth monotonic distortion of the clip's own time
    t0, t1 = c.time_s[0], c.time_s[-1]
    rate = rng.uniform(*spec.rate_hz)
    duration = (t1 - t0) / rng.uniform(*spec.speed)
    n = max(int(round(duration * rate)) + 1, 2)
    u = np.linspace(0.0, 1.0, n)
    bumps = CubicSpline(np.linspace(0, 1, 6), np.r_[0.0, rng.normal(0, spec.warp, 4), 0.0])(u)
    warp_u = np.maximum.accumulate(np.clip(u + bumps * np.sin(np.pi * u), 0.0, 1.0))
    clip = _resample(c.time_s, values, t0 + warp_u * (t1 - t0))
    # standing before and after, with a slow sway, so short clips fill a training window
    short = max(0.0, spec.min_duration_s - duration)
    pads = [rng.uniform(*spec.pad_s) + short / 2 for _ in range(2)]
    before = np.repeat(clip[:1], int(round(pads[0] * rate)), axis=0)
    after = np.repeat(clip[-1:], int(round(pads[1] * rate)), axis=0)
    # the pelvis keeps moving as it was at each end (walking) during the held part: no jump at the seams
    moving = ~rot & (np.array(names) != "pelvis_ty")
    vel = (clip[[1, -1]] - clip[[0, -2]]) * rate
    before[:, moving] += np.outer(np.arange(-len(before), 0) / rate, vel[0, moving])
    after[:, moving] += np.outer(np.arange(1, len(after) + 1) / rate, vel[1, moving])
    values = np.concatenate([before, clip, after])
    t = np.arange(len(values)) / rate
    for j in np.where(rot)[0]:
        lo, hi = ranges[names[j]]
        sway = np.radians(wobble(rng, t, spec.sway_deg)) if spec.sway_deg > 0 else 0.0
        values[:, j] = np.clip(values[:, j] + sway, lo + np.radians(1), hi - np.radians(1))
    return CoordinateTable(t, list(names), values)


def replay_trials(sources: list[ReplaySource], spec: ReplaySpec, model_path: str | Path = DEFAULT_MODEL,
                  progress: Iterable | None = None) -> list[Trial]:
    """``spec.subjects`` random bodies, each replaying ``spec.trials_per_subject`` varied sources; an
    activity is drawn with ``spec.activity_weights``, then one of its sources."""
    if not sources:
        raise ValueError("no replay sources")
    rng = np.random.default_rng(spec.seed)
    generic = load_model(model_path)
    acts = sorted({s.activity for s in sources})
    w_act = {a: spec.activity_weights.get(a, 1.0) for a in acts}
    p = np.array([w_act[s.activity] / sum(x.activity == s.activity for x in sources) for s in sources])
    p = p / p.sum()
    names = coordinate_names(generic)
    missing = [n for n in sources[0].coords.names if n not in names]
    if missing:
        raise ValueError(f"replay sources have coordinates the model lacks: {missing}")
    cs = generic.getCoordinateSet()  # scaling a body leaves its joints' ranges as they are
    ranges = {n: (cs.get(n).getRangeMin(), cs.get(n).getRangeMax()) for n in names}
    trials: list[Trial] = []
    for _ in (range(spec.subjects) if progress is None else progress):
        subject = random_subject(rng)
        model = scaled_copy(generic, subject.factors)
        picks = rng.choice(len(sources), spec.trials_per_subject, p=p)
        motions = [(sources[i].activity, varied(sources[i], rng, spec, subject.height_m, ranges)) for i in picks]
        trials.extend(subject_trials(model, subject, motions, spec.errors, rng))
    return trials
