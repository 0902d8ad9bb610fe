"""Reference joint angles: a reference .mot as it is, or a 3D marker .trc solved on our model.

Used by ``app.py compare`` and by the pipeline's ``compare`` stage (``pipeline/compare.py``).
A .trc is recognised by its marker names (``recognise_marker_set``):

- a lab's mocap markers (``biomech.landmarks.MOCAP_MARKERS``: ``r.ASIS``, ``R_HJC``, ...): our model with
  its mocap marker set, scaled on the lab's static trial with our measurements, then IK;
- our 20 video keypoint names (``Neck``, ``RKnee``, ...; e.g. the demo session's true 3D keypoints, or
  another markerless tool's 3D output): our model with its ``video`` marker set, the same way.

A user's own model works with its scale and IK setup files. Without a static file the model is scaled
on the stillest window of the trial's own file (``stillest_window``), with a warning.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biomech.compare import CompareError, marker_coverage, marker_set_names
from biomech.ik import IkResult, named_values, resolve_weights, run_ik, setup_weights
from biomech.landmarks import MARKER_SETS
from biomech.measurements import measurements_for
from biomech.model_builder import DEFAULT_MODEL, MODEL_NAME
from biomech.mot import CoordinateTable, read_mot
from biomech.opensim_env import load_model
from biomech.scaling import ScaleResult, scale_with_measurements, scale_with_setup
from biomech.synthetic_motion import coordinate_names
from biomech.trc import read_trc

MOCAP_MARKER_SET = DEFAULT_MODEL.parent / f"{MODEL_NAME}_markers_mocap.xml"
VIDEO_MARKER_SET = DEFAULT_MODEL.parent / f"{MODEL_NAME}_markers_video.xml"
# The marker sets a reference .trc may carry, and our model's marker-set file for each.
MARKER_SET_FILES = {"mocap": MOCAP_MARKER_SET, "video": VIDEO_MARKER_SET}
MARKER_SET_WORDS = {"mocap": "lab mocap markers", "video": "the 20 video keypoints"}
ANGLE_SUFFIXES = (".mot", ".sto")
# The reference is scaled on the stillest half second of the lab's static trial (the video side: scale.static_window_s).
REFERENCE_STATIC_WINDOW_S = 0.5
# A static trial is a standing, neutral pose. The 20 video keypoints (joint centres, heel and toes) do not
# fix hip rotation, subtalar and MTP with straight knees, nor arm rotation and pronation with straight
# arms: without help the static solve twists hip against subtalar against MTP (-50/+57/+49 deg on the
# demo's truth) and marker placement then bakes that twist into the foot markers. Weak pulls to neutral
# (as the ik stage's video_coordinate_weights) keep the static pose anatomical.
VIDEO_STATIC_COORDINATE_WEIGHTS = {"hip_rotation_*": 0.01, "subtalar_angle_*": 0.01, "mtp_angle_*": 0.01,
                                   "arm_rot_*": 0.01, "pro_sup_*": 0.01}
# The same freedom in every near-straight-knee frame of the trial: a reference solved from video keypoints
# gets weak pulls to neutral there too (on top of ik.video_coordinate_weights), so it does not wander
# where the keypoints leave a joint free. On the demo's truth (pure sagittal squats) this took the
# reference's ankle from 3.8 to 0.3 deg MAE against the analytic angle (knee 0.7 -> 0.4 deg; both after the
# standing offset) and hip rotation / subtalar / MTP from 16-18 deg of range to 0-3 deg.
VIDEO_REFERENCE_IK_WEIGHTS = {"hip_rotation_*": 0.001, "subtalar_angle_*": 0.001, "mtp_angle_*": 0.001}


def recognise_marker_set(names: list[str]) -> str | None:
    """Which of our marker sets a .trc's marker names are: 'mocap' (a lab's protocol) or 'video' (our 20
    video keypoint names), whichever has the larger share of its markers in the file; None for neither."""
    have = set(names)
    shares = {k: len(have & set(MARKER_SETS[k])) / len(MARKER_SETS[k]) for k in MARKER_SET_FILES}
    best = max(shares, key=shares.get)
    return best if shares[best] > 0 else None


def solve_mocap(
    trial_trc: str | Path,
    static_trc: str | Path,
    height_m: float,
    mass_kg: float,
    out_dir: str | Path,
    *,
    marker_set: str = "mocap",
    model: str | Path | None = None,
    marker_set_xml: str | Path | None = None,
    scale_setup: str | Path | None = None,
    ik_setup: str | Path | None = None,
    weights: dict[str, float] | None = None,
    coordinate_weights: dict[str, float] | None = None,
    name: str | None = None,
    time_range_s: tuple[float, float] | None = None,
) -> tuple[ScaleResult, IkResult]:
    """Scale on ``static_trc`` and solve IK for ``trial_trc``; files go to ``out_dir``. ``marker_set``
    ('mocap' or 'video') picks our model's marker set; ``weights`` are marker weights (names or patterns,
    as ``ik.marker_weights``), ``coordinate_weights`` IK's weak pulls towards neutral (``run_ik``)."""
    out_dir = Path(out_dir)
    if model is None:
        model = DEFAULT_MODEL
        marker_set_xml = marker_set_xml or MARKER_SET_FILES[marker_set]
    if scale_setup:
        scaled = scale_with_setup(scale_setup, model, static_trc, out_dir, height_m, mass_kg,
                                  window_s=REFERENCE_STATIC_WINDOW_S, marker_set_xml=marker_set_xml, name="mocap_scaled")
    else:
        static_names = set(read_trc(static_trc).names)
        markers = list(MARKER_SETS[marker_set])
        w = resolve_weights(markers, weights, base=setup_weights(ik_setup) if ik_setup else None)
        pulls = (named_values(coordinate_names(load_model(Path(model))), VIDEO_STATIC_COORDINATE_WEIGHTS)
                 if marker_set == "video" else None)
        scaled = scale_with_measurements(measurements_for(marker_set, static_names), w, model, static_trc, out_dir,
                                         height_m, mass_kg, window_s=REFERENCE_STATIC_WINDOW_S,
                                         marker_set_xml=marker_set_xml, name="mocap_scaled",
                                         coordinate_weights=pulls)
    ik = run_ik(scaled.model_path, trial_trc, out_dir, name=name or f"{Path(trial_trc).stem}_mocap",
                weights=weights, setup_xml=ik_setup, time_range_s=time_range_s, coordinate_weights=coordinate_weights)
    return scaled, ik


