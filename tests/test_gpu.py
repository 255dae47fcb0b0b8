"""CuPy end to end: the same image and gradients on the GPU (skipped where CuPy or a GPU is absent).

The engine code a GPU runs is the array-API code path that tests/test_engine.py already runs
under array_api_strict on the CPU; these tests add device placement and CuPy specifics.
"""
import numpy as np
import pytest

from arraybragg import from_nanobragg_args

cupy = pytest.importorskip("cupy")
try:
    cupy.cuda.runtime.getDeviceCount()
except Exception as err:  # noqa: BLE001 - any CUDA failure means "no GPU here"
    pytest.skip(f"no usable GPU: {err}", allow_module_level=True)

CASES = {
    "square_mosaic": "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 5 -distance 100 -detpixels 64 "
                     "-pixel 0.2 -mosaic 0.5 -mosaic_dom 10 -phi 5 -osc 1 -phisteps 2",
    "gauss_sources": "-cell 70 80 90 75 85 95 -default_F 100 -N 4 -gauss_xtal -distance 100 -detpixels 48 "
                     "-pixel 0.2 -hdivrange 1 -hdivsteps 3 -dispersion 1 -dispsteps 2 -oversample 2 -polar 0.9",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_cupy_image_equals_numpy_and_stays_on_the_device(name):
    sim = from_nanobragg_args(CASES[name].split())
    host = sim.run()
    device = sim.run(xp=cupy)
    assert isinstance(device, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(device), host, rtol=1e-11, atol=1e-12 * host.max())


@pytest.mark.parametrize("name", sorted(CASES))
def test_cupy_gradients_equal_numpy(name):
    sim = from_nanobragg_args(CASES[name].split())
    wrt = ("cell", "mosaic_spread_deg", "misset_deg")
    image, pullback = sim.vjp(wrt)
    cot = np.random.default_rng(3).standard_normal(image.shape)
    expected = pullback(cot)
    _, device_pullback = sim.vjp(wrt, xp=cupy)
    got = device_pullback(cupy.asarray(cot))
    for key in wrt:
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(expected[key]), rtol=1e-9,
                                   atol=1e-12 * np.max(np.abs(expected[key])))
