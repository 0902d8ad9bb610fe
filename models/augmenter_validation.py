"""What the accuracy benchmark measured for one set of augmenter weights, kept next to them and shown in
every session report ("How accurate these angles are").

``python app.py bench accuracy --validation FILE`` (bench/accuracy.py) runs the held-out lab trials through
the pipeline and writes the per-activity errors here, with the sha256 of the weights it measured and the
settings it ran with. The report shows a trial's typical errors only when the weights the
trial was augmented with are those very weights; for a trial run with settings that change the measured
stages it says which sections differ, since the numbers then describe the shipped settings, not the run's.

Format (JSON): {"weights_sha256", "settings", "measured", "level", "subject", "activities":
{activity: {"trial", "phones": {"2": {coordinate: {"vs_same_model_deg", "vs_lab_ik_deg"}}}}}}; activity as
``biomech.analysis.activity_from_name`` names it, coordinates without side (right/left mean).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from biomech.compare import side_mean
from biomech.report import ExpectedAccuracy

# Coordinates reported per activity, in the report's order (sided ones as the right/left mean).
VALIDATED_COORDINATES = ("hip_flexion", "knee_angle", "ankle_angle", "hip_adduction", "hip_rotation",
                         "pelvis_tilt", "pelvis_list", "lumbar_extension")
WORDS = {"hip_flexion": "hip flexion", "knee_angle": "knee flexion", "ankle_angle": "ankle dorsiflexion",
         "hip_adduction": "hip adduction", "hip_rotation": "hip rotation", "pelvis_tilt": "pelvic tilt",
         "pelvis_list": "pelvic obliquity", "lumbar_extension": "lumbar extension"}
# The config sections the measured errors depend on (the stages from sync to IK; the 2D detector is
# simulated by the benchmark, so its section is not one of them).
MEASURED_SECTIONS = ("sync", "triangulate", "filter", "augment", "scale", "ik")
# What the cameras cannot tell apart: the trunk's lean is seen, but how it splits between pelvis and
# lumbar spine moves the keypoints by about a centimetre, inside a detector's errors (README, accuracy).
SPLIT_NOT_SEEN = ("pelvis_tilt", "lumbar_extension")


def validation_path(weights: Path) -> Path:
    """The validation file of ``weights``: augmenter.pt -> augmenter_validation.json."""
    weights = Path(weights)
    return weights.with_name(f"{weights.stem}_validation.json")


def measured_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a config the measured errors depend on (``MEASURED_SECTIONS``), without the weights'
    path (the weights are identified by their sha256)."""
    out = {s: copy.deepcopy(config.get(s, {})) for s in MEASURED_SECTIONS}
    if isinstance(out.get("augment"), dict):
        out["augment"].pop("weights", None)
    return out


def changed_sections(measured: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Dotted names of the settings where ``config`` differs from the ``measured`` ones."""
    now = measured_settings(config)
    out = []
    for section in MEASURED_SECTIONS:
        a, b = measured.get(section, {}), now.get(section, {})
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(section)
    return out


def summarise(rows: list[dict], held_out: set[str], weights_sha256: str, config: dict[str, Any],
              measured: str, level: str = "realistic") -> dict[str, Any]:
    """The validation record of the accuracy benchmark's ``rows`` (bench/accuracy.py run_one): per activity of
    the held-out trials and per number of phones, the MAE (deg, R/L mean) of each ``VALIDATED_COORDINATES``
    against our model solved on the same mocap markers and against the lab's IK, at detector error ``level``.
    A trial the weights were trained or tuned on never counts; a failed session is left out (and said)."""
    from biomech.analysis import activity_from_name

    activities: dict[str, dict] = {}
    failed = []
    for r in rows:
        if r["trial"] not in held_out or r["level"] != level:
            continue
        if "vs_ours_on_mocap" not in r:
            failed.append(f"{r['trial']} ({r['cameras']} phones)")
            continue
        # the activity a user's trial of that movement is analysed as (the lab's names, e.g. DJ3, say nothing)
        act = activities.setdefault(activity_from_name(r.get("activity") or r["trial"]), {"trial": r["trial"], "phones": {}})
        if act["trial"] != r["trial"]:
            raise ValueError(f"two held-out trials of one activity ({act['trial']}, {r['trial']}): "
                             "the validation keeps one per activity")
        act["phones"][str(r["cameras"])] = {
            c: {"vs_same_model_deg": side_mean(r["vs_ours_on_mocap"], c, digits=1),
                "vs_lab_ik_deg": side_mean(r["vs_lab_ik"], c, digits=1)}
            for c in VALIDATED_COORDINATES}
    return {"weights_sha256": weights_sha256, "settings": measured_settings(config), "measured": measured, "level": level,
            "subject": "one lab subject (held-out trials of the shared OpenCap lab-validation subject)",
            "two_d": "simulated phone views with our realistic detector error model (bench/lab_sessions.py)",
            "failed": failed, "activities": activities}


def expected_accuracy(validation: dict[str, Any] | None, weights_sha256: str | None, activity: str, cameras: int,
                      config: dict[str, Any]) -> tuple[ExpectedAccuracy | None, str]:
    """What a trial of ``activity`` filmed by ``cameras`` phones can expect, or (None, why not)."""
    if validation is None:
        return None, "These augmenter weights have no accuracy measurement (no validation file next to them)."
    if weights_sha256 != validation.get("weights_sha256"):
        return None, ("The augmenter weights this trial used are not the ones the accuracy benchmark measured, so "
                      "no typical errors are given.")
    act = validation.get("activities", {}).get(activity)
    if act is None:
        known = ", ".join(a.replace("_", "-") for a in validation.get("activities", {})) or "none"
        return None, (f"No accuracy measurement for this activity ({activity.replace('_', '-') or 'unknown'}); "
                      f"measured: {known}.")
    phones = sorted(int(n) for n in act["phones"])
    usable = [n for n in phones if n <= cameras]
    if not usable:
        return None, f"Accuracy was measured with {phones[0]} or more phones; this trial has {cameras}."
    n = max(usable)
    errs = act["phones"][str(n)]
    rows = [(WORDS.get(c, c.replace("_", " ")), errs[c]["vs_same_model_deg"], errs[c]["vs_lab_ik_deg"], c in SPLIT_NOT_SEEN)
            for c in VALIDATED_COORDINATES if c in errs]
    notes = []
    if n < cameras:
        notes.append(f"Measured with {n} phones; this trial had {cameras} (more phones changed these errors "
                     "little in the benchmark).")
    changed = changed_sections(validation.get("settings", {}), config)
    if changed:
        notes.append("This run changed settings the measurement depends on (" + ", ".join(changed[:6])
                     + (", ..." if len(changed) > 6 else "") + "): the errors above are those of the shipped "
                     "settings, not necessarily of this run's.")
    return ExpectedAccuracy(activity, act["trial"], n, validation.get("level", ""), validation.get("measured", ""),
                            rows, notes), ""


def load_validation(weights: Path) -> dict[str, Any] | None:
    """The validation record next to ``weights``, or None when there is none (or it cannot be read)."""
    path = validation_path(weights)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
