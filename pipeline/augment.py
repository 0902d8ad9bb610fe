"""Stage ``augment``: the filtered video keypoints -> anatomical markers with the LSTM augmenter.

Input:  the filter stage's keypoints (``FilterOutput``: the 20 video keypoints, metres, OpenSim frame)
Output (``AugmentOutput``):
        output/<trial>/augment/markers.trc   (the video keypoints plus the 43 _study markers)
        output/<trial>/augment/gaps.json     keypoint gaps filled / bridged, markers left empty per frame
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biomech.trc import MarkerTable, read_trc, write_trc
from models.augmenter import DEFAULT_WEIGHTS, AugmenterError, augment, ensemble_groups, load_augmenter_file
from biomech.landmarks import marker_keypoints
from core.gaps import fill_gaps, nan_runs, runs_mask
from pipeline.filter import FilterOutput
from pipeline.runner import StageContext, StageInputError, stage_device
from sessions.settings import AugmentSettings

FOOT_KEYPOINTS = ["RHeel", "LHeel", "RBigToe", "LBigToe", "RSmallToe", "LSmallToe"]


def weights_path(cfg: AugmentSettings) -> Path:
    path = Path(cfg.weights) if cfg.weights else DEFAULT_WEIGHTS
    if not path.is_file():
        raise StageInputError(
            f"{path}: augmenter weights not found. The default ships with the project (models/weights/augmenter.pt; "
            f"`python app.py augmenter train` remakes it); OpenCap's convert with `python app.py augmenter "
            f"import-opencap DIR --out FILE` (then --set augment.weights=FILE)")
    return path


# Stand-in for a keypoint never seen in the whole trial (so the network can run): the nearest
# keypoint up the chain. Every marker that depends on it is left empty anyway.
STAND_IN = {"RWrist": "RElbow", "LWrist": "LElbow", "RElbow": "RShoulder", "LElbow": "LShoulder",
            "RShoulder": "Neck", "LShoulder": "Neck", "Neck": "midHip"}


def bridge_gaps(time_s: np.ndarray, positions: np.ndarray, names: list[str],
                runs: dict[int, list[tuple[int, int]]]) -> np.ndarray:
    """Bridge long gaps linearly (ends held) so a network can run through them; (frames, K, 3).

    A keypoint with no sample at all takes its ``STAND_IN``'s trajectory."""
    out = positions.copy()
    for m in sorted(runs, key=lambda m: names[m] in STAND_IN):
        valid = np.all(np.isfinite(out[:, m]), axis=1)
        if valid.any():
            for a in range(3):
                out[:, m, a] = np.interp(time_s, time_s[valid], out[valid, m, a])
    for m in runs:
        sub = names[m]
        while not np.all(np.isfinite(out[:, m])) and sub in STAND_IN and STAND_IN[sub] in names:
            sub = STAND_IN[sub]
            out[:, m] = out[:, names.index(sub)]
    return out


@dataclass
class AugmentResult:
    """The augmented table and what was done about gaps.

    filled: keypoint -> frame runs (start, stop) filled by interpolation (at most ``max_gap_s``).
    bridged: keypoint -> frame runs bridged for the network only (longer gaps, or at the trial's ends).
    emptied: (frames, markers) True where a marker was left empty because a keypoint it depends on
        was bridged; columns follow ``marker_names``.
    """

    table: MarkerTable
    filled: dict[str, list[tuple[int, int]]]
    bridged: dict[str, list[tuple[int, int]]]
    marker_names: list[str]
    emptied: np.ndarray

    def report(self, core: list[str] | tuple[str, ...] = ()) -> dict:
        """JSON-ready: per keypoint the runs (1-based, inclusive frames) and per marker the empty frames;
        the share of frames with any keypoint bridged, and with any of ``core`` bridged."""
        frames = len(self.table.time_s)
        runs = lambda d: {k: [[int(a) + 1, int(b)] for a, b in v] for k, v in d.items()}

        def share(keys) -> float:
            hit = runs_mask(frames, [r for k in keys for r in self.bridged.get(k, [])])
            return round(float(hit.mean()), 4) if frames else 0.0

        return {
            "frames": frames,
            "filled": runs(self.filled),
            "bridged": runs(self.bridged),
            "bridged_frame_share": share(self.bridged),
            "bridged_core_frame_share": share(core),
            "core_keypoints": list(core),
            "markers_emptied_frames": {m: int(n) for m, n in zip(self.marker_names, self.emptied.sum(axis=0)) if n},
        }


