"""Coordinate comparison: known shift, offsets and partial overlap; the compare command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app import main
from biomech.compare import CompareError, compare_tables, write_comparison
from biomech.mot import CoordinateTable, read_mot, write_mot


def _tables(shift_s: float = 0.137):
    t_ref = np.arange(0, 6, 0.01)  # mocap 100 Hz
    t_ours = np.arange(0, 5, 1 / 60)  # video 60 fps, started later
    def knee(t):
        return np.radians(45 + 40 * np.sin(2 * np.pi * t / 2.3) + 10 * np.sin(2 * np.pi * t / 0.9))
    def hip(t):
        return np.radians(30 * np.sin(2 * np.pi * t / 2.3 + 0.4))
    ref = CoordinateTable(t_ref, ["knee_angle_r", "hip_flexion_r", "pelvis_tx", "mtp_angle_r"],
                          np.column_stack([knee(t_ref), hip(t_ref), 0.1 * np.sin(t_ref), np.zeros_like(t_ref)]))
    ours_t = t_ours + shift_s  # our t=0 is the reference's t=shift
    ours = CoordinateTable(t_ours, ["knee_angle_r", "hip_flexion_r", "pelvis_tx", "elbow_flex_r"],
                           np.column_stack([knee(ours_t) + np.radians(3), hip(ours_t) * 1.1, 0.1 * np.sin(ours_t),
                                            np.zeros_like(t_ours)]))
    return ours, ref


def test_finds_shift_offset_and_rom():
    ours, ref = _tables(0.137)
    cmp = compare_tables(ours, ref, max_shift_s=1.0)
    assert cmp.shift_s == pytest.approx(0.137, abs=0.004)
    rows = {r["coordinate"]: r for r in cmp.table()}
    assert set(rows) == {"knee_angle_r", "hip_flexion_r", "pelvis_tx"}
    assert rows["knee_angle_r"]["offset"] == pytest.approx(3.0, abs=0.1)
    assert rows["knee_angle_r"]["mae"] == pytest.approx(3.0, abs=0.1)
    assert rows["knee_angle_r"]["pearson_r"] > 0.999
    assert rows["hip_flexion_r"]["rom_diff"] == pytest.approx(6.0, abs=0.3)  # 10 % of a 60 deg ROM
    assert rows["pelvis_tx"]["unit"] == "mm" and rows["pelvis_tx"]["mae"] < 1.0
    assert cmp.only_ours == ["elbow_flex_r"] and cmp.only_ref == ["mtp_angle_r"]


def test_no_shared_coordinates_is_a_clear_error():
    ours, ref = _tables()
    ref = CoordinateTable(ref.time_s, ["a", "b", "c", "d"], ref.values)
    with pytest.raises(CompareError, match="no coordinate names in common"):
        compare_tables(ours, ref, max_shift_s=2.0)


def test_outputs_and_cli(tmp_path, capsys):
    ours, ref = _tables(0.05)
    write_mot(tmp_path / "ours.mot", ours)
    write_mot(tmp_path / "ref.mot", ref)
    paths = write_comparison(compare_tables(read_mot(tmp_path / "ours.mot"), read_mot(tmp_path / "ref.mot"), max_shift_s=2.0), tmp_path / "w")
    assert paths["png"].stat().st_size > 10_000 and paths["csv"].read_text().startswith("coordinate,unit,rmse")
    assert main(["compare", str(tmp_path / "ours.mot"), str(tmp_path / "ref.mot"), "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "knee_angle_r" in out and "not compared" in out
    summary = json.loads((tmp_path / "cli" / "comparison.json").read_text())
    assert summary["time_shift_s"] == pytest.approx(0.05, abs=0.004)
    # A .trc reference without the static trial and subject is refused with what to give.
    (tmp_path / "mocap.trc").write_text("x")
    assert main(["compare", str(tmp_path / "ours.mot"), str(tmp_path / "mocap.trc")]) == 2
    assert "--static" in capsys.readouterr().err
