"""Lattice factors F_latt of the four crystal shapes, and their derivatives.

All functions work on ``dh``, the (..., 3) distance of each fractional Miller index to its
nearest integer (nanoBragg's nearest index ceil(h - 1/2)), which keeps the formulas accurate
at Bragg peaks.  ``n_cells`` are Python integers, ``recip_metric`` is the reciprocal metric
tensor G* in Å^-2 (|dq|^2 = dh^T G* dh).  Derivatives are with respect to ``dh`` (equal to
the derivative with respect to h almost everywhere) and, for gauss, G*.
"""
from __future__ import annotations

import math

from array_api_compat import array_namespace

ROUND_NORM = 0.723601254558268
GAUSS_WIDTH = 0.63
TOPHAT_RADIUS_SQR = 0.3969
_SERIES_LIMIT = 1e-3
_CHEBYSHEV_LIMIT = 12
_SINC3_SERIES_LIMIT = 1e-2


def nearest_index(h):
    """nanoBragg's nearest integer index ceil(h - 1/2) (exact halves round down)."""
    xp = array_namespace(h)
    return xp.ceil(h - 0.5)


def _chebyshev_u(two_cos, n, with_derivative):
    """U_(n-1)(c) and optionally dU_(n-1)/dc by the three-term recurrence (two_cos = 2c)."""
    xp = array_namespace(two_cos)
    value_prev, value = xp.ones_like(two_cos), two_cos
    deriv_prev, deriv = xp.zeros_like(two_cos), 2.0 * xp.ones_like(two_cos)
    for _ in range(n - 2):
        if with_derivative:
            deriv_prev, deriv = deriv, 2.0 * value + two_cos * deriv - deriv_prev
        value_prev, value = value, two_cos * value - value_prev
    if n == 1:
        return value_prev, deriv_prev
    return value, deriv


def grating_factor(dh, n):
    """sin(n pi dh) / sin(pi dh), equal to n at dh = 0 (the 1-D lattice sum, n an integer).

    For n up to 12 it is evaluated as the Chebyshev polynomial U_(n-1)(cos(pi dh)) by its
    three-term recurrence (no division, exact at dh = 0, a third of the cost); for larger n
    as the quotient of sines.
    """
    xp = array_namespace(dh)
    x = math.pi * dh
    if n <= _CHEBYSHEV_LIMIT:
        return _chebyshev_u(2.0 * xp.cos(x), n, with_derivative=False)[0]
    den = xp.sin(x)
    safe = xp.where(den == 0.0, xp.ones_like(den), den)
    return xp.where(den == 0.0, xp.full_like(den, float(n)), xp.sin(n * x) / safe)


def grating_factor_with_derivative(dh, n):
    """(:func:`grating_factor`, its derivative d/d(dh)).

    Small n: -pi sin(pi dh) U'_(n-1)(cos(pi dh)) from the same recurrence (exactly 0 at dh = 0).
    Large n: the quotient rule, with a series near dh = 0 where the quotient cancels.
    """
    xp = array_namespace(dh)
    x = math.pi * dh
    if n <= _CHEBYSHEV_LIMIT:
        value, deriv = _chebyshev_u(2.0 * xp.cos(x), n, with_derivative=True)
        return value, -math.pi * xp.sin(x) * deriv
    small = xp.abs(n * x) < _SERIES_LIMIT
    safe_x = xp.where(small, xp.ones_like(x), x)
    s = xp.sin(safe_x)
    exact = (n * xp.cos(n * safe_x) * s - xp.sin(n * safe_x) * xp.cos(safe_x)) / (s * s)
    c2, c4 = n * (n * n - 1) / 3.0, n * (n * n - 1) * (3 * n * n - 7) / 90.0
    series = -c2 * x + c4 * x * x * x
    return grating_factor(dh, n), math.pi * xp.where(small, series, exact)


def sinc3_of_square(v):
    """sinc3(sqrt(v)) with sinc3(x) = 3 (sin x / x - cos x) / x^2, smooth in v = x^2 >= 0."""
    xp = array_namespace(v)
    small = v < _SINC3_SERIES_LIMIT
    x = xp.sqrt(xp.where(small, xp.ones_like(v), v))
    exact = 3.0 * (xp.sin(x) / x - xp.cos(x)) / (x * x)
    series = 1.0 - v / 10.0 + v * v / 280.0 - v * v * v / 15120.0
    return xp.where(small, series, exact)


def sinc3_of_square_derivative(v):
    """d/dv of :func:`sinc3_of_square`."""
    xp = array_namespace(v)
    small = v < _SINC3_SERIES_LIMIT
    x = xp.sqrt(xp.where(small, xp.ones_like(v), v))
    dsdx = 3.0 * ((x * x - 3.0) * xp.sin(x) + 3.0 * x * xp.cos(x)) / (x * x * x * x)
    series = -1.0 / 10.0 + v / 140.0 - v * v / 5040.0 + v * v * v / 332640.0
    return xp.where(small, series, dsdx / (2.0 * x))


def _total_cells(n_cells):
    return float(n_cells[0] * n_cells[1] * n_cells[2])


