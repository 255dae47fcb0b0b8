"""Photon-counting noise (nanoBragg's ``-noisefile``) from a seeded generator.

Draw layout (part of the reproducibility contract; changing it changes every noise image):
one ``numpy.random.Generator(PCG64(seed & 0x7FFFFFFF))`` is created per call; the pixels are
visited in C order (slow rows, fast fastest; for :func:`noise_image` only the pixels inside
the roi). First one ``Generator.poisson`` draw per pixel whose mean is at most 1e6, taken as
a single call on those means in that order; then one ``Generator.standard_normal`` draw per
pixel whose mean exceeds 1e6, in the same order. Means <= 0 draw Poisson(0) = 0. Same seed
and same NumPy version give the same counts.
"""

import numpy as np

from .host import host_array
from .mosaic import check_seed, numpy_generator
from .smv import INT_IMAGE_MAX
from .statistics import float32_roi_values

POISSON_MEAN_LIMIT = 1.0e6


def poisson_counts(mean_image, seed: int) -> np.ndarray:
    """Photon counts with the given means (any shape), float64 holding integers.

    Mean <= 1e6: Poisson(mean); above (nanoBragg's Gaussian regime): mean + sqrt(mean) * N(0, 1),
    rounded to the nearest integer; negative means give 0 counts. The draw layout is in the
    module docstring.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: an integer is required")
    rng = numpy_generator(check_seed("seed", seed))
    mean = host_array(mean_image).astype(np.float64)
    if not np.isfinite(mean).all():
        raise ValueError("mean_image contains NaN or infinite values; finite photon means are required")
    flat = np.maximum(mean.ravel(order="C"), 0.0)
    counts = np.empty_like(flat)
    poisson = flat <= POISSON_MEAN_LIMIT
    counts[poisson] = rng.poisson(flat[poisson])
    gaussian = ~poisson
    if gaussian.any():
        large = flat[gaussian]
        normal = rng.standard_normal(large.size)
        counts[gaussian] = np.maximum(np.rint(large + np.sqrt(large) * normal), 0.0)
    return counts.reshape(mean.shape)


def noise_image(float_image, seed: int, adc=40.0, roi=None) -> tuple[np.ndarray, int, float]:
    """nanoBragg's ``-noisefile`` pixels from a (slow, fast) float image of photon means.

    The image is taken as float32 (what nanoBragg stores). Inside roi = (xmin, xmax, ymin,
    ymax) (inclusive): counts + adc, values above 65535 set to 65535 and counted as overloads,
    negative values 0, then truncated to unsigned 16 bit; outside the roi 0.
    Returns (uint16 image, overloads, total photons = sum of the counts before adc).
    """
    image, inside, values = float32_roi_values(float_image, roi, "noise")
    counts = poisson_counts(values, seed)
    test = counts + float(adc)
    overloads = int(np.count_nonzero(test > INT_IMAGE_MAX))
    out = np.zeros(image.shape, dtype=np.uint16)
    out[inside] = np.trunc(np.clip(test, 0.0, INT_IMAGE_MAX)).astype(np.uint16)
    return out, overloads, float(counts.sum())
