"""nanoBragg's automatic choices of counts, ranges and steps, and the warnings of its coercions."""

import math
import warnings

import pytest

from arraybragg.sampling_rules import (NanoBraggWarning, crystal_cells, mosaic_sampling, phi_sampling,
                                       range_sampling, recommended_oversample, thickness_sampling)
from conftest import small_simulation


def no_warning(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NanoBraggWarning)
        return function(*args, **kwargs)


# ---------------------------------------------------------------- phi

@pytest.mark.parametrize("given,expected", [
    (dict(), (0.0, 0.0, 1)),
    (dict(osc=1.0), (1.0, 0.5, 2)),                      # osc alone: 2 steps of osc/2
    (dict(phisteps=4), (1.0, 0.25, 4)),                  # phisteps alone: osc 1 degree
    (dict(osc=3.0, phisteps=6), (3.0, 0.5, 6)),          # step = osc/phisteps
    (dict(osc=3.0, phistep=0.7), (3.0, 0.7, 5)),         # ceil(osc/step) steps of the given size
    (dict(osc=2.0, phistep=0.5), (2.0, 0.5, 4)),
    (dict(phistep=0.3), (0.3, 0.3, 2)),                  # phistep alone: 2 steps of that size
    (dict(phistep=0.3, phisteps=5), (0.3, 0.3, 2)),      # step and count without osc: 2 steps
    (dict(osc=3.0, phistep=0.5, phisteps=4), (3.0, 0.5, 4)),  # everything given
    (dict(phisteps=0), (1.0, 1.0, 1)),                   # a count of 0 becomes 1
])
def test_phi_rules(given, expected):
    osc, step, steps = no_warning(phi_sampling, **given)
    assert steps == expected[2]
    assert (osc, step) == pytest.approx(expected[:2], rel=1e-15)


def test_phi_rules_from_the_command_line():
    s = small_simulation("-osc", 1).sampling
    assert (s.osc_deg, s.phistep_deg, s.phisteps) == (1.0, 0.5, 2)
    s = small_simulation("-phisteps", 4).sampling
    assert (s.osc_deg, s.phistep_deg, s.phisteps) == (1.0, 0.25, 4)
    s = small_simulation("-phi", 20, "-osc", 3, "-phistep", 0.7).sampling
    assert (s.phi0_deg, s.phistep_deg, s.phisteps) == (20.0, 0.7, 5)


# ---------------------------------------------------------------- divergence and dispersion

@pytest.mark.parametrize("given,expected", [
    (dict(), (0.0, 0.0, 1)),
    (dict(value_range=6.0, steps=5), (6.0, 1.5, 5)),     # step = range/(count - 1)
    (dict(value_range=6.0), (6.0, 6.0, 2)),              # range only: 2 steps of step = range
    (dict(value_range=6.0, steps=1), (6.0, 6.0, 2)),     # a count of 1 with a range becomes 2
    (dict(step=0.5), (0.5, 0.5, 2)),                     # step only: 2 steps
    (dict(step=0.5, steps=7), (0.5, 0.5, 2)),            # step and count: still 2 steps of the step
    (dict(value_range=3.0, step=1.0), (3.0, 1.0, 3)),    # ceil(range/step)
    (dict(value_range=3.0, step=0.7, steps=4), (3.0, 0.7, 4)),
    (dict(steps=4, unset_range=1000.0), (1000.0, 250.0, 4)),  # count only: range 1 rad (1000 mrad)
    (dict(value_range=0.0, steps=5), (0.0, 0.0, 1)),     # zero range collapses
    (dict(value_range=0.0), (0.0, 0.0, 1)),
])
def test_range_rules(given, expected):
    value_range, step, steps = no_warning(range_sampling, **given)
    assert steps == expected[2]
    assert (value_range, step) == pytest.approx(expected[:2], rel=1e-15)


def test_divergence_rules_from_the_command_line():
    b = small_simulation("-hdivrange", 6, "-hdivsteps", 5, "-vdivrange", 3).beam
    assert (b.hdivrange_mrad, b.hdivstep_mrad, b.hdivsteps) == (6.0, 1.5, 5)
    assert (b.vdivrange_mrad, b.vdivstep_mrad, b.vdivsteps) == (3.0, 3.0, 2)
    b = small_simulation("-divergence", 2, "-divsteps", 3).beam
    assert (b.hdivrange_mrad, b.hdivsteps, b.vdivrange_mrad, b.vdivsteps) == (2.0, 3, 2.0, 3)
    b = small_simulation("-hdivsteps", 4).beam
    assert (b.hdivrange_mrad, b.hdivstep_mrad, b.hdivsteps) == (1000.0, 250.0, 4)
    b = small_simulation("-vdivstep", 0.5).beam
    assert (b.vdivrange_mrad, b.vdivstep_mrad, b.vdivsteps) == (0.5, 0.5, 2)


def test_dispersion_rules_from_the_command_line():
    b = small_simulation("-dispersion", 10).beam
    assert (b.dispersion_pct, b.dispsteps) == (10.0, 2)
    b = small_simulation("-dispersion", 15, "-dispsteps", 7).beam
    assert (b.dispersion_pct, b.dispsteps) == (15.0, 7)
    b = small_simulation("-dispsteps", 5).beam           # no range: one wavelength
    assert (b.dispersion_pct, b.dispsteps) == (0.0, 1)


