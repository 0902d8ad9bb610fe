"""Stage ``augment``: the filtered video keypoints -> anatomical markers with the LSTM augmenter.

Input:  output/<trial>/filter/keypoints.trc  (the 20 video keypoints, metres, OpenSim frame)
Output: output/<trial>/augment/markers.trc   (the video keypoints plus the 43 _study markers)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from biomech.trc import MarkerTable, read_trc, write_trc
from models.augmenter import AugmenterError, augment, load_augmenter_file
from pipeline.gaps import fill_gaps
from pipeline.runner import StageContext, StageInputError

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "models" / "weights" / "augmenter.pt"
FOOT_KEYPOINTS = ["RHeel", "LHeel", "RBigToe", "LBigToe", "RSmallToe", "LSmallToe"]


def weights_path(cfg: dict) -> Path:
    path = Path(cfg["augment"]["weights"]) if cfg["augment"]["weights"] else DEFAULT_WEIGHTS
    if not path.is_file():
        raise StageInputError(
            f"{path}: augmenter weights not found. The default ships with the project (models/weights/augmenter.pt; "
            f"`python app.py augmenter train` remakes it); OpenCap's convert with `python app.py augmenter "
            f"import-opencap DIR --out FILE` (then --set augment.weights=FILE)")
    return path


def pick_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise StageInputError("augment.device is 'cuda' but no GPU is available; use auto or cpu")
    return setting


def _bridge(time_s: np.ndarray, positions: np.ndarray, runs: dict[int, list[tuple[int, int]]]) -> np.ndarray:
    """Bridge long gaps linearly (ends held) so a network can run through them; (frames, K, 3)."""
    out = positions.copy()
    for m in runs:
        valid = np.all(np.isfinite(out[:, m]), axis=1)
        if valid.any():
            for a in range(3):
                out[:, m, a] = np.interp(time_s, time_s[valid], out[valid, m, a])
    return out


def augment_table(table: MarkerTable, models, height_m: float, mass_kg: float, max_gap_s: float,
                  floor_offset: bool, device: str = "cpu", source: str = "",
                  warn=lambda msg: None) -> MarkerTable:
    """Keypoints table -> table of keypoints plus augmented markers (same frames).

    Gaps up to ``max_gap_s`` are filled. A longer gap in a keypoint the first (lower-body) model
    needs is an error naming it and its frames. A longer gap in a keypoint only a later model
    needs (an arm hidden behind the body) does not stop the trial: that model runs through a
    linear bridge and its markers are left empty (NaN) over the gap, which IK skips frame by
    frame; ``warn`` is told which.
    """
    max_gap = int(round(max_gap_s * table.rate_hz))
    filled, unfilled = fill_gaps(table.time_s, table.positions_m, max_gap)
    long_runs = {table.names[m]: runs for m, runs in unfilled.items()}
    essential = set(models[0].keypoints) | {"RHip", "LHip"} if models else set()
    bad = {k: runs for k, runs in long_runs.items() if k in essential}
    if bad:
        detail = "; ".join(f"{k}: frames " + ", ".join(f"{a + 1}-{b}" for a, b in runs) for k, runs in bad.items())
        raise StageInputError(f"{source}: keypoint gaps longer than {max_gap_s} s (or at the trial's ends) cannot be augmented: {detail}. "
                              "Trim the trial or improve camera coverage of those keypoints")
    masks = {}  # model name -> (frames,) True where its outputs are not trustworthy
    for model in models[1:]:
        gaps = {k: runs for k, runs in long_runs.items() if k in model.keypoints}
        if gaps:
            mask = np.zeros(len(table.time_s), bool)
            for runs in gaps.values():
                for a, b in runs:
                    mask[a:b] = True
            masks[model.name] = mask
            warn(f"{source}: {', '.join(gaps)} missing for more than {max_gap_s} s; the {model.name} model's markers "
                 f"are left empty in those {int(mask.sum())} frames")
    net_input = _bridge(table.time_s, filled, unfilled) if masks else filled
    try:
        names, markers = augment(models, net_input, table.names, height_m, mass_kg, device)
    except AugmenterError as exc:
        raise StageInputError(f"{source}: {exc}") from None
    start = 0
    for model in models:
        if model.name in masks:
            markers[masks[model.name], start:start + len(model.markers)] = np.nan
        start += len(model.markers)
    positions = np.concatenate([filled, markers], axis=1)  # keypoints keep their long gaps empty
    if floor_offset:
        feet = [table.names.index(k) for k in FOOT_KEYPOINTS if k in table.names]
        if feet:
            positions[..., 1] -= np.nanpercentile(filled[:, feet, 1], 1)
    return MarkerTable(table.time_s, table.names + names, positions, table.rate_hz)


def run_augment(ctx: StageContext) -> None:
    cfg = ctx.config["augment"]
    src = ctx.stage_dir("filter") / "keypoints.trc"
    path = weights_path(ctx.config)
    models, meta = load_augmenter_file(path)
    device = pick_device(cfg["device"])
    subject = ctx.session.subject
    warnings: list[str] = []
    out = augment_table(read_trc(src), models, subject.height_m, subject.mass_kg, cfg["max_gap_s"], cfg["floor_offset"], device,
                        str(src), warn=warnings.append)
    for w in warnings:
        ctx.log.warning("%s/augment: %s", ctx.trial.name, w)
    write_trc(ctx.out_dir / "markers.trc", out)
    ctx.summary.update(markers=len(out.names), frames=len(out.time_s), device=device, weights=str(path),
                       weights_source=meta.get("source", ""), warnings=warnings,
                       message=f"{len(out.names)} markers x {len(out.time_s)} frames on {device}")
