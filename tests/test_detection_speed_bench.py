"""The detection speed benchmark (bench/detection_speed.py) at its CI size: it runs both backends and its
numbers are sane; float16 stays near float32 (a guard for the precision the GPU uses)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import SETTINGS, SHARED_DATA, needs_shared


@needs_shared
@pytest.mark.slow
def test_quick_detection_bench(tmp_path):
    from bench.detection_speed import main

    out = tmp_path / "speed.json"
    assert main(["--quick", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["decode"]["iter_frames_bgr"]["fps"] > 10
    assert all(r["fps_one_process"] > 1 for r in doc["mediapipe"])
    torch_rows = [r for r in doc["blazepose_torch"] if "fps" in r]
    assert torch_rows and all(r["fps"] > 0.2 and r["people_per_frame_kept"] >= 0.9 for r in torch_rows)
    half = doc["float16_vs_float32"]
    assert half["unmatched_people"] == 0 and half["median_px"] < 2.0
    assert {r["backend"] for r in doc["reference_trial"]["rows"]} >= {
        "mediapipe max_people 2, search every frame", f"mediapipe max_people 2, search every {SETTINGS.keypoints.people_search_s:g} s",
        "blazepose-torch 2 landmark passes"}
    assert SHARED_DATA.is_dir()