# ---------------------------------------------------------------- thickness

def test_thickness_alone_gives_two_layers_of_half_the_thickness():
    assert no_warning(thickness_sampling, 100.0) == (100.0, 50.0, 2)


def test_thickness_layers_step_by_thick_over_n_minus_1():
    thick, step, steps = no_warning(thickness_sampling, 100.0, 5)
    assert (thick, steps) == (100.0, 5)
    assert step == pytest.approx(25.0, rel=1e-15)
    assert (steps - 1) * step == pytest.approx(thick, rel=1e-15)


def test_one_layer_is_raised_to_two_with_a_warning():
    with pytest.warns(NanoBraggWarning, match="raised to 2"):
        assert thickness_sampling(100.0, 1) == (100.0, 100.0, 2)


def test_zero_thickness_is_one_flat_layer():
    assert no_warning(thickness_sampling, 0.0, 3) == (0.0, 0.0, 1)
    assert no_warning(thickness_sampling, 0.0) == (0.0, 0.0, 1)


def test_thickness_rules_from_the_command_line():
    d = small_simulation("-detector_thick", 450, "-detector_thicksteps", 3).detector
    assert (d.detector_thick_um, d.detector_thickstep_um, d.detector_thicksteps) == (450.0, 225.0, 3)
    d = small_simulation("-detector_thick", 300).detector
    assert (d.detector_thickstep_um, d.detector_thicksteps) == (150.0, 2)
    with pytest.warns(NanoBraggWarning):
        d = small_simulation("-detector_thick", 300, "-detector_thicksteps", 1).detector
    assert (d.detector_thickstep_um, d.detector_thicksteps) == (300.0, 2)


# ---------------------------------------------------------------- mosaic domains

def test_spread_without_count_gives_ten_domains_with_a_warning():
    with pytest.warns(NanoBraggWarning, match="10 mosaic domains"):
        assert mosaic_sampling(1.5) == (1.5, 10)


def test_count_without_spread_gives_one_domain_with_a_warning():
    with pytest.warns(NanoBraggWarning, match="no mosaic spread"):
        assert mosaic_sampling(None, 5) == (0.0, 1)


def test_zero_spread_gives_one_domain_with_a_warning():
    with pytest.warns(NanoBraggWarning, match="zero mosaic spread"):
        assert mosaic_sampling(0.0, 5) == (0.0, 1)


def test_quiet_mosaic_cases():
    assert no_warning(mosaic_sampling) == (0.0, 1)
    assert no_warning(mosaic_sampling, 0.0) == (0.0, 1)
    assert no_warning(mosaic_sampling, 1.5, 15) == (1.5, 15)


def test_mosaic_rules_from_the_command_line():
    with pytest.warns(NanoBraggWarning):
        c = small_simulation("-mosaic", 1).crystal
    assert (c.mosaic_spread_deg, c.mosaic_domains) == (1.0, 10)
    with pytest.warns(NanoBraggWarning):
        c = small_simulation("-mosaic", 0, "-mosaic_dom", 7).crystal
    assert (c.mosaic_spread_deg, c.mosaic_domains) == (0.0, 1)


# ---------------------------------------------------------------- crystal size and oversampling

def test_cells_from_sizes_and_the_minimum_of_one():
    edges = (70e-10, 80e-10, 90e-10)
    assert no_warning(crystal_cells, (5, 5, 5), (None, None, None), edges) == (5, 5, 5)
    assert no_warning(crystal_cells, (5, 5, 5), (2e-7, 1.25e-7, 1.25e-7), edges) == (29, 16, 14)
    with pytest.warns(NanoBraggWarning, match="raised to 1"):
        assert crystal_cells((0, 3, -2), (None, None, None), edges) == (1, 3, 1)


def test_recommended_oversample():
    """ceil(3 * max(N |a|) * pixel / (lambda * distance)): 3*1080 A*0.1 mm/(1 A*100 mm) = 3.24 -> 4."""
    edges = (70e-10, 80e-10, 90e-10)
    assert recommended_oversample((3, 7, 12), edges, 1e-10, 0.1, 1e-4) == 4
    assert recommended_oversample((1, 1, 1), edges, 1e-10, 0.1, 1e-4) == 1
    assert recommended_oversample((1, 1, 1), edges, 1e-10, 100.0, 1e-4) == 1   # never below 1
    assert recommended_oversample((5, 5, 5), (1e-8,) * 3, 1e-10, 0.1, 1e-4) == math.ceil(3 * 5e-8 / 1e-7)


def test_auto_oversample_is_used_when_not_given():
    """crystal_Nabc_auto_oversample.log: '4x4 pixel oversample steps'."""
    sim = small_simulation("-Na", 3, "-Nb", 7, "-Nc", 12, "-pixel", 0.1,
                           base="-cell 70 80 90 75 85 95 -default_F 100 -lambda 1.0 -distance 100 "
                                "-detpixels 8".split())
    geometry = sim.geometry()
    assert (geometry.oversample, geometry.recommended_oversample) == (4, 4)
    assert geometry.steps == 16
