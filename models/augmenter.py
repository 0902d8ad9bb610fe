"""The LSTM marker augmenter: video keypoints (joint centres, foot points) -> anatomical markers.

Architecture and processing follow OpenCap's published augmenter (v0.3): stacked LSTMs with a
per-frame dense output layer; inputs are keypoints relative to the reference marker (midHip,
the mean of the hips), divided by the subject's height, plus height and mass, standardised
with a stored mean and std; outputs are multiplied by height and the reference added back.
Two models run side by side: lower body (15 keypoints -> 35 markers) and upper body
(7 keypoints -> 8 markers).

Our own models can instead predict each marker relative to an anchor keypoint on the same body part
(``anchors``, see ``marker_anchor``): the knee markers from the knee keypoint, the pelvis markers from
the hips, and so on. Then the network only learns where a marker sits around the joint the cameras
saw, and the pose itself comes straight from the keypoints: predicting absolute positions relative
to the mid-hip, a network regresses unusual poses towards the ones it saw most (on a held-out deep
squat the augmented thigh stopped ~9 deg short of the keypoints' own thigh angle).

Our file format (``.pt``, read with ``torch.load(weights_only=True)``) holds, per model, its
keypoint and marker names, hidden sizes, mean and std, the anchors (absent: the mid-hip for every
marker, as OpenCap's) and the torch state dict.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.gaps import describe_runs, nan_runs

# The shipped weights (trained by `python app.py augmenter train`; what on is recorded inside the file).
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "augmenter.pt"

LOWER_KEYPOINTS = ["Neck", "RShoulder", "LShoulder", "RHip", "LHip", "RKnee", "LKnee", "RAnkle", "LAnkle",
                   "RHeel", "LHeel", "RSmallToe", "LSmallToe", "RBigToe", "LBigToe"]
UPPER_KEYPOINTS = ["Neck", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist"]
# OpenCap's output order of the v0.3 models (the _study marker names OpenSim marker sets use).
LOWER_MARKERS = ["r.ASIS_study", "L.ASIS_study", "r.PSIS_study", "L.PSIS_study", "r_knee_study", "r_mknee_study",
                 "r_ankle_study", "r_mankle_study", "r_toe_study", "r_5meta_study", "r_calc_study", "L_knee_study",
                 "L_mknee_study", "L_ankle_study", "L_mankle_study", "L_toe_study", "L_calc_study", "L_5meta_study",
                 "r_shoulder_study", "L_shoulder_study", "C7_study", "r_thigh1_study", "r_thigh2_study",
                 "r_thigh3_study", "L_thigh1_study", "L_thigh2_study", "L_thigh3_study", "r_sh1_study", "r_sh2_study",
                 "r_sh3_study", "L_sh1_study", "L_sh2_study", "L_sh3_study", "RHJC_study", "LHJC_study"]
UPPER_MARKERS = ["r_lelbow_study", "r_melbow_study", "r_lwrist_study", "r_mwrist_study",
                 "L_lelbow_study", "L_melbow_study", "L_lwrist_study", "L_mwrist_study"]


# The keypoint each _study marker is predicted from (the joint of the body part it sits on); the side is
# the marker's own (r / R / L prefix). The foot markers hang on the ankle, not on the toe and heel points:
# anchored on those, each foot point's own detector bias went straight into the foot's orientation (ankle
# angle MAE on the accuracy benchmark, 2 phones realistic: 6.4-8.1 deg vs 5.7-7.5 anchored on the ankle).
_ANCHOR_PATTERNS = [(r"ASIS|PSIS|HJC", "Hip"), (r"thigh\d|_m?knee", "Knee"), (r"_sh\d|_m?ankle|_toe|5meta|calc", "Ankle"),
                    (r"shoulder", "Shoulder"), (r"C7", "Neck"), (r"elbow", "Elbow"), (r"wrist", "Wrist")]


def marker_anchor(marker: str) -> str:
    """The keypoint a _study marker is predicted relative to, e.g. 'r_mknee_study' -> 'RKnee', 'C7_study' -> 'Neck'."""
    for pattern, joint in _ANCHOR_PATTERNS:
        if re.search(pattern, marker):
            if joint == "Neck":
                return joint
            return ("L" if marker.startswith("L") else "R") + joint
    raise ValueError(f"no anchor keypoint known for marker {marker!r}")


def output_origins(keypoints_m: np.ndarray, names: list[str], anchors: list[str] | None) -> np.ndarray:
    """(frames, markers or 1, 3) the points a model's outputs are relative to, in training as in use: each
    marker's anchor keypoint, or (``anchors`` None) the mid-hip reference for all."""
    if anchors is None:
        return hip_reference(keypoints_m, names)[:, None]
    return keypoints_m[:, [names.index(a) for a in anchors]]


