"""The stage runner: runs named stages per trial, caches their outputs, isolates failures.

Each stage writes into its own folder ``output/<trial>/<stage>/`` together with a manifest
(``_stage.json``) that records the fingerprint of everything that produced it: the code it ran
(a digest of its modules' source and the versions of the libraries it calls), its config
sections, its parameters, the digests of the session files it reads and the output digests of
every stage it reads, of its own trial (``needs``, ``extra_needs``) and of the session's static
trial (``static_needs``: the scaled model). A stage whose fingerprint is unchanged and whose
outputs are intact is skipped; otherwise it runs into a scratch folder that replaces the old one
only on success, so a crash never leaves half-written outputs behind.

No output of an older run passes for current: when a stage fails, waits for a stage that did not
finish, or was made from upstream outputs that are no longer there, its folder is moved aside to
``output/<trial>/<stage>.stale/`` (with ``STALE.txt`` saying why), and so, in turn, is every
stage made from it. The summary table says "blocked" or "FAILED" for them, never "done".
"""
from __future__ import annotations

import json
import shutil
import time
import traceback
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from tqdm import tqdm

from pipeline.code_digest import code_identity
from pipeline.fingerprint import DigestCache, digest_json, session_path_key
from pipeline.logs import get_logger
from sessions.config import section_digest
from sessions.session import TRIAL_KINDS, Session, Trial
from sessions.settings import Settings

MANIFEST = "_stage.json"
STALE_SUFFIX = ".stale"
STALE_NOTE = "STALE.txt"
ABSENT = "absent"
T = TypeVar("T")

# Outcome statuses, in the words the summary table prints.
DONE, UP_TO_DATE, FAILED, BLOCKED, UNAVAILABLE, NOT_APPLICABLE = (
    "done", "up to date", "FAILED", "blocked", "not available yet", "n/a",
)


class StageInputError(RuntimeError):
    """A stage found its inputs unusable; the message says which file and what to do."""


