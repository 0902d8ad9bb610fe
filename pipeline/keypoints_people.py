"""Keep the subject: link each camera's detections into tracks, then choose the subject's track.

Tracking: detections of consecutive frames are matched (Hungarian assignment) by the median distance
of their common keypoints, relative to the person's size, to where each track's own velocity puts it,
plus the change of size (a person's size in the picture hardly changes between frames); a track
survives gaps of up to ``max_gap_frames`` so a subject lost for a moment is picked up again by the
same track.

Choice: per camera, tracks are scored by coverage (share of frames) x size (median body height
over image height) x mean confidence x framing (how near the image's vertical centre line the
person stays: phones are aimed at the subject). When other people are present, the subject is the
combination of tracks, one per camera, that agrees best across cameras (
``subject_agreement``): with calibrated cameras, combinations that cannot be one person are out;
among the rest, the subject is filmed the whole trial, framed in the middle, and moves the same in
every view. A hint in session.yaml (``subject.seen_at``: where the subject is in one camera at one
moment) fixes the subject's track in that camera (``hinted_track``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.keypoints import CONFIDENT, body_centre, body_size, mirror_index
from pipeline.sync_offsets import speed_signal, synchronise
from sessions.settings import KeypointsSettings, SyncSettings

MIRROR = mirror_index()
# Speed signals for telling people apart are sampled coarser than the sync stage's (sync.rate_hz):
# only the shape of the movement matters here, and every track of every camera gets one.
AGREEMENT_RATE_HZ = 50.0


@dataclass
class TrackInfo:
    track: int
    coverage: float  # share of frames with this person
    size: float  # median body height / image height
    confidence: float  # mean keypoint confidence where present
    framing: float  # 1 - median horizontal distance of the body centre from the image centre / half width
    score: float
    first_frame: int = -1  # where the person is first seen, and their body centre there (pixels)
    first_centre_px: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def prior(self) -> float:
        """How much this looks like the filmed subject from one camera alone: always there, in the middle."""
        return self.coverage * self.framing



def resize(a: np.ndarray, b: np.ndarray, free: float, min_conf: float = CONFIDENT) -> float:
    """|log| of the size ratio of two detections, measured on the keypoints confident in both as the
    median distance from their median point, so that neither one wild keypoint nor a keypoint seen in
    only one of them changes it (a bounding box does). a, b: (K, 3); 0 with fewer than 3 in common."""
    ok = (a[:, 2] >= min_conf) & (b[:, 2] >= min_conf)
    if ok.sum() < 3:
        return 0.0
    sa, sb = (float(np.median(np.linalg.norm(p[ok, :2] - np.median(p[ok, :2], axis=0), axis=1))) for p in (a, b))
    return max(abs(float(np.log(sb / sa))) - free, 0.0) if sa > 0 and sb > 0 else 0.0


def pose_distance(a: np.ndarray, b: np.ndarray, min_conf: float = CONFIDENT) -> float:
    """Median distance of common confident keypoints over the larger body size, the smaller of b as
    labelled and b mirrored (a left/right flip is the same person; pipeline/keypoints_swaps.py relabels it).
    a, b: (K, 3)."""
    size = np.nanmax([body_size(a[None])[0], body_size(b[None])[0], 1.0])
    best = np.inf
    for bb in (b, b[MIRROR]):
        ok = (a[:, 2] >= min_conf) & (bb[:, 2] >= min_conf)
        if ok.sum() >= 3:
            best = min(best, float(np.median(np.linalg.norm(a[ok, :2] - bb[ok, :2], axis=1)) / size))
    return best


def drop_duplicates(frame_people: np.ndarray, same_distance: float = 0.15) -> list[int]:
    """Slots of one frame worth keeping: a detection that repeats another one (same person found
    twice, e.g. by a second tracker seeing part of them) is dropped, keeping the more confident."""
    present = [p for p in range(frame_people.shape[0]) if np.sum(frame_people[p, :, 2] > 0) >= 3]
    present.sort(key=lambda p: -float(np.sum(frame_people[p, :, 2])))
    keep: list[int] = []
    for p in present:
        if all(pose_distance(frame_people[p], frame_people[q]) > same_distance for q in keep):
            keep.append(p)
    return keep


def link_tracks(people: np.ndarray, cfg: KeypointsSettings, max_gap_frames: int) -> np.ndarray:
    """Per-frame detections -> tracks.

    people: (frames, P, K, 3) detections, confidence 0 where a slot is empty.
    returns: (frames, T, K, 3) one slot per track, NaN / 0 where the track has no detection.
    A track that missed frames costs a little more to match (0.005 body heights per frame), so a
    detection continues the most recently seen of two similar tracks. Each track's pose is carried on by
    its velocity (at most keypoints.track_predict_frames) and a detection of another size costs its
    |log size ratio| beyond keypoints.track_resize_free (``resize``): two people crossing, or one passing
    in front of the other, keep their own tracks. Detections match a track within
    keypoints.max_track_distance (body heights); a track waits ``max_gap_frames`` for its person.
    """
    max_distance, predict_frames = cfg.max_track_distance, cfg.track_predict_frames
    n_frames = people.shape[0]
    tracks: list[dict] = []  # last pose, its velocity (px/frame), last frame, frames {frame: slot}
    for f in range(n_frames):
        dets = drop_duplicates(people[f])
        alive = [t for t in range(len(tracks)) if f - tracks[t]["last_frame"] <= max_gap_frames]
        cost = np.full((len(alive), len(dets)), np.inf)
        for i, t in enumerate(alive):
            tr = tracks[t]
            stale = 0.005 * (f - tr["last_frame"] - 1)
            # Where the person should be now, moving on as they moved (over a few frames at most): two
            # people crossing keep their own tracks instead of swapping where their poses overlap.
            predicted = tr["pose"].copy()
            predicted[:, :2] += tr["velocity"] * min(f - tr["last_frame"], predict_frames)
            for j, p in enumerate(dets):
                # a person's size in the picture changes little from frame to frame: someone passing in
                # front (much bigger) is not the subject they hide, even where their keypoints overlap
                cost[i, j] = pose_distance(predicted, people[f, p]) + stale + resize(predicted, people[f, p], cfg.track_resize_free)
        matched: set[int] = set()
        if alive and dets:
            finite = np.where(np.isfinite(cost), cost, 1e6)
            rows, cols = linear_sum_assignment(finite)
            for r, c in zip(rows, cols):
                if cost[r, c] <= max_distance:
                    t, p = alive[r], dets[c]
                    tr = tracks[t]
                    gap = f - tr["last_frame"]
                    if gap <= predict_frames:  # per-frame step, also across a short gap (flickering occlusion)
                        step = np.nan_to_num(people[f, p, :, :2] - tr["pose"][:, :2]) / gap
                        tr["velocity"] = 0.5 * tr["velocity"] + 0.5 * step
                    else:  # after a long gap the old velocity says little
                        tr["velocity"] = np.zeros_like(tr["velocity"])
                    tr.update(pose=people[f, p], last_frame=f)
                    tr["frames"][f] = p
                    matched.add(p)
        for p in dets:
            if p not in matched:
                tracks.append({"pose": people[f, p], "velocity": np.zeros((people.shape[2], 2)), "last_frame": f, "frames": {f: p}})
    out = np.full((n_frames, max(len(tracks), 1)) + people.shape[2:], np.nan)
    out[..., 2] = 0.0
    for t, tr in enumerate(tracks):
        for f, p in tr["frames"].items():
            out[f, t] = people[f, p]
    return merge_tracks(out, 2 * max_distance, max_gap_frames)


def merge_tracks(tracks: np.ndarray, max_distance: float, max_gap_frames: int) -> np.ndarray:
    """Join tracks that never overlap in time where one ends near where the other starts (a person
    lost for longer than the tracker's patience, or found again after a false start). (frames, T, K, 3)."""
    tracks = tracks.copy()
    while True:
        present = np.sum(tracks[..., 2] > 0, axis=-1) >= 3  # (F, T)
        spans = [(np.flatnonzero(present[:, t])[[0, -1]] if present[:, t].any() else None) for t in range(tracks.shape[1])]
        best = None
        for a in range(tracks.shape[1]):
            for b in range(tracks.shape[1]):
                if a == b or spans[a] is None or spans[b] is None:
                    continue
                gap = spans[b][0] - spans[a][1]
                if gap < 1 or gap > max_gap_frames:
                    continue
                d = pose_distance(tracks[spans[a][1], a], tracks[spans[b][0], b])
                if d <= max_distance and (best is None or d < best[0]):
                    best = (d, a, b)
        if best is None:
            return tracks[:, [t for t in range(tracks.shape[1]) if present[:, t].any()] or [0]]
        _, a, b = best
        tracks[present[:, b], a] = tracks[present[:, b], b]
        tracks[:, b, :, :2] = np.nan
        tracks[:, b, :, 2] = 0.0



def track_infos(tracks: np.ndarray, image_height: float, image_width: float | None = None) -> list[TrackInfo]:
    """Score every track. tracks: (frames, T, K, 3). Without the image width, framing counts as 1."""
    infos = []
    for t in range(tracks.shape[1]):
        kp = tracks[:, t]
        present = np.sum(kp[..., 2] > 0, axis=-1) >= 3
        if not present.any():
            infos.append(TrackInfo(t, 0.0, 0.0, 0.0, 0.0, 0.0))
            continue
        size = float(np.nanmedian(body_size(kp[present]))) / image_height
        conf = float(np.mean(kp[present][..., 2]))
        cov = float(present.mean())
        centre = body_centre(kp[present])
        framing = 1.0
        if image_width:
            offset = np.nanmedian(np.abs(centre[:, 0] - image_width / 2)) / (image_width / 2)
            framing = float(np.clip(1.0 - offset, 0.0, 1.0)) if np.isfinite(offset) else 0.0
        first = int(np.flatnonzero(present)[0])
        infos.append(TrackInfo(t, cov, size, conf, framing, cov * size * conf * framing, first,
                               (round(float(centre[0, 0]), 1), round(float(centre[0, 1]), 1))))
    return infos


def hinted_track(tracks: np.ndarray, times_s: np.ndarray, point_px: tuple[float, float], time_s: float,
                 max_distance: float = 0.5) -> int | None:
    """The track at ``point_px`` around ``time_s``: in the frame nearest that time where anyone is seen,
    the track whose confident keypoints' bounding box holds the point, or else whose box is nearest
    (within ``max_distance`` body heights). tracks: (frames, T, K, 3); None when nobody is there."""
    present = np.sum(tracks[..., 2] > 0, axis=-1) >= 3  # (F, T)
    frames = np.flatnonzero(present.any(axis=1))
    if not len(frames):
        return None
    f = frames[np.argmin(np.abs(times_s[frames] - time_s))]
    best, best_d = None, np.inf
    for t in np.flatnonzero(present[f]):
        kp = tracks[f, t]
        ok = kp[:, 2] >= CONFIDENT
        if ok.sum() < 2:
            continue
        lo, hi = kp[ok, :2].min(0), kp[ok, :2].max(0)
        gap = np.maximum(np.maximum(lo - point_px, np.asarray(point_px) - hi), 0.0)
        d = float(np.linalg.norm(gap)) / max(float(body_size(kp[None])[0]), 1.0)
        if d < best_d:
            best, best_d = int(t), d
    return best if best_d <= max_distance else None


def candidates(infos: list[TrackInfo], max_candidates: int = 3, min_share: float = 0.3) -> list[int]:
    """Tracks worth considering as the subject: the best few by score, none far below the best in
    score or in coverage (the subject is filmed for the whole trial)."""
    ranked = sorted(infos, key=lambda i: -i.score)
    if not ranked or ranked[0].score <= 0:
        return []
    top_cov = max(i.coverage for i in infos)
    return [i.track for i in ranked[:max_candidates]
            if i.score >= min_share * ranked[0].score and i.coverage >= min_share * top_cov]


def choose_subject(options: list[list[int]], agreement) -> tuple[int, ...]:
    """The combination of candidate tracks (one per camera, ``options[c]`` best first) with the best
    ``agreement(combo) -> float`` (higher is better); ties and failed evaluations keep the per-camera best."""
    best = tuple(o[0] for o in options)
    if all(len(o) == 1 for o in options):
        return best
    best_value = agreement(best)
    for combo in itertools.product(*options):
        v = agreement(combo)
        if np.isfinite(v) and (not np.isfinite(best_value) or v > best_value + 1e-9):
            best, best_value = combo, v
    return best


def reprojection_error(cameras, times: list[np.ndarray], tracks: list[np.ndarray], max_frames: int = 150):
    """error(combo): median reprojection error, in body heights, of the chosen tracks triangulated
    together. Frames are paired by nearest time on each phone's own clock (before sync), so a moving
    subject adds some error; two different people add far more."""
    from calibration.camera_group import CameraGroup

    group = CameraGroup(list(cameras))
    ref = times[0]
    frames = np.linspace(0, len(ref) - 1, min(max_frames, len(ref))).round().astype(int)
    idx = [np.clip(np.searchsorted(t, ref[frames]), 0, len(t) - 1) for t in times]

    def error(combo) -> float:
        obs = np.stack([tracks[c][idx[c], t] for c, t in enumerate(combo)])  # (C, F, K, 3)
        C = len(group)
        w = np.where(obs[..., 2] >= CONFIDENT, obs[..., 2], 0.0).reshape(C, -1)
        uv = obs[..., :2].reshape(C, -1, 2)
        pts = group.triangulate(uv, w)
        ok = np.isfinite(pts[:, 0])
        if ok.sum() < 10:
            return np.inf
        err = group.errors_px(pts[ok], uv[:, ok]) / np.array([np.nanmedian(body_size(obs[c])) for c in range(C)])[:, None]
        return float(np.median(err[w[:, ok] > 0]))

    return error


def subject_agreement(times: list[np.ndarray], tracks: list[np.ndarray], infos: list[list[TrackInfo]],
                      cfg: KeypointsSettings, sync: SyncSettings, cameras=None):
    """agreement(combo) for choose_subject. With calibrated cameras, combinations that cannot be one
    person are out (their joint triangulation misses by more than keypoints.same_person_max_error body
    heights). Among the rest: keypoints.framing_weight x the mean of each track's prior (filmed the whole
    trial, in the middle of the picture: the phones are aimed at the subject; TrackInfo.prior), plus the
    mean pairwise correlation of their movement (one person moves the same way in every view; different
    people do not), plus a small bonus for being large and confident (which decides when nobody moves).
    Movement alone is not enough: a second person walking around moves the same in every view too."""
    cache: dict[tuple[int, int], Any] = {}
    best = [max(i.score for i in inf) or 1.0 for inf in infos]
    geometry = reprojection_error(cameras, times, tracks) if cameras is not None else None

    def signal(c: int, t: int):
        if (c, t) not in cache:
            cache[(c, t)] = speed_signal(times[c], tracks[c][:, t], sync, AGREEMENT_RATE_HZ)
        return cache[(c, t)]

    def agreement(combo) -> float:
        if geometry is not None and geometry(combo) > cfg.same_person_max_error:
            return -np.inf
        res = synchronise([signal(c, t) for c, t in enumerate(combo)], sync)
        rs = [p.r for p in res.pairs]
        moving = float(np.nanmean(rs)) if np.isfinite(rs).any() else 0.0
        prior = float(np.mean([infos[c][t].prior for c, t in enumerate(combo)]))
        return cfg.framing_weight * prior + moving + 0.1 * float(np.mean([infos[c][t].score / best[c] for c, t in enumerate(combo)]))

    return agreement
