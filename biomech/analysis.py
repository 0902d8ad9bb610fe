"""Joint-angle analysis of one trial: squat repetitions, or range of motion and peaks per coordinate.

Pure functions and dataclasses; the ``analyse`` stage (pipeline/analyse.py) reads the files,
calls ``analyse_trial`` and writes the results. Angles come in as a ``CoordinateTable`` (radians,
translations in metres, as ``biomech.mot.read_mot`` returns them); everything reported is in degrees,
centimetres and seconds, with the unit in each name.

Facing direction. The world frame is the calibration board's, so a subject who faced away from the
board reads as, say, -90 deg of pelvis rotation. ``relative_to_heading`` re-expresses the pelvis
orientation (pelvis_tilt, pelvis_list, pelvis_rotation: body-fixed Z-X-Y rotations, as in our model and
OpenSim's gait models) and the horizontal pelvis translations in a frame turned about the vertical by the
trial's median heading (the direction the pelvis' forward axis points, projected on the floor). The
joint angles (hip, knee, ...) are relative to their parent segments already and do not change.

Squat repetitions (``segment_reps``, ``squat_analysis``). The signal is the pelvis drop: standing pelvis
height (95th percentile of the trial) minus pelvis height (pelvis_ty of the .mot, else the midHip
keypoint's height), low-passed at ``smooth_hz``; without a pelvis height, the mean knee flexion. Each peak
of the drop that stands out from its surroundings by at least ``rep_prominence_share`` of the deepest
drop is one repetition, so a sway during a pause at the bottom is not a second repetition. A repetition
starts where the pelvis leaves the standing band (less than ``standing_share`` of the deepest drop below
standing height) and ends where it regains it, each moved out to where the pelvis starts (stops)
moving: slower than ``pause_speed_share`` of the repetition's fastest movement, or turning; between two
repetitions with no standing in between, at the highest point between them. A repetition that reaches the start or the end of the trial without
standing is reported as cut (``cut_start`` / ``cut_end``) and not counted; one whose depth is below
``partial_share`` of the deepest full one is ``partial``; the others are ``full``. A dip shorter than
``min_rep_s`` or with less than ``min_knee_flexion_deg`` of knee flexion is not a repetition.
Durations: the pause is the time around the deepest point within ``bottom_band_share`` of the
repetition's depth while the pelvis moves slower than ``pause_speed_share`` of the repetition's fastest
movement; descent is start to pause, ascent pause to end.

Signs (our model's, as OpenSim's): flexion, adduction, dorsiflexion and lumbar extension positive;
pelvis_tilt positive = posterior tilt (the pelvis tips backwards), so leaning forward reads negative.
Hip abduction is reported as a positive number of degrees of abduction (minus the lowest adduction).

Asymmetry index per repetition: ``(R - L) / mean(R, L) * 100`` (percent): **positive when the right
side's value is larger** (e.g. the right knee flexes further), negative when the left's is. Only where
the mean of both sides is at least ``asymmetry_min_deg`` (smaller peaks give meaningless ratios).

Empty frames. IK leaves a coordinate empty (NaN) where a keypoint it depends on was not seen. Peaks,
ranges and means skip those frames; a repetition or coordinate that had empty frames says so in its
``flags``, and a metric with no data at all is None, never a crash. A repetition's peak of a coordinate
that was empty anywhere in its bottom band (within ``bottom_band_share`` of its depth, where squat peaks
lie) is None too: the highest value seen would pass for a peak it is not, and would skew asymmetry
and the session means. The segmentation signal is bridged
linearly over empty frames; a repetition overlapping a bridged stretch longer than ``max_gap_s`` is
flagged as uncertain.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
from scipy.signal import find_peaks

from core.signal import zero_lag_lowpass
from sessions.settings import AnalyseSettings
from biomech.mot import CoordinateTable

ACTIVITIES = ("squats", "sit_to_stand", "jump", "walking", "other")
# Trial name -> activity with analyse.activity: auto (the first pattern that matches).
ACTIVITY_PATTERNS = (("squats", r"squat"), ("sit_to_stand", r"sts|sit"), ("jump", r"jump|hop|drop"),
                     ("walking", r"walk|gait|run"))
SIDES = ("r", "l")
PELVIS_ANGLES = ("pelvis_tilt", "pelvis_list", "pelvis_rotation")
# Per-repetition peaks: (metric name, coordinate without side, 'max' or 'min' (reported negated)).
PEAKS = (("knee_flexion_peak", "knee_angle", "max"), ("hip_flexion_peak", "hip_flexion", "max"),
         ("ankle_dorsiflexion_peak", "ankle_angle", "max"), ("hip_adduction_peak", "hip_adduction", "max"),
         ("hip_abduction_peak", "hip_adduction", "min"))
# Metrics that get a left/right asymmetry index (peaks of flexion: positive, well away from zero).
ASYMMETRY = ("knee_flexion_peak", "hip_flexion_peak", "ankle_dorsiflexion_peak")
AT_DEPTH = (("pelvis_tilt_at_bottom_deg", "pelvis_tilt"), ("lumbar_extension_at_bottom_deg", "lumbar_extension"))


def activity_from_name(name: str) -> str:
    """The activity a trial's name says (``ACTIVITY_PATTERNS``), else 'other'."""
    low = name.lower()
    return next((a for a, pattern in ACTIVITY_PATTERNS if re.search(pattern, low)), "other")


