"""Calibrate a session's cameras: intrinsics per camera, extrinsics from the board in the scene.

Inputs, in the session folder:
  calibration/intrinsics/<camera>/   checkerboard images or a video (optional if the camera's
                                     ``device`` has a preset in calibration/device_presets.yaml)
  calibration/extrinsics/<camera>.*  an image or short video in which that camera sees the board
                                     placed as session.yaml's ``checkerboard`` says
Outputs:
  calibration/cameras.yaml           the cameras (our YAML; export with `calibrate import --out X.toml`)
  calibration/calibration_report.json  per-camera errors, sources, warnings
  calibration/check_<camera>.png     the board's detected corners and the world axes drawn in each view
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from calibration.camera import Camera, CameraFileError, load_cameras, save_cameras
from calibration.checkerboard import Board, find_corners, sharpness
from calibration.extrinsics import BoardView, ExtrinsicsResult, solve_extrinsics
from calibration.intrinsics import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, CalibrationError, board_in_video, intrinsics_from_folder,
                                    intrinsics_from_preset, load_presets)
from sessions.session import Session

log = logging.getLogger("markerless.calibration")


def session_cameras(session: Session) -> list[Camera]:
    """The session's calibrated cameras in session.yaml's camera order; CameraFileError (saying how to
    calibrate) when the file is missing, unreadable or lacks a camera."""
    path = session.cameras_file
    try:
        by_id = {c.name: c for c in load_cameras(path)}
    except CameraFileError as exc:
        raise CameraFileError(f"{exc}. Calibrate with `python app.py calibrate extrinsics {session.root}` "
                              "or import one with `python app.py calibrate import`") from None
    missing = [c.id for c in session.cameras if c.id not in by_id]
    if missing:
        raise CameraFileError(f"{path}: no calibration for camera(s) {missing}; re-run the calibration with every camera")
    return [by_id[c.id] for c in session.cameras]


# A video at most this much smaller or larger than its calibration, per axis, is the same picture
# cropped or padded by the encoder (e.g. 1088 px calibrated, 1080 px in the video: H.264 codes
# whole 16-pixel blocks): accepted with a note, intrinsics unchanged (the crop is at the right and
# bottom edges, so the principal point stays).
ENCODER_CROP_SHARE = 0.01


def cameras_for_videos(cameras: list[Camera], sizes: dict[str, tuple[int, int]], videos: dict[str, object] | None = None,
                       cameras_file: object = "the camera file") -> tuple[list[Camera], list[str]]:
    """The cameras fitted to the videos' sizes (width, height; upright, as decoded), and a note per change.

    Same size: unchanged. Within ENCODER_CROP_SHARE per axis: an encoder crop, accepted as it is. Same
    aspect at another resolution: K (fx, fy, cx, cy) rescaled to the video. Another aspect (e.g. a
    portrait video calibrated in landscape, or a cropped or zoomed recording): CameraFileError naming
    the video and the camera file. ``videos``: camera -> video path, for the messages.
    """
    out, notes, problems = [], [], []
    for cam in cameras:
        if cam.name not in sizes:
            out.append(cam)
            continue
        w, h = (int(v) for v in sizes[cam.name])
        cw, ch = cam.image_size
        video = (videos or {}).get(cam.name, f"camera {cam.name}'s video")
        if (w, h) == (cw, ch):
            out.append(cam)
            continue
        sx, sy = w / cw, h / ch
        if abs(sx - 1) <= ENCODER_CROP_SHARE and abs(sy - 1) <= ENCODER_CROP_SHARE:
            notes.append(f"{video}: {w}x{h} while {cameras_file} calibrated camera {cam.name} at {cw}x{ch}; "
                         f"treated as the encoder's crop of {abs(cw - w)}x{abs(ch - h)} px at the edges (intrinsics kept)")
            out.append(replace(cam, image_size=(w, h), info={**cam.info, "fitted_to_video": "encoder crop"}))
        elif abs(sx / sy - 1) <= ENCODER_CROP_SHARE:
            K = cam.K.copy()
            K[0, :] *= sx
            K[1, :] *= sy
            notes.append(f"{video}: {w}x{h} while {cameras_file} calibrated camera {cam.name} at {cw}x{ch} (same aspect); "
                         f"intrinsics rescaled by {sx:.4g} (fx, fy, cx, cy)")
            out.append(replace(cam, image_size=(w, h), K=K, info={**cam.info, "fitted_to_video": f"rescaled x{sx:.4g}"}))
        else:
            turned = " (turned a quarter: check the phone's rotation, or calibrate in the orientation it recorded)" \
                if (w > h) != (cw > ch) else ""
            problems.append(f"{video}: {w}x{h} (aspect {w / h:.3f}) but {cameras_file} calibrated camera {cam.name} at "
                            f"{cw}x{ch} (aspect {cw / ch:.3f}){turned}; a calibration fits only the picture it was made "
                            "for: calibrate again with this recording's settings, or record at the calibrated size")
    if problems:
        raise CameraFileError("\n".join(problems))
    return out, notes


@dataclass
class SessionCalibration:
    cameras_file: Path
    result: ExtrinsicsResult
    intrinsics_source: dict[str, str]


def _extrinsic_source(folder: Path, cam: str) -> Path:
    hits = sorted(p for p in folder.glob(f"{cam}.*") if p.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
    if not hits:
        raise CalibrationError(f"{folder / (cam + '.png')}: no image or video of the board for camera {cam}; "
                               f"record the checkerboard with every camera and save it as {folder.name}/{cam}.mp4 (or .png/.jpg)")
    return hits[0]


def _board_image(path: Path, board: Board) -> tuple[np.ndarray, np.ndarray]:
    """The image (or sharpest video frame) showing the board, and its corners."""
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        img = cv2.imread(str(path))
        if img is None:
            raise CalibrationError(f"{path}: cannot be read as an image")
        uv = find_corners(img, board)
        if uv is None:
            raise CalibrationError(f"{path}: checkerboard ({board.rows}x{board.cols} inner corners) not found; "
                                   "check the board size in session.yaml and that the whole board is visible")
        return img, uv
    best = None
    for _, img, uv in board_in_video(path, board, max_candidates=30):
        if uv is not None:
            sharp = sharpness(img)
            if best is None or sharp > best[0]:
                best = (sharp, img, uv)
    if best is None:
        raise CalibrationError(f"{path}: checkerboard ({board.rows}x{board.cols} inner corners) not found in any frame")
    return best[1], best[2]


def draw_check(img: np.ndarray, cam: Camera, uv: np.ndarray, axis_m: float) -> np.ndarray:
    """Detected corners (green) and the world axes X red, Y green, Z blue, projected with the solution."""
    out = img.copy()
    for p in uv:
        cv2.circle(out, tuple(np.round(p).astype(int)), 3, (0, 200, 0), 1, cv2.LINE_AA)
    o = cam.project(np.zeros(3))
    for axis, colour in zip(np.eye(3) * axis_m, [(0, 0, 255), (0, 200, 0), (255, 0, 0)]):
        tip = cam.project(axis)
        if np.all(np.isfinite([*o, *tip])):
            cv2.arrowedLine(out, tuple(np.round(o).astype(int)), tuple(np.round(tip).astype(int)), colour, 2, cv2.LINE_AA, tipLength=0.15)
    return out


def calibrate_session(session: Session) -> SessionCalibration:
    if session.checkerboard is None:
        raise CalibrationError(f"{session.yaml_path}: no 'checkerboard' entry; describe the board (rows, cols, square_mm, placement)")
    cfg = session.settings.calibration
    cb = session.checkerboard
    board = Board(cb.rows, cb.cols, cb.square_mm / 1000.0)
    cal = session.calibration_dir
    presets = load_presets()
    views, images, sources = [], {}, {}
    for cam in session.cameras:
        src = _extrinsic_source(cal / "extrinsics", cam.id)
        img, uv = _board_image(src, board)
        size = (img.shape[1], img.shape[0])
        folder = cal / "intrinsics" / cam.id
        if folder.is_dir():
            res = intrinsics_from_folder(folder, board, cam.id, cfg)
            intr = res.camera
            if intr.image_size != size:
                raise CalibrationError(f"{folder}: intrinsics images are {intr.image_size[0]}x{intr.image_size[1]} but {src.name} "
                                       f"is {size[0]}x{size[1]}; calibrate at the recording resolution")
            sources[cam.id] = f"checkerboard images, RMS {res.rms_px:.3f} px over {len(res.per_view_rms_px)} views"
        elif cam.device:
            intr = intrinsics_from_preset(cam.device, size, cam.id, presets)
            sources[cam.id] = intr.info["source"]
        else:
            raise CalibrationError(f"camera {cam.id}: no intrinsics; put checkerboard images in {folder} "
                                   f"or give the camera's device model in session.yaml if it has a preset")
        views.append(BoardView(intr, uv, src.name))
        images[cam.id] = img
    result = solve_extrinsics(views, board, cb.placement, cfg.extrinsics_warn_px, cfg.extrinsics_fail_px)
    out = save_cameras(session.cameras_file, result.cameras, comment=f"from the {cb.placement} checkerboard; origin at its first inner corner")
    axis = max(cb.rows, cb.cols) * board.square_m / 2
    for c in result.cameras:
        cv2.imwrite(str(cal / f"check_{c.name}.png"), draw_check(images[c.name], c, next(v.corners for v in views if v.camera.name == c.name), axis))
    report = {
        "board": {"rows": cb.rows, "cols": cb.cols, "square_mm": cb.square_mm, "placement": cb.placement},
        "cameras": {c.name: {"intrinsics": sources[c.name], "board_error_px": round(result.error_px[c.name], 4),
                             "centre_m": np.round(c.centre_m, 4).tolist(), "flipped_corner_order": c.name in result.flipped}
                    for c in result.cameras},
        "warnings": result.warnings,
    }
    (cal / "calibration_report.json").write_text(json.dumps(report, indent=2))
    for c in result.cameras:
        log.info("camera %s: board error %.3f px, centre %s m (%s)", c.name, result.error_px[c.name],
                 np.round(c.centre_m, 3).tolist(), sources[c.name])
    return SessionCalibration(out, result, sources)
