"""Anatomical landmarks on our model's bodies and the marker sets built from them.

A landmark is a point on a body (joint centre, bony prominence, or a typical cluster-marker spot),
given in that body's frame for the generic model of a given stature. A marker set maps marker names
to landmarks, so the same landmark serves several naming schemes: ``r.ASIS_study`` (OpenCap's
augmenter), ``r.ASIS`` (the lab's mocap) and ``RHip`` (a video keypoint, the hip joint centre).

Body frames follow OpenSim's convention, X anterior, Y up, Z to the right, in the anatomical pose:
pelvis origin mid-ASIS, femur at the hip centre, tibia at the knee centre, talus at the ankle
centre, calcn at the subtalar joint, toes at the MTP joint, torso at L5/S1, humerus at the
glenohumeral centre, ulna/radius at the elbow centre, hand at the wrist centre.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from biomech.anthropometry import Dimensions

SIDES = ("r", "l")


def foot_points(d: Dimensions) -> dict[str, np.ndarray]:
    """Right-foot points relative to the ankle centre (m); proportions of foot length Lf, breadth Wf
    and ankle height ha (Winter 2009); the fractions along the foot are our estimates."""
    lf, wf, ha, s = d.foot_length, d.foot_breadth, d.ankle_height, d.height_m / 1.75
    return {
        "subtalar": np.array([-0.15 * lf, -0.60 * ha, 0.0]),  # estimate: below/behind the ankle
        "heel": np.array([-0.22 * lf, -ha + 0.025 * s, 0.0]),  # back of the heel, 2.5 cm up
        "mtp": np.array([0.50 * lf, -ha + 0.020 * s, 0.0]),  # heel -> MTP 72 % of foot length
        "toe_marker": np.array([0.47 * lf, -ha + 0.045 * s, -0.05 * wf]),  # dorsum, 2nd metatarsal head
        "meta5": np.array([0.41 * lf, -ha + 0.020 * s, 0.45 * wf]),  # 5th metatarsal head, lateral
        "big_toe": np.array([0.78 * lf, -ha + 0.015 * s, -0.25 * wf]),  # tip of the hallux
        "small_toe": np.array([0.62 * lf, -ha + 0.015 * s, 0.40 * wf]),  # tip of the 5th toe
    }


def right_landmarks(d: Dimensions) -> dict[str, tuple[str, np.ndarray]]:
    """Landmarks of the right side and the midline: name -> (body, position in body frame, m)."""
    s = d.height_m / 1.75
    hjc = np.array(d.hip_centre())
    ljc = np.array(d.lumbar_centre())
    foot = foot_points(d)
    ljc_height = d.hip_height + (ljc[1] - hjc[1])
    gh = np.array([0.0, d.acromion_height - 0.04 * s - ljc_height, d.shoulder_breadth / 2 - 0.04 * s])
    knee_half = 0.05 * s  # estimate: femoral epicondylar breadth ~ 10 cm
    mall_half = 0.035 * s  # estimate: bimalleolar breadth ~ 7 cm
    L = {
        # pelvis
        "asis": ("pelvis", np.array([0.0, 0.0, d.pelvis_width / 2])),
        "psis": ("pelvis", np.array([-d.pelvis_depth, 0.0, 0.045 * s])),
        "hjc": ("pelvis", hjc),
        "mid_hip": ("pelvis", np.array([hjc[0], hjc[1], 0.0])),
        # femur
        "knee_centre": ("femur", np.array([0.0, -d.thigh, 0.0])),
        "knee_lat": ("femur", np.array([0.0, -d.thigh, knee_half])),
        "knee_med": ("femur", np.array([0.0, -d.thigh, -knee_half])),
        # tibia
        "ankle_centre": ("tibia", np.array([0.0, -d.shank, 0.0])),
        "ankle_lat": ("tibia", np.array([-0.005 * s, -d.shank - 0.005 * s, mall_half])),
        "ankle_med": ("tibia", np.array([0.005 * s, -d.shank + 0.005 * s, -mall_half])),
        # calcaneus (relative to the subtalar joint) and toes (relative to the MTP joint)
        "heel": ("calcn", foot["heel"] - foot["subtalar"]),
        "toe_marker": ("calcn", foot["toe_marker"] - foot["subtalar"]),
        "meta5": ("calcn", foot["meta5"] - foot["subtalar"]),
        "big_toe": ("toes", foot["big_toe"] - foot["mtp"]),
        "small_toe": ("toes", foot["small_toe"] - foot["mtp"]),
        # torso
        "gh": ("torso", gh),
        "acromion": ("torso", gh + np.array([0.0, 0.04, 0.01]) * s),
        "neck": ("torso", np.array([0.0, gh[1], 0.0])),
        "c7": ("torso", np.array([-0.07 * s, gh[1] + 0.07 * s, 0.0])),
        "sternum": ("torso", np.array([0.07 * s, gh[1] - 0.01 * s, 0.03 * s])),
        # arm
        "elbow_centre": ("humerus", np.array([0.0, -d.upper_arm, 0.0])),
        "elbow_lat": ("humerus", np.array([0.0, -d.upper_arm, 0.035 * s])),
        "elbow_med": ("humerus", np.array([0.0, -d.upper_arm, -0.04 * s])),
        "wrist_centre": ("radius", np.array([0.0, -d.forearm, 0.0])),
        "wrist_radial": ("radius", np.array([0.0, -d.forearm, 0.03 * s])),
        "wrist_ulnar": ("radius", np.array([0.0, -d.forearm, -0.025 * s])),
    }
    # Typical spots of thigh and shank cluster markers (estimates; marker placement on the static
    # trial moves them to where the lab or the augmenter put them).
    for k in range(1, 6):
        L[f"thigh{k}"] = ("femur", np.array([0.02 * (-1) ** k * s, -(0.25 + 0.10 * k) * d.thigh, 0.08 * s]))
    L["shank_antsup"] = ("tibia", np.array([0.04 * s, -0.20 * d.shank, 0.02 * s]))
    for k in range(1, 5):
        L[f"shank{k}"] = ("tibia", np.array([0.02 * s, -(0.20 + 0.15 * k) * d.shank, 0.05 * s]))
    return L


MIDLINE = {"mid_hip", "neck", "c7"}
MIDLINE_BODIES = {"pelvis", "torso"}


def landmarks(d: Dimensions) -> dict[str, tuple[str, np.ndarray]]:
    """All landmarks, ``<name>_r`` / ``<name>_l`` (left mirrored in Z) and midline ones unsuffixed:
    name -> (body name, position in the body frame, m)."""
    out: dict[str, tuple[str, np.ndarray]] = {}
    for name, (body, pos) in right_landmarks(d).items():
        if name in MIDLINE:
            out[name] = (body, pos)
            continue
        for side in SIDES:
            b = body if body in MIDLINE_BODIES else f"{body}_{side}"
            p = pos if side == "r" else pos * np.array([1.0, 1.0, -1.0])
            out[f"{name}_{side}"] = (b, p)
    return out


def _sided(pattern: dict[str, str]) -> dict[str, str]:
    """Expand ``{'{R}Hip': 'hjc_{s}'}``-style patterns for both sides; ``{R}``/``{r}``/``{s}`` become
    R/L, r/L (OpenCap's mixed case) and r/l."""
    out = {}
    for marker, lm in pattern.items():
        if "{" not in marker:
            out[marker] = lm
            continue
        for side, R, r in (("r", "R", "r"), ("l", "L", "L")):
            out[marker.format(R=R, r=r, s=side)] = lm.format(s=side)
    return out


# The 20 video keypoints: joint centres and foot points.
VIDEO_MARKERS = _sided({
    "Neck": "neck", "midHip": "mid_hip",
    "{R}Shoulder": "gh_{s}", "{R}Elbow": "elbow_centre_{s}", "{R}Wrist": "wrist_centre_{s}",
    "{R}Hip": "hjc_{s}", "{R}Knee": "knee_centre_{s}", "{R}Ankle": "ankle_centre_{s}",
    "{R}Heel": "heel_{s}", "{R}BigToe": "big_toe_{s}", "{R}SmallToe": "small_toe_{s}",
})

# OpenCap's 43 augmenter markers.
STUDY_MARKERS = _sided({
    "{r}.ASIS_study": "asis_{s}", "{r}.PSIS_study": "psis_{s}", "{R}HJC_study": "hjc_{s}",
    "{r}_knee_study": "knee_lat_{s}", "{r}_mknee_study": "knee_med_{s}",
    "{r}_ankle_study": "ankle_lat_{s}", "{r}_mankle_study": "ankle_med_{s}",
    "{r}_toe_study": "toe_marker_{s}", "{r}_5meta_study": "meta5_{s}", "{r}_calc_study": "heel_{s}",
    "{r}_shoulder_study": "acromion_{s}", "C7_study": "c7",
    "{r}_thigh1_study": "thigh1_{s}", "{r}_thigh2_study": "thigh2_{s}", "{r}_thigh3_study": "thigh3_{s}",
    "{r}_sh1_study": "shank1_{s}", "{r}_sh2_study": "shank2_{s}", "{r}_sh3_study": "shank3_{s}",
    "{r}_lelbow_study": "elbow_lat_{s}", "{r}_melbow_study": "elbow_med_{s}",
    "{r}_lwrist_study": "wrist_radial_{s}", "{r}_mwrist_study": "wrist_ulnar_{s}",
})

# The marker names of a common lab protocol (as in OpenCap's validation data), same landmarks.
MOCAP_MARKERS = _sided({
    "C7": "c7", "{R}_Shoulder": "acromion_{s}", "{R}_Sternum": "sternum_{s}",
    "{r}.ASIS": "asis_{s}", "{r}.PSIS": "psis_{s}", "{R}_HJC": "hjc_{s}",
    "{r}_thigh1": "thigh1_{s}", "{r}_thigh2": "thigh2_{s}", "{r}_thigh3": "thigh3_{s}", "{r}_thigh4": "thigh4_{s}",
    "{r}_thigh5": "thigh5_{s}",
    "{r}_knee": "knee_lat_{s}", "{r}_mknee": "knee_med_{s}",
    "{r}_shank_antsup": "shank_antsup_{s}", "{r}_sh2": "shank2_{s}", "{r}_sh3": "shank3_{s}", "{r}_sh4": "shank4_{s}",
    "{r}_ankle": "ankle_lat_{s}", "{r}_mankle": "ankle_med_{s}",
    "{r}_toe": "toe_marker_{s}", "{r}_5meta": "meta5_{s}", "{r}_calc": "heel_{s}",
    "{R}_elbow_lat": "elbow_lat_{s}", "{R}_elbow_med": "elbow_med_{s}",
    "{R}_wrist_radius": "wrist_radial_{s}", "{R}_wrist_ulna": "wrist_ulnar_{s}",
})

MARKER_SETS = {"video": VIDEO_MARKERS, "study": STUDY_MARKERS, "mocap": MOCAP_MARKERS}

# Joint centres stay where the model's joints are; every other marker (skin markers on bony
# landmarks, cluster spots, foot points) is free for marker placement on the static trial, which moves
# it to where this subject's marker actually sat (soft tissue, marker base, placement differ).
JOINT_CENTRES = ("hjc", "mid_hip", "knee_centre", "ankle_centre", "gh", "neck", "elbow_centre", "wrist_centre")


def is_fixed(landmark: str) -> bool:
    return landmark.startswith(JOINT_CENTRES)


# Which video keypoints place each body of the model: a marker on a body, and a coordinate of a joint
# between two bodies, can only be trusted in frames where these keypoints were seen (or bridged over
# a short gap). Used to leave empty only what a long keypoint gap really affects.
BODY_KEYPOINTS = {
    "pelvis": ("RHip", "LHip"),
    "torso": ("Neck", "RShoulder", "LShoulder"),
    **{f"{body}_{s}": kps for s, S in (("r", "R"), ("l", "L")) for body, kps in (
        ("femur", (f"{S}Hip", f"{S}Knee")),
        ("tibia", (f"{S}Knee", f"{S}Ankle")),
        ("talus", (f"{S}Ankle", f"{S}Heel", f"{S}BigToe", f"{S}SmallToe")),
        ("calcn", (f"{S}Ankle", f"{S}Heel", f"{S}BigToe", f"{S}SmallToe")),
        ("toes", (f"{S}Heel", f"{S}BigToe", f"{S}SmallToe")),
        ("humerus", (f"{S}Shoulder", f"{S}Elbow")),
        ("ulna", (f"{S}Elbow", f"{S}Wrist")),
        ("radius", (f"{S}Elbow", f"{S}Wrist")),
        ("hand", (f"{S}Elbow", f"{S}Wrist")),
    )},
}


@lru_cache(maxsize=1)
def marker_keypoints() -> dict[str, tuple[str, ...]]:
    """Marker name (every set) -> the video keypoints that place the body it sits on (computed once;
    do not modify the result)."""
    from biomech.anthropometry import Dimensions, GENERIC_HEIGHT_M

    body_of = {name: body for name, (body, _) in landmarks(Dimensions(GENERIC_HEIGHT_M)).items()}
    return {marker: BODY_KEYPOINTS[body_of[lm]] for mset in MARKER_SETS.values() for marker, lm in mset.items()}
