"""The embedded demo session and the scripts that make synthetic sessions with known truth."""
from __future__ import annotations

import shutil
from pathlib import Path

DEMO_SESSION = Path(__file__).resolve().parent / "session"


def _copy_if_changed(src: str, dst: str) -> None:
    s, d = Path(src), Path(dst)
    if d.exists() and d.stat().st_size == s.stat().st_size and d.read_bytes() == s.read_bytes():
        return
    shutil.copy2(s, d)


def copy_demo_session(dest: Path, true_cameras: bool = False) -> Path:
    """Copy the demo session (without its outputs) into ``dest``, only the files that differ from
    what is there (so a run there resumes); ``true_cameras``: also install its true virtual cameras
    as calibration/cameras.yaml, so no calibration is needed."""
    dest = Path(dest)
    shutil.copytree(DEMO_SESSION, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("output"),
                    copy_function=_copy_if_changed)
    if true_cameras:
        shutil.copy(dest / "calibration" / "virtual_cameras.yaml", dest / "calibration" / "cameras.yaml")
    return dest
