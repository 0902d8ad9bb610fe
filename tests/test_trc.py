"""The .trc reader/writer against OpenSim's own TRCFileAdapter and real lab files."""
from __future__ import annotations

import numpy as np
import opensim
import pytest

from biomech.trc import MarkerTable, TrcError, read_trc, write_trc
from tests.conftest import SHARED_DATA, needs_shared


def opensim_markers(path) -> tuple[list[str], np.ndarray, np.ndarray, str]:
    """Read a .trc with OpenSim: names, time (frames,), positions (frames, markers, 3), units."""
    table = opensim.TimeSeriesTableVec3(str(path))
    names = list(table.getColumnLabels())
    flat = table.flatten()
    data = np.array([[flat.getRowAtIndex(i)[j] for j in range(flat.getNumColumns())] for i in range(flat.getNumRows())])
    time = np.array(table.getIndependentColumn())
    return names, time, data.reshape(len(time), len(names), 3), table.getTableMetaDataAsString("Units")


def sample_table(n_frames=40, rate=60.0) -> MarkerTable:
    rng = np.random.default_rng(0)
    pos = rng.normal(0, 0.5, (n_frames, 4, 3))
    pos[5, 1] = np.nan  # a missing marker mid-trial
    pos[-1, 3] = np.nan  # and one in the last column, last row
    return MarkerTable(np.arange(n_frames) / rate, ["RKnee", "LKnee", "r.ASIS_study", "midHip"], pos, rate)


@pytest.mark.parametrize("units", ["m", "mm"])
def test_written_trc_reads_back_in_opensim(tmp_path, units):
    table = sample_table()
    path = write_trc(tmp_path / "markers.trc", table, units=units)
    names, time, pos, file_units = opensim_markers(path)
    assert names == table.names
    assert file_units == units
    np.testing.assert_allclose(time, table.time_s, atol=1e-6)
    scale = 1000.0 if units == "mm" else 1.0
    np.testing.assert_allclose(pos, table.positions_m * scale, atol=2e-6 * scale, equal_nan=True)
    assert np.isnan(pos[5, 1]).all() and np.isnan(pos[-1, 3]).all()


@pytest.mark.parametrize("units", ["m", "mm"])
def test_roundtrip_is_in_metres(tmp_path, units):
    table = sample_table()
    back = read_trc(write_trc(tmp_path / "m.trc", table, units=units))
    assert back.names == table.names and back.rate_hz == 60.0
    np.testing.assert_allclose(back.positions_m, table.positions_m, atol=2e-6, equal_nan=True)


def test_reads_tables_written_by_opensim(tmp_path):
    t = opensim.TimeSeriesTableVec3()
    t.setColumnLabels(["A", "B"])
    nan = float("nan")
    t.appendRow(0.0, opensim.RowVectorVec3([opensim.Vec3(1, 2, 3), opensim.Vec3(nan, nan, nan)]))
    t.appendRow(0.01, opensim.RowVectorVec3([opensim.Vec3(4, 5, 6), opensim.Vec3(7, 8, 9)]))
    t.addTableMetaDataString("DataRate", "100")
    t.addTableMetaDataString("Units", "mm")
    opensim.TRCFileAdapter().write(t, str(tmp_path / "os.trc"))
    back = read_trc(tmp_path / "os.trc")
    assert back.names == ["A", "B"] and back.rate_hz == 100.0
    np.testing.assert_allclose(back.positions_m[1], [[0.004, 0.005, 0.006], [0.007, 0.008, 0.009]])
    assert np.isnan(back.positions_m[0, 1]).all()


def test_empty_fields_from_other_tools_are_missing(tmp_path):
    text = (
        "PathFileType\t4\t(X/Y/Z)\tx.trc\n"
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames\n"
        "50\t50\t2\t2\tmm\t50\t1\t2\nFrame#\tTime\tA\t\t\tB\nX1\tY1\tZ1\tX2\tY2\tZ2\n\n"
        "1\t0\t1\t2\t3\t\t\t\n2\t0.02\t1\t2\t3\t4\t5\t6\n"
    )
    (tmp_path / "x.trc").write_text(text)
    back = read_trc(tmp_path / "x.trc")
    assert np.isnan(back.positions_m[0, 1]).all()
    np.testing.assert_allclose(back.positions_m[1, 1], [0.004, 0.005, 0.006])


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(TrcError, match="not found"):
        read_trc(tmp_path / "missing.trc")
    (tmp_path / "notes.trc").write_text("hello\nworld\n")
    with pytest.raises(TrcError, match=r"notes\.trc: not a \.trc file"):
        read_trc(tmp_path / "notes.trc")


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="expected"):
        MarkerTable(np.arange(3), ["A"], np.zeros((3, 2, 3)), 100.0)


@needs_shared
@pytest.mark.parametrize("trial", ["static1", "squats1"])
def test_real_lab_trc_matches_opensim(trial):
    path = SHARED_DATA / "opencap-labval-subject4" / "MarkerData" / f"{trial}.trc"
    ours = read_trc(path)
    names, time, pos, units = opensim_markers(path)
    assert ours.names == names and units == "m" and ours.rate_hz == 100.0
    np.testing.assert_allclose(ours.time_s, time)
    np.testing.assert_allclose(ours.positions_m, pos, equal_nan=True)
    assert 1.0 < np.nanmax(ours.marker("C7")[:, 1]) < 1.7  # C7 height in metres: the file is in metres


@needs_shared
def test_real_lab_trc_survives_our_rewrite(tmp_path):
    ours = read_trc(SHARED_DATA / "opencap-labval-subject4" / "MarkerData" / "static1.trc")
    names, _, pos, _ = opensim_markers(write_trc(tmp_path / "static1_mm.trc", ours, units="mm"))
    assert names == ours.names
    np.testing.assert_allclose(pos / 1000.0, ours.positions_m, atol=1e-6, equal_nan=True)
