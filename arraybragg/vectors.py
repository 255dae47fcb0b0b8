"""Small 3-vector helpers on any array-API namespace (vectors along the last axis)."""
from __future__ import annotations

from array_api_compat import array_namespace


def cross(u, v):
    """u x v along the last axis (broadcasting)."""
    xp = array_namespace(u, v)
    return xp.stack([u[..., 1] * v[..., 2] - u[..., 2] * v[..., 1],
                     u[..., 2] * v[..., 0] - u[..., 0] * v[..., 2],
                     u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]], axis=-1)


def norm(v):
    """Euclidean length along the last axis."""
    xp = array_namespace(v)
    return xp.sqrt(xp.sum(v * v, axis=-1))


def unit(v):
    """v / |v| along the last axis; a zero vector stays zero."""
    xp = array_namespace(v)
    length = norm(v)[..., None]
    return xp.where(length == 0.0, 0.0 * v, v / xp.where(length == 0.0, xp.ones_like(length), length))
