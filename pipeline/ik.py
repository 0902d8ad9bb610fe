"""Stage ``ik``: a trial's markers -> joint angles with OpenSim's InverseKinematicsTool.

Every trial (the static one too) is solved with the static trial's scaled model (``ScaleOutput``); a
session without one, or whose static trial failed, gets the generic model scaled uniformly to the
subject's height, with a warning. The markers are the ones ``scale.marker_source`` picks. Joint angles
that depend on a keypoint that was only bridged over a long gap are left empty there.

Outputs (``IKOutput``): output/<trial>/ik/<trial>.mot (degrees), <trial>_ik_marker_errors.sto,
<trial>_ik_summary.json, angles.png (main joint angles and the per-frame marker error)
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from biomech.anthropometry import GENERIC_HEIGHT_M
from biomech.ik import run_ik
from biomech.landmarks import BODY_KEYPOINTS, MARKER_SETS
from biomech.model_builder import MODEL_NAME
from biomech.mot import CoordinateTable, read_mot, write_mot
from biomech.opensim_env import load_model, osim
from biomech.synthetic_motion import scaled_copy
from biomech.trc import read_trc
from core.gaps import runs_mask
from core.keypoints import VIDEO_KEYPOINTS
from pipeline.augment import AugmentOutput
from pipeline.runner import StageContext, StageInputError
from pipeline.scale import (ScaleOutput, marker_set_name, ik_marker_weights, keypoint_weights, marker_source,
                            model_file, static_trial)


@dataclass(frozen=True)
class IKOutput:
    """A trial's joint angles: the .mot OpenSim wrote (degrees for rotations, metres for translations)."""

    path: Path
    angles: CoordinateTable

    @classmethod
    def mot_path(cls, stage_dir: Path, trial: str) -> Path:
        return stage_dir / f"{trial}.mot"

    @classmethod
    def load(cls, stage_dir: Path, trial: str) -> IKOutput:
        path = cls.mot_path(stage_dir, trial)
        if not path.is_file():
            raise StageInputError(f"{path}: joint angles not found; the ik stage of this trial has not finished")
        return cls(path, read_mot(path))


PLOTTED = [("pelvis_tilt", "pelvis_list", "pelvis_rotation"), ("hip_flexion_r", "hip_flexion_l"),
           ("hip_adduction_r", "hip_adduction_l"), ("knee_angle_r", "knee_angle_l"),
           ("ankle_angle_r", "ankle_angle_l"), ("lumbar_extension", "lumbar_bending", "lumbar_rotation")]


def _generic_scaled(ctx: StageContext, why: str) -> Path:
    """Our generic model scaled uniformly to the subject's height (no scaled model from a static trial)."""
    model = load_model(model_file(ctx.settings))
    model.initSystem()
    f = ctx.session.subject.height_m / GENERIC_HEIGHT_M
    bodies = model.getBodySet()
    scaled = scaled_copy(model, {bodies.get(i).getName(): (f, f, f) for i in range(bodies.getSize())})
    path = ctx.out_dir / f"{MODEL_NAME}_height_scaled.osim"
    scaled.printToXML(str(path))
    ctx.log.warning("%s/ik: %s; using the generic model scaled to %.2f m (a static trial gives subject-specific "
                    "segment lengths)", ctx.trial.name, why, ctx.session.subject.height_m)
    return path


def scaled_model(ctx: StageContext) -> tuple[Path | None, str]:
    """(the static trial's scaled model, '') or (None, why there is none)."""
    static = static_trial(ctx)
    if static is None:
        return None, "the session has no static trial"
    path = ScaleOutput.model_path(ctx.stage_dir("scale", static.name))
    if not path.is_file():
        if static.name == ctx.trial.name:
            raise StageInputError(f"{path}: no scaled model; the scale stage of this static trial has not finished")
        return None, f"the static trial {static.name!r} has no scaled model (its scale stage did not finish; see output/log.txt)"
    return path, ""


