"""Velocity-based synchronisation of unsynchronised phones.

Each camera's subject keypoints become speed signals, one per keypoint: positions divided by the
person's size (so near and far phones compare), resampled with cubic splines onto a fine uniform
grid of the camera's own clock (so different and variable frame rates compare), low-passed with the
same zero-lag filter for every camera, and differentiated. Two cameras are compared by the Pearson
correlation of all keypoint channels together (sums of covariances over sums of variances, each
channel over the samples both cameras have; a point below the confidence threshold is missing, not
zero). A camera whose detector labelled the whole trial mirrored (a tracker that started on a
person facing away) is compared both as labelled and mirrored, and the better fit counts.
Keeping keypoints apart matters: each joint's speed has the same timing in every view, while
an average over joints mixes them with view-dependent weights (measured on the Pose2Sim demo:
pairwise lags disagreed by up to 3.5 frames averaged, 0.9 frames per keypoint). The correlation is
evaluated at every lag in the window, the best lag refined to sub-sample precision with a parabola
through the peak, and all camera pairs are combined by weighted least squares into one offset per
camera (the first camera is the reference).

Convention: ``offset_s`` is added to a camera's own timestamps to put them on the common clock
(the reference camera's). A phone that started 0.3 s after the reference has offset +0.3 s.
"""
from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import make_interp_spline

from core.keypoints import CONFIDENT, VIDEO_KEYPOINTS, body_size, mirror_index
from core.gaps import nan_runs
from core.signal import parabolic_peak, zero_lag_lowpass
from sessions.settings import SyncSettings

STILL_WARNING = ("record a short, clear movement at the start of every trial (a squat or raising both arms) "
                 "with every phone already recording, so the phones can be synchronised")


@dataclass
class SpeedSignal:
    """Scale-normalised keypoint speed on a uniform grid of one camera's clock."""

    t0_s: float  # camera time of sample 0
    rate_hz: float
    speed: np.ndarray  # (samples, keypoints) body heights per second, NaN where unknown
    mean_speed: np.ndarray  # (samples,) mean speed of the keypoints seen, for plots and the stillness check

    @property
    def time_s(self) -> np.ndarray:
        return self.t0_s + np.arange(len(self.speed)) / self.rate_hz


@dataclass
class PairLag:
    a: int
    b: int
    offset_s: float  # offset of b minus offset of a
    r: float  # Pearson correlation at the best lag
    r_second: float  # best correlation away from the peak (ambiguity)


@dataclass
class SyncResult:
    offsets_s: np.ndarray  # (cameras,)
    confidence: np.ndarray  # (cameras,) correlation supporting each offset, 1 for the reference
    pairs: list[PairLag]
    residual_ms: float  # RMS disagreement of the pairwise lags with the final offsets
    motion: np.ndarray  # (cameras,) median speed, body heights per second
    warnings: list[str] = field(default_factory=list)


def speed_signal(time_s: np.ndarray, kp: np.ndarray, cfg: SyncSettings, rate_hz: float,
                 min_conf: float = CONFIDENT) -> SpeedSignal:
    """time_s: (frames,) camera clock; kp: (frames, K, 3) pixels and confidence of one person; the signal
    is sampled at ``rate_hz`` (the sync stage: sync.rate_hz) and low-passed at sync.lowpass_hz."""
    lowpass_hz = cfg.lowpass_hz
    size = body_size(kp, min_conf)
    scale = float(np.nanmedian(size)) if np.isfinite(size).any() else np.nan
    grid = np.arange(time_s[0], time_s[-1], 1.0 / rate_hz)
    if not np.isfinite(scale) or len(time_s) < 8:
        return SpeedSignal(float(time_s[0]), rate_hz, np.full((len(grid), kp.shape[1]), np.nan), np.full(len(grid), np.nan))
    pos = np.where((kp[..., 2] >= min_conf)[..., None], kp[..., :2] / scale, np.nan)  # (F, K, 2)
    # Resample first, then low-pass on the common grid: every camera then gets the very same filter,
    # whatever its frame rate, so no camera's signal is shaped (or shifted) differently.
    on_grid = np.full((len(grid),) + pos.shape[1:], np.nan)
    for k in range(kp.shape[1]):
        valid = np.isfinite(pos[:, k, 0])
        for s, e in nan_runs(~valid):  # runs of valid frames
            if e - s < 6:
                continue
            t = time_s[s:e]
            inside = (grid >= t[0]) & (grid <= t[-1])
            on_grid[inside, k] = make_interp_spline(t, pos[s:e, k], k=3, axis=0)(grid[inside])
    smooth = on_grid.copy() if lowpass_hz <= 0 else zero_lag_lowpass(
        on_grid, rate_hz, lowpass_hz, padlen=int(round(3 * rate_hz / lowpass_hz)),  # three filter time constants
        trim=int(round(cfg.edge_trim_periods * rate_hz / lowpass_hz)))  # edge transients would differ between cameras and bias the lag
    vel = np.gradient(smooth, 1.0 / rate_hz, axis=0) if len(grid) > 1 else np.zeros_like(smooth)
    speed = np.linalg.norm(vel, axis=-1)  # (samples, K)
    seen = np.isfinite(speed).sum(axis=1)
    mean = np.where(seen > 0, np.nansum(speed, axis=1) / np.maximum(seen, 1), np.nan)
    return SpeedSignal(float(time_s[0]), rate_hz, speed, mean)


