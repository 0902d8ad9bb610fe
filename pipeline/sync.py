"""Stage ``sync``: time offsets between the phones from the subject's movement (pipeline/sync_offsets.py).

Input:  output/<trial>/keypoints/<camera>.csv
Output: sync.json   per camera: offset_s (add to its time_s for the common clock), offset in frames,
                    confidence (peak correlation); every camera pair's lag and correlation; warnings
        sync.png    the cameras' speed signals before and after alignment
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.keypoints import KeypointsOutput  # noqa: E402
from pipeline.runner import StageContext  # noqa: E402
from pipeline.sync_offsets import SpeedSignal, SyncResult, speed_signal, synchronise  # noqa: E402


@dataclass(frozen=True)
class SyncOutput:
    """What the sync stage hands on: ``sync.json`` (reference camera; per camera offset_s, offset in
    frames, confidence and median speed; every pair's lag and correlation; warnings; the settings)."""

    doc: dict[str, Any]

    @property
    def offsets_s(self) -> dict[str, float]:
        """camera -> seconds to add to its own clock for the common clock."""
        return {c: float(v["offset_s"]) for c, v in self.doc["cameras"].items()}

    def save(self, out_dir: Path) -> None:
        (out_dir / "sync.json").write_text(json.dumps(self.doc, indent=2))

    @classmethod
    def load(cls, stage_dir: Path) -> SyncOutput:
        return cls(json.loads((stage_dir / "sync.json").read_text()))


def plot_sync(path, names: list[str], signals: list[SpeedSignal], res: SyncResult) -> None:
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for name, s, off in zip(names, signals, res.offsets_s):
        axes[0].plot(s.time_s, s.mean_speed, lw=1, label=name)
        axes[1].plot(s.time_s + off, s.mean_speed, lw=1, label=f"{name} {off * 1000:+.1f} ms")
    axes[0].set_title("subject speed per camera, own clocks")
    axes[1].set_title("after synchronisation (common clock)")
    axes[1].set_xlabel("time (s)")
    for ax in axes:
        ax.set_ylabel("mean keypoint speed\n(body heights / s)")
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_sync(ctx: StageContext) -> None:
    cfg = ctx.settings.sync
    cams = [c.id for c in ctx.session.cameras]
    kp = KeypointsOutput.load(ctx.stage_dir("keypoints"), cams)
    data = [(kp.time_s[c], kp.points[c]) for c in cams]
    signals = [speed_signal(t, kp, cfg, cfg.rate_hz) for t, kp in data]
    res = synchronise(signals, cfg, names=[str(ctx.trial.source(c)) for c in cams])
    for msg in res.warnings:
        ctx.log.warning("%s", msg)
    doc = {
        "reference_camera": cams[0],
        "cameras": {
            c: {
                "offset_s": round(float(off), 6),
                "offset_frames": round(float(off) / float(np.median(np.diff(t))), 3) if len(t) > 1 else 0.0,
                "confidence": round(float(conf), 4),
                "median_speed_body_heights_per_s": round(float(m), 4),
            }
            for c, off, conf, m, (t, _) in zip(cams, res.offsets_s, res.confidence, res.motion, data)
        },
        "pairs": [{"cameras": [cams[p.a], cams[p.b]], "offset_s": None if not np.isfinite(p.offset_s) else round(p.offset_s, 6),
                   "r": None if not np.isfinite(p.r) else round(p.r, 4),
                   "r_second_peak": None if not np.isfinite(p.r_second) else round(p.r_second, 4)} for p in res.pairs],
        "pair_residual_ms": None if not np.isfinite(res.residual_ms) else round(res.residual_ms, 3),
        "warnings": res.warnings,
        "settings": asdict(cfg),
    }
    SyncOutput(doc).save(ctx.out_dir)
    plot_sync(ctx.out_dir / "sync.png", cams, signals, res)
    ctx.summary.update(
        offsets_s={c: doc["cameras"][c]["offset_s"] for c in cams},
        confidence={c: doc["cameras"][c]["confidence"] for c in cams[1:]},
        message="offsets " + ", ".join(f"{c} {doc['cameras'][c]['offset_s'] * 1000:+.0f} ms (r {doc['cameras'][c]['confidence']:.2f})"
                                       for c in cams[1:]),
    )
