"""Parity with nanoBragg: every reference image in tests/data/parity, rendered in-process.

The reference images were made by upstream nanoBragg (see tests/data/parity/cases.json for the
arguments).  Pass rule, as in the parity README: with d = |out - ref| and scale = max|ref|,
a pixel is bad when d > 1e-6 |ref| + 1e-8 scale; at most 0.1 % of the pixels may be bad, the
correlation must be >= 0.9999 and every value finite.  A correct float64 engine differs from
nanoBragg's float32 output by one float32 rounding (~6e-8 of the pixel).
"""

import json
import math

import numpy as np
import pytest

import arraybragg
from conftest import PARITY

RTOL, ATOL, BAD_FRAC, MIN_CORR = 1e-6, 1e-8, 1e-3, 0.9999

with open(PARITY / "cases.json") as _f:
    CASES = {case["name"]: case for case in json.load(_f)}


def reference(name):
    case = CASES[name]
    data = np.fromfile(PARITY / f"{name}.bin", dtype="<f4")
    assert data.size == case["fpixels"] * case["spixels"]
    return data.astype(np.float64).reshape(case["spixels"], case["fpixels"])


def parity_metrics(out, ref):
    """(nbad, allowed, corr, finite) of an image against its reference."""
    out, ref = np.asarray(out, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert out.shape == ref.shape
    finite = bool(np.all(np.isfinite(out)))
    scale = float(np.max(np.abs(ref))) or 1e-300
    d = np.abs(out - ref)
    nbad = int(np.count_nonzero(~(d <= RTOL * np.abs(ref) + ATOL * scale)))
    if out.std() > 0 and ref.std() > 0:
        corr = float(np.corrcoef(out.ravel(), ref.ravel())[0, 1])
    else:
        corr = 1.0 if np.array_equal(out, ref) else 0.0
    return nbad, int(math.floor(BAD_FRAC * ref.size)), corr, finite


def case_argv(name, rng=True, compat=True):
    case = CASES[name]
    argv = list(case["args"])
    if rng and case.get("rng") == "nanobragg":
        argv += ["-rng", "nanobragg"]
    if compat and case.get("compat") == "nanobragg":
        argv += ["-nanobragg_compat"]
    return argv


def render(argv):
    return np.asarray(arraybragg.from_nanobragg_args(argv).run(engine="array"))


def test_data_folder_is_complete():
    assert len(CASES) == 34
    for name, case in CASES.items():
        assert (PARITY / f"{name}.bin").stat().st_size == 4 * case["fpixels"] * case["spixels"]
    for name in ("A.mat", "P1.hkl", "sources.txt"):
        assert (PARITY / "inputs" / name).is_file()


@pytest.mark.filterwarnings("ignore::arraybragg.sampling_rules.NanoBraggWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_case_matches_nanobragg(name, parity_workdir):
    out = render(case_argv(name))
    nbad, allowed, corr, finite = parity_metrics(out, reference(name))
    assert finite, f"{name}: non-finite pixels"
    assert nbad <= allowed, f"{name}: {nbad} pixels beyond tolerance (allowed {allowed})"
    assert corr >= MIN_CORR, f"{name}: correlation {corr}"


def test_metric_rejects_a_part_per_million_scale_error():
    ref = reference("cubic_default_F")
    assert parity_metrics(ref * (1 + 3e-7), ref)[0] == 0
    nbad, allowed, _, _ = parity_metrics(ref * (1 + 2e-6), ref)
    assert nbad > allowed


# ---------------------------------------------------------------- compat-marked cases

def test_phi_zero_quirk_default_mode_differs_from_nanobragg(parity_workdir):
    ref = reference("phi_from_zero_quirk")
    out = render(case_argv("phi_from_zero_quirk", compat=False))
    nbad, _, _, _ = parity_metrics(out, ref)
    assert nbad > 0.5 * ref.size


def single_phi_images(name, angles):
    """Images of the case's command line with one phi step at each of ``angles`` (strings)."""
    args = [a for a in case_argv(name, compat=False) if a not in ("-osc", "2", "-phisteps", "4")]
    phi_at = args.index("-phi") + 1
    images = []
    for phi in angles:
        args[phi_at] = phi
        images.append(render(args))
    return images


def test_phi_zero_quirk_default_mode_renders_the_four_phi_angles(parity_workdir):
    """Default -phi 0 -osc 2 -phisteps 4 is the mean of phi = 0, 0.5, 1.0, 1.5 degrees."""
    out = render(case_argv("phi_from_zero_quirk", compat=False))
    explicit = single_phi_images("phi_from_zero_quirk", ("0", "0.5", "1.0", "1.5"))
    np.testing.assert_allclose(out, np.mean(explicit, axis=0), rtol=1e-12, atol=1e-15 * out.max())


def test_phi_zero_quirk_compat_mode_repeats_the_previous_orientation(parity_workdir):
    """Under compat, phi = 0 reuses phi = 1.5 everywhere except nanoBragg's first evaluation (pixel 0, 0)."""
    compat = render(case_argv("phi_from_zero_quirk"))
    half, one, one_and_half = single_phi_images("phi_from_zero_quirk", ("0.5", "1.0", "1.5"))
    stale = (half + one + 2 * one_and_half) / 4
    differ = np.abs(compat - stale) > 1e-12 * compat.max()
    assert not differ.ravel()[1:].any()


def test_interpolation_fallback_case_is_reproduced_by_default_mode_too(parity_workdir):
    """In this case every lookup after nanoBragg's switch-off is out of range anyway."""
    ref = reference("hkl_interpolate_fallback")
    nbad, allowed, _, _ = parity_metrics(render(case_argv("hkl_interpolate_fallback", compat=False)), ref)
    assert nbad <= allowed


def test_interpolation_switch_off_differs_from_default_where_it_matters(parity_workdir):
    """Beam centred: lookups after the first out-of-range one are often in range again.

    Compat: from the first pixel where the two modes differ on, every pixel is the nearest-
    neighbour image (interpolation is off for the rest of the run).  Default: those pixels keep
    interpolating, so they differ from the nearest-neighbour image.
    """
    args = ("-cell 32 35 38 80 96 104 -misset -10 20 5 -hkl inputs/P1.hkl -lambda 1.0 -N 4 -interpolate "
            "-distance 60 -detpixels_f 40 -detpixels_s 120 -pixel 0.1 -oversample 1").split()
    default = render(args).ravel()
    compat = render(args + ["-nanobragg_compat"]).ravel()
    nearest = render(args[:args.index("-interpolate")] + args[args.index("-interpolate") + 1:]
                     + ["-nointerpolate"]).ravel()
    differ = np.flatnonzero(default != compat)
    assert differ.size > 0.5 * default.size
    first = differ[0]
    assert np.array_equal(compat[first:], nearest[first:])
    assert np.count_nonzero(default[first:] != nearest[first:]) > 0.5 * default.size
    assert np.array_equal(default[:first], compat[:first])


# ---------------------------------------------------------------- rng-marked cases

@pytest.mark.parametrize("name", ["mosaic_domains", "misset_random"])
def test_numpy_stream_differs_from_nanobragg_but_is_reproducible(name, parity_workdir):
    ref = reference(name)
    first = render(case_argv(name, rng=False))
    second = render(case_argv(name, rng=False))
    assert np.array_equal(first, second)
    nbad, _, corr, _ = parity_metrics(first, ref)
    assert nbad > 0.25 * ref.size
    assert corr < MIN_CORR


def test_nanobragg_stream_misset_angles_match_the_log(parity_workdir):
    """misset_random.log: 'random orientation misset angles: -163.713095 -27.840487 -175.580921 deg'."""
    from arraybragg.simulation import misset_angles_deg

    sim = arraybragg.from_nanobragg_args(case_argv("misset_random"))
    assert sim.crystal.misset_seed == -4242
    np.testing.assert_allclose(misset_angles_deg(sim.crystal), [-163.713095, -27.840487, -175.580921], atol=2e-6)


STRICT_CASES = ("custom_vectors_sample_pivot", "curved_detector", "roi_dmin", "sourcefile", "oversample_water",
                "hkl_interpolate_fallback")


@pytest.mark.filterwarnings("ignore::arraybragg.sampling_rules.NanoBraggWarning")
@pytest.mark.parametrize("name", STRICT_CASES)
def test_parity_under_array_api_strict(name, parity_workdir):
    """The engine written against the standard, run in the strict namespace, still matches nanoBragg."""
    import array_api_strict

    image = arraybragg.from_nanobragg_args(case_argv(name)).run(xp=array_api_strict)
    nbad, allowed, corr, finite = parity_metrics(np.from_dlpack(image), reference(name))
    assert finite and nbad <= allowed and corr >= MIN_CORR, (nbad, allowed, corr)
