"""Fail the install early if the environment is not the one we pinned (CPU torch, one OpenCV)."""
from __future__ import annotations

import sys
from importlib import metadata

problems = []
opencvs = sorted(d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].lower().startswith("opencv"))
if len(opencvs) != 1:
    problems.append(f"expected exactly one OpenCV build, found {opencvs}; remove the extra with pip uninstall")
import torch  # noqa: E402

if torch.version.cuda is not None:
    problems.append(f"torch {torch.__version__} is a CUDA build; install the CPU wheel torch==2.13.0 (see README)")
import cv2, mediapipe, numpy, opensim  # noqa: E401,E402,F401

if tuple(int(x) for x in numpy.__version__.split(".")[:2]) < (2, 1):
    problems.append(f"numpy {numpy.__version__} < 2.1, which opensim 4.6 needs")
if problems:
    print("install check failed:\n  - " + "\n  - ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"install ok: torch {torch.__version__}, opencv {cv2.__version__}, opensim {opensim.GetVersion()}, numpy {numpy.__version__}")
