"""Build our full-body kinematic OpenSim model from the anthropometry tables.

22 bodies (pelvis, femur, tibia, talus, calcn, toes, torso, humerus, ulna, radius, hand), 35
coordinates named as in OpenSim's/OpenCap's models so .mot files and setup files interoperate:

- ground_pelvis (6 DoF): pelvis_tilt/list/rotation (Z, X, Y), pelvis_tx/ty/tz
- hip (3): hip_flexion (Z), hip_adduction (X), hip_rotation (Y)
- knee (1): knee_angle (flexion positive), a hinge at the knee centre
- ankle (1, Inman's oblique talocrural axis), subtalar (1, Inman's axis), mtp (1)
- back (3): lumbar_extension (Z), lumbar_bending (X), lumbar_rotation (Y)
- acromial (3): arm_flex (Z), arm_add (X), arm_rot (Y); elbow (1); radioulnar (1, pro_sup)

Signs are anatomical and the same on both sides (left axes mirrored): flexion, adduction, internal
rotation, dorsiflexion, inversion, pronation and lumbar extension are positive. No constraints: every
joint is a CustomJoint driven only by its own coordinates, which keeps IK fast. Bones are not drawn
(no meshes); each body shows as its frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from biomech import anthropometry as A
from biomech.anthropometry import Dimensions
from biomech.landmarks import MARKER_SETS, foot_points, is_fixed, landmarks
from biomech.opensim_env import osim

MODEL_NAME = "markerless_fullbody"
DEFAULT_MODEL = Path(__file__).resolve().parent / "opensim_models" / f"{MODEL_NAME}.osim"


def _vec(v) -> osim.Vec3:
    return osim.Vec3(float(v[0]), float(v[1]), float(v[2]))


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _complement(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors completing ``axis`` to an orthonormal basis (CustomJoint needs 3 independent axes)."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    b = _unit(np.cross(axis, helper))
    return b, np.cross(axis, b)


def _mirror_axis(axis, side: str) -> np.ndarray:
    """Right-side axis -> this side's axis, so a positive angle means the same anatomical motion."""
    a = np.asarray(axis, dtype=float)
    return a if side == "r" else np.array([-a[0], -a[1], a[2]])


def _body(name: str, mass: float, length: float, com_frac: float, gyr: tuple[float, float, float],
          long_axis_down: bool = True) -> osim.Body:
    """A body with de Leva's mass, CoM and radii of gyration; the long axis is Y (pointing down
    the limb when ``long_axis_down``)."""
    com = np.array([0.0, (-1 if long_axis_down else 1) * com_frac * length, 0.0])
    k_sag, k_tr, k_long = (g * length for g in gyr)
    # Sagittal radius -> rotation about Z (sagittal-plane motion), transverse -> X, longitudinal -> Y.
    inertia = osim.Inertia(mass * k_tr**2, mass * k_long**2, mass * k_sag**2, 0, 0, 0)
    return osim.Body(name, mass, _vec(com), inertia)


def _custom_joint(name: str, parent: osim.PhysicalFrame, location: np.ndarray, child: osim.PhysicalFrame,
                  rotations: list[tuple[str, np.ndarray]], translations: list[str | None] | None = None) -> osim.CustomJoint:
    """CustomJoint at ``location`` in the parent: rotations about the given axes (in order), then
    optional translation coordinates along X, Y, Z."""
    st = osim.SpatialTransform()
    axes = [a for _, a in rotations]
    if len(axes) == 1:
        axes += list(_complement(_unit(axes[0])))
    for i in range(3):
        ax = st.updTransformAxis(i)
        ax.set_axis(_vec(_unit(axes[i])))
        # set_function copies; setFunction(Function*) would hand Python's object to C++ (double free).
        if i < len(rotations):
            ax.append_coordinates(rotations[i][0])
            ax.set_function(osim.LinearFunction(1.0, 0.0))
        else:
            ax.set_function(osim.Constant(0.0))
    for i, coord in enumerate(translations or [None, None, None]):
        ax = st.updTransformAxis(3 + i)
        ax.set_axis(_vec(np.eye(3)[i]))
        if coord:
            ax.append_coordinates(coord)
            ax.set_function(osim.LinearFunction(1.0, 0.0))
        else:
            ax.set_function(osim.Constant(0.0))
    return osim.CustomJoint(name, parent, _vec(location), osim.Vec3(0), child, osim.Vec3(0), osim.Vec3(0), st)


