"""The numba engine against the reference array engine: every feature, the parity cases, the seam.

Criterion (docs/architecture.md, "Engines"): on the same float64 inputs the numba image is
within 1e-12 of the array engine's largest pixel, and every gradient component within 1e-10
of the largest component of that gradient.  Each configuration below switches on one feature
(or a few that interact); the feature checks make sure the configuration really exercises it.
"""

import dataclasses
import subprocess
import sys

import array_api_strict
import numpy as np
import pytest
from array_api_compat import array_namespace

numba = pytest.importorskip("numba")

import arraybragg  # noqa: E402
import test_parity as parity  # noqa: E402
from arraybragg import _kernels_numba as kernels  # noqa: E402
from arraybragg import engine, engines  # noqa: E402
from arraybragg.lattice_factor import nearest_index  # noqa: E402
from arraybragg.structure_factor import interpolation_out_of_range  # noqa: E402
from conftest import DATA, PARITY_INPUTS  # noqa: E402

IMAGE_TOL, GRADIENT_TOL = 1e-12, 1e-10
WRT = ("cell", "mosaic_spread_deg", "misset_deg")
HKL = str(DATA / "inputs" / "P1.hkl")
SOURCES = str(PARITY_INPUTS / "sources.txt")
BASE = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -distance 100 -detpixels 16 "
        "-pixel 0.4 -oversample 1")
HKL_BASE = "-cell 32 35 38 80 96 104 -misset -10 20 5 -hkl " + HKL + " -lambda 1.0"
COMPAT_CASE = {name: " ".join(parity.case_argv(name, rng=False, compat=False))
               for name in ("phi_from_zero_quirk", "hkl_interpolate_fallback")}

CONFIGS = {
    "square_chebyshev": BASE + " -N 5",
    # N > 12: quotient of sines; pixel (8, 8) sits on the direct beam (series of the derivative)
    "square_large_n": BASE + " -Na 14 -Nb 13 -Nc 20 -Xbeam 3.2 -Ybeam 3.2",
    "round": BASE + " -N 5 -round_xtal",
    "gauss": BASE + " -Na 3 -Nb 4 -Nc 5 -gauss_xtal",
    "tophat": BASE + " -N 4 -tophat_spots -fudge 2.5",
    "hkl_nearest": HKL_BASE + " -default_F 5 -N 6 -distance 38 -detpixels 16 -pixel 0.6 -oversample 1",
    "hkl_interpolate": HKL_BASE + " -N 2 -distance 40 -detpixels 16 -pixel 0.8 -oversample 1",
    "phi_steps": BASE + " -N 5 -phi 5 -osc 1 -phisteps 3",
    "mosaic": BASE + " -N 5 -mosaic 0.5 -mosaic_dom 4",
    "divergence_dispersion": BASE + " -N 5 -hdivrange 1 -hdivsteps 2 -vdivrange 1 -vdivsteps 2 -dispersion 10 "
                                    "-dispsteps 2",
    "sourcefile": BASE + " -N 5 -sourcefile " + SOURCES,
    "oversample_3": BASE.replace("-oversample 1", "-oversample 3") + " -N 5",
    "kahn_polarization": BASE + " -N 5 -polar 0.9",
    "nopolar_point_pixel": BASE + " -N 5 -nopolar -point_pixel",
    "curved_detector": BASE.replace("-distance 100", "-distance 50") + " -N 5 -curved_det",
    "thickness_layers": BASE + " -N 5 -detector_thick 200 -detector_abs 150 -detector_thicksteps 3 "
                               "-detector_roty 20",
    "oversample_omega": BASE + " -N 5 -oversample 2 -oversample_omega",
    "oversample_polar": BASE + " -N 5 -oversample 2 -oversample_polar -polar 0.7",
    "oversample_polar_nopolar": BASE + " -N 5 -oversample 2 -oversample_polar -nopolar",
    "oversample_thick": BASE + " -N 5 -oversample 2 -oversample_thick -detector_thick 100",
    "oversample_all": BASE + " -N 5 -oversample 2 -oversample_omega -oversample_polar -oversample_thick "
                             "-detector_thick 100 -detector_thicksteps 2 -hdivrange 1 -hdivsteps 2 -mosaic 0.3 "
                             "-mosaic_dom 3",
    "dmin": BASE.replace("-distance 100", "-distance 60") + " -N 5 -dmin 30",
    "roi": BASE + " -N 5 -roi 2 9 3 11",
    "mask": BASE + " -N 5 -mosaic 0.3 -mosaic_dom 2",
    "water": BASE + " -N 5 -water 0.05",
    "water_compounding_dmin": BASE.replace("-distance 100", "-distance 60") + " -N 5 -water 0.05 -oversample 2 "
                                                                             "-oversample_omega -dmin 30",
    "compat_phi_zero": COMPAT_CASE["phi_from_zero_quirk"].replace("inputs/", str(PARITY_INPUTS) + "/")
    + " -nanobragg_compat",
    "compat_interpolate_fallback": COMPAT_CASE["hkl_interpolate_fallback"].replace("inputs/", str(PARITY_INPUTS) + "/")
    + " -nanobragg_compat",
    # beam centred on a small detector: lookups after the first out-of-range one are often in range again
    "compat_switch_off": HKL_BASE + " -N 4 -interpolate -distance 60 -detpixels_f 10 -detpixels_s 30 -pixel 0.4 "
                                    "-oversample 1 -nanobragg_compat",
}


