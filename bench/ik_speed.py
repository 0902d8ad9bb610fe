"""Speed of scaling and inverse kinematics with our model on this machine.

A 1,200-frame (12 s at 100 Hz) synthetic squat of our model, markers = the 43 _study markers + 20
video keypoints (+ 1 mm noise), solved with the InverseKinematicsTool at OpenSim's default accuracy
(1e-5, our default) and at 2e-6; plus scaling on a 1 s static trial. To show where the time goes,
the same frames are also solved with the bare InverseKinematicsSolver (no file I/O, no error
report) and the tool's set-up is timed on a 2-frame file.
Prints a table and writes bench/results/ik_speed.json. Run: .venv/bin/python bench/ik_speed.py
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from biomech.ik import run_ik
from biomech.measurements import measurements_for
from biomech.model_builder import build_model
from biomech.opensim_env import osim
from biomech.scaling import scale_with_measurements
from biomech.synthetic_motion import markers_from_motion, squat_motion
from biomech.trc import MarkerTable, write_trc

FRAMES = 1200


def bare_solver(model_path: Path, trc: Path, frames: int, accuracy: float) -> float:
    model = osim.Model(str(model_path))
    state = model.initSystem()
    mref = osim.MarkersReference(str(trc), osim.SetMarkerWeights())
    solver = osim.InverseKinematicsSolver(model, mref, osim.SimTKArrayCoordinateReference(), float("inf"))
    solver.setAccuracy(accuracy)
    times = mref.getTimes() if hasattr(mref, "getTimes") else None
    t = [i / 100.0 for i in range(frames)] if times is None else list(times)
    state.setTime(t[0])
    solver.assemble(state)
    t0 = time.perf_counter()
    for ti in t[1:]:
        state.setTime(ti)
        solver.track(state)
    return (len(t) - 1) / (time.perf_counter() - t0)


def main() -> int:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_model()
        model.initSystem()
        model_path = tmp / "model.osim"
        model.printToXML(str(model_path))
        motion = squat_motion(model, duration_s=FRAMES / 100, rate_hz=100.0, seed=2)
        trc = markers_from_motion(model, motion, noise_m=0.001)
        write_trc(tmp / "squats.trc", trc)
        write_trc(tmp / "two.trc", MarkerTable(trc.time_s[:2], trc.names, trc.positions_m[:2], trc.rate_hz))
        for acc in (1e-5, 2e-6):
            r = run_ik(model_path, tmp / "squats.trc", tmp / f"ik{acc:g}", accuracy=acc)
            rows[f"tool accuracy {acc:g}"] = {"seconds": round(r.seconds, 3), "fps": round(FRAMES / r.seconds, 1),
                                              "marker_rms_mm": round(float(np.mean(r.marker_rms_m)) * 1000, 2)}
            rows[f"bare solver accuracy {acc:g}"] = {"fps": round(bare_solver(model_path, tmp / "squats.trc", FRAMES, acc), 1)}
        t0 = time.perf_counter()
        run_ik(model_path, tmp / "two.trc", tmp / "two")
        rows["tool set-up + 2 frames + summary"] = {"seconds": round(time.perf_counter() - t0, 3)}
        still = squat_motion(model, duration_s=1.0, rate_hz=100.0, depth_deg=0.0)
        still.values[:] = still.values[:1]
        names = [n for n in trc.names]
        write_trc(tmp / "static.trc", markers_from_motion(model, still, names, noise_m=0.001))
        t0 = time.perf_counter()
        res = scale_with_measurements(measurements_for("study", set(names)), {n: 1.0 for n in names}, model_path,
                                      tmp / "static.trc", tmp / "scaled", 1.75, 75.0, window_s=0.5)
        rows["scaling (ScaleTool incl. static pose, 1 s static)"] = {"seconds": round(time.perf_counter() - t0, 3),
                                                                     "tool_seconds": round(res.seconds, 3)}
    print(f"IK of {FRAMES} frames, our model (33 coordinates, {len(trc.names)} markers), 2-core machine")
    for k, v in rows.items():
        print(f"  {k:50s} " + ", ".join(f"{a} {b}" for a, b in v.items()))
    out = ROOT / "bench" / "results" / "ik_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"frames": FRAMES, "markers": len(trc.names), "results": rows}, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