class AugmenterError(ValueError):
    """Augmenter input or file that cannot be used; the message says which and what to do."""


def hip_reference(keypoints_m: np.ndarray, names: list[str]) -> np.ndarray:
    """(frames, 3) the reference marker midHip: the mean of the RHip and LHip keypoints."""
    return 0.5 * (keypoints_m[:, names.index("RHip")] + keypoints_m[:, names.index("LHip")])


class LSTMAugmenterNet(nn.Module):
    """Stacked LSTMs (batch_first) and a per-frame linear layer. x: (batch, frames, features)."""

    def __init__(self, n_inputs: int, hidden: list[int], n_outputs: int):
        super().__init__()
        sizes = [n_inputs, *hidden]
        self.lstms = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(hidden)))
        self.dense = nn.Linear(hidden[-1], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lstm in self.lstms:
            x, _ = lstm(x)
        return self.dense(x)


@dataclass
class Augmenter:
    """One augmenter model with its processing constants."""

    name: str
    keypoints: list[str]  # input keypoint names, in feature order
    markers: list[str]  # output marker names
    hidden: list[int]
    mean: np.ndarray  # (features,) standardisation, features = 3 * keypoints + 2
    std: np.ndarray
    net: LSTMAugmenterNet
    reference: str = "midHip"
    # Per marker, the input keypoint its output is relative to (``marker_anchor``); None: the reference
    # (midHip) for every marker, OpenCap's layout.
    anchors: list[str] | None = None

    def standardised_inputs(self, keypoints_m: np.ndarray, names: list[str], height_m: float, mass_kg: float) -> np.ndarray:
        """(frames, features) model inputs from keypoints (frames, K, 3) metres named by ``names``."""
        idx = {n: i for i, n in enumerate(names)}
        missing = [k for k in self.keypoints + ["RHip", "LHip"] if k not in idx]
        if missing:
            raise AugmenterError(f"augmenter {self.name}: keypoints {missing} missing from the input")
        rel = (keypoints_m[:, [idx[k] for k in self.keypoints]] - hip_reference(keypoints_m, names)[:, None]) / height_m
        n = len(keypoints_m)
        feats = np.concatenate([rel.reshape(n, -1), np.full((n, 1), height_m), np.full((n, 1), mass_kg)], axis=1)
        return (feats - self.mean) / self.std

    @torch.no_grad()
    def raw_outputs(self, std_inputs: np.ndarray, device: str = "cpu") -> np.ndarray:
        """(frames, 3 * markers) network outputs for (frames, features) standardised inputs."""
        x = torch.as_tensor(np.asarray(std_inputs, np.float32), device=device)[None]
        return self.net.to(device)(x)[0].cpu().numpy().astype(np.float64)

    def predict(self, keypoints_m: np.ndarray, names: list[str], height_m: float, mass_kg: float, device: str = "cpu") -> np.ndarray:
        """(frames, markers, 3) marker positions in metres."""
        raw = self.raw_outputs(self.standardised_inputs(keypoints_m, names, height_m, mass_kg), device)
        return raw.reshape(len(raw), -1, 3) * height_m + self.origins(keypoints_m, names)

    def origins(self, keypoints_m: np.ndarray, names: list[str]) -> np.ndarray:
        return output_origins(keypoints_m, names, self.anchors)

    def to_record(self) -> dict:
        return {"name": self.name, "keypoints": self.keypoints, "markers": self.markers, "hidden": self.hidden,
                "reference": self.reference, "mean": torch.as_tensor(self.mean), "std": torch.as_tensor(self.std),
                "state_dict": self.net.state_dict(), **({"anchors": self.anchors} if self.anchors is not None else {})}

    @classmethod
    def from_record(cls, rec: dict) -> "Augmenter":
        n_in = 3 * len(rec["keypoints"]) + 2
        net = LSTMAugmenterNet(n_in, list(rec["hidden"]), 3 * len(rec["markers"]))
        net.load_state_dict(rec["state_dict"])
        net.eval()
        return cls(rec["name"], list(rec["keypoints"]), list(rec["markers"]), list(rec["hidden"]),
                   rec["mean"].numpy().astype(np.float64), rec["std"].numpy().astype(np.float64), net, rec.get("reference", "midHip"),
                   list(rec["anchors"]) if rec.get("anchors") is not None else None)


def save_augmenters(path: str | Path, models: list[Augmenter], meta: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "markerless-augmenter/1", "meta": meta or {}, "models": [m.to_record() for m in models]}, path)
    return path


