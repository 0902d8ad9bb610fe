"""Skeleton overlays to check the 2D keypoints by eye: a sheet of frames per camera, optionally a video."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.keypoints import CONFIDENT, INDEX, SKELETON
from pipeline.frames import contact_sheet
from core.video import iter_frames

COLOURS = {"R": (60, 60, 230), "L": (230, 120, 40), "C": (60, 200, 60)}  # BGR: right red, left blue
OTHER = (170, 170, 170)


def draw_person(img: np.ndarray, kp: np.ndarray, min_conf: float = CONFIDENT, colour: tuple | None = None) -> None:
    """Draw one person in place. kp: (20, 3) pixels and confidence."""
    th = max(1, int(round(img.shape[0] / 320)))
    ok = np.isfinite(kp[:, 0]) & (kp[:, 2] >= min_conf)
    for a, b, side in SKELETON:
        i, j = INDEX[a], INDEX[b]
        if ok[i] and ok[j]:
            cv2.line(img, tuple(np.round(kp[i, :2]).astype(int)), tuple(np.round(kp[j, :2]).astype(int)),
                     colour or COLOURS[side], th, cv2.LINE_AA)
    for i in np.flatnonzero(ok):
        cv2.circle(img, tuple(np.round(kp[i, :2]).astype(int)), th + 1, colour or (255, 255, 255), -1, cv2.LINE_AA)


def annotate(img: np.ndarray, subject: np.ndarray, others: list[np.ndarray], label: str) -> np.ndarray:
    out = img.copy()
    for o in others:
        draw_person(out, o, colour=OTHER)
    draw_person(out, subject)
    s = img.shape[0] / 640
    cv2.putText(out, label, (8, int(24 * s)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * s, (0, 0, 0), int(3 * s) + 1, cv2.LINE_AA)
    cv2.putText(out, label, (8, int(24 * s)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * s, (255, 255, 255), max(1, int(s)), cv2.LINE_AA)
    return out


def read_frames(video: Path, indices: set[int]) -> dict[int, np.ndarray]:
    """The images of frames ``indices`` of ``video`` (BGR), decoded in one pass that stops after the last."""
    images: dict[int, np.ndarray] = {}
    if not indices:
        return images
    last = max(indices)
    for fr in iter_frames(video, images=indices):
        if fr.image is not None:
            images[fr.index] = fr.image
        if fr.index >= last:
            break
    return images


def overlay_sheet(images: dict[int, np.ndarray], label: str, time_s: np.ndarray, subject: np.ndarray,
                  others: np.ndarray, tile_width: int = 240) -> np.ndarray:
    """The frames ``images`` (index -> BGR, e.g. ``pipeline.frames.evenly_spaced``) with the subject in colour and other
    people in grey, side by side. subject: (frames, 20, 3); others: (frames, T, 20, 3)."""
    tiles = []
    for index in sorted(images):
        if index >= len(subject):
            continue
        img = annotate(images[index], subject[index], list(others[index]), f"{label} {time_s[index]:.2f}s")
        h = int(round(img.shape[0] * tile_width / img.shape[1]))
        tiles.append(cv2.resize(img, (tile_width, h), interpolation=cv2.INTER_AREA))
    return contact_sheet([tiles])


def overlay_video(video: Path, out_path: Path, time_s: np.ndarray, subject: np.ndarray, others: np.ndarray) -> None:
    """The whole video with skeletons drawn, as mp4 at the video's median frame rate."""
    fps = 1.0 / float(np.median(np.diff(time_s))) if len(time_s) > 1 else 30.0
    writer = None
    try:
        for fr in iter_frames(video):
            if fr.index >= len(subject):
                break
            img = annotate(fr.image, subject[fr.index], list(others[fr.index]), f"{time_s[fr.index]:.2f}s")
            if writer is None:
                writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (img.shape[1], img.shape[0]))
            writer.write(img)
    finally:
        if writer is not None:
            writer.release()


def people_picture(image: np.ndarray, people: list[tuple[str, np.ndarray, bool]]) -> np.ndarray:
    """One frame (BGR) with every person drawn and labelled, so a user can say which one is the subject.
    people: (label, keypoints (20, 3), is_subject); the subject in colour, the others grey."""
    img = image.copy()
    s = img.shape[0] / 640
    for label, kp, is_subject in people:
        draw_person(img, kp, colour=None if is_subject else OTHER)
        ok = np.isfinite(kp[:, 0]) & (kp[:, 2] >= CONFIDENT)
        if not ok.any():
            continue
        (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.55 * s, int(3 * s) + 1)
        x = int(np.clip(np.min(kp[ok, 0]), 4, max(4, img.shape[1] - tw - 4)))  # the whole label inside the picture
        y = max(int(np.min(kp[ok, 1]) - 10 * s), int(20 * s))
        for colour, width in (((0, 0, 0), int(3 * s) + 1), ((255, 255, 255) if is_subject else OTHER, max(1, int(s)))):
            cv2.putText(img, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55 * s, colour, width, cv2.LINE_AA)
    return img
