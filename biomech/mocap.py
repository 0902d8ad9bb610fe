"""Joint angles from marker-based mocap: scale a model on the lab's static trial, then IK.

Used by ``app.py compare`` when the reference is a mocap .trc. By default our model with its
marker set for the lab's landmark names (``biomech.landmarks.MOCAP_MARKERS``) and our measurements;
a user's own model works with its scale and IK setup files.
"""
from __future__ import annotations

from pathlib import Path

from biomech.ik import IkResult, run_ik, setup_weights
from biomech.landmarks import MOCAP_MARKERS
from biomech.measurements import measurements_for
from biomech.model_builder import DEFAULT_MODEL, MODEL_NAME
from biomech.scaling import ScaleResult, scale_with_measurements, scale_with_setup
from biomech.trc import read_trc

MOCAP_MARKER_SET = DEFAULT_MODEL.parent / f"{MODEL_NAME}_markers_mocap.xml"


def solve_mocap(
    trial_trc: str | Path,
    static_trc: str | Path,
    height_m: float,
    mass_kg: float,
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    marker_set_xml: str | Path | None = None,
    scale_setup: str | Path | None = None,
    ik_setup: str | Path | None = None,
    weights: dict[str, float] | None = None,
    name: str | None = None,
    time_range_s: tuple[float, float] | None = None,
) -> tuple[ScaleResult, IkResult]:
    """Scale on ``static_trc`` and solve IK for ``trial_trc``; files go to ``out_dir``."""
    out_dir = Path(out_dir)
    if model is None:
        model = DEFAULT_MODEL
        marker_set_xml = marker_set_xml or MOCAP_MARKER_SET
    if scale_setup:
        scaled = scale_with_setup(scale_setup, model, static_trc, out_dir, height_m, mass_kg,
                                  marker_set_xml=marker_set_xml, name="mocap_scaled")
    else:
        static_names = set(read_trc(static_trc).names)
        w = {m: 1.0 for m in MOCAP_MARKERS}
        if ik_setup:
            w.update(setup_weights(ik_setup))
        if weights:
            w.update({k: v for k, v in weights.items() if k in w})
        scaled = scale_with_measurements(measurements_for("mocap", static_names), w, model, static_trc, out_dir,
                                         height_m, mass_kg, marker_set_xml=marker_set_xml, name="mocap_scaled")
    ik = run_ik(scaled.model_path, trial_trc, out_dir, name=name or f"{Path(trial_trc).stem}_mocap",
                weights=weights, setup_xml=ik_setup, time_range_s=time_range_s)
    return scaled, ik
