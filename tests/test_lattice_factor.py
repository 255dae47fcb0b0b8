"""Lattice factors of the four crystal shapes: values at known points, derivatives, peak accuracy.

Derivatives are compared with central finite differences in float64: step 1e-6 relative to the
scale of the argument, tolerance 1e-7 relative to the largest derivative (the FD truncation
error is ~step^2 f''' and its rounding error ~1e-16 f / step).
"""

import math

import numpy as np
import pytest

from arraybragg.lattice_factor import (GAUSS_WIDTH, ROUND_NORM, TOPHAT_RADIUS_SQR, gauss_factor,
                                       gauss_factor_grad, grating_factor, grating_factor_with_derivative,
                                       lattice_factor, lattice_factor_grad, nearest_index, reciprocal_distance_sqr,
                                       round_factor, round_factor_grad, sinc3_of_square, sinc3_of_square_derivative,
                                       square_factor, square_factor_grad, tophat_factor)
from conftest import arr, central_difference_columns, to_numpy

CUBIC_100_METRIC = np.eye(3) / 100.0**2
TRICLINIC_METRIC = np.array([[2.1e-4, 1.5e-5, -2.0e-5], [1.5e-5, 1.7e-4, 8.0e-6], [-2.0e-5, 8.0e-6, 1.3e-4]])


def central(f, x, step):
    return (f(x + step) - f(x - step)) / (2 * step)


def sinc3(x):
    return 3.0 * (math.sin(x) / x - math.cos(x)) / x**2


# ---------------------------------------------------------------- nearest index

def test_nearest_index_rounds_halves_down(xp):
    h = arr(xp, [-1.5, -0.5, -0.49, 0.0, 0.5, 0.51, 6.5, 7.2])
    np.testing.assert_array_equal(to_numpy(nearest_index(h)), [-2, -1, 0, 0, 0, 1, 6, 7])


# ---------------------------------------------------------------- square (sincg)

# n <= 12 takes the Chebyshev recurrence, larger n the quotient of sines (with a series near 0)
GRATING_N = [2, 5, 12, 13, 25, 40]


def grating_derivative(dh, n):
    value, derivative = grating_factor_with_derivative(dh, n)
    np.testing.assert_array_equal(to_numpy(value), to_numpy(grating_factor(dh, n)))
    return derivative


@pytest.mark.parametrize("n", GRATING_N)
def test_grating_is_n_at_integers_and_zero_at_one_over_n(n, xp):
    np.testing.assert_array_equal(to_numpy(grating_factor(arr(xp, [0.0, -0.0]), n)), [n, n])
    zeros = to_numpy(grating_factor(arr(xp, [1.0 / n, -1.0 / n, 2.0 / n if n > 2 else 1.0 / n]), n))
    np.testing.assert_allclose(zeros, 0.0, atol=1e-13 * n)


@pytest.mark.parametrize("n", GRATING_N)
def test_grating_sin_ratio_at_0_3(n, xp):
    expected = math.sin(n * math.pi * 0.3) / math.sin(math.pi * 0.3)
    assert to_numpy(grating_factor(arr(xp, [0.3]), n))[0] == pytest.approx(expected, rel=1e-14)


def test_square_factor_is_product_over_axes_with_n_above_one(xp):
    dh = np.array([[0.3, -0.2, 0.45], [0.0, 0.0, 0.0], [0.1, 0.0, -0.25]])
    got = to_numpy(square_factor(arr(xp, dh), (5, 1, 3)))
    g = lambda x, n: math.sin(n * math.pi * x) / math.sin(math.pi * x) if x != 0 else n
    expected = [g(row[0], 5) * g(row[2], 3) for row in dh]
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    np.testing.assert_array_equal(to_numpy(square_factor(arr(xp, dh), (1, 1, 1))), 1.0)


