"""Marker errors of an augmenter against known markers, per marker and per marker group."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from models.augmenter import Augmenter, augment, load_augmenters
from models.augmenter_data import KEYPOINTS, MARKERS, Trial

# Marker groups for reports: a pattern on the _study name -> group.
GROUPS = [
    ("pelvis", r"ASIS|PSIS|HJC"), ("knee", r"_m?knee"), ("thigh", r"thigh"), ("ankle", r"_m?ankle"),
    ("shank", r"_sh\d"), ("foot", r"toe|5meta|calc"), ("trunk", r"shoulder|C7"), ("elbow", r"elbow"), ("wrist", r"wrist"),
]


def group_of(marker: str) -> str:
    for group, pattern in GROUPS:
        if re.search(pattern, marker):
            return group
    return "other"


def squared_errors(models: list[Augmenter], keypoints_m: np.ndarray, names: list[str], markers_m: np.ndarray,
                   marker_names: list[str], height_m: float, mass_kg: float) -> dict[str, np.ndarray]:
    """Per marker (of ``marker_names`` that the models output): (frames,) squared 3D error, m^2.
    Frames where the true marker is missing (NaN) are left out."""
    out_names, pred = augment(models, keypoints_m, names, height_m, mass_kg)
    errs = {}
    for j, m in enumerate(marker_names):
        if m in out_names:
            d2 = np.sum((pred[:, out_names.index(m)] - markers_m[:, j]) ** 2, axis=1)
            errs[m] = d2[np.isfinite(d2)]
    return errs


def summarise(errs: list[dict[str, np.ndarray]]) -> dict:
    """RMSE (mm) per marker, per group and over all markers, pooling frames of several trials."""
    pooled: dict[str, list[np.ndarray]] = {}
    for e in errs:
        for m, d2 in e.items():
            pooled.setdefault(m, []).append(d2)
    per_marker = {m: float(1000 * np.sqrt(np.mean(np.concatenate(v)))) for m, v in pooled.items()}
    groups: dict[str, list[np.ndarray]] = {}
    for m, v in pooled.items():
        groups.setdefault(group_of(m), []).extend(v)
    per_group = {g: float(1000 * np.sqrt(np.mean(np.concatenate(v)))) for g, v in groups.items()}
    everything = np.concatenate([np.concatenate(v) for v in pooled.values()]) if pooled else np.array([np.nan])
    return {"all": float(1000 * np.sqrt(np.mean(everything))), "groups": per_group, "markers": per_marker}


def held_out_errors(models: list[Augmenter], trials: list[Trial]) -> dict[str, dict]:
    """``summarise`` of the models on synthetic trials, from exact keypoints and from the
    reconstruction-like ones: {"exact": ..., "reconstructed": ...}."""
    return {inputs: summarise([squared_errors(models, t.clean_keypoints_m if inputs == "exact" else t.keypoints_m,
                                              KEYPOINTS, t.markers_m, MARKERS, t.height_m, t.mass_kg) for t in trials])
            for inputs in ("exact", "reconstructed")}


def weight_sets(ours: str | Path, opencap_dir: str | Path) -> dict[str, list[Augmenter]]:
    """Our weights, and OpenCap's imported from ``opencap_dir`` when that folder is there (benchmarks)."""
    sets = {"ours": load_augmenters(ours)}
    if Path(opencap_dir).is_dir():
        from models.keras_import import import_opencap_dir  # h5py only when OpenCap's files are at hand

        sets["OpenCap v0.3"] = import_opencap_dir(opencap_dir)
    return sets


def placement_corrected(pred_m: np.ndarray, true_m: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(frames,) squared error left after removing the marker's mean offset in its segment's frame.

    pred_m, true_m: (frames, 3); rotations: (frames, 3, 3) of the segment the marker sits on. This
    is the error IK still sees after marker placement on a static trial (which moves each model
    marker to where the augmenter puts it), so it measures movement, not placement, errors.
    """
    local = np.einsum("fji,fj->fi", rotations, pred_m - true_m)
    ok = np.all(np.isfinite(local), axis=1)
    local = local[ok] - local[ok].mean(axis=0)
    return np.sum(local ** 2, axis=1)
