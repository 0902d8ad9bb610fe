"""The session folder: ``session.yaml`` schema, trial discovery and up-front validation.

Layout (one layout, documented in the README)::

    SESSION/
      session.yaml                  subject, cameras, checkerboard, trials, config overrides
      calibration/                  calibration recordings and the computed camera file
      videos/<trial>/<camera>.mp4   one video per camera per trial (.mp4 .mov .avi .mkv .m4v)
      pose2d/<trial>/<camera>/*.json  or instead (keypoints.backend: json): another detector's 2D
                                    keypoints, one OpenPose/Pose2Sim JSON file per frame; a camera
                                    without a video then needs its frame rate (``fps:``)
      mocap/<file>.trc              optional ground truth per trial: 3D markers (a lab's or our 20 video
                                    keypoints) or reference joint angles (.mot); the compare stage uses it
      output/                       written by the pipeline

Loading checks everything at once and raises ``SessionError`` with every problem found, each
naming the file, what is wrong and what to do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sessions.config import ConfigError, apply_overrides, load_defaults
from sessions.settings import Settings

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".m4v")
TRIAL_KINDS = ("static", "dynamic")
SEXES = {"f": "f", "female": "f", "m": "m", "male": "m", "x": "x", "other": "x"}
PLACEMENTS = ("vertical", "ground")
TOP_KEYS = {"subject", "cameras", "checkerboard", "trials", "config"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SessionError(ValueError):
    """An invalid session; ``problems`` holds one message per problem found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class SubjectHint:
    """Where the subject is in one camera's picture at one moment (session.yaml ``subject.seen_at``), for
    when someone else is filmed too. x, y: shares of the picture's width and height from its top left;
    time_s: seconds from the start of that camera's video; trial: only that trial (None: every trial)."""

    camera: str
    x: float
    y: float
    time_s: float = 0.0
    trial: str | None = None


@dataclass(frozen=True)
class Subject:
    id: str
    height_m: float
    mass_kg: float
    sex: str  # 'f', 'm' or 'x'
    seen_at: tuple[SubjectHint, ...] = ()


@dataclass(frozen=True)
class PhoneCamera:
    """A phone as session.yaml declares it (its geometry is calibration.camera.Camera)."""

    id: str
    device: str | None = None
    fps: float | None = None  # declared frame rate; frame times of a camera filmed without a video file


@dataclass(frozen=True)
class Checkerboard:
    """Inner-corner counts, square size, and whether the board stands vertical or lies on the floor."""

    rows: int
    cols: int
    square_mm: float
    placement: str


@dataclass(frozen=True)
class Trial:
    """One recording. Every camera has a video, or (JSON backend) a folder of 2D keypoint files and a
    declared frame rate, or both; ``videos`` lacks the cameras that have no video (empty when the
    trial is 2D keypoint files only)."""

    name: str
    kind: str  # 'static' or 'dynamic'
    videos: dict[str, Path]  # camera id -> video file; only cameras that have one
    mocap: Path | None = None
    pose2d: dict[str, Path] = field(default_factory=dict)  # camera id -> folder of JSON keypoint files
    fps: dict[str, float] = field(default_factory=dict)  # camera id -> declared frame rate (session.yaml)

    def source(self, cam: str) -> Path:
        """What a camera's data comes from, for messages: its video, else its keypoint folder."""
        return self.videos.get(cam) or self.pose2d[cam]


