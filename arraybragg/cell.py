"""Unit cell -> direct and reciprocal lattice matrices, their adjoints, and the inverse maps.

Conventions: ``cell = (a, b, c, alpha, beta, gamma)`` in Å and degrees. A direct matrix ``D``
(3, 3) holds the direct vectors a, b, c as its rows (Å); a reciprocal matrix holds a*, b*, c*
as its columns (Å^-1), so ``D @ B = I``. The standard setting is nanoBragg's: a* along +x,
b* in the xy plane, hence c along +z, b in the yz plane and ``D`` upper-triangular.
Gradients w.r.t. the cell are per Å for the edges and per degree for the angles.
"""

import math

import numpy as np
from array_api_compat import array_namespace, device

from .rotation import _matrix, _namespace_and_device

_RAD_PER_DEG = math.pi / 180.0
_CELL_NAMES = ("a", "b", "c", "alpha", "beta", "gamma")


def check_cell(cell):
    """Raise ValueError naming ``cell`` unless it is six finite numbers describing a real cell.

    Edges must be > 0 Å, angles inside (0, 180) degrees, and the angles must close a cell
    (1 - cos²α - cos²β - cos²γ + 2 cosα cosβ cosγ > 0).
    """
    try:
        values = tuple(float(v) for v in cell)
    except (TypeError, ValueError):
        raise ValueError(
            f"cell must be six numbers (a, b, c in Å; alpha, beta, gamma in degrees), got {cell!r}"
        ) from None
    if len(values) != 6:
        raise ValueError(
            f"cell must have six values (a, b, c, alpha, beta, gamma), got {len(values)}: {values}"
        )
    for name, value in zip(_CELL_NAMES, values):
        if not math.isfinite(value):
            raise ValueError(f"cell {name} = {value} is not a finite number")
    for name, value in zip(_CELL_NAMES[:3], values[:3]):
        if value <= 0.0:
            raise ValueError(f"cell edge {name} = {value} Å must be > 0")
    for name, value in zip(_CELL_NAMES[3:], values[3:]):
        if not 0.0 < value < 180.0:
            raise ValueError(f"cell angle {name} = {value} deg must be inside (0, 180)")
    ca, cb, cg = (math.cos(v * _RAD_PER_DEG) for v in values[3:])
    q = 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg
    if q <= 0.0:
        raise ValueError(
            f"cell angles alpha, beta, gamma = {values[3:]} deg give no cell "
            f"(1 - cos²α - cos²β - cos²γ + 2 cosα cosβ cosγ = {q:.3g} must be > 0: "
            "each angle must be below the sum of the other two and the three below 360)"
        )


def _cell_terms(cell):
    """Namespace, cell array, edges, cosines, sines and omega = V / (a b c)."""
    xp, dev = _namespace_and_device(cell)
    p = xp.asarray(cell, dtype=xp.float64, device=dev)
    if p.shape != (6,):
        raise ValueError(f"cell must have shape (6,) (a, b, c, alpha, beta, gamma), got {p.shape}")
    angles = p[3:] * _RAD_PER_DEG
    cos_t, sin_t = xp.cos(angles), xp.sin(angles)
    cos_t = (cos_t[0], cos_t[1], cos_t[2])
    sin_t = (sin_t[0], sin_t[1], sin_t[2])
    ca, cb, cg = cos_t
    omega = xp.sqrt(1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg)
    return xp, p, (p[0], p[1], p[2]), cos_t, sin_t, omega


def _omega_squared_derivatives(cos_t, sin_t):
    """d(omega²)/d(alpha, beta, gamma) per radian."""
    (ca, cb, cg), (sa, sb, sg) = cos_t, sin_t
    return (
        2.0 * sa * (ca - cb * cg),
        2.0 * sb * (cb - ca * cg),
        2.0 * sg * (cg - ca * cb),
    )


def direct_matrix_A(cell):
    """Direct matrix (3, 3), rows a, b, c in Å, in the standard setting (upper-triangular).

    c = (0, 0, c), b = (0, b sinα, b cosα),
    a = (a ω / sinα, a (cosγ - cosα cosβ) / sinα, a cosβ), ω = V / (a b c).
    cell must pass check_cell.
    """
    xp, _, (a, b, c), (ca, cb, cg), (sa, _, _), omega = _cell_terms(cell)
    o = xp.zeros_like(a)
    return _matrix(
        xp,
        [
            [a * omega / sa, a * (cg - ca * cb) / sa, a * cb],
            [o, b * sa, b * ca],
            [o, o, c],
        ],
    )


