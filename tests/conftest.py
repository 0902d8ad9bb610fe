from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from demo import DEMO_SESSION, copy_demo_session
from sessions.settings import default_settings

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SETTINGS = default_settings()  # config.yaml, typed: what algorithm tests run with unless they say otherwise

needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"third-party test data not present at {SHARED_DATA}"
)


@pytest.fixture(scope="session")
def model():
    """Our generic OpenSim model (loaded once)."""
    from biomech.model_builder import DEFAULT_MODEL
    from biomech.opensim_env import load_model

    return load_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def ranges_rad(model) -> dict[str, tuple[float, float]]:
    """Coordinate name -> (min, max) of our model, radians."""
    cs = model.getCoordinateSet()
    return {cs.get(i).getName(): (cs.get(i).getRangeMin(), cs.get(i).getRangeMax()) for i in range(cs.getSize())}


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A private copy of the embedded demo session (real videos, our own synthetic subject)."""
    return copy_demo_session(tmp_path / "demo")


def write_session(root: Path, doc: dict | str, videos: dict[str, list[str]] | None = None) -> Path:
    """Write a session folder: session.yaml from ``doc`` and small placeholder video files.

    videos: trial -> camera ids to create as videos/<trial>/<cam>.mp4 (content is not a real video;
    validation only checks presence).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "session.yaml").write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    for trial, cams in (videos or {}).items():
        (root / "videos" / trial).mkdir(parents=True, exist_ok=True)
        for cam in cams:
            (root / "videos" / trial / f"{cam}.mp4").write_bytes(b"\x00" * 16)
    return root


def valid_doc() -> dict:
    return {
        "subject": {"id": "S01", "height_m": 1.75, "mass_kg": 70, "sex": "m"},
        "cameras": [{"id": "cam1", "device": "iPhone13,3"}, {"id": "cam2"}],
        "checkerboard": {"rows": 4, "cols": 7, "square_mm": 60, "placement": "vertical"},
        "trials": [{"name": "static1", "kind": "static"}, {"name": "squats1", "kind": "dynamic"}],
    }


VALID_VIDEOS = {"static1": ["cam1", "cam2"], "squats1": ["cam1", "cam2"]}
