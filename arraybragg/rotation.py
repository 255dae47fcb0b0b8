"""Lab-frame rotation matrices (misset x-y-z angles, axis-angle) and their adjoints.

All matrices act on column vectors, ``v' = R @ v``, right-handed, float64, in the array
namespace of the inputs (NumPy when they are plain Python numbers or sequences).
"""

import array_api_compat.numpy as _numpy_namespace
from array_api_compat import array_namespace, device, is_array_api_obj


def _namespace_and_device(*values):
    """Array namespace and device of the array arguments; NumPy when there are none."""
    arrays = [v for v in values if is_array_api_obj(v)]
    if not arrays:
        return _numpy_namespace, None
    return array_namespace(*arrays), device(arrays[0])


def _matrix(xp, rows):
    """(..., 3, 3) array from a 3 x 3 nested list of equally shaped arrays."""
    return xp.stack([xp.stack(row, axis=-1) for row in rows], axis=-2)


def _elementary_rotations(angles_rad):
    """Rx, Ry, Rz for the three angles and the derivative of each w.r.t. its own angle."""
    xp, dev = _namespace_and_device(angles_rad)
    t = xp.asarray(angles_rad, dtype=xp.float64, device=dev)
    if t.shape != (3,):
        raise ValueError(f"angles_rad must have shape (3,) (about x, y, z), got shape {t.shape}")
    cos_t, sin_t = xp.cos(t), xp.sin(t)
    cx, cy, cz = cos_t[0], cos_t[1], cos_t[2]
    sx, sy, sz = sin_t[0], sin_t[1], sin_t[2]
    o = xp.zeros_like(cx)
    i = xp.ones_like(cx)
    rx = _matrix(xp, [[i, o, o], [o, cx, -sx], [o, sx, cx]])
    ry = _matrix(xp, [[cy, o, sy], [o, i, o], [-sy, o, cy]])
    rz = _matrix(xp, [[cz, -sz, o], [sz, cz, o], [o, o, i]])
    drx = _matrix(xp, [[o, o, o], [o, -sx, -cx], [o, cx, -sx]])
    dry = _matrix(xp, [[-sy, o, cy], [o, o, o], [-cy, o, -sy]])
    drz = _matrix(xp, [[-sz, -cz, o], [cz, -sz, o], [o, o, o]])
    return xp, (rx, ry, rz), (drx, dry, drz)


def rotation_xyz(angles_rad):
    """Rotation about lab x, then y, then z: ``R = Rz @ Ry @ Rx``, shape (3, 3).

    angles_rad: (3,) angles in radians (nanoBragg's ``rotate`` and ``-misset``).
    """
    _, (rx, ry, rz), _ = _elementary_rotations(angles_rad)
    return rz @ ry @ rx


def rotation_xyz_vjp(angles_rad, R_bar):
    """Gradient (3,) of ``sum(R_bar * rotation_xyz(angles_rad))`` w.r.t. the angles (per radian)."""
    xp, (rx, ry, rz), (drx, dry, drz) = _elementary_rotations(angles_rad)
    bar = xp.asarray(R_bar, dtype=xp.float64, device=device(rx))
    partials = (rz @ ry @ drx, rz @ dry @ rx, drz @ ry @ rx)
    return xp.stack([xp.sum(bar * d) for d in partials])


def _axis_angle_terms(axis, angle_rad):
    """Namespace, angle array, cos and sin shaped (..., 1, 1), I, axis outer product, cross matrix."""
    xp, dev = _namespace_and_device(axis, angle_rad)
    u = xp.asarray(axis, dtype=xp.float64, device=dev)
    t = xp.asarray(angle_rad, dtype=xp.float64, device=dev)
    if u.ndim not in (1, 2) or u.shape[-1] != 3:
        raise ValueError(f"axis must have shape (3,) or (n, 3), got shape {u.shape}")
    if u.ndim == 2 and t.ndim >= 1 and u.shape[0] != t.shape[-1]:
        raise ValueError(
            f"axis (shape {u.shape}) and angle_rad (shape {t.shape}) must have the same length n"
        )
    cos_t = xp.cos(t)[..., None, None]
    sin_t = xp.sin(t)[..., None, None]
    eye = xp.eye(3, dtype=xp.float64, device=dev)
    outer = u[..., :, None] * u[..., None, :]
    ux, uy, uz = u[..., 0], u[..., 1], u[..., 2]
    o = xp.zeros_like(ux)
    cross = _matrix(xp, [[o, -uz, uy], [uz, o, -ux], [-uy, ux, o]])
    return xp, t, cos_t, sin_t, eye, outer, cross


def rotation_axis_angle(axis, angle_rad):
    """Rodrigues rotation ``R v = v cos t + u (u . v)(1 - cos t) + (u x v) sin t``.

    axis: (3,) or (n, 3); it is used as given, not normalised (as nanoBragg's
    ``rotate_axis``), so it is a rotation only for unit axes. angle_rad: scalar, (n,) or
    (..., n) (leading batch axes, e.g. several spreads). Returns (..., 3, 3) broadcast.
    """
    _, _, cos_t, sin_t, eye, outer, cross = _axis_angle_terms(axis, angle_rad)
    return cos_t * eye + (1.0 - cos_t) * outer + sin_t * cross


def rotation_axis_angle_vjp(axis, angle_rad, R_bar):
    """Gradient of ``sum(R_bar * rotation_axis_angle(axis, angle_rad))`` w.r.t. the angle.

    Same shape as angle_rad (per radian); the axis is held fixed.
    """
    xp, t, cos_t, sin_t, eye, outer, cross = _axis_angle_terms(axis, angle_rad)
    bar = xp.asarray(R_bar, dtype=xp.float64, device=device(t))
    d_rotation = sin_t * (outer - eye) + cos_t * cross
    grad = xp.sum(bar * d_rotation, axis=(-2, -1))
    while grad.ndim > t.ndim:
        grad = xp.sum(grad, axis=0)
    return grad
