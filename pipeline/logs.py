"""Logging to the console (without breaking progress bars) and to the session's output/log.txt."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

LOGGER_NAME = "markerless"


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record))
        except BrokenPipeError:  # console closed (e.g. piped into `head`): keep logging to the file only
            self.setLevel(logging.CRITICAL + 1)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


@contextmanager
def session_logging(log_file: Path, console_level: str = "info") -> Iterator[logging.Logger]:
    """Attach a console handler at ``console_level`` and a debug-level file handler for one run."""
    log = get_logger()
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log_file.parent.mkdir(parents=True, exist_ok=True)
    console = _TqdmHandler()
    console.setLevel(getattr(logging, console_level.upper(), logging.INFO))
    console.setFormatter(logging.Formatter("%(message)s"))
    fileh = logging.FileHandler(log_file, encoding="utf-8")
    fileh.setLevel(logging.DEBUG)
    fileh.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    log.addHandler(console)
    log.addHandler(fileh)
    try:
        yield log
    finally:
        log.removeHandler(console)
        log.removeHandler(fileh)
        fileh.close()
