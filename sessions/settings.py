"""Typed settings: one frozen dataclass per section of config.yaml, built from the effective
configuration (defaults + session + --set, checked by sessions/config.py).

config.yaml stays the single source of every value and its documentation: these classes name and
type the keys and hold no defaults (tests/test_config.py checks that their fields are exactly the
keys of config.yaml). Lists become tuples and mappings read-only, so settings cannot be changed on
the way through the pipeline. Stages read them as ``ctx.settings.<section>.<key>``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Mapping, TypeVar, get_type_hints

S = TypeVar("S", bound="Section")


class Section:
    """Building a section from its dict: every key present, nothing extra."""

    @classmethod
    def from_dict(cls: type[S], raw: Mapping[str, Any], name: str) -> S:
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        missing, extra = [n for n in names if n not in raw], [k for k in raw if k not in names]
        if missing or extra:
            raise ValueError(f"config section {name!r} does not match its settings class: "
                             f"missing {missing}, unknown {extra}")
        return cls(**{n: _frozen(raw[n]) for n in names})


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


@dataclass(frozen=True)
class RunSettings(Section):
    stages: tuple[str, ...]
    progress: bool
    log_level: str


@dataclass(frozen=True)
class FramesSettings(Section):
    min_fps: float
    max_fps: float
    max_missing_frame_share: float
    irregular_interval_share: float
    contact_sheet: bool
    contact_sheet_frames: int
    contact_sheet_tile_width_px: int


@dataclass(frozen=True)
class CalibrationSettings(Section):
    intrinsics_min_views: int
    intrinsics_max_views: int
    intrinsics_outlier_factor: float
    fix_k3: bool
    extrinsics_warn_px: float
    extrinsics_fail_px: float


@dataclass(frozen=True)
class KeypointsSettings(Section):
    backend: str
    json_dir: str
    device: str
    precision: str
    batch_frames: int
    min_presence: float
    landmark_passes: int
    max_people: int
    min_detection_confidence: float
    people_search_s: float
    workers: int
    max_track_gap_s: float
    max_track_distance: float
    track_predict_frames: int
    track_resize_free: float
    framing_weight: float
    same_person_max_error: float
    swap_prior: float
    overlay_frames: int
    overlay_video: bool


@dataclass(frozen=True)
class SyncSettings(Section):
    max_lag_s: float
    rate_hz: float
    lowpass_hz: float
    edge_trim_periods: float
    min_overlap_share: float
    min_pair_correlation: float
    warn_correlation: float
    still_speed: float


@dataclass(frozen=True)
class TriangulateSettings(Section):
    min_confidence: float
    outlier_px: float
    outlier_scale: float
    fix_swaps: bool


@dataclass(frozen=True)
class FilterSettings(Section):
    cutoff_hz: float
    cutoffs_hz: Mapping[str, float]
    measurement_std_m: float
    reprojection_ref_px: float
    jerk_std: float
    gate_sigma: float
    outlier_half_window: int
    outlier_floor_m: float
    outlier_k: float
    max_gap_s: float
    span_keypoints: tuple[str, ...]
    min_span_s: float


@dataclass(frozen=True)
class AugmentSettings(Section):
    weights: str
    max_gap_s: float
    floor_offset: bool
    device: str


@dataclass(frozen=True)
class ScaleSettings(Section):
    markers: str
    model: str
    marker_set: str
    setup: str
    static_window_s: float
    time_range_s: tuple[float, ...]
    warn_static_rms_mm: float
    keypoint_weights: Mapping[str, float]
    static_coordinate_weights: Mapping[str, float]
    static_coordinate_targets_deg: Mapping[str, float]


@dataclass(frozen=True)
class IKSettings(Section):
    marker_weights: Mapping[str, float]
    video_coordinate_weights: Mapping[str, float]
    keypoint_weights: Mapping[str, float]
    setup: str
    accuracy: float
    flag_rms_mm: float
    plot: bool


@dataclass(frozen=True)
class AnalyseSettings(Section):
    activity: str
    smooth_hz: float
    min_depth_m: float
    min_knee_flexion_deg: float
    rep_prominence_share: float
    standing_share: float
    partial_share: float
    min_rep_s: float
    bottom_band_share: float
    pause_speed_share: float
    max_gap_s: float
    asymmetry_min_deg: float
    plot: bool


@dataclass(frozen=True)
class CompareSettings(Section):
    max_shift_s: float
    shift_coordinates: tuple[str, ...]
    relative_to_heading: bool
    translations: bool
    plot: bool


@dataclass(frozen=True)
class ReportSettings(Section):
    curves: tuple[str, ...]
    dpi: int
    pdf: bool


@dataclass(frozen=True)
class VerdictSettings(Section):
    """Each check's (doubtful, unusable) limits."""

    subject_coverage: tuple[float, float]
    sync_confidence: tuple[float, float]
    triangulated_share: tuple[float, float]
    reprojection_px_per_1000px: tuple[float, float]
    span_share: tuple[float, float]
    filled_share: tuple[float, float]
    bridged_frame_share: tuple[float, float]
    static_marker_rms_mm: tuple[float, float]
    ik_marker_rms_mm: tuple[float, float]
    ik_flagged_share: tuple[float, float]
    out_of_range_share: tuple[float, float]


@dataclass(frozen=True)
class BatchSettings(Section):
    gpu_stages: tuple[str, ...]
    gpu_per_task: float
    cpus_per_task: float
    max_retries: int
    local_cpus: int


@dataclass(frozen=True)
class Settings:
    """The whole effective configuration, one typed section per config.yaml section."""

    run: RunSettings
    frames: FramesSettings
    calibration: CalibrationSettings
    keypoints: KeypointsSettings
    sync: SyncSettings
    triangulate: TriangulateSettings
    filter: FilterSettings
    augment: AugmentSettings
    scale: ScaleSettings
    ik: IKSettings
    analyse: AnalyseSettings
    compare: CompareSettings
    report: ReportSettings
    verdict: VerdictSettings
    batch: BatchSettings

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """From the effective config dict (sessions.config.effective_config / a session's .config)."""
        sections = get_type_hints(cls)  # section name -> its settings class
        extra = [k for k in config if k not in sections]
        if extra:
            raise ValueError(f"config has sections without a settings class: {extra}")
        return cls(**{name: section.from_dict(config[name], name) for name, section in sections.items()})


def default_settings() -> Settings:
    """config.yaml's values, typed (for tools and tests that run an algorithm outside a session)."""
    from sessions.config import load_defaults

    return Settings.from_config(load_defaults())
