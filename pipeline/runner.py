"""The stage runner: runs named stages per trial, caches their outputs, isolates failures.

Each stage writes into its own folder ``output/<trial>/<stage>/`` together with a manifest
(``_stage.json``) that records the fingerprint of everything that produced it: the stage's code
version, its config sections, its parameters, the digests of the session files it reads and the
output digests of the earlier stages it needs. A stage whose fingerprint is unchanged and whose
outputs are intact is skipped; otherwise it runs into a scratch folder that replaces the old one
only on success, so a crash never leaves half-written outputs behind.
"""
from __future__ import annotations

import json
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from tqdm import tqdm

from pipeline.fingerprint import DigestCache, digest_json
from pipeline.logs import get_logger
from sessions.config import section_digest
from sessions.session import TRIAL_KINDS, Session, Trial

MANIFEST = "_stage.json"
T = TypeVar("T")

# Outcome statuses, in the words the summary table prints.
DONE, UP_TO_DATE, FAILED, BLOCKED, UNAVAILABLE, NOT_APPLICABLE = (
    "done", "up to date", "FAILED", "blocked", "not available yet", "n/a",
)


class StageInputError(RuntimeError):
    """A stage found its inputs unusable; the message says which file and what to do."""


@dataclass
class StageContext:
    """What a stage function gets: the session, the trial, the settings and where to write."""

    session: Session
    trial: Trial
    config: dict[str, Any]
    out_dir: Path  # scratch folder; becomes output/<trial>/<stage>/ on success
    show_progress: bool = True
    summary: dict[str, Any] = field(default_factory=dict)  # a stage's key numbers, kept in its manifest

    @property
    def log(self):
        return get_logger()

    def stage_dir(self, stage: str, trial: str | None = None) -> Path:
        """Final output folder of an earlier stage (of this trial unless ``trial`` is given)."""
        return self.session.output_dir / (trial or self.trial.name) / stage

    def progress(self, items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
        label = f"{self.trial.name}/{desc}" if desc else self.trial.name
        return iter(tqdm(items, total=total, desc=label, disable=not self.show_progress, leave=False, unit="fr"))


@dataclass(frozen=True)
class Stage:
    """A named pipeline step.

    run: writes its outputs into ``ctx.out_dir``; ``None`` while the stage is not built yet.
    needs: earlier stages of the same trial whose outputs it reads.
    config_sections: sections of config.yaml its outputs depend on.
    inputs: session files it reads (videos, mocap, calibration), hashed for the fingerprint.
    params: other values its outputs depend on (subject height, ...), part of the fingerprint.
    version: bump when a code change alters the stage's outputs.
    kinds: trial kinds it applies to.
    pending: for a stage not built yet, what will deliver it.
    unavailable: for a built stage, what it still waits for under the given config (None: ready).
    """

    name: str
    run: Callable[[StageContext], None] | None
    needs: tuple[str, ...] = ()
    config_sections: tuple[str, ...] = ()
    inputs: Callable[[StageContext], list[Path]] = lambda ctx: []
    params: Callable[[StageContext], dict[str, Any]] = lambda ctx: {}
    version: str = "1"
    kinds: tuple[str, ...] = TRIAL_KINDS
    pending: str = ""
    # For a built stage that still lacks something the project will ship (e.g. default weights):
    # config -> a "not available yet" note, or None when it can run.
    unavailable: Callable[[dict[str, Any]], str | None] | None = None


@dataclass
class Outcome:
    trial: str
    stage: str
    status: str
    seconds: float = 0.0
    message: str = ""


def read_manifest(stage_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((stage_dir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _outputs(folder: Path, digests: DigestCache) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): digests.digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _outputs_intact(folder: Path, manifest: dict[str, Any], digests: DigestCache) -> bool:
    try:
        return _outputs(folder, digests) == manifest.get("outputs")
    except OSError:
        return False


def check_stage_order(stages: list[Stage]) -> None:
    """Every stage's needs must come earlier in the list."""
    seen: set[str] = set()
    for st in stages:
        missing = [n for n in st.needs if n not in seen]
        if missing:
            raise ValueError(f"stage {st.name!r} needs {missing}, which must come before it in run.stages")
        seen.add(st.name)


class Runner:
    """Runs ``stages`` over a session's trials; see the module docstring."""

    def __init__(self, session: Session, stages: list[Stage], show_progress: bool | None = None):
        check_stage_order(stages)
        self.session = session
        self.stages = stages
        self.show_progress = session.config["run"]["progress"] if show_progress is None else show_progress
        self.digests = DigestCache(session.output_dir / ".cache" / "digests.json")
        self.log = get_logger()

    def fingerprint(self, stage: Stage, ctx: StageContext) -> tuple[str, dict[str, Any]]:
        inputs = {}
        for p in stage.inputs(ctx):
            p = Path(p)
            if not p.is_file():
                raise StageInputError(f"{p}: input of stage {stage.name!r} not found")
            inputs[str(p)] = self.digests.digest(p)
        upstream = {}
        for need in stage.needs:
            m = read_manifest(ctx.stage_dir(need))
            upstream[need] = digest_json(m["outputs"]) if m else None
        parts = {
            "stage": stage.name,
            "version": stage.version,
            "config": section_digest(ctx.config, stage.config_sections),
            "params": stage.params(ctx),
            "inputs": inputs,
            "upstream": upstream,
        }
        return digest_json(parts), parts

    def run_trial(self, trial: Trial, force_from: str | None = None) -> list[Outcome]:
        outcomes: list[Outcome] = []
        status: dict[str, str] = {}
        forcing = False
        for stage in self.stages:
            forcing = forcing or stage.name == force_from
            outcome = self._run_stage(stage, trial, status, forcing)
            status[stage.name] = outcome.status
            outcomes.append(outcome)
        return outcomes

    def _run_stage(self, stage: Stage, trial: Trial, status: dict[str, str], force: bool) -> Outcome:
        name, tname = stage.name, trial.name
        if trial.kind not in stage.kinds:
            return Outcome(tname, name, NOT_APPLICABLE, message=f"only for {'/'.join(stage.kinds)} trials")
        waiting = [n for n in stage.needs if status.get(n) not in (DONE, UP_TO_DATE)]
        if waiting:
            msg = f"waits for {', '.join(waiting)}"
            self.log.debug("%s/%s: blocked, %s", tname, name, msg)
            return Outcome(tname, name, BLOCKED, message=msg)
        pending = stage.pending if stage.run is None else (stage.unavailable(self.session.config) if stage.unavailable else None)
        if stage.run is None or pending:
            self.log.info("%s/%s: not available yet (%s)", tname, name, pending or "not built")
            return Outcome(tname, name, UNAVAILABLE, message=pending or "")
        final = self.session.output_dir / tname / name
        scratch = self.session.output_dir / tname / f".{name}.partial"
        ctx = StageContext(self.session, trial, self.session.config, scratch, self.show_progress)
        started = time.perf_counter()
        try:
            fp, parts = self.fingerprint(stage, ctx)
            manifest = read_manifest(final)
            if not force and manifest and manifest.get("fingerprint") == fp and _outputs_intact(final, manifest, self.digests):
                self.log.info("%s/%s: up to date", tname, name)
                return Outcome(tname, name, UP_TO_DATE, message=manifest.get("message", ""))
            if scratch.exists():
                shutil.rmtree(scratch)
            scratch.mkdir(parents=True)
            self.log.info("%s/%s: running", tname, name)
            stage.run(ctx)
            seconds = time.perf_counter() - started
            message = str(ctx.summary.get("message", ""))
            record = {
                "stage": name,
                "trial": tname,
                "fingerprint": fp,
                "made_from": parts,
                "outputs": _outputs(scratch, self.digests),
                "summary": ctx.summary,
                "message": message,
                "seconds": round(seconds, 3),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            (scratch / MANIFEST).write_text(json.dumps(record, indent=2, default=str))
            if final.exists():
                shutil.rmtree(final)
            scratch.rename(final)
            self.log.info("%s/%s: done in %.1f s%s", tname, name, seconds, f" ({message})" if message else "")
            return Outcome(tname, name, DONE, seconds, message)
        except Exception as exc:  # one failed stage must never lose the other trials' work
            seconds = time.perf_counter() - started
            shutil.rmtree(scratch, ignore_errors=True)
            self.log.error("%s/%s: FAILED: %s", tname, name, exc)
            self.log.debug("%s", traceback.format_exc())
            return Outcome(tname, name, FAILED, seconds, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        finally:
            self.digests.save()

    def run(self, trial_names: list[str] | None = None, force_from: str | None = None) -> list[Outcome]:
        """Run every trial (static trials first, so later trials can use their results)."""
        if force_from is not None and force_from not in [s.name for s in self.stages]:
            raise ValueError(f"--from {force_from}: no such stage; stages are {[s.name for s in self.stages]}")
        trials = [self.session.trial(n) for n in trial_names] if trial_names else list(self.session.trials)
        trials.sort(key=lambda t: t.kind != "static")
        outcomes: list[Outcome] = []
        for trial in trials:
            outcomes += self.run_trial(trial, force_from)
        return outcomes