@dataclass
class Session:
    root: Path
    subject: Subject
    cameras: list[PhoneCamera]
    trials: list[Trial]
    checkerboard: Checkerboard | None
    config: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def yaml_path(self) -> Path:
        return self.root / "session.yaml"

    @property
    def settings(self) -> Settings:
        """``config`` typed: one frozen dataclass per section (sessions/settings.py)."""
        return Settings.from_config(self.config)

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def calibration_dir(self) -> Path:
        return self.root / "calibration"

    @property
    def cameras_file(self) -> Path:
        """The calibrated cameras, written by `calibrate extrinsics` or `calibrate import`."""
        return self.calibration_dir / "cameras.yaml"

    def trial(self, name: str) -> Trial:
        for t in self.trials:
            if t.name == name:
                return t
        raise KeyError(f"{self.yaml_path}: no trial named {name!r}; trials are {[t.name for t in self.trials]}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _check_subject(raw: Any, where: str, problems: list[str]) -> Subject | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: 'subject' is missing; add subject: {{id: S01, height_m: 1.75, mass_kg: 70, sex: f}}")
        return None
    unknown = set(raw) - {"id", "height_m", "mass_kg", "sex", "seen_at"}
    for k in sorted(unknown):
        hint = " (give height in metres as height_m)" if "height" in k else " (give mass in kg as mass_kg)" if ("mass" in k or "weight" in k) else ""
        problems.append(f"{where}: unknown key 'subject.{k}'{hint}; allowed: id, height_m, mass_kg, sex, seen_at")
    seen_at = _check_seen_at(raw.get("seen_at"), where, problems)
    sid = raw.get("id")
    if sid is None or not str(sid).strip():
        problems.append(f"{where}: subject.id is missing; give the subject an identifier, e.g. id: S01")
    height = _number(raw.get("height_m"))
    if "height_m" not in raw:
        problems.append(f"{where}: subject.height_m is missing; give the height in metres, e.g. height_m: 1.75")
    elif height is None:
        problems.append(f"{where}: subject.height_m is {raw.get('height_m')!r}, not a number; write e.g. 1.75")
    elif 100 <= height <= 250:
        problems.append(f"{where}: subject.height_m is {height:g}, which looks like centimetres; write it in metres ({height / 100:.2f})")
    elif not 0.5 <= height <= 2.5:
        problems.append(f"{where}: subject.height_m is {height:g} m, outside 0.5-2.5 m; check the value (metres)")
    mass = _number(raw.get("mass_kg"))
    if "mass_kg" not in raw:
        problems.append(f"{where}: subject.mass_kg is missing; give the mass in kilograms, e.g. mass_kg: 70")
    elif mass is None:
        problems.append(f"{where}: subject.mass_kg is {raw.get('mass_kg')!r}, not a number; write e.g. 70")
    elif mass > 1000:
        problems.append(f"{where}: subject.mass_kg is {mass:g}, which looks like grams; write it in kilograms ({mass / 1000:.1f})")
    elif not 10 <= mass <= 300:
        problems.append(f"{where}: subject.mass_kg is {mass:g} kg, outside 10-300 kg; check the value (kilograms, not pounds)")
    sex = SEXES.get(str(raw.get("sex", "")).strip().lower())
    if sex is None:
        problems.append(f"{where}: subject.sex is {raw.get('sex')!r}; use f, m or x")
    if sid is None or height is None or mass is None or sex is None:
        return None
    return Subject(str(sid), height, mass, sex, seen_at)


SEEN_AT_EXAMPLE = "seen_at: {camera: cam1, x: 0.5, y: 0.6, time_s: 0}"


def _check_seen_at(raw: Any, where: str, problems: list[str]) -> tuple[SubjectHint, ...]:
    """subject.seen_at: one hint or a list of them (python app.py people shows the values to write)."""
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        key = f"subject.seen_at[{i}]" if isinstance(raw, list) else "subject.seen_at"
        if not isinstance(item, dict):
            problems.append(f"{where}: {key} is {item!r}; write e.g. {SEEN_AT_EXAMPLE}")
            continue
        bad = sorted(set(item) - {"camera", "x", "y", "time_s", "trial"})
        if bad:
            problems.append(f"{where}: {key} has unknown keys {bad}; allowed: camera, x, y, time_s, trial")
        cam = item.get("camera")
        x, y, t = _number(item.get("x")), _number(item.get("y")), _number(item.get("time_s", 0.0))
        if not isinstance(cam, str) or not cam:
            problems.append(f"{where}: {key}.camera is missing; name the camera the position is in, e.g. {SEEN_AT_EXAMPLE}")
        elif x is None or y is None or not (0 <= x <= 1 and 0 <= y <= 1):
            problems.append(f"{where}: {key}: x and y are shares of the picture's width and height (0-1, from the top "
                            f"left), got x={item.get('x')!r}, y={item.get('y')!r}; `python app.py people` shows the values")
        elif t is None or t < 0:
            problems.append(f"{where}: {key}.time_s is {item.get('time_s')!r}; give seconds from the start of the video (>= 0)")
        else:
            trial = item.get("trial")
            out.append(SubjectHint(cam, x, y, t, None if trial is None else str(trial)))
    return tuple(out)


