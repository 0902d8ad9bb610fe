"""One run per session at a time, and an output folder that can be written.

``session_lock(output_dir)`` holds an exclusive ``fcntl.flock`` on ``output/.lock`` for the whole
run; the file says which process holds it and since when. The kernel drops the lock when the holder
exits in any way (SIGKILL included), so a killed run never leaves a stale lock: the file may stay,
but nobody holds it. A second run refuses at once, naming the holder (or waits with ``wait=True``).
Nothing is written before the lock is held, so a refused run changes nothing.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".lock"


class RunRefused(RuntimeError):
    """A run that cannot start: output folder not writable, or another run holds the session."""


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write a scratch file in it; RunRefused naming it otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise RunRefused(f"{folder}: the output folder cannot be written ({why}); make it writable "
                         "(chmod u+w, or a disk with free space), or copy the session folder somewhere you can write") from None


def _holder(fh) -> str:
    try:
        fh.seek(0)
        info = json.loads(fh.read() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "another run (process unknown)"
    return f"another run (pid {info['pid']}{' on ' + info['host'] if info.get('host') else ''}, started {info.get('started', '?')})"


@contextmanager
def session_lock(output_dir: Path, wait: bool = False, poll_s: float = 0.5, shared: bool = False) -> Iterator[Path]:
    """Hold ``output_dir/.lock`` for the block; RunRefused at once if another process holds it
    (``wait``: wait until it is free instead). ``shared``: a part of a run split over processes
    (pipeline/batch_ray.py) holds it shared with the run's other parts, so a whole-session run is
    refused while any part runs, and the other way round."""
    path = Path(output_dir) / LOCK_NAME
    busy = f"{Path(output_dir).parent}: {{holder}} is using this session; wait until it finishes (or run with --wait), or stop that process. The lock file is {path}"
    with _hold(path, wait, poll_s, shared, busy):
        yield path


@contextmanager
def trial_lock(output_dir: Path, trial: str, wait: bool = False, poll_s: float = 0.5) -> Iterator[Path]:
    """Hold ``output_dir/.lock.<trial>`` exclusively: one part of a split run works on a trial at a time."""
    path = Path(output_dir) / f"{LOCK_NAME}.{trial}"
    busy = f"{Path(output_dir).parent}: {{holder}} is working on trial {trial!r}; wait until it finishes, or stop that process. The lock file is {path}"
    with _hold(path, wait, poll_s, False, busy):
        yield path


@contextmanager
def _hold(path: Path, wait: bool, poll_s: float, shared: bool, busy: str) -> Iterator[None]:
    try:
        fh = open(path, "a+", encoding="utf-8")
    except OSError as exc:
        raise RunRefused(f"{path}: cannot create the run lock ({exc.strerror}); make {path.parent} writable") from None
    waited = False
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        while True:
            try:
                fcntl.flock(fh, mode | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise RunRefused(f"{path}: cannot lock ({exc.strerror})") from None
                if not wait:
                    raise RunRefused(busy.format(holder=_holder(fh))) from None
                if not waited:
                    print(busy.format(holder=_holder(fh)).split(";")[0] + "; waiting for it to finish ...",
                          file=sys.stderr, flush=True)
                    waited = True
                time.sleep(poll_s)
        me = {"pid": os.getpid(), "host": os.uname().nodename, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        if not shared:  # shared holders leave the file alone (several hold it at once)
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(me) + "\n")
            fh.flush()
        try:
            yield
        finally:
            if not shared:
                fh.seek(0)
                fh.truncate()  # the file stays (removing it would race a waiting run); nobody holds it now
                fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()