@pytest.mark.parametrize("n", [5, 25])
def test_grating_keeps_its_digits_at_a_bragg_peak(n, xp):
    """h = 7 + 1e-9: sin(N pi h)/sin(pi h) loses ~7 digits; the distance to the nearest index does not."""
    h = 7.0 + 1e-9
    naive = math.sin(n * math.pi * h) / math.sin(math.pi * h)
    dh = h - 7.0                                    # exact (Sterbenz)
    x = math.pi * dh
    exact = n - n * (n * n - 1) * x * x / 6.0       # series; the next term is ~1e-33
    h_arr = arr(xp, [h])
    ours = to_numpy(grating_factor(h_arr - nearest_index(h_arr), n))[0]
    assert abs(ours - exact) <= 4e-16 * n
    assert abs(naive - exact) > 1e-8


def test_square_factor_at_bragg_peak_is_n_cubed(xp):
    h = arr(xp, [[7.0 + 1e-9, -3.0 - 2e-9, 12.0 + 5e-10]])
    value = to_numpy(square_factor(h - nearest_index(h), (5, 6, 7)))[0]
    assert value == pytest.approx(5 * 6 * 7, rel=1e-14)


@pytest.mark.parametrize("n", GRATING_N)
@pytest.mark.parametrize("dh", [0.0, 1e-7, -3e-6, 1e-4, 0.013, 0.2, -0.37, 0.49])
def test_grating_derivative_vs_central_difference(n, dh, xp):
    """Step 1e-6; FD truncation ~ step^2 n^5 pi^4 / 6 and rounding ~ 1e-16 n / step."""
    step = 1e-6
    fd = central(lambda x: to_numpy(grating_factor(arr(xp, [x]), n))[0], dh, step)
    got = to_numpy(grating_derivative(arr(xp, [dh]), n))[0]
    assert got == pytest.approx(fd, abs=1e-7 * n**3)


@pytest.mark.parametrize("n", GRATING_N)
def test_grating_derivative_near_zero_and_across_the_series_threshold(n, xp):
    """Near dh = 0 the derivative is -pi^2 n (n^2 - 1)/3 dh; for n > 12 a series replaces the quotient
    for |n pi dh| < 1e-3: both sides of that threshold agree with the exact derivative."""
    edge = 1e-3 / (n * math.pi)
    points = np.array([edge * (1 - 1e-9), edge * (1 + 1e-9), -edge * (1 - 1e-9), -edge * (1 + 1e-9)])
    got = to_numpy(grating_derivative(arr(xp, points), n))
    exact = [math.pi * (n * math.cos(n * math.pi * x) * math.sin(math.pi * x)
                        - math.sin(n * math.pi * x) * math.cos(math.pi * x)) / math.sin(math.pi * x) ** 2
             for x in points]
    series = [-math.pi**2 * n * (n * n - 1) / 3.0 * x for x in points]
    np.testing.assert_allclose(got, series, rtol=1e-6)
    np.testing.assert_allclose(got, exact, rtol=1e-6)
    assert got[0] == pytest.approx(got[1], rel=1e-7)


def test_square_factor_grad_vs_central_difference(xp):
    n_cells = (5, 3, 7)
    dh = np.array([[0.21, -0.13, 0.07], [1e-5, 0.3, -2e-6], [0.0, 0.0, 0.0], [-0.44, 0.18, 0.33]])
    value, grad = (to_numpy(v) for v in square_factor_grad(arr(xp, dh), n_cells))
    np.testing.assert_allclose(value, to_numpy(square_factor(arr(xp, dh), n_cells)), rtol=1e-15)
    step = 1e-6
    for axis in range(3):
        e = np.zeros(3)
        e[axis] = step
        fd = (to_numpy(square_factor(arr(xp, dh + e), n_cells)) - to_numpy(square_factor(arr(xp, dh - e), n_cells))) \
            / (2 * step)
        np.testing.assert_allclose(grad[:, axis], fd, atol=1e-7 * 105 * 7**2)


