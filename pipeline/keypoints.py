"""Stage ``keypoints``: 2D keypoints of the subject in every camera.

Detects every person in every frame (pipeline/keypoints_detect.py), links detections into tracks
and keeps the subject (pipeline/keypoints_people.py), fixes left/right swaps
(pipeline/keypoints_swaps.py), draws overlays (pipeline/keypoints_overlay.py) and writes:

  <camera>.csv          the subject's 2D keypoints (format: ``KeypointsOutput``)
  overlay_<camera>.png  evenly spaced frames, subject in colour, other people in grey (not for a
                        camera that has 2D keypoint files but no video)
  overlay_<camera>.mp4  the whole video with skeletons (only with keypoints.overlay_video: true)
  people_<camera>.png   everyone seen, labelled with their track number (when more than one person)
  keypoints.json        per camera: people seen, tracks, the subject's coverage, detection rate per
                        keypoint, swaps fixed
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from core.keypoints import VIDEO_KEYPOINTS, body_centre
from core.video import VideoError
from pipeline.frames import FramesOutput, evenly_spaced
from pipeline.keypoints_detect import detect_all, keypoint_settings, read_json_all
from pipeline.keypoints_overlay import overlay_sheet, overlay_video, people_picture, read_frames
from pipeline.keypoints_people import (TrackInfo, candidates, choose_subject, hinted_track, link_tracks,
                                       subject_agreement, track_infos)
from pipeline.keypoints_swaps import fix_swaps
from pipeline.runner import StageContext, StageInputError
from sessions.settings import KeypointsSettings

# The 2D keypoint file, one per camera and trial: output/<trial>/keypoints/<camera>.csv. Columns:
# ``frame`` (0-based index in the video), ``time_s`` (the frame's presentation time on the camera's own
# clock), then for every video keypoint (core/keypoints.py, in that order) ``<name>_x``, ``<name>_y``
# (pixels, origin top-left of the upright image, x right, y down) and ``<name>_c`` (confidence 0-1).
# A keypoint not found in a frame has empty x/y and confidence 0. Add the camera's ``offset_s`` from
# sync/sync.json to ``time_s`` to get the common clock.
COLUMNS = ["frame", "time_s"] + [f"{k}_{a}" for k in VIDEO_KEYPOINTS for a in ("x", "y", "c")]


class KeypointFileError(ValueError):
    pass


def write_keypoints_csv(path: Path, time_s: np.ndarray, kp: np.ndarray) -> None:
    """time_s: (frames,); kp: (frames, 20, 3) pixels and confidence, NaN x/y where missing."""
    found = np.isfinite(kp[..., 0]) & np.isfinite(kp[..., 1]) & (kp[..., 2] > 0)  # (F, K)
    cols: dict[str, Any] = {"frame": np.arange(len(time_s)), "time_s": np.char.mod("%.6f", time_s)}
    for k, name in enumerate(VIDEO_KEYPOINTS):
        cols[f"{name}_x"] = np.where(found[:, k], kp[:, k, 0], np.nan)
        cols[f"{name}_y"] = np.where(found[:, k], kp[:, k, 1], np.nan)
        cols[f"{name}_c"] = np.where(found[:, k], np.char.mod("%.3f", kp[:, k, 2]), "0")
    # \r\n as csv.writer wrote them, so files of earlier runs and of this code are byte-identical
    pd.DataFrame(cols, columns=COLUMNS).to_csv(path, index=False, float_format="%.2f", na_rep="", lineterminator="\r\n")


def read_keypoints_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Returns time_s (frames,) and kp (frames, 20, 3)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=float)
    except OSError as exc:
        raise KeypointFileError(f"{path}: cannot be read ({exc})") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        table = None
    if table is None or list(table.columns) != COLUMNS:
        raise KeypointFileError(f"{path}: not a 2D keypoint file (header differs); re-run the keypoints stage")
    data = table.to_numpy()
    return data[:, 1], data[:, 2:].reshape(len(data), len(VIDEO_KEYPOINTS), 3)


@dataclass(frozen=True)
class KeypointsOutput:
    """What the keypoints stage hands on: the subject's 2D keypoints per camera, on its own clock, and
    the stage's report (people seen, tracks, detection rates, swaps: ``keypoints.json``)."""

    time_s: dict[str, np.ndarray]  # camera -> (frames,)
    points: dict[str, np.ndarray]  # camera -> (frames, 20, 3): x, y pixels and confidence
    report: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: Path) -> None:
        for cam, t in self.time_s.items():
            write_keypoints_csv(out_dir / f"{cam}.csv", t, self.points[cam])
        (out_dir / "keypoints.json").write_text(json.dumps(self.report, indent=2))

    @classmethod
    def load(cls, stage_dir: Path, cams: list[str]) -> KeypointsOutput:
        data = {c: read_keypoints_csv(stage_dir / f"{c}.csv") for c in cams}
        report_path = stage_dir / "keypoints.json"
        report = json.loads(report_path.read_text()) if report_path.is_file() else {}
        return cls({c: d[0] for c, d in data.items()}, {c: d[1] for c, d in data.items()}, report)


