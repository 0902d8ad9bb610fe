"""Run every benchmark in bench/ (each prints a table and writes bench/results/<name>.json)."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script in sorted(HERE.glob("*.py")):
        if script.name == Path(__file__).name or '__name__ == "__main__"' not in script.read_text():
            continue  # this runner, and libraries of the benchmarks (lab_sessions.py)
        print(f"== {script.name}")
        sys.argv = [str(script)]
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (0, None):
                print(f"{script.name} exited with {exc.code}")
