"""Person selection, left/right swap repair and velocity-based sync on synthetic data with known truth."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from calibration.camera import Camera, look_at
from demo.make_demo_session import skeleton, squat_depth
from core.keypoints import mirror_index
from pipeline.keypoints_people import reprojection_error, subject_agreement
from pipeline.keypoints_people import candidates, choose_subject, link_tracks, track_infos
from pipeline.keypoints_swaps import fix_swaps
from pipeline.sync_offsets import speed_signal, synchronise
from tests.conftest import SETTINGS

SECONDS = 6.0


def subject_3d(t: np.ndarray) -> np.ndarray:
    return skeleton(squat_depth(t, 3, SECONDS), 0.02 * np.sin(1.3 * t))


def bystander_3d(t: np.ndarray) -> np.ndarray:
    """Standing, swaying a little, 1.4 m to the side and nearer to camera A."""
    return skeleton(np.zeros_like(t), 0.03 * np.sin(0.7 * t + 1.0)) + np.array([0.9, 0.0, 1.3])


def camera(name: str, azimuth_deg: float) -> Camera:
    a = np.radians(azimuth_deg)
    R, tvec = look_at([3.5 * np.cos(a), 1.0, 3.5 * np.sin(a)], [0.3, 0.9, 0.5])
    return Camera(name, (1080, 1920), np.array([[1400.0, 0, 540], [0, 1400.0, 960], [0, 0, 1]]), R=R, t=tvec)


def observe(cam: Camera, fps: float, offset_s: float, rng, flip: slice | None = None, missing: slice | None = None):
    """Camera clock times (frames,) and shuffled detections (frames, 2, 20, 3); truth of the subject (frames, 20, 2)."""
    t_cam = np.arange(0.0, SECONDS - 0.5, 1.0 / fps)
    t_common = t_cam + offset_s
    subj = cam.project(subject_3d(t_common).reshape(-1, 3)).reshape(len(t_cam), 20, 2)
    other = cam.project(bystander_3d(t_common).reshape(-1, 3)).reshape(len(t_cam), 20, 2)
    det_s = np.concatenate([subj + rng.normal(0, 1.0, subj.shape), np.full(subj.shape[:2] + (1,), 0.9)], -1)
    det_o = np.concatenate([other + rng.normal(0, 1.0, other.shape), np.full(other.shape[:2] + (1,), 0.9)], -1)
    if flip is not None:
        det_s[flip] = det_s[flip][:, mirror_index()]
    if missing is not None:
        det_s[missing, :, :2] = np.nan
        det_s[missing, :, 2] = 0.0
    people = np.stack([det_s, det_o], 1)
    swap = rng.random(len(t_cam)) < 0.5  # the detector's slot order means nothing
    people[swap] = people[swap][:, ::-1]
    return t_cam, people, subj


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(3)
    cams = [camera("A", 20.0), camera("B", -50.0)]
    a = observe(cams[0], 30.0, 0.0, rng, flip=slice(60, 68), missing=slice(100, 104))
    b = observe(cams[1], 60.0, 0.4, rng)
    return cams, [a, b]


def test_tracks_and_subject_choice(scene):
    cams, obs = scene
    tracks = [link_tracks(people, SETTINGS.keypoints, 30) for _, people, _ in obs]
    assert [t.shape[1] for t in tracks] == [2, 2]  # the flip and the gap do not break the subject's track
    infos = [track_infos(t, 1920) for t in tracks]
    options = [candidates(i) for i in infos]
    # Camera A sees the bystander bigger: "the biggest person" would pick the wrong one there.
    subject_track = []
    for (t_cam, _, truth), tr in zip(obs, tracks):
        d = [np.nanmedian(np.linalg.norm(tr[:, k, :, :2] - truth, axis=-1)) for k in range(2)]
        subject_track.append(int(np.argmin(d)))
    assert options[0][0] != subject_track[0]
    times = [o[0] for o in obs]
    assert choose_subject(options, subject_agreement(times, tracks, infos, SETTINGS.keypoints, SETTINGS.sync)) == tuple(subject_track)
    assert choose_subject(options, subject_agreement(times, tracks, infos, SETTINGS.keypoints, SETTINGS.sync, cams)) == tuple(subject_track)
    # The unsynchronised subject still passes the geometric same-person check. (With two cameras
    # at one height the check is weak: different people can lie on each other's epipolar lines.)
    assert reprojection_error(cams, times, tracks)(tuple(subject_track)) < 0.15


def test_swap_repair_restores_labels(scene):
    _, obs = scene
    t_cam, people, truth = obs[0]
    tracks = link_tracks(people, SETTINGS.keypoints, 30)
    k = int(np.argmin([np.nanmedian(np.linalg.norm(tracks[:, j, :, :2] - truth, axis=-1)) for j in range(2)]))
    fixed, counts = fix_swaps(tracks[:, k], SETTINGS.keypoints.swap_prior)
    present = fixed[:, 0, 2] > 0
    err = np.linalg.norm(fixed[present, :, :2] - truth[present], axis=-1)
    assert np.nanmax(err) < 6.0  # every frame labelled right again (noise is 1 px)
    assert counts["legs"] == 8 and counts["arms"] == 8


def test_sync_of_selected_subject(scene):
    _, obs = scene
    sigs = []
    for t_cam, people, truth in obs:
        tracks = link_tracks(people, SETTINGS.keypoints, 30)
        k = int(np.argmin([np.nanmedian(np.linalg.norm(tracks[:, j, :, :2] - truth, axis=-1)) for j in range(2)]))
        sigs.append(speed_signal(t_cam, fix_swaps(tracks[:, k], SETTINGS.keypoints.swap_prior)[0], SETTINGS.sync, SETTINGS.sync.rate_hz))
    res = synchronise(sigs, SETTINGS.sync)
    assert res.offsets_s[1] == pytest.approx(0.4, abs=0.002)
    assert res.confidence[1] > 0.9 and not res.warnings
    # A phone whose detector labelled the whole trial mirrored still synchronises.
    t_cam, people, truth = obs[1]
    tracks = link_tracks(people, SETTINGS.keypoints, 30)
    k = int(np.argmin([np.nanmedian(np.linalg.norm(tracks[:, j, :, :2] - truth, axis=-1)) for j in range(2)]))
    sigs[1] = speed_signal(t_cam, tracks[:, k][:, mirror_index()], SETTINGS.sync, SETTINGS.sync.rate_hz)
    assert synchronise(sigs, SETTINGS.sync).offsets_s[1] == pytest.approx(0.4, abs=0.002)


def _synthetic_motion(rng, k=20):
    amp = rng.uniform(10, 60, (k, 2))
    fr = rng.uniform(0.2, 1.5, (k, 2))
    ph = rng.uniform(0, 6.28, (k, 2))
    base = rng.uniform(100, 500, (k, 2))

    def at(t):
        env = 1 / (1 + np.exp(-(t - 1.0) * 4))  # still first, then moving
        return base + amp * np.sin(2 * np.pi * fr * t[:, None, None] + ph) * env[:, None, None]
    return at


@pytest.mark.slow
@pytest.mark.parametrize("noise_px", [0.0, 1.5])
def test_sync_recovers_offsets_within_1ms_across_frame_rates(noise_px):
    rng = np.random.default_rng(7)
    motion = _synthetic_motion(rng)
    truth = [0.0, 0.2371, -0.4123, 0.0517]
    sigs = []
    for fps, off in zip([30.0, 60.0, 120.0, 240.0], truth):
        t = np.arange(0, 10, 1 / fps)
        t = t + rng.uniform(-0.1, 0.1, len(t)) / fps  # variable frame timing, as phones record
        xy = motion(t + off) + noise_px * rng.standard_normal((len(t), 20, 2))
        sigs.append(speed_signal(t, np.concatenate([xy, np.ones((len(t), 20, 1))], -1), SETTINGS.sync, SETTINGS.sync.rate_hz))
    res = synchronise(sigs, SETTINGS.sync)
    np.testing.assert_allclose(res.offsets_s, truth, atol=0.001)
    assert res.residual_ms < 1.0 and min(res.confidence) > 0.95


def test_still_subject_gives_a_warning_that_says_what_to_record():
    rng = np.random.default_rng(1)
    t = np.arange(0, 5, 1 / 30)
    still = np.concatenate([300 + rng.normal(0, 0.5, (len(t), 20, 2)), np.ones((len(t), 20, 1))], -1)
    still[..., 1] += np.linspace(0, 400, 20)  # a person-sized spread of keypoints
    sig = lambda kp: speed_signal(t, kp, SETTINGS.sync, SETTINGS.sync.rate_hz)
    res = synchronise([sig(still), sig(still + 0)], replace(SETTINGS.sync, max_lag_s=1.0))
    assert res.confidence[1] < 0.3
    assert any("hardly moves" in w and "short, clear movement at the start" in w for w in res.warnings)


STRIDE_S = 1.1


def _walker(t: np.ndarray) -> np.ndarray:
    """(frames, 20, 3) pixels and confidence of a person walking across the image: each foot still in
    stance and swinging forward for 40 % of the stride, the left half a stride after the right; knees
    halfway between foot and body, arms swinging against the legs."""
    from core.keypoints import VIDEO_KEYPOINTS

    def foot(phase0: float) -> np.ndarray:
        c = t / STRIDE_S + phase0
        return np.floor(c) + 0.5 - 0.5 * np.cos(np.pi * np.clip((c % 1.0) / 0.4, 0, 1))

    body = t / STRIDE_S
    kp = np.zeros((len(t), 20, 3))
    kp[..., 2] = 0.9
    for j, name in enumerate(VIDEO_KEYPOINTS):
        phase = 0.5 if name.startswith("L") else 0.0
        if any(s in name for s in ("Ankle", "Heel", "Toe")):
            x = foot(phase)
        elif "Knee" in name:
            x = 0.5 * (foot(phase) + body)
        else:
            x = body + (0.05 * np.sin(2 * np.pi * (body + phase + 0.5)) if name[1:] in ("Wrist", "Elbow") else 0.0)
        kp[:, j, 0] = 200 + 300 * x
        kp[:, j, 1] = 300 + 30 * j
    return kp


@pytest.mark.parametrize("late_s, frames", [(0.1, (70, 60)), (0.196, (67, 55)), (-0.15, (60, 70))])
def test_sync_of_a_short_walking_trial_is_not_fooled_by_mirrored_steps(late_s, frames):
    """Two steps filmed by phones that start late and stop early: the second phone's labels mirrored and
    shifted by half a stride match its signal as well, over less of the trial, and must not win
    (they did, by 0.55 s, on the benchmark's 1.1 s walking trial)."""
    t1, t2 = (np.arange(n) / 60.0 for n in frames)
    sigs = [speed_signal(t, _walker(t + start), SETTINGS.sync, SETTINGS.sync.rate_hz)
            for t, start in ((t1, 0.0), (t2, late_s))]
    assert synchronise(sigs, SETTINGS.sync).offsets_s[1] == pytest.approx(late_s, abs=0.005)
