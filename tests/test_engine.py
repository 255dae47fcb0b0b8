"""The reference array engine: backend independence, chunking, ROI, dmin, float32, adjoint backends."""

import dataclasses

import array_api_strict
import numpy as np
import pytest
from array_api_compat import array_namespace

import arraybragg
from arraybragg import engine
from conftest import PARITY_INPUTS, small_simulation, to_numpy

HKL = str(PARITY_INPUTS / "P1.hkl")

CONFIGS = {
    # square lattice, hkl table with tricubic interpolation (N = 2), phi steps and mosaic domains
    "square_hkl_interpolate": (f"-cell 32 35 38 80 96 104 -misset -10 20 5 -hkl {HKL} -default_F 5 -lambda 1.0 "
                               "-N 2 -distance 60 -detpixels 12 -pixel 0.4 -oversample 1 -phi 5 -osc 1 -phisteps 2 "
                               "-mosaic 0.5 -mosaic_dom 3"),
    # gaussian spots, 2x2 sub-pixels, two sensor layers, Kahn polarization, tilted detector
    "gauss_oversample_thick_polar": ("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 "
                                     "-gauss_xtal -Na 3 -Nb 4 -Nc 5 -distance 80 -detpixels 10 -pixel 0.5 "
                                     "-oversample 2 -detector_thick 200 -detector_abs 150 -detector_thicksteps 2 "
                                     "-polar 0.9 -detector_roty 10"),
    # compounding oversample_* running sums with a dmin cut, a region of interest and water
    "compound_dmin_roi": ("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -N 5 "
                          "-distance 100 -detpixels 12 -pixel 0.4 -oversample 2 -oversample_omega "
                          "-oversample_polar -oversample_thick -detector_thick 100 -polar 0.5 -dmin 42 "
                          "-roi 2 9 3 11 -water 0.05 -hdivrange 1 -hdivsteps 2"),
}
# nanoBragg's serial-order defects: phi-zero stale orientation and the run-wide interpolation switch-off
COMPAT = (f"-cell 32 35 38 80 96 104 -misset -10 20 5 -hkl {HKL} -lambda 1.0 -N 4 -interpolate -distance 60 "
          "-detpixels_f 10 -detpixels_s 30 -pixel 0.4 -oversample 1 -phi 0 -osc 1 -phisteps 2 -nanobragg_compat")


def simulation(name):
    return arraybragg.from_nanobragg_args((COMPAT if name == "compat" else CONFIGS[name]).split())


@pytest.fixture(scope="module")
def numpy_images():
    return {name: np.asarray(simulation(name).run(engine="array")) for name in list(CONFIGS) + ["compat"]}


@pytest.mark.parametrize("name", list(CONFIGS) + ["compat"])
def test_array_api_strict_matches_numpy(name, numpy_images):
    image = simulation(name).run(xp=array_api_strict)
    assert array_namespace(image) is array_api_strict
    assert image.dtype == array_api_strict.float64
    reference = numpy_images[name]
    assert image.shape == reference.shape
    assert reference.max() > 0
    np.testing.assert_allclose(to_numpy(image), reference, rtol=1e-12, atol=1e-12 * reference.max())


def chunk_terms_for(inputs, pixels):
    """The smallest power of two of chunk_terms giving at least ``pixels`` pixels per chunk."""
    terms = 1
    while engine._chunk_pixels(dataclasses.replace(inputs, chunk_terms=terms)) < pixels:
        terms *= 2
    return terms


@pytest.mark.parametrize("name", list(CONFIGS) + ["compat"])
@pytest.mark.parametrize("pixels", [1, 7])
def test_chunking_does_not_change_the_image(name, pixels, numpy_images):
    """Tiny chunks give the default image (up to BLAS blocking: rtol 1e-12)."""
    inputs = simulation(name).engine_inputs()
    inputs = dataclasses.replace(inputs, chunk_terms=chunk_terms_for(inputs, pixels))
    assert engine._chunk_pixels(inputs) < 14
    image = np.asarray(engine.render(inputs))
    np.testing.assert_allclose(image, numpy_images[name], rtol=1e-12, atol=0)
    assert np.array_equal(image == 0.0, numpy_images[name] == 0.0)


def test_compat_defects_are_present_in_the_test_configuration(numpy_images):
    """The compat configuration really exercises the serial-order defects (else chunking proves little)."""
    default = np.asarray(arraybragg.from_nanobragg_args(COMPAT.split()[:-1]).run(engine="array"))
    assert np.count_nonzero(default != numpy_images["compat"]) > 0.25 * default.size
    plan = engine._plan(np, simulation("compat").engine_inputs(), engine._region(simulation("compat").engine_inputs()))
    assert plan.first_evaluation == (0, 0)
    assert plan.switch_off is not None


def test_roi_outside_is_exactly_zero(numpy_images):
    image = numpy_images["compound_dmin_roi"]
    inside = np.zeros(image.shape, dtype=bool)
    inside[3:12, 2:10] = True                       # -roi 2 9 3 11: fast 2..9, slow 3..11 inclusive
    assert np.all(image[~inside] == 0.0)
    assert np.count_nonzero(image[inside]) > 0.5 * inside.sum()


DMIN_WATER = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -N 5 -distance 100 "
              "-detpixels 12 -pixel 0.4 -oversample 2 -dmin 48 -water 0.05 -hdivrange 1 -hdivsteps 2")


def test_dmin_partially_cuts_pixels_in_the_compounding_configuration(numpy_images):
    sim = simulation("compound_dmin_roi")
    uncut = np.asarray(sim.replace(dmin_A=0.0).run(engine="array"))
    changed = numpy_images["compound_dmin_roi"] != uncut
    assert 0 < np.count_nonzero(changed) < 10


