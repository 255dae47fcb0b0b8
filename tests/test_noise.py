"""Photon noise: reproducibility, Poisson and Gaussian statistics, overloads, and the reference noise images."""

import re
from pathlib import Path

import numpy as np
import pytest

from arraybragg.noise import noise_image, poisson_counts
from arraybragg.smv import read_smv

FILES = Path(__file__).parent / "data" / "files"
N = 100_000
SIGMAS = 4.0


def _assert_poisson_moments(counts, mean):
    """Sample mean within 4 sigma of mean (sigma^2 = mean/n), sample variance within 4 sigma of mean
    (sigma^2 of the variance estimate ~ (mu4 - var^2)/n = (mean + 2 mean^2)/n for a Poisson law)."""
    n = counts.size
    assert abs(counts.mean() - mean) < SIGMAS * np.sqrt(mean / n)
    assert abs(counts.var(ddof=1) - mean) < SIGMAS * np.sqrt((mean + 2 * mean**2) / n)


def test_fixed_seed_reproducible_and_seed_matters():
    mean = np.linspace(0.0, 50.0, 4096).reshape(64, 64)
    first = poisson_counts(mean, seed=1234)
    assert first.dtype == np.float64 and first.shape == mean.shape
    assert np.array_equal(first, poisson_counts(mean, seed=1234))
    assert not np.array_equal(first, poisson_counts(mean, seed=1235))
    assert np.array_equal(np.round(first), first)
    # negative seeds (nanoBragg stores -seed) are masked to 31 bits
    assert np.array_equal(poisson_counts(mean, seed=-1234), poisson_counts(mean, seed=-1234 & 0x7FFFFFFF))


@pytest.mark.parametrize("mean", [0.3, 3.7, 11.9, 12.0, 250.0, 9.0e5])
def test_poisson_moments(mean):
    counts = poisson_counts(np.full(N, mean), seed=20240601)
    _assert_poisson_moments(counts, mean)
    assert counts.min() >= 0


def test_gaussian_regime_above_one_million():
    mean = 4.0e6
    counts = poisson_counts(np.full(N, mean), seed=5)
    assert abs(counts.mean() - mean) < SIGMAS * np.sqrt(mean / N)
    assert abs(counts.var(ddof=1) / mean - 1.0) < SIGMAS * np.sqrt(2.0 / N)
    # documented layout: Poisson draws first (none here), then one standard normal per pixel, rounded
    normal = np.random.Generator(np.random.PCG64(5)).standard_normal(N)
    assert np.array_equal(counts, np.rint(mean + np.sqrt(mean) * normal))


def test_draw_layout_mixed_regimes():
    mean = np.array([[2.0, 2.0e6], [7.5, 3.0e6]])
    rng = np.random.Generator(np.random.PCG64(42))
    poisson = rng.poisson(np.array([2.0, 7.5]))
    gauss = np.rint(np.array([2.0e6, 3.0e6]) + np.sqrt([2.0e6, 3.0e6]) * rng.standard_normal(2))
    assert poisson_counts(mean, seed=42).tolist() == [[poisson[0], gauss[0]], [poisson[1], gauss[1]]]


def test_nonpositive_means_give_zero_and_bad_input():
    assert np.all(poisson_counts(np.array([0.0, -3.0, -1e9]), seed=1) == 0)
    with pytest.raises(ValueError, match="finite"):
        poisson_counts(np.array([1.0, np.nan]), seed=1)
    with pytest.raises(ValueError, match="seed=1.5"):
        poisson_counts(np.ones(3), seed=1.5)


def test_noise_image_overloads_adc_and_roi():
    image = np.zeros((4, 5), dtype=np.float32)
    image[0, :] = 1.0e5  # counts ~ 1e5 +- 1300: always above 65535
    image[1, 0] = 65495.0  # counts + 40 above 65535 about half of the time
    noisy, overloads, photons = noise_image(image, seed=3, adc=40.0)
    counts = poisson_counts(image, seed=3)
    assert overloads == np.count_nonzero(counts + 40 > 65535)
    assert overloads >= 5
    assert np.all(noisy[0] == 65535)
    assert np.all(noisy[2:] == 40)  # zero means: exactly the adc offset
    assert photons == counts.sum()
    noisy, overloads, photons = noise_image(image, seed=3, adc=10.7, roi=(1, 3, 2, 3))
    assert overloads == 0 and photons == 0.0
    assert np.all(noisy[2:, 1:4] == 10)  # counts + adc truncated
    assert np.count_nonzero(noisy) == 6


@pytest.mark.parametrize("name, adc, seed", [("A", 40.0, -1234), ("B", 10.0, -99)])
def test_reference_and_our_noise_images_are_poisson_around_the_float_image(name, adc, seed):
    """Over all pixels, d = noise - adc - float has sum ~ N(0, sum(float)) and
    sum(d^2) - sum(float) ~ N(0, sum(float + 2 float^2)) for Poisson counts: both within 4 sigma."""
    _, reference = read_smv(FILES / f"{name}.noise.img")
    mean = np.fromfile(FILES / f"{name}.float.bin", "<f4").reshape(reference.shape).astype(np.float64)
    ours, overloads, photons = noise_image(mean, seed=seed, adc=adc)
    assert overloads == 0
    for noisy in (reference, ours):
        d = noisy.astype(np.float64) - adc - mean
        assert abs(d.sum()) < SIGMAS * np.sqrt(mean.sum())
        assert abs((d**2).sum() - mean.sum()) < SIGMAS * np.sqrt(np.sum(mean + 2 * mean**2))
    assert photons == ours.astype(np.float64).sum() - adc * ours.size
    printed, printed_overloads = re.search(r"(\d+) photons on noise image \((\d+) overloads\)", (FILES / f"{name}.log").read_text()).groups()
    assert reference.astype(np.float64).sum() - adc * reference.size == float(printed) and printed_overloads == "0"
