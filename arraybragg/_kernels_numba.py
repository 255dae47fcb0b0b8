"""The fused CPU engine: numba kernels, parallel over pixels, one pass per pixel, and its adjoint.

:func:`render` and :func:`render_vjp` take the :class:`arraybragg.engine.EngineInputs` bundle
of the reference ``array`` engine (NumPy arrays, float64 or float32) and evaluate the same sums
in the same order, one pixel per loop iteration: thickness layers, sub-pixel rows and columns,
sources, then the lattices of every (phi step, mosaic domain), phi-major.  Nothing larger than
a pixel's scalars is held per pixel.  Arithmetic is float64 whatever the input dtype; results
come back in the input dtype.

Each helper below is the scalar form of one function of ``engine.py``, ``lattice_factor.py``
or ``structure_factor.py``, with the same formulas and constants.  nanoBragg's serial-order
defects (compat mode) reach the kernels as two (pixel, inner index) positions found by the
array engine's ``_plan``.  The adjoint reduces into one set of cotangents per contiguous part
of the region (a fixed number of parts), so its memory is O(parts x lattices) and its result
does not depend on the number of threads.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from array_api_compat import is_numpy_array
from numba import njit, prange

from .engine import _region, serial_plan
from .lattice_factor import (_CHEBYSHEV_LIMIT, _SERIES_LIMIT, _SINC3_SERIES_LIMIT, GAUSS_WIDTH, ROUND_NORM,
                             TOPHAT_RADIUS_SQR)
from .vectors import cross, unit

SHAPE_CODES = {"square": 0, "round": 1, "gauss": 2, "tophat": 3}
SQUARE, ROUND, GAUSS = SHAPE_CODES["square"], SHAPE_CODES["round"], SHAPE_CODES["gauss"]
PARTS = 256  # contiguous parts of the region run in parallel (and adjoint partial sums)
PROGRESS_STEPS = 64  # kernel calls of a render that reports progress
_PI_SQR = math.pi ** 2

# numba options.  error_model="numpy": IEEE division (x/0 -> inf, 0/0 -> nan), as the array
# engine.  _nrt=False: the kernels allocate nothing, and numba's reference counting of the
# bundles' arrays costs atomic operations at every access.  Helpers are inlined into the loops
# over a part's pixels (inline="always"); together the two make the inner loop 4x faster
# (measured).  Only those loops and the rare tricubic interpolation stay plain calls; the
# compile time is about 15 s, once (cached on disk).
_inline_jit = njit(cache=True, error_model="numpy", inline="always", _nrt=False)
_jit = njit(cache=True, error_model="numpy", _nrt=False)
_parallel_jit = njit(cache=True, error_model="numpy", parallel=True, _nrt=False)

# Kernel arguments (SI units, float64 C-contiguous arrays).  Detector: pix0/fdet/sdet/odet/beam
# (3,); the region (x0, y0, width) of the rendered pixels; ``active`` (spixels*fpixels,) when
# ``masked``.  Beam: ``incident`` (S, 3), ``wavelength_m`` (S,), the polarization basis
# ``b_in``/``e_in`` (S, 3).  Crystal: ``lattice``/``lattice_first`` (L, 3, 3) rows a, b, c in m,
# ``recip_metric`` (3, 3) Å^-2, ``table`` flat F table when ``has_table``.  Order: the sum's
# scale, background and oversample_* flags, and nanoBragg's serial positions (-1: none).
_Detector = namedtuple("_Detector", "pix0 fdet sdet odet beam fpixels x0 y0 width pixel_m oversample layers "
                                    "layer_step_m mu_per_m thick_m curved distance_m close_distance_m point_pixel "
                                    "active masked")
_Beam = namedtuple("_Beam", "incident wavelength_m kahn_factor b_in e_in nopolar dmin_m")
_Crystal = namedtuple("_Crystal", "lattice lattice_first recip_metric n_cells shape fudge table has_table hkl_min "
                                  "hkl_shape default_F interpolate")
_Order = namedtuple("_Order", "scale background oversample_omega oversample_polar oversample_thick compounding "
                              "first_pixel first_inner switch_pixel switch_inner")


# ---------------------------------------------------------------- pixel geometry (engine._subpixel_geometry)

@_inline_jit
def _dot(u, v):
    """u . v of two 3-vectors (tuples or (3,) arrays)."""
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


@_inline_jit
def _rotate_about(v, axis, angle_rad):
    """v (3-tuple) rotated about the unit ``axis`` (3,) by ``angle_rad`` (right-handed)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    dot = _dot(v, axis)
    turn = (axis[1] * v[2] - axis[2] * v[1], axis[2] * v[0] - axis[0] * v[2], axis[0] * v[1] - axis[1] * v[0])
    return (axis[0] * dot * (1.0 - c) + v[0] * c + turn[0] * s,
            axis[1] * dot * (1.0 - c) + v[1] * c + turn[1] * s,
            axis[2] * dot * (1.0 - c) + v[2] * c + turn[2] * s)