def simulation(name):
    sim = arraybragg.from_nanobragg_args(CONFIGS[name].split())
    if name == "mask":
        slow, fast = np.indices((sim.detector.spixels, sim.detector.fpixels))
        sim = sim.replace(mask=(slow + 2 * fast) % 3 != 0)
    return sim


def cotangent(shape):
    return np.random.default_rng(20240611).normal(size=shape)


def assert_image_close(image, reference, tol=IMAGE_TOL):
    assert reference.max() > 0
    assert np.max(np.abs(image - reference)) <= tol * np.max(np.abs(reference))


def assert_gradients_close(grads, reference):
    for name, ref in reference.items():
        ref, got = np.atleast_1d(ref), np.atleast_1d(grads[name])
        assert np.max(np.abs(got - ref)) <= GRADIENT_TOL * np.max(np.abs(ref)), name


@pytest.mark.filterwarnings("ignore::arraybragg.sampling_rules.NanoBraggWarning")
@pytest.mark.parametrize("name", CONFIGS)
def test_image_and_gradients_match_the_array_engine(name):
    sim = simulation(name)
    reference, reference_pullback = sim.vjp(WRT, engine="array")
    image, pullback = sim.vjp(WRT, engine="numba")
    assert isinstance(image, np.ndarray) and image.dtype == np.float64
    assert_image_close(image, np.asarray(reference))
    cot = cotangent(image.shape)
    assert_gradients_close(pullback(cot), reference_pullback(cot))


# ---------------------------------------------------------------- the configurations exercise their feature

def first_subpixel_indices(sim):
    """Fractional Miller indices (pixels, S, L, 3) of the first sub-pixel of every pixel."""
    inputs = sim.engine_inputs()
    region = engine._region(inputs)
    fast, slow, _ = engine._chunk_coordinates(np, inputs, region, 0, region.size)
    geo = engine._subpixel_geometry(np, inputs, fast, slow, 0, 0, 0)
    return engine._miller(np, geo.q, inputs.lattice_m)


def test_large_n_configuration_reaches_the_quotient_and_its_series():
    sim = simulation("square_large_n")
    assert min(sim.crystal.n_cells) > 12
    dh = first_subpixel_indices(sim) - nearest_index(first_subpixel_indices(sim))
    assert np.any(np.abs(np.pi * min(sim.crystal.n_cells) * dh) < 1e-3)


