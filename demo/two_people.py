"""A rendered session with a second person: the demo's subject squatting while someone else walks
round them (or crosses the room in front), filmed by the demo's two virtual phones. Our own data, for
the multi-person tests and checks of person selection with a real detector.

    python demo/two_people.py OUT [--walk circle|cross]

writes OUT/session.yaml, OUT/videos/squats/cam{1,2}.mp4, OUT/calibration/cameras.yaml (the true
cameras) and OUT/truth.npz: per camera the true 2D keypoints of the subject and of the other
person at every video frame (``subject_<cam>``, ``other_<cam>``: (frames, 20, 2) pixels).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import yaml

from demo.make_demo_session import (CAMERAS, FOCAL_PX, HEIGHT_M, IMAGE_H, IMAGE_W, MASS_KG, VIDEO_FPS,
                                    background, camera_pose, project, render_people, skeleton, squat_depth)

SECONDS = 6.0
OTHER_TORSO = (40, 40, 160)  # the other person wears red


def other_path(t: np.ndarray, walk: str) -> np.ndarray:
    """(frames, 20, 3) the second person, standing posture: ``circle`` walks round the subject at 1.3 m
    once in 6 s, starting behind them; ``cross`` crosses the room 1.0 m in front of them."""
    out = skeleton(np.zeros_like(t), 0.0 * t).copy()
    if walk == "circle":
        a = np.pi + 2 * np.pi * t / SECONDS
        out[..., 0] += 1.3 * np.cos(a)[:, None]
        out[..., 2] += 1.3 * np.sin(a)[:, None]
    else:
        s = np.clip((t - 1.5) / 3.0, 0, 1)
        out[..., 0] += 1.0
        out[..., 2] += (-2.5 + 5.0 * s)[:, None]
    return out


def make_session(out: Path, walk: str = "circle") -> None:
    (out / "calibration").mkdir(parents=True, exist_ok=True)
    folder = out / "videos" / "squats"
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    cams = {}
    for cam, spec in CAMERAS.items():
        R, t = camera_pose(spec["azimuth_deg"])
        cams[cam] = (R, t)
        t_video = np.arange(spec["start_s"], SECONDS - 0.05, 1 / VIDEO_FPS)
        subject = skeleton(squat_depth(t_video, 3, SECONDS), 0.0 * t_video)
        other = other_path(t_video, walk)
        bg = background(R, t)
        writer = cv2.VideoWriter(str(folder / f"{cam}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (IMAGE_W, IMAGE_H))
        for s_pts, o_pts in zip(subject, other):
            writer.write(render_people([s_pts, o_pts], R, t, bg, [(70, 110, 30), OTHER_TORSO]))
        writer.release()
        truth[f"subject_{cam}"] = project(subject, R, t)[0]
        truth[f"other_{cam}"] = project(other, R, t)[0]
    np.savez(out / "truth.npz", **truth)
    K = [[FOCAL_PX, 0, IMAGE_W / 2], [0, FOCAL_PX, IMAGE_H / 2], [0, 0, 1]]
    (out / "calibration" / "cameras.yaml").write_text(yaml.safe_dump(
        {c: {"image_size": [IMAGE_W, IMAGE_H], "K": K, "distortion": [0.0] * 5, "R": np.round(R, 9).tolist(),
             "t": np.round(t, 9).tolist()} for c, (R, t) in cams.items()}, sort_keys=False))
    (out / "session.yaml").write_text(yaml.safe_dump({
        "subject": {"id": "two01", "height_m": HEIGHT_M, "mass_kg": MASS_KG, "sex": "f"},
        "cameras": [{"id": c, "device": "virtual"} for c in CAMERAS],
        "trials": [{"name": "squats", "kind": "dynamic"}]}, sort_keys=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--walk", choices=("circle", "cross"), default="circle")
    args = ap.parse_args()
    make_session(args.out, args.walk)
    print(f"two-person session in {args.out}")


if __name__ == "__main__":
    main()
