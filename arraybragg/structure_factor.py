"""Structure factors F_cell at fractional Miller indices: nearest lookup and tricubic interpolation.

The table is a flat (nh*nk*nl,) array with holes already filled, ``hkl_min`` the indices of
its first entry and ``hkl_shape`` its extent; indices are (..., 3) float arrays.  Outside the
table the nearest lookup returns ``default_F``.  Interpolation is a tricubic Lagrange
polynomial on the nodes floor(x) - 1 ... floor(x) + 2 of each index, safe only where
hkl_min + 2 <= x <= hkl_max - 2 (nanoBragg's test, :func:`interpolation_out_of_range`).
"""
from __future__ import annotations

from array_api_compat import array_namespace


def _flat_index(xp, idx, hkl_min, hkl_shape):
    """Flat table index (int64) of integer-valued float indices idx (..., 3) known to be inside."""
    nh, nk, nl = hkl_shape
    i = [xp.astype(idx[..., a] - hkl_min[a], xp.int64) for a in range(3)]
    return (i[0] * nk + i[1]) * nl + i[2]


def _gather(xp, table, flat):
    return xp.reshape(xp.take(table, xp.reshape(flat, (-1,))), flat.shape)


def nearest_F(h0, table, hkl_min, hkl_shape, default_F):
    """F at integer-valued indices h0 (..., 3): table entry inside the box, default_F outside."""
    xp = array_namespace(h0)
    inside = xp.ones(h0.shape[:-1], dtype=xp.bool)
    for a in range(3):
        inside = inside & (h0[..., a] >= hkl_min[a]) & (h0[..., a] <= hkl_min[a] + hkl_shape[a] - 1)
    lo = xp.asarray(list(hkl_min), dtype=h0.dtype)
    safe = xp.where(inside[..., None], h0, xp.broadcast_to(lo, h0.shape))
    values = _gather(xp, table, _flat_index(xp, safe, hkl_min, hkl_shape))
    return xp.where(inside, values, xp.full_like(values, default_F))


def interpolation_out_of_range(h, hkl_min, hkl_shape):
    """(...,) True where tricubic interpolation at h (..., 3) would leave the table."""
    xp = array_namespace(h)
    out = xp.zeros(h.shape[:-1], dtype=xp.bool)
    for a in range(3):
        x = h[..., a]
        out = out | (x - hkl_min[a] + 3 > hkl_shape[a]) | (x - 2 < hkl_min[a])
    return out


def lagrange_weights(t):
    """Four cubic Lagrange weights on nodes -1, 0, 1, 2 at offset t = x - floor(x); list of (...,)."""
    return [-(t * (t - 1.0) * (t - 2.0)) / 6.0, (t + 1.0) * (t - 1.0) * (t - 2.0) / 2.0,
            -((t + 1.0) * t * (t - 2.0)) / 2.0, (t + 1.0) * t * (t - 1.0) / 6.0]


def lagrange_weights_derivative(t):
    """d/dt of :func:`lagrange_weights`."""
    t2 = t * t
    return [-(3.0 * t2 - 6.0 * t + 2.0) / 6.0, (3.0 * t2 - 4.0 * t - 1.0) / 2.0,
            -(3.0 * t2 - 2.0 * t - 2.0) / 2.0, (3.0 * t2 - 1.0) / 6.0]


def tricubic_F(h, table, hkl_min, hkl_shape, with_grad=False):
    """Interpolated F at h (..., 3) (in range; see module doc); with_grad adds dF/dh (..., 3)."""
    xp = array_namespace(h)
    base = xp.floor(h)
    t = h - base
    w = [lagrange_weights(t[..., a]) for a in range(3)]
    dw = [lagrange_weights_derivative(t[..., a]) for a in range(3)] if with_grad else None
    nh, nk, nl = hkl_shape
    start = [xp.astype(base[..., a] - 1.0 - hkl_min[a], xp.int64) for a in range(3)]
    value = xp.zeros_like(t[..., 0])
    grad = [xp.zeros_like(value) for _ in range(3)] if with_grad else None
    for i in range(4):
        for j in range(4):
            row = ((start[0] + i) * nk + start[1] + j) * nl + start[2]
            for k in range(4):
                f = _gather(xp, table, row + k)
                value = value + w[0][i] * w[1][j] * w[2][k] * f
                if with_grad:
                    grad[0] = grad[0] + dw[0][i] * w[1][j] * w[2][k] * f
                    grad[1] = grad[1] + w[0][i] * dw[1][j] * w[2][k] * f
                    grad[2] = grad[2] + w[0][i] * w[1][j] * dw[2][k] * f
    if with_grad:
        return value, xp.stack(grad, axis=-1)
    return value