def _load_calibration(ctx: StageContext, info: dict[str, Any]):
    """The cameras when the session is calibrated (person selection then also uses geometry), else None;
    fitted to the videos' sizes as triangulation fits them (StageInputError when an aspect differs)."""
    from calibration.camera import CameraFileError
    from calibration.session_calibration import cameras_for_videos, session_cameras

    try:
        cameras = session_cameras(ctx.session)
    except CameraFileError:
        return None
    try:
        cameras, notes = cameras_for_videos(cameras, {c: (v["width"], v["height"]) for c, v in info.items()},
                                            ctx.trial.videos, ctx.session.cameras_file)
    except CameraFileError as exc:
        raise StageInputError(str(exc)) from None
    for note in notes:
        ctx.log.info("%s", note)
    return cameras


def _hinted(ctx: StageContext, cam: str, hint, tracks: np.ndarray, times: np.ndarray, info: dict[str, Any]) -> int:
    """The track subject.seen_at points at in camera ``cam``; StageInputError when nobody is there."""
    w, h = info["width"], info["height"]
    if not w or not h:
        raise StageInputError(f"{ctx.session.yaml_path}: subject.seen_at gives a position in {cam}, which has no video "
                              "to measure the picture by; remove the hint for that camera")
    t = hinted_track(tracks, times - times[0], (hint.x * w, hint.y * h), hint.time_s)
    if t is None:
        raise StageInputError(f"{ctx.session.yaml_path}: subject.seen_at points at x={hint.x:g}, y={hint.y:g} of {cam} at "
                              f"{hint.time_s:g} s, where nobody was found in trial {ctx.trial.name!r}; run `python app.py "
                              f"people {ctx.session.root} --trial {ctx.trial.name}` to see who is where")
    return t


def _people_seen(tracks: np.ndarray, times: np.ndarray, infos: list[TrackInfo], subject: int, info: dict[str, Any]):
    """Everyone found in one camera, at the frame where most of them are in view: track, coverage, where
    (shares of the picture), and the subject.seen_at line that picks them (python app.py people)."""
    present = np.sum(tracks[..., 2] > 0, axis=-1) >= 3  # (F, T)
    frame = int(np.argmax(present.sum(axis=1)))
    w, h = info["width"], info["height"]
    people = []
    for i in infos:
        if i.coverage <= 0:
            continue
        f = frame if present[frame, i.track] else i.first_frame
        cx, cy = body_centre(tracks[f, i.track])
        entry = {"track": i.track, "subject": i.track == subject, "coverage": round(i.coverage, 3),
                 "framing": round(i.framing, 3), "frame": f, "time_s": round(float(times[f] - times[0]), 3)}
        if w and h and np.isfinite(cx):
            entry.update(x=round(float(cx) / w, 3), y=round(float(cy) / h, 3))
        people.append(entry)
    return {"frame": frame, "people": people}


def _extent_px(people: np.ndarray) -> float:
    """Stand-in image height (pixels) when the size is unknown (2D keypoint files without video or
    calibration): the lowest keypoint seen; only compares the tracks of one camera."""
    y = people[..., 1][people[..., 2] > 0]
    return float(np.nanmax(y)) if y.size and np.isfinite(y).any() and np.nanmax(y) > 0 else 1.0


def _draw_pictures(ctx: StageContext, cfg: KeypointsSettings, cams: list[str], chosen: list[int], tracks: dict[str, np.ndarray],
                   times: dict[str, np.ndarray], subjects: dict[str, np.ndarray], seen: dict[str, dict]) -> None:
    """overlay_<camera>.png (and .mp4), and people_<camera>.png where more than one person was seen.
    Each camera's frames are decoded once, and the cameras in parallel threads (OpenCV's decoding and
    drawing release the GIL), so the pictures cost about one decode of the longest video."""

    def draw(c: str, t: int) -> None:
        video = ctx.trial.videos[c]
        subject, others, people_seen = subjects[c], np.delete(tracks[c], t, axis=1), seen[c]
        picks = evenly_spaced(len(times[c]), cfg.overlay_frames)
        several = len(people_seen["people"]) > 1
        images = read_frames(video, set(picks) | ({people_seen["frame"]} if several else set()))
        if cfg.overlay_frames > 0:
            cv2.imwrite(str(ctx.out_dir / f"overlay_{c}.png"),
                        overlay_sheet({i: images[i] for i in picks if i in images}, video.stem, times[c], subject, others))
        if several and people_seen["frame"] in images:
            labelled = [(f"#{p['track']}" + (" subject" if p["subject"] else ""), tracks[c][people_seen["frame"], p["track"]],
                         p["subject"]) for p in people_seen["people"]]
            cv2.imwrite(str(ctx.out_dir / f"people_{c}.png"), people_picture(images[people_seen["frame"]], labelled))
        if cfg.overlay_video:
            overlay_video(video, ctx.out_dir / f"overlay_{c}.mp4", times[c], subject, others)

    todo = []
    for c, t in zip(cams, chosen):
        if ctx.trial.videos.get(c) is None:
            if cfg.overlay_frames > 0 or cfg.overlay_video:
                ctx.log.info("%s/%s: no video, so no overlay images (2D keypoints from %s)", ctx.trial.name, c,
                             ctx.trial.source(c))
            continue
        todo.append((c, t))
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=len(todo)) as pool:
        futures = [pool.submit(draw, c, t) for c, t in todo]
    for fut in futures:
        try:
            fut.result()
        except VideoError as exc:
            raise StageInputError(str(exc)) from None


