"""The ``compare`` stage: a dynamic trial's joint angles against its ground truth, when it has one.

A trial whose session.yaml entry names ``mocap:`` is compared in the run (every other trial: n/a):

- ``mocap: mocap/<file>.mot`` (or .sto): reference joint angles, compared as they are;
- ``mocap: mocap/<file>.trc``: 3D markers, solved on our model (``biomech.mocap.reference_angles``): a
  lab's mocap markers with the model's mocap marker set, or our 20 video keypoint names (the demo's
  true keypoints) with its video marker set; the model is scaled on the static trial's ``mocap:`` file
  or, when the static trial has none, on the stillest 0.5 s of the trial's own file (with a warning).

Then ``biomech.compare.compare_tables``: the time shift (up to ``compare.max_shift_s``), per coordinate
RMSE / MAE / max error / offset / r / ROM difference / limits of agreement. The pelvis angles of both
sides are first re-expressed relative to each side's median facing direction (``compare.relative_to_heading``),
since a lab's world frame and our checkerboard's rarely face the same way; translations are left out
unless ``compare.translations``.

Outputs (output/<trial>/compare/):
  comparison.json   ``Comparison.summary()`` plus "reference": what it was compared against
  comparison.csv    one row per coordinate
  comparison.png    our curves over the reference's, after the time shift
  bland_altman.png  per main coordinate: mean vs difference, bias and 95 % limits of agreement
  reference/        the reference's scaled model, IK angles and logs (marker references only)
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from biomech.analysis import relative_to_heading
from biomech.compare import (FLEXION_COORDINATES, PLOT_COORDINATES, CompareError, compare_tables,
                             plot_bland_altman, write_comparison)
from biomech.mocap import ANGLE_SUFFIXES, MARKER_SET_FILES, reference_angles
from biomech.model_builder import DEFAULT_MODEL
from biomech.mot import CoordinateTable, is_translation
from pipeline.ik import IKOutput
from pipeline.scale import ik_marker_weights
from pipeline.runner import StageContext, StageInputError
from sessions.session import Trial


def no_mocap(trial: Trial) -> str | None:
    """Why the compare stage does not apply to ``trial`` (n/a), or None when it does."""
    return None if trial.mocap is not None else "no mocap: file in session.yaml"


def static_mocap(ctx: StageContext) -> Path | None:
    """The static trial's mocap markers (.trc) to scale the reference model on, when there are any."""
    static = next((t for t in ctx.session.trials if t.kind == "static"), None)
    if static is None or static.mocap is None or static.mocap.suffix.lower() != ".trc":
        return None
    return static.mocap


def compare_inputs(ctx: StageContext) -> list[Path]:
    """The trial's mocap file; for markers also the static trial's and our model with its marker sets."""
    mocap = ctx.trial.mocap
    if mocap is None:
        return []
    if mocap.suffix.lower() in ANGLE_SUFFIXES:
        return [mocap]
    static = static_mocap(ctx)
    return [mocap] + ([static] if static is not None else []) + [DEFAULT_MODEL] + list(MARKER_SET_FILES.values())


def rotations_only(table: CoordinateTable) -> CoordinateTable:
    """The table without its translations (pelvis_tx/ty/tz: in each side's own world frame)."""
    keep = [j for j, n in enumerate(table.names) if not is_translation(n, table.translations)]
    return replace(table, names=[table.names[j] for j in keep], values=table.values[:, keep])


def run_compare(ctx: StageContext) -> None:
    cfg = ctx.settings.compare
    ours_ik = IKOutput.load(ctx.stage_dir("ik"), ctx.trial.name)
    ours_path = ours_ik.path
    mocap = ctx.trial.mocap
    static = static_mocap(ctx) if mocap.suffix.lower() == ".trc" else None
    static_trial = next((t for t in ctx.session.trials if t.kind == "static"), None)
    if mocap.suffix.lower() == ".trc" and static is None and static_trial is not None and static_trial.mocap is not None:
        ctx.log.warning("%s/compare: the static trial's mocap: %s is not a .trc of markers, so it cannot scale the "
                        "reference model", ctx.trial.name, static_trial.mocap.name)
    subject = ctx.session.subject
    ik = ctx.settings.ik
    try:
        ref = reference_angles(mocap, static, subject.height_m, subject.mass_kg, ctx.out_dir / "reference",
                               weights=ik_marker_weights(ctx.settings),
                               video_coordinate_weights={str(k): float(v) for k, v in ik.video_coordinate_weights.items()})
    except CompareError as exc:
        raise StageInputError(str(exc)) from None
    ours, reference = ours_ik.angles, ref.table
    if cfg.relative_to_heading:
        ours, reference = relative_to_heading(ours)[0], relative_to_heading(reference)[0]
    if not cfg.translations:
        ours, reference = rotations_only(ours), rotations_only(reference)
    try:
        cmp = compare_tables(ours, reference, max_shift_s=float(cfg.max_shift_s),
                             shift_coordinates=[str(n) for n in cfg.shift_coordinates] or None)
    except CompareError as exc:
        raise StageInputError(f"{ours_path} vs {mocap}: {exc}") from None
    about = dict(ref.about, trial_mocap=str(mocap), relative_to_heading=bool(cfg.relative_to_heading),
                 translations=bool(cfg.translations), ours=str(ours_path), warnings=ref.warnings)
    write_comparison(cmp, ctx.out_dir, plot=bool(cfg.plot), about=about, plot_coordinates=PLOT_COORDINATES)
    if cfg.plot:
        plot_bland_altman(cmp, ctx.out_dir / "bland_altman.png")

    s = cmp.summary()
    by_name = {c.name: c for c in cmp.coordinates}
    flexion = {n: round(by_name[n].mae, 2) for n in FLEXION_COORDINATES if n in by_name}
    mean_flexion = round(float(np.mean(list(flexion.values()))), 2) if flexion else None
    what = ("reference angles" if ref.about["kind"] == "angles" else
            f"{ref.about['marker_words']} solved on our model" + (" (scaled on the trial itself)"
                                                                   if ref.about.get("scaled_on_trial_itself") else ""))
    ctx.summary.update(reference=ref.about["kind"], markers=ref.about.get("markers"), mocap=mocap.name,
                       time_shift_s=s["time_shift_s"], shift_mean_r=s["shift_mean_r"], frames_compared=s["frames_compared"],
                       mean_mae_deg=s["mean_mae_deg"], mean_rmse_deg=s["mean_rmse_deg"], flexion_mae_deg=flexion,
                       mean_flexion_mae_deg=mean_flexion, warnings=ref.warnings + cmp.warnings,
                       message=f"vs {mocap.name} ({what}): hip/knee/ankle flexion MAE {mean_flexion} deg, "
                               f"all angles {s['mean_mae_deg']} deg, shift {s['time_shift_s'] * 1000:+.0f} ms")
    for w in ref.warnings + cmp.warnings:
        ctx.log.warning("%s/compare: %s", ctx.trial.name, w)
