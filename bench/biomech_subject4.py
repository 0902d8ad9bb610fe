"""Scaling + IK on real mocap (OpenCap's Subject 4: static1, squats1) against the reference IK.

Two runs: (1) the LaiUhlrich2022 model with OpenCap's Mocap marker set and setup files, through our
scaling/IK code; (2) our own model with its marker set for the same lab markers and our measurements
(IK weights from the same setup file). Prints the per-coordinate tables and timings and writes
bench/results/biomech_subject4.json. Needs ../shared/data (exits 0 with a note otherwise).
Run: .venv/bin/python bench/biomech_subject4.py
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from biomech.compare import compare_tables, write_comparison
from biomech.mocap import solve_mocap
from biomech.mot import read_mot

DATA = ROOT.parent / "shared" / "data"
OPENSIM = DATA / "opencap-core" / "opensim"
S4 = DATA / "opencap-labval-subject4"
HEIGHT_M, MASS_KG = 1.89, 75.337
SHOW = ["pelvis_tilt", "pelvis_list", "pelvis_rotation", "hip_flexion_r", "hip_adduction_r", "hip_rotation_r",
        "knee_angle_r", "ankle_angle_r", "subtalar_angle_r", "hip_flexion_l", "hip_adduction_l", "hip_rotation_l",
        "knee_angle_l", "ankle_angle_l", "subtalar_angle_l", "lumbar_extension", "lumbar_bending", "lumbar_rotation",
        "arm_flex_r", "elbow_flex_r", "arm_flex_l", "elbow_flex_l"]


def run(label: str, out: Path, **kw) -> dict:
    t0 = time.perf_counter()
    scaled, ik = solve_mocap(S4 / "MarkerData" / "squats1.trc", S4 / "MarkerData" / "static1.trc", HEIGHT_M, MASS_KG,
                             out, ik_setup=OPENSIM / "Setup_IK_Mocap.xml", **kw)
    total = time.perf_counter() - t0
    cmp = compare_tables(read_mot(ik.mot_path), read_mot(S4 / "IK" / "squats1_ik.mot"), max_shift_s=0.2)
    write_comparison(cmp, ROOT / "bench" / "results", f"biomech_subject4_{label}")
    s = ik.summary()
    return {"label": label, "scale_seconds": round(scaled.seconds, 2), "ik_seconds": s["seconds"],
            "ik_frames_per_second": s["frames_per_second"], "frames": s["frames"], "total_seconds": round(total, 1),
            "marker_rms_mean_mm": s["marker_rms_mean_mm"], "marker_rms_max_mm": s["marker_rms_max_mm"],
            "static_marker_rms_mm": round(scaled.static_rms_m * 1000, 1), "worst_markers_rms_mm": s["worst_markers_rms_mm"],
            "time_shift_s": round(cmp.shift_s, 4), "coordinates": {r["coordinate"]: r for r in cmp.table()}}


def main() -> int:
    if not S4.is_dir():
        print(f"skipped: {S4} not present")
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run("LaiUhlrich2022", Path(tmp) / "lai", model=OPENSIM / "LaiUhlrich2022.osim",
                           marker_set_xml=OPENSIM / "LaiUhlrich2022_markers_mocap.xml",
                           scale_setup=OPENSIM / "Setup_scaling_LaiUhlrich2022_Mocap.xml"))
        results.append(run("ours", Path(tmp) / "ours"))
    print(f"{'':20s}" + "".join(f"{r['label']:>34s}" for r in results))
    print(f"{'coordinate':20s}" + "".join(f"{'MAE':>8s}{'RMSE':>7s}{'offset':>7s}{'r':>6s}{'ROMd':>6s}" for _ in results))
    for c in SHOW:
        line = f"{c:20s}"
        for r in results:
            row = r["coordinates"].get(c)
            line += (f"{row['mae']:8.2f}{row['rmse']:7.2f}{row['offset']:7.2f}{row['pearson_r']:6.2f}{row['rom_diff']:6.1f}"
                     if row else f"{'-':>34s}")
        print(line)
    for r in results:
        print(f"{r['label']}: marker RMS mean {r['marker_rms_mean_mm']} mm (max {r['marker_rms_max_mm']}), static "
              f"{r['static_marker_rms_mm']} mm; scaling {r['scale_seconds']} s; IK {r['frames']} frames in "
              f"{r['ik_seconds']} s = {r['ik_frames_per_second']} fps; shift {r['time_shift_s'] * 1000:.0f} ms")
    out = ROOT / "bench" / "results" / "biomech_subject4.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