def _check_cameras(raw: Any, where: str, problems: list[str]) -> list[PhoneCamera]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: 'cameras' is missing; list at least 2, e.g. cameras: [{{id: cam1}}, {{id: cam2}}]")
        return []
    cams: list[PhoneCamera] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, dict) or "id" not in entry:
            problems.append(f"{where}: cameras[{i}] has no id; write {{id: cam{i + 1}, device: iPhone13,3}}")
            continue
        cid = str(entry["id"])
        if not NAME_RE.match(cid):
            problems.append(f"{where}: camera id {cid!r} may hold only letters, digits, '_', '-' and '.'")
        if any(c.id == cid for c in cams):
            problems.append(f"{where}: camera id {cid!r} appears twice; give each camera its own id")
            continue
        unknown = set(entry) - {"id", "device", "fps"}
        for k in sorted(unknown):
            problems.append(f"{where}: camera {cid!r} has unknown key {k!r}; allowed: id, device, fps")
        device = entry.get("device")
        fps = _check_fps(entry.get("fps"), f"camera {cid!r}", where, problems)
        cams.append(PhoneCamera(cid, None if device is None else str(device), fps))
    if len(cams) < 2:
        problems.append(f"{where}: {len(cams)} camera(s) listed; 3D needs at least 2 cameras filming the same trials")
    return cams


def _check_fps(value: Any, owner: str, where: str, problems: list[str]) -> float | None:
    """A declared frame rate: a number > 0, or None when not given."""
    if value is None:
        return None
    fps = _number(value)
    if fps is None or not fps > 0:
        problems.append(f"{where}: {owner} has fps {value!r}; give the frame rate in frames per second, a number > 0 (e.g. fps: 60)")
        return None
    return fps


def _check_board(raw: Any, where: str, problems: list[str]) -> Checkerboard | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where}: 'checkerboard' must be a mapping: {{rows: 4, cols: 7, square_mm: 60, placement: vertical}}")
        return None
    ok = True
    for key in ("rows", "cols"):
        v = raw.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 2:
            problems.append(f"{where}: checkerboard.{key} is {v!r}; give the number of INNER corners (an integer >= 2)")
            ok = False
    sq = _number(raw.get("square_mm"))
    if sq is None or sq <= 0:
        problems.append(f"{where}: checkerboard.square_mm is {raw.get('square_mm')!r}; give the square side in millimetres, e.g. 60")
        ok = False
    elif sq < 10:  # real boards have squares of 20-150 mm; 6 means 6 cm
        problems.append(f"{where}: checkerboard.square_mm is {sq:g}, which looks like centimetres or metres; give millimetres (e.g. 60)")
        ok = False
    placement = raw.get("placement", "vertical")
    if placement not in PLACEMENTS:
        problems.append(f"{where}: checkerboard.placement is {placement!r}; use 'vertical' or 'ground'")
        ok = False
    if ok and raw["rows"] == raw["cols"]:
        problems.append(f"{where}: checkerboard has {raw['rows']}x{raw['cols']} inner corners; a square board cannot be oriented unambiguously, use one with different row and column counts")
        ok = False
    unknown = set(raw) - {"rows", "cols", "square_mm", "placement"}
    for k in sorted(unknown):
        problems.append(f"{where}: unknown key 'checkerboard.{k}'; allowed: rows, cols, square_mm, placement")
    return Checkerboard(raw["rows"], raw["cols"], float(sq), placement) if ok and not unknown else None