@_inline_jit
def _subpixel_position_m(det, fast, slow, layer, sub_s, sub_f):
    """Lab position (3-tuple, m) of one sub-pixel centre of one sensor layer (curved: on the sphere)."""
    sub = det.pixel_m / det.oversample
    f = sub * (fast * det.oversample + sub_f) + sub / 2.0
    s = sub * (slow * det.oversample + sub_s) + sub / 2.0
    o = layer * det.layer_step_m
    pos = (f * det.fdet[0] + s * det.sdet[0] + o * det.odet[0] + det.pix0[0],
           f * det.fdet[1] + s * det.sdet[1] + o * det.odet[1] + det.pix0[1],
           f * det.fdet[2] + s * det.sdet[2] + o * det.odet[2] + det.pix0[2])
    if not det.curved:
        return pos
    start = (det.distance_m * det.beam[0], det.distance_m * det.beam[1], det.distance_m * det.beam[2])
    turned = _rotate_about(start, det.sdet, pos[1] / det.distance_m)
    return _rotate_about(turned, det.fdet, pos[2] / det.distance_m)


@_inline_jit
def _subpixel(det, fast, slow, layer, sub_s, sub_f):
    """(diffracted unit 3-tuple, solid angle (sr), capture fraction) of one sub-pixel and layer."""
    x, y, z = _subpixel_position_m(det, fast, slow, layer, sub_s, sub_f)
    airpath = math.sqrt(x * x + y * y + z * z)
    diffracted = (x / airpath, y / airpath, z / airpath)
    if det.point_pixel:
        omega = 1.0 / (airpath * airpath)
    else:
        omega = det.pixel_m * det.pixel_m / (airpath * airpath) * det.close_distance_m / airpath
    parallax = _dot(diffracted, det.odet)
    depth = det.layer_step_m * det.mu_per_m
    capture = math.exp(-layer * depth / parallax) - math.exp(-(layer + 1) * depth / parallax)
    return diffracted, omega, capture


@_inline_jit
def _scattering(beam, diffracted, source):
    """(q 3-tuple in 1/m, kept by the dmin cut) of one sub-pixel and source."""
    inc, wavelength = beam.incident[source], beam.wavelength_m[source]
    q = ((diffracted[0] - inc[0]) / wavelength, (diffracted[1] - inc[1]) / wavelength,
         (diffracted[2] - inc[2]) / wavelength)
    if not beam.dmin_m > 0.0:
        return q, True
    stol = 0.5 * math.sqrt(_dot(q, q))
    return q, stol <= 0.0 or not beam.dmin_m > 0.5 / stol


@_inline_jit
def _polarization(beam, source, diffracted):
    """nanoBragg's polarization factor 1/2 (1 + cos^2 2t - K cos 2psi sin^2 2t) (engine._polarization)."""
    cos2t = _dot(diffracted, beam.incident[source])
    sin2t_sqr = 1.0 - cos2t * cos2t
    if beam.kahn_factor == 0.0:
        return 0.5 * (1.0 + cos2t * cos2t)
    psi = -math.atan2(_dot(diffracted, beam.b_in[source]), _dot(diffracted, beam.e_in[source]))
    return 0.5 * (1.0 + cos2t * cos2t - beam.kahn_factor * math.cos(2.0 * psi) * sin2t_sqr)


# ---------------------------------------------------------------- lattice factors (lattice_factor.py)

@_inline_jit
def _chebyshev_u(two_cos, n):
    """(U_(n-1)(c), dU_(n-1)/dc) by the three-term recurrence (two_cos = 2c)."""
    value_prev, value = 1.0, two_cos
    deriv_prev, deriv = 0.0, 2.0
    for _ in range(n - 2):
        deriv_prev, deriv = deriv, 2.0 * value + two_cos * deriv - deriv_prev
        value_prev, value = value, two_cos * value - value_prev
    if n == 1:
        return value_prev, deriv_prev
    return value, deriv


@_inline_jit
def _grating(dh, n):
    """sin(n pi dh) / sin(pi dh) (lattice_factor.grating_factor)."""
    x = math.pi * dh
    if n <= _CHEBYSHEV_LIMIT:
        return _chebyshev_u(2.0 * math.cos(x), n)[0]
    den = math.sin(x)
    return float(n) if den == 0.0 else math.sin(n * x) / den


