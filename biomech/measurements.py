"""Scaling measurements for our model, written once in landmark terms and turned into marker pairs
for whichever marker set the static trial has (mocap, augmenter ``_study`` or video keypoints).

Each measurement lists alternatives, best first; the first alternative whose marker pairs the set
can provide is used (e.g. the pelvis is measured ASIS-PSIS with anatomical markers and hip centre to
hip centre with video keypoints).
"""
from __future__ import annotations

from biomech.landmarks import MARKER_SETS
from biomech.scaling import Measurement

Pairs = list[tuple[str, str]]


def _side(pairs: Pairs, s: str) -> Pairs:
    return [(a.format(s=s), b.format(s=s)) for a, b in pairs]


def _specs() -> list[tuple[str, list[Pairs], list[str], str]]:
    """(name, alternatives of landmark pairs, bodies, axes)."""
    specs = [
        ("pelvis_xy", [[("asis_r", "psis_r"), ("asis_l", "psis_l")], [("hjc_r", "hjc_l")]], ["pelvis"], "XY"),
        ("pelvis_z", [[("hjc_r", "hjc_l")], [("asis_r", "asis_l")]], ["pelvis"], "Z"),
        ("torso_xy", [[("acromion_r", "psis_r"), ("acromion_l", "psis_l"), ("c7", "psis_r"), ("c7", "psis_l")],
                      [("neck", "mid_hip")]], ["torso"], "XY"),
        ("torso_z", [[("acromion_r", "acromion_l")], [("gh_r", "gh_l")]], ["torso"], "Z"),
    ]
    for s in ("r", "l"):
        specs += [
            (f"femur_{s}", [_side([("hjc_{s}", "knee_lat_{s}"), ("hjc_{s}", "knee_med_{s}")], s),
                            _side([("hjc_{s}", "knee_lat_{s}")], s), _side([("hjc_{s}", "knee_centre_{s}")], s)],
             [f"femur_{s}"], "XYZ"),
            (f"tibia_{s}", [_side([("knee_lat_{s}", "ankle_lat_{s}"), ("knee_med_{s}", "ankle_med_{s}")], s),
                            _side([("knee_lat_{s}", "ankle_lat_{s}")], s),
                            _side([("knee_centre_{s}", "ankle_centre_{s}")], s)], [f"tibia_{s}"], "XYZ"),
            (f"foot_{s}", [_side([("heel_{s}", "toe_marker_{s}"), ("heel_{s}", "meta5_{s}")], s),
                           _side([("heel_{s}", "big_toe_{s}"), ("heel_{s}", "small_toe_{s}")], s)],
             [f"talus_{s}", f"calcn_{s}", f"toes_{s}"], "XYZ"),
            (f"humerus_{s}", [_side([("acromion_{s}", "elbow_lat_{s}"), ("acromion_{s}", "elbow_med_{s}")], s),
                              _side([("gh_{s}", "elbow_centre_{s}")], s)], [f"humerus_{s}"], "XYZ"),
            (f"forearm_{s}", [_side([("elbow_lat_{s}", "wrist_radial_{s}"), ("elbow_med_{s}", "wrist_ulnar_{s}")], s),
                              _side([("elbow_centre_{s}", "wrist_centre_{s}")], s)],
             [f"ulna_{s}", f"radius_{s}", f"hand_{s}"], "XYZ"),
        ]
    return specs


def measurements_for(marker_set: str | dict[str, str], available: set[str] | None = None) -> list[Measurement]:
    """Measurements for a marker set (name in MARKER_SETS or marker -> landmark map), using only
    markers in ``available`` (e.g. those of the static trial) when given."""
    names = MARKER_SETS[marker_set] if isinstance(marker_set, str) else marker_set
    by_landmark = {lm: marker for marker, lm in names.items()}
    have = set(by_landmark) if available is None else {lm for lm, mk in by_landmark.items() if mk in available}
    out = []
    for name, alternatives, bodies, axes in _specs():
        for alt in alternatives:
            pairs = [(by_landmark[a], by_landmark[b]) for a, b in alt if a in have and b in have]
            if len(pairs) == len(alt):
                out.append(Measurement(name, pairs, bodies, axes))
                break
    return out
