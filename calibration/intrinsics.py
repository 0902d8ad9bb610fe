"""Intrinsics from checkerboard views (images or a video), and from a per-device preset table.

Views are detected, calibrated with OpenCV, and views whose own RMS reprojection error is an
outlier are dropped before a final calibration. From a video, sharp frames are kept and a
spread-out subset is chosen (different positions, sizes and tilts of the board constrain the
focal length and distortion far better than many near-identical frames).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import yaml

from calibration.camera import Camera
from calibration.checkerboard import Board, find_corners, sharpness
from sessions.settings import CalibrationSettings

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".m4v")
PRESETS_PATH = Path(__file__).resolve().parent / "device_presets.yaml"


class CalibrationError(ValueError):
    """Calibration that cannot be trusted or done; the message says what to record instead."""


@dataclass
class View:
    source: str  # file name, or file name and frame index
    corners: np.ndarray  # (rows*cols, 2) pixels
    sharpness: float = 0.0


@dataclass
class IntrinsicsResult:
    camera: Camera
    rms_px: float
    per_view_rms_px: dict[str, float]
    dropped: dict[str, float] = field(default_factory=dict)  # outlier views and their RMS
    not_found: list[str] = field(default_factory=list)  # files/frames where the board was not found


def views_from_images(paths: list[Path], board: Board) -> tuple[list[View], list[str], tuple[int, int]]:
    """Detect the board in each image; returns views, names of images without a board, image size."""
    views, missing, sizes = [], [], {}
    for p in paths:
        img = cv2.imread(str(p))
        if img is None:
            raise CalibrationError(f"{p}: cannot be read as an image")
        sizes[p.name] = (img.shape[1], img.shape[0])
        uv = find_corners(img, board)
        if uv is None:
            missing.append(p.name)
        else:
            views.append(View(p.name, uv, sharpness(img)))
    distinct = set(sizes.values())
    if len(distinct) > 1:
        listing = ", ".join(f"{n}: {w}x{h}" for n, (w, h) in sizes.items())
        raise CalibrationError(f"images of one camera have different sizes ({listing}); use images from one camera at one resolution")
    return views, missing, distinct.pop() if distinct else (0, 0)


def board_in_video(path: Path, board: Board, max_candidates: int) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
    """Evenly spaced frames of a video: (name 'file#index', image, corners or None where the board is not found)."""
    from core.video import iter_frames, probe  # local import: calibration must not need the pipeline to load

    info = probe(path)
    step = max(1, info.frame_count_container // max_candidates)
    for fr in iter_frames(path, images=set(range(0, max(info.frame_count_container, 1), step))):
        if fr.image is not None:
            yield f"{path.name}#{fr.index}", fr.image, find_corners(fr.image, board)


def views_from_video(path: Path, board: Board, max_candidates: int = 60) -> tuple[list[View], list[str], tuple[int, int]]:
    """Detect the board in evenly spaced frames of a calibration video."""
    views, missing, size = [], [], (0, 0)
    for name, img, uv in board_in_video(path, board, max_candidates):
        size = (img.shape[1], img.shape[0])
        if uv is None:
            missing.append(name)
        else:
            views.append(View(name, uv, sharpness(img)))
    return views, missing, size


def select_diverse(views: list[View], image_size: tuple[int, int], n: int, board: Board) -> list[View]:
    """Keep the sharper half, then greedily pick views far apart in (position, size, tilt)."""
    if len(views) <= n:
        return views
    sharp_cut = np.median([v.sharpness for v in views])
    pool = [v for v in views if v.sharpness >= sharp_cut] or views
    w, h = image_size
    feats = []
    for v in pool:
        g = v.corners.reshape(board.rows, board.cols, 2)
        row_vec, col_vec = g[0, -1] - g[0, 0], g[-1, 0] - g[0, 0]
        area = abs(row_vec[0] * col_vec[1] - row_vec[1] * col_vec[0]) / (w * h)  # 2D cross product
        skew = np.linalg.norm(g[-1, -1] - g[0, -1]) / max(np.linalg.norm(g[-1, 0] - g[0, 0]), 1e-9)
        feats.append([v.corners[:, 0].mean() / w, v.corners[:, 1].mean() / h, np.sqrt(area),
                      np.arctan2(row_vec[1], row_vec[0]) / np.pi, np.log(skew)])
    feats = np.asarray(feats)
    chosen = [int(np.argmax([v.sharpness for v in pool]))]
    dist = np.linalg.norm(feats - feats[chosen[0]], axis=1)
    while len(chosen) < n:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(feats - feats[nxt], axis=1))
    return [pool[i] for i in chosen]


def _calibrate(views: list[View], board: Board, image_size: tuple[int, int], fix_k3: bool):
    obj = [board.object_points().astype(np.float32) for _ in views]
    img = [v.corners.astype(np.float32).reshape(-1, 1, 2) for v in views]
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, image_size, None, None, flags=flags)
    per_view = {}
    for v, o, r, t in zip(views, obj, rvecs, tvecs):
        proj, _ = cv2.projectPoints(o, r, t, K, dist)
        per_view[v.source] = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - v.corners) ** 2, axis=1))))
    return float(rms), K, dist.ravel(), per_view


def calibrate_intrinsics(
    views: list[View], board: Board, image_size: tuple[int, int], name: str, cfg: CalibrationSettings,
    not_found: list[str] | None = None,
) -> IntrinsicsResult:
    """Calibrate from detected views (at least calibration.intrinsics_min_views), drop outlier views (RMS
    above calibration.intrinsics_outlier_factor x median) once, recalibrate (k3 fixed per calibration.fix_k3)."""
    min_views, outlier_factor, fix_k3 = cfg.intrinsics_min_views, cfg.intrinsics_outlier_factor, cfg.fix_k3
    if len(views) < min_views:
        hint = f"; the board was not found in: {', '.join(not_found)}" if not_found else ""
        raise CalibrationError(
            f"camera {name}: only {len(views)} usable checkerboard view(s), need at least {min_views}{hint}. "
            "Record the whole board (all inner corners visible) at several positions and tilts."
        )
    rms, K, dist, per_view = _calibrate(views, board, image_size, fix_k3)
    median = float(np.median(list(per_view.values())))
    limit = max(outlier_factor * median, 0.5)
    dropped = {s: e for s, e in per_view.items() if e > limit}
    kept = [v for v in views if v.source not in dropped]
    if dropped and len(kept) >= min_views:
        rms, K, dist, per_view = _calibrate(kept, board, image_size, fix_k3)
    else:
        dropped = {}
    cam = Camera(name, image_size, K, dist, info={"source": "checkerboard", "rms_px": round(rms, 4), "views": len(per_view)})
    return IntrinsicsResult(cam, rms, per_view, dropped, list(not_found or []))


def intrinsics_from_folder(folder: Path, board: Board, name: str, cfg: CalibrationSettings) -> IntrinsicsResult:
    """Calibrate one camera from a folder of images, or a folder holding one video, on the most diverse
    calibration.intrinsics_max_views views."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"{folder}: folder not found")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if images:
        views, missing, size = views_from_images(images, board)
    elif videos:
        views, missing, size = [], [], (0, 0)
        for v in videos:
            more, miss, size = views_from_video(v, board)
            views += more
            missing += miss
    else:
        raise CalibrationError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) or videos of the checkerboard")
    views = select_diverse(views, size, cfg.intrinsics_max_views, board)
    return calibrate_intrinsics(views, board, size, name, cfg, not_found=missing)


