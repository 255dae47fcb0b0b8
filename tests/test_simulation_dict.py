"""Simulation.to_dict / from_dict keep every structure-factor source and the mask."""
import json
from pathlib import Path

import numpy as np
import pytest

from arraybragg import from_nanobragg_args
from arraybragg.hkl import HKLTable
from arraybragg.simulation import Simulation

DATA = Path(__file__).parent / "data"
BASE = ["-cell", "32", "35", "38", "80", "96", "104", "-N", "2", "-detpixels", "16", "-pixel", "0.5",
        "-distance", "60"]


def _round_trip(sim):
    return Simulation.from_dict(json.loads(json.dumps(sim.to_dict())))


@pytest.mark.parametrize("extra", [["-hkl", str(DATA / "inputs" / "P1.hkl")],
                                   ["-dump", str(DATA / "files" / "A.Fdump.bin")],
                                   ["-hkl", str(DATA / "inputs" / "P1.hkl"), "-nanobragg_compat"]])
def test_tables_read_from_files_round_trip(extra):
    sim = from_nanobragg_args(BASE + extra)
    np.testing.assert_array_equal(_round_trip(sim).run(), sim.run())


def test_a_table_made_in_python_is_kept_inline_with_its_holes():
    grid = np.full((5, 5, 5), 50.0)
    grid[2, 2, 2] = np.nan
    sim = from_nanobragg_args(BASE + ["-default_F", "7"]).replace(hkl=HKLTable(grid, (-2, -2, -2)))
    data = sim.to_dict()
    assert data["crystal"]["hkl_table"]["grid"][2][2][2] is None
    again = _round_trip(sim)
    np.testing.assert_array_equal(again.crystal.hkl.filled(7.0), np.where(np.isnan(grid), 7.0, grid))
    np.testing.assert_array_equal(again.run(), sim.run())


def test_a_table_too_small_to_interpolate_falls_back_to_the_nearest_entry():
    grid = np.full((3, 3, 3), 50.0)
    sim = from_nanobragg_args(BASE + ["-default_F", "7", "-interpolate"]).replace(hkl=HKLTable(grid, (-1, -1, -1)))
    nearest = sim.replace(interpolate=False)
    np.testing.assert_array_equal(sim.run(), nearest.run())


def test_mask_round_trips():
    mask = np.zeros((16, 16), dtype=bool)
    mask[3:9, 4:12] = True
    sim = from_nanobragg_args(BASE + ["-default_F", "7"]).replace(mask=mask)
    image = sim.run()
    assert np.all(image[~mask] == 0.0) and np.all(image[mask] > 0.0)
    np.testing.assert_array_equal(_round_trip(sim).run(), image)


def test_replace_resets_what_was_derived_from_the_changed_parameter(tmp_path, monkeypatch):
    sim = from_nanobragg_args(BASE + ["-hkl", str(DATA / "inputs" / "P1.hkl"), "-detector_thick", "100",
                                      "-hdivrange", "1", "-hdivsteps", "3"])
    table = HKLTable(np.full((5, 5, 5), 20.0), (-2, -2, -2))
    swapped = sim.replace(hkl=table)
    assert swapped.crystal.hkl_path is None
    np.testing.assert_array_equal(_round_trip(swapped).run(), swapped.run())
    thicker = sim.replace(detector_thick_um=400.0)
    assert (thicker.detector.detector_thicksteps, thicker.detector.detector_thickstep_um) == (2, 200.0)
    wider = sim.replace(hdivrange_mrad=2.0)
    assert (wider.beam.hdivsteps, wider.beam.hdivstep_mrad) == (3, 1.0)


def test_input_paths_are_recorded_absolute(tmp_path, monkeypatch):
    (tmp_path / "inputs").symlink_to(DATA / "inputs")
    monkeypatch.chdir(tmp_path)
    sim = from_nanobragg_args(BASE + ["-hkl", "inputs/P1.hkl"])
    assert Path(sim.crystal.hkl_path).is_absolute()
    monkeypatch.chdir(DATA)
    np.testing.assert_array_equal(_round_trip(sim).run(), sim.run())


def test_too_many_evaluations_per_subpixel_is_a_clear_error():
    with pytest.raises(ValueError, match="mosaic_domains"):
        from_nanobragg_args(BASE + ["-default_F", "1", "-mosaic", "1", "-mosaic_dom", "5000000"]).run()
