"""Stage ``augment``: the filtered video keypoints -> anatomical markers with the LSTM augmenter.

Input:  output/<trial>/filter/keypoints.trc  (the 20 video keypoints, metres, OpenSim frame)
Output: output/<trial>/augment/markers.trc   (the video keypoints plus the 43 _study markers)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from biomech.trc import MarkerTable, read_trc, write_trc
from models.augmenter import AugmenterError, augment, load_augmenters
from pipeline.gaps import fill_gaps
from pipeline.runner import StageContext, StageInputError

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "models" / "weights" / "augmenter.pt"
FOOT_KEYPOINTS = ["RHeel", "LHeel", "RBigToe", "LBigToe", "RSmallToe", "LSmallToe"]


def weights_path(cfg: dict) -> Path:
    path = Path(cfg["augment"]["weights"]) if cfg["augment"]["weights"] else DEFAULT_WEIGHTS
    if not path.is_file():
        raise StageInputError(
            f"{path}: augmenter weights not found. Convert OpenCap's with `python app.py augmenter import-opencap DIR "
            f"--out FILE` and run with --set augment.weights=FILE")
    return path


def pick_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise StageInputError("augment.device is 'cuda' but no GPU is available; use auto or cpu")
    return setting


def augment_table(table: MarkerTable, models, height_m: float, mass_kg: float, max_gap_s: float,
                  floor_offset: bool, device: str = "cpu", source: str = "") -> MarkerTable:
    """Keypoints table -> table of keypoints plus augmented markers (same frames)."""
    max_gap = int(round(max_gap_s * table.rate_hz))
    filled, unfilled = fill_gaps(table.time_s, table.positions_m, max_gap)
    needed = {k for m in models for k in m.keypoints} | {"RHip", "LHip"}
    bad = {table.names[m]: runs for m, runs in unfilled.items() if table.names[m] in needed}
    if bad:
        detail = "; ".join(f"{k}: frames " + ", ".join(f"{a + 1}-{b}" for a, b in runs) for k, runs in bad.items())
        raise StageInputError(f"{source}: keypoint gaps longer than {max_gap_s} s (or at the trial's ends) cannot be augmented: {detail}. "
                              "Trim the trial or improve camera coverage of those keypoints")
    try:
        names, markers = augment(models, filled, table.names, height_m, mass_kg, device)
    except AugmenterError as exc:
        raise StageInputError(f"{source}: {exc}") from None
    positions = np.concatenate([filled, markers], axis=1)
    if floor_offset:
        feet = [table.names.index(k) for k in FOOT_KEYPOINTS if k in table.names]
        if feet:
            positions[..., 1] -= np.percentile(filled[:, feet, 1], 1)
    return MarkerTable(table.time_s, table.names + names, positions, table.rate_hz)


def run_augment(ctx: StageContext) -> None:
    cfg = ctx.config["augment"]
    src = ctx.stage_dir("filter") / "keypoints.trc"
    models = load_augmenters(weights_path(ctx.config))
    device = pick_device(cfg["device"])
    subject = ctx.session.subject
    out = augment_table(read_trc(src), models, subject.height_m, subject.mass_kg, cfg["max_gap_s"], cfg["floor_offset"], device, str(src))
    write_trc(ctx.out_dir / "markers.trc", out)
    ctx.summary.update(markers=len(out.names), frames=len(out.time_s), device=device,
                       message=f"{len(out.names)} markers x {len(out.time_s)} frames on {device}")
