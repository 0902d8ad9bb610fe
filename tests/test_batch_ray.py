"""Batches on Ray (pipeline/batch_ray.py): the plan of tasks (fast, no Ray), and on a real local Ray
cluster on loopback (slow): the same outputs as the local engine, a worker killed mid-stage retried and
resumed, bad sessions reported while the others finish, GPU shares asked for the GPU work."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench.batch_throughput import copy_demo
from pipeline.batch_ray import BACK, DETECT, FINISH, FRONT, LOOPBACK_ONLY_ENV, plan_session
from sessions.config import ConfigError
from sessions.session import load_session
from tests.conftest import ROOT, write_session

GPU_STAGES = ("keypoints", "augment")


def demo_session(dest: Path, extra_trial: str | None = None) -> Path:
    """A copy of the demo session with its cameras' calibration in place; ``extra_trial``: a second
    dynamic trial (the squats again under another name)."""
    copy_demo(dest)
    if extra_trial:
        shutil.copytree(dest / "videos" / "squats", dest / "videos" / extra_trial)
        shutil.copy(dest / "mocap" / "squats.trc", dest / "mocap" / f"{extra_trial}.trc")
        doc = yaml.safe_load((dest / "session.yaml").read_text())
        doc["trials"].append({"name": extra_trial, "kind": "dynamic", "mocap": f"mocap/{extra_trial}.trc"})
        (dest / "session.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest


def test_plan_splits_cameras_trials_and_gpu_work(tmp_path):
    session = load_session(demo_session(tmp_path / "s", extra_trial="squats2"))
    parts = {p.key: p for p in plan_session(session, GPU_STAGES)}
    assert [k for k in parts if parts[k].kind == DETECT] == [
        "static/detect/cam1", "static/detect/cam2", "squats/detect/cam1", "squats/detect/cam2",
        "squats2/detect/cam1", "squats2/detect/cam2"]
    front, back = parts["squats/front"], parts["squats/back"]
    assert front.stages == ("frames", "keypoints", "sync", "triangulate", "filter", "augment") and front.gpu
    assert front.after == ("squats/detect/cam1", "squats/detect/cam2")  # not the static trial: trials run in parallel
    assert back.stages == ("scale", "ik", "analyse", "compare", "report") and not back.gpu
    assert back.after == ("squats/front", "static/back")  # ik needs the scaled model
    assert parts["static/back"].after == ("static/front",)
    assert parts[FINISH].after == ("static/front", "static/back", "squats/front", "squats/back",
                                   "squats2/front", "squats2/back")
    keys = list(parts)
    assert all(keys.index(a) < keys.index(k) for k, p in parts.items() for a in p.after), "submitted after what it needs"


def test_plan_follows_config(tmp_path):
    session = load_session(demo_session(tmp_path / "s"), {"keypoints": {"backend": "json"}})
    parts = plan_session(session, ())
    assert not any(p.kind in (DETECT, FRONT) for p in parts), "json keypoints: nothing to detect; no GPU stages: no front"
    assert [p.stages for p in parts if p.kind == BACK][0][0] == "frames"
    with pytest.raises(ConfigError, match="batch.gpu_stages"):
        plan_session(session, ("keypoint",))


needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is an optional install (make venv-ray)")


def app(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(pattern)) if ".stale" not in str(p)}


def outcomes(session: Path) -> list[tuple]:
    summary = json.loads((session / "output" / "summary.json").read_text())
    return [(o["trial"], o["stage"], o["status"], o["message"].replace(str(session.parent), "ROOT")) for o in summary["outcomes"]]


@pytest.mark.slow
@needs_ray
def test_ray_batch_equals_local_and_reports_bad_sessions(tmp_path):
    runs = {}
    for engine in ("local", "ray"):
        root = tmp_path / engine
        demo_session(root / "a", extra_trial="squats2")
        demo_session(root / "b")
        write_session(root / "bad", {"subject": {"id": "x"}}, None)
        demo_session(root / "broken_video")
        (root / "broken_video" / "videos" / "squats" / "cam1.mp4").write_bytes(b"garbage" * 50)
        res = app("batch", str(root), "--engine", engine)
        assert res.returncode == 1, res.stderr
        runs[engine] = (root, res)
    (local, _), (remote, res) = runs["local"], runs["ray"]
    rows = {engine: json.loads((root / "batch_summary.json").read_text())["sessions"] for engine, (root, _) in runs.items()}
    strip = lambda rs, root: [{**r, "session": str(Path(r["session"]).relative_to(root)),
                               "detail": r["detail"].replace(str(root), "ROOT")} for r in rs]
    assert strip(rows["ray"], remote) == strip(rows["local"], local)
    by_name = {Path(r["session"]).name: r for r in rows["ray"]}
    assert by_name["a"]["status"] == by_name["b"]["status"] == "ok"
    assert by_name["bad"]["status"] == "invalid" and "height_m is missing" in by_name["bad"]["detail"]
    assert by_name["broken_video"]["status"] == "trial failed" and by_name["broken_video"]["failed_trials"] == ["squats"]
    for name in ("a", "b", "broken_video"):
        mots = files(remote / name / "output", "*.mot")
        assert mots and mots == files(local / name / "output", "*.mot"), f"{name}: angle files differ from the local engine's"
        assert files(remote / name / "output", "*.trc") == files(local / name / "output", "*.trc")
        assert outcomes(remote / name) == outcomes(local / name)
    assert len(files(remote / "a" / "output", "*.mot")) > len(files(remote / "b" / "output", "*.mot")), "both dynamic trials ran"
    assert "2 done, 2 failed or refused, 0 running, 0 waiting (of 4 sessions)" in res.stderr
    page = lambda root: re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "TIME",
                               (root / "batch_index.html").read_text().replace(str(root), "ROOT"))
    assert page(remote) == page(local), "the batch index page differs from the local engine's"
    log = (remote / "a" / "output" / "log.txt").read_text()
    assert log.count("session ") == 1 and "squats2: stages scale, ik" in log
    again = app("batch", str(remote), "--engine", "ray", "--no-progress")  # a re-run resumes: nothing runs again
    assert again.returncode == 1
    assert ": running" not in (remote / "a" / "output" / "log.txt").read_text()[len(log):]


@pytest.mark.slow
@needs_ray
def test_worker_killed_mid_stage_is_retried_and_resumes(tmp_path):
    session = demo_session(tmp_path / "all" / "s")
    out = session / "output"
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "batch", str(tmp_path / "all"), "--engine", "ray"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.time() + 600
    while killed is None and proc.poll() is None and time.time() < deadline:
        if (out / "squats" / ".compare.partial").is_dir():  # the squats' back task is inside its compare stage
            try:
                killed = json.loads((out / ".lock.squats").read_text())["pid"]
                os.kill(killed, signal.SIGKILL)
            except (OSError, ValueError, KeyError):
                killed = None
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=600)
    assert killed is not None, f"never saw the compare stage running: {stdout}{stderr}"
    assert proc.returncode == 0, stderr
    rows = json.loads((tmp_path / "all" / "batch_summary.json").read_text())["sessions"]
    assert [r["status"] for r in rows] == ["ok"]
    log = (out / "log.txt").read_text()
    assert log.count("squats/compare: running") == 2, "the killed stage ran again"
    assert log.count("squats/ik: done") == 1 and "squats/ik: up to date" in log, "the retry resumed, not restarted"
    assert not any(p.name.endswith(".partial") for p in (out / "squats").iterdir()), "no half-written outputs"
    assert json.loads((out / "squats" / "compare" / "_stage.json").read_text())["outputs"]


@pytest.mark.slow
@needs_ray
def test_gpu_work_asks_for_a_gpu(tmp_path):
    """On a cluster with a GPU, detection and the front stages get one; OpenSim's stages do not."""
    os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")  # before ray is imported: its servers on 127.0.0.1 only
    import ray

    from pipeline.batch_ray import ROOT as PRODUCT, run_batch_ray

    demo_session(tmp_path / "all" / "s")
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(PRODUCT)}})
    try:
        entries = run_batch_ray(tmp_path / "all", show_progress=False)
    finally:
        ray.shutdown()
    assert [e.status for e in entries] == ["ok"]
    log = (tmp_path / "all" / "s" / "output" / "log.txt").read_text().splitlines()
    detect = [line for line in log if ": 2D detection on " in line]
    assert len(detect) == 4 and all("GPU 0" in line for line in detect)
    assert all("GPU 0" in line for line in log if ": stages frames," in line)
    assert all("no GPU" in line for line in log if ": stages scale," in line)


