"""X-ray sources: divergence grid and its round cut, dispersion, source files, incident vectors."""

import math

import numpy as np
import pytest

from arraybragg.detector import detector_frame
from arraybragg.params import Beam, Detector
from arraybragg.sources import (beam_sources, dispersion_wavelengths_m, divergence_angles_rad,
                                inside_round_divergence)
from arraybragg.textinputs import read_source_file
from conftest import PARITY_INPUTS, small_simulation, to_numpy

MRAD = 1e-3


def axis_angle(axis, a):
    k = np.asarray(axis, dtype=float)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(a) * kx + (1 - math.cos(a)) * kx @ kx


def sources_of(beam, xp=np, convention="mosflm"):
    """(incident (S, 3), wavelengths (S,)) as NumPy for a Beam in a convention's lab frame."""
    frame = detector_frame(Detector(fpixels=8, spixels=8, convention=convention), xp=xp)
    incident, lambdas = beam_sources(beam, frame)
    return to_numpy(incident), to_numpy(lambdas)


# ---------------------------------------------------------------- divergence

def test_divergence_angles_run_from_minus_half_range():
    np.testing.assert_allclose(divergence_angles_rad(6.0, 1.5, 5), [-3.0, -1.5, 0.0, 1.5, 3.0], atol=1e-15)
    np.testing.assert_allclose(divergence_angles_rad(1.0, 0.25, 4), [-0.5, -0.25, 0.0, 0.25], atol=1e-15)


def test_round_cut_keeps_seven_of_fifteen():
    """hdivrange 6 hdivsteps 5 vdivrange 3 vdivsteps 3 (divergence_round.log: 7 sources)."""
    hdiv, vdiv = (6 * MRAD, 1.5 * MRAD, 5), (3 * MRAD, 1.5 * MRAD, 3)
    kept = [(round(h / MRAD, 6), round(v / MRAD, 6))
            for h in divergence_angles_rad(*hdiv) for v in divergence_angles_rad(*vdiv)
            if inside_round_divergence(h, v, hdiv, vdiv)]
    assert kept == [(-3.0, 0.0), (-1.5, 0.0), (0.0, -1.5), (0.0, 0.0), (0.0, 1.5), (1.5, 0.0), (3.0, 0.0)]


def test_round_cut_even_counts_shift_the_ellipse():
    """4 [(h^2 - s^2/4 e)/R^2 + ...] <= 1.1 with e = 1 for even counts: all 4x2 corners of 3x1 mrad kept."""
    hdiv, vdiv = (3 * MRAD, 1 * MRAD, 4), (1 * MRAD, 1 * MRAD, 2)
    test = lambda h, v: 4 * ((h * h - (1e-3) ** 2 / 4) / (3e-3) ** 2 + (v * v - (1e-3) ** 2 / 4) / (1e-3) ** 2)
    for h in divergence_angles_rad(*hdiv):
        for v in divergence_angles_rad(*vdiv):
            assert inside_round_divergence(h, v, hdiv, vdiv) == (test(h, v) <= 1.1)


def expected_incident(h_rad, v_rad, beam, polar):
    vert = np.cross(beam, polar)
    position = axis_angle(vert, h_rad) @ axis_angle(polar, v_rad) @ (-10.0 * np.asarray(beam, dtype=float))
    return -position / np.linalg.norm(position)


def test_divergence_round_case_sources(xp):
    sim = small_simulation("-hdivrange", 6, "-hdivsteps", 5, "-vdivrange", 3, "-vdivsteps", 3)
    incident, lambdas = sources_of(sim.beam, xp)
    kept = [(-3, 0), (-1.5, 0), (0, -1.5), (0, 0), (0, 1.5), (1.5, 0), (3, 0)]
    assert incident.shape == (7, 3)
    expected = [expected_incident(h * MRAD, v * MRAD, (1, 0, 0), (0, 0, 1)) for h, v in kept]
    np.testing.assert_allclose(incident, expected, atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(incident, axis=1), 1.0, rtol=1e-15)
    angles = np.arccos(np.clip(incident @ np.array([1.0, 0.0, 0.0]), -1, 1))
    np.testing.assert_allclose(angles, [math.hypot(h, v) * MRAD for h, v in kept], atol=1e-9)
    np.testing.assert_array_equal(lambdas, 1e-10)
    assert sim.geometry().steps == 7


def test_square_divergence_keeps_the_whole_grid():
    sim = small_simulation("-hdivrange", 6, "-hdivsteps", 5, "-vdivrange", 3, "-vdivsteps", 3, "-square_div")
    incident, _ = sources_of(sim.beam)
    assert incident.shape == (15, 3)


def test_zero_range_on_one_axis_keeps_every_point():
    sim = small_simulation("-vdivrange", 3, "-vdivsteps", 3)
    incident, _ = sources_of(sim.beam)
    assert incident.shape == (3, 3)


