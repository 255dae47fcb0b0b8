"""Image losses: values, gradients vs central differences, Poisson stationarity, input checks."""

import math

import array_api_strict
import numpy as np
import pytest
from array_api_compat import array_namespace

from arraybragg.gradcheck import central_difference, default_steps
from arraybragg.losses import poisson_nll, sum_of_squares
from conftest import arr, to_numpy

FD_REL_TOL = 1e-8  # |grad . v - FD along v| / |FD along v|, float64, default_steps


def check_gradient_by_fd(xp, loss, image):
    """Dot-product test: grad . v against the central difference of t -> loss(image + t v)."""
    value, grad = loss(arr(xp, image))
    assert grad.shape == image.shape and value.shape == ()
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = image * rng.normal(size=image.shape)  # relative perturbation of every pixel

        def along(t, v=v):
            return float(loss(arr(xp, image + t[0] * v))[0])

        numeric = central_difference(along, np.zeros(1), default_steps(np.zeros(1)))[0]
        assert abs(np.sum(to_numpy(grad) * v) - numeric) <= FD_REL_TOL * abs(numeric)


def test_sum_of_squares_value_and_gradient(xp):
    rng = np.random.default_rng(1)
    target = rng.uniform(1, 10, size=(4, 5))
    weights = rng.uniform(0.5, 2, size=(4, 5))
    image = target + rng.normal(size=(4, 5))
    value, grad = sum_of_squares(target, weights)(arr(xp, image))
    assert float(value) == pytest.approx(np.sum(weights * (image - target) ** 2), rel=1e-14)
    np.testing.assert_allclose(to_numpy(grad), 2 * weights * (image - target), rtol=1e-14)
    unweighted, _ = sum_of_squares(arr(xp, target))(arr(xp, image))
    assert float(unweighted) == pytest.approx(np.sum((image - target) ** 2), rel=1e-14)
    check_gradient_by_fd(xp, sum_of_squares(target, weights), image)
    zero, zero_grad = sum_of_squares(target)(arr(xp, target))
    assert float(zero) == 0.0 and not np.any(to_numpy(zero_grad))


def test_poisson_nll_value_and_gradient(xp):
    rng = np.random.default_rng(2)
    image = rng.uniform(0.5, 20, size=(3, 6))
    observed = rng.poisson(image).astype(np.float64)
    background = 0.7
    mu = image + background
    value, grad = poisson_nll(observed, background)(arr(xp, image))
    assert float(value) == pytest.approx(np.sum(mu - observed * np.log(mu)), rel=1e-14)
    np.testing.assert_allclose(to_numpy(grad), 1 - observed / mu, rtol=1e-14, atol=1e-15)
    check_gradient_by_fd(xp, poisson_nll(observed, background), image)
    check_gradient_by_fd(xp, poisson_nll(arr(xp, observed), arr(xp, np.full(image.shape, 0.2))), image)


def test_poisson_nll_is_stationary_where_the_mean_equals_the_counts(xp):
    observed = np.array([[3.0, 0.5, 12.0], [7.0, 1.0, 40.0]])
    background = np.array([[1.0, 0.25, 2.0], [0.0, 0.5, 10.0]])
    loss = poisson_nll(observed, background)
    value, grad = loss(arr(xp, observed - background))
    np.testing.assert_allclose(to_numpy(grad), 0.0, atol=1e-15)
    # and it is the minimum: moving any pixel raises the loss
    for delta in (-1e-3, 1e-3):
        shifted = float(loss(arr(xp, observed - background + delta))[0])
        assert shifted > float(value)


def test_poisson_nll_pixels_without_counts(xp):
    observed = np.array([0.0, 0.0, 4.0])
    image = np.array([0.0, 2.5, 3.0])
    value, grad = poisson_nll(observed)(arr(xp, image))
    assert float(value) == pytest.approx(0.0 + 2.5 + 3.0 - 4.0 * math.log(3.0), rel=1e-14)
    np.testing.assert_allclose(to_numpy(grad), [1.0, 1.0, 1.0 - 4.0 / 3.0], rtol=1e-14)


def test_poisson_nll_rejects_zero_mean_where_counted(xp):
    loss = poisson_nll(np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="image \\+ background must be > 0 wherever observed > 0"):
        loss(arr(xp, [1.0, 0.0]))
    with pytest.raises(ValueError, match="observed"):
        poisson_nll(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="background"):
        poisson_nll(np.array([1.0, 1.0]), background=float("nan"))


def test_losses_reject_mismatched_shapes_and_bad_weights(xp):
    with pytest.raises(ValueError, match="target"):
        sum_of_squares(np.zeros((2, 3)))(arr(xp, np.zeros((3, 2))))
    with pytest.raises(ValueError, match="observed"):
        poisson_nll(np.ones(4))(arr(xp, np.ones(5)))
    with pytest.raises(ValueError, match="weights"):
        sum_of_squares(np.zeros(2), weights=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="observed must be numbers"):
        poisson_nll(["one", 2.0])
    value, _ = poisson_nll([1.0, 2.0])(arr(xp, [1.0, 2.0]))  # plain sequences are accepted
    assert float(value) == pytest.approx(3.0 - 2.0 * math.log(2.0), rel=1e-14)


def test_losses_return_the_image_namespace():
    image = array_api_strict.asarray(np.ones((2, 2)))
    for loss in (sum_of_squares(np.zeros((2, 2))), poisson_nll(np.ones((2, 2)))):
        value, grad = loss(image)
        assert array_namespace(value, grad) is array_api_strict
        assert grad.dtype == array_api_strict.float64 and value.dtype == array_api_strict.float64
