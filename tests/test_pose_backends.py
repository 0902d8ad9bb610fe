"""2D backends: BlazePose landmark mapping and the OpenPose/Pose2Sim JSON reader."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.keypoints import INDEX, VIDEO_KEYPOINTS, mirror_index
from models.pose_mediapipe import SMALL_TOE_ALONG, SMALL_TOE_LATERAL, blazepose_to_video
from models.pose_openpose import PoseJsonError, read_pose_json_dir


def blazepose_standing() -> np.ndarray:
    """(33, 4) landmarks of a person facing the camera (their right on the image left), feet forward (-z)."""
    lm = np.zeros((33, 4))
    lm[:, 3] = 0.9
    pts = {11: (260, 200, 0), 12: (140, 200, 0), 13: (280, 300, 0), 14: (120, 300, 0), 15: (290, 390, 0),
           16: (110, 390, 0), 23: (230, 400, 0), 24: (170, 400, 0), 25: (232, 540, 0), 26: (168, 540, 0),
           27: (234, 680, 0), 28: (166, 680, 0), 29: (234, 690, 20), 30: (166, 690, 20), 31: (236, 700, -80),
           32: (164, 700, -80)}
    for j, p in pts.items():
        lm[j, :3] = p
    lm[31, 3] = 0.6
    return lm


def test_blazepose_mapping_and_derived_points():
    lm = blazepose_standing()
    kp = blazepose_to_video(lm)
    assert kp.shape == (20, 3)
    np.testing.assert_allclose(kp[INDEX["Neck"], :2], [200, 200])
    np.testing.assert_allclose(kp[INDEX["midHip"], :2], [200, 400])
    np.testing.assert_allclose(kp[INDEX["RBigToe"], :2], lm[32, :2])
    np.testing.assert_allclose(kp[INDEX["LHeel"], :2], lm[29, :2])
    assert kp[INDEX["LSmallToe"], 2] == pytest.approx(0.6)  # weakest source landmark
    # Small toes: 80 % forward along heel -> foot index and to the outside of each foot.
    for side, heel, toe, outward in (("R", 30, 32, -1.0), ("L", 29, 31, 1.0)):
        axis = lm[toe, :3] - lm[heel, :3]
        length = np.linalg.norm(axis)
        p = kp[INDEX[f"{side}SmallToe"], :2]
        along = lm[heel, :2] + SMALL_TOE_ALONG * axis[:2]
        # The hip line is along image x, so the lateral offset is purely in x here.
        assert p[0] - along[0] == pytest.approx(outward * SMALL_TOE_LATERAL * length, rel=0.02)
        assert p[1] == pytest.approx(along[1], abs=0.5)


def test_mirror_index_swaps_every_pair_once():
    m = mirror_index()
    assert sorted(m) == list(range(20)) and [m[i] for i in m] == list(range(20))
    assert VIDEO_KEYPOINTS[m[INDEX["RHeel"]]] == "LHeel" and m[INDEX["Neck"]] == INDEX["Neck"]


def _write(folder, frame: int, people: list[list[float]], name="cam1_{:012d}_keypoints.json"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name.format(frame)).write_text(json.dumps({"version": 1.3, "people": [{"pose_keypoints_2d": p} for p in people]}))


def _body25(shift: float, conf: float = 0.9) -> list[float]:
    pts = np.zeros((25, 3))
    pts[:, 0] = np.arange(25) * 10 + shift
    pts[:, 1] = np.arange(25) * 5
    pts[:, 2] = conf
    return pts.ravel().tolist()


def test_openpose_body25_and_halpe26(tmp_path):
    d = tmp_path / "b25"
    for f in range(3):
        _write(d, f, [_body25(1000, 0.3), _body25(f)])  # weaker person first in the file
    people = read_pose_json_dir(d, max_people=2)
    assert people.shape == (3, 2, 20, 3)
    # Most confident person first; BODY_25 index 22 is RBigToe, 1 Neck, 8 MidHip.
    assert people[2, 0, INDEX["RBigToe"], 0] == 220 + 2 and people[2, 0, INDEX["Neck"], 0] == 12
    assert people[0, 0, INDEX["midHip"], 0] == 80 and people[0, 1, INDEX["midHip"], 0] == 1080

    h = tmp_path / "halpe"
    pts = np.zeros((26, 3))
    pts[:, 0] = np.arange(26)
    pts[:, 2] = 0.8
    pts[20, 2] = 0.0  # LBigToe not found
    _write(h, 7, [pts.ravel().tolist()])
    p = read_pose_json_dir(h, max_people=1)
    assert p.shape == (1, 1, 20, 3)
    assert p[0, 0, INDEX["Neck"], 0] == 18 and p[0, 0, INDEX["RHeel"], 0] == 25
    assert np.isnan(p[0, 0, INDEX["LBigToe"], 0]) and p[0, 0, INDEX["LBigToe"], 2] == 0


@pytest.mark.parametrize("case, message", [
    ("missing", "keypoint folder not found"),
    ("empty", "no .json files"),
    ("count", "expected 3 x (25, 26 or 133)"),
    ("broken", "not readable JSON"),
    ("noname", "no frame number"),
])
def test_openpose_bad_input_names_the_file(tmp_path, case, message):
    d = tmp_path / "cam"
    if case == "empty":
        d.mkdir()
    elif case == "count":
        _write(d, 0, [[1.0, 2.0, 0.5] * 17])
    elif case == "broken":
        d.mkdir()
        (d / "cam_000000000001_keypoints.json").write_text("{not json")
    elif case == "noname":
        _write(d, 0, [_body25(0)], name="keypoints.json")
    with pytest.raises(PoseJsonError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        read_pose_json_dir(d, 1)
    assert str(d) in str(err.value)