@_inline_jit
def _grating_with_derivative(dh, n):
    """(:func:`_grating`, its derivative d/d(dh)) (lattice_factor.grating_factor_with_derivative)."""
    x = math.pi * dh
    if n <= _CHEBYSHEV_LIMIT:
        value, deriv = _chebyshev_u(2.0 * math.cos(x), n)
        return value, -math.pi * math.sin(x) * deriv
    value = _grating(dh, n)
    if abs(n * x) < _SERIES_LIMIT:
        c2, c4 = n * (n * n - 1) / 3.0, n * (n * n - 1) * (3 * n * n - 7) / 90.0
        return value, math.pi * (-c2 * x + c4 * x * x * x)
    s = math.sin(x)
    return value, math.pi * ((n * math.cos(n * x) * s - math.sin(n * x) * math.cos(x)) / (s * s))


@_inline_jit
def _sinc3_of_square(v):
    """sinc3(sqrt(v)) with its series below the limit (lattice_factor.sinc3_of_square)."""
    if v < _SINC3_SERIES_LIMIT:
        return 1.0 - v / 10.0 + v * v / 280.0 - v * v * v / 15120.0
    x = math.sqrt(v)
    return 3.0 * (math.sin(x) / x - math.cos(x)) / (x * x)


@_inline_jit
def _sinc3_of_square_derivative(v):
    """d/dv of :func:`_sinc3_of_square`."""
    if v < _SINC3_SERIES_LIMIT:
        return -1.0 / 10.0 + v / 140.0 - v * v / 5040.0 + v * v * v / 332640.0
    x = math.sqrt(v)
    dsdx = 3.0 * ((x * x - 3.0) * math.sin(x) + 3.0 * x * math.cos(x)) / (x * x * x * x)
    return dsdx / (2.0 * x)


@_inline_jit
def _total_cells(xtal):
    return float(xtal.n_cells[0] * xtal.n_cells[1] * xtal.n_cells[2])


@_inline_jit
def _square_factor(xtal, dh):
    """Product over axes with N > 1 of sin(N pi dh)/sin(pi dh)."""
    value = 1.0
    for axis in range(3):
        if xtal.n_cells[axis] > 1:
            value = value * _grating(dh[axis], xtal.n_cells[axis])
    return value


@_inline_jit
def _square_factor_grad(xtal, dh):
    """(value, d value/d dh 3-tuple) of :func:`_square_factor`: (d0 f1 f2, f0 d1 f2, f0 f1 d2)."""
    value, g0, g1, g2 = 1.0, 1.0, 1.0, 1.0
    for axis in range(3):
        n = xtal.n_cells[axis]
        f, d = _grating_with_derivative(dh[axis], n) if n > 1 else (1.0, 0.0)
        value = value * f
        g0, g1, g2 = g0 * (d if axis == 0 else f), g1 * (d if axis == 1 else f), g2 * (d if axis == 2 else f)
    return value, (g0, g1, g2)


@_inline_jit
def _round_scale(xtal, axis):
    return float(xtal.n_cells[axis] * xtal.n_cells[axis])


@_inline_jit
def _round_argument(xtal, dh):
    """fudge pi^2 sum((dh N)^2), the squared sinc3 argument of the round shape."""
    total = dh[0] * dh[0] * _round_scale(xtal, 0) + dh[1] * dh[1] * _round_scale(xtal, 1) \
        + dh[2] * dh[2] * _round_scale(xtal, 2)
    return xtal.fudge * _PI_SQR * total


@_inline_jit
def _round_factor(xtal, dh):
    """Ellipsoidal crystal: N^3 0.7236 sinc3(pi sqrt(fudge sum((dh N)^2)))."""
    return _total_cells(xtal) * ROUND_NORM * _sinc3_of_square(_round_argument(xtal, dh))


@_inline_jit
def _round_factor_grad(xtal, dh):
    """(value, d value/d dh 3-tuple) of :func:`_round_factor`."""
    v = _round_argument(xtal, dh)
    amplitude = _total_cells(xtal) * ROUND_NORM
    slope = amplitude * _sinc3_of_square_derivative(v)
    dv = (2.0 * xtal.fudge * _PI_SQR * _round_scale(xtal, 0) * dh[0],
          2.0 * xtal.fudge * _PI_SQR * _round_scale(xtal, 1) * dh[1],
          2.0 * xtal.fudge * _PI_SQR * _round_scale(xtal, 2) * dh[2])
    return amplitude * _sinc3_of_square(v), (slope * dv[0], slope * dv[1], slope * dv[2])


@_inline_jit
def _metric_product(xtal, dh):
    """(dh G* (3-tuple), |dq|^2 = dh^T G* dh in Å^-2)."""
    g = xtal.recip_metric
    row = (dh[0] * g[0, 0] + dh[1] * g[1, 0] + dh[2] * g[2, 0],
           dh[0] * g[0, 1] + dh[1] * g[1, 1] + dh[2] * g[2, 1],
           dh[0] * g[0, 2] + dh[1] * g[1, 2] + dh[2] * g[2, 2])
    return row, _dot(dh, row)


