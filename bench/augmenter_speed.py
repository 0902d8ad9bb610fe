"""Speed of the LSTM augmenter: 10,000 frames through both models, CPU and GPU if present.

Measures our shipped weights (models/weights/augmenter.pt: lower 2 x LSTM(128), upper 2 x LSTM(96))
and, when ../shared/data is there, OpenCap's v0.3 weights (lower 4 x LSTM(128), upper 5 x LSTM(128)).
Run: .venv/bin/python bench/augmenter_speed.py
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
from models.augmenter import augment
from models.augmenter_data import KEYPOINTS
from models.augmenter_eval import weight_sets
from models.augmenter import DEFAULT_WEIGHTS

AUG = ROOT.parent / "shared" / "data" / "opencap-core" / "augmenter"


def main() -> int:
    frames = 10_000
    kp = np.random.default_rng(0).normal(0, 0.3, (frames, len(KEYPOINTS), 3)) + [0, 1, 0]
    results = {"frames": frames, "threads": torch.get_num_threads()}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for (source, ms), dev in ((w, d) for w in weight_sets(DEFAULT_WEIGHTS, AUG).items() for d in devices):
        augment(ms, kp[:100], KEYPOINTS, 1.7, 65.0, dev)  # warm-up
        times = []
        for _ in range(5):
            t = time.perf_counter()
            augment(ms, kp, KEYPOINTS, 1.7, 65.0, dev)
            if dev == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        results[f"{source} | {dev}"] = {"hidden": {m.name: m.hidden for m in ms}, "best_s": round(min(times), 4),
                                       "median_s": round(float(np.median(times)), 4), "frames_per_s": round(frames / min(times))}
        print(f"{dev}: {frames} frames in {min(times):.3f} s (median {np.median(times):.3f} s) = {frames / min(times):,.0f} frames/s  [{source}]")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "augmenter_speed.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
