"""Run the pipeline on one session: load and validate it, run the stages, log, summarise."""
from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.exit_codes import EXIT_FAILED, EXIT_OK
from pipeline.lock import check_writable, session_lock, trial_lock
from pipeline.report import ReportFiles, write_session_report
from pipeline.logs import session_logging
from pipeline.runner import FAILED, Outcome, Runner, check_force_from
from pipeline.stages import stages_from_config
from pipeline.summary import format_table, write_summary
from pipeline.verdict import UNUSABLE, Verdict, trial_verdict
from sessions.session import Session, load_session


@dataclass
class SessionRun:
    root: Path
    outcomes: list[Outcome]
    verdicts: dict[str, Verdict]
    report: ReportFiles | None = None  # output/report.html and .pdf; None if they could not be made

    @property
    def failed_trials(self) -> list[str]:
        return sorted({o.trial for o in self.outcomes if o.status == FAILED})

    @property
    def unusable_trials(self) -> list[str]:
        return sorted(t for t, v in self.verdicts.items() if v.level == UNUSABLE)

    @property
    def exit_code(self) -> int:
        """1 when a trial failed (also on bad input that only a stage could find: the trial's message
        names the file, and the other trials go on) or was judged unusable, else 0. Bad input found
        before any work raises instead (exit 2 in app.py)."""
        return EXIT_FAILED if self.failed_trials or self.unusable_trials else EXIT_OK


def run_session(
    root: str | Path,
    trials: list[str] | None = None,
    force_from: str | None = None,
    overrides: dict[str, Any] | None = None,
    show_progress: bool | None = None,
    wait: bool = False,
    judge: bool = True,
) -> SessionRun:
    """Run a session's trials; raises SessionError (bad input) before anything runs, and RunRefused
    (pipeline/lock.py) when the output folder cannot be written or another run holds the session
    (``wait``: wait for it instead). ``judge=False`` (a look at a few stages, `app.py people`) leaves
    the verdicts, summary.json and the report of the last full run as they are."""
    session = load_session(root, overrides)
    if trials:
        for name in trials:
            session.trial(name)  # unknown trial names are bad input, raised before any work
    stages = stages_from_config(session.settings.run.stages)
    check_force_from(stages, force_from)  # bad input: before any work
    check_writable(session.output_dir)
    with session_lock(session.output_dir, wait), session_logging(session.output_dir / "log.txt", session.settings.run.log_level) as log:
        log_header(session, log)
        outcomes = Runner(session, stages, show_progress).run(trials, force_from)
        if not judge:
            return SessionRun(session.root, outcomes, {})
        return judge_session(session, outcomes, log)


def judge_session(session: Session, outcomes: list[Outcome], log: logging.Logger) -> SessionRun:
    """After the stages: each trial's verdict (verdict.json), the table, summary.json and the report."""
    verdicts = {}
    for name in dict.fromkeys(o.trial for o in outcomes):
        verdicts[name] = trial_verdict(session.output_dir, name, session.trial(name).kind, outcomes,
                                       session.settings.verdict)
        (session.output_dir / name).mkdir(parents=True, exist_ok=True)
        (session.output_dir / name / "verdict.json").write_text(json.dumps(verdicts[name].to_json(), indent=2))
    log.info("\n%s\n", format_table(outcomes, verdicts))
    log.info("outputs in %s (log: %s)", session.output_dir, session.output_dir / "log.txt")
    write_summary(session.output_dir / "summary.json", session.root, outcomes, verdicts)
    report = None
    try:  # after the verdicts: the report shows them first
        report = write_session_report(session, session.config)
        log.info("report: %s%s", report.html, f" and {report.pdf} ({report.pdf_pages} pages)" if report.pdf else "")
    except Exception as exc:  # the run's results stay; the report can be re-made with `app.py report`
        log.error("report: FAILED: %s (re-make it with: python app.py report %s)", exc, session.root)
        log.debug("%s", traceback.format_exc())
    return SessionRun(session.root, outcomes, verdicts, report)


# A session's run split over processes (the Ray engine, pipeline/batch_ray.py): parts run stages of one
# trial each, holding the session lock shared and the trial's lock, and hand their outcomes on; the
# last part checks consistency and judges, as run_session does at its end.

def run_part(root: str | Path, trial: str, only: list[str], known: list[Outcome], force_from: str | None = None,
             overrides: dict[str, Any] | None = None, first: bool = False, note: str = "") -> list[Outcome]:
    """Run the stages ``only`` of one trial; ``known``: outcomes of the stages it waits for, run by
    other parts; ``first``: the run's first part, which logs the session's header; ``note``: where it
    runs, for the log. Raises SessionError / RunRefused like run_session."""
    session = load_session(root, overrides)
    stages = stages_from_config(session.settings.run.stages)
    check_writable(session.output_dir)
    with session_lock(session.output_dir, shared=True), trial_lock(session.output_dir, trial), \
            session_logging(session.output_dir / "log.txt", session.settings.run.log_level) as log:
        if first:
            log_header(session, log)
        log.info("%s: stages %s%s", trial, ", ".join(only), f" {note}" if note else "")
        return Runner(session, stages, False).run([trial], force_from, only=only, known=known)


def log_header(session: Session, log: logging.Logger) -> None:
    log.info("session %s: subject %s, %d cameras, trials %s", session.root, session.subject.id,
             len(session.cameras), ", ".join(t.name for t in session.trials))
    for w in session.warnings:
        log.warning("warning: %s", w)


def finish_session(root: str | Path, outcomes: list[Outcome], overrides: dict[str, Any] | None = None) -> SessionRun:
    """The end of a split run: the consistency check over all trials, verdicts, summary and report."""
    session = load_session(root, overrides)
    stages = stages_from_config(session.settings.run.stages)
    order = {t.name: i for i, t in enumerate(sorted(session.trials, key=lambda t: t.kind != "static"))}
    rank = {s.name: i for i, s in enumerate(stages)}
    outcomes = sorted(outcomes, key=lambda o: (order.get(o.trial, len(order)), rank.get(o.stage, len(rank))))
    with session_lock(session.output_dir), session_logging(session.output_dir / "log.txt", session.settings.run.log_level) as log:
        Runner(session, stages, False).check_consistency()
        return judge_session(session, outcomes, log)