def _discover_trials(root: Path, json_dir: str) -> list[dict[str, Any]]:
    """Each folder under videos/ is a trial, and so is each folder under <json_dir>/ that holds 2D
    keypoint files (<trial>/<camera>/*.json; a trial may have videos, keypoint files or both);
    static if its name starts with "static"."""
    def folders(base: Path) -> list[Path]:
        return [d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")] if base.is_dir() else []

    names = {d.name for d in folders(root / "videos")} | {d.name for d in folders(root / json_dir) if any(d.glob("*/*.json"))}
    return [{"name": n, "kind": "static" if n.lower().startswith("static") else "dynamic"} for n in sorted(names)]


def _check_trials(raw: Any, root: Path, cams: list[PhoneCamera], where: str, problems: list[str], warnings: list[str],
                  keypoints_cfg: dict[str, Any] | None = None) -> list[Trial]:
    kcfg = keypoints_cfg or {"backend": "mediapipe", "json_dir": "pose2d"}
    json_dir = str(kcfg.get("json_dir") or "pose2d")
    if raw is None:
        raw = _discover_trials(root, json_dir)
        if not raw:
            problems.append(f"{where}: no trials listed and no folders under {root / 'videos'} or {root / json_dir}; put each "
                            f"trial's videos in videos/<trial>/<camera>.mp4 (or its 2D keypoint files in {json_dir}/<trial>/<camera>/)")
            return []
    if not isinstance(raw, list):
        problems.append(f"{where}: 'trials' must be a list of {{name, kind, mocap}} entries")
        return []
    trials: list[Trial] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or "name" not in entry:
            problems.append(f"{where}: trials[{i}] has no name; write {{name: squats1, kind: dynamic}}")
            continue
        name = str(entry["name"])
        if name in seen:
            problems.append(f"{where}: trial name {name!r} appears twice; trial names must be unique")
            continue
        seen.add(name)
        if not NAME_RE.match(name):
            problems.append(f"{where}: trial name {name!r} may hold only letters, digits, '_', '-' and '.'")
            continue
        kind = entry.get("kind", "static" if name.lower().startswith("static") else "dynamic")
        if kind not in TRIAL_KINDS:
            problems.append(f"{where}: trial {name!r} has kind {kind!r}; use 'static' (standing still, for scaling) or 'dynamic'")
        unknown = set(entry) - {"name", "kind", "mocap", "videos", "fps"}
        for k in sorted(unknown):
            problems.append(f"{where}: trial {name!r} has unknown key {k!r}; allowed: name, kind, mocap, videos, fps")
        videos, pose2d, fps = _trial_sources(entry, root, name, cams, kcfg, json_dir, where, problems)
        mocap = None
        if entry.get("mocap") is not None:
            mocap = (root / str(entry["mocap"])).resolve()
            if mocap.suffix.lower() not in (".trc", ".mot", ".sto"):
                problems.append(f"{where}: trial {name!r} mocap {entry['mocap']!r} is not a .trc file (or a .mot of "
                                "reference joint angles); export the mocap markers as .trc")
            elif not mocap.is_file():
                problems.append(f"{mocap}: mocap file of trial {name!r} not found; fix the path in session.yaml (relative to the session folder)")
        trials.append(Trial(name, kind, videos, mocap, pose2d, fps))
    if trials and not any(t.kind == "static" for t in trials):
        warnings.append(f"{where}: no static trial; scaling the model to the subject needs one (a few seconds standing still)")
    return trials


def _trial_fps(entry: dict, name: str, cams: list[PhoneCamera], where: str, problems: list[str]) -> dict[str, float]:
    """Declared frame rates per camera: the trial's ``fps`` (one number, or camera -> number) over the
    camera's ``fps``."""
    cam_ids = [c.id for c in cams]
    fps = {c.id: c.fps for c in cams if c.fps is not None}
    raw = entry.get("fps")
    if isinstance(raw, dict):
        for cam, value in raw.items():
            if str(cam) not in cam_ids:
                problems.append(f"{where}: trial {name!r} gives an fps for unknown camera {cam!r}; cameras are {cam_ids}")
                continue
            v = _check_fps(value, f"trial {name!r} camera {cam!r}", where, problems)
            if v is not None:
                fps[str(cam)] = v
    elif raw is not None:
        v = _check_fps(raw, f"trial {name!r}", where, problems)
        if v is not None:
            fps = {c: v for c in cam_ids}
    return fps


def _trial_sources(entry: dict, root: Path, name: str, cams: list[PhoneCamera], kcfg: dict[str, Any], json_dir: str,
                   where: str, problems: list[str]) -> tuple[dict[str, Path], dict[str, Path], dict[str, float]]:
    """A trial's videos, its folders of 2D keypoint files and declared frame rates. A camera may go
    without a video when the JSON backend reads its keypoint files and its frame rate is declared."""
    cam_ids = [c.id for c in cams]
    folder = root / "videos" / name
    use_json = kcfg.get("backend") == "json"
    pose2d = {}
    for cam in cam_ids:
        d = root / json_dir / name / cam
        if d.is_dir() and any(d.glob("*.json")):
            pose2d[cam] = d.resolve()
    fps = _trial_fps(entry, name, cams, where, problems)
    explicit = entry.get("videos") is not None
    no_videos = not explicit and not folder.is_dir()
    if no_videos and pose2d and not use_json:
        problems.append(f"{root / json_dir / name}: trial {name!r} has 2D keypoint files but no videos; to use them add "
                        "config: {keypoints: {backend: json}} to session.yaml (or put its videos in "
                        f"videos/{name}/<camera>.mp4)")
        return {}, pose2d, fps
    videos = _trial_videos(entry, root, name, cam_ids, where, problems, optional=set(cam_ids) if use_json else set())
    for cam in cam_ids if use_json else []:
        if cam in videos:
            continue  # its JSON files are checked against the video when the keypoints stage reads them
        if cam not in pose2d:
            problems.append(f"{root / json_dir / name / cam}: no 2D keypoint files (and no video) of camera {cam!r} for trial "
                            f"{name!r}; put its detector's JSON files there, one per frame (or its video in videos/{name}/{cam}.mp4)")
        elif cam not in fps:
            problems.append(f"{pose2d[cam]}: trial {name!r} camera {cam!r} has 2D keypoint files but no video to take "
                            f"frame times from; add its frame rate to session.yaml: cameras: - {{id: {cam}, fps: 60}} "
                            f"(or fps: 60 in trial {name!r})")
    return videos, pose2d, fps


def _trial_videos(entry: dict, root: Path, name: str, cam_ids: list[str], where: str, problems: list[str],
                  optional: set[str] = frozenset()) -> dict[str, Path]:
    """The trial's videos; a camera in ``optional`` (it has 2D keypoint files) may have none."""
    folder = root / "videos" / name
    videos: dict[str, Path] = {}
    explicit = entry.get("videos")
    if explicit is not None:
        if not isinstance(explicit, dict):
            problems.append(f"{where}: trial {name!r} videos must map camera id -> file, e.g. {{cam1: videos/{name}/cam1.mp4}}")
            return {}
        for cam, rel in explicit.items():
            if str(cam) not in cam_ids:
                problems.append(f"{where}: trial {name!r} names a video for unknown camera {cam!r}; cameras are {cam_ids}")
                continue
            videos[str(cam)] = (root / str(rel)).resolve()
    elif folder.is_dir():
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in VIDEO_EXTENSIONS or f.name.startswith("."):
                continue
            if f.stem not in cam_ids:
                problems.append(f"{f}: video for unknown camera {f.stem!r} in trial {name!r}; rename it to one of {cam_ids} or add the camera to session.yaml")
                continue
            if f.stem in videos:
                problems.append(f"{f}: second video for camera {f.stem!r} in trial {name!r} (also {videos[f.stem].name}); keep one")
                continue
            videos[f.stem] = f.resolve()
    for cam in cam_ids:
        path = videos.get(cam)
        if path is None:
            if cam not in optional:
                problems.append(f"{folder / (cam + '.mp4')}: no video of camera {cam!r} for trial {name!r}; every camera must film every trial")
        elif not path.is_file():
            problems.append(f"{path}: video of camera {cam!r} for trial {name!r} not found")
        elif path.stat().st_size == 0:
            problems.append(f"{path}: video of camera {cam!r} for trial {name!r} is empty (0 bytes); copy it again from the phone")
    return videos


def load_session(root: str | Path, cli_overrides: dict[str, Any] | None = None) -> Session:
    """Load and validate a session folder; raise SessionError listing every problem found."""
    root = Path(root).resolve()
    where = str(root / "session.yaml")
    if not root.is_dir():
        raise SessionError([f"{root}: session folder not found"])
    if not (root / "session.yaml").is_file():
        raise SessionError([f"{where}: missing; every session folder needs a session.yaml (see README, 'Session layout')"])
    try:
        raw = yaml.safe_load((root / "session.yaml").read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise SessionError([f"{where}{line}: not valid YAML ({getattr(exc, 'problem', exc)}); check indentation and colons"]) from None
    if not isinstance(raw, dict):
        raise SessionError([f"{where}: expected a mapping with subject, cameras and trials"])
    problems: list[str] = []
    warnings: list[str] = []
    for k in sorted(set(raw) - TOP_KEYS):
        problems.append(f"{where}: unknown top-level key {k!r}; allowed: {', '.join(sorted(TOP_KEYS))}")
    subject = _check_subject(raw.get("subject"), where, problems)
    cameras = _check_cameras(raw.get("cameras"), where, problems)
    board = _check_board(raw.get("checkerboard"), where, problems)
    config: dict[str, Any] = {}
    try:
        config = apply_overrides(load_defaults(), [(f"{where} (config)", raw.get("config")), ("--set", cli_overrides)])
    except ConfigError as exc:
        problems += exc.problems
    # Where the 2D keypoints come from decides which trial files are needed.
    trials = _check_trials(raw.get("trials"), root, cameras, where, problems, warnings, config.get("keypoints"))
    for h in subject.seen_at if subject is not None else ():
        if h.camera not in [c.id for c in cameras]:
            problems.append(f"{where}: subject.seen_at names camera {h.camera!r}; cameras are {[c.id for c in cameras]}")
        if h.trial is not None and h.trial not in [t.name for t in trials]:
            problems.append(f"{where}: subject.seen_at names trial {h.trial!r}; trials are {[t.name for t in trials]}")
    if problems:
        raise SessionError(problems)
    if not (root / "calibration" / "cameras.yaml").is_file():
        warnings.append(f"{root / 'calibration' / 'cameras.yaml'}: no camera calibration yet; 3D stages need it: "
                        "run `python app.py calibrate extrinsics SESSION` (or `calibrate import`)")
    assert subject is not None
    return Session(root, subject, cameras, trials, board, config, warnings)
