"""BlazePose in torch (models/blazepose_torch.py, models/tflite_torch.py): its geometry against OpenCV,
its post-processing against hand-made truth, and the whole path against MediaPipe on real videos."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.blazepose_torch import (BlazePoseTorch, decode_boxes, detection_roi, refine_from_heatmap, roi_grid,
                                    ssd_anchors, weighted_nms)
from pipeline.keypoints_blazepose import people_array
from tests.conftest import SHARED_DATA, needs_shared


def test_anchors_follow_the_detector_layout():
    a = ssd_anchors()
    assert a.shape == (2254, 2)  # 28x28x2 + 14x14x2 + 7x7x6
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[1], a[0])
    assert np.allclose(a[1568], [0.5 / 14, 0.5 / 14]) and np.allclose(a[-1], [6.5 / 7, 6.5 / 7])


def test_decoding_places_boxes_and_points_around_anchors():
    anchors = torch.from_numpy(ssd_anchors())
    raw = torch.zeros(1, 2254, 12)
    raw[0, 5, 0] = 22.4  # +0.1 of the image in x
    raw[0, 5, 2] = 44.8  # width 0.2
    raw[0, 5, 7] = -11.2  # point 1 y: -0.05
    out = decode_boxes(raw, anchors)[0, 5].numpy()
    ax, ay = ssd_anchors()[5]
    assert np.allclose(out[:4], [ax + 0.1, ay, 0.2, 0.0], atol=1e-6)
    assert np.allclose(out[4:8], [ax, ay, ax, ay - 0.05], atol=1e-6)


def test_weighted_nms_merges_overlaps_and_keeps_separate_people():
    boxes = np.zeros((3, 12), np.float32)
    boxes[0, :4] = [0.30, 0.5, 0.2, 0.4]
    boxes[1, :4] = [0.32, 0.5, 0.2, 0.4]  # the same person, found again
    boxes[2, :4] = [0.80, 0.5, 0.2, 0.4]  # someone else
    boxes[:, 4] = boxes[:, 0]
    kept, scores = weighted_nms(boxes, np.array([0.9, 0.6, 0.7], np.float32))
    assert len(kept) == 2 and np.allclose(scores, [0.9, 0.7])
    assert kept[0, 0] == pytest.approx((0.9 * 0.30 + 0.6 * 0.32) / 1.5)  # score-weighted mean, point too
    assert kept[0, 4] == pytest.approx(kept[0, 0]) and kept[1, 0] == pytest.approx(0.80)


def test_region_is_upright_square_around_the_hips():
    # hip centre at (500, 1200) px, scale point 300 px straight above: an upright person
    pts = np.array([[[500 / 1080, 1200 / 1920], [500 / 1080, 900 / 1920], [0, 0], [0, 0]]])
    cx, cy, side, rot = detection_roi(pts, 1080, 1920)[0]
    assert (cx, cy) == pytest.approx((500, 1200)) and side == pytest.approx(2 * 300 * 1.25) and rot == pytest.approx(0.0)
    pts[0, 1] = [800 / 1080, 1200 / 1920]  # scale point to the right: the body lies along +x
    assert detection_roi(pts, 1080, 1920)[0, 3] == pytest.approx(np.pi / 2)


@pytest.mark.parametrize("rotation", [0.0, 0.4, -2.0])
def test_crop_grid_matches_opencv_warp_as_mediapipe_uses_it(rotation):
    """MediaPipe crops with cv2.warpPerspective from the rotated rectangle's corners; the grid must read the
    same pixels (to OpenCV's 1/32-pixel interpolation grid)."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (300, 200, 3)).astype(np.float32), (0, 0), 2.0)
    cx, cy, side = 90.0, 160.0, 150.0
    rect = cv2.RotatedRect((cx, cy), (side, side), float(np.degrees(rotation)))
    dst = np.array([[0, 64], [0, 0], [64, 0], [64, 64]], np.float32)
    M = cv2.getPerspectiveTransform(cv2.boxPoints(rect).astype(np.float32), dst)
    want = cv2.warpPerspective(img, M, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    grid = roi_grid(torch.tensor([[cx, cy, side, rotation]]), 64, 200, 300)
    got = F.grid_sample(torch.from_numpy(img).permute(2, 0, 1)[None], grid, mode="bilinear", padding_mode="border",
                        align_corners=True)[0].permute(1, 2, 0).numpy()
    diff = np.abs(got - want)
    # equal but where float rounding puts a coordinate on the other side of a 1/32-pixel step
    assert np.mean(diff < 0.05) > 0.99 and diff.max() < 1.0


def test_heatmap_refinement_moves_confident_points_only():
    heat = torch.full((1, 64, 64, 39), -20.0)
    heat[0, 30, 40, 0] = 5.0  # a sharp peak for landmark 0 at column 40, row 30
    heat[0, 30, 41, 0] = 5.0  # and its neighbour: the mean sits between them
    heat[0, 10, 10, 1] = -1.0  # landmark 1: a peak too weak (sigmoid < 0.5) to trust
    xy = torch.zeros(1, 39, 2)
    xy[0, 0] = torch.tensor([41.9 / 64, 31.5 / 64])
    xy[0, 1] = torch.tensor([10.2 / 64, 10.2 / 64])
    xy[0, 2] = torch.tensor([1.5, 0.5])  # right of the heatmap: kept
    out = refine_from_heatmap(xy, heat)[0]
    assert out[0].tolist() == pytest.approx([40.5 / 64, 30 / 64], abs=1e-4)
    assert torch.equal(out[1:], xy[0, 1:])


def test_people_array_keeps_the_most_confident_per_frame():
    from models.blazepose_torch import Detections

    lm = np.zeros((3, 33, 4), np.float32)
    lm[..., 3] = 0.9
    lm[:, :, 0] = np.array([100, 200, 300])[:, None]
    det = Detections(frame=np.array([0, 0, 1]), score=np.array([0.6, 0.9, 0.8]), roi=np.zeros((3, 4)),
                     landmarks=lm, presence=np.ones(3))
    out = people_array(det, 3, max_people=1)
    assert out.shape == (3, 1, 20, 3)
    assert out[0, 0, 1, 0] == 200 and out[1, 0, 1, 0] == 300  # frame 0: the 0.9 person; frame 1: its only one
    assert np.isnan(out[2, 0, :, 0]).all() and (out[2, 0, :, 2] == 0).all()


def _frames(video, n: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    out = []
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(out)


@needs_shared
@pytest.mark.slow
def test_parity_with_mediapipe_on_real_videos():
    """The torch path against MediaPipe's own Pose on the same frames (MediaPipe in static-image mode,
    which runs the same detector -> region -> landmarks per frame): landmarks of the matching person,
    4 real 1080x1920 videos, 40 frames each. The issue's limits: median < 2 px, 95th percentile < 6 px."""
    from mediapipe.python.solutions import pose as mp_pose

    model = BlazePoseTorch(min_detection_confidence=0.5, min_presence=0.5, max_people=3)
    dist = []
    for cam in ("cam01", "cam02", "cam03", "cam04"):
        frames = _frames(SHARED_DATA / "pose2sim-demo" / "videos" / f"{cam}.mp4", 40)
        h, w = frames.shape[1:3]
        det = model(frames)
        with mp_pose.Pose(static_image_mode=True, model_complexity=1, smooth_landmarks=False) as ref_pose:
            for i, f in enumerate(frames):
                res = ref_pose.process(f)
                mine = np.flatnonzero(det.frame == i)
                assert (res.pose_landmarks is None) == (len(mine) == 0), f"{cam} frame {i}: found by one side only"
                if res.pose_landmarks is None:
                    continue
                ref = np.array([[p.x * w, p.y * h] for p in res.pose_landmarks.landmark])
                d = [np.linalg.norm(det.landmarks[j, :, :2] - ref, axis=1) for j in mine]
                dist.append(min(d, key=np.median))
    dist = np.concatenate(dist)
    assert np.median(dist) < 2.0 and np.percentile(dist, 95) < 6.0, (np.median(dist), np.percentile(dist, 95))