def test_hkl_configurations_look_up_inside_and_outside_the_table():
    nearest = simulation("hkl_nearest")
    h0 = nearest_index(first_subpixel_indices(nearest))
    lo = np.asarray(nearest.crystal.hkl.hkl_min)
    hi = lo + np.asarray(nearest.crystal.hkl.grid.shape) - 1
    inside = np.all((h0 >= lo) & (h0 <= hi), axis=-1)
    assert inside.any() and not inside.all()
    interpolated = simulation("hkl_interpolate")
    assert interpolated.geometry().interpolate
    out = interpolation_out_of_range(first_subpixel_indices(interpolated), tuple(interpolated.crystal.hkl.hkl_min),
                                     interpolated.crystal.hkl.grid.shape)
    assert out.any() and not out.all()


@pytest.mark.parametrize("name, defect, changed", [("compat_phi_zero", "first_evaluation", 1),
                                                   ("compat_interpolate_fallback", "switch_off", 0),
                                                   ("compat_switch_off", "switch_off", 0.25)])
def test_compat_configurations_reach_the_defects(name, defect, changed):
    """nanoBragg's serial-order defect is located, and changes at least ``changed`` pixels (or a fraction).

    In the fallback case every lookup after the switch-off is out of range anyway (test_parity).
    """
    compat = simulation(name)
    inputs = compat.engine_inputs()
    assert getattr(engine._plan(np, inputs, engine._region(inputs)), defect) is not None
    differ = compat.run(engine="numba") != compat.replace(nanobragg_compat=False).run(engine="numba")
    assert np.count_nonzero(differ) >= (changed if changed >= 1 else changed * differ.size)


def test_compounding_configuration_has_a_background_and_a_dmin_cut():
    sim = simulation("water_compounding_dmin")
    assert engine.count_pixels(sim.engine_inputs()) > np.count_nonzero(sim.run(engine="array") > 0.0) > 0
    assert sim.engine_inputs().background > 0.0


# ---------------------------------------------------------------- nanoBragg parity through the numba engine

@pytest.mark.filterwarnings("ignore::arraybragg.sampling_rules.NanoBraggWarning")
@pytest.mark.parametrize("name", sorted(parity.CASES))
def test_parity_case_through_numba(name, parity_workdir):
    out = arraybragg.from_nanobragg_args(parity.case_argv(name)).run(engine="numba")
    nbad, allowed, corr, finite = parity.parity_metrics(out, parity.reference(name))
    assert finite, f"{name}: non-finite pixels"
    assert nbad <= allowed, f"{name}: {nbad} pixels beyond tolerance (allowed {allowed})"
    assert corr >= parity.MIN_CORR, f"{name}: correlation {corr}"


# ---------------------------------------------------------------- float32

def test_float32_inputs_are_computed_in_float64_and_returned_in_float32():
    """float32 inputs, float64 arithmetic: closer to the float64 image than the array engine's float32."""
    sim = simulation("oversample_all").replace(kahn_factor=0.9)
    image = sim.run(dtype=np.float32, engine="numba")
    assert image.dtype == np.float32
    reference = np.asarray(sim.run(engine="array"))
    assert_image_close(image, reference, tol=1e-5)
    assert_image_close(image, np.asarray(sim.run(dtype=np.float32, engine="array")), tol=1e-4)
    inputs32 = sim.engine_inputs(dtype=np.float32)
    cot = cotangent(image.shape)
    grads = kernels.render_vjp(inputs32, cot.astype(np.float32))
    reference_grads = engine.render_vjp(sim.engine_inputs(), cot)
    assert grads["lattice"].dtype == np.float32
    for name in ("lattice", "recip_metric"):
        scale = np.max(np.abs(reference_grads[name])) or 1.0
        assert np.max(np.abs(grads[name] - reference_grads[name])) <= 1e-5 * scale


# ---------------------------------------------------------------- invariance: batches, chunk_terms, threads

