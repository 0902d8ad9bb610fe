"""The .mot/.sto reader/writer against OpenSim's own readers and real IK results."""
from __future__ import annotations

import numpy as np
import opensim
import pytest

from biomech.mot import CoordinateTable, MotError, read_mot, write_mot
from tests.conftest import SHARED_DATA, needs_shared


def opensim_table(path) -> tuple[list[str], np.ndarray, np.ndarray, str]:
    t = opensim.TimeSeriesTable(str(path))
    names = list(t.getColumnLabels())
    vals = np.column_stack([t.getDependentColumn(n).to_numpy() for n in names])
    return names, np.array(t.getIndependentColumn()), vals, t.getTableMetaDataAsString("inDegrees")


def sample() -> CoordinateTable:
    time = np.arange(50) / 60.0
    knee = np.radians(60) * (1 - np.cos(2 * np.pi * time))
    return CoordinateTable(time, ["pelvis_tilt", "pelvis_ty", "knee_angle_r"],
                           np.column_stack([0.1 * np.sin(time), 0.9 + 0.01 * time, knee]))


def test_written_mot_reads_back_in_opensim_in_degrees(tmp_path):
    table = sample()
    path = write_mot(tmp_path / "ik.mot", table)
    names, time, vals, in_deg = opensim_table(path)
    assert names == table.names and in_deg == "yes"
    np.testing.assert_allclose(time, table.time_s, atol=1e-6)
    np.testing.assert_allclose(vals[:, 0], np.degrees(table.values[:, 0]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(vals[:, 1], table.values[:, 1], rtol=1e-6)  # translation stays metres
    np.testing.assert_allclose(vals[:, 2], np.degrees(table.values[:, 2]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("degrees", [True, False])
def test_roundtrip_returns_radians(tmp_path, degrees):
    table = sample()
    back = read_mot(write_mot(tmp_path / "ik.sto", table, in_degrees=degrees))
    assert back.names == table.names
    np.testing.assert_allclose(back.values, table.values, rtol=1e-7, atol=1e-9)


def test_reads_sto_written_by_opensim(tmp_path):
    t = opensim.TimeSeriesTable()
    t.setColumnLabels(["hip_flexion_r", "pelvis_tx"])
    for i in range(3):
        row = opensim.RowVector(2)
        row[0], row[1] = 10.0 * i, 0.5 * i
        t.appendRow(0.1 * i, row)
    t.addTableMetaDataString("inDegrees", "yes")
    opensim.STOFileAdapter().write(t, str(tmp_path / "os.sto"))
    back = read_mot(tmp_path / "os.sto")
    np.testing.assert_allclose(back.column("hip_flexion_r"), np.radians([0, 10, 20]))
    np.testing.assert_allclose(back.column("pelvis_tx"), [0, 0.5, 1.0])


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(MotError, match="not found"):
        read_mot(tmp_path / "none.mot")
    (tmp_path / "x.mot").write_text("time\ta\n0\t1\n")
    with pytest.raises(MotError, match=r"x\.mot: no 'endheader'"):
        read_mot(tmp_path / "x.mot")
    (tmp_path / "y.mot").write_text("y\nendheader\ntime\ta\n0\t1\t2\n")
    with pytest.raises(MotError, match=r"y\.mot, line 4: 3 values for 2 columns"):
        read_mot(tmp_path / "y.mot")


@needs_shared
@pytest.mark.parametrize("trial", ["static1", "squats1", "walking1", "STS1"])
def test_real_ik_files_match_opensim(trial, tmp_path):
    path = SHARED_DATA / "opencap-labval-subject4" / "IK" / f"{trial}_ik.mot"
    ours = read_mot(path)
    names, time, vals, in_deg = opensim_table(path)
    assert ours.names == names and in_deg == "no"
    np.testing.assert_allclose(ours.time_s, time)
    np.testing.assert_allclose(ours.values, vals)
    # and our degrees rewrite of it reads back in OpenSim as the same motion
    names2, _, vals2, _ = opensim_table(write_mot(tmp_path / "deg.mot", ours))
    np.testing.assert_allclose(vals2, ours.in_degrees(), rtol=1e-6, atol=1e-5)
    if trial == "squats1":
        assert 80 < np.degrees(ours.column("knee_angle_r")).max() < 130  # a real squat's knee flexion
