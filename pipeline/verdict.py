"""A verdict per trial: ok / doubtful / unusable, with the reasons in plain words.

The numbers are the ones the stages already compute and keep in their manifests (share of points
triangulated, reprojection error against the cameras' resolution, sync confidence, how much of the
trial is analysable, bridged frames, IK marker error, joint angles outside the model's range, how
consistently the subject was followed). Each is judged against a 'doubtful' and an 'unusable' limit
from ``config.yaml`` (section ``verdict``); the trial takes the worst level, and a failed stage makes
it unusable. A trial whose chain stopped early without failing (``run.stages`` left stages out) is
'incomplete': nothing to judge joint angles by.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.levels import DOUBTFUL, INCOMPLETE, OK, UNUSABLE
from sessions.settings import VerdictSettings
from pipeline.runner import BLOCKED, DONE, FAILED, UP_TO_DATE, Outcome, read_manifest

RANK = {OK: 0, INCOMPLETE: 1, DOUBTFUL: 2, UNUSABLE: 3}
# The stage whose outputs a trial's verdict is about (joint angles), per trial kind.
FINAL_STAGE = {"static": "scale", "dynamic": "ik"}


@dataclass
class Verdict:
    level: str
    reasons: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One quality number: where it comes from, which way is bad, and how to say it."""

    key: str  # the config.yaml verdict.<key> limits [doubtful, unusable]
    stage: str
    value: Callable[[dict[str, Any]], float | None]  # from the stage's manifest summary
    higher_is_worse: bool
    says: str  # '{v}' is the formatted value, '{d}' / '{u}' the limits
    unit: Callable[[float], str] = lambda v: f"{v:.0f}"
    kinds: tuple[str, ...] = ("static", "dynamic")


def grade(value: float, doubtful: float, unusable: float, higher_is_worse: bool) -> str:
    """ok / doubtful / unusable for one number against its two limits."""
    worse = (lambda a, b: a > b) if higher_is_worse else (lambda a, b: a < b)
    return UNUSABLE if worse(value, unusable) else DOUBTFUL if worse(value, doubtful) else OK


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def _min_of(d: dict | None) -> float | None:
    return min(d.values()) if d else None


def _per_1000px(s: dict) -> float | None:
    med, h = s.get("reprojection_px_median"), s.get("image_height_px")
    return None if med is None or not h else 1000.0 * med / h


def _worst_out_of_range(s: dict) -> float | None:
    frames = s.get("frames")
    out = s.get("out_of_range")
    if not frames or out is None:
        return None
    return max(out.values(), default=0) / frames


CHECKS = [
    Check("subject_coverage", "keypoints", lambda s: _min_of(s.get("subject_coverage")), False,
          "the subject was followed in only {v} of the frames of one camera (doubtful below {d}, unusable below {u}); "
          "check the overlays in keypoints/ for the person followed", _pct),
    Check("sync_confidence", "sync", lambda s: _min_of(s.get("confidence")), False,
          "the cameras' movements agree with a correlation of only {v} after synchronisation (doubtful below {d}, "
          "unusable below {u}); the time offsets may be wrong", lambda v: f"{v:.2f}",
          kinds=("dynamic",)),  # someone standing still gives nothing to correlate, and needs no sync
    Check("triangulated_share", "triangulate", lambda s: s.get("triangulated"), False,
          "only {v} of the keypoint positions could be triangulated (doubtful below {d}, unusable below {u})", _pct),
    Check("reprojection_px_per_1000px", "triangulate", _per_1000px, True,
          "the cameras' views disagree by {v} px per 1000 px of image (median reprojection error; doubtful above {d}, "
          "unusable above {u}): the calibration may not fit these videos, or the cameras followed different people",
          lambda v: f"{v:.0f}"),
    Check("span_share", "filter", lambda s: s.get("span_share"), False,
          "only {v} of the trial could be analysed (keypoints missing at its start or end; doubtful below {d}, "
          "unusable below {u})", _pct),
    Check("filled_share", "filter", lambda s: s.get("filled_share"), True,
          "{v} of the body keypoint positions were not triangulated but filled in over short gaps (doubtful above "
          "{d}, unusable above {u})", _pct),
    Check("bridged_frame_share", "augment", lambda s: s.get("bridged_core_frame_share"), True,
          "{v} of the frames have a body keypoint missing for longer than augment.max_gap_s, so some markers and "
          "joint angles are empty there (doubtful above {d}, unusable above {u})", _pct),
    Check("static_marker_rms_mm", "scale", lambda s: s.get("static_marker_rms_mm"), True,
          "the scaled model fits the standing pose with {v} mm RMS marker error (doubtful above {d}, unusable above {u})",
          lambda v: f"{v:.0f}"),
    Check("ik_marker_rms_mm", "ik", lambda s: s.get("marker_rms_mean_mm"), True,
          "the model follows the markers with {v} mm RMS error on average (doubtful above {d}, unusable above {u}); "
          "joint angles are unreliable when the model cannot follow the markers", lambda v: f"{v:.0f}"),
    Check("ik_flagged_share", "ik", lambda s: s.get("flagged_share"), True,
          "{v} of the frames have a marker error above ik.flag_rms_mm (doubtful above {d}, unusable above {u})", _pct),
    Check("out_of_range_share", "ik", _worst_out_of_range, True,
          "a joint angle is outside the model's range of motion in {v} of the frames (doubtful above {d}, "
          "unusable above {u})", _pct),
]


