"""Batch runs: every session under a folder, one after another; one bad session never stops the rest."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipeline.lock import RunRefused
from sessions.config import ConfigError
from sessions.session import SessionError

log = logging.getLogger("markerless.batch")


def find_sessions(root: str | Path) -> list[Path]:
    """Folders under ``root`` (itself included) holding a session.yaml, outside any output/ tree."""
    root = Path(root)
    found = [p.parent for p in sorted(root.rglob("session.yaml")) if "output" not in p.relative_to(root).parts[:-1]]
    return found


@dataclass
class BatchEntry:
    session: Path
    status: str  # 'ok', 'trial failed', 'unusable', 'invalid', 'refused', 'crashed'
    detail: str = ""
    failed_trials: list[str] | None = None
    verdicts: dict[str, str] | None = None  # trial -> ok / doubtful / unusable / incomplete


def run_batch(root: str | Path, run_one: Callable[..., Any], **kwargs: Any) -> list[BatchEntry]:
    """Call ``run_one(session_path, **kwargs)`` (returns a SessionRun) for every session found."""
    entries: list[BatchEntry] = []
    for path in find_sessions(root):
        try:
            entries.append(entry_from_run(path, run_one(path, **kwargs)))
        except Exception as exc:  # a crash in one session must not lose the others
            entries.append(entry_from_error(path, exc))
    return entries


def entry_from_run(path: Path, result: Any) -> BatchEntry:
    """A session's row from its SessionRun (pipeline/orchestrate.py)."""
    failed, unusable = result.failed_trials, result.unusable_trials
    verdicts = {t: v.level for t, v in result.verdicts.items()}
    status = "trial failed" if failed else "unusable" if unusable else "ok"
    detail = ", ".join(failed) if failed else ", ".join(f"{t}: {v}" for t, v in verdicts.items())
    return BatchEntry(path, status, detail, failed, verdicts)


def entry_from_error(path: Path, exc: BaseException) -> BatchEntry:
    """A session's row when its run raised: bad input, refused, or a crash."""
    if isinstance(exc, (SessionError, ConfigError)):
        return BatchEntry(path, "invalid", "; ".join(exc.problems))
    if isinstance(exc, RunRefused):  # another run holds it, or its output folder is read-only
        return BatchEntry(path, "refused", str(exc))
    return BatchEntry(path, "crashed", f"{type(exc).__name__}: {exc}")


def format_batch(entries: list[BatchEntry]) -> str:
    if not entries:
        return "no sessions found (a session is a folder with a session.yaml)"
    w = max(len(str(e.session)) for e in entries)
    lines = [f"{'session'.ljust(w)}  status        detail", f"{'-' * w}  ------------  ------"]
    lines += [f"{str(e.session).ljust(w)}  {e.status.ljust(12)}  {e.detail}" for e in entries]
    ok = sum(e.status == "ok" for e in entries)
    lines.append(f"{ok}/{len(entries)} sessions ran without failures or unusable trials")
    return "\n".join(lines)


def write_batch_summary(path: Path, entries: list[BatchEntry]) -> None:
    path.write_text(json.dumps({
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "sessions": [{**e.__dict__, "session": str(e.session)} for e in entries],
    }, indent=2))