@pytest.mark.slow
@needs_ray
@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to list listening sockets")
def test_local_cluster_listens_on_loopback_only():
    script = ("import subprocess; from pipeline.batch_ray import connect; stop = connect(None, 1); "
              "print(subprocess.run(['ss', '-ltnpH'], capture_output=True, text=True).stdout); stop()")
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    ray_lines = [line for line in res.stdout.splitlines() if any(n in line for n in ("raylet", "gcs_server", "ray::", "python"))]
    assert ray_lines, res.stdout
    assert all(line.split()[3].startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for line in ray_lines), "\n".join(ray_lines)


@pytest.mark.slow
@needs_ray
def test_node_leaving_mid_stage_is_retried_on_another(tmp_path):
    """A real three-node cluster on this machine (Ray's cluster_utils: a head without CPUs and two
    worker nodes); the node running the squats' back task is removed inside its compare stage."""
    import threading

    os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
    import ray
    from ray.cluster_utils import Cluster

    from pipeline.batch_ray import ROOT as PRODUCT, run_batch_ray

    demo_session(tmp_path / "all" / "s")
    out = tmp_path / "all" / "s" / "output"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, runtime_env={"env_vars": {"PYTHONPATH": str(PRODUCT)}}, log_to_driver=False)
    result: dict = {}
    try:
        batch = threading.Thread(target=lambda: result.update(entries=run_batch_ray(tmp_path / "all", show_progress=False)))
        batch.start()
        removed = None
        while batch.is_alive() and removed is None:
            if (out / "squats" / ".compare.partial").is_dir():
                try:
                    pid = json.loads((out / ".lock.squats").read_text())["pid"]
                    parent = int(Path(f"/proc/{pid}/status").read_text().split("PPid:")[1].split()[0])
                except (OSError, ValueError, KeyError, IndexError):
                    continue
                removed = next(n for n in nodes if parent in [p.process.pid for p in n.all_processes["raylet"]])
                cluster.remove_node(removed)  # the worker's raylet: the node leaves
            time.sleep(0.02)
        batch.join(timeout=600)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert removed is not None, "never saw the compare stage running"
    assert [e.status for e in result["entries"]] == ["ok"]
    log = (out / "log.txt").read_text()
    assert log.count("squats/compare: running") == 2 and "squats/ik: up to date" in log
    assert not any(p.name.endswith(".partial") for p in (out / "squats").iterdir())
