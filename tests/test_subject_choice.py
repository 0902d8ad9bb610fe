"""Keeping the right subject when a second person is in view: someone walking around the subject (who
moves the same way in every view, as the subject does), someone crossing in front of or behind them
(hiding them for a moment), a hint in session.yaml, and the listing of the people seen."""
from __future__ import annotations

from dataclasses import replace

import warnings

import numpy as np
import pytest

from demo.make_demo_session import skeleton
from pipeline.keypoints_people import subject_agreement
from pipeline.keypoints_people import candidates, choose_subject, hinted_track, link_tracks, track_infos
from pipeline.keypoints_swaps import fix_swaps
from tests.test_person_sync import SECONDS, camera, subject_3d
from tests.conftest import SETTINGS

FPS = 60.0


def circling(t: np.ndarray, radius_m: float, phase: float, period_s: float = 5.5) -> np.ndarray:
    """A second person walking round the subject (standing posture, feet on the floor)."""
    a = 2 * np.pi * t / period_s + phase
    out = skeleton(np.zeros_like(t), 0.0 * t).copy()
    out[..., 0] += radius_m * np.cos(a)[:, None]
    out[..., 2] += radius_m * np.sin(a)[:, None]
    return out


def crossing(t: np.ndarray, depth_m: float) -> np.ndarray:
    """A second person crossing the room sideways at ``depth_m`` in front of (+) or behind (-) the subject."""
    s = np.clip((t - 1.5) / 3.0, 0, 1)
    out = skeleton(np.zeros_like(t), 0.0 * t).copy()
    out[..., 0] += depth_m
    out[..., 2] += (-2.5 + 5.0 * s)[:, None]
    return out


def observe(cam, other_3d, rng):
    """One camera's detections of both people, (frames, 2, 20, 3), slots in random order; the subject is
    not detected while the other person covers most of them from nearer; nobody is detected off the
    picture. Returns times, detections and both truths (frames, 20, 2)."""
    t = np.arange(0.0, SECONDS - 0.5, 1.0 / FPS)
    s3, o3 = subject_3d(t), other_3d(t)
    s2, o2 = (cam.project(p.reshape(-1, 3)).reshape(len(t), 20, 2) for p in (s3, o3))
    depth = [((p.reshape(-1, 3) @ cam.R.T) + cam.t.ravel())[:, 2].reshape(len(t), 20).mean(1) for p in (s3, o3)]
    lo = np.maximum(s2.min(1), o2.min(1))
    hi = np.minimum(s2.max(1), o2.max(1))
    covered = np.prod(np.clip(hi - lo, 0, None), 1) / np.prod(s2.max(1) - s2.min(1), 1)
    hidden = (covered > 0.5) & (depth[1] < depth[0])
    dets = []
    for p2, gone in ((s2, hidden), (o2, np.zeros(len(t), bool))):
        d = np.concatenate([p2 + rng.normal(0, 1.0, p2.shape), np.full(p2.shape[:2] + (1,), 0.9)], -1)
        gone = gone | (p2[..., 0].max(1) < 0) | (p2[..., 0].min(1) > 1080)
        d[gone, :, :2], d[gone, :, 2] = np.nan, 0.0
        dets.append(d)
    people = np.stack(dets, 1)
    swap = rng.random(len(t)) < 0.5
    people[swap] = people[swap][:, ::-1]
    return t, people, s2, o2


def frames_on(track: np.ndarray, truth: np.ndarray) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        d = np.nanmedian(np.linalg.norm(track[..., :2] - truth, axis=-1), axis=1)
    return int(np.sum(d < 10.0))


def choose(obs, cams, framing: bool = True):
    """The stage's choice; framing=False is the previous version's (movement and size only)."""
    tracks = [link_tracks(people, SETTINGS.keypoints, 60) for _, people, _, _ in obs]
    infos = [track_infos(tr, 1920, 1080 if framing else None) for tr in tracks]
    options = [candidates(i) for i in infos]
    times = [o[0] for o in obs]
    chosen = choose_subject(options, subject_agreement(times, tracks, infos, replace(SETTINGS.keypoints, framing_weight=1.0 if framing else 0.0), SETTINGS.sync, cams))
    return [fix_swaps(tr[:, c], SETTINGS.keypoints.swap_prior)[0] for tr, c in zip(tracks, chosen)]


