"""Batch runs on Ray: every session under a folder, split into tasks that run in parallel on a local or
an existing Ray cluster; the outputs, batch summary and index page are those of the local engine.

How a session is split (``plan_session``, pure; the settings are config.yaml's ``batch`` section):

- ``detect``: the 2D detection of one camera of one trial, into the detection cache the keypoints stage
  reads (pipeline/keypoints_detect.py ``prefetch_detections``), so a trial's cameras are detected in parallel;
- ``front``: a trial's stages up to the last of ``batch.gpu_stages`` (frames ... augment), after its
  ``detect`` tasks;
- ``back``: the trial's later stages (scale, ik, analyse, compare, report), after its ``front`` and, for
  a dynamic trial, after the static trial's ``back`` (the scaled model);
- ``finish``: after all of them, the consistency check, verdicts, summary.json and the report
  (pipeline/orchestrate.py ``finish_session``).

Trials of a session therefore run in parallel (dynamic trials' videos do not wait for the static trial),
``detect`` and ``front`` tasks ask Ray for a GPU share where the cluster has GPUs, and the rest runs on
CPUs. Each task reads and writes the session's own output folder (nodes must share the storage, at the
same path) and runs the stages through the stage runner, so the cache keeps its meaning: a re-run skips
what is current. A task whose worker or node dies is retried (``batch.max_retries``) and resumes; the
runner's scratch folders mean a killed task never leaves half-written outputs. A stage that fails is the
trial's outcome, as with the local engine; a task that raises (bad input, a session held by another
run) makes that session's row, and the other sessions go on.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipeline.runner import check_force_from
from pipeline.stages import stages_from_config
from pipeline.batch import BatchEntry, entry_from_error, entry_from_run, find_sessions
from sessions.config import ConfigError, apply_overrides, load_defaults
from sessions.session import Session, SessionError, load_session
from sessions.settings import BatchSettings

ROOT = Path(__file__).resolve().parent.parent  # the product's folder: put on the workers' PYTHONPATH
DETECT, FRONT, BACK, FINISH = "detect", "front", "back", "finish"
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a local Ray cluster on loopback only


class EngineError(RuntimeError):
    """The Ray engine cannot run (Ray not installed, no cluster at the address)."""


@dataclass(frozen=True)
class Part:
    """One task of a session's run. ``after``: keys of the parts whose results it needs."""

    key: str
    kind: str  # detect / front / back / finish
    trial: str | None = None
    camera: str | None = None
    stages: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    gpu: bool = False  # asks for a GPU share where the cluster has GPUs


@dataclass(frozen=True)
class PartRefused:
    """A part that could not run (bad input, or the session held by another run): the session's row."""

    status: str  # 'invalid' / 'refused'
    detail: str


def plan_session(session: Session, gpu_stages: tuple[str, ...]) -> list[Part]:
    """The tasks of one session's run, in an order where every part comes after what it needs."""
    stages = stages_from_config(session.settings.run.stages)
    names = [s.name for s in stages]
    unknown = [n for n in gpu_stages if n not in names]
    if unknown:
        raise ConfigError([f"batch.gpu_stages: {unknown} not in run.stages {names}"])
    cut = max((names.index(n) + 1 for n in gpu_stages), default=0)
    front, back = tuple(names[:cut]), tuple(names[cut:])
    keypoints = next((s for s in stages[:cut] if s.name == "keypoints"), None)
    static = next((t for t in session.trials if t.kind == "static"), None)
    parts: list[Part] = []
    ordered = sorted(session.trials, key=lambda t: t.kind != "static")
    for trial in ordered:
        detects: list[str] = []
        if keypoints is not None and trial.kind in keypoints.kinds and session.settings.keypoints.backend != "json":
            for cam in trial.videos:
                parts.append(Part(f"{trial.name}/{DETECT}/{cam}", DETECT, trial.name, cam, gpu=True))
                detects.append(parts[-1].key)
        if front:
            parts.append(Part(f"{trial.name}/{FRONT}", FRONT, trial.name, stages=front, after=tuple(detects), gpu=True))
        if back:
            after = [f"{trial.name}/{FRONT}"] if front else []
            if static is not None and trial is not static:
                after.append(f"{static.name}/{BACK}")
            parts.append(Part(f"{trial.name}/{BACK}", BACK, trial.name, stages=back, after=tuple(after)))
    stage_parts = tuple(p.key for p in parts if p.kind in (FRONT, BACK))
    parts.append(Part(FINISH, FINISH, after=stage_parts))
    return parts