def _direct_matrix_jacobian(cell):
    """d direct_matrix_A / d cell as (6, 3, 3): per Å for edges, per degree for angles."""
    xp, _, (a, b, c), (ca, cb, cg), (sa, sb, sg), omega = _cell_terms(cell)
    o = xp.zeros_like(a)
    i = xp.ones_like(a)
    d_a = [[omega / sa, (cg - ca * cb) / sa, cb], [o, o, o], [o, o, o]]
    d_b = [[o, o, o], [o, sa, ca], [o, o, o]]
    d_c = [[o, o, o], [o, o, o], [o, o, i]]
    d_alpha = [
        [a * ((ca - cb * cg) / omega - omega * ca / (sa * sa)), a * (cb - ca * cg) / (sa * sa), o],
        [o, b * ca, -b * sa],
        [o, o, o],
    ]
    d_beta = [[a * sb * (cb - ca * cg) / (omega * sa), a * sb * ca / sa, -a * sb], [o, o, o], [o, o, o]]
    d_gamma = [[a * sg * (cg - ca * cb) / (omega * sa), -a * sg / sa, o], [o, o, o], [o, o, o]]
    lengths = xp.stack([_matrix(xp, m) for m in (d_a, d_b, d_c)])
    angles = xp.stack([_matrix(xp, m) for m in (d_alpha, d_beta, d_gamma)]) * _RAD_PER_DEG
    return xp, xp.concat([lengths, angles])


def direct_matrix_A_vjp(cell, D_bar):
    """Gradient (6,) of ``sum(D_bar * direct_matrix_A(cell))`` w.r.t. the cell (per Å, per degree)."""
    xp, jacobian = _direct_matrix_jacobian(cell)
    bar = xp.asarray(D_bar, dtype=xp.float64, device=device(jacobian))
    return xp.sum(jacobian * bar, axis=(-2, -1))


def _nanobragg_terms(cell):
    """Intermediates of nanobragg_cell_matrices (see there)."""
    xp, p, (a, b, c), cos_t, sin_t, omega = _cell_terms(cell)
    volume = a * b * c * omega
    k = sin_t[0] * sin_t[1] * sin_t[2] / omega
    d_true = direct_matrix_A(p)
    one = xp.ones_like(k)
    column_scale = xp.stack([one, one, 1.0 / k])
    m = d_true * column_scale
    norms = xp.linalg.vector_norm(m, axis=-1)
    lengths = p[:3]
    d = m * (lengths / norms)[:, None]
    cross = xp.linalg.cross
    va, vb, vc = d[0, :], d[1, :], d[2, :]
    b_star = xp.stack([cross(vb, vc), cross(vc, va), cross(va, vb)], axis=-1) / volume
    return xp, p, cos_t, sin_t, omega, volume, k, d_true, column_scale, m, norms, lengths, d, b_star


def nanobragg_cell_matrices(cell):
    """Direct (rows, Å) and reciprocal (columns, Å^-1) matrices as nanoBragg's ``-cell`` builds them.

    nanoBragg sets up the standard-setting reciprocal basis with c*_z = k / c instead of 1 / c,
    k = sinα sinβ sinγ / ω (= sinγ / sinγ*), takes the direct vectors along its dual
    basis rescaled to the requested lengths a, b, c, then the reciprocal vectors as
    (b x c) / V, (c x a) / V, (a x b) / V with the requested volume V = a b c ω. So here the
    z column of direct_matrix_A(cell) is divided by k before the rows are rescaled. The
    resulting edges are exact but the angles are not (k = 1 when two of the angles are 90
    degrees, or all three), and ``D @ B`` is I times det(D) / V.
    Returns (D, B), both (3, 3).
    """
    *_, d, b_star = _nanobragg_terms(cell)
    return d, b_star


