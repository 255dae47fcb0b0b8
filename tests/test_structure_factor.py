"""Structure factors: nearest lookup with holes and default_F, tricubic interpolation and its range test."""

import numpy as np
import pytest

import arraybragg
from arraybragg.hkl import HKLTable, read_hkl
from arraybragg.structure_factor import (interpolation_out_of_range, lagrange_weights, nearest_F, tricubic_F)
from conftest import PARITY_INPUTS, arr, central_difference_columns, small_simulation, to_numpy

HKL_MIN = (-5, -4, -4)
SHAPE = (10, 10, 9)          # h -5..4, k -4..5, l -4..4 (the parity P1.hkl box)


def synthetic_grid(function):
    h, k, l = np.meshgrid(*[np.arange(lo, lo + n, dtype=float) for lo, n in zip(HKL_MIN, SHAPE)], indexing="ij")
    return function(h, k, l)


def cubic(h, k, l):
    """Degree <= 3 in each index separately: tricubic interpolation reproduces it exactly."""
    return (3.0 + 2.0 * h - 0.5 * h**2 + 0.25 * h**3 + 1.5 * k * l - 0.3 * k**3 * l + 0.1 * h**3 * k**2 * l**3
            - 0.7 * l**2 + 0.05 * h * k * l)


def cubic_grad(h, k, l):
    return np.stack([2.0 - h + 0.75 * h**2 + 0.3 * h**2 * k**2 * l**3 + 0.05 * k * l,
                     1.5 * l - 0.9 * k**2 * l + 0.2 * h**3 * k * l**3 + 0.05 * h * l,
                     1.5 * k - 0.3 * k**3 + 0.3 * h**3 * k**2 * l**2 - 1.4 * l + 0.05 * h * k], axis=-1)


# ---------------------------------------------------------------- nearest lookup

def holey_table(default_F):
    grid = synthetic_grid(lambda h, k, l: 100.0 + h + 10 * k + 100 * l)
    grid[5, 4, 4] = np.nan            # hole at (0, 0, 0)
    grid[0, 0, 0] = np.nan            # hole at the box corner (-5, -4, -4)
    return HKLTable(grid, HKL_MIN).filled(default_F).reshape(-1)


@pytest.mark.parametrize("default_F", [0.0, 7.5])
def test_nearest_inside_outside_and_holes(default_F, xp):
    table = arr(xp, holey_table(default_F))
    h0 = np.array([[1, 2, -3], [-5, 5, 4], [4, -4, 0], [0, 0, 0], [-5, -4, -4],
                   [5, 0, 0], [-6, 0, 0], [0, 6, 0], [0, -5, 0], [0, 0, 5], [0, 0, -5]], dtype=float)
    got = to_numpy(nearest_F(arr(xp, h0), table, HKL_MIN, SHAPE, default_F))
    inside = [100.0 + h + 10 * k + 100 * l for h, k, l in h0[:3]]
    np.testing.assert_array_equal(got, inside + [default_F] * 8)


def test_parity_hkl_file_lookup(xp):
    """P1.hkl: F(000) = 1000; indices outside the file's box take default_F."""
    table = read_hkl(PARITY_INPUTS / "P1.hkl")
    assert table.hkl_min == HKL_MIN and table.shape == SHAPE
    flat = arr(xp, table.filled(15.0).reshape(-1))
    got = to_numpy(nearest_F(arr(xp, [[0, 0, 0], [5, 0, 0], [0, 0, -5]]), flat, HKL_MIN, SHAPE, 15.0))
    np.testing.assert_array_equal(got, [1000.0, 15.0, 15.0])
    holes = np.argwhere(np.isnan(table.grid))
    assert len(holes) > 0
    hole = holes[0] + np.array(HKL_MIN)
    assert to_numpy(nearest_F(arr(xp, [hole]), flat, HKL_MIN, SHAPE, 15.0))[0] == 15.0
    zero_filled = arr(xp, table.filled(0.0).reshape(-1))
    assert to_numpy(nearest_F(arr(xp, [hole]), zero_filled, HKL_MIN, SHAPE, 0.0))[0] == 0.0


def test_simulation_fills_holes_with_default_F():
    sim = small_simulation("-hkl", PARITY_INPUTS / "P1.hkl", "-default_F", 15)
    table = np.asarray(sim.engine_inputs().table)
    grid = read_hkl(PARITY_INPUTS / "P1.hkl").grid.reshape(-1)
    np.testing.assert_array_equal(table[np.isnan(grid)], 15.0)
    np.testing.assert_array_equal(table[~np.isnan(grid)], grid[~np.isnan(grid)])


# ---------------------------------------------------------------- tricubic interpolation