@_inline_jit
def _gauss_scale(xtal):
    """c in F = N^3 exp(-c |dq|^2) (lattice_factor.gauss_exponent_scale), Å^2."""
    total = _total_cells(xtal)
    return total * total * xtal.fudge / GAUSS_WIDTH


@_inline_jit
def _gauss_factor(xtal, dh):
    """Gaussian spots: N^3 exp(-|dq|^2 (Na Nb Nc)^2 fudge / 0.63)."""
    return _total_cells(xtal) * math.exp(-_gauss_scale(xtal) * _metric_product(xtal, dh)[1])


@_inline_jit
def _gauss_factor_grad(xtal, dh):
    """(value, d value/d dh 3-tuple) = (F, -2 c F G* dh); d F/d G* = -c F dh dh^T."""
    row, distance_sqr = _metric_product(xtal, dh)
    c = _gauss_scale(xtal)
    value = _total_cells(xtal) * math.exp(-c * distance_sqr)
    return value, (-2.0 * c * value * row[0], -2.0 * c * value * row[1], -2.0 * c * value * row[2])


@_inline_jit
def _tophat_factor(xtal, dh):
    """Top-hat spots: N^3 where |dq|^2 (Na Nb Nc)^2 fudge < 0.3969, else 0."""
    total = _total_cells(xtal)
    return total if _metric_product(xtal, dh)[1] * total * total * xtal.fudge < TOPHAT_RADIUS_SQR else 0.0


@_inline_jit
def _lattice_factor(xtal, dh):
    """F_latt of the crystal's shape at dh (3-tuple) (lattice_factor.lattice_factor)."""
    if xtal.shape == SQUARE:
        return _square_factor(xtal, dh)
    if xtal.shape == ROUND:
        return _round_factor(xtal, dh)
    if xtal.shape == GAUSS:
        return _gauss_factor(xtal, dh)
    return _tophat_factor(xtal, dh)


@_inline_jit
def _lattice_factor_grad(xtal, dh):
    """(F_latt, dF_latt/d dh 3-tuple) (lattice_factor.lattice_factor_grad); tophat: 0 gradient."""
    if xtal.shape == SQUARE:
        return _square_factor_grad(xtal, dh)
    if xtal.shape == ROUND:
        return _round_factor_grad(xtal, dh)
    if xtal.shape == GAUSS:
        return _gauss_factor_grad(xtal, dh)
    return _tophat_factor(xtal, dh), (0.0, 0.0, 0.0)


# ---------------------------------------------------------------- structure factors (structure_factor.py)

@_inline_jit
def _nearest_F(xtal, h0):
    """F at integer-valued indices h0 (3-tuple): the table entry inside the box, default_F outside (or NaN)."""
    if not xtal.has_table:
        return xtal.default_F
    lo, size = xtal.hkl_min, xtal.hkl_shape
    for axis in range(3):
        if not (h0[axis] >= lo[axis] and h0[axis] <= lo[axis] + size[axis] - 1):
            return xtal.default_F
    i, j, k = int(h0[0] - lo[0]), int(h0[1] - lo[1]), int(h0[2] - lo[2])
    return xtal.table[(i * size[1] + j) * size[2] + k]


@_inline_jit
def _interpolation_out_of_range(xtal, h):
    """True where tricubic interpolation at h (3-tuple) would leave the table (or h is NaN)."""
    lo, size = xtal.hkl_min, xtal.hkl_shape
    for axis in range(3):
        if not (h[axis] - lo[axis] + 3 <= size[axis] and h[axis] - 2 >= lo[axis]):
            return True
    return False


@_inline_jit
def _lagrange_weights(t):
    """Cubic Lagrange weights on nodes -1, 0, 1, 2 at offset t (4-tuple)."""
    return (-(t * (t - 1.0) * (t - 2.0)) / 6.0, (t + 1.0) * (t - 1.0) * (t - 2.0) / 2.0,
            -((t + 1.0) * t * (t - 2.0)) / 2.0, (t + 1.0) * t * (t - 1.0) / 6.0)


@_inline_jit
def _lagrange_weights_derivative(t):
    """d/dt of :func:`_lagrange_weights` (4-tuple)."""
    t2 = t * t
    return (-(3.0 * t2 - 6.0 * t + 2.0) / 6.0, (3.0 * t2 - 4.0 * t - 1.0) / 2.0,
            -(3.0 * t2 - 2.0 * t - 2.0) / 2.0, (3.0 * t2 - 1.0) / 6.0)


