"""Scale a model to the subject with OpenSim's ScaleTool on a static trial.

Two ways in, one run: ``scale_with_setup`` takes any OpenSim scale setup file (e.g. a user's or
OpenCap's) and ``build_scale_tool`` makes one from our measurement definitions. Both go through
``run_scale``, which

- clears the setup's path to the subject, because ScaleTool otherwise joins the setup file's folder
  to absolute marker-file paths;
- picks the time window itself (the stillest ``window_s`` of the static trial, where every scaling
  marker is present) unless one is given, since a setup file's window rarely fits another recording;
- writes every output (scaled .osim, scale factors, static pose, log) into the output folder and
  never next to the inputs, which may be read-only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biomech.ik import marker_task, model_marker_names, model_marker_positions, neutral_task
from biomech.mot import CoordinateTable, read_mot
from biomech.opensim_env import load_model, osim, run_tool
from biomech.trc import MarkerTable, read_trc


class ScaleError(ValueError):
    """Scaling cannot run on these inputs; the message says which file and what to do."""


@dataclass
class Measurement:
    """Scale ``bodies`` along ``axes`` by the mean ratio of experimental / model distances of ``pairs``."""

    name: str
    pairs: list[tuple[str, str]]
    bodies: list[str]
    axes: str = "XYZ"


@dataclass
class ScaleResult:
    model_path: Path
    time_range_s: tuple[float, float]
    scale_factors: dict[str, tuple[float, float, float]]
    static_rms_m: float
    static_max_m: float
    seconds: float

    def summary(self) -> dict:
        return {
            "model": str(self.model_path),
            "time_range_s": [round(t, 3) for t in self.time_range_s],
            "scale_factors": {k: [round(x, 4) for x in v] for k, v in self.scale_factors.items()},
            "static_marker_rms_mm": round(self.static_rms_m * 1000, 2),
            "static_marker_max_mm": round(self.static_max_m * 1000, 2),
            "seconds": round(self.seconds, 2),
        }


def stillest_window(trc: MarkerTable, markers: list[str], window_s: float) -> tuple[float, float]:
    """(start, end) seconds of the ``window_s`` in which ``markers`` move least and are all present.

    Raises ScaleError naming the markers when no such window exists.
    """
    idx = [trc.names.index(m) for m in markers if m in trc.names]
    pos = trc.positions_m[:, idx]
    present = np.isfinite(pos).all(axis=(1, 2))
    n = len(trc.time_s)
    dt = float(np.median(np.diff(trc.time_s))) if n > 1 else 1.0
    w = max(1, min(n, int(round(window_s / dt)) + 1))
    speed = np.full(n, np.inf)
    if n > 1:
        v = np.linalg.norm(np.diff(pos, axis=0), axis=2).mean(axis=1) / dt
        speed[1:] = np.where(np.isfinite(v), v, np.inf)
        speed[0] = speed[1]
    best, best_cost = None, np.inf
    for s in range(0, n - w + 1):
        if not present[s : s + w].all():
            continue
        cost = float(np.mean(speed[s : s + w]))
        if cost < best_cost:
            best, best_cost = s, cost
    if best is None:
        lacking = [m for m, j in zip(markers, idx) if not np.isfinite(trc.positions_m[:, j]).all()]
        raise ScaleError(
            f"no {window_s:g} s window in which all scaling markers are present (gaps in {lacking[:8]}); "
            "record a static trial in which every marker is visible for at least that long"
        )
    return float(trc.time_s[best]), float(trc.time_s[best + w - 1])


def _measurement_markers(tool: osim.ScaleTool) -> list[str]:
    names: list[str] = []
    ms = tool.getModelScaler().getMeasurementSet()
    for i in range(ms.getSize()):
        meas = ms.get(i)
        if not meas.getApply():
            continue
        pairs = meas.getMarkerPairSet()
        for k in range(pairs.getSize()):
            pair = pairs.get(k)
            for j in range(2):
                if pair.getMarkerName(j) not in names:
                    names.append(pair.getMarkerName(j))
    return names


def build_scale_tool(measurements: list[Measurement], weights: dict[str, float],
                     coordinate_weights: dict[str, float] | None = None,
                     coordinate_targets_rad: dict[str, float] | None = None) -> osim.ScaleTool:
    """A ScaleTool with our measurement set and the marker weights for the static pose solve;
    ``coordinate_weights`` (coordinate name -> weight) add weak pulls of the static pose towards the
    coordinates' default (neutral) values, or towards ``coordinate_targets_rad`` (name -> radians) where
    given, for degrees of freedom the markers do not fix."""
    tool = osim.ScaleTool()
    mset = osim.MeasurementSet()
    for m in measurements:
        meas = osim.Measurement()
        meas.setName(m.name)
        meas.setApply(True)
        for a, b in m.pairs:
            meas.getMarkerPairSet().cloneAndAppend(osim.MarkerPair(a, b))
        for body in m.bodies:
            scale = osim.BodyScale()
            scale.setName(body)
            axes = osim.ArrayStr()
            for ax in m.axes:
                axes.append(ax)
            scale.setAxisNames(axes)
            meas.getBodyScaleSet().cloneAndAppend(scale)
        mset.cloneAndAppend(meas)
    scaler = tool.getModelScaler()
    scaler.setMeasurementSet(mset)
    order = osim.ArrayStr()
    order.append("measurements")
    scaler.setScalingOrder(order)
    placer_tasks = tool.getMarkerPlacer().getIKTaskSet()
    placer_tasks.clearAndDestroy()
    for name, w in weights.items():
        placer_tasks.cloneAndAppend(marker_task(name, w))
    for name, w in (coordinate_weights or {}).items():
        if w > 0:
            placer_tasks.cloneAndAppend(neutral_task(name, w, (coordinate_targets_rad or {}).get(name)))
    return tool


def scale_with_setup(
    setup_xml: str | Path,
    model_path: str | Path,
    static_trc: str | Path,
    out_dir: str | Path,
    height_m: float,
    mass_kg: float,
    *,
    window_s: float,
    marker_set_xml: str | Path | None = None,
    time_range_s: tuple[float, float] | None = None,
    name: str = "scaled",
) -> ScaleResult:
    """Scale ``model_path`` with a user-supplied OpenSim scale setup file (its measurements and
    static-pose weights); ``marker_set_xml`` replaces the model's markers first when given; the static
    pose is the stillest ``window_s`` unless ``time_range_s`` is given."""
    setup_xml = Path(setup_xml)
    if not setup_xml.is_file():
        raise ScaleError(f"{setup_xml}: scale setup file not found")
    try:
        tool = osim.ScaleTool(str(setup_xml))
    except Exception as exc:
        raise ScaleError(f"{setup_xml}: not an OpenSim ScaleTool setup file ({exc})") from None
    return run_scale(tool, model_path, static_trc, out_dir, height_m, mass_kg,
                     window_s=window_s, marker_set_xml=marker_set_xml, time_range_s=time_range_s, name=name)


def run_scale(
    tool: osim.ScaleTool,
    model_path: str | Path,
    static_trc: str | Path,
    out_dir: str | Path,
    height_m: float,
    mass_kg: float,
    *,
    marker_set_xml: str | Path | None = None,
    window_s: float,
    time_range_s: tuple[float, float] | None = None,
    name: str = "scaled",
) -> ScaleResult:
    """Run ``tool`` (measurement scaling, then the static pose with marker placement) and write
    ``<name>.osim``, ``<name>_scale_factors.xml``, ``<name>_static.mot`` and ``<name>_scale.json``."""
    model_path, static_trc, out_dir = Path(model_path).resolve(), Path(static_trc).resolve(), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    model = load_model(model_path)  # clear error now rather than deep inside the tool
    trc = read_trc(static_trc)
    needed = _measurement_markers(tool)
    lacking = [m for m in needed if m not in trc.names]
    if lacking:
        raise ScaleError(
            f"{static_trc}: markers used by the scaling measurements are missing: {lacking}. "
            "Use a static trial with these markers, or a setup whose measurements use the markers you have."
        )
    if time_range_s is None:
        time_range_s = stillest_window(trc, needed, window_s)
    times = osim.ArrayDouble()
    times.append(time_range_s[0])
    times.append(time_range_s[1])

    out_model = out_dir / f"{name}.osim"
    tool.setName(name)
    tool.setPathToSubject("")
    tool.setSubjectMass(float(mass_kg))
    tool.setSubjectHeight(float(height_m))
    maker = tool.getGenericModelMaker()
    maker.setModelFileName(str(model_path))
    maker.setMarkerSetFileName(str(Path(marker_set_xml).resolve()) if marker_set_xml else "Unassigned")
    scaler = tool.getModelScaler()
    scaler.setApply(True)
    scaler.setMarkerFileName(str(static_trc))
    scaler.setTimeRange(times)
    scaler.setPreserveMassDist(True)
    scaler.setOutputModelFileName("")
    scaler.setOutputScaleFileName(str(out_dir / f"{name}_scale_factors.xml"))
    placer = tool.getMarkerPlacer()
    placer.setApply(True)
    placer.setMarkerFileName(str(static_trc))
    placer.setTimeRange(times)
    placer.setCoordinateFileName("")
    placer.setOutputModelFileName(str(out_model))
    placer.setOutputMotionFileName(str(out_dir / f"{name}_static.mot"))
    placer.setOutputMarkerFileName("")
    placer.setMaxMarkerMovement(-1.0)
    _drop_foreign_coordinate_tasks(placer.getIKTaskSet(), model)
    tool.printToXML(str(out_dir / f"{name}_scale_setup.xml"))

    seconds = run_tool(tool, out_dir / "opensim.log", ScaleError, f"{static_trc} on model {model_path}", out_model)

    factors = read_scale_factors(out_dir / f"{name}_scale_factors.xml")
    rms, mx = static_pose_error(out_model, out_dir / f"{name}_static.mot", trc, time_range_s)
    result = ScaleResult(out_model, tuple(time_range_s), factors, rms, mx, seconds)
    (out_dir / f"{name}_scale.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return result


def _drop_foreign_coordinate_tasks(tasks: osim.IKTaskSet, model: osim.Model) -> list[str]:
    """Remove coordinate tasks for coordinates the model does not have (setup files are often
    shared between model variants, and the static-pose solver stops at the first unknown one)."""
    coords = model.getCoordinateSet()
    dropped = []
    for i in reversed(range(tasks.getSize())):
        task = tasks.get(i)
        if task.getConcreteClassName() == "IKCoordinateTask" and not coords.contains(task.getName()):
            dropped.append(task.getName())
            tasks.remove(i)
    return dropped


def read_scale_factors(path: str | Path) -> dict[str, tuple[float, float, float]]:
    """Body -> (x, y, z) scale factors from a ScaleTool output scale set file."""
    sset = osim.ScaleSet(str(path))
    out = {}
    for i in range(sset.getSize()):
        s = sset.get(i)
        v = s.getScaleFactors()
        body = s.getSegmentName()
        if body == "ground" or body.endswith("_offset"):  # frames, not bodies
            continue
        out[body] = (v.get(0), v.get(1), v.get(2))
    return out


def static_pose_error(model_path: Path, static_mot: Path, trc: MarkerTable, window: tuple[float, float]) -> tuple[float, float]:
    """RMS and max marker distance (m) of the scaled model in its solved static pose, over the window."""
    pose = read_mot(static_mot)
    model = load_model(model_path)
    names = [n for n in model_marker_names(model) if n in trc.names]
    keep = (trc.time_s >= window[0] - 1e-9) & (trc.time_s <= window[1] + 1e-9)
    exp = np.nanmean(trc.subset(names).positions_m[keep], axis=0)
    mean_pose = CoordinateTable(pose.time_s[:1], pose.names, np.nanmean(pose.values, axis=0, keepdims=True))
    mod = model_marker_positions(model, mean_pose, names)[0]
    d = np.linalg.norm(mod - exp, axis=1)
    d = d[np.isfinite(d)]
    return float(np.sqrt(np.mean(d**2))), float(np.max(d))


def scale_with_measurements(
    measurements: list[Measurement],
    weights: dict[str, float],
    model_path: str | Path,
    static_trc: str | Path,
    out_dir: str | Path,
    height_m: float,
    mass_kg: float,
    coordinate_weights: dict[str, float] | None = None,
    coordinate_targets_rad: dict[str, float] | None = None,
    **kwargs,
) -> ScaleResult:
    """Scale ``model_path`` with our measurement definitions (see ``biomech.measurements``);
    ``coordinate_weights``, ``coordinate_targets_rad``: see ``build_scale_tool``."""
    if not measurements:
        raise ScaleError(f"{static_trc}: none of the scaling measurements can be made with this trial's markers")
    tool = build_scale_tool(measurements, weights, coordinate_weights, coordinate_targets_rad)
    return run_scale(tool, model_path, static_trc, out_dir, height_m, mass_kg, **kwargs)