def run_keypoints(ctx: StageContext) -> None:
    cfg = keypoint_settings(ctx.settings)
    cams = [c.id for c in ctx.session.cameras]
    frames = FramesOutput.load(ctx.stage_dir("frames"))
    info, times = frames.cameras, dict(frames.time_s)
    if cfg.backend != "json":
        people = detect_all(ctx, cams, cfg)
    else:
        people = read_json_all(ctx, cams, {c: len(times[c]) for c in cams})
    for c in cams:
        n = min(len(people[c]), len(times[c]))
        people[c], times[c] = people[c][:n], times[c][:n]

    tracks, options, infos = {}, [], {}
    hints = {h.camera: h for h in ctx.session.subject.seen_at if h.trial in (None, ctx.trial.name)}
    for c in cams:
        fps = info[c]["fps_measured"] or 30.0
        tracks[c] = link_tracks(people[c], cfg, int(round(cfg.max_track_gap_s * fps)))
        infos[c] = track_infos(tracks[c], info[c]["height"] or _extent_px(people[c]), info[c]["width"])
        opts = candidates(infos[c])
        if not opts:
            raise StageInputError(f"{ctx.trial.source(c)}: no person found in any frame; check that this phone "
                                  "films the subject in full (head to feet) and that the video is not black")
        if c in hints:
            opts = [_hinted(ctx, c, hints[c], tracks[c], times[c], info[c])]
        options.append(opts)
    cameras = _load_calibration(ctx, {c: info[c] for c in cams})
    if any(len(o) > 1 for o in options):
        agreement = subject_agreement([times[c] for c in cams], [tracks[c] for c in cams], [infos[c] for c in cams],
                                      cfg, ctx.settings.sync, cameras)
        how = "framing and movement across cameras" + (" and geometry" if cameras is not None else "")
    else:
        agreement, how = (lambda combo: 0.0), "only one person"
    if hints:
        how = f"subject.seen_at in {', '.join(sorted(hints))}" + (f"; the others by {how}" if len(hints) < len(cams) else "")
    chosen = choose_subject(options, agreement)

    report: dict[str, Any] = {"backend": cfg.backend, "subject_chosen_by": how, "cameras": {}}
    subjects: dict[str, np.ndarray] = {}
    swaps_fixed, seen = {}, {}
    for c, t in zip(cams, chosen):
        subjects[c], swaps_fixed[c] = fix_swaps(tracks[c][:, t], cfg.swap_prior)
        seen[c] = _people_seen(tracks[c], times[c], infos[c], t, info[c])
    _draw_pictures(ctx, cfg, cams, chosen, tracks, times, subjects, seen)
    for c, t in zip(cams, chosen):
        subject, swaps, people_seen = subjects[c], swaps_fixed[c], seen[c]
        detected = subject[..., 2] >= 0.5
        report["cameras"][c] = {
            "people_seen": people_seen,
            "frames": int(len(times[c])),
            "max_people_in_a_frame": int(np.max(np.sum(np.sum(people[c][..., 2] > 0, -1) >= 3, -1), initial=0)),
            "tracks": [vars(i) for i in infos[c] if i.coverage > 0],
            "subject_track": int(t),
            "subject_coverage": infos[c][t].coverage,
            "detection_rate": {k: round(float(detected[:, i].mean()), 4) for i, k in enumerate(VIDEO_KEYPOINTS)},
            "mean_detection_rate": round(float(detected.mean()), 4),
            "swapped_frames": swaps,
        }
        if infos[c][t].coverage < 0.9:
            ctx.log.warning("%s: the subject is found in only %.0f%% of frames; check %s", ctx.trial.source(c),
                            100 * infos[c][t].coverage, ctx.out_dir.parent / "keypoints" / f"overlay_{c}.png")
    KeypointsOutput({c: times[c] for c in cams}, subjects, report).save(ctx.out_dir)
    rates = {c: r["mean_detection_rate"] for c, r in report["cameras"].items()}
    ctx.summary.update(detection_rate=rates,
                       subject_coverage={c: r["subject_coverage"] for c, r in report["cameras"].items()},
                       message="keypoints found in " + ", ".join(f"{c} {100 * v:.0f}%" for c, v in rates.items())
                       + f" of frames; subject chosen by {how}")