# ---------------------------------------------------------------- round

def test_sinc3_at_known_points(xp):
    x = np.array([1.0, 2.5, 4.4934094579])
    got = to_numpy(sinc3_of_square(arr(xp, x * x)))
    np.testing.assert_allclose(got, [sinc3(v) for v in x], rtol=1e-14)
    assert got[0] == pytest.approx(3.0 * (math.sin(1.0) - math.cos(1.0)), rel=1e-14)
    assert got[2] == pytest.approx(0.0, abs=1e-10)          # first zero of sin x / x - cos x (tan x = x)
    np.testing.assert_array_equal(to_numpy(sinc3_of_square(arr(xp, [0.0]))), [1.0])


def test_round_factor_at_zero_and_at_a_known_point(xp):
    n_cells, fudge = (5, 4, 3), 1.5
    dh = np.array([[0.0, 0.0, 0.0], [0.05, -0.04, 0.1]])
    got = to_numpy(round_factor(arr(xp, dh), n_cells, fudge))
    assert got[0] == pytest.approx(60 * 0.723601254558268, rel=1e-15)
    assert ROUND_NORM == 0.723601254558268
    x = math.pi * math.sqrt(fudge * ((0.05 * 5) ** 2 + (0.04 * 4) ** 2 + (0.1 * 3) ** 2))
    assert got[1] == pytest.approx(60 * ROUND_NORM * sinc3(x), rel=1e-14)


@pytest.mark.parametrize("v", [0.0, 1e-8, 1e-4, 0.0099999, 0.0100001, 0.3, 2.0, 19.0, 60.0])
def test_sinc3_derivative_vs_central_difference(v, xp):
    """Step 1e-4 of the scale: just above the series threshold sinc3 itself carries ~3e-14 of
    cancellation noise (sin x / x - cos x ~ x^2/3), which a smaller step would amplify."""
    step = 1e-4 * max(v, 1e-2)
    if v - step < 0:
        fd = (to_numpy(sinc3_of_square(arr(xp, [v + step])))[0] - to_numpy(sinc3_of_square(arr(xp, [v])))[0]) / step
        tol = step
    else:
        fd = central(lambda t: to_numpy(sinc3_of_square(arr(xp, [t])))[0], v, step)
        tol = 1e-8
    assert to_numpy(sinc3_of_square_derivative(arr(xp, [v])))[0] == pytest.approx(fd, abs=tol)


def test_sinc3_is_continuous_across_the_series_threshold(xp):
    v = np.array([0.01 * (1 - 1e-12), 0.01 * (1 + 1e-12)])
    values = to_numpy(sinc3_of_square(arr(xp, v)))
    slopes = to_numpy(sinc3_of_square_derivative(arr(xp, v)))
    assert values[0] == pytest.approx(sinc3(math.sqrt(v[0])), rel=1e-14)
    assert values[0] == pytest.approx(values[1], rel=1e-12)
    assert slopes[0] == pytest.approx(slopes[1], rel=1e-8)


def test_round_factor_grad_vs_central_difference(xp):
    n_cells, fudge = (5, 4, 3), 1.3
    dh = np.array([[0.05, -0.04, 0.1], [1e-4, 2e-5, -3e-5], [0.2, 0.15, -0.3], [0.0, 0.0, 0.0]])
    value, grad = (to_numpy(v) for v in round_factor_grad(arr(xp, dh), n_cells, fudge))
    np.testing.assert_allclose(value, to_numpy(round_factor(arr(xp, dh), n_cells, fudge)), rtol=1e-15)
    step = 1e-7
    for axis in range(3):
        e = np.zeros(3)
        e[axis] = step
        fd = (to_numpy(round_factor(arr(xp, dh + e), n_cells, fudge))
              - to_numpy(round_factor(arr(xp, dh - e), n_cells, fudge))) / (2 * step)
        np.testing.assert_allclose(grad[:, axis], fd, atol=1e-6 * 60 * 25)
    np.testing.assert_array_equal(grad[3], 0.0)