def ik_inputs(ctx: StageContext) -> list[Path]:
    """The model file when there is no scaled model from a static trial (that one is an upstream output)."""
    cfg = ctx.settings.ik
    files = [Path(cfg.setup)] if cfg.setup else []
    return files + ([model_file(ctx.settings)] if scaled_model(ctx)[0] is None else [])


def run_ik_stage(ctx: StageContext) -> None:
    cfg = ctx.settings.ik
    trc_path, source = marker_source(ctx)
    if not trc_path.is_file():
        raise StageInputError(f"{trc_path}: markers not found; the {'augment' if source == 'augmented' else 'filter'} "
                              "stage of this trial has not finished")
    model, why = scaled_model(ctx)
    model = model or _generic_scaled(ctx, why)
    # Only the chosen marker set takes part (augmented files carry the video keypoints too).
    weights = ik_marker_weights(ctx.settings)
    chosen = MARKER_SETS[marker_set_name(source)]
    if not ctx.settings.scale.model:
        weights.update({m: 0.0 for s in MARKER_SETS.values() for m in s if m not in chosen})
        if source == "augmented":  # the triangulated keypoints next to the augmented markers
            weights.update(keypoint_weights(cfg.keypoint_weights))
    coord_w = {str(k): float(v) for k, v in cfg.video_coordinate_weights.items()} if source == "video" else None
    result = run_ik(model, trc_path, ctx.out_dir, name=ctx.trial.name, weights=weights,
                    setup_xml=cfg.setup or None, accuracy=float(cfg.accuracy), flag_rms_m=cfg.flag_rms_mm / 1000,
                    coordinate_weights=coord_w)
    # The angles OpenSim wrote, read once: emptied where unseen, checked and plotted in memory.
    osim_model = load_model(model)
    angles, emptied = empty_unseen_coordinates(osim_model, read_mot(result.mot_path), keypoint_gaps(ctx, source, trc_path))
    if emptied:
        write_mot(result.mot_path, angles, in_degrees=True, name=result.mot_path.stem)
    s = result.summary()
    out_of_range = coordinates_out_of_range(osim_model, angles)
    ctx.summary.update(markers=source, frames=s["frames"], marker_rms_mean_mm=s["marker_rms_mean_mm"],
                       flagged_share=round(len(s["flagged_frames"]) / max(s["frames"], 1), 4),
                       model_scaled_on="static trial" if not why else "height only", model_note=why,
                       coordinates_emptied_frames=emptied,
                       marker_rms_max_mm=s["marker_rms_max_mm"], flagged_frames=len(s["flagged_frames"]),
                       frames_per_second=s["frames_per_second"], out_of_range=out_of_range,
                       message=f"{s['frames']} frames, marker RMS {s['marker_rms_mean_mm']} mm, "
                               f"{len(s['flagged_frames'])} flagged")
    if s["flagged_frames"]:
        ctx.log.warning("%s/ik: %d frames with marker RMS over %.0f mm (first: %s); their angles are less reliable",
                        ctx.trial.name, len(s["flagged_frames"]), cfg.flag_rms_mm, s["flagged_frames"][:5])
    if emptied:
        ctx.log.warning("%s/ik: joint angles left empty where a keypoint they depend on was not seen: %s",
                        ctx.trial.name, ", ".join(f"{k} ({v} frames)" for k, v in emptied.items()))
    if out_of_range:
        ctx.log.warning("%s/ik: outside the model's range of motion: %s", ctx.trial.name,
                        ", ".join(f"{k} ({v} frames)" for k, v in out_of_range.items()))
    if ctx.settings.ik.plot:
        plot_angles(angles, result.mot_path.stem, result.time_s, result.marker_rms_m, cfg.flag_rms_mm,
                    ctx.out_dir / "angles.png")


