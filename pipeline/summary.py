"""The end-of-run summary: a table per trial and stage on the console, and output/summary.json."""
from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.runner import FAILED, Outcome
from pipeline.verdict import OK, Verdict


def format_table(outcomes: list[Outcome], verdicts: dict[str, Verdict] | None = None) -> str:
    """Rows are trials, columns are stages and the verdict; each cell is the stage's status.
    Below: every failure, and the reasons of every verdict that is not ok."""
    verdicts = verdicts or {}
    trials = list(dict.fromkeys(o.trial for o in outcomes))
    stages = list(dict.fromkeys(o.stage for o in outcomes))
    cell = {(o.trial, o.stage): o.status + (f" {o.seconds:.1f}s" if o.status == "done" else "") for o in outcomes}
    head = ["trial", *stages] + (["verdict"] if verdicts else [])
    level = lambda t: "" if t not in verdicts else verdicts[t].level if verdicts[t].level == OK else verdicts[t].level.upper()
    rows = [[t, *(cell.get((t, s), "") for s in stages)] + ([level(t)] if verdicts else []) for t in trials]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    lines = [fmt(head), fmt(["-" * w for w in widths]), *map(fmt, rows)]
    problems = [o for o in outcomes if o.status == FAILED]
    for o in problems:
        lines.append(f"{o.trial}/{o.stage} FAILED: {o.message}")
    for t, v in verdicts.items():
        for r in v.reasons:
            if not r.startswith("unusable: stage "):  # failures are listed above
                lines.append(f"{t}: {r}")
    return "\n".join(lines)


def write_summary(path: Path, session_root: Path, outcomes: list[Outcome],
                  verdicts: dict[str, Verdict] | None = None) -> None:
    verdicts = verdicts or {}
    record = {
        "session": str(session_root),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "outcomes": [o.__dict__ for o in outcomes],
        "failed": sorted({o.trial for o in outcomes if o.status == FAILED}),
        "verdicts": {t: v.to_json() for t, v in verdicts.items()},
        "unusable": sorted(t for t, v in verdicts.items() if v.level == "unusable"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
