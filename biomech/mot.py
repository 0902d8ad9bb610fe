"""Read and write coordinate files in OpenSim's ``.mot`` / ``.sto`` format.

Inside the project angles are radians; ``.mot`` files for users are written in degrees, as OpenSim
and OpenCap do. Which columns are angles: every column except time and translations. Translations
are the coordinates whose name ends in ``_tx``, ``_ty`` or ``_tz`` (OpenSim's naming for
``pelvis_tx`` and friends, and for knee translations), plus any names passed explicitly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TRANSLATION_SUFFIXES = ("_tx", "_ty", "_tz")


class MotError(ValueError):
    """A .mot/.sto file that cannot be read; the message names the file and the problem."""


def is_translation(name: str, extra: frozenset[str] = frozenset()) -> bool:
    return name.endswith(TRANSLATION_SUFFIXES) or name in extra


@dataclass
class CoordinateTable:
    """Coordinate (joint angle) trajectories.

    time_s: (frames,) seconds.
    names: column names, one per coordinate (time excluded).
    values: (frames, coordinates); angles in radians, translations in metres.
    """

    time_s: np.ndarray
    names: list[str]
    values: np.ndarray
    meta: dict[str, str] = field(default_factory=dict)
    translations: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.time_s = np.asarray(self.time_s, dtype=float)
        self.values = np.asarray(self.values, dtype=float).reshape(len(self.time_s), -1)
        if self.values.shape[1] != len(self.names):
            raise ValueError(f"values has {self.values.shape[1]} columns for {len(self.names)} names")

    def angle_mask(self) -> np.ndarray:
        """(coordinates,) True for rotational coordinates."""
        return np.array([not is_translation(n, self.translations) for n in self.names], dtype=bool)

    def column(self, name: str) -> np.ndarray:
        """(frames,) one coordinate, radians or metres."""
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"coordinate {name!r} not in table") from None

    def in_degrees(self) -> np.ndarray:
        """(frames, coordinates) with angles converted to degrees, translations untouched."""
        out = self.values.copy()
        out[:, self.angle_mask()] = np.degrees(out[:, self.angle_mask()])
        return out


def write_mot(path: str | Path, table: CoordinateTable, in_degrees: bool = True, name: str | None = None) -> Path:
    """Write ``table`` as an OpenSim .mot/.sto file; angles in degrees unless ``in_degrees`` is False."""
    path = Path(path)
    values = table.in_degrees() if in_degrees else table.values
    n_rows, n_cols = values.shape
    header = [
        name or path.stem,
        "version=1",
        f"nRows={n_rows}",
        f"nColumns={n_cols + 1}",
        f"inDegrees={'yes' if in_degrees else 'no'}",
        "endheader",
        "\t".join(["time", *table.names]),
    ]
    body = [
        "\t".join([f"{table.time_s[i]:.6f}", *("nan" if not np.isfinite(v) else f"{v:.8g}" for v in values[i])])
        for i in range(n_rows)
    ]
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("\n".join(header + body) + "\n")
    tmp.replace(path)
    return path


def read_mot(path: str | Path, translations: frozenset[str] | set[str] = frozenset()) -> CoordinateTable:
    """Read a .mot/.sto file; angles come back in radians whatever the file's ``inDegrees`` says.

    A file without an ``inDegrees`` line is taken as radians (OpenSim's default for .sto).
    """
    path = Path(path)
    if not path.is_file():
        raise MotError(f"{path}: file not found")
    lines = path.read_text(errors="replace").splitlines()
    meta: dict[str, str] = {}
    end = None
    for i, line in enumerate(lines):
        if line.strip().lower() == "endheader":
            end = i
            break
        if "=" in line:
            k, v = line.split("=", 1)
            meta[k.strip()] = v.strip()
    if end is None:
        raise MotError(f"{path}: no 'endheader' line; this is not an OpenSim .mot/.sto file")
    label_idx = end + 1
    while label_idx < len(lines) and not lines[label_idx].strip():
        label_idx += 1
    if label_idx >= len(lines):
        raise MotError(f"{path}: no column labels after 'endheader'")
    labels = [c.strip() for c in lines[label_idx].split("\t")]
    if len(labels) == 1:
        labels = lines[label_idx].split()
    if labels[0].lower() != "time":
        raise MotError(f"{path}: first column is {labels[0]!r}, expected 'time'")
    rows = []
    for lineno, line in enumerate(lines[label_idx + 1 :], start=label_idx + 2):
        if not line.strip():
            continue
        try:
            row = [float(x) for x in line.split()]
        except ValueError as exc:
            raise MotError(f"{path}, line {lineno}: {exc}") from None
        if len(row) != len(labels):
            raise MotError(f"{path}, line {lineno}: {len(row)} values for {len(labels)} columns")
        rows.append(row)
    arr = np.asarray(rows, dtype=float).reshape(len(rows), len(labels))
    table = CoordinateTable(arr[:, 0], labels[1:], arr[:, 1:], meta, frozenset(translations))
    if meta.get("inDegrees", "no").lower() == "yes":
        mask = table.angle_mask()
        table.values[:, mask] = np.radians(table.values[:, mask])
    return table
