"""Camera files of other tools: Qualisys ``.qca.txt``, Pose2Sim ``.toml``, OpenCap ``.pickle``; export to Pose2Sim.

Our world frame is Y up (OpenSim). Qualisys and Pose2Sim calibrations are Z up; they are turned
into Y up on import (x stays, new y = old z, new z = -old y) and back on export, so the same
cameras come out after a round trip.
"""
from __future__ import annotations

import pickle
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from calibration.camera import Camera

# Y-up coordinates from Z-up coordinates: x_yup = ZUP_TO_YUP @ x_zup
ZUP_TO_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# Qualisys cameras look along their -z with y up; OpenCV cameras look along +z with y down.
QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


class CalibrationImportError(ValueError):
    """A camera file that cannot be imported; the message names the file and what is wrong."""


def _zup_to_yup(cam: Camera) -> Camera:
    cam.R = cam.R @ ZUP_TO_YUP.T
    return cam


def _yup_to_zup(R: np.ndarray) -> np.ndarray:
    return R @ ZUP_TO_YUP


def read_qualisys(path: str | Path, z_up: bool = True) -> list[Camera]:
    """Qualisys QTM calibration (.qca.txt, XML).

    Qualisys writes focal length and principal point in 1/64 pixel, the camera's rotation as the
    rows of ``transform`` and its centre (x, y, z) in millimetres. The convention was settled by
    reprojection: R_opencv = diag(1, -1, -1) @ R_qualisys, t = -R_opencv @ centre. Triangulating
    MediaPipe keypoints of the Pose2Sim demo with it puts the ankles at ~0.2 m and the shoulders at
    ~1.4 m above the floor, with the other sign conventions points fall behind cameras.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise CalibrationImportError(f"{path}: not a readable Qualisys XML file ({exc})") from None
    cams = []
    for node in root.iter("camera"):
        tr, it, fov = node.find("transform"), node.find("intrinsic"), node.find("fov_video")
        if tr is None or it is None:
            raise CalibrationImportError(f"{path}: camera {node.get('serial')} lacks <transform> or <intrinsic>")
        a, b = tr.attrib, it.attrib
        R_q = np.array([[float(a[f"r{i}{j}"]) for j in (1, 2, 3)] for i in (1, 2, 3)])
        centre = np.array([float(a[k]) for k in "xyz"]) / 1000.0
        K = np.array([[float(b["focalLengthU"]) / 64, float(b.get("skew", 0)), float(b["centerPointU"]) / 64],
                      [0, float(b["focalLengthV"]) / 64, float(b["centerPointV"]) / 64], [0, 0, 1]])
        dist = [float(b.get(k, 0)) for k in ("radialDistortion1", "radialDistortion2", "tangentalDistortion1",
                                             "tangentalDistortion2", "radialDistortion3")]
        size = (int(fov.get("right")) + 1, int(fov.get("bottom")) + 1) if fov is not None else (
            int(float(b["sensorMaxU"]) / 64), int(float(b["sensorMaxV"]) / 64))
        R = QUALISYS_TO_OPENCV @ R_q
        cam = Camera(node.get("serial") or f"cam{len(cams) + 1}", size, K, dist, R, -R @ centre,
                     info={"source": f"Qualisys {path.name}", "avg_residual": float(node.get("avg-residual", "nan"))})
        cams.append(_zup_to_yup(cam) if z_up else cam)
    if not cams:
        raise CalibrationImportError(f"{path}: no <camera> entries found")
    return cams


def read_pose2sim_toml(path: str | Path, z_up: bool = True) -> list[Camera]:
    """Pose2Sim Calib.toml: per camera size, matrix, distortions (4 or 5), Rodrigues rotation, translation (m)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise CalibrationImportError(f"{path}: not a readable TOML file ({exc})") from None
    cams = []
    for key, d in raw.items():
        if key == "metadata" or not isinstance(d, dict):
            continue
        try:
            if d.get("fisheye"):
                raise CalibrationImportError(f"{path}: camera {key} is a fisheye model, which is not supported")
            R, _ = cv2.Rodrigues(np.asarray(d["rotation"], float))
            cam = Camera(str(d.get("name", key)), tuple(int(round(x)) for x in d["size"]), d["matrix"],
                         d["distortions"], R, d["translation"], info={"source": f"Pose2Sim {path.name}"})
        except KeyError as exc:
            raise CalibrationImportError(f"{path}: camera {key} lacks {exc}") from None
        cams.append(_zup_to_yup(cam) if z_up else cam)
    if not cams:
        raise CalibrationImportError(f"{path}: no camera sections found")
    return cams


def write_pose2sim_toml(path: str | Path, cams: list[Camera], z_up: bool = True) -> Path:
    """Export in Pose2Sim's Calib.toml layout (Z up unless ``z_up`` is False)."""
    path = Path(path)
    fmt = lambda xs: "[ " + ", ".join(f"{float(x):.10g}" for x in xs) + ",]"
    out = []
    for c in cams:
        R = _yup_to_zup(c.R) if z_up else c.R
        rvec, _ = cv2.Rodrigues(R)
        out += [f"[{c.name}]", f'name = "{c.name}"', f"size = {fmt(c.image_size)}",
                "matrix = [ " + ", ".join(fmt(r) for r in c.K) + ",]",
                f"distortions = {fmt(c.dist[:4])}", f"rotation = {fmt(rvec.ravel())}",
                f"translation = {fmt(c.t)}", "fisheye = false", ""]
    out += ["[metadata]", "adjusted = false", "error = 0.0", ""]
    path.write_text("\n".join(out))
    return path


def read_opencap_pickle(path: str | Path, name: str | None = None) -> Camera:
    """OpenCap cameraIntrinsicsExtrinsics.pickle (one per camera): intrinsicMat, distortion,
    rotation (world to camera), translation (mm), imageSize.

    OpenCap's extrinsics are in the frame of its calibration board; no axis change is applied.
    imageSize is taken as (height, width) or (width, height), whichever puts the principal point
    nearer the image centre.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            d = pickle.load(fh)
    except Exception as exc:  # pickle raises many kinds
        raise CalibrationImportError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    try:
        K = np.asarray(d["intrinsicMat"], float)
        size = np.asarray(d["imageSize"], float).ravel()[:2]
        cx, cy = K[0, 2], K[1, 2]
        wh = (size[1], size[0]) if abs(cx - size[1] / 2) + abs(cy - size[0] / 2) <= abs(cx - size[0] / 2) + abs(cy - size[1] / 2) else (size[0], size[1])
        return Camera(name or path.parent.name or path.stem, (int(wh[0]), int(wh[1])), K, np.asarray(d["distortion"], float).ravel(),
                      np.asarray(d["rotation"], float), np.asarray(d["translation"], float).ravel() / 1000.0,
                      info={"source": f"OpenCap {path.name}"})
    except KeyError as exc:
        raise CalibrationImportError(f"{path}: missing key {exc}; expected intrinsicMat, distortion, rotation, translation, imageSize") from None


def import_cameras(path: str | Path) -> list[Camera]:
    """Pick the importer from the file name."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".qca.txt") or name.endswith(".qca"):
        return read_qualisys(path)
    if name.endswith(".toml"):
        return read_pose2sim_toml(path)
    if name.endswith(".pickle") or name.endswith(".pkl"):
        return [read_opencap_pickle(path)]
    if name.endswith((".yaml", ".yml")):
        from calibration.camera import load_cameras

        return load_cameras(path)
    raise CalibrationImportError(f"{path}: unknown calibration format; expected .qca.txt (Qualisys), .toml (Pose2Sim), .pickle (OpenCap) or .yaml (ours)")