@_jit
def _tricubic_F(xtal, h):
    """(F interpolated at h (3-tuple, in range), dF/dh 3-tuple) (structure_factor.tricubic_F)."""
    base = (np.floor(h[0]), np.floor(h[1]), np.floor(h[2]))
    w0, w1, w2 = (_lagrange_weights(h[0] - base[0]), _lagrange_weights(h[1] - base[1]),
                  _lagrange_weights(h[2] - base[2]))
    d0, d1, d2 = (_lagrange_weights_derivative(h[0] - base[0]), _lagrange_weights_derivative(h[1] - base[1]),
                  _lagrange_weights_derivative(h[2] - base[2]))
    lo, size = xtal.hkl_min, xtal.hkl_shape
    s0, s1, s2 = int(base[0] - 1.0 - lo[0]), int(base[1] - 1.0 - lo[1]), int(base[2] - 1.0 - lo[2])
    value, g0, g1, g2 = 0.0, 0.0, 0.0, 0.0
    for i in range(4):
        for j in range(4):
            row = ((s0 + i) * size[1] + s1 + j) * size[2] + s2
            for k in range(4):
                f = xtal.table[row + k]
                value = value + w0[i] * w1[j] * w2[k] * f
                g0 = g0 + d0[i] * w1[j] * w2[k] * f
                g1 = g1 + w0[i] * d1[j] * w2[k] * f
                g2 = g2 + w0[i] * w1[j] * d2[k] * f
    return value, (g0, g1, g2)


@_inline_jit
def _after_switch_off(order, pixel, inner):
    """True at and after nanoBragg's interpolation switch-off point in serial order (compat)."""
    if order.switch_pixel < 0:
        return False
    return pixel > order.switch_pixel or (pixel == order.switch_pixel and inner >= order.switch_inner)


@_inline_jit
def _structure_factor(xtal, order, h, h0, pixel, inner):
    """(F_cell, dF/dh 3-tuple) of one term: tricubic where allowed, else nearest (engine._structure_factor).

    Nearest where the interpolation would leave the table, and (compat) at and after the
    switch-off point; before that point every counted term is in range by construction.
    """
    if xtal.interpolate and not (_interpolation_out_of_range(xtal, h) or _after_switch_off(order, pixel, inner)):
        return _tricubic_F(xtal, h)
    return _nearest_F(xtal, h0), (0.0, 0.0, 0.0)


# ---------------------------------------------------------------- terms of the sum (engine._terms)

@_inline_jit
def _miller(q, lattice):
    """Fractional indices h = (q.a, q.b, q.c) (3-tuple) of q (3-tuple, 1/m) for one lattice (3, 3) in m."""
    return _dot(q, lattice[0]), _dot(q, lattice[1]), _dot(q, lattice[2])


@_inline_jit
def _offsets(h):
    """(nearest index ceil(h - 1/2), h minus it), 3-tuples."""
    h0 = (np.ceil(h[0] - 0.5), np.ceil(h[1] - 0.5), np.ceil(h[2] - 0.5))
    return h0, (h[0] - h0[0], h[1] - h0[1], h[2] - h0[2])


@_inline_jit
def _term(xtal, order, q, lattice, pixel, inner):
    """(F_cell^2 F_latt^2, counted unless F_latt = 0 without background) of one evaluation."""
    h = _miller(q, lattice)
    h0, dh = _offsets(h)
    f_latt = _lattice_factor(xtal, dh)
    f_cell = _structure_factor(xtal, order, h, h0, pixel, inner)[0]
    return f_cell * f_cell * f_latt * f_latt, f_latt != 0.0 or order.background != 0.0


@_inline_jit
def _term_grad(xtal, order, q, lattice, pixel, inner):
    """(term, counted, d term/dh 3-tuple, dh 3-tuple) of one evaluation (engine._lattice_terms)."""
    h = _miller(q, lattice)
    h0, dh = _offsets(h)
    f_latt, f_latt_grad = _lattice_factor_grad(xtal, dh)
    f_cell, f_cell_grad = _structure_factor(xtal, order, h, h0, pixel, inner)
    a, b = 2.0 * f_cell * f_cell * f_latt, 2.0 * f_cell * f_latt * f_latt
    dterm = (a * f_latt_grad[0] + b * f_cell_grad[0], a * f_latt_grad[1] + b * f_cell_grad[1],
             a * f_latt_grad[2] + b * f_cell_grad[2])
    return f_cell * f_cell * f_latt * f_latt, f_latt != 0.0 or order.background != 0.0, dterm, dh


@_inline_jit
def _is_first_evaluation(order, pixel, block_source):
    """True for nanoBragg's very first evaluation (compat phi-zero quirk): its own lattices."""
    return pixel == order.first_pixel and block_source == order.first_inner


@_inline_jit
def _term_factor(order, polar, capture, omega):
    """Factor multiplying the running sum after each counted term under the oversample_* flags."""
    factor = polar if order.oversample_polar else 1.0
    if order.oversample_thick:
        factor = factor * capture
    if order.oversample_omega:
        factor = factor * omega
    return factor