# --- what the tasks run (on the workers) -------------------------------------------------------------

def _where() -> str:
    import ray

    gpus = ray.get_gpu_ids()
    return f"on {socket.gethostname()} (pid {os.getpid()}{', GPU ' + ','.join(map(str, gpus)) if gpus else ', no GPU'})"


def _refusal(exc: Exception) -> PartRefused:
    entry = entry_from_error(Path("."), exc)
    return PartRefused(entry.status, entry.detail)


def _first_refusal(results: tuple[Any, ...]) -> PartRefused | None:
    return next((r for r in results if isinstance(r, PartRefused)), None)


def _task_detect(root: str, trial: str, cam: str, overrides: dict[str, Any] | None, progress: Any) -> Any:
    from pipeline.keypoints_detect import prefetch_detections
    from pipeline.lock import RunRefused, check_writable, session_lock
    from pipeline.logs import session_logging

    progress.started.remote(root)
    try:
        session = load_session(root, overrides)
        check_writable(session.output_dir)
        with session_lock(session.output_dir, shared=True), \
                session_logging(session.output_dir / "log.txt", "error") as log:
            log.info("%s/%s: 2D detection %s", trial, cam, _where())
            what = prefetch_detections(session, trial, cam)
            log.info("%s/%s: 2D detection: %s", trial, cam, what)
            return what
    except (SessionError, ConfigError, RunRefused) as exc:
        return _refusal(exc)


def _task_stages(root: str, trial: str, stages: tuple[str, ...], force_from: str | None, overrides: dict[str, Any] | None,
                 first: bool, progress: Any, *results: Any) -> Any:
    from pipeline.lock import RunRefused
    from pipeline.orchestrate import run_part

    progress.started.remote(root)
    refused = _first_refusal(results)
    if refused is not None:
        return refused
    known = [o for r in results if isinstance(r, list) for o in r]  # detect results are strings
    try:
        return run_part(root, trial, list(stages), known, force_from, overrides, first=first, note=_where())
    except (SessionError, ConfigError, RunRefused) as exc:
        return _refusal(exc)


def _task_finish(root: str, overrides: dict[str, Any] | None, progress: Any, *results: Any) -> BatchEntry:
    from pipeline.lock import RunRefused
    from pipeline.orchestrate import finish_session

    refused = _first_refusal(results)
    if refused is not None:
        entry = BatchEntry(Path(root), refused.status, refused.detail)
    else:
        outcomes = [o for r in results for o in r]  # each stage part's own outcomes
        try:
            entry = entry_from_run(Path(root), finish_session(root, outcomes, overrides))
        except (SessionError, ConfigError, RunRefused) as exc:
            entry = entry_from_error(Path(root), exc)
    progress.finished.remote(root, entry.status)
    return entry


class BatchProgress:
    """A Ray actor: which sessions have started and how the finished ones ended, for the live line."""

    def __init__(self) -> None:
        self._started: set[str] = set()
        self._finished: dict[str, str] = {}

    def started(self, root: str) -> None:
        self._started.add(root)

    def finished(self, root: str, status: str) -> None:
        self._finished[root] = status

    def snapshot(self) -> tuple[set[str], dict[str, str]]:
        return set(self._started), dict(self._finished)


# --- the driver ----------------------------------------------------------------------------------------

def _import_ray():
    try:
        import ray
    except ImportError:
        raise EngineError("the Ray engine needs Ray, an optional part of the install: run `make venv-ray` "
                          "(or .venv/bin/pip install -r requirements-ray.txt -c constraints.txt), or use --engine local") from None
    return ray