def _set_range(joint: osim.Joint, height_m: float) -> None:
    for i in range(joint.numCoordinates()):
        c = joint.upd_coordinates(i)
        base = c.getName()[:-2] if c.getName().endswith(("_r", "_l")) else c.getName()
        if base in A.ROM_DEG:
            lo, hi = A.ROM_DEG[base]
            c.setRangeMin(np.radians(lo))
            c.setRangeMax(np.radians(hi))
            # Not clamped: Simbody's bounded assembly converges poorly (0.5-1 deg errors, 6 deg in
            # pro_sup, on perfect markers); IK reports frames outside the range instead.
            c.set_clamped(False)
        elif base in ("pelvis_tilt", "pelvis_list"):
            c.setRangeMin(-np.pi / 2)
            c.setRangeMax(np.pi / 2)
        elif base == "pelvis_rotation":
            c.setRangeMin(-np.pi)
            c.setRangeMax(np.pi)
        else:  # pelvis translations
            c.setRangeMin(-10.0)
            c.setRangeMax(10.0)
        c.set_clamped(False)
        if base == "pelvis_ty":
            c.setDefaultValue(A.HIP_HEIGHT * height_m - Dimensions(height_m).hip_centre()[1])


def build_model(height_m: float = A.GENERIC_HEIGHT_M, mass_kg: float = A.GENERIC_MASS_KG,
                marker_sets: tuple[str, ...] = ("video", "study")) -> osim.Model:
    """Our generic full-body model for a subject of ``height_m`` and ``mass_kg``, carrying the named
    marker sets (see ``biomech.landmarks.MARKER_SETS``)."""
    d = Dimensions(height_m)
    lm = landmarks(d)
    model = osim.Model()
    model.setName(MODEL_NAME)
    model.set_credits("Built by biomech/model_builder.py from published anthropometry (see biomech/anthropometry.py).")
    model.set_gravity(osim.Vec3(0, -9.80665, 0))
    ground = model.getGround()
    m = mass_kg
    dl = A.DE_LEVA
    hjc = np.array(d.hip_centre())
    ljc = np.array(d.lumbar_centre())
    trunk_len = lm["neck"][1][1]

    bodies: dict[str, osim.Body] = {}

    def add(body: osim.Body) -> osim.Body:
        model.addBody(body)
        bodies[body.getName()] = body
        return body

    pelvis = add(_body("pelvis", dl["pelvis"][0] * m, d.pelvis_width, 0.0, dl["pelvis"][2]))
    j = _custom_joint("ground_pelvis", ground, np.zeros(3), pelvis,
                      [("pelvis_tilt", [0, 0, 1]), ("pelvis_list", [1, 0, 0]), ("pelvis_rotation", [0, 1, 0])],
                      ["pelvis_tx", "pelvis_ty", "pelvis_tz"])
    model.addJoint(j)
    _set_range(j, height_m)

    torso = add(_body("torso", dl["head_trunk"][0] * m, trunk_len, dl["head_trunk"][1], dl["head_trunk"][2], long_axis_down=False))
    j = _custom_joint("back", pelvis, ljc, torso,
                      [("lumbar_extension", [0, 0, 1]), ("lumbar_bending", [1, 0, 0]), ("lumbar_rotation", [0, 1, 0])])
    model.addJoint(j)
    _set_range(j, height_m)

    foot_len = d.foot_length
    fe = np.radians(A.ANKLE_FRONTAL_DEG)
    tr = np.radians(A.ANKLE_TRANSVERSE_DEG)
    ankle_axis_r = _unit([-np.tan(tr), -np.tan(fe), 1.0])
    se, sm = np.radians(A.SUBTALAR_ELEVATION_DEG), np.radians(A.SUBTALAR_MEDIAL_DEG)
    subtalar_axis_r = _unit([np.cos(se) * np.cos(sm), np.sin(se), -np.cos(se) * np.sin(sm)])
    fp = foot_points(d)
    for side in ("r", "l"):
        mz = np.array([1.0, 1.0, 1.0 if side == "r" else -1.0])
        femur = add(_body(f"femur_{side}", dl["thigh"][0] * m, d.thigh, dl["thigh"][1], dl["thigh"][2]))
        j = _custom_joint(f"hip_{side}", pelvis, hjc * mz, femur,
                          [(f"hip_flexion_{side}", [0, 0, 1]), (f"hip_adduction_{side}", _mirror_axis([1, 0, 0], side)),
                           (f"hip_rotation_{side}", _mirror_axis([0, 1, 0], side))])
        model.addJoint(j)
        _set_range(j, height_m)
        tibia = add(_body(f"tibia_{side}", dl["shank"][0] * m, d.shank, dl["shank"][1], dl["shank"][2]))
        j = _custom_joint(f"knee_{side}", femur, np.array([0.0, -d.thigh, 0.0]), tibia, [(f"knee_angle_{side}", [0, 0, -1])])
        model.addJoint(j)
        _set_range(j, height_m)
        foot_mass = dl["foot"][0] * m
        talus = add(_body(f"talus_{side}", A.FOOT_SPLIT["talus"] * foot_mass, foot_len, 0.0, dl["foot"][2]))
        j = _custom_joint(f"ankle_{side}", tibia, np.array([0.0, -d.shank, 0.0]), talus,
                          [(f"ankle_angle_{side}", _mirror_axis(ankle_axis_r, side))])
        model.addJoint(j)
        _set_range(j, height_m)
        calcn = add(_body(f"calcn_{side}", A.FOOT_SPLIT["calcn"] * foot_mass, foot_len, 0.0, dl["foot"][2]))
        calcn.setMassCenter(_vec(((fp["heel"] + fp["mtp"]) / 2 - fp["subtalar"]) * mz))
        j = _custom_joint(f"subtalar_{side}", talus, fp["subtalar"] * mz, calcn,
                          [(f"subtalar_angle_{side}", _mirror_axis(subtalar_axis_r, side))])
        model.addJoint(j)
        _set_range(j, height_m)
        toes = add(_body(f"toes_{side}", A.FOOT_SPLIT["toes"] * foot_mass, 0.3 * foot_len, 0.0, dl["foot"][2]))
        toes.setMassCenter(_vec(np.array([0.1 * foot_len, 0.0, 0.0])))
        j = _custom_joint(f"mtp_{side}", calcn, (fp["mtp"] - fp["subtalar"]) * mz, toes,
                          [(f"mtp_angle_{side}", [0, 0, -1])])
        model.addJoint(j)
        _set_range(j, height_m)

        humerus = add(_body(f"humerus_{side}", dl["upper_arm"][0] * m, d.upper_arm, dl["upper_arm"][1], dl["upper_arm"][2]))
        j = _custom_joint(f"acromial_{side}", torso, lm[f"gh_{side}"][1], humerus,
                          [(f"arm_flex_{side}", [0, 0, 1]), (f"arm_add_{side}", _mirror_axis([1, 0, 0], side)),
                           (f"arm_rot_{side}", _mirror_axis([0, 1, 0], side))])
        model.addJoint(j)
        _set_range(j, height_m)
        fmass = dl["forearm"][0] * m
        ulna = add(_body(f"ulna_{side}", fmass / 2, d.forearm, dl["forearm"][1], dl["forearm"][2]))
        j = _custom_joint(f"elbow_{side}", humerus, np.array([0.0, -d.upper_arm, 0.0]), ulna, [(f"elbow_flex_{side}", [0, 0, 1])])
        model.addJoint(j)
        _set_range(j, height_m)
        radius = add(_body(f"radius_{side}", fmass / 2, d.forearm, dl["forearm"][1], dl["forearm"][2]))
        j = _custom_joint(f"radioulnar_{side}", ulna, np.zeros(3), radius, [(f"pro_sup_{side}", _mirror_axis([0, 1, 0], side))])
        model.addJoint(j)
        _set_range(j, height_m)
        hand = add(_body(f"hand_{side}", dl["hand"][0] * m, d.hand, dl["hand"][1], dl["hand"][2]))
        model.addJoint(osim.WeldJoint(f"radius_hand_{side}", radius, _vec([0.0, -d.forearm, 0.0]), osim.Vec3(0),
                                      hand, osim.Vec3(0), osim.Vec3(0)))

    for set_name in marker_sets:
        for marker, lm_name in MARKER_SETS[set_name].items():
            model.addMarker(_marker(marker, lm_name, lm))
    model.finalizeConnections()
    return model