@dataclass
class Reference:
    """The reference's joint angles and what they came from (``about``: JSON-ready), with warnings."""

    table: CoordinateTable
    about: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def reference_angles(
    ref_path: str | Path,
    static_path: str | Path | None,
    height_m: float | None,
    mass_kg: float | None,
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    marker_set_xml: str | Path | None = None,
    scale_setup: str | Path | None = None,
    ik_setup: str | Path | None = None,
    weights: dict[str, float] | None = None,
    video_coordinate_weights: dict[str, float] | None = None,
) -> Reference:
    """The reference joint angles of ``ref_path``: a .mot/.sto read as it is, or a .trc solved on our model
    (module docstring; scaled on ``static_path``, or on the trial's own stillest window when None).
    ``video_coordinate_weights`` are used for a .trc of video keypoints, as the ik stage uses them (plus
    ``VIDEO_REFERENCE_IK_WEIGHTS``).
    CompareError when the file cannot be a reference (missing, unknown markers, no subject)."""
    ref_path = Path(ref_path)
    if not ref_path.is_file():
        raise CompareError(f"{ref_path}: reference file not found")
    if ref_path.suffix.lower() in ANGLE_SUFFIXES:
        return Reference(read_mot(ref_path), {"kind": "angles", "file": str(ref_path)})
    if ref_path.suffix.lower() != ".trc":
        raise CompareError(f"{ref_path}: a reference is joint angles (.mot/.sto) or 3D markers (.trc)")
    if not (height_m and mass_kg):
        raise CompareError(f"{ref_path}: a marker .trc reference needs the subject's height and mass, to scale the model")
    warnings: list[str] = []
    names = read_trc(ref_path).names
    if static_path is None:
        static_path = ref_path
        warnings.append(f"{ref_path.name}: no static mocap trial to scale the model on; scaling on the stillest "
                        f"{0.5:g} s of this trial's own markers instead (give the static trial a mocap: file for "
                        "subject-specific segment lengths from a standing pose)")
    static_path = Path(static_path)
    if not static_path.is_file():
        raise CompareError(f"{static_path}: static mocap file not found")
    kind = "mocap"
    if model is None or marker_set_xml:  # a user's own model may carry its markers inside
        if model is None:
            kind = recognise_marker_set(names)
            if kind is None:
                raise CompareError(
                    f"{ref_path}: its markers ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''}) are neither a "
                    f"lab's mocap markers ({', '.join(list(MARKER_SETS['mocap'])[:4])}, ...) nor our 20 video keypoints "
                    "(Neck, RShoulder, ...); give the model and marker set that match the lab's protocol "
                    "(--model/--marker-set)")
            static_kind = recognise_marker_set(read_trc(static_path).names)
            if static_kind != kind:
                raise CompareError(f"{static_path}: the static file has {MARKER_SET_WORDS.get(static_kind, 'other markers')}, "
                                   f"the trial's {ref_path.name} has {MARKER_SET_WORDS[kind]}; both must use the same markers")
        set_xml = Path(marker_set_xml) if marker_set_xml else MARKER_SET_FILES[kind]
        set_names = marker_set_names(set_xml)
        for trc in dict.fromkeys([static_path, ref_path]):
            note = marker_coverage(trc, read_trc(trc).names, set_names, f"the marker set {set_xml.name}")
            if note:
                warnings.append(note)
    scaled, ik = solve_mocap(ref_path, static_path, height_m, mass_kg, out_dir, marker_set=kind, model=model,
                             marker_set_xml=marker_set_xml, scale_setup=scale_setup, ik_setup=ik_setup, weights=weights,
                             coordinate_weights={**VIDEO_REFERENCE_IK_WEIGHTS, **(video_coordinate_weights or {})}
                             if kind == "video" else None)
    s, sc = ik.summary(), scaled.summary()
    about = {"kind": "markers", "file": str(ref_path), "markers": kind, "marker_words": MARKER_SET_WORDS[kind],
             "model": str(model or DEFAULT_MODEL), "scaled_on": str(static_path),
             "scaled_on_trial_itself": static_path == ref_path,
             "static_marker_rms_mm": sc["static_marker_rms_mm"], "ik_frames": s["frames"],
             "ik_marker_rms_mean_mm": s["marker_rms_mean_mm"], "ik_marker_rms_max_mm": s["marker_rms_max_mm"],
             "mot": str(ik.mot_path)}
    return Reference(read_mot(ik.mot_path), about, warnings)
