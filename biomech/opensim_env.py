"""One place that imports OpenSim and keeps its log out of the user's (and read-only) folders.

OpenSim writes ``opensim.log`` into the working directory and prints every solver step; both are
noise for our users and the file can land next to a model in a read-only folder. ``opensim_log``
sends the log of one tool run to a file we choose and keeps the console to warnings.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
from pathlib import Path
from typing import Iterator

import opensim as osim

osim.Logger.removeFileSink()
osim.Logger.setLevelString("error")
_LIBC = ctypes.CDLL(None)


@contextlib.contextmanager
def opensim_log(path: str | Path | None, level: str = "info") -> Iterator[None]:
    """Send everything OpenSim prints while the block runs to ``path`` (appending).

    OpenSim's console sink writes to the process's stdout from C++ and one log level governs all
    sinks, so the block's stdout/stderr file descriptors point at the log file instead: the tools'
    step-by-step report lands in the file and the user's console stays clean.
    """
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        osim.Logger.setLevelString(level)
        try:
            yield
        finally:
            osim.Logger.setLevelString("error")
            _LIBC.fflush(None)  # C stdio buffers may still hold OpenSim's last lines
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_tool(tool, log_path: Path, error: type[Exception], what: str, output: Path) -> float:
    """Run an OpenSim tool with its log sent to ``log_path``; seconds taken. A crash or a missing
    ``output`` raises ``error`` with ``what`` (which input, which model) and where the log is."""
    t0 = time.perf_counter()
    with opensim_log(log_path):
        try:
            ok = tool.run()
        except Exception as exc:  # OpenSim raises RuntimeError with its own text
            raise error(f"{what}: OpenSim {tool.getConcreteClassName()} failed: {exc}") from None
    if not ok or not Path(output).is_file():
        raise error(f"{what}: OpenSim {tool.getConcreteClassName()} did not finish; see {log_path}")
    return time.perf_counter() - t0


def load_model(path: str | Path) -> osim.Model:
    """Load an .osim model, with an error naming the file when OpenSim cannot read it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    try:
        model = osim.Model(str(path))
    except Exception as exc:  # OpenSim raises RuntimeError with its own text
        raise ValueError(f"{path}: OpenSim cannot read this model: {exc}") from None
    return model