def keypoint_gaps(ctx: StageContext, source: str, trc_path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(time_s of the marker file, keypoint -> (frames,) True where it was not seen and only bridged)."""
    trc = read_trc(trc_path)
    if source == "augmented":
        report = AugmentOutput.load_gaps(ctx.stage_dir("augment"))  # runs as 1-based inclusive frames
        return trc.time_s, {k: runs_mask(len(trc.time_s), [(a - 1, b) for a, b in runs])
                            for k, runs in report["bridged"].items()}
    return trc.time_s, {k: ~np.all(np.isfinite(trc.marker(k)), axis=1) for k in VIDEO_KEYPOINTS
                        if k in trc.names and not np.all(np.isfinite(trc.marker(k)))}


def coordinate_keypoints(model: osim.Model) -> dict[str, set[str]]:
    """Coordinate -> video keypoints that place the two bodies its joint connects (empty set for a
    model whose body names we do not know: nothing is left out then)."""
    out = {}
    cs = model.getCoordinateSet()
    for i in range(cs.getSize()):
        c = cs.get(i)
        joint = c.getJoint()
        bodies = [joint.getParentFrame().findBaseFrame().getName(), joint.getChildFrame().findBaseFrame().getName()]
        out[c.getName()] = {k for b in bodies for k in BODY_KEYPOINTS.get(b, ())}
    return out


def empty_unseen_coordinates(model: osim.Model, mot: CoordinateTable,
                             gaps: tuple[np.ndarray, dict[str, np.ndarray]]) -> tuple[CoordinateTable, dict[str, int]]:
    """``mot`` with every coordinate set to NaN in the frames where a keypoint it depends on was only
    bridged, and coordinate -> frames emptied."""
    time_s, masks = gaps
    if not masks:
        return mot, {}
    rows = np.clip(np.searchsorted(time_s, mot.time_s - 1e-9), 0, len(time_s) - 1)
    deps = coordinate_keypoints(model)
    values = mot.values.copy()
    emptied = {}
    for j, name in enumerate(mot.names):
        bad = np.zeros(len(mot.time_s), bool)
        for k in deps.get(name, ()):
            if k in masks:
                bad |= masks[k][rows]
        if bad.any():
            values[bad, j] = np.nan
            emptied[name] = int(bad.sum())
    return (replace(mot, values=values) if emptied else mot), emptied


def coordinates_out_of_range(model: osim.Model, mot: CoordinateTable) -> dict[str, int]:
    """Coordinate -> number of frames outside the model's range (ranges are physiological for ours)."""
    cs = model.getCoordinateSet()
    out = {}
    for j, n in enumerate(mot.names):
        if not cs.contains(n) or cs.get(n).getMotionType() != osim.Coordinate.Rotational:
            continue
        c = cs.get(n)
        v = mot.values[:, j]
        bad = int(np.sum((v < c.getRangeMin() - 1e-6) | (v > c.getRangeMax() + 1e-6)))
        if bad:
            out[n] = bad
    return out


def plot_angles(mot: CoordinateTable, name: str, time_s: np.ndarray, rms_m: np.ndarray, flag_mm: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    deg = mot.in_degrees()
    fig, axes = plt.subplots(len(PLOTTED) + 1, 1, figsize=(9, 2.0 * (len(PLOTTED) + 1)), sharex=True)
    for ax, group in zip(axes, PLOTTED):
        for n in group:
            if n in mot.names:
                style = "--" if n.endswith("_l") else "-"
                ax.plot(mot.time_s, deg[:, mot.names.index(n)], style, lw=1.2, label=n)
        ax.set_ylabel("deg")
        ax.legend(fontsize=7, loc="upper right", ncol=3)
        ax.grid(alpha=0.3)
    ax = axes[-1]
    ax.plot(time_s, rms_m * 1000, color="k", lw=1, label="marker RMS")
    ax.axhline(flag_mm, color="tab:red", ls=":", label=f"flag {flag_mm:g} mm")
    ax.set_ylabel("mm")
    ax.set_xlabel("time (s)")
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{name}: joint angles (solid right, dashed left)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
