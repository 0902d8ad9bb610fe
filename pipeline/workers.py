"""Worker processes for the heavy stages (2D detection): they die with the run, and their native
libraries' chatter goes to the session log, not the console.

``worker_pool(n, log_file, progress)`` is a spawn-context ProcessPoolExecutor whose initializer
  - asks Linux to kill the worker when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a
    run killed with SIGKILL leaves no detection process behind; where prctl is not available, a
    daemon thread polls ``os.getppid()`` and exits once the parent is gone;
  - points the worker's file descriptors 1 and 2 at ``log_file`` (appending), so MediaPipe's
    glog/absl/TF Lite lines ("Created TensorFlow Lite XNNPACK delegate", "gl_context ...") land in
    output/log.txt with the run's own log instead of between the progress bars;
  - keeps ``progress`` (a queue from ``progress_queue()``) for ``report_progress``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
_PROGRESS: Any = None


def _watch_parent(parent_pid: int, every_s: float = 0.5) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(every_s)


def die_with_parent(parent_pid: int) -> str:
    """Make this process end when ``parent_pid`` does; returns how ('prctl' or 'polling')."""
    how = "polling"
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                how = "prctl"
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)
    if how == "polling":
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="watch-parent").start()
    return how


def quiet_native_logs(log_file: str | Path) -> None:
    """Send this process's stdout/stderr (file descriptors, so C++ libraries too) to ``log_file``."""
    os.environ.setdefault("GLOG_logtostderr", "1")  # glog writes to stderr (now the log), not /tmp files
    fd = os.open(str(log_file), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"--- detection worker {os.getpid()}: messages of MediaPipe / TF Lite / OpenCV follow\n".encode())
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _init_worker(parent_pid: int, log_file: str | None, progress: Any) -> None:
    global _PROGRESS
    die_with_parent(parent_pid)
    if log_file:
        quiet_native_logs(log_file)
    _PROGRESS = progress


def progress_queue():
    """A queue workers can report progress into (give it to ``worker_pool``)."""
    return multiprocessing.get_context("spawn").Queue()


def report_progress(item: Any) -> None:
    """Inside a worker: put ``item`` on the pool's progress queue, if it has one."""
    if _PROGRESS is not None:
        _PROGRESS.put(item)


def worker_pool(workers: int, log_file: str | Path | None = None, progress: Any = None) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process and log into ``log_file`` (see module doc)."""
    return ProcessPoolExecutor(max(1, int(workers)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker,
                               initargs=(os.getpid(), str(log_file) if log_file else None, progress))
