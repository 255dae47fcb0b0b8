"""Image losses for refinement: each factory returns ``loss(image) -> (value, d value / d image)``.

The image may come from any array namespace; the value is a 0-d float64 array and the
gradient an array shaped like the image, both in the image's namespace and on its device.
Reference data (target, weights, observed counts, background) are moved there at each call.
"""

import array_api_compat.numpy as _numpy_namespace
from array_api_compat import array_namespace, device, is_array_api_obj


def _check_finite_nonnegative(name, values):
    """Raise ValueError naming ``name`` unless values (array, sequence or scalar) are finite and >= 0."""
    xp = array_namespace(values) if is_array_api_obj(values) else _numpy_namespace
    try:
        v = xp.asarray(values, dtype=xp.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, got {values!r}") from None
    if not (bool(xp.all(xp.isfinite(v))) and bool(xp.all(v >= 0))):
        raise ValueError(f"{name} must be finite and >= 0 everywhere")


def _image_and_data(image, data, names):
    """image as float64 plus each reference array converted to its namespace and device."""
    xp = array_namespace(image)
    dev = device(image)
    image = xp.asarray(image, dtype=xp.float64, device=dev)
    converted = []
    for name, values in zip(names, data):
        values = xp.asarray(values, dtype=xp.float64, device=dev)
        if values.ndim > 0 and values.shape != image.shape:
            raise ValueError(f"{name} has shape {values.shape} but the image has shape {image.shape}")
        converted.append(values)
    return xp, image, converted


def sum_of_squares(target, weights=None):
    """Loss ``sum(w (image - target)^2)``, gradient ``2 w (image - target)``; w = 1 by default.

    target: array shaped like the image (or a scalar); weights: the same, finite and >= 0.
    """
    if weights is not None:
        _check_finite_nonnegative("weights", weights)
    w = 1.0 if weights is None else weights

    def loss(image):
        xp, image, (t, weight) = _image_and_data(image, (target, w), ("target", "weights"))
        residual = image - t
        return xp.sum(weight * residual * residual), 2.0 * weight * residual

    return loss


def poisson_nll(observed, background=0.0):
    """Poisson negative log-likelihood of observed counts k with mean mu = image + background.

    Loss ``sum(mu - k log mu)`` (log k! dropped), gradient ``1 - k / mu``. observed and
    background: arrays shaped like the image or scalars, finite and >= 0. The loss raises
    ValueError if mu <= 0 at a pixel where k > 0 (the likelihood is zero there); where
    k = 0 the pixel contributes mu, whatever its sign.
    """
    _check_finite_nonnegative("observed", observed)
    _check_finite_nonnegative("background", background)

    def loss(image):
        xp, image, (k, bg) = _image_and_data(
            image, (observed, background), ("observed", "background")
        )
        mu = image + bg
        counted = k > 0
        if bool(xp.any(counted & (mu <= 0))):
            raise ValueError(
                "image + background must be > 0 wherever observed > 0 "
                f"(smallest value there: {float(xp.min(xp.where(counted, mu, xp.inf)))})"
            )
        safe_mu = xp.where(counted, mu, 1.0)
        return xp.sum(mu - k * xp.log(safe_mu)), 1.0 - k / safe_mu

    return loss
