"""The full simulator's adjoint (Simulation.vjp) against central finite differences, float64.

Each gradient test differentiates f(x) = sum(cotangent * image(x)) for a seeded random
cotangent and compares the pullback with central differences taken through the public API
(``with_parameter_vector``, i.e. ``replace``), component by component, with the issue's measure
|adjoint - FD| / max(|FD|, 1e-3 * max over that parameter's vector of |FD|) <= 1e-6.

Finite-difference steps: gradcheck.default_steps, cbrt(eps) * max(|x|, 1), for the mosaic spread,
and a quarter of that for the cell and the misset.  The image is differentiable only almost
everywhere: the nearest-integer Miller index puts kinks into the round and gauss lattice
factors (at half-integer h) and into the tricubic structure factor (at integer h), and jumps
into the nearest-neighbour structure factor, the interpolation range test and the top-hat
spots.  A term crossing one of these inside the step spoils the difference quotient, so the
configurations here were chosen (and checked with half the step) so that none does, rather
than widening the tolerance.  The quarter step for cell and misset also removes the truncation
error of the full step (it reaches 8e-7 in the phi-zero compat case); the spread keeps the full
step because its gradient is often small beside f, where rounding error dominates.
"""
import tracemalloc
from pathlib import Path

import array_api_strict
import numpy as np
import pytest
import scipy.optimize
from array_api_compat import array_namespace

import arraybragg
from arraybragg import Beam, Crystal, Detector, Simulation, engine
from arraybragg import simulation as simulation_module
from arraybragg.gradcheck import central_difference, check_grad, default_steps, relative_errors
from arraybragg.losses import poisson_nll, sum_of_squares
from arraybragg.mosaic import MosaicBase, draw_mosaic_base
from arraybragg.structure_factor import interpolation_out_of_range
from arraybragg.textinputs import read_mosflm_matrix
from conftest import to_numpy

INPUTS = Path(__file__).parent / "data" / "inputs"
WRT = ("cell", "mosaic_spread_deg", "misset_deg")
SIZES = {"cell": 6, "mosaic_spread_deg": 1, "misset_deg": 3}
TOLERANCE = 1e-6

# 24 x 24 pixels of 0.4 mm at 100 mm: about a dozen spots of a 30 Å cell, each a few pixels wide.
SMALL = ("-detpixels 24 -pixel 0.4 -distance 100 -lambda 1 -N 5 -default_F 100 "
         "-mosaic 0.5 -mosaic_dom 10").split()
CELLS = {"cubic": "-cell 30 30 30 90 90 90 -misset 10 20 30".split(),
         "triclinic": "-cell 30 33 36 80 95 105 -misset 10 20 30".split()}
# P1.hkl holds h -5..4, k -4..5, l -4..4, so tricubic interpolation needs -3 <= h <= 2,
# -2 <= k <= 3, -2 <= l <= 2: a 32-38 Å cell seen to 2 theta = 3.7 deg (150 mm) stays inside.
# N = 2 switches interpolation on (nanoBragg's automatic rule).
HKL = (f"-detpixels 24 -pixel 0.4 -distance 150 -lambda 1 -N 2 -hkl {INPUTS / 'P1.hkl'} "
       "-cell 32 35 38 80 96 104 -misset 10 20 30 -mosaic 0.5 -mosaic_dom 10").split()
MAT = (f"-mat {INPUTS / 'A.mat'} -lambda 1.3 -detpixels 24 -pixel 0.4 -distance 100 -N 5 "
       "-default_F 100 -mosaic 0.5 -mosaic_dom 10").split()


def simulation(*flags, cell="cubic"):
    return arraybragg.from_nanobragg_args(SMALL + CELLS[cell] + list(flags))


def fd_steps(x0, wrt):
    """Per-parameter central-difference steps (see the module docstring)."""
    factors = np.concatenate([np.full(SIZES[name], 1.0 if name == "mosaic_spread_deg" else 0.25)
                              for name in wrt])
    return factors * default_steps(x0)


def split(vector, wrt):
    out, offset = {}, 0
    for name in wrt:
        out[name] = np.asarray(vector[offset:offset + SIZES[name]])
        offset += SIZES[name]
    return out


