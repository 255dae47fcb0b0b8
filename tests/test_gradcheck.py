"""check_grad against scipy.optimize.check_grad; steps, central differences, the report."""

import math

import numpy as np
import pytest
from scipy.optimize import check_grad as scipy_check_grad
from scipy.optimize import rosen, rosen_der

from arraybragg.gradcheck import (
    GradientReport,
    central_difference,
    check_grad,
    default_steps,
    gradient_report,
    relative_errors,
)

X0 = np.array([-1.2, 1.0, 0.7, 1.9])


def wrong_rosen_der(x):
    """Rosenbrock gradient with a known error of 2-norm sqrt(0.25 + 1) added."""
    return rosen_der(x) + np.array([0.5, 0.0, -1.0, 0.0])


def test_check_grad_agrees_with_scipy_when_the_gradient_is_wrong():
    expected = math.sqrt(1.25)
    ours = check_grad(rosen, wrong_rosen_der, X0)
    theirs = scipy_check_grad(rosen, wrong_rosen_der, X0)
    assert ours == pytest.approx(theirs, rel=1e-6)
    # gradient components are ~500 here; central differences land ~1e-11 of that from the truth
    assert ours == pytest.approx(expected, abs=1e-7)
    assert abs(theirs - expected) > 10 * abs(ours - expected)


def test_check_grad_is_more_accurate_than_forward_differences():
    ours = check_grad(rosen, rosen_der, X0)
    theirs = scipy_check_grad(rosen, rosen_der, X0)
    assert ours < 1e-7 < theirs
    assert ours < theirs / 100


def test_check_grad_with_scipy_step_and_extra_args():
    def f(x, scale):
        return scale * rosen(x)

    def g(x, scale):
        return scale * rosen_der(x)

    assert check_grad(f, g, X0, 3.0, epsilon=1.4901161193847656e-08) < 1e-5
    assert check_grad(f, g, X0, 3.0, epsilon=np.full(4, 1e-5)) < 1e-6


def test_check_grad_vector_valued_function_checks_the_jacobian():
    def f(x):
        return np.array([x[0] * x[1], math.sin(x[2])])

    def jacobian(x):
        return np.array([[x[1], x[0], 0.0], [0.0, 0.0, math.cos(x[2])]])

    x0 = np.array([0.5, -2.0, 0.3])
    assert check_grad(f, jacobian, x0) < 1e-9
    assert check_grad(f, lambda x: jacobian(x) + 0.25, x0) == pytest.approx(math.sqrt(6 * 0.25**2), rel=1e-9)


def test_check_grad_random_direction():
    rng = np.random.default_rng(4)
    v = np.random.default_rng(4).standard_normal(X0.shape)
    ours = check_grad(rosen, wrong_rosen_der, X0, direction="random", rng=rng)
    assert ours == pytest.approx(abs(np.array([0.5, 0.0, -1.0, 0.0]) @ v), abs=1e-7)
    assert check_grad(rosen, rosen_der, X0, direction="random", rng=5) < 1e-7
    with pytest.raises(ValueError, match="epsilon"):
        check_grad(rosen, rosen_der, X0, direction="random", epsilon=np.ones(4))
    with pytest.raises(ValueError, match="direction"):
        check_grad(rosen, rosen_der, X0, direction="diagonal")


def test_default_steps_scale_with_the_parameter_and_its_unit():
    eps_cbrt = np.finfo(np.float64).eps ** (1 / 3)
    steps = default_steps([70.0, 0.0, -0.25, 95.0])
    np.testing.assert_allclose(steps, eps_cbrt * np.array([70.0, 1.0, 1.0, 95.0]), rtol=1e-15)
    np.testing.assert_allclose(default_steps([0.0, 2.0], scale=[0.01, 1.0]), eps_cbrt * np.array([0.01, 2.0]))
    with pytest.raises(ValueError, match="scale"):
        default_steps([1.0], scale=0.0)


def test_central_difference_is_exact_for_quadratics():
    a = np.array([[2.0, 0.5], [0.5, 3.0]])

    def f(x):
        return 0.5 * x @ a @ x + x[0]

    x0 = np.array([0.3, -0.8])
    np.testing.assert_allclose(central_difference(f, x0, 0.1), a @ x0 + [1.0, 0.0], rtol=1e-13)
    with pytest.raises(ValueError, match="steps"):
        central_difference(f, x0, [0.1, -0.1])
    with pytest.raises(ValueError, match="x0"):
        central_difference(f, np.ones((2, 2)), 0.1)


def test_relative_errors_use_the_project_floor():
    numeric = np.array([10.0, 1e-3, 0.0])
    analytic = np.array([10.1, 2e-3, 0.0])
    # floor = 1e-3 * 10 = 1e-2: small components are measured against it
    np.testing.assert_allclose(relative_errors(analytic, numeric), [0.01, 0.1, 0.0])
    np.testing.assert_array_equal(relative_errors([1.0, 0.0], [0.0, 0.0]), [np.inf, 0.0])


def test_gradient_report_rows_and_max_error():
    def f(x):
        return x[0] ** 2 + 3.0 * x[1] + 1e-4 * x[2]

    def g_wrong(x):
        return np.array([2.0 * x[0], 3.3, 1e-4])

    x0 = np.array([2.0, 5.0, -1.0])
    report = gradient_report(f, g_wrong, x0, names=["a_A", "b_A", "gamma_deg"])
    assert isinstance(report, GradientReport)
    assert [row.name for row in report.rows] == ["a_A", "b_A", "gamma_deg"]
    a, b, gamma = report.rows
    assert a.numeric == pytest.approx(4.0, rel=1e-10)
    assert a.analytic == 4.0 and a.rel_error < 1e-9
    assert b.abs_error == pytest.approx(0.3, rel=1e-9)
    assert b.rel_error == pytest.approx(0.1, rel=1e-9)
    # 1e-4 is below the floor 1e-3 * 4: its FD round-off (~eps * |f| / step ~ 1e-10) is
    # measured against 4e-3
    assert gamma.abs_error < 1e-9 and gamma.rel_error == pytest.approx(gamma.abs_error / 4e-3)
    assert report.max_rel_error == pytest.approx(0.1, rel=1e-9)
    np.testing.assert_allclose([row.step for row in report.rows], default_steps(x0))
    text = str(report)
    lines = text.splitlines()
    assert lines[0].split() == ["parameter", "analytic", "numeric", "abs", "error", "rel", "error", "step"]
    assert len({len(line) for line in lines[:4]}) == 1  # aligned columns
    assert "gamma_deg" in lines[3] and "max rel error: 1.000e-01" in lines[-1]


def test_gradient_report_checks_names_and_shapes():
    with pytest.raises(ValueError, match="names"):
        gradient_report(rosen, rosen_der, X0, names=["a"])
    with pytest.raises(ValueError, match="grad"):
        gradient_report(rosen, lambda x: np.ones(3), X0)
    custom = gradient_report(rosen, rosen_der, X0, steps=1e-5)
    assert all(row.step == 1e-5 for row in custom.rows)