# ---------------------------------------------------------------- gauss and tophat

def test_reciprocal_distance(xp):
    dh = np.array([[0.1, -0.2, 0.3]])
    got = to_numpy(reciprocal_distance_sqr(arr(xp, dh), arr(xp, TRICLINIC_METRIC)))
    assert got[0] == pytest.approx(dh[0] @ TRICLINIC_METRIC @ dh[0], rel=1e-14)


def test_gauss_factor_at_a_known_dq(xp):
    """Cubic 100 A, dh = (0.01, 0, 0): |dq|^2 = 1e-8 A^-2; N^3 exp(-|dq|^2 (Na Nb Nc)^2 fudge / 0.63)."""
    n_cells, fudge = (4, 6, 5), 2.0
    got = to_numpy(gauss_factor(arr(xp, [[0.01, 0.0, 0.0], [0.0, 0.0, 0.0]]), n_cells, fudge,
                                arr(xp, CUBIC_100_METRIC)))
    assert got[0] == pytest.approx(120 * math.exp(-1e-8 * 120**2 * 2.0 / 0.63), rel=1e-14)
    assert got[1] == 120.0
    assert GAUSS_WIDTH == 0.63


def test_gauss_factor_grad_vs_central_difference(xp):
    n_cells, fudge = (4, 6, 5), 1.0
    metric = arr(xp, TRICLINIC_METRIC)
    dh = np.array([[0.01, -0.02, 0.015], [1e-3, 0.0, 2e-3], [0.05, 0.04, -0.03]])
    value, grad = (to_numpy(v) for v in gauss_factor_grad(arr(xp, dh), n_cells, fudge, metric))
    np.testing.assert_allclose(value, to_numpy(gauss_factor(arr(xp, dh), n_cells, fudge, metric)), rtol=1e-15)
    fd = central_difference_columns(lambda x: to_numpy(gauss_factor(arr(xp, x), n_cells, fudge, metric)), dh, 1e-7)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6 * np.abs(grad).max())


def test_tophat_edge(xp):
    """N^3 inside |dq|^2 (Na Nb Nc)^2 fudge < 0.3969, 0 outside (cubic 100 A, N = 4, fudge 2.5)."""
    n_cells, fudge = (4, 4, 4), 2.5
    edge = math.sqrt(TOPHAT_RADIUS_SQR / (64**2 * fudge)) * 100.0   # in dh along a*
    assert TOPHAT_RADIUS_SQR == 0.3969
    dh = np.array([[edge * (1 - 1e-9), 0, 0], [edge * (1 + 1e-9), 0, 0], [0, -edge * 0.7, edge * 0.7],
                   [0, -edge * 0.71, edge * 0.71]])
    got = to_numpy(tophat_factor(arr(xp, dh), n_cells, fudge, arr(xp, CUBIC_100_METRIC)))
    np.testing.assert_array_equal(got, [64.0, 0.0, 64.0, 0.0])


@pytest.mark.parametrize("shape", ["square", "round", "gauss", "tophat"])
def test_dispatch_and_grad_dispatch(shape, xp):
    dh = arr(xp, [[0.02, -0.01, 0.03], [0.0, 0.0, 0.0]])
    metric = arr(xp, CUBIC_100_METRIC)
    value = to_numpy(lattice_factor(shape, dh, (3, 4, 5), 1.0, metric))
    value2, grad = (to_numpy(v) for v in lattice_factor_grad(shape, dh, (3, 4, 5), 1.0, metric))
    np.testing.assert_array_equal(value, value2)
    assert value[1] == pytest.approx(60.0 * (ROUND_NORM if shape == "round" else 1.0), rel=1e-15)
    if shape == "tophat":
        np.testing.assert_array_equal(grad, 0.0)