def random_cotangent(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def adjoint_and_fd(sim, wrt=WRT):
    """({name: adjoint}, {name: central difference}) of sum(cotangent * image)."""
    image, pullback = sim.vjp(wrt)
    cotangent = random_cotangent(image.shape)
    adjoint = {name: np.atleast_1d(np.asarray(value, dtype=np.float64))
               for name, value in pullback(cotangent).items()}

    def f(x):
        return float(np.sum(cotangent * sim.with_parameter_vector(wrt, x).run()))

    x0 = sim.parameter_vector(wrt)
    return adjoint, split(central_difference(f, x0, fd_steps(x0, wrt)), wrt)


def assert_matches_fd(sim, wrt=WRT):
    adjoint, numeric = adjoint_and_fd(sim, wrt)
    assert set(adjoint) == set(wrt)
    for name in wrt:
        assert adjoint[name].shape == numeric[name].shape
        assert np.max(np.abs(numeric[name])) > 0.0, f"{name}: the image does not depend on it here"
        errors = relative_errors(adjoint[name], numeric[name])
        assert np.max(errors) <= TOLERANCE, (
            f"{name}: adjoint {adjoint[name]}, central differences {numeric[name]}, relative errors {errors}")
    return adjoint


# ---------------------------------------------------------------- the pullback's contract

def test_vjp_returns_only_the_requested_gradients():
    sim = simulation(cell="triclinic")
    image, pullback = sim.vjp(("misset_deg",))
    np.testing.assert_array_equal(image, sim.run())
    grads = pullback(random_cotangent(image.shape))
    assert set(grads) == {"misset_deg"} and np.shape(grads["misset_deg"]) == (3,)
    _, everything = sim.vjp(WRT)
    np.testing.assert_array_equal(everything(random_cotangent(image.shape))["misset_deg"], grads["misset_deg"])


def test_vjp_rejects_unknown_parameters():
    with pytest.raises(ValueError, match="distance_mm"):
        simulation().vjp(("cell", "distance_mm"))


@pytest.mark.parametrize("shape", [(25, 24), (23, 24), (576,)])
def test_pullback_rejects_a_cotangent_of_another_shape(shape):
    """sum(cotangent * image) needs the image's shape; a larger cotangent must not be read
    row-major into the wrong pixels."""
    _, pullback = simulation().vjp(WRT)
    with pytest.raises(ValueError, match="cotangent"):
        pullback(np.ones(shape))


# ---------------------------------------------------------------- the criterion

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("spread_deg", [0.5, 0.0, 0.001, 0.003])
def test_cell_spread_and_misset_gradients_match_central_differences(cell, spread_deg):
    sim = simulation(cell=cell).replace(mosaic_spread_deg=spread_deg)
    assert sim.crystal.mosaic_domains == 10
    assert_matches_fd(sim)


def test_zero_spread_keeps_ten_identity_domains():
    geo = simulation().replace(mosaic_spread_deg=0.0).geometry()
    assert np.array_equal(geo.mosaic_rotations, np.broadcast_to(np.eye(3), (10, 3, 3)))


# ---------------------------------------------------------------- lattice shapes

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", ["-round_xtal", "-gauss_xtal"])
def test_round_and_gauss_lattice_shapes(shape, cell):
    """Both are continuous but kinked where an index crosses a half-integer, and for a
    non-orthogonal cell the gauss factor even jumps there (the cross terms of G* change sign
    with the rounded component); this misset keeps every term clear of both within the step."""
    assert_matches_fd(simulation(shape, "-misset", "-20", "10", "25", cell=cell))


@pytest.mark.parametrize("cell", CELLS)
def test_tophat_spots_with_constant_F_have_zero_gradient(cell):
    """The top-hat lattice factor is piecewise constant in h, so with a constant F the image is
    piecewise constant in every parameter: the almost-everywhere derivative is exactly 0."""
    sim = simulation("-tophat_spots", cell=cell)
    assert np.count_nonzero(sim.run()) > 0
    adjoint, numeric = adjoint_and_fd(sim)
    for name in WRT:
        assert np.all(adjoint[name] == 0.0)
        assert np.all(numeric[name] == 0.0)


# ---------------------------------------------------------------- structure factors

def interpolated_fraction(sim):
    """Fraction of (pixel centre, lattice) terms whose tricubic interpolation stays in the table."""
    geo, det, hkl = sim.geometry(), sim.detector, sim.crystal.hkl
    fast, slow = np.meshgrid(np.arange(det.fpixels) + 0.5, np.arange(det.spixels) + 0.5)
    offsets = fast.reshape(-1, 1) * geo.frame.fdet + slow.reshape(-1, 1) * geo.frame.sdet
    position = geo.frame.pix0_m + det.pixel_mm * 1e-3 * offsets
    diffracted = position / np.linalg.norm(position, axis=1, keepdims=True)
    q = (diffracted - geo.incident[0]) / geo.wavelength_m[0]
    h = np.einsum("lij,nj->nli", geo.lattice_m, q)
    return 1.0 - np.mean(interpolation_out_of_range(h, tuple(hkl.hkl_min), hkl.grid.shape))


@pytest.mark.parametrize("shape", ["-square_xtal", "-round_xtal", "-gauss_xtal", "-tophat_spots"])
def test_interpolated_structure_factors(shape):
    """With interpolated F even top-hat spots have a gradient: dF/dh is smooth between integer h."""
    sim = arraybragg.from_nanobragg_args(HKL + [shape])
    assert sim.geometry().interpolate
    assert interpolated_fraction(sim) > 0.95
    assert_matches_fd(sim)


def test_nearest_structure_factors():
    """Nearest-neighbour F is piecewise constant: the gradient runs through the lattice factor."""
    sim = arraybragg.from_nanobragg_args(HKL + ["-nointerpolate"])
    assert not sim.geometry().interpolate
    assert_matches_fd(sim)


# ---------------------------------------------------------------- sampling and physics features

FEATURES = {
    "phi steps": ("-phi 0 -osc 2 -phisteps 4", lambda sim, geo: geo.phi_rotations.shape[0] == 4),
    "divergence": ("-divergence 0.5 -divsteps 3", lambda sim, geo: geo.sources > 1),
    "dispersion": ("-dispersion 2 -dispsteps 3", lambda sim, geo: np.unique(geo.wavelength_m).size == 3),
    "oversample": ("-oversample 2", lambda sim, geo: geo.oversample == 2),
    "polarization": ("-polar 0.8", lambda sim, geo: sim.beam.kahn_factor == 0.8),
    "thickness": ("-detector_thick 100 -detector_thicksteps 3 -detector_abs 300",
                  lambda sim, geo: sim.detector.detector_thicksteps == 3),
    "oversample flags": ("-oversample 2 -oversample_omega -oversample_polar -oversample_thick "
                         "-detector_thick 100 -detector_thicksteps 2 -polar 0.7",
                         lambda sim, geo: sim.sampling.oversample_omega and sim.sampling.oversample_polar
                         and sim.sampling.oversample_thick),
    "compat phi-zero": ("-phi 0 -osc 2 -phisteps 4 -nanobragg_compat",
                        lambda sim, geo: geo.lattice_first_m is not None),
    "random misset": ("-misset random -misset_seed 7", lambda sim, geo: sim.crystal.misset_random),
    "region of interest": ("-roi 3 18 5 20", lambda sim, geo: sim.sampling.roi == (3, 18, 5, 20)),
    "water with oversample flags": ("-water 0.2 -oversample 2 -oversample_omega -oversample_polar",
                                    lambda sim, geo: sim.beam.water_um == 0.2),
}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("feature", FEATURES)
def test_features(feature, cell):
    flags, active = FEATURES[feature]
    sim = simulation(*flags.split(), cell=cell)
    assert active(sim, sim.geometry())
    assert_matches_fd(sim)


@pytest.mark.parametrize("shape", ["square", "gauss"])
def test_exact_cell_model_built_from_dataclasses(shape):
    """cell_model='exact' (what -mat gives) chains through the exact direct matrix and G*."""
    sim = Simulation(
        Crystal(cell=(30.0, 33.0, 36.0, 80.0, 95.0, 105.0), cell_model="exact", misset_deg=(10.0, 20.0, 30.0),
                n_cells=(5, 5, 5), shape=shape, default_F=100.0, mosaic_spread_deg=0.5, mosaic_domains=10),
        Beam(wavelength_A=1.0), Detector(fpixels=24, spixels=24, pixel_mm=0.4, distance_mm=100.0))
    assert_matches_fd(sim)


@pytest.mark.parametrize("cell", CELLS)
def test_nanobragg_stream_cell_and_misset(cell):
    sim = simulation("-rng", "nanobragg", cell=cell)
    assert sim.crystal.rng == "nanobragg"
    assert_matches_fd(sim, ("cell", "misset_deg"))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("spread_deg", [0.5, 0.003])
def test_nanobragg_stream_spread_is_the_derivative_of_the_unrounded_angles(cell, spread_deg, monkeypatch):
    """nanoBragg's stream rounds every domain angle to float32, so its image is a staircase in the
    spread with steps of 2^-24 of the angle, too fine and too irregular for central differences.
    The adjoint is documented as the derivative of spread_rad * unit_angle: compare it with
    central differences of the same domains (same axes and unit angles) without the rounding."""
    sim = simulation("-rng", "nanobragg", cell=cell).replace(mosaic_spread_deg=spread_deg)
    image, pullback = sim.vjp(("mosaic_spread_deg",))
    cotangent = random_cotangent(image.shape)
    adjoint = pullback(cotangent)["mosaic_spread_deg"]

    def unrounded_base(n_domains, mosaic_seed, rng="numpy", *, misset_seed=None):
        base = draw_mosaic_base(n_domains, mosaic_seed, rng, misset_seed=misset_seed)
        return MosaicBase(base.axes, base.unit_angles, "numpy")

    monkeypatch.setattr(simulation_module, "draw_mosaic_base", unrounded_base)
    unrounded = sim.run()
    assert not np.array_equal(unrounded, image)
    assert np.allclose(unrounded, image, rtol=1e-6, atol=0.0)

    def f(x):
        return float(np.sum(cotangent * sim.replace(mosaic_spread_deg=float(x[0])).run()))

    numeric = central_difference(f, [spread_deg], default_steps([spread_deg]))
    assert relative_errors([adjoint], numeric)[0] <= TOLERANCE


# ---------------------------------------------------------------- MOSFLM matrix

def test_mosflm_matrix_gradients_hold_U_fixed():
    sim = arraybragg.from_nanobragg_args(MAT)
    assert sim.crystal.cell_model == "exact"
    assert_matches_fd(sim)


def test_mosflm_matrix_cell_is_the_cell_of_the_matrix():
    sim = arraybragg.from_nanobragg_args(MAT)
    reciprocal = np.linalg.inv(sim.geometry().base_lattice_m * 1e10)
    np.testing.assert_allclose(reciprocal, read_mosflm_matrix(INPUTS / "A.mat") / 1.3, rtol=0, atol=1e-14)


def test_replace_cell_keeps_the_orientation_of_a_mosflm_matrix():
    """A = U B: a new cell changes B only; a* stays along U x and b* in the plane of U x and U y."""
    sim = arraybragg.from_nanobragg_args(MAT)
    a, b, c, alpha, beta, gamma = sim.crystal.cell
    changed = sim.replace(cell=(1.01 * a, b, 0.98 * c, alpha + 2.0, beta - 1.0, gamma + 1.5))
    assert changed.crystal.u_matrix == sim.crystal.u_matrix
    assert changed.crystal.cell_model == "exact"

    def a_star_and_plane_normal(s):
        reciprocal = np.linalg.inv(s.geometry().base_lattice_m)
        a_star, b_star = reciprocal[:, 0], reciprocal[:, 1]
        normal = np.cross(a_star, b_star)
        return a_star / np.linalg.norm(a_star), normal / np.linalg.norm(normal)

    before, after = a_star_and_plane_normal(sim), a_star_and_plane_normal(changed)
    np.testing.assert_allclose(after[0], before[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(after[1], before[1], rtol=0, atol=1e-14)
    moved = changed.geometry().base_lattice_m - sim.geometry().base_lattice_m
    assert np.max(np.abs(moved)) > 1e-3 * np.max(np.abs(sim.geometry().base_lattice_m))


# ---------------------------------------------------------------- losses and scipy

def loss_for(name, target):
    if name == "sum_of_squares":
        return sum_of_squares(target)
    background = 5.0
    observed = np.random.default_rng(3).poisson(target + background).astype(np.float64)
    return poisson_nll(observed, background=background)


@pytest.mark.parametrize("loss_name", ["sum_of_squares", "poisson_nll"])
def test_value_and_grad_is_shaped_for_scipy_minimize(loss_name):
    truth = simulation(cell="triclinic")
    loss = loss_for(loss_name, truth.run())
    start = truth.replace(cell=(30.03, 32.98, 36.02, 80.05, 94.97, 105.02), mosaic_spread_deg=0.51)
    fun = start.value_and_grad(loss, WRT)
    x0 = start.parameter_vector(WRT)
    assert x0.shape == (10,)

    value, grad = fun(x0)
    assert type(value) is float
    assert isinstance(grad, np.ndarray) and grad.shape == x0.shape and grad.dtype == np.float64
    assert value == pytest.approx(float(loss(start.run())[0]), rel=1e-14)

    steps = fd_steps(x0, WRT)
    assert check_grad(lambda x: fun(x)[0], lambda x: fun(x)[1], x0, epsilon=steps) <= 1e-6 * np.linalg.norm(grad)
    numeric = split(central_difference(lambda x: fun(x)[0], x0, steps), WRT)
    for name, part in split(grad, WRT).items():
        assert np.max(relative_errors(part, numeric[name])) <= TOLERANCE, name

    result = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": 3})
    assert result.fun < value


# ---------------------------------------------------------------- memory: chunking

CHUNKED = {
    "gauss, compat phi-zero, oversample": SMALL + CELLS["triclinic"] + (
        "-gauss_xtal -phi 0 -osc 2 -phisteps 4 -nanobragg_compat -oversample 2 -detpixels 16").split(),
    "interpolation switch-off (compat)": HKL + ["-nanobragg_compat", "-distance", "60", "-detpixels", "16"],
}


@pytest.mark.parametrize("case", CHUNKED)
def test_pullback_does_not_depend_on_the_chunk_size(case):
    sim = arraybragg.from_nanobragg_args(CHUNKED[case])
    one_pixel = sim.engine_inputs(chunk_terms=1)
    whole = sim.engine_inputs(chunk_terms=1 << 40)
    image = engine.render(whole)
    np.testing.assert_allclose(engine.render(one_pixel), image, rtol=1e-13, atol=0.0)
    cotangent = random_cotangent(image.shape)
    small, large = engine.render_vjp(one_pixel, cotangent), engine.render_vjp(whole, cotangent)
    for key, value in large.items():
        if value is None:
            assert small[key] is None
            continue
        if key == "recip_metric" and sim.crystal.shape != "gauss":
            assert np.all(value == 0.0) and np.all(small[key] == 0.0)
            continue
        assert np.max(np.abs(value)) > 0.0, key
        np.testing.assert_allclose(small[key], value, rtol=0.0, atol=1e-12 * np.max(np.abs(value)), err_msg=key)


def test_interpolation_switch_off_case_switches_off():
    """The chunking case above only tests the serial switch-off if a lookup leaves the table."""
    sim = arraybragg.from_nanobragg_args(CHUNKED["interpolation switch-off (compat)"])
    assert 0.0 < interpolated_fraction(sim) < 1.0


def test_pullback_peak_memory_does_not_grow_with_domains():
    """With a fixed chunk the pullback's temporaries are bounded by the chunk: four times the
    domains means four times fewer pixels per chunk, not four times the memory."""
    def peak_bytes(domains):
        sim = arraybragg.from_nanobragg_args(
            SMALL + CELLS["cubic"] + ["-gauss_xtal", "-detpixels", "32", "-mosaic_dom", str(domains)])
        inputs = sim.engine_inputs(chunk_terms=1 << 12)
        cotangent = random_cotangent((32, 32))
        tracemalloc.start()
        try:
            engine.render_vjp(inputs, cotangent)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak_bytes(40) <= 1.25 * peak_bytes(10)


# ---------------------------------------------------------------- array API

STRICT = {
    "gauss, phi, divergence": SMALL + CELLS["triclinic"] + (
        "-gauss_xtal -phi 0 -osc 2 -phisteps 2 -divergence 0.5 -divsteps 2").split(),
    "interpolated, compat": HKL + "-nanobragg_compat -phi 0 -osc 1 -phisteps 2".split(),
}


@pytest.mark.parametrize("case", STRICT)
def test_array_api_strict_pullback_matches_numpy(case):
    sim = arraybragg.from_nanobragg_args(STRICT[case])
    image, pullback = sim.vjp(WRT)
    strict_image, strict_pullback = sim.vjp(WRT, xp=array_api_strict)
    assert array_namespace(strict_image) is array_namespace(array_api_strict.asarray([1.0]))
    np.testing.assert_allclose(to_numpy(strict_image), image, rtol=1e-12, atol=0.0)
    cotangent = random_cotangent(image.shape)
    expected = pullback(cotangent)
    got = strict_pullback(array_api_strict.asarray(cotangent))
    for name in WRT:
        want = np.atleast_1d(expected[name])
        np.testing.assert_allclose(np.atleast_1d(to_numpy(got[name])), want, rtol=1e-10,
                                   atol=1e-10 * np.max(np.abs(want)), err_msg=name)
