from __future__ import annotations

import pytest
import yaml

from sessions.config import DEFAULT_CONFIG_PATH, ConfigError, apply_overrides, load_defaults, parse_set_args, section_digest


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