def test_dmin_removes_whole_pixels_including_water():
    """Pixels whose every term is beyond dmin are exactly 0, water background included."""
    sim = arraybragg.from_nanobragg_args(DMIN_WATER.split())
    assert sim.beam.water_um > 0
    cut = np.asarray(sim.run(engine="array"))
    uncut = np.asarray(sim.replace(dmin_A=0.0).run(engine="array"))
    zeroed = cut == 0.0
    assert 0 < np.count_nonzero(zeroed) < 0.5 * cut.size
    assert np.all(uncut[zeroed] > 0)
    assert np.all(cut[~zeroed] > 0)


def test_dmin_cut_pixel_under_all_oversample_flags_keeps_the_bare_water_term():
    """nanoBragg's model (checked against the C program): with -oversample_omega/_polar/_thick no factor
    is applied at the end, so a pixel whose every term is cut keeps r_e^2 fluence water / steps."""
    args = DMIN_WATER.split() + ["-oversample_omega", "-oversample_polar", "-oversample_thick",
                                 "-detector_thick", "100"]
    sim = arraybragg.from_nanobragg_args(args)
    inputs = sim.engine_inputs()
    cut = np.asarray(engine.render(inputs))
    uncut = np.asarray(sim.replace(dmin_A=0.0).run(engine="array"))
    bare = inputs.scale * inputs.background
    full = np.isclose(cut, bare, rtol=1e-12, atol=0)
    assert full.any()
    assert np.all(uncut[full] < 1e-3 * bare)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_float32_is_close_to_float64(name, numpy_images):
    """rtol 1e-4, atol 1e-6 of the peak (the parity README's float32 tolerance), at most 1 % of pixels beyond.

    Fractional indices carry ~1e-7 relative float32 error, which steep flanks of the lattice factor
    turn into ~1e-4 of a single term; under the compounding flags a pixel is dominated by its last
    term, so there is no averaging to hide that.
    """
    image32 = np.asarray(simulation(name).run(dtype=np.float32, engine="array"))
    assert image32.dtype == np.float32
    reference = numpy_images[name]
    d = np.abs(image32.astype(np.float64) - reference)
    bad = d > 1e-4 * np.abs(reference) + 1e-6 * reference.max()
    assert np.count_nonzero(bad) <= 0.01 * reference.size
    assert np.all(d <= 1e-3 * np.abs(reference) + 1e-6 * reference.max())


def test_float32_under_array_api_strict():
    sim = simulation("gauss_oversample_thick_polar")
    image = sim.run(xp=array_api_strict, dtype=array_api_strict.float32)
    assert image.dtype == array_api_strict.float32
    reference = np.asarray(sim.run(engine="array"))
    np.testing.assert_allclose(to_numpy(image), reference, rtol=1e-4, atol=1e-6 * reference.max())


@pytest.mark.parametrize("name", ["square_hkl_interpolate", "gauss_oversample_thick_polar", "compound_dmin_roi",
                                  "compat"])
def test_render_vjp_under_array_api_strict_matches_numpy(name):
    sim = simulation(name)
    rng = np.random.Generator(np.random.PCG64(11))
    cotangent = rng.standard_normal((sim.detector.spixels, sim.detector.fpixels))
    reference = engine.render_vjp(sim.engine_inputs(), cotangent)
    strict = engine.render_vjp(sim.engine_inputs(xp=array_api_strict), array_api_strict.asarray(cotangent))
    assert set(strict) == set(reference)
    for key, value in reference.items():
        if value is None:
            assert strict[key] is None
            continue
        assert array_namespace(strict[key]) is array_api_strict
        scale = np.abs(value).max()
        assert scale > 0 or key != "lattice"
        np.testing.assert_allclose(to_numpy(strict[key]), value, rtol=1e-12, atol=1e-12 * scale)


def test_render_vjp_matches_a_finite_difference_of_render():
    """d/dt sum(c * render(lattice + t * L)) = <vjp lattice, L>, central difference in float64."""
    sim = simulation("gauss_oversample_thick_polar")
    inputs = sim.engine_inputs()
    rng = np.random.Generator(np.random.PCG64(5))
    cotangent = rng.standard_normal((inputs.spixels, inputs.fpixels))
    direction = rng.standard_normal(inputs.lattice_m.shape) * 1e-10
    grads = engine.render_vjp(inputs, cotangent)
    t = 1e-4

    def loss(s):
        moved = dataclasses.replace(inputs, lattice_m=inputs.lattice_m + s * direction)
        return float(np.sum(cotangent * np.asarray(engine.render(moved))))

    fd = (loss(t) - loss(-t)) / (2 * t)
    assert float(np.sum(grads["lattice"] * direction)) == pytest.approx(fd, rel=1e-6)


def test_oversample_thick_without_a_sensor_gives_a_zero_image():
    """nanoBragg's model (max_I = 0 from the C program): the recomputed capture fraction of a layer of
    zero thickness is 0 and multiplies every running sum."""
    sim = arraybragg.from_nanobragg_args("-cell 50 50 50 90 90 90 -default_F 1 -N 3 -detpixels 8 -oversample 1 "
                                         "-oversample_thick".split())
    assert np.all(np.asarray(sim.run(engine="array")) == 0.0)
    assert np.asarray(sim.replace(oversample_thick=False).run(engine="array")).max() > 0


def test_progress_callback_counts_every_rendered_pixel_once():
    sim = small_simulation("-roi", "2", "13", "3", "9")
    inputs = dataclasses.replace(sim.engine_inputs(), chunk_terms=7)
    seen = []
    engine.render(inputs, progress=seen.append)
    assert len(seen) > 1 and sum(seen) == 12 * 7 == engine.count_pixels(inputs)
