"""Parameter dataclasses: validation naming the field, Simulation.replace routing, to_dict/from_dict."""

import json
import math

import numpy as np
import pytest

import arraybragg
from arraybragg import Beam, Crystal, Detector, Sampling, Simulation
from arraybragg.simulation import misset_angles_deg
from conftest import PARITY_INPUTS, small_simulation

NAN = float("nan")


def crystal(**kw):
    return Crystal(**{"default_F": 1.0, **kw})


@pytest.mark.parametrize("make,field,value", [
    (Detector, "distance_mm", -100.0),
    (Detector, "distance_mm", 0.0),
    (Detector, "distance_mm", NAN),
    (Detector, "pixel_mm", 0.0),
    (Detector, "pixel_mm", math.inf),
    (Detector, "convention", "mosfilm"),
    (Detector, "pivot", "detector"),
    (Detector, "fpixels", 0),
    (Detector, "spixels", 12.5),
    (Detector, "close_distance_mm", -1.0),
    (Detector, "detector_thick_um", -5.0),
    (Detector, "detector_thicksteps", 0),
    (Detector, "twotheta_deg", NAN),
    (Detector, "fdet_vector", (0.0, 0.0, 0.0)),
    (Detector, "odet_vector", (1.0, 0.0)),
    (Detector, "xbeam_mm", NAN),
    (Beam, "wavelength_A", 0.0),
    (Beam, "wavelength_A", -1.0),
    (Beam, "wavelength_A", NAN),
    (Beam, "fluence_photons_per_m2", -1.0),
    (Beam, "dispersion_pct", -0.5),
    (Beam, "dispsteps", 0),
    (Beam, "hdivrange_mrad", -1.0),
    (Beam, "vdivsteps", 1.5),
    (Beam, "water_um", -1.0),
    (Beam, "nopolar", "yes"),
    (Beam, "beam_vector", (0.0, 0.0, 0.0)),
    (crystal, "cell", (100.0, 100.0, 100.0, 200.0, 90.0, 90.0)),
    (crystal, "cell", (0.0, 100.0, 100.0, 90.0, 90.0, 90.0)),
    (crystal, "cell", (100.0, 100.0, 100.0, 120.0, 120.0, 130.0)),
    (crystal, "cell", (100.0, NAN, 100.0, 90.0, 90.0, 90.0)),
    (crystal, "n_cells", (0, 1, 1)),
    (crystal, "n_cells", (5, 5)),
    (crystal, "n_cells", (5, 5, 2.5)),
    (crystal, "shape", "cube"),
    (crystal, "fudge", 0.0),
    (crystal, "mosaic_spread_deg", NAN),
    (crystal, "mosaic_domains", 0),
    (crystal, "mosaic_seed", 1.5),
    (crystal, "rng", "mt19937"),
    (crystal, "misset_deg", (1.0, NAN, 2.0)),
    (crystal, "default_F", NAN),
    (Sampling, "phisteps", 2.5),
    (Sampling, "phisteps", 0),
    (Sampling, "phi0_deg", NAN),
    (Sampling, "phistep_deg", math.inf),
    (Sampling, "oversample", 0),
    (Sampling, "roi", (0, 10, 0)),
    (Sampling, "roi", (0.5, 10, 0, 10)),
    (Sampling, "dmin_A", -1.0),
])
def test_bad_values_raise_naming_the_field(make, field, value):
    with pytest.raises(ValueError, match=field):
        make(**{field: value})


def test_crystal_without_structure_factors_is_an_error():
    with pytest.raises(ValueError, match="default_F"):
        Crystal()


def test_random_misset_needs_a_seed():
    with pytest.raises(ValueError, match="misset_seed"):
        crystal(misset_random=True)


def test_zero_keeps_its_off_meaning():
    Detector(detector_thick_um=0.0)
    Beam(water_um=0.0, dispersion_pct=0.0, hdivrange_mrad=0.0)
    Sampling(dmin_A=0.0)
    crystal(mosaic_spread_deg=0.0)


def test_negative_spread_is_allowed_in_the_core():
    assert crystal(mosaic_spread_deg=-0.3, mosaic_domains=4).mosaic_spread_deg == -0.3


def test_valid_values_are_normalised():
    c = crystal(cell=[70, 80, 90, 75, 85, 95], n_cells=[3, 4, 5])
    assert c.cell == (70.0, 80.0, 90.0, 75.0, 85.0, 95.0) and c.n_cells == (3, 4, 5)
    assert all(isinstance(v, float) for v in c.cell)
    assert Detector(distance_mm=np.float32(50)).distance_mm == 50.0


# ---------------------------------------------------------------- replace