# ---------------------------------------------------------------------------------------------
# Facing direction


def _rot(axis: str, a: np.ndarray) -> np.ndarray:
    """(frames, 3, 3) rotation matrices about x, y or z by angles ``a`` (frames,) radians."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    rows = {"x": [[o, z, z], [z, c, -s], [z, s, c]], "y": [[c, z, s], [z, o, z], [-s, z, c]],
            "z": [[c, -s, z], [s, c, z], [z, z, o]]}[axis]
    return np.moveaxis(np.array(rows, dtype=float), (0, 1), (-2, -1))


def pelvis_matrices(tilt_rad: np.ndarray, list_rad: np.ndarray, rotation_rad: np.ndarray) -> np.ndarray:
    """(frames, 3, 3) pelvis orientation in the world: R = Rz(tilt) Rx(list) Ry(rotation)."""
    return _rot("z", tilt_rad) @ _rot("x", list_rad) @ _rot("y", rotation_rad)


def zxy_angles(R: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tilt, list, rotation) radians, each (frames,), of R = Rz Rx Ry (the inverse of pelvis_matrices)."""
    tilt = np.arctan2(-R[..., 0, 1], R[..., 1, 1])
    lst = np.arcsin(np.clip(R[..., 2, 1], -1.0, 1.0))
    rotation = np.arctan2(-R[..., 2, 0], R[..., 2, 2])
    return tilt, lst, rotation


def heading_rad(R: np.ndarray) -> np.ndarray:
    """(frames,) direction of the pelvis' forward axis (x) on the floor, about +Y from world +X, radians."""
    fwd = R[..., :, 0]
    return np.arctan2(-fwd[..., 2], fwd[..., 0])