def square_factor(dh, n_cells, fudge=1.0, recip_metric=None):
    """Parallelepiped crystal: product over axes with N > 1 of sin(N pi dh)/sin(pi dh); (...,)."""
    xp = array_namespace(dh)
    value = xp.ones_like(dh[..., 0])
    for axis, n in enumerate(n_cells):
        if n > 1:
            value = value * grating_factor(dh[..., axis], n)
    return value


def square_factor_grad(dh, n_cells, fudge=1.0, recip_metric=None):
    """(value (...,), d value / d dh (..., 3)) of :func:`square_factor`."""
    xp = array_namespace(dh)
    ones = xp.ones_like(dh[..., 0])
    pairs = [grating_factor_with_derivative(dh[..., a], n) if n > 1 else (ones, 0.0 * ones)
             for a, n in enumerate(n_cells)]
    (f0, d0), (f1, d1), (f2, d2) = pairs
    return f0 * f1 * f2, xp.stack([d0 * f1 * f2, f0 * d1 * f2, f0 * f1 * d2], axis=-1)


def _round_argument(dh, n_cells, fudge):
    xp = array_namespace(dh)
    scale = xp.asarray([float(n * n) for n in n_cells], dtype=dh.dtype)
    return fudge * math.pi**2 * xp.sum(dh * dh * scale, axis=-1), scale


def round_factor(dh, n_cells, fudge, recip_metric=None):
    """Ellipsoidal crystal: N^3 0.7236 sinc3(pi sqrt(fudge sum((dh N)^2))); (...,)."""
    v, _ = _round_argument(dh, n_cells, fudge)
    return _total_cells(n_cells) * ROUND_NORM * sinc3_of_square(v)


def round_factor_grad(dh, n_cells, fudge, recip_metric=None):
    """(value, d value / d dh (..., 3)) of :func:`round_factor`."""
    v, scale = _round_argument(dh, n_cells, fudge)
    amplitude = _total_cells(n_cells) * ROUND_NORM
    dv = 2.0 * fudge * math.pi**2 * scale * dh
    return amplitude * sinc3_of_square(v), (amplitude * sinc3_of_square_derivative(v))[..., None] * dv


def reciprocal_distance_sqr(dh, recip_metric):
    """|dq|^2 = dh^T G* dh in Å^-2; (...,)."""
    xp = array_namespace(dh)
    return xp.sum(dh * (dh @ recip_metric), axis=-1)


def gauss_exponent_scale(n_cells, fudge):
    """c in F = N^3 exp(-c |dq|^2): (Na Nb Nc)^2 fudge / 0.63 (Å^2)."""
    return _total_cells(n_cells) ** 2 * fudge / GAUSS_WIDTH


def gauss_factor(dh, n_cells, fudge, recip_metric):
    """Gaussian spots: N^3 exp(-|dq|^2 (Na Nb Nc)^2 fudge / 0.63); (...,)."""
    xp = array_namespace(dh)
    c = gauss_exponent_scale(n_cells, fudge)
    return _total_cells(n_cells) * xp.exp(-c * reciprocal_distance_sqr(dh, recip_metric))


def gauss_factor_grad(dh, n_cells, fudge, recip_metric):
    """(value, d value / d dh (..., 3)); d value / d G* is -c value dh dh^T (see docs/adjoints.md)."""
    value = gauss_factor(dh, n_cells, fudge, recip_metric)
    c = gauss_exponent_scale(n_cells, fudge)
    return value, (-2.0 * c * value)[..., None] * (dh @ recip_metric)


def tophat_factor(dh, n_cells, fudge, recip_metric):
    """Top-hat spots: N^3 where |dq|^2 (Na Nb Nc)^2 fudge < 0.3969, else 0; (...,)."""
    xp = array_namespace(dh)
    inside = reciprocal_distance_sqr(dh, recip_metric) * _total_cells(n_cells) ** 2 * fudge < TOPHAT_RADIUS_SQR
    return xp.where(inside, xp.full_like(dh[..., 0], _total_cells(n_cells)), xp.zeros_like(dh[..., 0]))


def tophat_factor_grad(dh, n_cells, fudge, recip_metric):
    """(value, 0): the top-hat is flat inside and outside its edge."""
    return tophat_factor(dh, n_cells, fudge, recip_metric), 0.0 * dh


SHAPES = {"square": (square_factor, square_factor_grad), "round": (round_factor, round_factor_grad),
          "gauss": (gauss_factor, gauss_factor_grad), "tophat": (tophat_factor, tophat_factor_grad)}


def lattice_factor(shape, dh, n_cells, fudge, recip_metric):
    """F_latt of ``shape`` ('square', 'round', 'gauss', 'tophat') at dh (..., 3)."""
    return SHAPES[shape][0](dh, n_cells, fudge, recip_metric)


def lattice_factor_grad(shape, dh, n_cells, fudge, recip_metric):
    """(F_latt, dF_latt/d dh (..., 3)); the top-hat derivative is 0 almost everywhere."""
    return SHAPES[shape][1](dh, n_cells, fudge, recip_metric)
