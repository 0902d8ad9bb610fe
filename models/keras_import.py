"""Import OpenCap's Keras augmenter (model.json + weights.h5 + mean/std + metadata) into torch.

Keras stores an LSTM as kernel (inputs, 4u), recurrent_kernel (u, 4u) and one bias (4u), gates
in the order i, f, c, o. torch's nn.LSTM holds weight_ih (4u, inputs), weight_hh (4u, u) and two
biases, gates i, f, g, o: the same order, so the matrices are transposed, the Keras bias goes
into bias_ih and bias_hh is zero. The TimeDistributed Dense kernel (u, out) is transposed too.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch

from models.augmenter import (LOWER_KEYPOINTS, LOWER_MARKERS, UPPER_KEYPOINTS, UPPER_MARKERS, Augmenter,
                              AugmenterError, LSTMAugmenterNet)

KNOWN = {  # n_inputs -> (name, keypoints, markers): OpenCap's two v0.3 models
    3 * len(LOWER_KEYPOINTS) + 2: ("lower", LOWER_KEYPOINTS, LOWER_MARKERS),
    3 * len(UPPER_KEYPOINTS) + 2: ("upper", UPPER_KEYPOINTS, UPPER_MARKERS),
}


def _weights(h5: h5py.File, layer: str) -> list[np.ndarray]:
    group = h5[layer]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["weight_names"]]
    return [np.asarray(group[n]) for n in names]


def import_keras_augmenter(folder: str | Path) -> Augmenter:
    """One Keras augmenter folder (model.json, weights.h5, mean.npy, std.npy, metadata.json) -> Augmenter."""
    folder = Path(folder)
    for f in ("model.json", "weights.h5", "mean.npy", "std.npy"):
        if not (folder / f).is_file():
            raise AugmenterError(f"{folder / f}: missing; an OpenCap augmenter folder holds model.json, weights.h5, mean.npy, std.npy")
    layers = json.loads((folder / "model.json").read_text())["config"]["layers"]
    lstms = [l for l in layers if l["class_name"] == "LSTM"]
    dense = [l for l in layers if l["class_name"] in ("TimeDistributed", "Dense")]
    if not lstms or len(dense) != 1:
        raise AugmenterError(f"{folder / 'model.json'}: expected stacked LSTM layers and one dense output layer")
    for l in lstms:
        c = l["config"]
        if c.get("activation") != "tanh" or c.get("recurrent_activation") != "sigmoid" or not c.get("return_sequences", False) or c.get("go_backwards"):
            raise AugmenterError(f"{folder / 'model.json'}: LSTM {c['name']} is not a plain tanh/sigmoid sequence LSTM")
    dense_cfg = dense[0]["config"].get("layer", dense[0])["config"] if dense[0]["class_name"] == "TimeDistributed" else dense[0]["config"]
    if dense_cfg.get("activation", "linear") != "linear":
        raise AugmenterError(f"{folder / 'model.json'}: output layer activation {dense_cfg.get('activation')} is not linear")
    mean, std = np.load(folder / "mean.npy").astype(np.float64), np.load(folder / "std.npy").astype(np.float64)
    n_in = len(mean)
    if n_in not in KNOWN:
        raise AugmenterError(f"{folder}: {n_in} input features; known OpenCap models take 47 (lower) or 23 (upper)")
    name, keypoints, markers = KNOWN[n_in]
    hidden = [int(l["config"]["units"]) for l in lstms]
    net = LSTMAugmenterNet(n_in, hidden, int(dense_cfg["units"]))
    if net.dense.out_features != 3 * len(markers):
        raise AugmenterError(f"{folder}: output has {net.dense.out_features} values, expected {3 * len(markers)}")
    with h5py.File(folder / "weights.h5", "r") as h5:
        for lstm, layer in zip(net.lstms, lstms):
            kernel, recurrent, bias = _weights(h5, layer["config"]["name"])
            lstm.weight_ih_l0.data = torch.as_tensor(kernel.T.copy())
            lstm.weight_hh_l0.data = torch.as_tensor(recurrent.T.copy())
            lstm.bias_ih_l0.data = torch.as_tensor(bias.copy())
            lstm.bias_hh_l0.data = torch.zeros_like(lstm.bias_hh_l0)
        kernel, bias = _weights(h5, dense[0]["config"]["name"])
        net.dense.weight.data = torch.as_tensor(kernel.T.copy())
        net.dense.bias.data = torch.as_tensor(bias.copy())
    net.eval()
    ref = "midHip"
    if (folder / "metadata.json").is_file():
        ref = json.loads((folder / "metadata.json").read_text()).get("reference_marker", ref)
    return Augmenter(name, list(keypoints), list(markers), hidden, mean, std, net, ref)


def import_opencap_dir(folder: str | Path) -> list[Augmenter]:
    """A folder holding one model, or OpenCap's augmenter folder with *_lower and *_upper models."""
    folder = Path(folder)
    if (folder / "model.json").is_file():
        return [import_keras_augmenter(folder)]
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "model.json").is_file()) if folder.is_dir() else []
    lower = [p for p in subs if p.name.endswith("_lower")]
    upper = [p for p in subs if p.name.endswith("_upper")]
    if not lower or not upper:
        raise AugmenterError(f"{folder}: no model.json here, nor *_lower and *_upper model folders")
    return [import_keras_augmenter(lower[-1]), import_keras_augmenter(upper[-1])]