def test_progress_batches_and_chunk_terms_do_not_change_the_image():
    sim = simulation("compat_switch_off")
    inputs = sim.engine_inputs()
    whole = kernels.render(inputs)
    seen = []
    batched = kernels.render(dataclasses.replace(inputs, chunk_terms=7), progress=seen.append)
    assert len(seen) > 1 and sum(seen) == engine.count_pixels(inputs)
    assert np.array_equal(whole, batched)


def test_thread_count_changes_neither_image_nor_gradients():
    """The adjoint reduces into a fixed set of parts: bitwise the same result on any thread count."""
    inputs = simulation("oversample_all").engine_inputs()
    cot = cotangent((inputs.spixels, inputs.fpixels))
    threads = numba.get_num_threads()
    if threads < 2:
        pytest.skip("numba runs one thread here: no other thread count to compare")
    results = []
    try:
        for count in sorted({1, threads}):
            numba.set_num_threads(count)
            results.append((kernels.render(inputs), kernels.render_vjp(inputs, cot)))
    finally:
        numba.set_num_threads(threads)
    (image, grads), (other_image, other_grads) = results[0], results[-1]
    assert np.array_equal(image, other_image)
    assert all(np.array_equal(grads[k], other_grads[k]) for k in ("lattice", "recip_metric"))


# ---------------------------------------------------------------- the engine seam

def test_auto_picks_numba_for_numpy_and_array_elsewhere():
    assert engines.available_engines() == ("array", "numba")
    assert engines.select_engine("auto", np).name == "numba"
    assert engines.select_engine("auto", np, np.float32).name == "numba"
    assert engines.select_engine("auto", np, np.float16).name == "array"
    assert engines.select_engine("auto", array_api_strict).name == "array"
    chosen = engines.select_engine("array", np)
    assert (chosen.render, chosen.render_vjp) == (engine.render, engine.render_vjp)


def test_auto_renders_array_api_strict_inputs_with_the_array_engine():
    sim = simulation("square_chebyshev")
    image = sim.run(xp=array_api_strict)
    assert array_namespace(image) is array_api_strict
    assert_image_close(np.asarray(image), sim.run(engine="numba"))


@pytest.mark.parametrize("name, xp, match", [
    ("fast", np, r"engine='fast'.*'array', 'numba', 'auto'"),
    ("numba", array_api_strict, r"engine='numba'.*NumPy.*'array' or 'auto'"),
])
def test_select_engine_rejects_what_cannot_run(name, xp, match):
    with pytest.raises(ValueError, match=match):
        engines.select_engine(name, xp)


def test_asking_for_numba_on_other_arrays_fails_at_run_and_in_the_kernel_entry():
    sim = simulation("square_chebyshev")
    with pytest.raises(ValueError, match="engine='numba'"):
        sim.run(xp=array_api_strict, engine="numba")
    with pytest.raises(ValueError, match="numba engine takes NumPy arrays"):
        kernels.render(sim.engine_inputs(xp=array_api_strict))


def test_without_numba_auto_falls_back_and_numba_is_refused(monkeypatch):
    monkeypatch.delitem(engines.ENGINES, "numba")
    assert engines.select_engine("auto", np).name == "array"
    with pytest.raises(ValueError, match=r"engine='numba' needs the numba package.*'array'"):
        engines.select_engine("numba", np)


def test_arraybragg_imports_and_renders_when_numba_cannot_be_imported():
    code = ("import sys; sys.modules['numba'] = None\n"
            "import arraybragg\n"
            "from arraybragg import engines\n"
            "assert engines.available_engines() == ('array',)\n"
            "assert 'arraybragg._kernels_numba' not in sys.modules\n"
            "sim = arraybragg.from_nanobragg_args('-cell 50 50 50 90 90 90 -default_F 1 -N 3 -detpixels 8'.split())\n"
            "assert sim.run().max() > 0\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cotangent_of_the_wrong_shape_is_rejected():
    inputs = simulation("square_chebyshev").engine_inputs()
    with pytest.raises(ValueError, match="cotangent shape"):
        kernels.render_vjp(inputs, np.ones((3, 4)))
