"""Configuration: defaults from ``config.yaml``, overridden by a session and then the command line.

Overrides must name keys that exist in the defaults and keep their type, so a typo such as
``frames.contact_sheet_frame=4`` is an error, never a silently ignored setting.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"


class ConfigError(ValueError):
    """Bad configuration; ``problems`` lists every problem found, each naming its source."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def load_defaults(path: Path = DEFAULT_CONFIG_PATH) -> dict[str, Any]:
    with open(path) as fh:
        cfg = yaml.safe_load(fh)
    if not isinstance(cfg, dict):
        raise ConfigError([f"{path}: expected a mapping of sections"])
    return cfg


def _flat_keys(d: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        keys.append(prefix + k)
        if isinstance(v, dict):
            keys += _flat_keys(v, prefix + k + ".")
    return keys


def _type_ok(default: Any, value: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, list)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return type(value) is type(default)


# Sections whose keys are the user's own names (marker names or patterns), not a fixed schema.
OPEN_SECTIONS = {"ik.marker_weights", "ik.video_coordinate_weights", "ik.keypoint_weights", "scale.keypoint_weights",
                "scale.static_coordinate_weights", "scale.static_coordinate_targets_deg"}
# Open sections whose values are angles (any number) instead of weights (>= 0).
ANGLE_SECTIONS = {"scale.static_coordinate_targets_deg"}


def _merge(base: dict, over: dict, source: str, known: list[str], prefix: str, problems: list[str]) -> None:
    if prefix.rstrip(".") in OPEN_SECTIONS:
        angles = prefix.rstrip(".") in ANGLE_SECTIONS
        for key, value in over.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (value < 0 and not angles):
                problems.append(f"{source}: '{prefix}{key}' must be " + ("an angle in degrees" if angles else "a weight >= 0")
                                + f", got {value!r}")
            else:
                base[str(key)] = float(value)
        return
    for key, value in over.items():
        full = prefix + str(key)
        if key not in base:
            close = difflib.get_close_matches(full, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else " See config.yaml for the keys that exist."
            problems.append(f"{source}: unknown setting '{full}'.{hint}")
            continue
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                problems.append(f"{source}: '{full}' is a section; give it keys, e.g. {full}.<key>=<value>")
            else:
                _merge(default, value, source, known, full + ".", problems)
            continue
        if not _type_ok(default, value):
            problems.append(
                f"{source}: '{full}' must be {type(default).__name__} like the default {default!r}, "
                f"got {value!r}"
            )
            continue
        base[key] = float(value) if isinstance(default, float) else value


@dataclass(frozen=True)
class Allowed:
    """What values one setting may take: a number range (ends open or closed), a whole number, or one
    of a few words. ``note`` says what the setting means, for the message."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # True: lo itself is not allowed
    hi_open: bool = False
    integer: bool = False
    choices: tuple[str, ...] = ()
    interval: bool = False  # [] or [start, end] with 0 <= start < end
    note: str = ""

    def ok(self, v: Any) -> bool:
        if self.choices:
            return v in self.choices
        if self.interval:
            return v == [] or (isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v) and 0 <= v[0] < v[1])
        if not _is_number(v) or v != v:  # NaN
            return False
        if self.integer and float(v) != int(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def describe(self) -> str:
        if self.choices:
            text = "one of " + ", ".join(self.choices)
        elif self.interval:
            text = "[] (automatic) or [start, end] in seconds with 0 <= start < end"
        else:
            kind = "a whole number" if self.integer else "a number"
            lo = None if self.lo is None else f"{'above' if self.lo_open else 'at least'} {self.lo:g}"
            hi = None if self.hi is None else f"{'below' if self.hi_open else 'at most'} {self.hi:g}"
            text = f"{kind} " + " and ".join(x for x in (lo, hi) if x) if (lo or hi) else kind
        return text + (f" ({self.note})" if self.note else "")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _share(note: str = "") -> Allowed:
    return Allowed(0.0, 1.0, note=note)


def _positive(note: str = "") -> Allowed:
    return Allowed(0.0, lo_open=True, note=note)


def _at_least(lo: float, note: str = "", integer: bool = False) -> Allowed:
    return Allowed(float(lo), integer=integer, note=note)


# Allowed values of the settings, by their dotted name in config.yaml. Checked when a session's
# configuration is put together (defaults < session.yaml < --set), so a wrong value is refused with
# the place it was set before any work starts. Checks that need the data (the filter cutoff against
# the video's Nyquist frequency) are made by the stage that has it.
RANGES: dict[str, Allowed] = {
    "run.log_level": Allowed(choices=("debug", "info", "warning", "error")),
    "frames.min_fps": _positive("frames per second"),
    "frames.max_fps": _positive("frames per second"),
    "frames.max_missing_frame_share": _share("a share of the frames, 0-1"),
    "frames.irregular_interval_share": Allowed(0.0, 1.0, lo_open=True, note="a share of the median frame interval"),
    "frames.contact_sheet_frames": _at_least(1, "frames per camera", integer=True),
    "frames.contact_sheet_tile_width_px": _at_least(16, "pixels", integer=True),
    "calibration.intrinsics_min_views": _at_least(3, "checkerboard views", integer=True),
    "calibration.intrinsics_max_views": _at_least(3, "checkerboard views", integer=True),
    "calibration.intrinsics_outlier_factor": Allowed(1.0, lo_open=True, note="times the median view error"),
    "calibration.extrinsics_warn_px": _positive("pixels"),
    "calibration.extrinsics_fail_px": _positive("pixels"),
    "keypoints.backend": Allowed(choices=("auto", "mediapipe", "blazepose-torch", "json")),
    "keypoints.landmark_passes": _at_least(1, "passes", integer=True),
    "keypoints.device": Allowed(choices=("auto", "cpu", "cuda")),
    "keypoints.precision": Allowed(choices=("auto", "float32", "float16")),
    "keypoints.batch_frames": _at_least(1, "frames per batch", integer=True),
    "keypoints.min_presence": _share("a confidence, 0-1"),
    "keypoints.max_people": _at_least(1, "people per video or frame, the subject included", integer=True),
    "keypoints.min_detection_confidence": _share("a confidence, 0-1"),
    "keypoints.people_search_s": _at_least(0, "seconds; 0 = every frame"),
    "keypoints.workers": _at_least(0, "processes; 0 = one per CPU core", integer=True),
    "keypoints.max_track_gap_s": _at_least(0, "seconds"),
    "keypoints.max_track_distance": _positive("a share of body height"),
    "keypoints.track_predict_frames": _at_least(0, "frames", integer=True),
    "keypoints.track_resize_free": _at_least(0, "an |log size ratio|"),
    "keypoints.framing_weight": _at_least(0, "a weight; 0 = movement only"),
    "keypoints.same_person_max_error": _positive("body heights"),
    "keypoints.swap_prior": _at_least(0, "body heights"),
    "keypoints.overlay_frames": _at_least(0, "frames; 0 = no overlay image", integer=True),
    "sync.max_lag_s": _positive("seconds"),
    "sync.rate_hz": _positive("Hz"),
    "sync.lowpass_hz": _positive("Hz"),
    "sync.edge_trim_periods": Allowed(0.0, 1.0, lo_open=True, note="a share of the cutoff's period"),
    "sync.min_overlap_share": Allowed(0.0, 1.0, lo_open=True, note="a share of the shorter recording"),
    "sync.min_pair_correlation": Allowed(-1.0, 1.0, note="a correlation"),
    "sync.warn_correlation": Allowed(-1.0, 1.0, note="a correlation"),
    "sync.still_speed": _at_least(0, "body heights per second; 0 = no check"),
    "triangulate.min_confidence": _share("a confidence, 0-1"),
    "triangulate.outlier_px": _positive("pixels"),
    "triangulate.outlier_scale": _at_least(0, "times the median reprojection error"),
    "filter.cutoff_hz": _at_least(0, "Hz; 0 = by activity; it must also stay below half the video's frame rate"),
    "filter.cutoffs_hz.static": _positive("Hz"),
    "filter.cutoffs_hz.walking": _positive("Hz"),
    "filter.cutoffs_hz.jumping": _positive("Hz"),
    "filter.cutoffs_hz.squats": _positive("Hz"),
    "filter.cutoffs_hz.other": _positive("Hz"),
    "filter.measurement_std_m": _positive("metres"),
    "filter.reprojection_ref_px": _positive("pixels"),
    "filter.jerk_std": _positive("m/s^3"),
    "filter.gate_sigma": _positive("standard deviations"),
    "filter.outlier_half_window": _at_least(1, "frames either side", integer=True),
    "filter.outlier_floor_m": _at_least(0, "metres"),
    "filter.outlier_k": _positive("robust standard deviations"),
    "filter.max_gap_s": _at_least(0, "seconds"),
    "filter.min_span_s": _at_least(0, "seconds"),
    "augment.max_gap_s": _at_least(0, "seconds"),
    "augment.device": Allowed(choices=("auto", "cpu", "cuda")),
    "scale.markers": Allowed(choices=("auto", "augmented", "video")),
    "scale.static_window_s": _positive("seconds"),
    "scale.time_range_s": Allowed(interval=True),
    "scale.warn_static_rms_mm": _positive("millimetres"),
    "ik.accuracy": _positive("OpenSim's default 1e-5"),
    "ik.flag_rms_mm": _positive("millimetres"),
    "analyse.activity": Allowed(choices=("auto", "squats", "sit_to_stand", "jump", "walking", "other")),
    "analyse.smooth_hz": _positive("Hz"),
    "analyse.min_depth_m": _positive("metres"),
    "analyse.min_knee_flexion_deg": _positive("degrees"),
    "analyse.rep_prominence_share": Allowed(0.0, 1.0, lo_open=True, note="a share of the deepest dip"),
    "analyse.standing_share": Allowed(0.0, 1.0, lo_open=True, hi_open=True, note="a share of the deepest dip"),
    "analyse.partial_share": _share("a share of the deepest full repetition, 0-1"),
    "analyse.min_rep_s": _at_least(0, "seconds"),
    "analyse.bottom_band_share": _share("a share of the repetition's depth, 0-1"),
    "analyse.pause_speed_share": _share("a share of the repetition's fastest movement, 0-1"),
    "analyse.max_gap_s": _at_least(0, "seconds"),
    "analyse.asymmetry_min_deg": _at_least(0, "degrees"),
    "report.dpi": _at_least(50, "dots per inch", integer=True),
    "compare.max_shift_s": _at_least(0, "seconds; 0 = no time shift search"),
    "batch.gpu_per_task": Allowed(0.0, 1.0, lo_open=True, note="a share of one GPU"),
    "batch.cpus_per_task": Allowed(0.0, lo_open=True, note="CPUs"),
    "batch.max_retries": _at_least(0, "retries", integer=True),
    "batch.local_cpus": _at_least(0, "CPUs; 0 = all cores", integer=True),
}
# Pairs (low, high) that must keep their order.
ORDERED = [("frames.min_fps", "frames.max_fps"), ("calibration.intrinsics_min_views", "calibration.intrinsics_max_views"),
           ("calibration.extrinsics_warn_px", "calibration.extrinsics_fail_px")]


def _lookup(d: Any, key: str) -> tuple[bool, Any]:
    for part in key.split("."):
        if not isinstance(d, dict) or part not in d:
            return False, None
        d = d[part]
    return True, d


def setting_source(key: str, overrides: list[tuple[str, dict[str, Any] | None]], default: str = "config.yaml") -> str:
    """Where the effective value of ``key`` was set: the last override naming it, else the defaults."""
    for source, over in reversed(overrides):
        if _lookup(over, key)[0]:
            return source
    return default


def range_problems(cfg: dict[str, Any], overrides: list[tuple[str, dict[str, Any] | None]] = ()) -> list[str]:
    """Every setting of ``cfg`` outside its range in RANGES, each naming the setting, the value, what
    is allowed and where it was set."""
    problems = []
    for key, allowed in RANGES.items():
        found, value = _lookup(cfg, key)
        if found and not allowed.ok(value):
            problems.append(f"{setting_source(key, list(overrides))}: '{key}' is {value!r}; allowed: {allowed.describe()}")
    for lo_key, hi_key in ORDERED:
        (f1, lo), (f2, hi) = _lookup(cfg, lo_key), _lookup(cfg, hi_key)
        if f1 and f2 and _is_number(lo) and _is_number(hi) and lo > hi:
            where = setting_source(hi_key, list(overrides), setting_source(lo_key, list(overrides)))
            problems.append(f"{where}: '{lo_key}' ({lo!r}) is above '{hi_key}' ({hi!r}); the first must not exceed the second")
    return problems


def apply_overrides(cfg: dict[str, Any], overrides: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Return a copy of ``cfg`` with each ``(source, nested_overrides)`` applied in order.

    Raises ConfigError listing every unknown key, type mismatch and value out of range (RANGES),
    each with its source.
    """
    out = copy.deepcopy(cfg)
    known = _flat_keys(cfg)
    problems: list[str] = []
    for source, over in overrides:
        if over is None:
            continue
        if not isinstance(over, dict):
            problems.append(f"{source}: settings must be a mapping of sections, got {type(over).__name__}")
            continue
        _merge(out, over, source, known, "", problems)
    if not problems:
        problems = range_problems(out, overrides)
    if problems:
        raise ConfigError(problems)
    for key, allowed in RANGES.items():  # 2.0 given for a count is 2
        found, value = _lookup(out, key)
        if found and allowed.integer:
            node = out
            for part in key.split(".")[:-1]:
                node = node[part]
            node[key.rsplit(".", 1)[-1]] = int(value)
    return out


def parse_set_args(items: list[str]) -> dict[str, Any]:
    """``["frames.min_fps=25", ...]`` -> nested dict; values are parsed as YAML (numbers, lists, bools)."""
    nested: dict[str, Any] = {}
    problems = []
    for item in items:
        if "=" not in item:
            problems.append(f"--set {item}: expected KEY=VALUE, e.g. --set frames.min_fps=25")
            continue
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    if problems:
        raise ConfigError(problems)
    return nested


def section_digest(cfg: dict[str, Any], sections: tuple[str, ...]) -> str:
    """A stable hash of the named config sections (what a stage's outputs depend on)."""
    blob = json.dumps({s: cfg.get(s) for s in sections}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
