"""Detection worker processes: they die with a killed run, and MediaPipe's chatter stays off the console."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO_SESSION


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_when_the_run_is_killed(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        from pipeline.workers import worker_pool

        def main():
            pool = worker_pool(2)
            futs = [pool.submit(os.getpid) for _ in range(4)]
            [f.result() for f in futs]
            for _ in range(2):
                pool.submit(time.sleep, 120)
            print(" ".join(str(p) for p in pool._processes), flush=True)
            time.sleep(120)

        if __name__ == "__main__":
            main()
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        workers = [int(p) for p in line.split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers), line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "detection workers outlived the killed run"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_mediapipe_chatter_goes_to_the_log_not_the_console(tmp_path):
    """A short detection through the stage's own pool: nothing of MediaPipe on the console."""
    import cv2

    from core.video import iter_frames

    clip = tmp_path / "clip.mp4"
    writer = None
    for fr in iter_frames(DEMO_SESSION / "videos" / "static" / "cam1.mp4"):
        if writer is None:
            writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, fr.image.shape[1::-1])
        writer.write(fr.image)
        if fr.index >= 3:
            break
    writer.release()
    log = tmp_path / "log.txt"
    script = tmp_path / "detect.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from pipeline.keypoints_detect import detect_video
        from pipeline.workers import worker_pool

        if __name__ == "__main__":
            with worker_pool(1, {str(log)!r}) as pool:
                people = pool.submit(detect_video, {str(clip)!r}, 1, 0.5, 0.1).result()
            print("frames", people.shape[0])
    """))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "frames 4" in res.stdout
    console = res.stdout + res.stderr
    for chatter in ("TensorFlow Lite", "W0000", "I0000", "absl", "INFO:", "XNNPACK"):
        assert chatter not in console, console
    assert "detection worker" in log.read_text()