def _wrap(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def circular_median_rad(a: np.ndarray) -> float | None:
    """Median of angles (radians) about their circular mean, NaN skipped; None without data."""
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return None
    mean = math.atan2(np.mean(np.sin(a)), np.mean(np.cos(a)))
    return float(_wrap(mean + np.median(_wrap(a - mean))))


@dataclass
class Heading:
    """The trial's facing direction.

    median_world_deg: median heading in the world (board) frame, degrees about +Y (up) from world +X.
    relative_deg: (frames,) heading relative to that median (NaN where the pelvis angles are empty).
    """

    median_world_deg: float | None
    relative_deg: np.ndarray

    def to_json(self) -> dict[str, Any]:
        rel = self.relative_deg[np.isfinite(self.relative_deg)]
        return {"median_world_deg": _r(self.median_world_deg),
                "relative_min_deg": _r(rel.min()) if rel.size else None,
                "relative_max_deg": _r(rel.max()) if rel.size else None,
                "note": "pelvis_tilt, pelvis_list, pelvis_rotation and pelvis_tx/tz are expressed in a frame turned "
                        "by median_world_deg about the vertical, so they read relative to the subject's own "
                        "facing direction"}


def relative_to_heading(table: CoordinateTable) -> tuple[CoordinateTable, Heading]:
    """The table with the pelvis orientation (and horizontal translation) re-expressed relative to the
    trial's median heading (module docstring); a table without the three pelvis angles is returned as is."""
    if not all(n in table.names for n in PELVIS_ANGLES):
        return table, Heading(None, np.full(len(table.time_s), np.nan))
    t, l, r = (table.column(n) for n in PELVIS_ANGLES)
    R = pelvis_matrices(np.nan_to_num(t), np.nan_to_num(l), np.nan_to_num(r))
    seen = np.isfinite(t) & np.isfinite(l) & np.isfinite(r)
    psi = np.where(seen, heading_rad(R), np.nan)
    psi0 = circular_median_rad(psi)
    if psi0 is None:
        return table, Heading(None, psi)
    turn = _rot("y", np.array([-psi0]))[0]  # world -> the subject's median facing frame
    t2, l2, r2 = zxy_angles(turn @ R)
    values = table.values.copy()
    for name, v in zip(PELVIS_ANGLES, (t2, l2, r2)):
        values[:, table.names.index(name)] = np.where(seen, v, np.nan)
    if "pelvis_tx" in table.names and "pelvis_tz" in table.names:
        i, k = table.names.index("pelvis_tx"), table.names.index("pelvis_tz")
        p = np.stack([values[:, i], np.zeros(len(values)), values[:, k]], axis=1)
        p = p @ turn.T
        values[:, i], values[:, k] = p[:, 0], p[:, 2]
    return replace(table, values=values), Heading(math.degrees(psi0), np.degrees(_wrap(psi - psi0)))


# ---------------------------------------------------------------------------------------------
# Signals


def bridge_gaps(time_s: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x with NaN runs bridged linearly (held at the ends), (frames,) length in s of the run each
    frame belongs to: 0 where x was seen). All-NaN x stays NaN."""
    x = np.asarray(x, float)
    seen = np.isfinite(x)
    run_s = np.zeros(len(x))
    if seen.all() or not seen.any():
        return x.copy(), np.where(seen, 0.0, np.inf)
    filled = np.interp(time_s, time_s[seen], x[seen])
    dt = float(np.median(np.diff(time_s))) if len(time_s) > 1 else 0.0
    i = 0
    while i < len(x):
        if not seen[i]:
            j = i
            while j < len(x) and not seen[j]:
                j += 1
            run_s[i:j] = (j - i) * dt
            i = j
        else:
            i += 1
    return filled, run_s


def lowpass(x: np.ndarray, rate_hz: float, cutoff_hz: float) -> np.ndarray:
    """Zero-lag 2nd-order Butterworth (run both ways); unchanged when the cutoff is at or above the
    Nyquist frequency or the signal is too short to filter."""
    if len(x) < 16 or not np.isfinite(x).all():
        return np.asarray(x, float).copy()
    return zero_lag_lowpass(x, rate_hz, cutoff_hz, padlen=15)


def _rate_hz(time_s: np.ndarray) -> float:
    return 1.0 / float(np.median(np.diff(time_s))) if len(time_s) > 1 else 1.0


def _r(v: Any, nd: int = 2) -> Any:
    if v is None:
        return None
    v = float(v)
    return round(v, nd) if math.isfinite(v) else None


# ---------------------------------------------------------------------------------------------
# Repetitions


@dataclass
class RepWindow:
    """One repetition found in the segmentation signal: frame indices into the trial, and its status
    ('full', 'partial', 'cut_start', 'cut_end')."""

    start: int
    bottom: int
    end: int
    pause_start: int
    pause_end: int
    depth: float  # in the signal's unit (m of pelvis drop, or deg of knee flexion)
    status: str = "full"


@dataclass
class Segmentation:
    """What ``segment_reps`` found.

    signal: (frames,) the smoothed depth signal (0 standing, positive deeper), in ``unit``.
    standing_threshold: the top of the standing band, in ``unit``.
    starts_mid_rep / ends_mid_rep: the trial starts / ends outside the standing band.
    """

    reps: list[RepWindow]
    signal: np.ndarray
    unit: str
    standing_threshold: float
    deepest: float
    starts_mid_rep: bool
    ends_mid_rep: bool
    notes: list[str] = field(default_factory=list)


def segment_reps(time_s: np.ndarray, depth: np.ndarray, s: AnalyseSettings, min_depth: float, unit: str,
                 knee_flexion_deg: np.ndarray | None = None) -> Segmentation:
    """Repetitions in a depth signal (module docstring).

    time_s: (frames,) seconds. depth: (frames,) 0 standing, positive deeper (NaN allowed: bridged),
    already smoothed. min_depth: less than this at the deepest point means no repetition at all.
    knee_flexion_deg: (frames,) mean knee flexion, to reject dips without knee flexion (optional).
    """
    d, _ = bridge_gaps(time_s, depth)
    n = len(d)
    if n < 3 or not np.isfinite(d).any():
        return Segmentation([], d, unit, float("nan"), float("nan"), False, False, ["no usable depth signal"])
    deepest = float(np.nanmax(d))
    thr = s.standing_share * deepest
    seg = Segmentation([], d, unit, thr, deepest, bool(d[0] >= thr), bool(d[-1] >= thr))
    if deepest < min_depth:
        seg.notes.append(f"deepest drop {deepest:.3g} {unit} is below the {min_depth:g} {unit} of a repetition")
        seg.starts_mid_rep = seg.ends_mid_rep = False
        return seg
    padded = np.concatenate([[0.0], d, [0.0]])  # standing beyond the ends, so edge peaks are found
    peaks, _ = find_peaks(padded, height=thr, prominence=s.rep_prominence_share * deepest)
    peaks = [int(p) - 1 for p in peaks]
    rate = _rate_hz(time_s)
    speed_all = np.abs(np.gradient(d)) * rate
    for k, p in enumerate(peaks):
        lo = peaks[k - 1] if k > 0 else 0
        hi = peaks[k + 1] if k + 1 < len(peaks) else n - 1
        below = np.flatnonzero(d[lo:p] < thr)
        if below.size:
            start, cut_start = lo + int(below[-1]), False
        elif k > 0:
            start, cut_start = lo + int(np.argmin(d[lo:p + 1])), False
        else:
            start, cut_start = 0, True
        below = np.flatnonzero(d[p:hi + 1] < thr)
        if below.size:
            end, cut_end = p + int(below[0]), False
        elif k + 1 < len(peaks):
            end, cut_end = p + int(np.argmin(d[p:hi + 1])), False
        else:
            end, cut_end = n - 1, True
        bottom = start + int(np.argmax(d[start:end + 1]))
        rep_depth = float(d[bottom])
        # From the band crossings back (and forward) to where the pelvis starts (stops) moving: slower
        # than pause_speed_share of this repetition's fastest movement, or turning.
        still = s.pause_speed_share * float(speed_all[start:end + 1].max())
        floor = seg.reps[-1].end if seg.reps else 0
        while not cut_start and start > floor and speed_all[start] >= still and d[start - 1] <= d[start]:
            start -= 1
        while not cut_end and end < hi and speed_all[end] >= still and d[end + 1] <= d[end]:
            end += 1
        status = "cut_start" if cut_start else "cut_end" if cut_end else "full"
        duration = time_s[end] - time_s[start]
        if status == "full" and duration < s.min_rep_s:
            seg.notes.append(f"a dip of {duration:.2f} s at {time_s[bottom]:.2f} s is shorter than min_rep_s "
                             f"({s.min_rep_s:g} s): not a repetition")
            continue
        if knee_flexion_deg is not None:
            kn = knee_flexion_deg[start:end + 1]
            if np.isfinite(kn).any() and np.nanmax(kn) - np.nanmin(kn) < s.min_knee_flexion_deg and status == "full":
                seg.notes.append(f"a dip at {time_s[bottom]:.2f} s has only {np.nanmax(kn) - np.nanmin(kn):.0f} deg of "
                                 f"knee flexion (< min_knee_flexion_deg {s.min_knee_flexion_deg:g}): not a repetition")
                continue
        slow = (d[start:end + 1] >= (1 - s.bottom_band_share) * rep_depth) & (speed_all[start:end + 1] < still)
        if slow.any():
            # the slow stretch around the bottom: from the first to the last slow frame of the bottom band
            idx = np.flatnonzero(slow) + start
            pause_start, pause_end = int(min(idx[0], bottom)), int(max(idx[-1], bottom))
        else:
            pause_start = pause_end = bottom
        seg.reps.append(RepWindow(start, bottom, end, pause_start, pause_end, rep_depth, status))
    full = [r.depth for r in seg.reps if r.status == "full"]
    if full:
        for r in seg.reps:
            if r.status == "full" and r.depth < s.partial_share * max(full):
                r.status = "partial"
    return seg


def asymmetry_index(right: float | None, left: float | None, min_mean: float) -> float | None:
    """(R - L) / mean(R, L) * 100 in percent: positive when the right side's value is larger; None when
    either is missing or their mean is below ``min_mean``."""
    if right is None or left is None:
        return None
    mean = 0.5 * (right + left)
    if not math.isfinite(mean) or mean < min_mean:
        return None
    return 100.0 * (right - left) / mean


@dataclass
class Rep:
    """One squat repetition; angles in degrees, times in seconds, depth in cm and % of leg length.
    ``None`` where the data needed were empty (see ``flags``)."""

    number: int
    status: str
    start_s: float
    bottom_s: float
    end_s: float
    descent_s: float | None
    pause_s: float | None
    ascent_s: float | None
    depth_cm: float | None
    depth_pct_leg: float | None
    knee_flexion_peak_r_deg: float | None = None
    knee_flexion_peak_l_deg: float | None = None
    hip_flexion_peak_r_deg: float | None = None
    hip_flexion_peak_l_deg: float | None = None
    ankle_dorsiflexion_peak_r_deg: float | None = None
    ankle_dorsiflexion_peak_l_deg: float | None = None
    hip_adduction_peak_r_deg: float | None = None
    hip_adduction_peak_l_deg: float | None = None
    hip_abduction_peak_r_deg: float | None = None
    hip_abduction_peak_l_deg: float | None = None
    pelvis_tilt_at_bottom_deg: float | None = None
    lumbar_extension_at_bottom_deg: float | None = None
    knee_flexion_asymmetry_pct: float | None = None
    hip_flexion_asymmetry_pct: float | None = None
    ankle_dorsiflexion_asymmetry_pct: float | None = None
    flags: str = ""  # '; '-separated: empty frames, bridged signal, ...

    def to_json(self) -> dict[str, Any]:
        return {k: (_r(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


REP_METRICS = [f.name for f in fields(Rep) if f.name.endswith(("_deg", "_pct", "_cm", "_pct_leg")) or f.name in
               ("descent_s", "pause_s", "ascent_s")]


@dataclass
class SquatAnalysis:
    reps: list[Rep]
    segmentation: Segmentation
    signal_source: str  # 'pelvis_ty', 'midHip' or 'knee flexion'
    standing_pelvis_height_m: float | None
    leg_length_m: float | None

    def counted(self) -> list[Rep]:
        return [r for r in self.reps if r.status == "full"]

    def session_stats(self) -> dict[str, dict[str, Any]]:
        """metric -> mean, sd (sample, ddof 1), min, max, n over the full repetitions."""
        out = {}
        for m in REP_METRICS:
            v = np.array([getattr(r, m) for r in self.counted() if getattr(r, m) is not None], float)
            out[m] = {"mean": _r(v.mean()) if v.size else None, "sd": _r(v.std(ddof=1)) if v.size > 1 else None,
                      "min": _r(v.min()) if v.size else None, "max": _r(v.max()) if v.size else None, "n": int(v.size)}
        return out

    def to_json(self) -> dict[str, Any]:
        seg = self.segmentation
        return {
            "reps_full": len(self.counted()),
            "reps_partial": sum(r.status == "partial" for r in self.reps),
            "reps_cut": sum(r.status.startswith("cut") for r in self.reps),
            "starts_mid_rep": seg.starts_mid_rep, "ends_mid_rep": seg.ends_mid_rep,
            "signal": self.signal_source, "signal_unit": seg.unit,
            "standing_threshold": _r(seg.standing_threshold, 4), "deepest": _r(seg.deepest, 4),
            "standing_pelvis_height_m": _r(self.standing_pelvis_height_m, 4), "leg_length_m": _r(self.leg_length_m, 4),
            "asymmetry_sign": "(R - L) / mean(R, L) * 100: positive = right side larger",
            "notes": seg.notes,
            "reps": [r.to_json() for r in self.reps],
            "session": self.session_stats(),
        }


def _window_stat(x: np.ndarray, a: int, b: int, how: str) -> tuple[float | None, int]:
    """(max or min of x[a:b+1] skipping NaN (None if all NaN), number of empty frames)."""
    w = x[a:b + 1]
    ok = np.isfinite(w)
    if not ok.any():
        return None, int(w.size)
    return float(w[ok].max() if how == "max" else w[ok].min()), int((~ok).sum())


def _deg(table: CoordinateTable, name: str) -> np.ndarray | None:
    return np.degrees(table.column(name)) if name in table.names else None


def squat_analysis(table: CoordinateTable, s: AnalyseSettings, pelvis_height_m: np.ndarray | None = None,
                   leg_length_m: float | None = None) -> SquatAnalysis:
    """Squat repetitions and their metrics (module docstring).

    table: the trial's coordinates (radians / metres), pelvis already relative to the heading.
    pelvis_height_m: (frames,) pelvis height to use when the table has no pelvis_ty (e.g. the midHip
    keypoint's height at the table's times). leg_length_m: for the depth as % of leg length (None: not given).
    """
    time_s = table.time_s
    rate = _rate_hz(time_s)
    knees = [k for k in (_deg(table, f"knee_angle_{side}") for side in SIDES) if k is not None]
    knee_mean = None
    if knees and np.isfinite(np.stack(knees)).any():
        with warnings.catch_warnings():  # frames where both knees are empty stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            knee_mean = np.nanmean(np.stack(knees), axis=0)
    height, source = None, None
    if "pelvis_ty" in table.names and np.isfinite(table.column("pelvis_ty")).mean() >= 0.5:
        height, source = table.column("pelvis_ty"), "pelvis_ty"
    elif pelvis_height_m is not None and np.isfinite(pelvis_height_m).mean() >= 0.5:
        height, source = np.asarray(pelvis_height_m, float), "midHip"
    notes = []
    if height is not None:
        raw, gap_s = bridge_gaps(time_s, height)
        smooth = lowpass(raw, rate, s.smooth_hz)
        standing = float(np.nanpercentile(smooth, 95))
        depth, unit, min_depth = standing - smooth, "m", s.min_depth_m
    elif knee_mean is not None:
        raw, gap_s = bridge_gaps(time_s, knee_mean)
        smooth = lowpass(raw, rate, s.smooth_hz)
        depth, unit, min_depth, source = smooth - float(np.nanpercentile(smooth, 5)), "deg", s.min_knee_flexion_deg, \
            "knee flexion"
        notes.append("no pelvis height: repetitions found from knee flexion; no squat depth")
    else:
        seg = Segmentation([], np.full(len(time_s), np.nan), "m", float("nan"), float("nan"), False, False,
                           ["neither pelvis height nor knee flexion: no repetitions"])
        return SquatAnalysis([], seg, "none", None, leg_length_m)
    if knee_mean is not None:
        knee_fill = bridge_gaps(time_s, knee_mean)[0]
    else:
        knee_fill = None
    seg = segment_reps(time_s, depth, s, min_depth, unit, knee_fill if source != "knee flexion" else None)
    seg.notes[:0] = notes
    standing_h = None
    if unit == "m":
        band = seg.signal < seg.standing_threshold
        for w in seg.reps:
            band[w.start + 1:w.end] = False
        h = np.asarray(height, float)
        standing_h = float(np.nanmedian(h[band & np.isfinite(h)])) if (band & np.isfinite(h)).any() else \
            float(np.nanpercentile(h, 95))
    reps = []
    for i, w in enumerate(seg.reps, start=1):
        flags = []
        long_gap = gap_s[w.start:w.end + 1].max() if w.end >= w.start else 0.0
        if long_gap > s.max_gap_s:
            flags.append(f"{source} empty for {long_gap:.2f} s (> max_gap_s {s.max_gap_s:g} s): repetition bounds uncertain")
        t = time_s
        cut_s, cut_e = w.status == "cut_start", w.status == "cut_end"
        depth_cm = pct = None
        if unit == "m":
            low, empty = _window_stat(np.asarray(height, float), w.start, w.end, "min")
            if empty:
                flags.append(f"{source} empty in {empty} of {w.end - w.start + 1} frames: depth from the frames seen")
            if low is not None:
                depth_cm = 100.0 * (standing_h - low)
                pct = 100.0 * (standing_h - low) / leg_length_m if leg_length_m else None
        rep = Rep(i, w.status, float(t[w.start]), float(t[w.bottom]), float(t[w.end]),
                  None if cut_s else float(t[w.pause_start] - t[w.start]), float(t[w.pause_end] - t[w.pause_start]),
                  None if cut_e else float(t[w.end] - t[w.pause_end]), depth_cm, pct)
        bottom_band = np.arange(w.start, w.end + 1)[seg.signal[w.start:w.end + 1] >= (1 - s.bottom_band_share) * w.depth]
        for metric, coord, how in PEAKS:
            for side in SIDES:
                x = _deg(table, f"{coord}_{side}")
                if x is None:
                    continue
                v, empty = _window_stat(x, w.start, w.end, how)
                unseen_bottom = bool((~np.isfinite(x[bottom_band])).any())
                if unseen_bottom:  # the peak is where it was not seen: not measured (no lower bound passed as a peak)
                    v = None
                setattr(rep, f"{metric}_{side}_deg", None if v is None else (v if how == "max" else -v))
                if empty and how == "max":
                    flags.append(f"{coord}_{side} empty in {empty} of {w.end - w.start + 1} frames"
                                 + (", at the bottom too: peaks not measured" if unseen_bottom else ""))
        for attr, coord in AT_DEPTH:
            x = _deg(table, coord)
            if x is None:
                continue
            if np.isfinite(x[w.bottom]):
                setattr(rep, attr, float(x[w.bottom]))
            else:
                vals = x[bottom_band][np.isfinite(x[bottom_band])]
                setattr(rep, attr, float(np.median(vals)) if vals.size else None)
                flags.append(f"{coord} empty at the deepest point" + (": median of the bottom band" if vals.size else ""))
        for metric in ASYMMETRY:
            a = asymmetry_index(getattr(rep, f"{metric}_r_deg"), getattr(rep, f"{metric}_l_deg"), s.asymmetry_min_deg)
            setattr(rep, metric.replace("_peak", "_asymmetry_pct"), a)
        rep.flags = "; ".join(flags)
        reps.append(rep)
    return SquatAnalysis(reps, seg, source, standing_h, leg_length_m)


# ---------------------------------------------------------------------------------------------
# Every activity: range of motion and peaks per coordinate


@dataclass
class CoordinateStats:
    """One coordinate over the trial: degrees (translations: metres, see ``unit``); NaN frames skipped."""

    coordinate: str
    unit: str
    min: float | None
    max: float | None
    range: float | None
    mean: float | None
    sd: float | None
    time_of_min_s: float | None
    time_of_max_s: float | None
    valid_share: float

    def to_json(self) -> dict[str, Any]:
        return {k: (_r(v, 4 if self.unit == "m" else 2) if isinstance(v, float) and k != "valid_share" else v)
                for k, v in asdict(self).items()} | {"valid_share": round(self.valid_share, 4)}


def coordinate_stats(table: CoordinateTable) -> list[CoordinateStats]:
    """Range of motion, peaks and their timing for every coordinate of ``table``."""
    out = []
    values = table.in_degrees()
    for j, name in enumerate(table.names):
        x = values[:, j]
        ok = np.isfinite(x)
        unit = "deg" if table.angle_mask()[j] else "m"
        if not ok.any():
            out.append(CoordinateStats(name, unit, None, None, None, None, None, None, None, 0.0))
            continue
        xi = np.where(ok, x, np.nan)
        lo, hi = int(np.nanargmin(xi)), int(np.nanargmax(xi))
        out.append(CoordinateStats(name, unit, float(x[lo]), float(x[hi]), float(x[hi] - x[lo]), float(np.nanmean(xi)),
                                   float(np.nanstd(xi)), float(table.time_s[lo]), float(table.time_s[hi]),
                                   float(ok.mean())))
    return out


# ---------------------------------------------------------------------------------------------
# The whole trial


@dataclass
class TrialAnalysis:
    """Everything the analyse stage reports for one trial.

    table: the coordinates, pelvis relative to the subject's heading (radians / metres).
    """

    trial: str
    activity: str
    activity_source: str  # 'trial name' or 'analyse.activity'
    table: CoordinateTable
    heading: Heading
    coordinates: list[CoordinateStats]
    squats: SquatAnalysis | None
    flags: list[str]

    def to_json(self) -> dict[str, Any]:
        t = self.table.time_s
        return {
            "trial": self.trial, "activity": self.activity, "activity_from": self.activity_source,
            "frames": int(len(t)), "start_s": _r(t[0], 4) if len(t) else None, "end_s": _r(t[-1], 4) if len(t) else None,
            "rate_hz": _r(_rate_hz(t), 3),
            "units": "angles in degrees, translations in metres, times in seconds (on the trial's clock, as in the .mot)",
            "sign_conventions": "flexion, adduction, dorsiflexion, lumbar extension positive; pelvis_tilt positive = "
                                "posterior (leaning forward reads negative); hip abduction reported as positive degrees",
            "heading": self.heading.to_json(),
            "flags": self.flags,
            "squats": self.squats.to_json() if self.squats else None,
            "coordinates": {c.coordinate: c.to_json() for c in self.coordinates},
        }

    def key_numbers(self) -> dict[str, Any]:
        """The few numbers for the stage summary (and the run's log line)."""
        out: dict[str, Any] = {"activity": self.activity}
        if self.squats is not None:
            sq = self.squats.to_json()
            st = sq["session"]
            out.update(reps=sq["reps_full"], reps_partial=sq["reps_partial"], reps_cut=sq["reps_cut"],
                       knee_flexion_peak_r_deg=st["knee_flexion_peak_r_deg"]["mean"],
                       knee_flexion_peak_l_deg=st["knee_flexion_peak_l_deg"]["mean"],
                       depth_cm=st["depth_cm"]["mean"], depth_pct_leg=st["depth_pct_leg"]["mean"],
                       knee_flexion_asymmetry_pct=st["knee_flexion_asymmetry_pct"]["mean"])
        else:
            rom = {c.coordinate: c.range for c in self.coordinates}
            for name in ("knee_angle_r", "knee_angle_l", "hip_flexion_r", "hip_flexion_l"):
                if rom.get(name) is not None:
                    out[f"{name}_rom_deg"] = _r(rom[name], 1)
        return out

    def message(self) -> str:
        k = self.key_numbers()
        if self.squats is None:
            roms = ", ".join(f"{n.replace('_rom_deg', '')} {v:.0f}" for n, v in k.items() if n.endswith("_rom_deg"))
            return f"{self.activity}: range of motion (deg) {roms or 'n/a'}"
        f = lambda v, fmt: "n/a" if v is None else format(v, fmt)
        text = (f"{k['reps']} reps ({k['reps_partial']} partial, {k['reps_cut']} cut), knee flexion R {f(k['knee_flexion_peak_r_deg'], '.0f')}"
                f" / L {f(k['knee_flexion_peak_l_deg'], '.0f')} deg, depth {f(k['depth_cm'], '.0f')} cm")
        if k["depth_pct_leg"] is not None:
            text += f" ({k['depth_pct_leg']:.0f} % of leg)"
        if k["knee_flexion_asymmetry_pct"] is not None:
            text += f", knee asymmetry {k['knee_flexion_asymmetry_pct']:+.1f} %"
        return text


def analyse_trial(table: CoordinateTable, trial: str, s: AnalyseSettings, pelvis_height_m: np.ndarray | None = None,
                  leg_length_m: float | None = None) -> TrialAnalysis:
    """The analysis of one trial: heading, coordinates, and squat repetitions when it is a squat trial.

    table: coordinates as read from the .mot (radians / metres). pelvis_height_m: (frames,) fallback pelvis
    height at the table's times (midHip keypoint), used without pelvis_ty. leg_length_m: for depth in % of leg.
    """
    if s.activity == "auto":
        activity, source = activity_from_name(trial), "trial name"
    else:
        activity, source = s.activity, "analyse.activity"
    rel, heading = relative_to_heading(table)
    flags = []
    for name in rel.names:
        empty = int((~np.isfinite(rel.column(name))).sum())
        if empty:
            flags.append(f"{name}: {empty} of {len(rel.time_s)} frames empty (not seen); skipped in every metric")
    squats = squat_analysis(rel, s, pelvis_height_m, leg_length_m) if activity == "squats" else None
    return TrialAnalysis(trial, activity, source, rel, heading, coordinate_stats(rel), squats, flags)


def leg_length_from_keypoints(hip_m: np.ndarray, knee_m: np.ndarray, ankle_m: np.ndarray,
                              frames: np.ndarray | None = None) -> float | None:
    """Leg length (m): hip-knee plus knee-ankle keypoint distance, median over ``frames`` (a boolean
    (frames,) mask, e.g. the standing frames; all frames when None or empty), NaN skipped.

    hip_m, knee_m, ankle_m: (frames, 3) keypoint positions of one leg, metres.
    """
    length = np.linalg.norm(hip_m - knee_m, axis=1) + np.linalg.norm(knee_m - ankle_m, axis=1)
    if frames is not None and np.isfinite(length[frames]).any():
        length = length[frames]
    length = length[np.isfinite(length)]
    return float(np.median(length)) if length.size else None
