from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, fields

import pytest
import yaml

from sessions.config import DEFAULT_CONFIG_PATH, ConfigError, apply_overrides, load_defaults, parse_set_args, section_digest
from sessions.settings import Settings


def test_every_default_has_a_comment():
    """config.yaml is the documented place for defaults: each setting has a comment above it."""
    lines = DEFAULT_CONFIG_PATH.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  ") and ":" in line and not line.strip().startswith("#"):
            above = lines[i - 1].strip()
            assert above.startswith("#") or lines[i - 1].startswith("  ") and not above.startswith("-"), line
    assert yaml.safe_load(DEFAULT_CONFIG_PATH.read_text()) == load_defaults()


def test_set_args_parse_yaml_values():
    assert parse_set_args(["frames.min_fps=25", "run.progress=false", "run.stages=[frames]"]) == {
        "frames": {"min_fps": 25}, "run": {"progress": False, "stages": ["frames"]},
    }
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_set_args(["frames.min_fps"])


def test_overrides_apply_in_order_and_keep_types():
    cfg = apply_overrides(load_defaults(), [("a", {"frames": {"min_fps": 20}}), ("b", {"frames": {"min_fps": 24}})])
    assert cfg["frames"]["min_fps"] == 24
    cfg = apply_overrides(load_defaults(), [("a", {"frames": {"irregular_interval_share": 1}})])
    assert isinstance(cfg["frames"]["irregular_interval_share"], float)
    assert load_defaults()["frames"]["min_fps"] == 30  # defaults untouched


def test_unknown_keys_and_types_are_all_reported():
    with pytest.raises(ConfigError) as info:
        apply_overrides(load_defaults(), [("--set", {"frames": {"min_fsp": 1, "contact_sheet": "yes"}, "nope": {"x": 1}, "run": 3})])
    text = "\n".join(info.value.problems)
    assert "unknown setting 'frames.min_fsp'. Did you mean 'frames.min_fps'?" in text
    assert "'frames.contact_sheet' must be bool" in text
    assert "unknown setting 'nope'" in text
    assert "'run' is a section" in text
    assert all(p.startswith("--set:") for p in info.value.problems)


def test_section_digest_tracks_only_its_sections():
    base = load_defaults()
    changed = apply_overrides(base, [("x", {"run": {"log_level": "debug"}})])
    assert section_digest(base, ("frames",)) == section_digest(changed, ("frames",))
    assert section_digest(base, ("run",)) != section_digest(changed, ("run",))


def test_typed_settings_name_exactly_the_keys_of_config_yaml_and_hold_no_defaults():
    defaults = load_defaults()
    s = Settings.from_config(defaults)
    assert [f.name for f in fields(Settings)] == list(defaults)
    for section in fields(Settings):
        cls = section.type if isinstance(section.type, type) else type(getattr(s, section.name))
        assert [f.name for f in fields(cls)] == list(defaults[section.name]), section.name
        assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(cls)), section.name
    assert s.filter.cutoffs_hz["squats"] == defaults["filter"]["cutoffs_hz"]["squats"]
    assert s.verdict.span_share == tuple(defaults["verdict"]["span_share"])


def test_typed_settings_follow_overrides_and_cannot_be_changed():
    s = Settings.from_config(apply_overrides(load_defaults(), [("--set", parse_set_args(["triangulate.outlier_px=12"]))]))
    assert s.triangulate.outlier_px == 12.0
    with pytest.raises(FrozenInstanceError):
        s.triangulate.outlier_px = 3.0
    with pytest.raises(TypeError):
        s.ik.marker_weights["default"] = 2.0  # mappings are read-only too
    broken = load_defaults()
    del broken["sync"]["rate_hz"]
    with pytest.raises(ValueError, match="sync.*missing \\['rate_hz'\\]"):
        Settings.from_config(broken)


def undocumented_keys(text: str) -> list[str]:
    """Keys of a config.yaml text with no comment above them or above the group of keys they belong to."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("  ") and not line.startswith("   ") and ":" in line and not line.strip().startswith("#"):
            j = i - 1
            while j >= 0 and (lines[j].startswith("   ") or (lines[j].startswith("  ") and not lines[j].strip().startswith("#"))):
                j -= 1  # continuation lines of a long value, and the keys of the same group
            if j < 0 or not lines[j].strip().startswith("#"):
                out.append(line.strip().split(":")[0])
    return out


def test_every_setting_is_documented_in_config_yaml():
    assert undocumented_keys("a:\n  # what b and c do\n  b: 1\n  c: 2\n\n  d: 3\nz:\n  e: 4\n") == ["d", "e"]
    assert not undocumented_keys(DEFAULT_CONFIG_PATH.read_text()), "config.yaml keys without a comment"


def test_open_sections_take_weights_or_angles():
    """Weight sections refuse negative values; the static pose's target angles may be negative; both merge
    into the defaults (a pattern set to 0 turns a default pull off)."""
    cfg = apply_overrides(load_defaults(), [("--set", {"scale": {"static_coordinate_targets_deg": {"ankle_angle_r": -5},
                                                                 "static_coordinate_weights": {"knee_angle_*": 0}}})])
    assert cfg["scale"]["static_coordinate_targets_deg"]["ankle_angle_r"] == -5.0
    assert cfg["scale"]["static_coordinate_weights"]["knee_angle_*"] == 0.0
    assert cfg["scale"]["static_coordinate_weights"]["ankle_angle_*"] > 0  # the other defaults stay
    with pytest.raises(ConfigError, match="'scale.static_coordinate_weights.knee_angle_r' must be a weight >= 0"):
        apply_overrides(load_defaults(), [("--set", {"scale": {"static_coordinate_weights": {"knee_angle_r": -1}}})])
    with pytest.raises(ConfigError, match="must be an angle in degrees"):
        apply_overrides(load_defaults(), [("--set", {"scale": {"static_coordinate_targets_deg": {"pro_sup_r": "palm in"}}})])
