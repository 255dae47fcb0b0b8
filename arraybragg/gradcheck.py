"""Gradient checking by central finite differences (host-side NumPy).

``check_grad`` has the call signature and return value of ``scipy.optimize.check_grad``
but differentiates centrally, with a step per parameter scaled to its unit.
``gradient_report`` gives the per-parameter table used by the project's criterion
|analytic - numeric| / max(|numeric|, 1e-3 max_i |numeric_i|).
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .host import host_array

_CBRT_EPS = float(np.finfo(np.float64).eps) ** (1.0 / 3.0)
_REL_FLOOR = 1e-3


def _to_host(value):
    """float64 NumPy copy of a function value or gradient from any array namespace."""
    return np.asarray(host_array(value), dtype=np.float64)


def _parameters(x0):
    x = np.array(x0, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x0 must be a 1-d parameter vector, got shape {x.shape}")
    return x


def default_steps(x0, scale=None):
    """Central-difference steps cbrt(eps) * max(|x_i|, scale_i), shape of x0.

    scale: scalar or per parameter, in the parameter's unit (default 1: 1 Å, 1 degree).
    """
    x = np.asarray(x0, dtype=np.float64)
    s = np.ones_like(x) if scale is None else np.asarray(scale, dtype=np.float64)
    if not np.all(np.isfinite(s)) or np.any(s <= 0.0):
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")
    return _CBRT_EPS * np.maximum(np.abs(x), s)


def central_difference(func, x0, steps, *args):
    """Central-difference derivative of func at x0, shape func(x0).shape + (n,).

    steps: scalar or (n,) positive steps. The difference quotient divides by the distance
    between the two evaluation points as represented in float64.
    """
    x = _parameters(x0)
    h = np.broadcast_to(np.asarray(steps, dtype=np.float64), x.shape)
    if not np.all(np.isfinite(h)) or np.any(h <= 0.0):
        raise ValueError(f"steps must be finite and > 0, got {steps!r}")
    columns = []
    for i in range(x.size):
        x_plus, x_minus = x.copy(), x.copy()
        x_plus[i] += h[i]
        x_minus[i] -= h[i]
        f_plus = _to_host(func(x_plus, *args))
        f_minus = _to_host(func(x_minus, *args))
        columns.append((f_plus - f_minus) / (x_plus[i] - x_minus[i]))
    return np.stack(columns, axis=-1)


def check_grad(func, grad, x0, *args, epsilon=None, direction="all", rng=None):
    """2-norm of grad(x0, *args) minus its central-difference estimate from func.

    As ``scipy.optimize.check_grad``: direction "all" checks every coordinate (func may be
    vector valued: grad is then its Jacobian); "random" checks the derivative along one
    standard-normal direction drawn from ``numpy.random.default_rng(rng)``.
    epsilon: step, scalar or per parameter ("all"), scalar along the direction ("random");
    None uses default_steps.
    """
    x = _parameters(x0)
    if direction == "all":
        steps = default_steps(x) if epsilon is None else epsilon
        analytic = _to_host(grad(x, *args))
        numeric = central_difference(func, x, steps, *args)
    elif direction == "random":
        analytic_full = _to_host(grad(x, *args))
        if analytic_full.ndim > 1:
            raise ValueError("direction='random' needs a scalar-valued func")
        if epsilon is not None and np.ndim(epsilon) != 0:
            raise ValueError(f"direction='random' needs a scalar epsilon, got {epsilon!r}")
        v = np.random.default_rng(rng).standard_normal(x.shape)
        along = np.zeros(1)
        steps = default_steps(along) if epsilon is None else epsilon
        analytic = analytic_full @ v
        numeric = central_difference(lambda w, *a: func(x + w[0] * v, *a), along, steps, *args)[0]
    else:
        raise ValueError(f"direction must be 'all' or 'random', got {direction!r}")
    return float(np.sqrt(np.sum((analytic - numeric) ** 2)))


class GradientRow(NamedTuple):
    """One parameter of a GradientReport."""

    name: str
    analytic: float
    numeric: float
    abs_error: float
    rel_error: float
    step: float


@dataclass(frozen=True)
class GradientReport:
    """Analytic vs central-difference gradient, one row per parameter."""

    rows: tuple

    @property
    def max_rel_error(self):
        """Largest rel_error over the rows."""
        return max(row.rel_error for row in self.rows)

    def __str__(self):
        header = ("parameter", "analytic", "numeric", "abs error", "rel error", "step")
        cells = [header] + [
            (row.name,) + tuple(f"{v:.6e}" for v in row[1:]) for row in self.rows
        ]
        widths = [max(len(line[j]) for line in cells) for j in range(len(header))]
        lines = ["  ".join(text.rjust(w) for text, w in zip(line, widths)) for line in cells]
        lines.append(f"max rel error: {self.max_rel_error:.3e}")
        return "\n".join(lines)


def relative_errors(analytic, numeric):
    """|analytic - numeric| / max(|numeric|, 1e-3 max_i |numeric_i|), elementwise.

    Where that denominator is 0 (numeric all zero) the error is 0 if analytic is 0, else inf.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    abs_error = np.abs(analytic - numeric)
    floor = _REL_FLOOR * np.max(np.abs(numeric), initial=0.0)
    denominator = np.maximum(np.abs(numeric), floor)
    safe = np.where(denominator > 0.0, denominator, 1.0)
    return np.where(denominator > 0.0, abs_error / safe, np.where(abs_error > 0.0, np.inf, 0.0))


def gradient_report(func, grad, x0, *args, names=None, steps=None):
    """Per-parameter comparison of grad(x0, *args) with central differences of scalar func.

    names: one label per parameter (default x[0], x[1], ...); steps: scalar or per
    parameter (default default_steps(x0)).
    """
    x = _parameters(x0)
    labels = tuple(f"x[{i}]" for i in range(x.size)) if names is None else tuple(names)
    if len(labels) != x.size:
        raise ValueError(f"names must have {x.size} entries (one per parameter), got {len(labels)}")
    h = np.broadcast_to(
        default_steps(x) if steps is None else np.asarray(steps, dtype=np.float64), x.shape
    )
    analytic = _to_host(grad(x, *args))
    if analytic.shape != x.shape:
        raise ValueError(f"grad must return shape {x.shape} (scalar func), got {analytic.shape}")
    numeric = central_difference(func, x, h, *args)
    rel = relative_errors(analytic, numeric)
    rows = tuple(
        GradientRow(labels[i], float(analytic[i]), float(numeric[i]),
                    float(abs(analytic[i] - numeric[i])), float(rel[i]), float(h[i]))
        for i in range(x.size)
    )
    return GradientReport(rows)