def nanobragg_cell_matrices_vjp(cell, D_bar, B_bar):
    """Gradient (6,) of ``sum(D_bar * D) + sum(B_bar * B)`` for (D, B) = nanobragg_cell_matrices(cell).

    Per Å for the edges, per degree for the angles.
    """
    xp, p, cos_t, sin_t, omega, volume, k, d_true, column_scale, m, norms, lengths, d, b_star = (
        _nanobragg_terms(cell)
    )
    dev = device(d)
    d_bar = xp.asarray(D_bar, dtype=xp.float64, device=dev)
    b_bar = xp.asarray(B_bar, dtype=xp.float64, device=dev)
    cross = xp.linalg.cross
    volume_bar = -xp.sum(b_bar * b_star) / volume
    g_a, g_b, g_c = b_bar[:, 0] / volume, b_bar[:, 1] / volume, b_bar[:, 2] / volume
    va, vb, vc = d[0, :], d[1, :], d[2, :]
    d_bar = d_bar + xp.stack(
        [
            cross(g_b, vc) + cross(vb, g_c),
            cross(vc, g_a) + cross(g_c, va),
            cross(g_a, vb) + cross(va, g_b),
        ]
    )
    unit = m / norms[:, None]
    lengths_bar = xp.sum(d_bar * unit, axis=-1)
    m_bar = (lengths / norms)[:, None] * (d_bar - unit * lengths_bar[:, None])
    k_bar = -xp.sum(m_bar[:, 2] * d_true[:, 2]) / (k * k)
    cell_bar = direct_matrix_A_vjp(p, m_bar * column_scale)

    omega2_d = _omega_squared_derivatives(cos_t, sin_t)
    a, b, c = lengths[0], lengths[1], lengths[2]
    volume_d_lengths = xp.stack([volume / a, volume / b, volume / c])
    volume_d_angles = xp.stack([a * b * c * g / (2.0 * omega) for g in omega2_d])
    k_d_angles = xp.stack(
        [k * (ct / st - g / (2.0 * omega * omega)) for ct, st, g in zip(cos_t, sin_t, omega2_d)]
    )
    d_lengths = lengths_bar + volume_bar * volume_d_lengths
    d_angles = (volume_bar * volume_d_angles + k_bar * k_d_angles) * _RAD_PER_DEG
    return cell_bar + xp.concat([d_lengths, d_angles])


def reciprocal_matrix_per_A(D):
    """Reciprocal matrix (3, 3), columns a*, b*, c* in Å^-1: the inverse of D (rows a, b, c in Å)."""
    xp = array_namespace(D)
    return xp.linalg.inv(D)


def reciprocal_metric_per_A2(D):
    """Reciprocal metric tensor G* = inv(D @ D.T) in Å^-2 (unchanged by rotating D's rows)."""
    xp = array_namespace(D)
    return xp.linalg.inv(D @ xp.matrix_transpose(D))


def reciprocal_metric_per_A2_vjp(D, G_bar):
    """Gradient (3, 3) of ``sum(G_bar * reciprocal_metric_per_A2(D))`` w.r.t. D."""
    xp = array_namespace(D)
    g = reciprocal_metric_per_A2(D)
    bar = xp.asarray(G_bar, dtype=xp.float64, device=device(D))
    metric_bar = -(g @ bar @ g)
    return (metric_bar + xp.matrix_transpose(metric_bar)) @ D


def cell_from_direct_matrix(D):
    """Cell (a, b, c in Å; alpha, beta, gamma in degrees) of a direct matrix, any orientation."""
    xp, dev = _namespace_and_device(D)
    d = xp.asarray(D, dtype=xp.float64, device=dev)
    if d.shape != (3, 3):
        raise ValueError(f"D must have shape (3, 3) (rows a, b, c), got {d.shape}")

    def angle_deg(u, v):
        sine = xp.linalg.vector_norm(xp.linalg.cross(u, v))
        return xp.atan2(sine, xp.vecdot(u, v)) / _RAD_PER_DEG

    lengths = xp.linalg.vector_norm(d, axis=-1)
    angles = (angle_deg(d[1, :], d[2, :]), angle_deg(d[0, :], d[2, :]), angle_deg(d[0, :], d[1, :]))
    return tuple(float(v) for v in (lengths[0], lengths[1], lengths[2], *angles))


def orientation_from_reciprocal_matrix(B_star):
    """Split a reciprocal matrix into a cell and an orientation: ``B_star = U @ B_std``.

    B_star: (3, 3), columns a*, b*, c* in Å^-1 (a MOSFLM A matrix divided by the wavelength).
    B_std is upper-triangular with a positive diagonal (the standard setting), U orthogonal
    (det -1 for a left-handed B_star, kept as is). Returns (cell, U) with cell a tuple of six
    floats and U a NumPy (3, 3) array; ``direct_matrix_A(cell) @ U.T`` equals inv(B_star).
    Host-side NumPy.
    """
    b = np.asarray(B_star, dtype=np.float64)
    if b.shape != (3, 3) or not np.all(np.isfinite(b)):
        raise ValueError(f"B_star must be a finite (3, 3) matrix, got {B_star!r}")
    if np.linalg.matrix_rank(b) < 3:
        raise ValueError(f"B_star is singular (its columns a*, b*, c* are not independent): {b}")
    q, r = np.linalg.qr(b)
    signs = np.sign(np.diag(r))
    u = q * signs
    b_std = signs[:, None] * r
    return cell_from_direct_matrix(np.linalg.inv(b_std)), u