def mirrored(sig: SpeedSignal) -> SpeedSignal:
    """The same signal with every left keypoint's channel exchanged with its right partner's."""
    if sig.speed.shape[1] != len(VIDEO_KEYPOINTS):
        return sig
    return SpeedSignal(sig.t0_s, sig.rate_hz, sig.speed[:, mirror_index()], sig.mean_speed)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of all channels together. a, b: (samples, channels), NaN = missing."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=0)
    use = n >= 3
    if not use.any():
        return np.nan
    a, b, ok, n = a[:, use], b[:, use], ok[:, use], n[use]
    a0, b0 = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    a0 = np.where(ok, a0 - a0.sum(axis=0) / n, 0.0)
    b0 = np.where(ok, b0 - b0.sum(axis=0) / n, 0.0)
    d = np.sqrt(np.sum(a0 * a0) * np.sum(b0 * b0))
    return float(np.sum(a0 * b0) / d) if d > 0 else np.nan


def lag_correlation(a: SpeedSignal, b: SpeedSignal, max_lag_s: float, min_overlap_s: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlation at every candidate offset of b relative to a. Returns (offsets_s, r, overlap) with
    r NaN where the overlap is too short and overlap the shared share of the shorter signal."""
    if a.rate_hz != b.rate_hz:
        raise ValueError("speed signals must share a sampling rate")
    rate = a.rate_hz
    base = a.t0_s - b.t0_s  # offset when sample i of a lines up with sample i of b
    k_lo = int(np.floor((base - max_lag_s) * rate))
    k_hi = int(np.ceil((base + max_lag_s) * rate))
    ks = np.arange(k_lo, k_hi + 1)
    offsets = base - ks / rate
    r = np.full(len(ks), np.nan)
    overlap = np.zeros(len(ks))
    na, nb = len(a.speed), len(b.speed)
    min_n = int(min_overlap_s * rate)
    for n, k in enumerate(ks):
        i0, i1 = max(0, -k), min(na, nb - k)  # a[i] pairs with b[i + k]
        if i1 - i0 < max(min_n, 3):
            continue
        overlap[n] = (i1 - i0) / min(na, nb)
        r[n] = _pearson(a.speed[i0:i1], b.speed[i0 + k:i1 + k])
    return offsets, r, overlap


def best_offset(offsets: np.ndarray, r: np.ndarray, overlap: np.ndarray | None = None,
                exclusion_s: float = 0.25) -> tuple[float, float, float, float]:
    """Peak of the correlation with parabolic sub-sample refinement. Returns (offset_s, r_peak, r_second,
    score_peak).

    The peak is chosen on the score, r times the overlap share: a short overlap at the edge of the window
    correlates well by chance. Its position is then refined on r alone."""
    if not np.isfinite(r).any():
        return np.nan, np.nan, np.nan, np.nan
    score = r * (overlap if overlap is not None else 1.0)
    i = int(np.nanargmax(score))
    frac, peak = parabolic_peak(r, i)
    off = float(offsets[i]) + (frac * float(offsets[i + 1] - offsets[i]) if frac else 0.0)
    away = np.abs(offsets - offsets[i]) > exclusion_s
    second = float(np.nanmax(score[away])) if np.isfinite(score[away]).any() else np.nan
    return off, peak, second, float(score[i])


def synchronise(signals: list[SpeedSignal], cfg: SyncSettings, names: list[str] | None = None) -> SyncResult:
    """Offsets of every camera from all pairwise lags (weights r^2; camera 0 is the reference), within
    sync.max_lag_s, over at least sync.min_overlap_share; pairs below sync.min_pair_correlation unused."""
    max_lag_s, min_overlap_share = cfg.max_lag_s, cfg.min_overlap_share
    min_pair_r, warn_r, still_speed = cfg.min_pair_correlation, cfg.warn_correlation, cfg.still_speed
    n = len(signals)
    names = names or [f"camera {i}" for i in range(n)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        motion = np.array([float(np.nanmedian(s.mean_speed)) if np.isfinite(s.speed).any() else 0.0 for s in signals])
    pairs: list[PairLag] = []
    for i, j in itertools.combinations(range(n), 2):
        dur = min(len(signals[i].speed), len(signals[j].speed)) / signals[i].rate_hz
        fits = [best_offset(*lag_correlation(signals[i], b, max_lag_s, min_overlap_share * dur))
                for b in (signals[j], mirrored(signals[j]))]
        # As labelled or mirrored: judged on the same score as the lags (r times overlap). In walking,
        # mirrored labels half a stride away also correlate well, but over less of the trial; on r alone
        # they won on a short walking trial (1.1 s, 2 steps) and put the phones 0.55 s apart.
        off, peak, second, _ = max(fits, key=lambda f: f[3] if np.isfinite(f[3]) else -np.inf)
        pairs.append(PairLag(i, j, off, peak, second))
    used = [p for p in pairs if np.isfinite(p.r) and p.r >= min_pair_r]
    offsets = np.zeros(n)
    confidence = np.zeros(n)
    confidence[0] = 1.0
    residual = np.nan
    if used and n > 1:
        A = np.zeros((len(used), n - 1))
        y = np.zeros(len(used))
        w = np.zeros(len(used))
        for row, p in enumerate(used):
            if p.b > 0:
                A[row, p.b - 1] += 1.0
            if p.a > 0:
                A[row, p.a - 1] -= 1.0
            y[row], w[row] = p.offset_s, p.r ** 2
        sw = np.sqrt(w)
        sol, *_ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
        reachable = _reachable(n, used)
        offsets[1:] = np.where(reachable[1:], sol, 0.0)
        residual = float(np.sqrt(np.mean((A @ sol - y) ** 2))) * 1000.0
        for c in range(1, n):
            rs = [p.r for p in used if c in (p.a, p.b)]
            # A still subject correlates on noise: scale confidence down below the movement needed.
            moving = min(1.0, min(motion[c], motion[0]) / still_speed) if still_speed > 0 else 1.0
            confidence[c] = max(rs) * moving if reachable[c] and rs else 0.0
    msgs = []
    for c in range(1, n):
        if confidence[c] < warn_r:
            msgs.append(f"{names[c]}: synchronisation is uncertain (best correlation {confidence[c]:.2f}); "
                        + ("its offset could not be found and was set to 0; " if confidence[c] == 0 else "") + STILL_WARNING)
    for c in range(n):
        if motion[c] < still_speed:
            msgs.append(f"{names[c]}: the subject hardly moves ({motion[c]:.3f} body heights/s); {STILL_WARNING}")
    return SyncResult(offsets, confidence, pairs, residual, motion, msgs)


def _reachable(n: int, pairs: list[PairLag]) -> np.ndarray:
    """Cameras connected to the reference through usable pairs."""
    seen = {0}
    changed = True
    while changed:
        changed = False
        for p in pairs:
            if (p.a in seen) != (p.b in seen):
                seen |= {p.a, p.b}
                changed = True
    return np.array([c in seen for c in range(n)])
