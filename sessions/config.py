"""Configuration: defaults from ``config.yaml``, overridden by a session and then the command line.

Overrides must name keys that exist in the defaults and keep their type, so a typo such as
``frames.contact_sheet_frame=4`` is an error, never a silently ignored setting.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"


class ConfigError(ValueError):
    """Bad configuration; ``problems`` lists every problem found, each naming its source."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def load_defaults(path: Path = DEFAULT_CONFIG_PATH) -> dict[str, Any]:
    with open(path) as fh:
        cfg = yaml.safe_load(fh)
    if not isinstance(cfg, dict):
        raise ConfigError([f"{path}: expected a mapping of sections"])
    return cfg


def _flat_keys(d: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        keys.append(prefix + k)
        if isinstance(v, dict):
            keys += _flat_keys(v, prefix + k + ".")
    return keys


def _type_ok(default: Any, value: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, list)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return type(value) is type(default)


# Sections whose keys are the user's own names (marker names or patterns), not a fixed schema.
OPEN_SECTIONS = {"ik.marker_weights", "ik.video_coordinate_weights"}


def _merge(base: dict, over: dict, source: str, known: list[str], prefix: str, problems: list[str]) -> None:
    if prefix.rstrip(".") in OPEN_SECTIONS:
        for key, value in over.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                problems.append(f"{source}: '{prefix}{key}' must be a weight >= 0, got {value!r}")
            else:
                base[str(key)] = float(value)
        return
    for key, value in over.items():
        full = prefix + str(key)
        if key not in base:
            close = difflib.get_close_matches(full, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else " See config.yaml for the keys that exist."
            problems.append(f"{source}: unknown setting '{full}'.{hint}")
            continue
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                problems.append(f"{source}: '{full}' is a section; give it keys, e.g. {full}.<key>=<value>")
            else:
                _merge(default, value, source, known, full + ".", problems)
            continue
        if not _type_ok(default, value):
            problems.append(
                f"{source}: '{full}' must be {type(default).__name__} like the default {default!r}, "
                f"got {value!r}"
            )
            continue
        base[key] = float(value) if isinstance(default, float) else value


def apply_overrides(cfg: dict[str, Any], overrides: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Return a copy of ``cfg`` with each ``(source, nested_overrides)`` applied in order.

    Raises ConfigError listing every unknown key and type mismatch, each with its source.
    """
    out = copy.deepcopy(cfg)
    known = _flat_keys(cfg)
    problems: list[str] = []
    for source, over in overrides:
        if over is None:
            continue
        if not isinstance(over, dict):
            problems.append(f"{source}: settings must be a mapping of sections, got {type(over).__name__}")
            continue
        _merge(out, over, source, known, "", problems)
    if problems:
        raise ConfigError(problems)
    return out


def parse_set_args(items: list[str]) -> dict[str, Any]:
    """``["frames.min_fps=25", ...]`` -> nested dict; values are parsed as YAML (numbers, lists, bools)."""
    nested: dict[str, Any] = {}
    problems = []
    for item in items:
        if "=" not in item:
            problems.append(f"--set {item}: expected KEY=VALUE, e.g. --set frames.min_fps=25")
            continue
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    if problems:
        raise ConfigError(problems)
    return nested


def section_digest(cfg: dict[str, Any], sections: tuple[str, ...]) -> str:
    """A stable hash of the named config sections (what a stage's outputs depend on)."""
    blob = json.dumps({s: cfg.get(s) for s in sections}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