def connect(address: str | None, local_cpus: int) -> Callable[[], None]:
    """Start a local Ray cluster on this machine's loopback (no ``address``) or join the one at
    ``address``; returns the function that stops or leaves it."""
    if not address:
        # Ray makes even a local cluster listen on the machine's network address (it turns 127.0.0.1
        # into that address) unless, read when ray is imported, clusters are switched off: then every
        # server it starts listens on 127.0.0.1 only.
        os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
    ray = _import_ray()
    if ray.is_initialized():  # called from a program already connected to a cluster: use it, leave it
        return lambda: None
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}}
    try:
        if address:
            ray.init(address=address, runtime_env=env, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(num_cpus=local_cpus or None, include_dashboard=False, _node_ip_address="127.0.0.1",
                     runtime_env=env, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise EngineError(f"cannot start or join {where}: {exc}. Check the address (ray status on the head node "
                          "prints it), or run without --address to start a local one") from None
    return ray.shutdown


def _submit(ray: Any, session: Session, parts: list[Part], force_from: str | None, overrides: dict[str, Any] | None,
            cfg: BatchSettings, progress: Any) -> Any:
    """Submit a session's parts; returns the finish task's reference."""
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    root = str(session.root)
    refs: dict[str, Any] = {}
    common = {"num_cpus": cfg.cpus_per_task, "max_retries": cfg.max_retries}
    first = True
    for part in parts:
        opts = {**common, "num_gpus": cfg.gpu_per_task if part.gpu and has_gpu else 0}
        after = [refs[k] for k in part.after]
        if part.kind == DETECT:
            task = ray.remote(_task_detect).options(name=f"detect {session.root.name}/{part.trial}/{part.camera}", **opts)
            refs[part.key] = task.remote(root, part.trial, part.camera, overrides, progress)
        elif part.kind in (FRONT, BACK):
            task = ray.remote(_task_stages).options(name=f"{part.kind} {session.root.name}/{part.trial}", **opts)
            refs[part.key] = task.remote(root, part.trial, part.stages, force_from, overrides, first, progress, *after)
            first = False
        else:
            task = ray.remote(_task_finish).options(name=f"finish {session.root.name}", **common)
            refs[part.key] = task.remote(root, overrides, progress, *after)
    return refs[FINISH]


def run_batch_ray(root: str | Path, address: str | None = None, force_from: str | None = None,
                  overrides: dict[str, Any] | None = None, show_progress: bool = True,
                  report: Callable[[str], None] | None = None) -> list[BatchEntry]:
    """Run every session under ``root`` on Ray (see the module doc); rows in find_sessions' order."""
    cfg = BatchSettings.from_dict(apply_overrides(load_defaults(), [("--set", overrides)])["batch"], "batch")
    paths = find_sessions(root)
    entries: dict[Path, BatchEntry] = {}
    plans: dict[Path, tuple[Session, list[Part]]] = {}
    for path in paths:  # bad input is found here, before any task starts
        try:
            session = load_session(path, overrides)
            check_force_from(stages_from_config(session.settings.run.stages), force_from)
            plans[path] = (session, plan_session(session, cfg.gpu_stages))
        except Exception as exc:
            entries[path] = entry_from_error(path, exc)
    if plans:
        stop = connect(address, cfg.local_cpus)
        try:
            ray = _import_ray()
            # On the driver's node, so a worker node that leaves does not take the live line with it.
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
            progress = ray.remote(BatchProgress).options(num_cpus=0, scheduling_strategy=here, max_restarts=-1).remote()
            pending = {_submit(ray, s, parts, force_from, overrides, cfg, progress): path for path, (s, parts) in plans.items()}
            _collect(ray, pending, entries, progress, len(paths), report if show_progress else None)
        finally:
            stop()
    return [entries[p] for p in paths]


def _collect(ray: Any, pending: dict[Any, Path], entries: dict[Path, BatchEntry], progress: Any, total: int,
             report: Callable[[str], None] | None) -> None:
    """Wait for every session's finish task, filling ``entries``; ``report`` gets the live line."""
    last = ""
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            path = pending.pop(ref)
            try:
                entries[path] = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # a part crashed: the session's row says how
                cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
                entries[path] = entry_from_error(path, cause)
            except ray.exceptions.RayError as exc:  # a worker or node died more often than batch.max_retries
                entries[path] = BatchEntry(path, "crashed", f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        if report is not None:
            try:
                started, finished = ray.get(progress.snapshot.remote(), timeout=10)
            except ray.exceptions.RayError:  # the live line is a convenience: never stop the batch for it
                continue
            failed = sum(e.status != "ok" for e in entries.values())
            done = len(entries) - failed
            running = len(started - set(finished)) if pending else 0
            line = (f"batch: {done} done, {failed} failed or refused, {running} running, "
                    f"{max(0, total - done - failed - running)} waiting (of {total} sessions)")
            if line != last:
                report(line)
                last = line


def print_progress(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)