# ---------------------------------------------------------------- once-per-pixel factors (engine._PixelFactors)

@_inline_jit
def _first_nonzero(current, candidate):
    """nanoBragg keeps a per-pixel factor from its first non-zero evaluation."""
    return candidate if current == 0.0 else current


@_inline_jit
def _block_indices(det, block):
    """(layer, sub-pixel row, sub-pixel column) of a block index, nanoBragg's loop order."""
    per_layer = det.oversample * det.oversample
    return block // per_layer, (block % per_layer) // det.oversample, block % det.oversample


@_inline_jit
def _capture_start(det):
    """A layer's capture fraction before its first sub-pixel: 1 without a sensor thickness."""
    return 1.0 if det.thick_m == 0.0 else 0.0


@_inline_jit
def _final_factor(order, omega, capture, polar):
    """Product of the per-pixel factors applied once at the end (those not oversampled)."""
    total = 1.0
    if not order.oversample_thick:
        total = total * capture
    if not order.oversample_polar:
        total = total * polar
    if not order.oversample_omega:
        total = total * omega
    return total


@_inline_jit
def _pixel_factors(det, beam, order, fast, slow):
    """The pixel's final factor (solid angle, capture fraction, polarization as nanoBragg keeps them)."""
    omega, capture, polar = 0.0, 0.0, 1.0 if beam.nopolar else 0.0
    for block in range(det.layers * det.oversample * det.oversample):
        layer, sub_s, sub_f = _block_indices(det, block)
        if sub_s == 0 and sub_f == 0:
            capture = _capture_start(det)
        diffracted, omega_sub, capture_sub = _subpixel(det, fast, slow, layer, sub_s, sub_f)
        omega, capture = _first_nonzero(omega, omega_sub), _first_nonzero(capture, capture_sub)
        for source in range(beam.incident.shape[0]):
            if polar == 0.0 and _scattering(beam, diffracted, source)[1]:
                polar = _polarization(beam, source, diffracted)
    return _final_factor(order, omega, capture, polar)


@_inline_jit
def _activity(det, fast, slow):
    """The pixel's mask value (1 without a mask)."""
    return det.active[slow * det.fpixels + fast] if det.masked else 1.0


# ---------------------------------------------------------------- forward

@_inline_jit
def _render_pixel(det, beam, xtal, order, pixel):
    """scale (background + sum of terms) x final factors of one region pixel (before the mask)."""
    fast, slow = det.x0 + pixel % det.width, det.y0 + pixel // det.width
    n_sources, n_lattices = beam.incident.shape[0], xtal.lattice.shape[0]
    acc = order.background
    omega, capture, polar = 0.0, 0.0, 1.0 if beam.nopolar else 0.0
    for block in range(det.layers * det.oversample * det.oversample):
        layer, sub_s, sub_f = _block_indices(det, block)
        if sub_s == 0 and sub_f == 0:
            capture = _capture_start(det)
        diffracted, omega_sub, capture_sub = _subpixel(det, fast, slow, layer, sub_s, sub_f)
        omega, capture = _first_nonzero(omega, omega_sub), _first_nonzero(capture, capture_sub)
        for source in range(n_sources):
            q, survive = _scattering(beam, diffracted, source)
            if not survive:
                continue
            # as nanoBragg: evaluated only while the pixel has none, or for every sub-pixel when oversampled
            polar_sub = _polarization(beam, source, diffracted) if polar == 0.0 or order.oversample_polar else polar
            polar = _first_nonzero(polar, polar_sub)
            factor = _term_factor(order, polar_sub, capture_sub, omega_sub)
            block_source = block * n_sources + source
            lattices = xtal.lattice_first if _is_first_evaluation(order, pixel, block_source) else xtal.lattice
            for m in range(n_lattices):
                value, counted = _term(xtal, order, q, lattices[m], pixel, block_source * n_lattices + m)
                if counted:
                    acc = (acc + value) * factor if order.compounding else acc + value
    return order.scale * acc * _final_factor(order, omega, capture, polar)