def test_lagrange_weights_partition_unity_and_nodes(xp):
    t = arr(xp, [0.0, 0.25, 0.5, 0.9])
    w = np.stack([to_numpy(v) for v in lagrange_weights(t)])
    np.testing.assert_allclose(w.sum(axis=0), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(w[:, 0], [0.0, 1.0, 0.0, 0.0])


def in_range_points(count, seed=7):
    rng = np.random.Generator(np.random.PCG64(seed))
    lo = np.array(HKL_MIN) + 2.0
    hi = np.array(HKL_MIN) + np.array(SHAPE) - 3.0
    return lo + rng.random((count, 3)) * (hi - lo)


def test_tricubic_reproduces_a_cubic_polynomial(xp):
    table = arr(xp, synthetic_grid(cubic).reshape(-1))
    h = in_range_points(200)
    got = to_numpy(tricubic_F(arr(xp, h), table, HKL_MIN, SHAPE))
    expected = cubic(h[:, 0], h[:, 1], h[:, 2])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_tricubic_gradient_of_a_cubic_polynomial(xp):
    table = arr(xp, synthetic_grid(cubic).reshape(-1))
    h = in_range_points(100, seed=3)
    value, grad = (to_numpy(v) for v in tricubic_F(arr(xp, h), table, HKL_MIN, SHAPE, with_grad=True))
    np.testing.assert_allclose(value, cubic(h[:, 0], h[:, 1], h[:, 2]), rtol=1e-12, atol=1e-9)
    expected = cubic_grad(h[:, 0], h[:, 1], h[:, 2])
    np.testing.assert_allclose(grad, expected, rtol=1e-11, atol=1e-11 * np.abs(expected).max())


def test_tricubic_on_nodes_gives_the_table_value(xp):
    table = holey_table(3.0)
    nodes = np.array([[0, 0, 0], [-3, -2, -2], [2, 3, 2], [1, -1, 0]], dtype=float)
    got = to_numpy(tricubic_F(arr(xp, nodes), arr(xp, table), HKL_MIN, SHAPE))
    expected = to_numpy(nearest_F(arr(xp, nodes), arr(xp, table), HKL_MIN, SHAPE, 3.0))
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    assert got[0] == 3.0


def test_tricubic_gradient_vs_central_difference(xp):
    """Real data (P1.hkl): dF/dh by central differences, step 1e-6, away from integer indices."""
    table = arr(xp, read_hkl(PARITY_INPUTS / "P1.hkl").filled(10.0).reshape(-1))
    h = np.array([[0.3, -1.4, 0.6], [-2.7, 2.2, -1.1], [1.5, 0.45, 1.8]])
    _, grad = (to_numpy(v) for v in tricubic_F(arr(xp, h), table, HKL_MIN, SHAPE, with_grad=True))
    fd = central_difference_columns(lambda x: to_numpy(tricubic_F(arr(xp, x), table, HKL_MIN, SHAPE)), h, 1e-6)
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-7 * np.abs(grad).max())


# ---------------------------------------------------------------- range test

@pytest.mark.parametrize("axis", [0, 1, 2])
def test_out_of_range_matches_nanobragg_condition(axis, xp):
    """Out of range when h - hmin + 3 > nh or h - 2 < hmin, i.e. outside [hmin + 2, hmax - 2]."""
    lo, n = HKL_MIN[axis], SHAPE[axis]
    values = [lo + 2.0, lo + 2.0 - 1e-9, n + lo - 3.0, n + lo - 3.0 + 1e-9, lo + 3.3, lo - 10.0, lo + n + 1.0]
    h = np.zeros((len(values), 3))
    h[:, axis] = values
    got = to_numpy(interpolation_out_of_range(arr(xp, h), HKL_MIN, SHAPE)).astype(bool)
    expected = [(x - lo + 3 > n) or (x - 2 < lo) for x in values]
    np.testing.assert_array_equal(got, expected)
    assert expected == [False, True, False, True, False, True, True]


def test_in_range_points_only_read_inside_the_table(xp):
    """At both edges of the allowed range the 4x4x4 stencil stays inside the box."""
    table = arr(xp, synthetic_grid(cubic).reshape(-1))
    edges = np.array([[HKL_MIN[0] + 2.0, HKL_MIN[1] + 2.0, HKL_MIN[2] + 2.0],
                      [HKL_MIN[0] + SHAPE[0] - 3.0, HKL_MIN[1] + SHAPE[1] - 3.0, HKL_MIN[2] + SHAPE[2] - 3.0 - 1e-12]])
    assert not to_numpy(interpolation_out_of_range(arr(xp, edges), HKL_MIN, SHAPE)).any()
    got = to_numpy(tricubic_F(arr(xp, edges), table, HKL_MIN, SHAPE))
    np.testing.assert_allclose(got, cubic(edges[:, 0], edges[:, 1], edges[:, 2]), rtol=1e-11)


def test_auto_interpolation_in_a_simulation():
    """Interpolation is on for an hkl table with some N <= 2, off otherwise or with -nointerpolate."""
    hkl = ("-hkl", PARITY_INPUTS / "P1.hkl")
    assert small_simulation(*hkl, "-N", 2).geometry().interpolate
    assert not small_simulation(*hkl).geometry().interpolate
    assert not small_simulation(*hkl, "-N", 2, "-nointerpolate").geometry().interpolate
    assert small_simulation(*hkl, "-interpolate").geometry().interpolate
    assert not small_simulation("-N", 2).geometry().interpolate           # default_F only


def test_out_of_range_lookup_falls_back_to_nearest_not_default_F():
    """Default mode: an out-of-range term uses the nearest table entry, later terms still interpolate."""
    args = ("-cell 32 35 38 80 96 104 -misset -10 20 5 -hkl {} -default_F 777 -lambda 1.0 -N 4 -interpolate "
            "-distance 60 -detpixels_f 20 -detpixels_s 60 -pixel 0.2 -oversample 1").format(PARITY_INPUTS / "P1.hkl")
    interp = arraybragg.from_nanobragg_args(args.split()).run()
    nearest = arraybragg.from_nanobragg_args(args.replace("-interpolate", "-nointerpolate").split()).run()
    inputs = arraybragg.from_nanobragg_args(args.split()).engine_inputs()
    assert inputs.interpolate
    same = interp == nearest
    assert same.any() and not same.all()