@pytest.mark.parametrize("convention", ["mosflm", "xds", "dials", "adxv"])
def test_vertical_divergence_turns_about_the_polarization_axis(convention, xp):
    beam = Beam(vdivrange_mrad=4.0, vdivstep_mrad=4.0, vdivsteps=2)
    frame = detector_frame(Detector(fpixels=8, spixels=8, convention=convention))
    incident, _ = sources_of(beam, xp, convention)
    b, p = to_numpy(frame.beam), to_numpy(frame.polar)
    for row, v in zip(incident, (-2e-3, 2e-3)):
        np.testing.assert_allclose(row, expected_incident(0.0, v, b, p), atol=1e-15)
        assert row @ p == pytest.approx(0.0, abs=1e-15)


# ---------------------------------------------------------------- dispersion

def test_dispersion_wavelengths():
    lam0 = 12398.42 / 9000 * 1e-10
    got = dispersion_wavelengths_m(lam0, 15.0, 7)
    np.testing.assert_allclose(got, [lam0 * (1 + k * 0.025 - 0.075) for k in range(7)], rtol=1e-15)
    logged = [1.27428205555556e-10, 1.30872211111111e-10, 1.34316216666667e-10, 1.37760222222222e-10,
              1.41204227777778e-10, 1.44648233333333e-10, 1.48092238888889e-10]   # dispersion_energy.log
    np.testing.assert_allclose(got, logged, rtol=1e-14)


def test_dispersion_alone_gives_two_wavelengths(xp):
    sim = small_simulation("-lambda", 1.5, "-dispersion", 10)
    _, lambdas = sources_of(sim.beam, xp)
    np.testing.assert_allclose(lambdas, [1.5e-10 * 0.95, 1.5e-10 * 1.05], rtol=1e-15)


def test_sources_are_divergence_outer_wavelength_inner(xp):
    sim = small_simulation("-hdivrange", 2, "-hdivsteps", 2, "-dispersion", 10, "-dispsteps", 3)
    incident, lambdas = sources_of(sim.beam, xp)
    assert incident.shape == (6, 3)
    np.testing.assert_allclose(lambdas, np.tile([0.95e-10, 1e-10, 1.05e-10], 2), rtol=1e-15)
    np.testing.assert_array_equal(incident[0], incident[2])
    assert np.abs(incident[0] - incident[3]).max() > 1e-4


# ---------------------------------------------------------------- source files

def test_source_file_missing_columns_take_defaults(xp):
    rows = ((-10.0, 0.02, 0.0, 0.5, 1.03e-10), (None, None, None, None, None), (-10.0, -0.015, 0.015, None, None))
    incident, lambdas = sources_of(Beam(wavelength_A=1.2, sources=rows), xp)
    np.testing.assert_allclose(lambdas, [1.03e-10, 1.2e-10, 1.2e-10], rtol=1e-15)
    for row, position in zip(incident, ((-10.0, 0.02, 0.0), (-10.0, 0.0, 0.0), (-10.0, -0.015, 0.015))):
        p = np.asarray(position)
        np.testing.assert_allclose(row, -p / np.linalg.norm(p), atol=1e-16)


def test_parity_source_file(xp):
    """inputs/sources.txt: four sources, the last with only X Y Z (wavelength from -lambda)."""
    table = read_source_file(PARITY_INPUTS / "sources.txt")
    assert table.shape == (4, 5)
    assert np.isnan(table[3, 3:]).all()
    sim = small_simulation("-lambda", 1.2, "-sourcefile", PARITY_INPUTS / "sources.txt")
    incident, lambdas = sources_of(sim.beam, xp)
    np.testing.assert_allclose(lambdas, [1.00e-10, 1.03e-10, 0.97e-10, 1.2e-10], rtol=1e-15)
    positions = table[:, :3]
    np.testing.assert_allclose(incident, -positions / np.linalg.norm(positions, axis=1)[:, None], atol=1e-16)
    assert sim.geometry().steps == 4


def test_source_file_overrides_divergence_and_dispersion():
    sim = small_simulation("-sourcefile", PARITY_INPUTS / "sources.txt", "-hdivrange", 3, "-dispersion", 10)
    incident, _ = sources_of(sim.beam)
    assert incident.shape == (4, 3)


def test_source_weights_are_ignored():
    sim = small_simulation("-detpixels", 8)
    light = ((-10.0, 0.02, 0.0, 1.0, 1e-10), (-10.0, 0.0, -0.03, 1.0, 0.97e-10))
    heavy = ((-10.0, 0.02, 0.0, 7.0, 1e-10), (-10.0, 0.0, -0.03, 0.25, 0.97e-10))
    np.testing.assert_array_equal(sim.replace(sources=light).run(), sim.replace(sources=heavy).run())


def test_source_at_the_origin_is_an_error():
    with pytest.raises(ValueError, match="source"):
        sources_of(Beam(sources=((0.0, 0.0, 0.0, 1.0, 1e-10),)))
