"""The stage runner: caching by content, exact re-runs, failure isolation, atomic outputs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.logs import session_logging
from pipeline.runner import BLOCKED, DONE, FAILED, NOT_APPLICABLE, UNAVAILABLE, UP_TO_DATE, Runner, Stage, StageContext
from sessions.session import load_session
from tests.conftest import VALID_VIDEOS, valid_doc, write_session

CALLS: list[str] = []


def _a(ctx: StageContext) -> None:
    CALLS.append(f"{ctx.trial.name}/a")
    text = (ctx.session.root / "inputs" / "a.txt").read_text()
    (ctx.out_dir / "a.txt").write_text(str(len(text)))  # depends only on the input's length


def _b(ctx: StageContext) -> None:
    CALLS.append(f"{ctx.trial.name}/b")
    if (ctx.session.root / "inputs" / f"fail_{ctx.trial.name}").exists():
        (ctx.out_dir / "half_written.txt").write_text("oops")
        raise RuntimeError(f"{ctx.trial.name}: simulated crash in b")
    n = int((ctx.stage_dir("a") / "a.txt").read_text())
    (ctx.out_dir / "b.txt").write_text(str(2 * n))


def _c(ctx: StageContext) -> None:
    CALLS.append(f"{ctx.trial.name}/c")
    b = (ctx.stage_dir("b") / "b.txt").read_text()
    (ctx.out_dir / "sub").mkdir()
    (ctx.out_dir / "sub" / "c.txt").write_text(f"{b} {ctx.config['frames']['min_fps']}")


def _d(ctx: StageContext) -> None:
    CALLS.append(f"{ctx.trial.name}/d")
    (ctx.out_dir / "d.txt").write_text(ctx.trial.mocap.read_text())


def _mocap(ctx: StageContext) -> list[Path]:
    return [ctx.trial.mocap]


STAGES = [
    Stage("a", _a, inputs=lambda ctx: [ctx.session.root / "inputs" / "a.txt"]),
    Stage("b", _b, needs=("a",)),
    Stage("c", _c, needs=("b",), config_sections=("frames",)),
    Stage("d", _d, inputs=_mocap, kinds=("dynamic",)),
]


@pytest.fixture
def session_root(tmp_path: Path) -> Path:
    doc = valid_doc()
    doc["trials"][0]["mocap"] = "mocap/static1.trc"
    doc["trials"][1]["mocap"] = "mocap/squats1.trc"
    root = write_session(tmp_path / "s", doc, VALID_VIDEOS)
    (root / "inputs").mkdir()
    (root / "inputs" / "a.txt").write_text("hello")
    (root / "mocap").mkdir()
    for t in ("static1", "squats1"):
        (root / "mocap" / f"{t}.trc").write_text(f"mocap of {t}")
    return root


def run(root: Path, stages=STAGES, overrides=None, force_from=None, trials=None) -> dict[tuple[str, str], str]:
    CALLS.clear()
    session = load_session(root, overrides)
    with session_logging(session.output_dir / "log.txt"):
        outcomes = Runner(session, stages, show_progress=False).run(trials, force_from)
    return {(o.trial, o.stage): o.status for o in outcomes}


def statuses(result, status):
    return sorted(f"{t}/{s}" for (t, s), st in result.items() if st == status)


def test_first_run_runs_everything_and_rerun_skips_everything(session_root):
    first = run(session_root)
    assert statuses(first, DONE) == ["squats1/a", "squats1/b", "squats1/c", "squats1/d", "static1/a", "static1/b", "static1/c"]
    assert first[("static1", "d")] == NOT_APPLICABLE
    assert CALLS[:3] == ["static1/a", "static1/b", "static1/c"], "static trials run first"
    assert (session_root / "output" / "squats1" / "c" / "sub" / "c.txt").read_text() == "10 30"
    second = run(session_root)
    assert set(second.values()) == {UP_TO_DATE, NOT_APPLICABLE} and CALLS == []


def test_changing_one_input_reruns_exactly_its_dependents(session_root):
    run(session_root)
    (session_root / "mocap" / "squats1.trc").write_text("new mocap")
    assert statuses(run(session_root), DONE) == ["squats1/d"]
    (session_root / "inputs" / "a.txt").write_text("hello world")
    assert statuses(run(session_root), DONE) == ["squats1/a", "squats1/b", "squats1/c", "static1/a", "static1/b", "static1/c"]


def test_touch_without_change_reruns_nothing(session_root):
    run(session_root)
    p = session_root / "inputs" / "a.txt"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 5_000_000_000))
    assert statuses(run(session_root), DONE) == []


def test_same_upstream_output_stops_the_rerun(session_root):
    run(session_root)
    (session_root / "inputs" / "a.txt").write_text("HELLO")  # same length -> a's output is identical
    result = run(session_root)
    assert statuses(result, DONE) == ["squats1/a", "static1/a"]
    assert result[("squats1", "b")] == UP_TO_DATE


def test_config_change_reruns_only_stages_reading_that_section(session_root):
    run(session_root)
    result = run(session_root, overrides={"frames": {"min_fps": 25}})
    assert statuses(result, DONE) == ["squats1/c", "static1/c"]
    assert (session_root / "output" / "static1" / "c" / "sub" / "c.txt").read_text() == "10 25"
    assert statuses(run(session_root, overrides={"run": {"log_level": "debug"}}), DONE) == ["squats1/c", "static1/c"]  # back to 30


def test_from_forces_that_stage_and_later_ones(session_root):
    run(session_root)
    result = run(session_root, force_from="b", trials=["squats1"])
    assert statuses(result, DONE) == ["squats1/b", "squats1/c", "squats1/d"]
    assert result[("squats1", "a")] == UP_TO_DATE and ("static1", "a") not in result


def test_damaged_outputs_are_rebuilt(session_root):
    run(session_root)
    (session_root / "output" / "squats1" / "b" / "b.txt").write_text("tampered")
    (session_root / "output" / "static1" / "c" / "sub" / "c.txt").unlink()
    assert statuses(run(session_root), DONE) == ["squats1/b", "static1/c"]
    assert (session_root / "output" / "squats1" / "b" / "b.txt").read_text() == "10"


def test_a_failing_trial_keeps_other_trials_and_earlier_outputs(session_root):
    run(session_root)
    (session_root / "inputs" / "a.txt").write_text("hello again")
    (session_root / "inputs" / "fail_squats1").write_text("")
    result = run(session_root)
    assert result[("squats1", "b")] == FAILED and result[("squats1", "c")] == BLOCKED
    assert result[("squats1", "d")] == UP_TO_DATE  # independent of b
    assert statuses(result, DONE) == ["squats1/a", "static1/a", "static1/b", "static1/c"]
    out = session_root / "output" / "squats1"
    assert (out / "b" / "b.txt").read_text() == "10", "the last good output survives a crash"
    assert not (out / ".b.partial").exists() and not (out / "b" / "half_written.txt").exists()
    log = (session_root / "output" / "log.txt").read_text()
    assert "squats1/b: FAILED: squats1: simulated crash in b" in log and "Traceback" in log
    (session_root / "inputs" / "fail_squats1").unlink()
    assert statuses(run(session_root), DONE) == ["squats1/b", "squats1/c"]  # resume, not restart


def test_unavailable_stage_blocks_later_stages(session_root):
    stages = [STAGES[0], Stage("b", None, needs=("a",), pending="another issue"), Stage("c", _c, needs=("b",))]
    result = run(session_root, stages=stages)
    assert result[("static1", "a")] == DONE
    assert result[("static1", "b")] == UNAVAILABLE and result[("static1", "c")] == BLOCKED


def test_manifest_records_what_made_the_outputs(session_root):
    run(session_root)
    m = json.loads((session_root / "output" / "squats1" / "c" / "_stage.json").read_text())
    assert m["outputs"].keys() == {"sub/c.txt"}
    assert m["made_from"]["upstream"]["b"] is not None and m["made_from"]["version"] == "1"


def test_stage_order_is_checked():
    with pytest.raises(ValueError, match="needs \\['a'\\], which must come before it"):
        from pipeline.runner import check_stage_order

        check_stage_order([STAGES[1], STAGES[0]])
