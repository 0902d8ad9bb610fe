"""Training our marker augmenter on synthetic trials (``models.augmenter_data``).

The networks and the processing are exactly those of ``models.augmenter`` (OpenCap's layout), so a
trained model runs through the same ``Augmenter.predict`` as imported OpenCap weights. Training
samples random windows of the trials; each window is turned about the vertical by a random angle
(a camera set-up can face the subject from any side) and tilted by a few degrees (a calibration
board is never exactly level), then standardised with a mean and std fitted on such windows.
The loss is the mean squared marker error in units of body height, as the network outputs it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.augmenter import (LOWER_KEYPOINTS, LOWER_MARKERS, UPPER_KEYPOINTS, UPPER_MARKERS, Augmenter, LSTMAugmenterNet,
                              ensemble_groups, hip_reference, load_augmenter_file, marker_anchor, output_origins,
                              save_augmenters)
from models.augmenter_data import KEYPOINTS, MARKERS, DataSpec, KeypointErrors, Trial, make_trials
from models.augmenter_replay import ReplaySource, ReplaySpec, replay_trials
from models.augmenter_eval import held_out_errors


@dataclass
class TrainSpec:
    hidden: list[int]
    steps: int
    batch: int = 64
    window: int = 100  # frames per training window
    lr: float = 3e-3
    warmup_steps: int = 300
    max_tilt_deg: float = 4.0
    seed: int = 0
    # Each marker learned relative to its anchor keypoint (models.augmenter.marker_anchor) rather than the mid-hip.
    anchored: bool = True


# The two models of our default weights: OpenCap's inputs and outputs, our own sizes and steps.
DEFAULT_SPECS = {
    "lower": (LOWER_KEYPOINTS, LOWER_MARKERS, TrainSpec(hidden=[128, 128], steps=16000)),
    "upper": (UPPER_KEYPOINTS, UPPER_MARKERS, TrainSpec(hidden=[96, 96], steps=8000)),
}


def random_rotations(rng: np.random.Generator, n: int, max_tilt_deg: float) -> np.ndarray:
    """(n, 3, 3): a uniform turn about the vertical (Y), then a tilt up to ``max_tilt_deg``."""
    yaw = rng.uniform(-np.pi, np.pi, n)
    tx, tz = np.radians(rng.uniform(-max_tilt_deg, max_tilt_deg, (2, n)))
    c, s = np.cos(yaw), np.sin(yaw)
    Ry = np.zeros((n, 3, 3))
    Ry[:, 0, 0], Ry[:, 0, 2], Ry[:, 1, 1], Ry[:, 2, 0], Ry[:, 2, 2] = c, s, 1, -s, c
    Rx = np.zeros((n, 3, 3))
    Rx[:, 0, 0], Rx[:, 1, 1], Rx[:, 1, 2], Rx[:, 2, 1], Rx[:, 2, 2] = 1, np.cos(tx), -np.sin(tx), np.sin(tx), np.cos(tx)
    Rz = np.zeros((n, 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = np.cos(tz), -np.sin(tz), np.sin(tz), np.cos(tz), 1
    return Rz @ Rx @ Ry


@dataclass
class WindowSampler:
    """Random training windows, relative to the (noisy) mid-hip and divided by height.

    rel_in: (frames, keypoints, 3), rel_out: (frames, markers, 3), for all trials end to end.
    """

    keypoints: list[str]
    markers: list[str]
    window: int
    anchors: list[str] | None = None  # per marker, the keypoint its target is relative to (None: the mid-hip)
    rel_in: np.ndarray = field(init=False)
    rel_out: np.ndarray = field(init=False)
    height_m: np.ndarray = field(init=False)  # (frames,)
    mass_kg: np.ndarray = field(init=False)
    starts: np.ndarray = field(init=False)  # valid window starts

    def fill(self, trials: list[Trial]) -> "WindowSampler":
        ki = [KEYPOINTS.index(k) for k in self.keypoints]
        mi = [MARKERS.index(m) for m in self.markers]
        ins, outs, hs, ms, starts, offset = [], [], [], [], [], 0
        for t in trials:
            ref = hip_reference(t.keypoints_m, KEYPOINTS)[:, None]
            ins.append(((t.keypoints_m[:, ki] - ref) / t.height_m).astype(np.float32))
            # targets relative to what the network sees: the (noisy) keypoints
            origin = output_origins(t.keypoints_m, KEYPOINTS, self.anchors)
            outs.append(((t.markers_m[:, mi] - origin) / t.height_m).astype(np.float32))
            n = len(t.keypoints_m)
            hs.append(np.full(n, t.height_m, np.float32)), ms.append(np.full(n, t.mass_kg, np.float32))
            if n >= self.window:
                starts.append(offset + np.arange(n - self.window + 1))
            offset += n
        if not starts:
            raise ValueError(f"no trial has the {self.window} frames a training window needs")
        self.rel_in, self.rel_out = np.concatenate(ins), np.concatenate(outs)
        self.height_m, self.mass_kg, self.starts = np.concatenate(hs), np.concatenate(ms), np.concatenate(starts)
        return self

    def batch(self, rng: np.random.Generator, size: int, max_tilt_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """Features (size, window, 3K + 2) before standardisation and targets (size, window, 3M)."""
        idx = rng.choice(self.starts, size)[:, None] + np.arange(self.window)
        R = random_rotations(rng, size, max_tilt_deg)[:, None, None]  # (size, 1, 1, 3, 3)
        x = (R @ self.rel_in[idx][..., None])[..., 0]
        y = (R @ self.rel_out[idx][..., None])[..., 0]
        feats = np.concatenate([x.reshape(size, self.window, -1), self.height_m[idx][..., None], self.mass_kg[idx][..., None]], axis=2)
        return feats.astype(np.float32), y.reshape(size, self.window, -1).astype(np.float32)


def fit_standardisation(sampler: WindowSampler, rng: np.random.Generator, max_tilt_deg: float,
                        windows: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    feats, _ = sampler.batch(rng, windows, max_tilt_deg)
    flat = feats.reshape(-1, feats.shape[-1]).astype(np.float64)
    return flat.mean(axis=0), np.maximum(flat.std(axis=0), 1e-6)


def learning_rate(step: int, spec: TrainSpec) -> float:
    """Linear warm-up, then cosine decay to 3 % of the peak."""
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    f = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
    return spec.lr * (0.03 + 0.97 * 0.5 * (1 + np.cos(np.pi * f)))


def train_augmenter(name: str, keypoints: list[str], markers: list[str], trials: list[Trial], spec: TrainSpec,
                    device: str = "cpu", progress: bool = True, log=print) -> tuple[Augmenter, dict]:
    """Train one augmenter model; returns it (eval mode, on the CPU) and the loss history."""
    rng = np.random.default_rng(spec.seed)
    torch.manual_seed(spec.seed)
    anchors = [marker_anchor(m) for m in markers] if spec.anchored else None
    sampler = WindowSampler(keypoints, markers, spec.window, anchors).fill(trials)
    mean, std = fit_standardisation(sampler, rng, spec.max_tilt_deg)
    net = LSTMAugmenterNet(3 * len(keypoints) + 2, spec.hidden, 3 * len(markers)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=spec.lr)
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=device)
    history, running, t0 = [], None, time.time()
    bar = tqdm(range(spec.steps), desc=f"train {name}", unit="step", disable=not progress)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, spec)
        x, y = sampler.batch(rng, spec.batch, spec.max_tilt_deg)
        x = (torch.as_tensor(x, device=device) - mean_t) / std_t
        loss = torch.mean((net(x) - torch.as_tensor(y, device=device)) ** 2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 100 == 0 or step == spec.steps - 1:
            # RMS marker error in mm for a 1.75 m person, as the loss sees it
            rms_mm = 1000 * 1.75 * np.sqrt(3 * running)
            history.append({"step": step, "loss": running, "rms_mm": rms_mm, "lr": learning_rate(step, spec)})
            bar.set_postfix(rms_mm=f"{rms_mm:.1f}")
    net.eval()
    aug = Augmenter(name, list(keypoints), list(markers), list(spec.hidden), mean, std, net.cpu(), anchors=anchors)
    log(f"trained {name}: {spec.steps} steps in {time.time() - t0:.0f} s, final running RMS {history[-1]['rms_mm']:.1f} mm")
    return aug, {"steps": history, "n_steps": spec.steps, "seconds": time.time() - t0, "frames": int(len(sampler.rel_in)),
                 "windows": int(len(sampler.starts))}


def plot_history(histories: dict[str, dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, h in histories.items():
        steps = [s["step"] for s in h["steps"]]
        ax.plot(steps, [s["rms_mm"] for s in h["steps"]], label=name)
    ax.set(yscale="log", xlabel="step", ylabel="training RMS marker error (mm, 1.75 m person)", title="augmenter training")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_default(out_path: str | Path, data: DataSpec | None = None, step_scale: float = 1.0, held_out_subjects: int = 20,
                  device: str = "cpu", progress: bool = True, log=print, sources: list[ReplaySource] | None = None,
                  replay: ReplaySpec | None = None, members: int = 1) -> dict:
    """Make the training set (the motion library on ``data.subjects`` bodies, plus ``sources`` replayed
    on ``replay.subjects`` bodies when given), train the lower- and upper-body models, evaluate them on
    held-out subjects (clean and reconstruction-like inputs) and save everything to ``out_path`` (.pt).
    ``members`` > 1 trains an ensemble: member i draws its bodies and windows with seed ``data.seed + i``
    and ``augment`` averages the members (``ensemble_groups``); each member and the ensemble are evaluated
    on the same held-out subjects. Writes ``<out>.json`` (evaluation, history) and ``<out>_training.png``."""
    data = data or DataSpec()
    if members < 1:
        raise ValueError(f"members must be 1 or more, not {members}")
    t0 = time.time()
    held = make_trials(replace(data, subjects=held_out_subjects, seed=data.seed + 10_000))
    replay = (replay or ReplaySpec(seed=data.seed)) if sources else None
    models, metas, histories = [], [], {}
    for i in range(members):
        if members > 1:
            log(f"ensemble member {i + 1} of {members} (seed {data.seed + i}) ...")
        member_models, meta, hist = _train_member(replace(data, seed=data.seed + i), step_scale, device, progress, log,
                                                  sources, replace(replay, seed=replay.seed + i) if replay else None)
        meta["held_out"] = _rounded(held_out_errors(member_models, held))
        models += member_models
        metas.append(meta)
        histories.update({(f"{k} #{i + 1}" if members > 1 else k): h for k, h in hist.items()})
    evaluation = held_out_errors(models, held)
    meta = metas[0] if members == 1 else ensemble_meta(metas)
    meta = {**meta, "held_out": _rounded(evaluation), "total_seconds": round(time.time() - t0, 1)}
    out_path = Path(out_path)
    save_augmenters(out_path, models, meta)
    report = {**meta, "history": {k: h["steps"] for k, h in histories.items()}, "held_out_markers": evaluation}
    out_path.with_suffix(".json").write_text(json.dumps(report, indent=1, default=float))
    plot_history(histories, out_path.with_name(out_path.stem + "_training.png"))
    log(f"held-out RMSE: reconstruction-like inputs {evaluation['reconstructed']['all']:.1f} mm, "
        f"exact inputs {evaluation['exact']['all']:.1f} mm; total {time.time() - t0:.0f} s -> {out_path}")
    return report


def _train_member(data: DataSpec, step_scale: float, device: str, progress: bool, log, sources: list[ReplaySource] | None,
                  replay: ReplaySpec | None) -> tuple[list[Augmenter], dict, dict]:
    """One lower- and upper-body model pair trained on data drawn with ``data.seed``: (models, meta, histories)."""
    t0 = time.time()
    log(f"making training data: {data.subjects} subjects x {data.trials_per_subject} trials ...")
    trials = make_trials(data, progress=tqdm(range(data.subjects), desc="subjects", disable=not progress))
    if sources:
        log(f"replaying {len(sources)} recorded movements on {replay.subjects} bodies x {replay.trials_per_subject} ...")
        trials += replay_trials(sources, replay, progress=tqdm(range(replay.subjects), desc="replay", disable=not progress))
    n_frames = sum(len(t.keypoints_m) for t in trials)
    log(f"  {len(trials)} trials, {n_frames} frames in {time.time() - t0:.0f} s")
    models, histories = [], {}
    for name, (kp, mk, spec) in DEFAULT_SPECS.items():
        spec = replace(spec, steps=max(1, int(round(spec.steps * step_scale))), seed=data.seed)
        aug, hist = train_augmenter(name, kp, mk, trials, spec, device, progress, log)
        models.append(aug)
        histories[name] = hist
    meta = {
        "source": "trained by `python app.py augmenter train` on synthetic data from our model",
        "data": {"subjects": data.subjects, "trials_per_subject": data.trials_per_subject, "seed": data.seed,
                 "frames": n_frames, "duration_s": list(data.duration_s), "rate_hz": list(data.rate_hz),
                 "motion_mix": data.motion_mix, "errors": dict(data.errors.__dict__),
                 # recorded movements replayed (trial names of the shared lab data, read by bench/accuracy.py)
                 "shared_trials": [s.name for s in sources or []],
                 "replay": ({k: v for k, v in replay.__dict__.items() if k != "errors"} if sources else None)},
        "train": {name: {"hidden": DEFAULT_SPECS[name][2].hidden, "steps": h["n_steps"], "seconds": round(h["seconds"], 1)}
                  for name, h in histories.items()},
    }
    return models, meta, histories


def _rounded(evaluation: dict) -> dict:
    return {k: {"all_mm": round(v["all"], 2), "groups_mm": {g: round(x, 2) for g, x in v["groups"].items()}}
            for k, v in evaluation.items()}


def member_metas(meta: dict) -> list[dict]:
    """Each member's own metadata in a weights file's metadata: an ensemble lists them, a single model is its own."""
    return meta.get("members") or [meta]


def ensemble_meta(metas: list[dict]) -> dict:
    """What an ensemble file says about itself: every member's own metadata (an ensemble's members are
    flattened into it), and the shared-data trials any member replayed (what bench/accuracy.py must not count)."""
    flat = [m for meta in metas for m in member_metas(meta)]
    shared = sorted({t for m in flat for t in (m.get("data") or {}).get("shared_trials", [])})
    seeds = [(m.get("data") or {}).get("seed") for m in flat]
    return {"source": f"ensemble of {len(flat)} augmenters trained by `python app.py augmenter train` (seeds "
                      f"{', '.join(map(str, seeds))}); their markers are averaged",
            "data": {"shared_trials": shared, "seeds": seeds}, "members": flat}


def data_spec_of(meta: dict) -> DataSpec | None:
    """The DataSpec a (member's) metadata records, to draw its held-out subjects again; None when it records none."""
    d = meta.get("data") or {}
    if "motion_mix" not in d or "errors" not in d:
        return None
    errors = KeypointErrors(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d["errors"].items()})
    return DataSpec(subjects=d["subjects"], trials_per_subject=d["trials_per_subject"], duration_s=tuple(d["duration_s"]),
                    rate_hz=tuple(d["rate_hz"]), motion_mix=dict(d["motion_mix"]), errors=errors, seed=d["seed"])