def load_presets(paths: list[Path] | None = None) -> dict[str, dict]:
    """Device presets: ``{"<device>@<width>x<height>": {K, dist}}`` from the shipped table and user tables."""
    table: dict[str, dict] = {}
    for p in paths if paths is not None else [PRESETS_PATH]:
        if Path(p).is_file():
            table.update(yaml.safe_load(Path(p).read_text()) or {})
    return table


def preset_key(device: str, image_size: tuple[int, int]) -> str:
    return f"{device}@{image_size[0]}x{image_size[1]}"


def intrinsics_from_preset(device: str, image_size: tuple[int, int], name: str, presets: dict[str, dict]) -> Camera:
    """Intrinsics of a known phone model at a resolution; a portrait video uses the landscape entry rotated."""
    w, h = image_size
    entry = presets.get(preset_key(device, (w, h)))
    if entry is not None:
        return Camera(name, (w, h), entry["K"], entry.get("dist", [0] * 5), info={"source": f"preset {preset_key(device, (w, h))}"})
    rotated = presets.get(preset_key(device, (h, w)))
    if rotated is not None:
        # The same sensor turned a quarter turn clockwise: pixel (u, v) -> (w - 1 - v, u), camera
        # axes x' = -y, y' = x. Radial terms stay; tangential ones become p1' = p2, p2' = -p1.
        K = np.asarray(rotated["K"], float)
        Kr = np.array([[K[1, 1], 0, w - 1 - K[1, 2]], [0, K[0, 0], K[0, 2]], [0, 0, 1]])
        d = np.asarray(rotated.get("dist", [0] * 5), float)
        dist = [d[0], d[1], d[3], -d[2], d[4] if len(d) > 4 else 0.0]
        return Camera(name, (w, h), Kr, dist, info={"source": f"preset {preset_key(device, (h, w))} rotated 90 deg"})
    known = sorted({k.split("@")[0] for k in presets})
    raise CalibrationError(
        f"no intrinsics preset for device {device!r} at {w}x{h}; known devices: {known or 'none'}. "
        "Calibrate this camera from checkerboard images, then add it with `calibrate intrinsics ... --preset DEVICE`."
    )


def save_preset(path: Path, device: str, cam: Camera) -> None:
    table = load_presets([path])
    table[preset_key(device, cam.image_size)] = {"K": np.round(cam.K, 6).tolist(), "dist": np.round(cam.dist, 8).tolist()}
    path.write_text("# Intrinsics per phone model and resolution: '<device>@<width>x<height>': {K, dist}.\n"
                    + yaml.safe_dump(table, sort_keys=True, default_flow_style=None))