def _marker(marker: str, lm_name: str, lm: dict[str, tuple[str, np.ndarray]]) -> osim.Marker:
    """Marker ``marker`` on landmark ``lm_name``; joint centres fixed, the rest free for placement."""
    body, pos = lm[lm_name]
    mk = osim.Marker()
    mk.setName(marker)
    mk.setParentFrameName(f"/bodyset/{body}")
    mk.set_location(_vec(pos))
    mk.set_fixed(is_fixed(lm_name))
    return mk


def marker_set(set_name: str, height_m: float = A.GENERIC_HEIGHT_M) -> osim.MarkerSet:
    """One of our marker sets as an OpenSim MarkerSet (to print as a marker-set .xml)."""
    lm = landmarks(Dimensions(height_m))
    ms = osim.MarkerSet()
    for marker, lm_name in MARKER_SETS[set_name].items():
        ms.cloneAndAppend(_marker(marker, lm_name, lm))
    return ms


def write_model(out_dir: str | Path = DEFAULT_MODEL.parent, height_m: float = A.GENERIC_HEIGHT_M,
                mass_kg: float = A.GENERIC_MASS_KG) -> dict[str, Path]:
    """Write the generic model (video + study markers) and the three marker-set files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(height_m, mass_kg)
    model.initSystem()
    paths = {"model": out_dir / f"{MODEL_NAME}.osim"}
    model.printToXML(str(paths["model"]))
    for name in MARKER_SETS:
        p = out_dir / f"{MODEL_NAME}_markers_{name}.xml"
        marker_set(name, height_m).printToXML(str(p))
        paths[name] = p
    return paths
