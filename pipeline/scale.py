"""Stage ``scale``: the static trial's markers -> our model scaled to the subject.

Markers: the augmented .trc (video keypoints + 43 ``_study`` markers) when the augment stage is
available under the current config, otherwise the 20 video keypoints straight from the filter stage
(``scale.markers: auto``); ``augmented`` / ``video`` force one (``marker_source``, which the ik stage
shares). OpenSim's ScaleTool writes the outputs (biomech/scaling.py); ``ScaleOutput`` is what the
ik stage and the report read:

  output/<static>/scale/scaled.osim, scaled_scale_factors.xml, scaled_static.mot, scaled_scale.json
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from biomech.ik import named_values, resolve_weights
from biomech.landmarks import MARKER_SETS
from biomech.measurements import measurements_for
from biomech.model_builder import DEFAULT_MODEL
from biomech.opensim_env import load_model
from biomech.scaling import scale_with_measurements, scale_with_setup
from biomech.synthetic_motion import coordinate_names
from biomech.trc import read_trc
from pipeline.augment import AugmentOutput
from pipeline.filter import FilterOutput
from pipeline.runner import StageContext, StageInputError
from sessions.settings import Settings

# The ScaleTool's output name: scaled.osim, scaled_scale.json, ...
SCALED = "scaled"


@dataclass(frozen=True)
class ScaleOutput:
    """The scaled model file and the scaling's summary (static pose fit, time range, factors)."""

    model: Path
    summary: dict[str, Any]

    @classmethod
    def model_path(cls, stage_dir: Path) -> Path:
        return stage_dir / f"{SCALED}.osim"

    @classmethod
    def load(cls, stage_dir: Path) -> ScaleOutput:
        return cls(cls.model_path(stage_dir), json.loads((stage_dir / f"{SCALED}_scale.json").read_text()))


def uses_augmented_markers(settings: Settings) -> bool:
    """scale.markers: augmented, or auto with the augment stage in run.stages."""
    choice = settings.scale.markers
    return choice == "augmented" or (choice == "auto" and "augment" in settings.run.stages)


def marker_source(ctx: StageContext, trial: str | None = None) -> tuple[Path, str]:
    """(marker .trc, 'augmented' | 'video') for a trial, per ``scale.markers``."""
    if uses_augmented_markers(ctx.settings):
        path = AugmentOutput.trc_path(ctx.stage_dir("augment", trial))
        if not path.is_file():
            raise StageInputError(f"{path}: augmented markers not found; the augment stage of trial "
                                  f"{trial or ctx.trial.name!r} has not finished (see output/log.txt)")
        return path, "augmented"
    return FilterOutput.trc_path(ctx.stage_dir("filter", trial)), "video"


def model_file(settings: Settings) -> Path:
    m = settings.scale.model
    path = Path(m) if m else DEFAULT_MODEL
    if not path.is_file():
        raise StageInputError(f"{path}: model file (scale.model) not found")
    return path


def ik_marker_weights(settings: Settings) -> dict[str, float]:
    """ik.marker_weights as name/pattern -> float."""
    return {str(k): float(v) for k, v in settings.ik.marker_weights.items()}


def keypoint_weights(patterns: Mapping[str, float]) -> dict[str, float]:
    """IK weight of each video keypoint used beside the augmented markers (ik.keypoint_weights: name or
    pattern -> weight; a keypoint no entry names gets 0, i.e. is left out)."""
    pats = {str(k): float(v) for k, v in (patterns or {}).items()}
    return resolve_weights(list(MARKER_SETS["video"]), pats, default=0.0) if pats else {}


def static_pulls(coordinates: list[str], patterns: Mapping[str, float]) -> dict[str, float]:
    """scale.static_coordinate_weights resolved to the model's ``coordinates`` (name -> weight > 0)."""
    return {n: w for n, w in named_values(coordinates, dict(patterns)).items() if w > 0}


def static_targets_rad(coordinates: list[str], patterns: Mapping[str, float]) -> dict[str, float]:
    """scale.static_coordinate_targets_deg resolved to the model's ``coordinates`` (name -> radians); the
    coordinates not named are pulled towards their default values."""
    return {n: float(np.radians(v)) for n, v in named_values(coordinates, dict(patterns)).items()}


def marker_set_name(source: str) -> str:
    return "study" if source == "augmented" else "video"


def static_trial(ctx: StageContext):
    return next((t for t in ctx.session.trials if t.kind == "static"), None)


def scale_inputs(ctx: StageContext) -> list[Path]:
    cfg = ctx.settings.scale
    return [model_file(ctx.settings)] + [Path(f) for f in (cfg.setup, cfg.marker_set) if f]


def run_scale(ctx: StageContext) -> None:
    cfg = ctx.settings.scale
    subject = ctx.session.subject
    trc_path, source = marker_source(ctx)
    model = model_file(ctx.settings)
    window = tuple(cfg.time_range_s) if cfg.time_range_s else None
    if cfg.setup:
        result = scale_with_setup(cfg.setup, model, trc_path, ctx.out_dir, subject.height_m, subject.mass_kg,
                                  window_s=cfg.static_window_s, marker_set_xml=cfg.marker_set or None,
                                  time_range_s=window, name=SCALED)
    else:
        names = set(read_trc(trc_path).names)
        set_name = marker_set_name(source)
        markers = [m for m in MARKER_SETS[set_name] if m in names]
        weights = resolve_weights(markers, ik_marker_weights(ctx.settings))
        if source == "augmented":  # the triangulated keypoints next to the augmented markers
            weights.update({k: w for k, w in keypoint_weights(cfg.keypoint_weights).items() if w > 0 and k in names})
        coordinates = coordinate_names(load_model(model)) if cfg.static_coordinate_weights else []
        result = scale_with_measurements(measurements_for(set_name, names), weights, model, trc_path, ctx.out_dir,
                                         subject.height_m, subject.mass_kg, marker_set_xml=cfg.marker_set or None,
                                         time_range_s=window, window_s=cfg.static_window_s, name=SCALED,
                                         coordinate_weights=static_pulls(coordinates, cfg.static_coordinate_weights),
                                         coordinate_targets_rad=static_targets_rad(coordinates,
                                                                                   cfg.static_coordinate_targets_deg))
    summary = result.summary()
    ctx.summary.update(markers=source, **{k: summary[k] for k in ("time_range_s", "static_marker_rms_mm", "static_marker_max_mm")},
                       message=f"{source} markers, static pose RMS {summary['static_marker_rms_mm']} mm "
                               f"({summary['time_range_s'][0]}-{summary['time_range_s'][1]} s)")
    if summary["static_marker_rms_mm"] > cfg.warn_static_rms_mm:
        ctx.log.warning("%s/scale: the scaled model fits the static pose with %.1f mm RMS (> %.0f mm); check that "
                        "the subject stood still with every marker visible", ctx.trial.name,
                        summary["static_marker_rms_mm"], cfg.warn_static_rms_mm)