@_jit
def _render_pixels(det, beam, xtal, order, start, stop, out):
    """out[pixel] for region pixels start <= pixel < stop (row-major in the region), serially."""
    for pixel in range(start, stop):
        active = _activity(det, det.x0 + pixel % det.width, det.y0 + pixel // det.width)
        out[pixel] = 0.0 if active == 0.0 else _render_pixel(det, beam, xtal, order, pixel) * active


@_parallel_jit
def _render_kernel(det, beam, xtal, order, start, stop, parts, out):
    """out[pixel] for region pixels start <= pixel < stop, split into ``parts`` rendered in parallel."""
    size = stop - start
    for part in prange(parts):
        _render_pixels(det, beam, xtal, order, start + part * size // parts, start + (part + 1) * size // parts, out)


# ---------------------------------------------------------------- adjoint

@_inline_jit
def _pixel_vjp(det, beam, xtal, order, pixel, weight, lattice_bar, first_bar, metric_bar):
    """Add one pixel's cotangents (weight = d loss / d pixel x scale x final factors x mask).

    Walks the pixel's terms backwards so that, under the oversample_* flags, ``after`` holds
    the product of the factors of this and every later counted term (engine._compound_weights).
    ``lattice_bar``/``first_bar`` (L, 3, 3) per m, ``metric_bar`` (3, 3) per Å^-2 (gauss).
    """
    fast, slow = det.x0 + pixel % det.width, det.y0 + pixel // det.width
    n_sources, n_lattices = beam.incident.shape[0], xtal.lattice.shape[0]
    gauss_c = _gauss_scale(xtal)
    after = 1.0
    for block in range(det.layers * det.oversample * det.oversample - 1, -1, -1):
        layer, sub_s, sub_f = _block_indices(det, block)
        diffracted, omega_sub, capture_sub = _subpixel(det, fast, slow, layer, sub_s, sub_f)
        for source in range(n_sources - 1, -1, -1):
            q, survive = _scattering(beam, diffracted, source)
            if not survive:
                continue
            polar_sub = _polarization(beam, source, diffracted) if order.oversample_polar else 1.0
            factor = _term_factor(order, polar_sub, capture_sub, omega_sub)
            block_source = block * n_sources + source
            first = _is_first_evaluation(order, pixel, block_source)
            lattices = xtal.lattice_first if first else xtal.lattice
            bar = first_bar if first else lattice_bar
            for m in range(n_lattices - 1, -1, -1):
                value, counted, dterm, dh = _term_grad(xtal, order, q, lattices[m], pixel,
                                                       block_source * n_lattices + m)
                if not counted:
                    continue
                if order.compounding:
                    after = after * factor
                w = weight * after
                for i in range(3):
                    for j in range(3):
                        bar[m, i, j] += w * dterm[i] * q[j]
                if xtal.shape == GAUSS:
                    scaled = 2.0 * gauss_c * w * value
                    for i in range(3):
                        for j in range(3):
                            metric_bar[i, j] -= scaled * dh[i] * dh[j]


@_jit
def _vjp_pixels(det, beam, xtal, order, start, stop, cotangent, lattice_bar, first_bar, metric_bar):
    """Add the cotangents of region pixels start <= pixel < stop (``cotangent`` (spixels*fpixels,)).

    Pixels whose cotangent or mask is 0 contribute nothing and are skipped.
    """
    for pixel in range(start, stop):
        fast, slow = det.x0 + pixel % det.width, det.y0 + pixel // det.width
        weight = cotangent[slow * det.fpixels + fast] * _activity(det, fast, slow)
        if weight != 0.0:
            weight = weight * order.scale * _pixel_factors(det, beam, order, fast, slow)
            _pixel_vjp(det, beam, xtal, order, pixel, weight, lattice_bar, first_bar, metric_bar)


@_parallel_jit
def _vjp_kernel(det, beam, xtal, order, n_pixels, cotangent, lattice_bar, first_bar, metric_bar):
    """Cotangents of ``n_pixels`` region pixels in P parts, part p into lattice_bar[p] and metric_bar[p].

    ``lattice_bar`` (P, L, 3, 3) and ``metric_bar`` (P, 3, 3) zeroed; ``first_bar`` (L, 3, 3):
    only the part holding nanoBragg's first evaluation writes it.
    """
    parts = lattice_bar.shape[0]
    for part in prange(parts):
        _vjp_pixels(det, beam, xtal, order, part * n_pixels // parts, (part + 1) * n_pixels // parts, cotangent,
                    lattice_bar[part], first_bar, metric_bar[part])


# ---------------------------------------------------------------- host side: arguments, render, render_vjp

def _f64(x):
    return np.ascontiguousarray(x, dtype=np.float64)


def _i64(values):
    return np.asarray([int(v) for v in values], dtype=np.int64)


def _kernel_arguments(inp, region, plan):
    """(_Detector, _Beam, _Crystal, _Order) of an engine bundle (NumPy) and its compat plan."""
    det = _Detector(
        pix0=_f64(inp.pix0), fdet=_f64(inp.fdet), sdet=_f64(inp.sdet), odet=_f64(inp.odet), beam=_f64(inp.beam),
        fpixels=int(inp.fpixels), x0=int(region.x0), y0=int(region.y0), width=int(region.width),
        pixel_m=float(inp.pixel_m), oversample=int(inp.oversample), layers=int(inp.layers),
        layer_step_m=float(inp.layer_step_m), mu_per_m=float(inp.mu_per_m), thick_m=float(inp.thick_m),
        curved=bool(inp.curved), distance_m=float(inp.distance_m), close_distance_m=float(inp.close_distance_m),
        point_pixel=bool(inp.point_pixel), active=_f64(inp.active) if inp.active is not None else np.ones(0),
        masked=inp.active is not None)
    incident, polar_axis = _f64(inp.incident), _f64(inp.polar_axis)
    b_in = unit(cross(polar_axis, incident))
    beam = _Beam(incident=incident, wavelength_m=_f64(inp.wavelength_m), kahn_factor=float(inp.kahn_factor),
                 b_in=_f64(b_in), e_in=_f64(unit(cross(incident, b_in))), nopolar=bool(inp.nopolar),
                 dmin_m=float(inp.dmin_m))
    lattice = _f64(inp.lattice_m)
    xtal = _Crystal(
        lattice=lattice, lattice_first=lattice if inp.lattice_first_m is None else _f64(inp.lattice_first_m),
        recip_metric=_f64(inp.recip_metric), n_cells=_i64(inp.n_cells),
        shape=SHAPE_CODES[inp.shape], fudge=float(inp.fudge),
        table=_f64(inp.table) if inp.table is not None else np.zeros(0), has_table=inp.table is not None,
        hkl_min=_i64(inp.hkl_min), hkl_shape=_i64(inp.hkl_shape),
        default_F=float(inp.default_F), interpolate=bool(inp.interpolate))
    first = plan.first_evaluation if plan.first_evaluation is not None else (-1, -1)
    switch = plan.switch_off if plan.switch_off is not None else (-1, -1)
    order = _Order(scale=float(inp.scale), background=float(inp.background),
                   oversample_omega=bool(inp.oversample_omega), oversample_polar=bool(inp.oversample_polar),
                   oversample_thick=bool(inp.oversample_thick), compounding=bool(inp.compounding),
                   first_pixel=int(first[0]), first_inner=int(first[1]), switch_pixel=int(switch[0]),
                   switch_inner=int(switch[1]))
    return det, beam, xtal, order


def _check_numpy(inp):
    if not is_numpy_array(inp.pix0):
        raise ValueError(f"the numba engine takes NumPy arrays, got {type(inp.pix0).__name__}; "
                         "use engine='array' for other namespaces")


def _batches(size, progress):
    """Region pixel ranges of the kernel calls: one call, or PROGRESS_STEPS when progress is reported."""
    count = 1 if progress is None else min(size, PROGRESS_STEPS)
    for k in range(count):
        yield k * size // count, (k + 1) * size // count


def render(inp, progress=None):
    """The image (spixels, fpixels), NumPy, in the dtype of the inputs (see engine.render).

    ``progress``, if given, is called with the number of pixels of each finished batch.
    """
    _check_numpy(inp)
    region = _region(inp)
    image = np.zeros((inp.spixels, inp.fpixels), dtype=inp.pix0.dtype)
    if region.size == 0:
        return image
    args = _kernel_arguments(inp, region, serial_plan(inp))
    values = np.empty(region.size, dtype=np.float64)
    for start, stop in _batches(region.size, progress):
        _render_kernel(*args, start, stop, min(PARTS, stop - start), values)
        if progress is not None:
            progress(stop - start)
    image[region.y0:region.y0 + region.height, region.x0:region.x0 + region.width] = \
        values.reshape(region.height, region.width)
    return image


def render_vjp(inp, cotangent):
    """Cotangents of the small inputs for sum(cotangent * render(inp)) (see engine.render_vjp).

    Returns a dict of NumPy arrays in the input dtype: ``lattice`` (L, 3, 3) per m,
    ``lattice_first`` (L, 3, 3) or None, ``recip_metric`` (3, 3) per Å^-2.
    """
    _check_numpy(inp)
    region = _region(inp)
    dtype = inp.pix0.dtype
    cotangent = np.asarray(cotangent, dtype=np.float64)
    if cotangent.shape != (inp.spixels, inp.fpixels):
        raise ValueError(f"cotangent shape {tuple(cotangent.shape)} must equal the image shape "
                         f"({inp.spixels}, {inp.fpixels}) (slow, fast)")
    nl = inp.lattice_m.shape[0]
    parts = max(1, min(PARTS, region.size))
    lattice_bar, first_bar = np.zeros((parts, nl, 3, 3)), np.zeros((nl, 3, 3))
    metric_bar = np.zeros((parts, 3, 3))
    if region.size > 0:
        args = _kernel_arguments(inp, region, serial_plan(inp))
        _vjp_kernel(*args, region.size, np.ascontiguousarray(cotangent.reshape(-1)), lattice_bar, first_bar,
                    metric_bar)
    return {"lattice": lattice_bar.sum(axis=0).astype(dtype),
            "lattice_first": first_bar.astype(dtype) if inp.lattice_first_m is not None else None,
            "recip_metric": metric_bar.sum(axis=0).astype(dtype)}
