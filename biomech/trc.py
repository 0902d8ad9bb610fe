"""Read and write marker files in OpenSim's ``.trc`` format.

Inside the project markers are always metres; a file in millimetres (or cm) is converted on read
and may be written in millimetres on request. Missing samples are NaN in memory and ``nan`` on disk,
as OpenSim's own ``TRCFileAdapter`` writes them (it rejects rows with empty trailing fields);
empty fields written by other tools are read as NaN too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

UNIT_TO_M = {"m": 1.0, "mm": 1e-3, "cm": 1e-2}


class TrcError(ValueError):
    """A .trc file that cannot be read; the message names the file and the problem."""


@dataclass
class MarkerTable:
    """Marker trajectories.

    time_s: (frames,) seconds.
    names: marker names, one per marker.
    positions_m: (frames, markers, 3) metres, NaN where a marker is missing.
    rate_hz: the data rate written to the header.
    """

    time_s: np.ndarray
    names: list[str]
    positions_m: np.ndarray
    rate_hz: float
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.time_s = np.asarray(self.time_s, dtype=float)
        self.positions_m = np.asarray(self.positions_m, dtype=float)
        n = len(self.time_s)
        if self.positions_m.shape != (n, len(self.names), 3):
            raise ValueError(
                f"positions_m has shape {self.positions_m.shape}, expected ({n}, {len(self.names)}, 3)"
            )
        if len(set(self.names)) != len(self.names):
            dupes = sorted({m for m in self.names if self.names.count(m) > 1})
            raise ValueError(f"duplicate marker names: {dupes}")

    def marker(self, name: str) -> np.ndarray:
        """(frames, 3) metres of one marker."""
        try:
            return self.positions_m[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"marker {name!r} not in table (has {len(self.names)} markers)") from None

    def subset(self, names: list[str]) -> "MarkerTable":
        idx = [self.names.index(n) for n in names]
        return MarkerTable(self.time_s.copy(), list(names), self.positions_m[:, idx].copy(), self.rate_hz)


def _fmt(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.6f}"


def write_trc(path: str | Path, table: MarkerTable, units: str = "m") -> Path:
    """Write ``table`` to ``path`` in ``units`` ('m' or 'mm'); returns the path."""
    if units not in ("m", "mm"):
        raise ValueError(f"units must be 'm' or 'mm', got {units!r}")
    path = Path(path)
    scale = 1.0 / UNIT_TO_M[units]
    n_frames, n_markers = len(table.time_s), len(table.names)
    rate = f"{table.rate_hz:g}"
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate}\t{rate}\t{n_frames}\t{n_markers}\t{units}\t{rate}\t1\t{n_frames}",
        "Frame#\tTime\t" + "\t".join(f"{m}\t\t" for m in table.names).rstrip("\t"),
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, n_markers + 1)),
        "",
    ]
    data = table.positions_m.reshape(n_frames, -1) * scale
    for i in range(n_frames):
        lines.append(f"{i + 1}\t{table.time_s[i]:.6f}\t" + "\t".join(_fmt(v) for v in data[i]))
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def read_trc(path: str | Path) -> MarkerTable:
    """Read a .trc file (any rate, units m/mm/cm) into metres."""
    path = Path(path)
    if not path.is_file():
        raise TrcError(f"{path}: file not found")
    raw = path.read_text(errors="replace").splitlines()
    if len(raw) < 5 or not raw[0].startswith("PathFileType"):
        raise TrcError(f"{path}: not a .trc file (first line should start with 'PathFileType')")
    keys = raw[1].split("\t")
    values = raw[2].split("\t")
    meta = {k.strip(): v.strip() for k, v in zip(keys, values)}
    units = meta.get("Units", "m").lower()
    if units not in UNIT_TO_M:
        raise TrcError(f"{path}: unknown Units {meta.get('Units')!r}; expected m, mm or cm")
    try:
        rate = float(meta.get("DataRate", "nan"))
    except ValueError:
        raise TrcError(f"{path}: DataRate {meta.get('DataRate')!r} is not a number") from None
    header = raw[3].split("\t")
    names = [h.strip() for h in header[2:] if h.strip()]
    rows = []
    for lineno, line in enumerate(raw[5:], start=6):
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        try:
            vals = [float(f) if f.strip() else np.nan for f in fields[1 : 2 + 3 * len(names)]]
        except ValueError as exc:
            raise TrcError(f"{path}, line {lineno}: {exc}") from None
        vals += [np.nan] * (1 + 3 * len(names) - len(vals))  # trailing missing markers
        rows.append(vals)
    if not rows:
        raise TrcError(f"{path}: header only, no frames")
    arr = np.asarray(rows, dtype=float)
    positions = arr[:, 1:].reshape(len(rows), len(names), 3) * UNIT_TO_M[units]
    if not np.isfinite(rate):
        dt = np.diff(arr[:, 0])
        rate = float(1.0 / np.median(dt)) if len(dt) else 0.0
    return MarkerTable(arr[:, 0], names, positions, rate, meta)