def circling_scene(seed: int):
    rng = np.random.default_rng(seed)
    radius, phase = rng.uniform(1.0, 2.0), rng.uniform(0, 2 * np.pi)
    cams = [camera("A", 20.0), camera("B", -50.0)]
    return cams, [observe(c, lambda t: circling(t, radius, phase), rng) for c in cams]


def subject_kept(cams, obs) -> bool:
    """The chosen track is the subject in >= 95 % of its frames and the walker in <= 2 %, both cameras."""
    for subj, (_, _, truth, other) in zip(choose(obs, cams), obs):
        present = int(np.sum(subj[:, :, 2].max(1) > 0))
        if frames_on(subj, other) > 0.02 * present or frames_on(subj, truth) < 0.95 * present or present < 250:
            return False
    return True


# Over seeds 0-39 the previous version (movement only; linking without prediction or size continuity)
# kept the subject in 15: it followed the walker for the whole trial (both cameras) or switched to
# them while they passed in front. This version keeps the subject in 39 (the slow test below); in
# seed 34 a walker circling at 1.0 m, framed almost as centrally as the subject (these cameras aim
# 0.5 m beside the subject), is chosen: subject.seen_at is the remedy there.
@pytest.mark.parametrize("seed", range(4))
def test_subject_kept_when_someone_walks_around_them(seed):
    cams, obs = circling_scene(seed)
    assert subject_kept(None, obs) and subject_kept(cams, obs)


@pytest.mark.slow
def test_subject_kept_in_40_walks_around_them():
    kept = [subject_kept(*circling_scene(seed)) for seed in range(40)]
    assert [i for i, k in enumerate(kept) if not k] == [34]


def test_movement_alone_follows_the_walker():
    """The failure this guards against, reproduced: the previous version's choice (movement and size,
    no framing) follows the walker in both cameras for the whole trial."""
    cams, obs = circling_scene(2)
    assert all(frames_on(s, o[3]) > 100 and frames_on(s, o[2]) == 0 for s, o in zip(choose(obs, cams, framing=False), obs))
    assert subject_kept(cams, obs)


@pytest.mark.parametrize("depth_m", [1.0, -1.2])
def test_subject_kept_through_a_crossing_in_front_and_behind(depth_m):
    rng = np.random.default_rng(7)
    cams = [camera("A", 20.0), camera("B", -50.0)]
    obs = [observe(c, lambda t: crossing(t, depth_m), rng) for c in cams]
    for subj, (_, _, truth, other) in zip(choose(obs, cams), obs):
        assert frames_on(subj, other) <= 2  # at most a frame or two where both overlap exactly
        assert frames_on(subj, truth) >= 0.97 * int(np.sum(subj[:, :, 2].max(1) > 0))


def test_hint_picks_the_person_at_a_point():
    rng = np.random.default_rng(0)
    cam = camera("A", 20.0)
    t, people, truth, other = observe(cam, lambda t: circling(t, 1.5, 1.0), rng)
    tracks = link_tracks(people, SETTINGS.keypoints, 60)
    for who in (truth, other):
        f = int(np.flatnonzero(np.isfinite(who[:, 0, 0]) & (who[:, :, 0].min(1) > 0))[10])
        point = tuple(np.nanmean(who[f], axis=0))
        k = hinted_track(tracks, t, point, t[f])
        assert k is not None and frames_on(tracks[:, k], who) > 100
    assert hinted_track(tracks, t, (5.0, 5.0), 1.0) is None  # a corner where nobody is


@pytest.fixture(scope="module", params=["circle", "cross"])
def rendered_two_people(request, tmp_path_factory):
    """The demo's subject squatting while a second person walks round them or crosses in front, rendered
    (demo/two_people.py) for the demo's two phones."""
    from demo.two_people import make_session

    root = tmp_path_factory.mktemp(f"two_{request.param}")
    make_session(root, request.param)
    return root