def augment_table(table: MarkerTable, models, height_m: float, mass_kg: float, max_gap_s: float,
                  floor_offset: bool, device: str = "cpu", source: str = "") -> AugmentResult:
    """Keypoints table (frames, K) -> keypoints plus augmented markers (same frames).

    Gaps up to ``max_gap_s`` are filled. Longer gaps (and gaps at the trial's ends, which the filter
    stage leaves only in keypoints outside the analysable span's list) never stop the trial: the
    networks run through a linear bridge and every marker that depends on the missing keypoint
    (``biomech.landmarks.marker_keypoints``: the keypoints that place its body) is left empty (NaN)
    over the gap, which IK skips frame by frame. A marker whose dependencies are not known depends on
    every keypoint its model reads.
    """
    max_gap = int(round(max_gap_s * table.rate_hz))
    filled, unfilled = fill_gaps(table.time_s, table.positions_m, max_gap)
    names = table.names
    gap_runs = {names[m]: runs for m, runs in unfilled.items()}
    short = {}
    for m in range(len(names)):
        valid = np.all(np.isfinite(table.positions_m[:, m]), axis=1)
        runs = [r for r in nan_runs(valid) if r not in unfilled.get(m, [])]
        if runs:
            short[names[m]] = runs
    net_input = bridge_gaps(table.time_s, filled, names, unfilled) if unfilled else filled
    try:
        marker_names, markers = augment(models, net_input, names, height_m, mass_kg, device)
    except AugmenterError as exc:
        raise StageInputError(f"{source}: {exc}") from None
    deps = marker_keypoints()
    frames = len(table.time_s)
    gap_mask = {k: runs_mask(frames, runs) for k, runs in gap_runs.items()}
    emptied = np.zeros((frames, len(marker_names)), bool)
    col = 0
    for model in (group[0] for group in ensemble_groups(models)):  # one column per marker, as augment() returns them
        for marker in model.markers:
            for k in deps.get(marker, model.keypoints):
                if k in gap_mask:
                    emptied[:, col] |= gap_mask[k]
            col += 1
    markers[emptied] = np.nan
    positions = np.concatenate([filled, markers], axis=1)  # keypoints keep their long gaps empty
    if floor_offset:
        feet = [names.index(k) for k in FOOT_KEYPOINTS if k in names]
        if feet:
            positions[..., 1] -= np.nanpercentile(filled[:, feet, 1], 1)
    out = MarkerTable(table.time_s, names + marker_names, positions, table.rate_hz)
    return AugmentResult(out, short, gap_runs, marker_names, emptied)


@dataclass(frozen=True)
class AugmentOutput:
    """What the augment stage hands on: the video keypoints plus the anatomical markers
    (``markers.trc``) and the gap report (``gaps.json``, see ``AugmentResult.report``)."""

    markers: MarkerTable
    gaps: dict[str, Any]

    TRC = "markers.trc"

    def save(self, out_dir: Path) -> None:
        write_trc(out_dir / self.TRC, self.markers)
        (out_dir / "gaps.json").write_text(json.dumps(self.gaps, indent=2))

    @classmethod
    def trc_path(cls, stage_dir: Path) -> Path:
        """The marker file itself, for the OpenSim tools that read it (scale, ik)."""
        return stage_dir / cls.TRC

    @classmethod
    def load_gaps(cls, stage_dir: Path) -> dict[str, Any]:
        return json.loads((stage_dir / "gaps.json").read_text())

    @classmethod
    def load(cls, stage_dir: Path) -> AugmentOutput:
        return cls(read_trc(cls.trc_path(stage_dir)), cls.load_gaps(stage_dir))


def run_augment(ctx: StageContext) -> None:
    cfg = ctx.settings.augment
    fdir = ctx.stage_dir("filter")
    src = FilterOutput.trc_path(fdir)
    path = weights_path(cfg)
    models, meta = load_augmenter_file(path)
    device = stage_device(cfg.device, "augment.device")
    subject = ctx.session.subject
    res = augment_table(FilterOutput.load(fdir).keypoints, models, subject.height_m, subject.mass_kg, cfg.max_gap_s,
                        cfg.floor_offset, device, str(src))
    out = res.table
    report = res.report(core=models[0].keypoints if models else ())  # the first (lower-body) model's inputs
    warnings = []
    for k, runs in report["bridged"].items():
        emptied = sorted(m for m in report["markers_emptied_frames"] if k in marker_keypoints().get(m, ()))
        warnings.append(f"{k} missing for more than {cfg.max_gap_s} s at frames "
                        + ", ".join(f"{a}-{b}" for a, b in runs)
                        + (f"; markers left empty there: {', '.join(emptied)}" if emptied else ""))
    for w in warnings:
        ctx.log.warning("%s/augment: %s", ctx.trial.name, w)
    AugmentOutput(out, report).save(ctx.out_dir)
    ctx.summary.update(markers=len(out.names), frames=len(out.time_s), device=device, weights=str(path),
                       weights_source=meta.get("source", ""), warnings=warnings,
                       bridged_frame_share=report["bridged_frame_share"],
                       bridged_core_frame_share=report["bridged_core_frame_share"],
                       message=f"{len(out.names)} markers x {len(out.time_s)} frames on {device}"
                               + (f", {100 * report['bridged_frame_share']:.0f}% of frames with a keypoint bridged "
                                  f"(dependent markers left empty there)" if report["bridged"] else ""))

