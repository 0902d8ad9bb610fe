"""Inverse kinematics with OpenSim's InverseKinematicsTool.

Per-marker weights come from ``config.yaml`` (``ik.marker_weights``: marker name or fnmatch pattern ->
weight) on top of an optional OpenSim IK setup file's task set (a user-supplied model keeps its own
weights). Markers the model has but the .trc lacks, or that are missing in some frames, are simply
not used where missing: OpenSim skips NaN markers frame by frame, so the solve goes on. Every frame
gets its RMS and max marker error; frames above ``flag_rms_m`` are flagged in the summary.
"""
from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biomech.mot import CoordinateTable, read_mot
from biomech.opensim_env import load_model, osim, run_tool
from biomech.trc import MarkerTable, read_trc, write_trc


class IkError(ValueError):
    """Inverse kinematics cannot run on these inputs; the message says which file and what to do."""


@dataclass
class IkResult:
    """Outcome of one IK run.

    time_s, marker_rms_m, marker_max_m: (frames,) per solved frame.
    """

    mot_path: Path
    time_s: np.ndarray
    marker_rms_m: np.ndarray
    marker_max_m: np.ndarray
    markers_used: list[str]
    markers_not_in_data: list[str]
    frames_missing_markers: int
    flagged_frames: list[int]
    flag_rms_m: float
    seconds: float
    worst_markers: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        rms = self.marker_rms_m[np.isfinite(self.marker_rms_m)]
        return {
            "mot": self.mot_path.name,  # beside this summary
            "frames": int(len(self.time_s)),
            "marker_rms_mean_mm": round(float(np.mean(rms)) * 1000, 2) if len(rms) else None,
            "marker_rms_max_mm": round(float(np.max(rms)) * 1000, 2) if len(rms) else None,
            "marker_max_mean_mm": round(float(np.nanmean(self.marker_max_m)) * 1000, 2) if len(rms) else None,
            "flag_rms_mm": round(self.flag_rms_m * 1000, 1),
            "flagged_frames": self.flagged_frames,
            "frames_missing_markers": self.frames_missing_markers,
            "markers_used": self.markers_used,
            "markers_not_in_data": self.markers_not_in_data,
            "worst_markers_rms_mm": {k: round(v * 1000, 1) for k, v in self.worst_markers.items()},
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(len(self.time_s) / self.seconds, 1) if self.seconds > 0 else None,
        }


def resolve_weights(
    markers: list[str], weights: dict[str, float] | None, base: dict[str, float] | None = None, default: float = 1.0
) -> dict[str, float]:
    """Weight per marker: exact name in ``weights`` first, then its patterns (first match), then ``base``
    (a setup file's task set), then ``default``. Weight 0 leaves a marker out."""
    weights = dict(weights or {})
    default = float(weights.pop("default", default))
    out = {}
    for m in markers:
        if m in weights:
            out[m] = float(weights[m])
            continue
        hit = next((float(w) for pat, w in weights.items() if fnmatch.fnmatchcase(m, pat)), None)
        if hit is None:
            hit = float(base[m]) if base and m in base else default
        out[m] = hit
    return out


def named_values(names: list[str], patterns: dict[str, float]) -> dict[str, float]:
    """The ``names`` that ``patterns`` (names or * ? patterns -> value) give a value, as ``resolve_weights``
    picks it (exact name first, then the first matching pattern); names no entry matches are left out."""
    hits = resolve_weights(names, {str(k): float(v) for k, v in patterns.items()}, default=np.nan)
    return {n: v for n, v in hits.items() if np.isfinite(v)}


def setup_weights(setup_xml: str | Path) -> dict[str, float]:
    """Marker weights of an OpenSim IK (or scale) setup file's IKTaskSet; unapplied tasks get 0."""
    setup_xml = Path(setup_xml)
    try:
        tool = osim.InverseKinematicsTool(str(setup_xml))
        tasks = tool.getIKTaskSet()
    except Exception as exc:
        raise IkError(f"{setup_xml}: not an OpenSim IK setup file ({exc})") from None
    out = {}
    for i in range(tasks.getSize()):
        task = tasks.get(i)
        if task.getConcreteClassName() == "IKMarkerTask":
            out[task.getName()] = float(task.getWeight()) if task.getApply() else 0.0
    return out