def stage_device(setting: str, key: str) -> str:
    """Where a stage's learned model runs (models.device.pick_device); asking for a device this machine
    lacks is bad input of the stage, named by its config ``key``."""
    from models.device import DeviceError, pick_device  # torch only for the stages that need it

    try:
        return pick_device(setting, key)
    except DeviceError as exc:
        raise StageInputError(str(exc)) from None


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

    @cached_property
    def settings(self) -> Settings:
        """``config`` typed: one frozen dataclass per section (sessions/settings.py)."""
        return Settings.from_config(self.config)

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
    extra_needs: config -> more stages of the same trial it reads under that config (the scale
        and ik stages read the augment stage's markers only when the augmenter is used).
    static_needs: stages of the session's static trial whose outputs it reads (the scaled model).
    static_fallback: when those did not finish (failed or blocked), a dynamic trial's stage runs
        without them and copes (ik then uses the generic model scaled to the subject's height).
    config_sections: sections of config.yaml its outputs depend on.
    inputs: session files it reads (videos, mocap, calibration), hashed for the fingerprint.
    params: other values its outputs depend on (subject height, ...), part of the fingerprint.
    libraries: installed distributions whose versions its outputs depend on (opensim, mediapipe, ...).
    kinds: trial kinds it applies to.
    applies: trial -> why the stage does not apply to it (reported "n/a" with that reason; older
        outputs are moved aside), or None when it does (e.g. compare: only trials with a mocap file).
    pending: for a stage not built yet, what will deliver it.
    unavailable: for a built stage, what it still waits for under the given config (None: ready).

    The code a stage runs is part of its fingerprint automatically (pipeline/code_digest.py).
    """

    name: str
    run: Callable[[StageContext], None] | None
    needs: tuple[str, ...] = ()
    extra_needs: Callable[[dict[str, Any]], tuple[str, ...]] = lambda config: ()
    static_needs: tuple[str, ...] = ()
    static_fallback: bool = False
    config_sections: tuple[str, ...] = ()
    inputs: Callable[[StageContext], list[Path]] = lambda ctx: []
    params: Callable[[StageContext], dict[str, Any]] = lambda ctx: {}
    libraries: tuple[str, ...] = ()
    kinds: tuple[str, ...] = TRIAL_KINDS
    applies: Callable[[Trial], str | None] = lambda trial: None
    pending: str = ""
    # For a built stage that still lacks something the project will ship (e.g. default weights):
    # config -> a "not available yet" note, or None when it can run.
    unavailable: Callable[[dict[str, Any]], str | None] | None = None

    def requires(self, config: dict[str, Any]) -> tuple[str, ...]:
        """Stages of the same trial this stage reads under ``config``."""
        return tuple(dict.fromkeys(self.needs + tuple(self.extra_needs(config))))

    def code(self) -> dict[str, Any]:
        return code_identity(self.run.__module__, self.libraries) if self.run is not None else {}


@dataclass
class Outcome:
    trial: str
    stage: str
    status: str
    seconds: float = 0.0
    message: str = ""
    waits_for: tuple[str, ...] = ()  # blocked: the upstream stages it waits for ("stage" or "trial/stage")


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


def check_force_from(stages: list[Stage], force_from: str | None) -> None:
    """``--from STAGE`` must name one of the stages (bad input, found before any work)."""
    if force_from is not None and force_from not in [s.name for s in stages]:
        raise ValueError(f"--from {force_from}: no such stage; stages are {[s.name for s in stages]}")


def check_stage_order(stages: list[Stage], config: dict[str, Any] | None = None) -> None:
    """Every stage a stage reads must come earlier in the list."""
    seen: set[str] = set()
    for st in stages:
        missing = [n for n in (st.requires(config) if config is not None else st.needs) if n not in seen]
        if missing:
            raise ValueError(f"stage {st.name!r} needs {missing}, which must come before it in run.stages")
        seen.add(st.name)


def set_aside(folder: Path, reason: str) -> Path | None:
    """Move a stage's outputs out of the way as ``<stage>.stale/`` with a note; None if there were none."""
    if not folder.is_dir():
        return None
    stale = folder.with_name(folder.name + STALE_SUFFIX)
    if stale.exists():
        shutil.rmtree(stale)
    folder.rename(stale)
    (stale / STALE_NOTE).write_text(
        f"These outputs are NOT current ({time.strftime('%Y-%m-%d %H:%M:%S')}): {reason}.\n"
        f"They are kept only for reference; the stage's current outputs, once it succeeds again, are in "
        f"{folder.name}/.\n")
    return stale


def upstream_key(trial: str, stage: str, own_trial: str) -> str:
    """How a manifest names an upstream stage: ``stage`` for its own trial, ``trial/stage`` otherwise."""
    return stage if trial == own_trial else f"{trial}/{stage}"


class Runner:
    """Runs ``stages`` over a session's trials; see the module docstring."""

    def __init__(self, session: Session, stages: list[Stage], show_progress: bool | None = None):
        check_stage_order(stages, session.config)
        self.session = session
        self.stages = stages
        self.show_progress = session.config["run"]["progress"] if show_progress is None else show_progress
        self.digests = DigestCache(session.output_dir / ".cache" / "digests.json")
        self.log = get_logger()
        self.status: dict[tuple[str, str], str] = {}  # (trial, stage) -> status in this run
        self.static = next((t for t in session.trials if t.kind == "static"), None)

    def upstream(self, stage: Stage, trial: Trial) -> list[tuple[str, str]]:
        """(trial, stage) of every output ``stage`` reads for ``trial``."""
        ups = [(trial.name, n) for n in stage.requires(self.session.config)]
        if self.static is not None:
            ups += [(self.static.name, n) for n in stage.static_needs if (self.static.name, n) not in ups
                    and not (self.static.name == trial.name and n == stage.name)]
        return ups

    def fingerprint(self, stage: Stage, ctx: StageContext) -> tuple[str, dict[str, Any]]:
        inputs = {}
        for p in stage.inputs(ctx):
            p = Path(p)
            if not p.is_file():
                raise StageInputError(f"{p}: input of stage {stage.name!r} not found")
            inputs[session_path_key(p, self.session.root)] = self.digests.digest(p)
        upstream = {}
        for t, need in self.upstream(stage, ctx.trial):
            m = read_manifest(ctx.stage_dir(need, t))
            # "absent": a fallback stage ran without it (static_fallback); current while it stays absent
            upstream[upstream_key(t, need, ctx.trial.name)] = digest_json(m["outputs"]) if m else ABSENT
        parts = {
            "stage": stage.name,
            "code": stage.code(),
            "config": section_digest(ctx.config, stage.config_sections),
            "params": stage.params(ctx),
            "inputs": inputs,
            "upstream": upstream,
        }
        return digest_json(parts), parts

    def run_trial(self, trial: Trial, force_from: str | None = None, only: Iterable[str] | None = None) -> list[Outcome]:
        """Run the stages of ``trial`` (only those named in ``only``, when given: the others' statuses
        come from ``known`` outcomes given to ``run``)."""
        outcomes: list[Outcome] = []
        forcing = False
        only = None if only is None else set(only)
        for stage in self.stages:
            forcing = forcing or stage.name == force_from
            if only is not None and stage.name not in only:
                continue
            outcome = self._run_stage(stage, trial, forcing)
            self.status[(trial.name, stage.name)] = outcome.status
            outcomes.append(outcome)
        return outcomes

    def _not_current(self, folder: Path, status: str, reason: str, outcome: Outcome) -> Outcome:
        """An older run's outputs of a stage that did not produce current ones are moved aside."""
        stale = set_aside(folder, f"stage {status}: {reason}")
        if stale is not None:
            self.log.warning("%s/%s: older outputs moved to %s (not current: %s)", outcome.trial, outcome.stage,
                             stale, reason)
            outcome.message = f"{outcome.message}; older outputs moved to {stale.name}/" if outcome.message else \
                f"older outputs moved to {stale.name}/"
        return outcome

    def _run_stage(self, stage: Stage, trial: Trial, force: bool) -> Outcome:
        name, tname = stage.name, trial.name
        final = self.session.output_dir / tname / name
        if trial.kind not in stage.kinds:
            return Outcome(tname, name, NOT_APPLICABLE, message=f"only for {'/'.join(stage.kinds)} trials")
        why_not = stage.applies(trial)
        if why_not:
            return self._not_current(final, NOT_APPLICABLE, why_not, Outcome(tname, name, NOT_APPLICABLE, message=why_not))
        ups = self.upstream(stage, trial)
        if stage.static_fallback and self.static is not None and tname != self.static.name:
            gone = [(t, n) for t, n in ups if t == self.static.name and self.status.get((t, n)) in (FAILED, BLOCKED)]
            if gone:
                self.log.warning("%s/%s: runs without %s, which did not finish", tname, name,
                                 ", ".join(f"{t}/{n}" for t, n in gone))
                ups = [u for u in ups if u not in gone]
        waiting = [upstream_key(t, n, tname) for t, n in ups if self.status.get((t, n)) not in (DONE, UP_TO_DATE)]
        if waiting:
            msg = f"waits for {', '.join(waiting)}"
            self.log.debug("%s/%s: blocked, %s", tname, name, msg)
            return self._not_current(final, BLOCKED, msg, Outcome(tname, name, BLOCKED, message=msg,
                                                                  waits_for=tuple(waiting)))
        pending = stage.pending if stage.run is None else (stage.unavailable(self.session.config) if stage.unavailable else None)
        if stage.run is None or pending:
            self.log.info("%s/%s: not available yet (%s)", tname, name, pending or "not built")
            return self._not_current(final, UNAVAILABLE, pending or "not built",
                                     Outcome(tname, name, UNAVAILABLE, message=pending or ""))
        scratch = self.session.output_dir / tname / f".{name}.partial"
        ctx = StageContext(self.session, trial, self.session.config, scratch, self.show_progress)
        started = time.perf_counter()
        try:
            fp, parts = self.fingerprint(stage, ctx)
            manifest = read_manifest(final)
            stale = final.with_name(final.name + STALE_SUFFIX)
            if not force and manifest and manifest.get("fingerprint") == fp and _outputs_intact(final, manifest, self.digests):
                shutil.rmtree(stale, ignore_errors=True)  # current outputs exist: an older aside copy is moot
                self.log.info("%s/%s: up to date", tname, name)
                return Outcome(tname, name, UP_TO_DATE, message=manifest.get("message", ""))
            if scratch.exists():
                shutil.rmtree(scratch)
            scratch.mkdir(parents=True)
            self.log.info("%s/%s: running", tname, name)
            stage.run(ctx)
            seconds = time.perf_counter() - started
            message = str(ctx.summary.get("message", ""))
            _name_final_paths(scratch, final)
            record = {
                "stage": name,
                "trial": tname,
                "fingerprint": fp,
                "made_from": parts,
                "outputs": _outputs(scratch, self.digests),
                "summary": _final_paths(ctx.summary, scratch, final),
                "message": message,
                "seconds": round(seconds, 3),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            (scratch / MANIFEST).write_text(json.dumps(record, indent=2, default=str))
            if final.exists():
                shutil.rmtree(final)
            scratch.rename(final)
            shutil.rmtree(stale, ignore_errors=True)
            self.log.info("%s/%s: done in %.1f s%s", tname, name, seconds, f" ({message})" if message else "")
            return Outcome(tname, name, DONE, seconds, message)
        except Exception as exc:  # one failed stage must never lose the other trials' work
            seconds = time.perf_counter() - started
            shutil.rmtree(scratch, ignore_errors=True)
            self.log.error("%s/%s: FAILED: %s", tname, name, exc)
            self.log.debug("%s", traceback.format_exc())
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return self._not_current(final, FAILED, first, Outcome(tname, name, FAILED, seconds, first))
        finally:
            self.digests.save()

    def trials_to_run(self, trial_names: list[str] | None) -> list[Trial]:
        """The trials asked for, static first; the static trial joins when another needs its outputs."""
        trials = [self.session.trial(n) for n in trial_names] if trial_names else list(self.session.trials)
        if self.static is not None and self.static not in trials and any(s.static_needs for s in self.stages) \
                and any(t.kind != "static" for t in trials):
            self.log.info("trial %s runs first: %s read its %s", self.static.name, ", ".join(t.name for t in trials),
                          ", ".join(sorted({n for s in self.stages for n in s.static_needs})))
            trials.append(self.static)
        trials.sort(key=lambda t: t.kind != "static")
        return trials

    def run(self, trial_names: list[str] | None = None, force_from: str | None = None, *,
            only: Iterable[str] | None = None, known: Iterable[Outcome] = ()) -> list[Outcome]:
        """Run the trials (static trials first, so later trials can use their results), then make sure
        no stage folder of any trial was made from outputs that are no longer current.

        For work split over processes (pipeline/batch_ray.py): ``only`` runs just these stages of
        exactly the trials given, and ``known`` are outcomes of stages run elsewhere in this run (what
        a stage here waits for); the consistency check of all trials is then left to the caller, which
        makes it once every part is done (``check_consistency``)."""
        check_force_from(self.stages, force_from)
        for o in known:
            self.status[(o.trial, o.stage)] = o.status
        outcomes: list[Outcome] = []
        # A part of a split run (``only``) runs exactly the trials it is given: the static trial has its own part.
        trials = [self.session.trial(n) for n in trial_names or []] if only is not None else self.trials_to_run(trial_names)
        for trial in trials:
            outcomes += self.run_trial(trial, force_from, only)
        if only is None:
            self.check_consistency()
        return outcomes

    def check_consistency(self) -> None:
        """Move aside stage folders made from outputs that are no longer current (all trials)."""
        for folder, reason in invalidate_inconsistent(self.session.output_dir, [t.name for t in self.session.trials]):
            self.log.warning("%s: moved aside, %s", folder, reason)


# Text outputs that may name files by path (summaries, OpenSim setup files and logs).
PATH_TEXT_SUFFIXES = (".json", ".xml", ".log", ".txt", ".yaml")


def _name_final_paths(scratch: Path, final: Path, max_bytes: int = 5_000_000) -> None:
    """Rewrite scratch-folder paths in a stage's small text outputs to where the files end up."""
    old, new = str(scratch), str(final)
    for p in scratch.rglob("*"):
        if p.is_file() and p.suffix in PATH_TEXT_SUFFIXES and p.stat().st_size <= max_bytes:
            try:
                text = p.read_text()
            except UnicodeDecodeError:
                continue
            if old in text:
                p.write_text(text.replace(old, new))


def _final_paths(summary: dict[str, Any], scratch: Path, final: Path) -> dict[str, Any]:
    """A stage's summary with scratch-folder paths replaced by where the files end up."""
    text = json.dumps(summary, default=str).replace(json.dumps(str(scratch))[1:-1], json.dumps(str(final))[1:-1])
    return json.loads(text)


def invalidate_inconsistent(output_dir: Path, trials: list[str]) -> list[tuple[Path, str]]:
    """Move aside every stage folder whose manifest names upstream outputs that differ from (or are
    missing in) the current ones: a stage re-ran or failed after it was made. Repeats until stable,
    so whole chains go. Returns (folder moved aside, reason)."""
    moved: list[tuple[Path, str]] = []
    changed = True
    while changed:
        changed = False
        for trial in trials:
            tdir = output_dir / trial
            if not tdir.is_dir():
                continue
            for folder in sorted(p for p in tdir.iterdir() if p.is_dir() and not p.name.startswith(".")
                                 and not p.name.endswith(STALE_SUFFIX)):
                m = read_manifest(folder)
                if m is None:
                    continue
                for key, digest in (m.get("made_from", {}).get("upstream") or {}).items():
                    up_trial, _, up_stage = key.rpartition("/")
                    current = read_manifest(output_dir / (up_trial or trial) / up_stage)
                    if digest == ABSENT:
                        stale = current is not None
                    else:
                        stale = digest is None or current is None or digest_json(current["outputs"]) != digest
                    if stale:
                        reason = f"made from outputs of {key} that are no longer current"
                        set_aside(folder, reason)
                        moved.append((folder, reason))
                        changed = True
                        break
    return moved
