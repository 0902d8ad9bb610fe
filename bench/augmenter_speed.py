"""Speed of the LSTM augmenter: 10,000 frames through both models (OpenCap v0.3 shapes), CPU and GPU if present.

Uses OpenCap's imported weights when ../shared/data is there (speed depends only on the shapes:
lower 4 x LSTM(128), upper 3 x LSTM(128) ... as read from model.json), else untrained nets of the same shapes.
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
sys.path.insert(0, str(ROOT))
from models.augmenter import LOWER_KEYPOINTS, LOWER_MARKERS, UPPER_KEYPOINTS, UPPER_MARKERS, Augmenter, LSTMAugmenterNet, augment  # noqa: E402

AUG = ROOT.parent / "shared" / "data" / "opencap-core" / "augmenter"
KEYPOINTS = ["Neck", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist", "midHip", "RHip", "LHip",
             "RKnee", "LKnee", "RAnkle", "LAnkle", "RBigToe", "RSmallToe", "RHeel", "LBigToe", "LSmallToe", "LHeel"]


def models() -> tuple[list[Augmenter], str]:
    if AUG.is_dir():
        from models.keras_import import import_opencap_dir

        return import_opencap_dir(AUG), "OpenCap v0.3 weights"
    out = []
    for name, kps, mks, hidden in [("lower", LOWER_KEYPOINTS, LOWER_MARKERS, [128] * 4), ("upper", UPPER_KEYPOINTS, UPPER_MARKERS, [128] * 3)]:
        n = 3 * len(kps) + 2
        out.append(Augmenter(name, kps, mks, hidden, np.zeros(n), np.ones(n), LSTMAugmenterNet(n, hidden, 3 * len(mks)).eval()))
    return out, "untrained nets of OpenCap's shapes"


def main() -> int:
    ms, source = models()
    frames = 10_000
    kp = np.random.default_rng(0).normal(0, 0.3, (frames, len(KEYPOINTS), 3)) + [0, 1, 0]
    results = {"frames": frames, "models": source, "hidden": {m.name: m.hidden for m in ms}, "threads": torch.get_num_threads()}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        augment(ms, kp[:100], KEYPOINTS, 1.7, 65.0, dev)  # warm-up
        times = []
        for _ in range(5):
            t = time.perf_counter()
            augment(ms, kp, KEYPOINTS, 1.7, 65.0, dev)
            if dev == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        results[dev] = {"best_s": round(min(times), 4), "median_s": round(float(np.median(times)), 4),
                        "frames_per_s": round(frames / min(times))}
        print(f"{dev}: {frames} frames in {min(times):.3f} s (median {np.median(times):.3f} s) = {frames / min(times):,.0f} frames/s  [{source}]")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "augmenter_speed.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