def model_marker_names(model: osim.Model) -> list[str]:
    ms = model.getMarkerSet()
    return [ms.get(i).getName() for i in range(ms.getSize())]


def marker_task(name: str, weight: float) -> osim.IKMarkerTask:
    """An IK marker task; weight 0 leaves the marker out."""
    task = osim.IKMarkerTask()
    task.setName(name)
    task.setWeight(float(weight))
    task.setApply(weight > 0)
    return task


def neutral_task(coordinate: str, weight: float, value_rad: float | None = None) -> osim.IKCoordinateTask:
    """A weak pull of a coordinate towards its default value, or ``value_rad`` when given (for what the
    markers cannot see)."""
    task = osim.IKCoordinateTask()
    task.setName(coordinate)
    task.setWeight(float(weight))
    if value_rad is None:
        task.setValueType(osim.IKCoordinateTask.DefaultValue)
    else:
        task.setValueType(osim.IKCoordinateTask.ManualValue)
        task.setValue(float(value_rad))
    task.setApply(True)
    return task


def run_ik(
    model_path: str | Path,
    trc_path: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    weights: dict[str, float] | None = None,
    setup_xml: str | Path | None = None,
    time_range_s: tuple[float, float] | None = None,
    accuracy: float = 1e-5,
    flag_rms_m: float = 0.04,
    min_markers: int = 4,
    coordinate_weights: dict[str, float] | None = None,
) -> IkResult:
    """Solve IK for every frame of ``trc_path`` on ``model_path``; write ``<name>.mot`` (degrees) and
    ``<name>_ik_summary.json`` into ``out_dir``.

    ``coordinate_weights`` (coordinate name or pattern -> weight) adds weak pulls of coordinates
    towards their default value, for degrees of freedom the markers cannot see (e.g. hip rotation
    with straight knees from joint-centre keypoints only).
    """
    model_path, trc_path, out_dir = Path(model_path), Path(trc_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or trc_path.stem
    trc = read_trc(trc_path)
    model = load_model(model_path)
    model_markers = model_marker_names(model)
    base = setup_weights(setup_xml) if setup_xml else None
    w = resolve_weights(model_markers, weights, base)
    present = [m for m in model_markers if m in trc.names and np.isfinite(trc.marker(m)).any()]
    used = [m for m in present if w[m] > 0]
    not_in_data = [m for m in model_markers if m not in present]
    if len(used) < min_markers:
        raise IkError(
            f"{trc_path}: only {len(used)} of the model's markers ({model_path.name}) are in the data "
            f"with a weight > 0 ({used}); IK needs at least {min_markers}. Check that the .trc marker "
            f"names match the model's marker set (model has e.g. {model_markers[:6]})."
        )
    sel = trc.subset(used)
    if time_range_s is not None:
        keep = (sel.time_s >= time_range_s[0] - 1e-9) & (sel.time_s <= time_range_s[1] + 1e-9)
        sel = MarkerTable(sel.time_s[keep], sel.names, sel.positions_m[keep], sel.rate_hz)
    if len(sel.time_s) == 0:
        raise IkError(f"{trc_path}: no frames in the time range {time_range_s}")
    missing_rows = ~np.isfinite(sel.positions_m).all(axis=(1, 2))
    # The markers IK uses, rewritten as a metre .trc (OpenSim rejects odd headers some tools write).
    clean = write_trc(out_dir / f".{name}_ik_input.trc", sel)

    tasks = osim.IKTaskSet()
    for m in used:
        tasks.cloneAndAppend(marker_task(m, w[m]))
    cs = model.getCoordinateSet()
    for pattern, cw in (coordinate_weights or {}).items():
        for i in range(cs.getSize()):
            cname = cs.get(i).getName()
            if cw > 0 and fnmatch.fnmatchcase(cname, pattern):
                tasks.cloneAndAppend(neutral_task(cname, cw))
    tool = osim.InverseKinematicsTool()
    tool.setName(name)
    tool.setModel(model)
    tool.set_IKTaskSet(tasks)
    tool.setMarkerDataFileName(str(clean))
    tool.setStartTime(float(sel.time_s[0]))
    tool.setEndTime(float(sel.time_s[-1]))
    tool.set_accuracy(accuracy)
    tool.set_report_errors(True)
    tool.set_report_marker_locations(False)
    tool.setResultsDir(str(out_dir))
    mot_path = out_dir / f"{name}.mot"
    tool.setOutputMotionFileName(str(mot_path))
    seconds = run_tool(tool, out_dir / "opensim.log", IkError, f"{trc_path} on model {model_path}", mot_path)
    clean.unlink(missing_ok=True)

    errors = read_mot(out_dir / f"{name}_ik_marker_errors.sto")
    rms = errors.column("marker_error_RMS")
    mx = errors.column("marker_error_max")
    flagged = [int(i) for i in np.flatnonzero(rms > flag_rms_m)]
    result = IkResult(
        mot_path=mot_path,
        time_s=errors.time_s,
        marker_rms_m=rms,
        marker_max_m=mx,
        markers_used=used,
        markers_not_in_data=not_in_data,
        frames_missing_markers=int(missing_rows.sum()),
        flagged_frames=flagged,
        flag_rms_m=flag_rms_m,
        seconds=seconds,
    )
    result.worst_markers = marker_errors(model, read_mot(mot_path), sel, top=5)
    (out_dir / f"{name}_ik_summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return result


def marker_errors(model: str | Path | osim.Model, motion: CoordinateTable, trc: MarkerTable,
                  top: int | None = None) -> dict[str, float]:
    """RMS distance (m) per marker between the model (posed by ``motion``) and ``trc``, worst first."""
    model_pos = model_marker_positions(model, motion, trc.names)
    idx = _nearest_rows(trc.time_s, motion.time_s)
    d = np.linalg.norm(model_pos - trc.positions_m[idx], axis=2)
    rms = {n: float(np.sqrt(np.nanmean(d[:, j] ** 2))) for j, n in enumerate(trc.names) if np.isfinite(d[:, j]).any()}
    ranked = dict(sorted(rms.items(), key=lambda kv: -kv[1]))
    return dict(list(ranked.items())[:top]) if top else ranked


def _nearest_rows(src_t: np.ndarray, dst_t: np.ndarray) -> np.ndarray:
    i = np.searchsorted(src_t, dst_t).clip(1, len(src_t) - 1)
    left = np.abs(src_t[i - 1] - dst_t) <= np.abs(src_t[i] - dst_t)
    return np.where(left, i - 1, i)


def coordinate_name(column: str) -> str | None:
    """Coordinate name of a .mot/.sto column: ``knee_angle_r`` or a state path such as
    ``/jointset/knee_r/knee_angle_r/value`` (speeds and other state variables give None)."""
    if not column.startswith("/"):
        return column
    parts = column.strip("/").split("/")
    return parts[-2] if len(parts) >= 2 and parts[-1] == "value" else None


def model_marker_positions(model_path: str | Path | osim.Model, coords: CoordinateTable, markers: list[str]) -> np.ndarray:
    """(frames, markers, 3) ground positions (m) of model markers with the model posed by ``coords``.

    Coordinates not in ``coords`` keep their default values; markers the model lacks are NaN.
    """
    model = model_path if isinstance(model_path, osim.Model) else load_model(model_path)
    state = model.initSystem()
    cs = model.getCoordinateSet()
    names = [coordinate_name(n) for n in coords.names]
    cols = [(cs.get(n), j) for j, n in enumerate(names) if n and cs.contains(n)]
    ms = model.getMarkerSet()
    mk = [(ms.get(m), j) for j, m in enumerate(markers) if ms.contains(m)]
    constrained = model.getConstraintSet().getSize() > 0
    out = np.full((len(coords.time_s), len(markers), 3), np.nan)
    for i in range(len(coords.time_s)):
        for c, j in cols:
            c.setValue(state, float(coords.values[i, j]), False)
        if constrained:  # e.g. a knee translation coupled to the knee angle
            model.assemble(state)
        model.realizePosition(state)
        for marker, j in mk:
            p = marker.getLocationInGround(state)
            out[i, j] = (p.get(0), p.get(1), p.get(2))
    return out

