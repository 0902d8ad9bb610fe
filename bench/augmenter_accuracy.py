"""Accuracy of our augmenter weights and of OpenCap's v0.3, per marker group.

1. Held-out synthetic subjects (never seen in training; same generator as `augmenter train`'s
   held-out set): marker RMSE with exact keypoints and with reconstruction-like keypoints.
2. Subject 4's real squats (needs ../shared/data): our model is scaled and solved on the lab's
   mocap (static1, squats1); the video keypoints are its joint centres and foot points in that
   solution; the targets are the lab's own markers (matched to the _study names by landmark).
   Reported raw and placement-corrected (each marker's mean offset in its segment removed, which
   is what marker placement on a static trial does before IK).
3. Joint angles from the augmented markers (Subject 4): scale on augmented static1, IK on
   augmented squats1, compared with our IK of the mocap itself and with the lab's reference IK.

Prints tables and writes bench/results/augmenter_accuracy.json.
Run: .venv/bin/python bench/augmenter_accuracy.py [--weights FILE] [--subjects N]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from biomech.compare import compare_tables
from biomech.ik import resolve_weights, run_ik
from biomech.landmarks import MOCAP_MARKERS, STUDY_MARKERS, VIDEO_MARKERS
from biomech.measurements import measurements_for
from biomech.mocap import REFERENCE_STATIC_WINDOW_S, solve_mocap
from biomech.model_builder import DEFAULT_MODEL
from biomech.mot import read_mot
from biomech.opensim_env import load_model
from biomech.scaling import scale_with_measurements
from biomech.synthetic_motion import scaled_copy
from biomech.trc import MarkerTable, read_trc, write_trc
from models.augmenter import augment
from models.augmenter_data import KEYPOINTS, MARKERS, DataSpec, KeypointErrors, body_poses, make_trials, marker_anchors, points_in_ground
from models.augmenter_eval import GROUPS, held_out_errors, placement_corrected, summarise, weight_sets
from models.augmenter import DEFAULT_WEIGHTS

DATA = ROOT.parent / "shared" / "data"
OPENCAP_AUG = DATA / "opencap-core" / "augmenter"
S4 = DATA / "opencap-labval-subject4"
HEIGHT_M, MASS_KG = 1.89, 75.337
ANGLES = ["pelvis_tilt", "pelvis_list", "hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r", "ankle_angle_r",
          "hip_flexion_l", "hip_adduction_l", "hip_rotation_l", "knee_angle_l", "ankle_angle_l", "lumbar_extension"]


def synthetic(sets: dict, subjects: int) -> dict:
    held = make_trials(DataSpec(subjects=subjects, seed=10_000))
    return {f"{label} | {inputs}": r for label, models in sets.items() for inputs, r in held_out_errors(models, held).items()}


def lab_to_study() -> dict[str, str]:
    """_study marker -> lab marker on the same landmark."""
    by_landmark = {lm: lab for lab, lm in MOCAP_MARKERS.items()}
    return {s: by_landmark[lm] for s, lm in STUDY_MARKERS.items() if lm in by_landmark}


def subject4_solution(tmp: Path) -> dict:
    """Our model on the lab mocap: keypoints (exact), segment rotations, lab markers, per trial."""
    trials = {}
    scaled, ik = solve_mocap(S4 / "MarkerData" / "squats1.trc", S4 / "MarkerData" / "static1.trc", HEIGHT_M, MASS_KG, tmp / "mocap")
    static_ik = run_ik(scaled.model_path, S4 / "MarkerData" / "static1.trc", tmp / "mocap", name="static1_mocap")
    model = scaled_copy(load_model(DEFAULT_MODEL), scaled.scale_factors)
    bodies = [model.getBodySet().get(i).getName() for i in range(model.getBodySet().getSize())]
    kp_body, kp_local = marker_anchors(model, bodies, KEYPOINTS)
    mk_body, _ = marker_anchors(model, bodies, MARKERS)
    for name, res in (("static1", static_ik), ("squats1", ik)):
        coords = read_mot(res.mot_path)
        _, rot, org = body_poses(model, coords)
        lab = read_trc(S4 / "MarkerData" / f"{name}.trc")
        rows = np.searchsorted(lab.time_s, coords.time_s - 1e-6)
        trials[name] = {"time_s": coords.time_s, "keypoints": points_in_ground(rot, org, kp_body, kp_local),
                        "rotations": rot[:, mk_body], "kp_rotations": rot[:, kp_body], "lab": lab, "rows": rows, "ik": res.mot_path}
    trials["mocap_mot"] = ik.mot_path
    return trials


def subject4_markers(sets: dict, sol: dict, noisy: np.ndarray) -> dict:
    sq = sol["squats1"]
    mapping = lab_to_study()
    lab = sq["lab"]
    out = {}
    for label, models in sets.items():
        for inputs, kp in (("exact", sq["keypoints"]), ("reconstructed", noisy)):
            names, pred = augment(models, kp, KEYPOINTS, HEIGHT_M, MASS_KG)
            raw, corrected = {}, {}
            for study, lab_name in mapping.items():
                if study not in names or lab_name not in lab.names:
                    continue
                true = lab.positions_m[sq["rows"], lab.names.index(lab_name)]
                p = pred[:, names.index(study)]
                d2 = np.sum((p - true) ** 2, axis=1)
                raw[study] = d2[np.isfinite(d2)]
                corrected[study] = placement_corrected(p, true, sq["rotations"][:, MARKERS.index(study)])
            out[f"{label} | {inputs} | raw"] = summarise([raw])
            out[f"{label} | {inputs} | placement-corrected"] = summarise([corrected])
    return out


def subject4_angles(sets: dict, sol: dict, noisy: dict, tmp: Path) -> dict:
    ref_lab = read_mot(S4 / "IK" / "squats1_ik.mot")
    ref_ours = read_mot(sol["mocap_mot"])
    out = {}
    for label, models in sets.items():
        for inputs in ("exact", "reconstructed"):
            folder = tmp / f"{label.replace(' ', '_')}_{inputs}"
            folder.mkdir(parents=True)
            paths = {}
            for trial in ("static1", "squats1"):
                kp = sol[trial]["keypoints"] if inputs == "exact" else noisy[trial]
                names, mk = augment(models, kp, KEYPOINTS, HEIGHT_M, MASS_KG)
                paths[trial] = write_trc(folder / f"{trial}.trc", MarkerTable(sol[trial]["time_s"], KEYPOINTS + names,
                                                                               np.concatenate([kp, mk], axis=1), 100.0))
            names = set(read_trc(paths["static1"]).names)
            study = [m for m in STUDY_MARKERS if m in names]
            scaled = scale_with_measurements(measurements_for("study", names), resolve_weights(study, {}), DEFAULT_MODEL,
                                             paths["static1"], folder, HEIGHT_M, MASS_KG, window_s=REFERENCE_STATIC_WINDOW_S)
            ik = run_ik(scaled.model_path, paths["squats1"], folder, name="squats1", weights={k: 0.0 for k in VIDEO_MARKERS})
            mot = read_mot(ik.mot_path)
            row = {"marker_rms_mean_mm": ik.summary()["marker_rms_mean_mm"]}
            for ref_label, ref in (("vs our mocap IK", ref_ours), ("vs lab reference IK", ref_lab)):
                cmp = compare_tables(mot, ref, max_shift_s=0.1)
                table = {r["coordinate"]: r for r in cmp.table()}
                row[ref_label] = {c: {"mae_deg": table[c]["mae"], "offset_deg": table[c]["offset"]} for c in ANGLES if c in table}
            out[f"{label} | {inputs}"] = row
    return out


def short(coordinate: str) -> str:
    for a, b in (("hip_flexion", "hflex"), ("hip_adduction", "hadd"), ("hip_rotation", "hrot"), ("knee_angle", "knee"),
                 ("ankle_angle", "ankle"), ("pelvis_", "p."), ("lumbar_extension", "lumb.ext")):
        coordinate = coordinate.replace(a, b)
    return coordinate


def print_groups(title: str, results: dict) -> None:
    groups = [g for g, _ in GROUPS]
    print(f"\n{title}: marker RMSE (mm)")
    print(f"{'':44s}{'all':>7s}" + "".join(f"{g:>8s}" for g in groups))
    for label, r in results.items():
        print(f"{label:44s}{r['all']:7.1f}" + "".join(f"{r['groups'].get(g, float('nan')):8.1f}" for g in groups))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--subjects", type=int, default=20, help="held-out synthetic subjects")
    args = ap.parse_args()
    sets = weight_sets(args.weights, OPENCAP_AUG)
    results = {"weights": args.weights, "synthetic": synthetic(sets, args.subjects)}
    print_groups(f"Held-out synthetic ({args.subjects} subjects)", results["synthetic"])
    if S4.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            sol = subject4_solution(Path(tmp))
            rng = np.random.default_rng(4)
            errors = KeypointErrors()
            offsets = errors.offsets(rng, KEYPOINTS)
            noisy = {}
            for trial in ("static1", "squats1"):  # the same detector offsets (segment frames) in both trials
                s = sol[trial]
                biased = s["keypoints"] + np.einsum("fkij,kj->fki", s["kp_rotations"], offsets)
                noisy[trial] = errors.apply(rng, s["time_s"], biased)
            results["subject4_markers"] = subject4_markers(sets, sol, noisy["squats1"])
            print_groups("Subject 4 squats1 (real mocap markers)", results["subject4_markers"])
            results["subject4_angles"] = subject4_angles(sets, sol, noisy, Path(tmp))
        print("\nSubject 4 squats1: joint angles from augmented markers (scale on augmented static1, IK), MAE deg")
        for ref_label in ("vs our mocap IK", "vs lab reference IK"):
            print(f"  {ref_label}")
            print(f"  {'':34s}{'RMS mm':>7s}" + "".join(f"{short(c):>9s}" for c in ANGLES))
            for label, row in results["subject4_angles"].items():
                print(f"  {label:34s}{row['marker_rms_mean_mm']:7.1f}" + "".join(
                    f"{row[ref_label].get(c, {}).get('mae_deg', float('nan')):9.2f}" for c in ANGLES))
    else:
        print(f"\nSubject 4 skipped: {S4} not present")
    out = ROOT / "bench" / "results" / "augmenter_accuracy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=float))
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
