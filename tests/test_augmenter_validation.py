"""The accuracy record kept next to the augmenter weights and shown in the report: what it keeps from the
benchmark's rows, when a trial may quote it, and that the shipped weights carry a record of themselves."""
from __future__ import annotations

import json

from biomech.report import build_document, render_html
from models.augmenter import DEFAULT_WEIGHTS
from core.digest import file_sha256
from models.augmenter_validation import (VALIDATED_COORDINATES, changed_sections, expected_accuracy, load_validation,
                                         measured_settings, summarise, validation_path)
from sessions.config import apply_overrides, load_defaults
from tests.test_report import _session


ACTIVITY = {"squats1": "squats", "DJ3": "drop jump", "DJ2": "drop jump"}  # as bench/lab_sessions.py names them


def _errors(value: float) -> dict:
    out = {}
    for c in VALIDATED_COORDINATES:
        for name in ((c,) if c.startswith(("pelvis", "lumbar")) else (f"{c}_r", f"{c}_l")):
            out[name] = {"mae": value + (1.0 if name.endswith("_l") else 0.0)}
    return out


def _row(trial: str, cameras: int, level: str, value: float) -> dict:
    return {"trial": trial, "activity": ACTIVITY[trial], "cameras": cameras, "level": level, "vs_ours_on_mocap": _errors(value),
            "vs_lab_ik": _errors(value + 10)}


def _record(config: dict) -> dict:
    rows = [_row("squats1", 2, "realistic", 5.0), _row("squats1", 3, "realistic", 4.0), _row("squats1", 2, "clean", 1.0),
            _row("DJ3", 2, "realistic", 3.0), _row("DJ2", 2, "realistic", 0.5),  # DJ2: tuned on, not held out
            {"trial": "walking4", "cameras": 2, "level": "realistic", "failed": ["boom"]}]
    return summarise(rows, {"squats1", "DJ3", "walking4"}, "abc", config, "2026-12-04")


def test_the_record_keeps_held_out_realistic_rows_per_activity_and_phones():
    rec = _record(load_defaults())
    assert set(rec["activities"]) == {"squats", "jump"}  # DJ3 is a drop jump; DJ2 not held out
    sq = rec["activities"]["squats"]
    assert sq["trial"] == "squats1" and set(sq["phones"]) == {"2", "3"}  # clean rows are not the record
    assert sq["phones"]["2"]["hip_flexion"] == {"vs_same_model_deg": 5.5, "vs_lab_ik_deg": 15.5}  # right/left mean
    assert sq["phones"]["2"]["pelvis_tilt"]["vs_same_model_deg"] == 5.0
    assert rec["activities"]["jump"]["phones"]["2"]["knee_angle"]["vs_same_model_deg"] == 3.5
    assert rec["failed"] == ["walking4 (2 phones)"]
    assert rec["settings"] == measured_settings(load_defaults())


def test_a_trial_quotes_the_record_only_for_the_weights_it_measured():
    cfg = load_defaults()
    rec = _record(cfg)
    acc, why = expected_accuracy(rec, "abc", "squats", 2, cfg)
    assert why == "" and acc.phones == 2 and acc.trial == "squats1" and not acc.notes
    assert acc.rows[0] == ("hip flexion", 5.5, 15.5, False) and ("pelvic tilt", 5.0, 15.0, True) in acc.rows
    acc, _ = expected_accuracy(rec, "abc", "squats", 4, cfg)  # more phones than measured: the nearest below
    assert acc.phones == 3 and acc.rows[0][1] == 4.5 and "had 4" in acc.notes[0]
    assert expected_accuracy(rec, "other weights", "squats", 2, cfg)[0] is None
    acc, why = expected_accuracy(rec, "abc", "walking", 2, cfg)  # its session failed: no record
    assert acc is None and "walking" in why and "squats" in why
    assert expected_accuracy(None, "abc", "squats", 2, cfg)[0] is None
    assert "measured with 2" in expected_accuracy(rec, "abc", "squats", 1, cfg)[1].lower()


def test_a_run_with_other_measured_settings_is_told_so():
    cfg = load_defaults()
    rec = _record(cfg)
    changed = apply_overrides(cfg, [("--set", {"ik": {"keypoint_weights": {"*": 2}}, "augment": {"weights": "x.pt"},
                                               "report": {"dpi": 50}})])
    # the weights' path and the report's settings do not count, the IK's do
    assert changed_sections(rec["settings"], changed) == ["ik.keypoint_weights"]
    acc, _ = expected_accuracy(json.loads(json.dumps(rec)), "abc", "squats", 2, changed)
    assert any("ik.keypoint_weights" in n for n in acc.notes)
    assert changed_sections(json.loads(json.dumps(rec))["settings"], cfg) == []  # a JSON round trip changes nothing


def test_the_report_shows_the_typical_errors_or_why_there_are_none():
    cfg = load_defaults()
    d = _session()
    acc, _ = expected_accuracy(_record(cfg), "abc", "squats", 2, cfg)
    d.trials[0].accuracy = acc
    d.trials[1].accuracy_note = "These augmenter weights have no accuracy measurement (no validation file next to them)."
    html = render_html(build_document(d))
    assert html.count("How accurate these angles are") == 2
    assert "typical error (deg)" in html and "<td>5.5</td>" in html and "<td>15.5</td>" in html
    assert "pelvic tilt *" in html and "no accuracy measurement" in html


def test_the_shipped_weights_carry_their_own_accuracy_record():
    """Retrained weights must be measured again (`python app.py bench accuracy --validation ...`): a record of
    other weights would put another model's errors in every report."""
    rec = load_validation(DEFAULT_WEIGHTS)
    assert rec is not None, f"{validation_path(DEFAULT_WEIGHTS)} missing"
    assert rec["weights_sha256"] == file_sha256(DEFAULT_WEIGHTS)
    assert {"squats", "sit_to_stand", "jump", "walking"} <= set(rec["activities"])
    assert rec["settings"] == measured_settings(load_defaults()), (
        "config.yaml changed a setting the accuracy record was measured with: measure again")
    for act in rec["activities"].values():
        for errs in act["phones"].values():
            assert all(0 < e["vs_same_model_deg"] < 30 for e in errs.values() if e["vs_same_model_deg"] is not None)