def _read(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise AugmenterError(f"{path}: augmenter file not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AugmenterError(f"{path}: not an augmenter file ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != "markerless-augmenter/1":
        raise AugmenterError(f"{path}: not an augmenter file of this project (format tag missing)")
    return blob


def load_augmenter_file(path: str | Path) -> tuple[list[Augmenter], dict]:
    """The models and what the file says about itself (source, training data, held-out accuracy)."""
    blob = _read(path)
    return [Augmenter.from_record(r) for r in blob["models"]], dict(blob.get("meta") or {})


def load_augmenters(path: str | Path) -> list[Augmenter]:
    return load_augmenter_file(path)[0]


def augment(models: list[Augmenter], keypoints_m: np.ndarray, names: list[str], height_m: float, mass_kg: float,
            device: str = "cpu") -> tuple[list[str], np.ndarray]:
    """Run every model; returns marker names and (frames, markers, 3) metres.

    Only the keypoints the models read (and the hips, their reference) must be complete; the error
    names each incomplete one and its frames (1-based, inclusive)."""
    used = list(dict.fromkeys([k for m in models for k in m.keypoints] + ["RHip", "LHip"]))
    holes = {}
    for k in used:
        if k not in names:
            raise AugmenterError(f"augmenter input lacks keypoint {k!r} (it has {names})")
        bad = ~np.all(np.isfinite(keypoints_m[:, names.index(k)]), axis=-1)
        if bad.any():
            holes[k] = describe_runs(nan_runs(~bad))
    if holes:
        raise AugmenterError("augmenter input has missing samples (" + "; ".join(f"{k}: frames {v}" for k, v in holes.items())
                             + "); fill or bridge those gaps before augmenting")
    names_out, parts = [], []
    for group in ensemble_groups(models):
        # an ensemble's members are averaged: their errors are partly independent (each saw other synthetic
        # bodies in another order), so the mean is nearer the truth than a typical member
        parts.append(np.mean([m.predict(keypoints_m, names, height_m, mass_kg, device) for m in group], axis=0))
        names_out += group[0].markers
    return names_out, np.concatenate(parts, axis=1)


def ensemble_groups(models: list[Augmenter]) -> list[list[Augmenter]]:
    """The models grouped by name, in first-seen order: several models of one name (e.g. three 'lower') are
    members of an ensemble whose prediction is their mean, so they must predict the same markers."""
    groups: dict[str, list[Augmenter]] = {}
    for m in models:
        groups.setdefault(m.name, []).append(m)
    for name, group in groups.items():
        odd = [m for m in group if m.markers != group[0].markers]
        if odd:
            raise AugmenterError(f"augmenter ensemble {name!r}: members predict different markers "
                                 f"({group[0].markers} vs {odd[0].markers}); combine only files of one layout")
    return list(groups.values())