def combine_files(paths: list[str | Path], out_path: str | Path, held_out_subjects: int = 20, log=print) -> dict:
    """One ensemble file from augmenter files trained alike (e.g. with other seeds, or on another machine):
    every model kept, ``augment`` averages those of one name. The ensemble and each input file are evaluated
    on the held-out subjects of the first file's recipe. Writes ``out_path`` and ``<out>.json``."""
    loaded = [load_augmenter_file(p) for p in paths]
    models = [m for ms, _ in loaded for m in ms]
    ensemble_groups(models)  # refuses members of different layouts
    meta = ensemble_meta([meta for _, meta in loaded])
    spec = data_spec_of(meta["members"][0])
    evaluation = None
    if spec is not None:
        log(f"evaluating the ensemble of {len(paths)} files on {held_out_subjects} held-out synthetic subjects ...")
        held = make_trials(replace(spec, subjects=held_out_subjects, seed=spec.seed + 10_000))
        evaluation = held_out_errors(models, held)
        meta["held_out"] = _rounded(evaluation)
        meta["held_out_inputs"] = {str(p): _rounded(held_out_errors(ms, held)) for p, (ms, _) in zip(paths, loaded)}
    out_path = Path(out_path)
    save_augmenters(out_path, models, meta)
    out_path.with_suffix(".json").write_text(json.dumps({**meta, "held_out_markers": evaluation}, indent=1, default=float))
    if evaluation:
        parts = [f"{p} {v['reconstructed']['all_mm']:.1f}" for p, v in meta["held_out_inputs"].items()]
        log(f"held-out RMSE (reconstruction-like inputs): ensemble {evaluation['reconstructed']['all']:.1f} mm; "
            f"inputs {', '.join(parts)} -> {out_path}")
    return meta