def test_replace_routes_names_to_their_groups():
    sim = small_simulation()
    new = sim.replace(distance_mm=50.0, wavelength_A=1.5, cell=(60, 60, 60, 90, 90, 90), phisteps=3,
                      mosaic_spread_deg=0.2, mosaic_seed=-7)
    assert new.detector.distance_mm == 50.0
    assert new.beam.wavelength_A == 1.5
    assert new.crystal.cell == (60.0, 60.0, 60.0, 90.0, 90.0, 90.0)
    assert new.sampling.phisteps == 3
    assert (new.crystal.mosaic_spread_deg, new.crystal.mosaic_seed) == (0.2, -7)
    assert new.detector.fpixels == sim.detector.fpixels and new.crystal.n_cells == sim.crystal.n_cells
    assert sim.detector.distance_mm == 100.0 and sim.beam.wavelength_A == 1.0
    assert sim.replace(distance_mm=50.0).beam is sim.beam


def test_replace_validates():
    with pytest.raises(ValueError, match="distance_mm"):
        small_simulation().replace(distance_mm=-3.0)


def test_replace_rejects_unknown_names_listing_the_allowed_ones():
    with pytest.raises(ValueError) as info:
        small_simulation().replace(distance=50.0)
    message = str(info.value)
    assert "distance" in message
    for name in ("distance_mm", "wavelength_A", "cell", "misset_deg", "mosaic_spread_deg", "phisteps"):
        assert name in message


def test_replace_misset_switches_random_misset_off():
    sim = small_simulation("-misset_seed", 4242, "-misset", "random")
    assert sim.crystal.misset_random
    fixed = sim.replace(misset_deg=(1.0, 2.0, 3.0))
    assert not fixed.crystal.misset_random
    np.testing.assert_array_equal(misset_angles_deg(fixed.crystal), [1.0, 2.0, 3.0])
    assert sim.replace(distance_mm=90.0).crystal.misset_random


def test_replace_changes_the_image_like_the_command_line():
    a = small_simulation().replace(distance_mm=80.0, wavelength_A=1.2).run()
    b = small_simulation("-distance", 80, "-lambda", 1.2).run()
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- to_dict / from_dict

ROUND_TRIP_ARGS = [
    ("-mosaic", 0.4, "-mosaic_dom", 3, "-mosaic_seed", 99, "-phi", 3, "-osc", 1, "-dispersion", 2,
     "-hdivrange", 1, "-hdivsteps", 2, "-detector_thick", 100, "-polar", 0.9, "-roi", 2, 12, 3, 10),
    ("-hkl", PARITY_INPUTS / "P1.hkl", "-N", 2, "-xds", "-ORGX", 7.5, "-ORGY", 9.25, "-twotheta", 5,
     "-sourcefile", PARITY_INPUTS / "sources.txt"),
    ("-misset_seed", 4242, "-misset", "random", "-rng", "nanobragg", "-gauss_xtal", "-fudge", 1.5,
     "-fdet_vector", 0, 0, 1, "-sdet_vector", 0, -1, 0, "-pivot", "sample", "-close_distance", 90),
]


@pytest.mark.parametrize("extra", ROUND_TRIP_ARGS)
def test_to_dict_from_dict_round_trip(extra):
    sim = small_simulation(*extra)
    data = json.loads(json.dumps(sim.to_dict()))
    again = Simulation.from_dict(data)
    assert again.to_dict() == sim.to_dict()
    np.testing.assert_array_equal(again.run(), sim.run())


def test_to_dict_names_the_parameters_with_units():
    data = small_simulation().to_dict()
    assert set(data) == {"crystal", "beam", "detector", "sampling"}
    assert data["crystal"]["mosaic_seed"] == -12345678
    assert data["detector"]["distance_mm"] == 100.0
    assert data["beam"]["wavelength_A"] == 1.0
    assert "hkl" not in data["crystal"]


def test_simulation_from_parameter_objects():
    sim = Simulation(crystal=crystal(cell=(70, 80, 90, 75, 85, 95), misset_deg=(10, 20, 30), n_cells=(5, 5, 5),
                                     default_F=100.0),
                     detector=Detector(fpixels=16, spixels=16, pixel_mm=0.4),
                     sampling=Sampling(oversample=1))
    np.testing.assert_array_equal(sim.run(), small_simulation().run())


def test_mask_shape_must_match_the_detector():
    with pytest.raises(ValueError, match="mask"):
        Simulation(crystal=crystal(), detector=Detector(fpixels=4, spixels=4), sampling=Sampling(mask=np.ones((3, 4))))


def test_parse_and_from_nanobragg_args_agree():
    argv = ["-cell", "70", "80", "90", "75", "85", "95", "-default_F", "100", "-detpixels", "8"]
    assert arraybragg.parse_nanobragg_args(argv).simulation.to_dict() == arraybragg.from_nanobragg_args(argv).to_dict()
