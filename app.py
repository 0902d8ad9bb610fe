#!/usr/bin/env python3
"""Command line of the markerless-biomechanics pipeline. Thin: parses, calls packages, prints.

Exit codes: 0 ok, 1 some trial (or session) failed, 2 bad input.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEMO_SESSION = ROOT / "demo" / "session"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _print_problems(title: str, problems: list[str]) -> None:
    print(f"{title}:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)


def _overrides(args: argparse.Namespace):
    from sessions.config import parse_set_args

    return parse_set_args(args.set or [])


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.orchestrate import run_session

    result = run_session(args.session, args.trial, args.from_stage, _overrides(args), False if args.no_progress else None)
    return result.exit_code


def cmd_validate(args: argparse.Namespace) -> int:
    from sessions.session import load_session

    s = load_session(args.session, _overrides(args))
    print(f"{s.yaml_path}: valid")
    print(f"  subject {s.subject.id}: {s.subject.height_m:g} m, {s.subject.mass_kg:g} kg, sex {s.subject.sex}")
    print(f"  cameras: {', '.join(c.id + (f' ({c.device})' if c.device else '') for c in s.cameras)}")
    for t in s.trials:
        print(f"  trial {t.name} [{t.kind}]: {len(t.videos)} videos" + (f", mocap {t.mocap.name}" if t.mocap else ""))
    for w in s.warnings:
        print(f"  warning: {w}")
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    from pipeline.orchestrate import run_session
    from sessions.batch import format_batch, run_batch, write_batch_summary

    root = Path(args.root)
    if not root.is_dir():
        print(f"{root}: folder not found", file=sys.stderr)
        return EXIT_BAD_INPUT
    entries = run_batch(root, run_session, force_from=args.from_stage, overrides=_overrides(args),
                        show_progress=False if args.no_progress else None)
    print(format_batch(entries))
    if not entries:
        return EXIT_BAD_INPUT
    write_batch_summary(root / "batch_summary.json", entries)
    print(f"batch summary: {root / 'batch_summary.json'}")
    return EXIT_OK if all(e.status == "ok" for e in entries) else EXIT_FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.orchestrate import run_session

    dest = Path(args.dest).resolve()
    if args.fresh and dest.exists():
        shutil.rmtree(dest)
    # Copy the shipped session (only files that differ), keep earlier outputs so a re-run resumes.
    shutil.copytree(DEMO_SESSION, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("output"),
                    copy_function=_copy_if_changed)
    print(f"demo session: {dest}")
    result = run_session(dest, show_progress=False if args.no_progress else None)
    return result.exit_code


def _copy_if_changed(src: str, dst: str) -> None:
    s, d = Path(src), Path(dst)
    if d.exists() and d.stat().st_size == s.stat().st_size and d.read_bytes() == s.read_bytes():
        return
    shutil.copy2(s, d)


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
    p = argparse.ArgumentParser(prog="app.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    with_set(r)
    with_progress(r)
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("batch", help="run every session found under a folder, with a summary")
    b.add_argument("root", help="folder searched recursively for session.yaml files")
    b.add_argument("--from", dest="from_stage", metavar="STAGE", help="re-run this stage and every later one")
    with_set(b)
    with_progress(b)
    b.set_defaults(func=cmd_batch)

    d = sub.add_parser("demo", help="copy the embedded demo session and run the pipeline on it")
    d.add_argument("--dest", default=str(ROOT / "demo-run"), help="where the demo session is copied (default: demo-run/)")
    d.add_argument("--fresh", action="store_true", help="delete earlier demo outputs first")
    with_progress(d)
    d.set_defaults(func=cmd_demo)

    v = sub.add_parser("validate", help="check a session folder and report every problem at once")
    v.add_argument("session")
    with_set(v)
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("stages", help="list the pipeline stages and which are available")
    s.set_defaults(func=cmd_stages)

    c = sub.add_parser("config", help="print the effective configuration (defaults + session + --set)")
    c.add_argument("session", nargs="?", help="session folder whose overrides to apply")
    with_set(c)
    c.set_defaults(func=cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from sessions.config import ConfigError
    from sessions.session import SessionError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SessionError as exc:
        _print_problems("bad session", exc.problems)
        return EXIT_BAD_INPUT
    except ConfigError as exc:
        _print_problems("bad configuration", exc.problems)
        return EXIT_BAD_INPUT
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