def _subject_frames(root, backend: str) -> list[tuple[int, int, int]]:
    """(frames found, frames on the subject, frames on the other person) per camera after keypoints."""
    import shutil

    from pipeline.keypoints import read_keypoints_csv
    from pipeline.orchestrate import run_session

    run_dir = root.parent / f"{root.name}_{backend}"
    shutil.copytree(root, run_dir)
    run_session(run_dir, overrides={"run": {"stages": ["frames", "keypoints"]}, "keypoints": {"backend": backend}},
                show_progress=False)
    truth = np.load(run_dir / "truth.npz")
    out = []
    for cam in ("cam1", "cam2"):
        t, kp = read_keypoints_csv(run_dir / "output" / "squats" / "keypoints" / f"{cam}.csv")
        seen = kp[..., 2] >= 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            d = [np.nanmedian(np.where(seen, np.linalg.norm(kp[..., :2] - truth[f"{who}_{cam}"][:len(t)], axis=-1), np.nan), 1)
                 for who in ("subject", "other")]
        found = np.isfinite(d[0])
        out.append((int(found.sum()), int(np.sum(d[0] < 25)), int(np.sum((d[1] < 25) & ~(d[0] < 25)))))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["mediapipe", "blazepose-torch"])
def test_rendered_second_person_never_taken_for_the_subject(rendered_two_people, backend):
    """With a real detector on rendered video: the subject's keypoints are the subject's in every frame
    they are found (the previous version took the person passing in front for the subject in 15 and 1
    frames of the circling walk, and in 4 and 10 of the crossing, where it also lost the subject for half
    of camera 2)."""
    for found, on_subject, on_other in _subject_frames(rendered_two_people, backend):
        # (a frame or two during the crossing may be neither: the detector's points smeared over both)
        assert on_other == 0 and on_subject >= found - 2 and found > 0.8 * 170


def _detect_counting(video, search_every: int) -> tuple[np.ndarray, list[int]]:
    """MediaPipe's detector over every frame of ``video`` -> ((frames, 2, 20, 3), how many frames each
    tracker was given)."""
    from core.video import iter_frames
    from models.pose_mediapipe import MediaPipeDetector

    det = MediaPipeDetector(2, SETTINGS.keypoints.min_detection_confidence, search_every)
    calls = [0, 0]
    for k, tracker in enumerate(det._trackers):
        def counted(image, _process=tracker.process, _k=k):
            calls[_k] += 1
            return _process(image)
        tracker.process = counted
    try:
        people = np.asarray([det(fr.image) for fr in iter_frames(video)])
    finally:
        det.close()
    return people, calls


@pytest.mark.slow
def test_people_search_every_few_frames_finds_who_searching_every_frame_finds(rendered_two_people):
    """keypoints.people_search_s: the second tracker, while it follows nobody, searches every 6th frame
    only; the subject's tracker is untouched, and a second person in view is found and then followed in
    every frame, as with a search in every frame."""
    video = rendered_two_people / "videos" / "squats" / "cam1.mp4"
    every, calls_every = _detect_counting(video, 1)
    sparse, calls_sparse = _detect_counting(video, 6)
    n = len(every)
    assert calls_every[0] == calls_sparse[0] == n
    np.testing.assert_array_equal(sparse[:, 0], every[:, 0])  # the first tracker sees the same frames
    found_every = np.sum(every[:, 1, :, 2] > 0, axis=-1) >= 3
    found_sparse = np.sum(sparse[:, 1, :, 2] > 0, axis=-1) >= 3
    assert found_sparse.sum() >= found_every.sum() - 6 * 3  # found at most a search interval later, a few times
    assert calls_sparse[1] <= found_sparse.sum() + n // 6 + 1


@pytest.mark.slow
def test_people_search_costs_a_sixth_when_nobody_else_is_there():
    """On the demo's one-person video the second tracker is given every 6th frame, not every frame, and
    the subject's keypoints are the same as with a search in every frame."""
    from demo import DEMO_SESSION

    video = DEMO_SESSION / "videos" / "squats" / "cam1.mp4"
    every, calls_every = _detect_counting(video, 1)
    sparse, calls_sparse = _detect_counting(video, 6)
    n = len(every)
    np.testing.assert_array_equal(sparse[:, 0], every[:, 0])
    followed = np.sum(sparse[:, 1, :, 2] > 0, axis=-1) >= 3
    assert calls_every[1] > 0.9 * n
    assert calls_sparse[1] <= -(-n // 6) + followed.sum()
