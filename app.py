#!/usr/bin/env python3
"""Command line of the markerless-biomechanics pipeline. Thin: parses, calls packages, prints.

Exit codes: 0 ok, 1 some trial (or session) failed, 2 bad input.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from core.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

ROOT = Path(__file__).resolve().parent


def _print_problems(title: str, problems: list[str]) -> None:
    print(f"{title}:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)


def _overrides(args: argparse.Namespace):
    from sessions.config import parse_set_args

    return parse_set_args(args.set or [])


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.orchestrate import run_session

    result = run_session(args.session, args.trial, args.from_stage, _overrides(args), False if args.no_progress else None,
                         wait=args.wait)
    return result.exit_code


def cmd_people(args: argparse.Namespace) -> int:
    """Run frames + keypoints and list everyone found per camera, with a labelled picture, and the
    session.yaml line that makes a person the subject."""
    import json

    from pipeline.orchestrate import run_session

    overrides = _overrides(args)
    overrides.setdefault("run", {})["stages"] = ["frames", "keypoints"]
    result = run_session(args.session, args.trial, None, overrides, False if args.no_progress else None, judge=False)
    for report in sorted(Path(args.session).glob("output/*/keypoints/keypoints.json")):
        trial = report.parent.parent.name
        if args.trial and trial not in args.trial:
            continue
        doc = json.loads(report.read_text())
        print(f"\ntrial {trial} (subject chosen by {doc['subject_chosen_by']})")
        for cam, r in doc["cameras"].items():
            seen = r["people_seen"]["people"]
            picture = report.parent / f"people_{cam}.png"
            print(f"  {cam}: {len(seen)} {'person' if len(seen) == 1 else 'people'}"
                  + (f", picture {picture}" if picture.is_file() else ""))
            for p in seen:
                where = f"x {p['x']:.2f} y {p['y']:.2f}" if "x" in p else "position unknown (no video)"
                hint = (f"seen_at: {{camera: {cam}, x: {p['x']:.2f}, y: {p['y']:.2f}, time_s: {p['time_s']:g}, trial: {trial}}}"
                        if "x" in p else "")
                print(f"    #{p['track']:<3} {'SUBJECT' if p['subject'] else '       '} in {100 * p['coverage']:3.0f}% of frames, "
                      f"{where} at {p['time_s']:.2f} s   {hint}")
    print("\nTo choose another person, add the seen_at line of that person under subject: in session.yaml.")
    return result.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.lock import session_lock
    from pipeline.report import has_been_run, write_session_report
    from sessions.session import load_session

    session = load_session(args.session)
    if not has_been_run(session):
        print(f"{session.root}: this session has never been run (no {session.output_dir / 'summary.json'}); "
              f"run it first: python app.py run {args.session}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with session_lock(session.output_dir, wait=False):  # not while a run is writing the outputs
        files = write_session_report(session)
    print(f"report: {files.html}")
    if files.pdf:
        print(f"        {files.pdf} ({files.pdf_pages} pages)")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.preflight import check_media
    from sessions.session import load_session

    s = load_session(args.session, _overrides(args))
    media = check_media(s)  # opens every video (header and first frame) and reads the camera file
    if media.problems:
        _print_problems("bad session", media.problems)
        for w in s.warnings + media.notes:
            print(f"  warning: {w}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{s.yaml_path}: valid")
    print(f"  subject {s.subject.id}: {s.subject.height_m:g} m, {s.subject.mass_kg:g} kg, sex {s.subject.sex}")
    print(f"  cameras: {', '.join(c.id + (f' ({c.device})' if c.device else '') for c in s.cameras)}")
    for t in s.trials:
        print(f"  trial {t.name} [{t.kind}]: {len(t.videos)} videos" + (f", 2D keypoint files of {len(t.pose2d)} cameras" if t.pose2d else "")
              + (f", mocap {t.mocap.name}" if t.mocap else ""))
        for cam, v in media.videos.get(t.name, {}).items():
            print(f"    {cam}: {v.width}x{v.height}, {v.fps_nominal:.4g} fps, {v.frame_count_container} frames")
    for w in s.warnings + media.notes:
        print(f"  warning: {w}")
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    from pipeline.orchestrate import run_session
    from pipeline.batch import format_batch, run_batch, write_batch_summary

    root = Path(args.root)
    if not root.is_dir():
        print(f"{root}: folder not found", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.engine == "ray":
        from pipeline.batch_ray import EngineError, print_progress, run_batch_ray

        try:
            entries = run_batch_ray(root, args.address, args.from_stage, _overrides(args),
                                    show_progress=not args.no_progress, report=print_progress)
        except EngineError as exc:
            print(f"batch --engine ray: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    else:
        if args.address:
            print("batch: --address is for --engine ray", file=sys.stderr)
            return EXIT_BAD_INPUT
        entries = run_batch(root, run_session, force_from=args.from_stage, overrides=_overrides(args),
                            show_progress=False if args.no_progress else None)
    print(format_batch(entries))
    if not entries:
        return EXIT_BAD_INPUT
    write_batch_summary(root / "batch_summary.json", entries)
    print(f"batch summary: {root / 'batch_summary.json'}")
    from pipeline.report import write_batch_index

    print(f"batch overview: {write_batch_index(root, entries)}")
    return EXIT_OK if all(e.status == "ok" for e in entries) else EXIT_FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    from demo import copy_demo_session
    from pipeline.orchestrate import run_session

    dest = Path(args.dest).resolve()
    if args.fresh and dest.exists():
        shutil.rmtree(dest)
    copy_demo_session(dest)  # only files that differ; earlier outputs stay, so a re-run resumes
    print(f"demo session: {dest}")
    if not (dest / "calibration" / "cameras.yaml").is_file():
        from calibration.session_calibration import calibrate_session
        from sessions.session import load_session

        res = calibrate_session(load_session(dest))
        errs = ", ".join(f"{k} {v:.2f} px" for k, v in res.result.error_px.items())
        print(f"calibrated the cameras from the board ({errs}): {res.cameras_file}")
    result = run_session(dest, show_progress=False if args.no_progress else None)
    if result.report is not None:
        print(f"\nthe report: {result.report.html}" + (f"\n     (PDF): {result.report.pdf}" if result.report.pdf else ""))
    else:
        print(f"\nno report could be made (see {dest / 'output' / 'log.txt'}); try: python app.py report {dest}")
    return result.exit_code


def _board(spec: str, square_mm: float):
    from calibration.checkerboard import Board

    try:
        rows, cols = (int(x) for x in spec.lower().split("x"))
    except ValueError:
        raise ValueError(f"--board {spec}: expected ROWSxCOLS inner corners, e.g. 4x7") from None
    if square_mm <= 0:
        raise ValueError(f"--square-mm {square_mm}: give the square side in millimetres, e.g. 60")
    return Board(rows, cols, square_mm / 1000.0)


def cmd_calibrate_intrinsics(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from calibration.camera import save_cameras
    from calibration.intrinsics import PRESETS_PATH, intrinsics_from_folder, save_preset
    from sessions.settings import default_settings

    board = _board(args.board, args.square_mm)
    folder = Path(args.images)
    cfg = default_settings().calibration
    res = intrinsics_from_folder(folder, board, args.name or folder.name,
                                 replace(cfg, intrinsics_max_views=args.max_views or cfg.intrinsics_max_views))
    cam = res.camera
    print(f"camera {cam.name}: {cam.image_size[0]}x{cam.image_size[1]}, RMS {res.rms_px:.3f} px over {len(res.per_view_rms_px)} views")
    print(f"  fx {cam.K[0, 0]:.1f}  fy {cam.K[1, 1]:.1f}  cx {cam.K[0, 2]:.1f}  cy {cam.K[1, 2]:.1f}  dist {np.round(cam.dist, 4).tolist()}")
    for view, err in res.per_view_rms_px.items():
        print(f"  {view}: {err:.3f} px")
    for view, err in res.dropped.items():
        print(f"  dropped {view}: {err:.3f} px (outlier)")
    for name in res.not_found:
        print(f"  board not found in {name}")
    save_cameras(args.out, [cam], comment=f"intrinsics from {folder}")
    print(f"written {args.out}")
    if args.preset:
        path = Path(args.presets_file) if args.presets_file else PRESETS_PATH
        save_preset(path, args.preset, cam)
        print(f"preset {args.preset}@{cam.image_size[0]}x{cam.image_size[1]} saved in {path}")
    return EXIT_OK


def cmd_calibrate_extrinsics(args: argparse.Namespace) -> int:
    from calibration.session_calibration import calibrate_session
    from sessions.session import load_session

    session = load_session(args.session, _overrides(args))
    res = calibrate_session(session)
    for cam in res.result.cameras:
        print(f"camera {cam.name}: board error {res.result.error_px[cam.name]:.3f} px, "
              f"centre {np.round(cam.centre_m, 3).tolist()} m, intrinsics: {res.intrinsics_source[cam.name]}")
    for w in res.result.warnings:
        print(f"warning: {w}")
    print(f"written {res.cameras_file} (check images: {session.calibration_dir}/check_<camera>.png)")
    return EXIT_OK


def cmd_calibrate_import(args: argparse.Namespace) -> int:
    from calibration.camera import save_cameras
    from calibration.importers import import_cameras, write_pose2sim_toml

    cams = import_cameras(args.file)
    out = Path(args.out)
    if out.suffix.lower() == ".toml":
        write_pose2sim_toml(out, cams)
    else:
        save_cameras(out, cams, comment=f"imported from {Path(args.file).name}")
    for c in cams:
        print(f"camera {c.name}: {c.image_size[0]}x{c.image_size[1]}, f {c.K[0, 0]:.1f} px, centre {np.round(c.centre_m, 3).tolist()} m")
    print(f"written {out}")
    return EXIT_OK


def cmd_augmenter_import(args: argparse.Namespace) -> int:
    from models.augmenter import save_augmenters
    from models.keras_import import import_opencap_dir

    models = import_opencap_dir(args.dir)
    save_augmenters(args.out, models, meta={"source": f"OpenCap Keras augmenter {Path(args.dir).resolve().name}"})
    for m in models:
        print(f"{m.name}: {len(m.keypoints)} keypoints -> {len(m.markers)} markers, LSTM {m.hidden}")
    print(f"written {args.out}")
    return EXIT_OK


def cmd_augmenter_train(args: argparse.Namespace) -> int:
    from models.augmenter_data import DataSpec
    from models.augmenter_train import train_default
    from models.device import pick_device

    if args.members < 1:
        print(f"error: --members {args.members}: an ensemble has 1 member or more", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = DataSpec(subjects=args.subjects, trials_per_subject=args.trials, seed=args.seed)
    sources, replay = None, None
    if args.replay_subjects > 0:
        from bench.lab_sessions import S4, lab_training_data, training_trials
        from models.augmenter_replay import ReplaySpec
        from pipeline.scale import ik_marker_weights
        from sessions.settings import default_settings

        if not S4.is_dir():
            print(f"warning: {S4} not found: training on the motion library only, without recorded movement "
                  "(--replay-subjects 0 says so and silences this)", file=sys.stderr)
        else:
            available = training_trials()
            left_out = [t for t in args.leave_out.split(",") if t]
            unknown = sorted(set(left_out) - set(available))
            if unknown:
                print(f"error: --leave-out {','.join(unknown)}: not among the shared training trials "
                      f"({', '.join(available)})", file=sys.stderr)
                return EXIT_BAD_INPUT
            trials = [t for t in available if t not in left_out]
            print(f"solving our model on the lab's mocap of {len(trials)} trials (held out: the benchmark's"
                  + (f" and {', '.join(left_out)}" if left_out else "") + ") ...")
            with tempfile.TemporaryDirectory() as tmp:
                sources, shifts = lab_training_data(trials, tmp, ik_marker_weights(default_settings()))
            if args.detector_definitions:
                data.errors.definition_shift_m = shifts
            replay = ReplaySpec(subjects=args.replay_subjects, seed=args.seed, errors=data.errors)
    train_default(args.out, data, step_scale=args.step_scale, device=pick_device(args.device, "--device"), sources=sources,
                  replay=replay, members=args.members)
    print(f"written {args.out}; use it with --set augment.weights={args.out} (or as the default, models/weights/augmenter.pt)")
    from models.augmenter_validation import validation_path

    print(f"reports quote typical errors only for measured weights: python app.py bench accuracy --weights {args.out} "
          f"--validation {validation_path(Path(args.out))}")
    return EXIT_OK


def cmd_augmenter_combine(args: argparse.Namespace) -> int:
    from models.augmenter_train import combine_files

    if len(args.files) < 2:
        print("error: combine needs two augmenter files or more", file=sys.stderr)
        return EXIT_BAD_INPUT
    meta = combine_files(args.files, args.out)
    print(f"written {args.out}: {meta['source']}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from biomech.compare import CompareError, check_subject, compare_tables, write_comparison
    from biomech.mocap import reference_angles
    from biomech.mot import read_mot

    check_subject(args.height, args.mass)
    ours = read_mot(args.ours)
    ref_path = Path(args.reference)
    out = Path(args.out) if args.out else Path(args.ours).resolve().parent / f"compare_{ref_path.stem}"
    if ref_path.suffix.lower() == ".trc":
        if not (args.height and args.mass):
            print("error: a marker .trc reference needs --height M --mass KG (and the lab's static trial, "
                  "--static STATIC.trc), to scale the model", file=sys.stderr)
            return EXIT_BAD_INPUT
        if not args.static:
            print("warning: no --static: the model is scaled on the stillest 0.5 s of the trial itself", file=sys.stderr)
        print(f"solving the reference markers: scaling on {Path(args.static or ref_path).name}, IK on {ref_path.name} ...")
    try:
        reference = reference_angles(ref_path, args.static, args.height, args.mass, out / "mocap", model=args.model,
                                     marker_set_xml=args.marker_set, scale_setup=args.scale_setup, ik_setup=args.ik_setup)
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for w in reference.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if reference.about["kind"] == "markers":
        a = reference.about
        print(f"  {a['marker_words']}: {a['ik_frames']} frames, marker RMS mean {a['ik_marker_rms_mean_mm']} mm -> {a['mot']}")
    ref = reference.table
    cmp = compare_tables(ours, ref, max_shift_s=args.max_shift, coordinates=args.coordinates)
    paths = write_comparison(cmp, out, plot=not args.no_plot, about=reference.about)
    for w in cmp.warnings:
        print(f"warning: {w}", file=sys.stderr)
    s = cmp.summary()
    print(f"time shift {s['time_shift_s'] * 1000:.0f} ms (mean r {s['shift_mean_r']}), {s['frames_compared']} frames compared")
    print(f"{'coordinate':20s} {'RMSE':>7s} {'MAE':>7s} {'max':>7s} {'offset':>7s} {'r':>6s} {'ROM diff':>8s}")
    for row in s["coordinates"]:
        print(f"{row['coordinate']:20s} {row['rmse']:7.2f} {row['mae']:7.2f} {row['max_error']:7.2f} "
              f"{row['offset']:7.2f} {row['pearson_r']:6.3f} {row['rom_diff']:8.1f}  {row['unit']}")
    if s["only_in_ours"] or s["only_in_reference"]:
        print(f"not compared (only one side has them): {', '.join(s['only_in_ours'] + s['only_in_reference'])}")
    print(f"mean MAE {s['mean_mae_deg']} deg; written " + ", ".join(str(p) for p in paths.values()))
    return EXIT_OK


def cmd_model_build(args: argparse.Namespace) -> int:
    from biomech.model_builder import write_model

    paths = write_model(args.out) if args.out else write_model()
    for kind, path in paths.items():
        print(f"{kind:6s} {path}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.accuracy import main as accuracy

    return accuracy(args.bench_args)


def cmd_stages(args: argparse.Namespace) -> int:
    from pipeline.stages import STAGES

    for s in STAGES.values():
        state = "available" if s.run else f"not available yet ({s.pending})"
        needs = f" <- {', '.join(s.needs)}" if s.needs else ""
        print(f"{s.name:12s} {state}{needs}")
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from sessions.config import apply_overrides, load_defaults

    if args.session:
        from sessions.session import load_session

        cfg = load_session(args.session, _overrides(args)).config
    else:
        cfg = apply_overrides(load_defaults(), [("--set", _overrides(args))])
    print(yaml.safe_dump(cfg, sort_keys=False), end="")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    prog = "markerless" if Path(sys.argv[0]).name == "markerless" else "app.py"  # the entry point or the script
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_set(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config.yaml setting, e.g. --set frames.min_fps=25 (repeatable)")

    def with_progress(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--no-progress", action="store_true", help="no progress bars")

    r = sub.add_parser("run", help="run the pipeline on one session folder")
    r.add_argument("session", help="session folder (holds session.yaml)")
    r.add_argument("--trial", action="append", help="only this trial (repeatable); default: all")
    r.add_argument("--from", dest="from_stage", metavar="STAGE", help="re-run this stage and every later one even if up to date")
    r.add_argument("--wait", action="store_true", help="if another run is using this session, wait for it instead of refusing")
    with_set(r)
    with_progress(r)
    r.set_defaults(func=cmd_run)

    pp = sub.add_parser("people", help="list the people found in each camera (with a picture) and how to pick the subject")
    pp.add_argument("session", help="session folder (holds session.yaml)")
    pp.add_argument("--trial", action="append", help="only this trial (repeatable); default: all")
    with_set(pp)
    with_progress(pp)
    pp.set_defaults(func=cmd_people)

    b = sub.add_parser("batch", help="run every session found under a folder, with a summary")
    b.add_argument("root", help="folder searched recursively for session.yaml files")
    b.add_argument("--from", dest="from_stage", metavar="STAGE", help="re-run this stage and every later one")
    b.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: sessions one after another in this process (default); ray: trials and cameras as "
                        "parallel tasks on a Ray cluster (README: Batches on Ray)")
    b.add_argument("--address", metavar="ADDRESS", help="with --engine ray: an existing cluster (e.g. 10.0.0.5:6379, or "
                   "auto); without it a local cluster is started on this machine and stopped at the end")
    with_set(b)
    with_progress(b)
    b.set_defaults(func=cmd_batch)

    d = sub.add_parser("demo", help="copy the embedded demo session and run the pipeline on it")
    d.add_argument("--dest", default=str(ROOT / "demo-run"), help="where the demo session is copied (default: demo-run/)")
    d.add_argument("--fresh", action="store_true", help="delete earlier demo outputs first")
    with_progress(d)
    d.set_defaults(func=cmd_demo)

    rp = sub.add_parser("report", help="re-make output/report.html and report.pdf from a session's existing outputs")
    rp.add_argument("session", help="session folder that has been run")
    rp.set_defaults(func=cmd_report)

    v = sub.add_parser("validate", help="check a session folder and report every problem at once")
    v.add_argument("session")
    with_set(v)
    v.set_defaults(func=cmd_validate)

    cal = sub.add_parser("calibrate", help="camera calibration: intrinsics, extrinsics, import/export")
    calsub = cal.add_subparsers(dest="what", required=True, metavar="WHAT")
    ci = calsub.add_parser("intrinsics", help="intrinsics of one camera from checkerboard images or a video")
    ci.add_argument("--images", required=True, help="folder of checkerboard images (or holding one video)")
    ci.add_argument("--board", required=True, help="inner corners ROWSxCOLS, e.g. 4x7")
    ci.add_argument("--square-mm", type=float, required=True, help="square side in millimetres")
    ci.add_argument("--out", required=True, help="camera file to write (.yaml)")
    ci.add_argument("--name", help="camera name (default: the folder name)")
    ci.add_argument("--max-views", type=int, help="most views used (default: calibration.intrinsics_max_views in config.yaml)")
    ci.add_argument("--preset", metavar="DEVICE", help="also save as the preset for this device model")
    ci.add_argument("--presets-file", help="preset table to write (default: calibration/device_presets.yaml)")
    ci.set_defaults(func=cmd_calibrate_intrinsics)
    ce = calsub.add_parser("extrinsics", help="all cameras of a session from the board in calibration/extrinsics/")
    ce.add_argument("session")
    with_set(ce)
    ce.set_defaults(func=cmd_calibrate_extrinsics)
    cm = calsub.add_parser("import", help="convert Qualisys .qca.txt, Pose2Sim .toml, OpenCap .pickle to ours (or .toml)")
    cm.add_argument("file")
    cm.add_argument("--out", required=True, help="output: .yaml (ours) or .toml (Pose2Sim)")
    cm.set_defaults(func=cmd_calibrate_import)

    aug = sub.add_parser("augmenter", help="marker augmenter tools")
    augsub = aug.add_subparsers(dest="what", required=True, metavar="WHAT")
    ai = augsub.add_parser("import-opencap", help="convert OpenCap's Keras augmenter (model.json + weights.h5) to our .pt")
    ai.add_argument("dir", help="a folder with model.json, or OpenCap's augmenter folder with *_lower and *_upper")
    ai.add_argument("--out", required=True, help="output file (.pt)")
    ai.set_defaults(func=cmd_augmenter_import)
    at = augsub.add_parser("train", help="train our augmenter on synthetic data from our model (reproduces the default weights)")
    at.add_argument("--out", default="models/weights/augmenter.pt", help="output file (.pt); a .json report and a training plot go next to it")
    at.add_argument("--subjects", type=int, default=160, help="synthetic subjects in the training set")
    at.add_argument("--trials", type=int, default=8, help="trials (movements) per subject")
    at.add_argument("--replay-subjects", type=int, default=80,
                    help="synthetic bodies replaying the shared lab trials' recorded movement (0: motion library only)")
    at.add_argument("--leave-out", default="",
                    help="shared trials (comma-separated) kept out of the replayed movement besides the benchmark's "
                         "held-out ones, e.g. the tuning trials, so that settings can be tuned on movement the "
                         "augmenter has not seen")
    at.add_argument("--detector-definitions", action="store_true",
                    help="place the training keypoints where OpenCap's detector definitions put them (measured on the "
                         "shared lab subject) instead of at our joint centres; not the default (see README)")
    at.add_argument("--seed", type=int, default=0)
    at.add_argument("--step-scale", type=float, default=1.0, help="multiply the training steps (e.g. 0.1 for a quick try)")
    at.add_argument("--members", type=int, default=1,
                    help="train an ensemble of this many members (seeds SEED, SEED+1, ...) whose markers are averaged")
    at.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    at.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    at.set_defaults(func=cmd_augmenter_train)
    ac = augsub.add_parser("combine", help="one ensemble file from augmenter files trained alike (e.g. other seeds): "
                                           "their markers are averaged")
    ac.add_argument("files", nargs="+", help="augmenter files (.pt) with the same models")
    ac.add_argument("--out", required=True, help="output file (.pt); a .json report goes next to it")
    ac.set_defaults(func=cmd_augmenter_combine)

    cmp = sub.add_parser("compare", help="compare our joint angles (.mot) with a reference .mot or a mocap .trc")
    cmp.add_argument("ours", help="our .mot (e.g. <session>/output/<trial>/ik/<trial>.mot)")
    cmp.add_argument("reference", help="reference .mot, or a .trc of a lab's mocap markers or of our 20 video keypoints "
                     "(then give --static, --height, --mass)")
    cmp.add_argument("--out", help="output folder (default: next to OURS, compare_<reference>)")
    cmp.add_argument("--max-shift", type=float, default=2.0, help="largest time shift searched, seconds (0: none)")
    cmp.add_argument("--coordinates", nargs="+", help="compare only these coordinates")
    cmp.add_argument("--static", help="mocap static trial .trc, to scale the model for a .trc reference")
    cmp.add_argument("--height", type=float, help="subject height (m), for a .trc reference")
    cmp.add_argument("--mass", type=float, help="subject mass (kg), for a .trc reference")
    cmp.add_argument("--model", help="model for the mocap reference (default: ours, with its mocap marker set)")
    cmp.add_argument("--marker-set", help="marker set .xml to put on --model for the mocap markers")
    cmp.add_argument("--scale-setup", help="OpenSim ScaleTool setup .xml for --model")
    cmp.add_argument("--ik-setup", help="OpenSim IK setup .xml whose marker weights to use")
    cmp.add_argument("--no-plot", action="store_true", help="skip the overlay plot")
    cmp.set_defaults(func=cmd_compare)

    mdl = sub.add_parser("model", help="our OpenSim model")
    mdlsub = mdl.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    mb = mdlsub.add_parser("build", help="regenerate biomech/opensim_models/*.osim and marker sets from the anthropometry")
    mb.add_argument("--out", help="folder (default: biomech/opensim_models)")
    mb.set_defaults(func=cmd_model_build)

    bn = sub.add_parser("bench", help="benchmarks: accuracy (end-to-end joint angles against motion capture)")
    bnsub = bn.add_subparsers(dest="bench_name", required=True, metavar="NAME")
    bnsub.add_parser("accuracy", help="simulated phone sessions of the shared lab trials vs their mocap "
                          "(options: --quick, --trials, --cameras, --levels, --seeds, --keep, --out)", add_help=False)
    # listed here for --help only: main() hands `bench accuracy ...` to the benchmark's own parser

    s = sub.add_parser("stages", help="list the pipeline stages and which are available")
    s.set_defaults(func=cmd_stages)

    c = sub.add_parser("config", help="print the effective configuration (defaults + session + --set)")
    c.add_argument("session", nargs="?", help="session folder whose overrides to apply")
    with_set(c)
    c.set_defaults(func=cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    from calibration.intrinsics import CalibrationError
    from models.augmenter import AugmenterError
    from pipeline.lock import RunRefused
    from core.video import VideoError
    from sessions.config import ConfigError
    from sessions.session import SessionError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["bench", "accuracy"]:  # the benchmark parses its own options (and --help)
        return cmd_bench(argparse.Namespace(bench_args=argv[2:]))
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SessionError as exc:
        _print_problems("bad session", exc.problems)
        return EXIT_BAD_INPUT
    except ConfigError as exc:
        _print_problems("bad configuration", exc.problems)
        return EXIT_BAD_INPUT
    except AugmenterError as exc:
        print(f"augmenter: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CalibrationError as exc:
        print(f"calibration failed: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunRefused as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except VideoError as exc:  # e.g. an unreadable calibration video
        print(f"bad video: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