def judge(summaries: dict[str, dict[str, Any]], limits: VerdictSettings, kind: str) -> Verdict:
    """Judge a trial of ``kind`` from its stages' summaries (stage -> manifest summary) against
    ``limits`` (each check's (doubtful, unusable) limits)."""
    level, reasons, numbers = OK, [], {}
    for check in CHECKS:
        if check.stage not in summaries or kind not in check.kinds:
            continue
        v = check.value(summaries[check.stage])
        if v is None:
            continue
        numbers[check.key] = round(float(v), 4)
        doubtful, unusable = getattr(limits, check.key)
        found = grade(v, doubtful, unusable, check.higher_is_worse)
        if found != OK:
            reasons.append(f"{found}: " + check.says.format(v=check.unit(v), d=check.unit(doubtful),
                                                           u=check.unit(unusable)))
            level = max(level, found, key=RANK.get)
    return Verdict(level, reasons, numbers)


def trial_verdict(output_dir: Path, trial: str, kind: str, outcomes: list[Outcome],
                  limits: VerdictSettings) -> Verdict:
    """The verdict of one trial after a run: failed stages first, then the quality numbers."""
    mine = [o for o in outcomes if o.trial == trial]
    failed = [o for o in mine if o.status == FAILED]
    summaries = {}
    for o in mine:
        if o.status in (DONE, UP_TO_DATE):
            m = read_manifest(output_dir / trial / o.stage)
            if m is not None:
                summaries[o.stage] = m.get("summary", {})
    verdict = judge(summaries, limits, kind)
    ik = summaries.get("ik", {})
    if ik.get("model_scaled_on") == "height only":  # no static trial, or its scale stage did not finish
        verdict.level = max(verdict.level, DOUBTFUL, key=RANK.get)
        verdict.reasons.append(f"doubtful: joint angles on the generic model scaled to the subject's height only: "
                               f"{ik['model_note']}")
    if failed:
        verdict.level = UNUSABLE
        verdict.reasons[:0] = [f"unusable: stage {o.stage} failed: {o.message}" for o in failed]
    elif FINAL_STAGE[kind] not in summaries:
        blocked = [o for o in mine if o.status == BLOCKED and o.stage == FINAL_STAGE[kind]]
        why = f" ({blocked[0].message})" if blocked else ""
        failed_keys = {f"{o.trial}/{o.stage}" for o in outcomes if o.status == FAILED}
        if blocked and failed_keys & set(blocked[0].waits_for):  # waits for another trial's failed stage
            verdict.level = UNUSABLE
            verdict.reasons.insert(0, f"unusable: no {FINAL_STAGE[kind]} result{why}")
        elif verdict.level == OK:
            verdict.level = INCOMPLETE
            verdict.reasons.insert(0, f"incomplete: the run did not reach the {FINAL_STAGE[kind]} stage{why}")
    return verdict
