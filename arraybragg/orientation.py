"""Crystal orientation: misset angles of a rotation matrix, random misset, seeds from entropy."""

import math
import secrets

import numpy as np

from arraybragg.mosaic import (
    DEG_PER_RAD,
    check_rng,
    check_seed,
    float32_angles_rad,
    float32_unit_angles,
    nanobragg_uniforms,
    numpy_generator,
    unit_axes,
)
from arraybragg.ran1 import Ran1
from arraybragg.rotation import rotation_axis_angle

MISSET_SPREAD_RAD = 90.0  # nanoBragg draws a random misset as one mosaic rotation of "spread" 90 rad
_ORTHONORMAL_TOLERANCE = 1e-6


def _check_rotation(umat) -> np.ndarray:
    matrix = np.asarray(umat, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"umat: shape {matrix.shape}; expected a finite (3, 3) rotation matrix")
    error = np.max(np.abs(matrix @ matrix.T - np.eye(3)))
    if error > _ORTHONORMAL_TOLERANCE or np.linalg.det(matrix) <= 0.0:
        raise ValueError(
            f"umat: {matrix.tolist()} is not a proper rotation (|U U^T - I| = {error:.3g}, "
            f"det = {np.linalg.det(matrix):.6g}); allowed: orthonormal with determinant +1"
        )
    return matrix


def rotation_to_misset_rad(umat) -> np.ndarray:
    """(3,) angles x, y, z (rad) with umat = Rz(z) Ry(y) Rx(x): rotate about x, then y, then z.

    As nanoBragg's umat2misset: rows normalised first; x = atan2(U_zy, U_zz),
    y = atan2(-U_zx, hypot(U_zy, U_zz)), z = atan2(U_yx, U_xx). At gimbal lock (|U_zx| = 1)
    x = 0, y = -sign(U_zx) pi/2, z = atan2(-U_xy, U_yy), which reproduces umat for either sign."""
    matrix = _check_rotation(umat)
    u = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    if u[2, 0] * u[2, 0] < 1.0:
        angles = (
            math.atan2(u[2, 1], u[2, 2]),
            math.atan2(-u[2, 0], math.hypot(u[2, 1], u[2, 2])),
            math.atan2(u[1, 0], u[0, 0]),
        )
    else:
        angles = (0.0, -math.copysign(math.pi / 2, u[2, 0]), math.atan2(-u[0, 1], u[1, 1]))
    return np.array(angles, dtype=np.float64)


def _quaternion_rotation(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) -> (3, 3) rotation matrix, v' = R v."""
    w, x, y, z = q.tolist()
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _random_rotation_numpy(seed: int) -> np.ndarray:
    """Haar-uniform rotation: q = Generator(PCG64(seed & 0x7FFFFFFF)).standard_normal(4) as (w, x, y, z), normalised."""
    q = numpy_generator(seed).standard_normal(4)
    return _quaternion_rotation(q / np.linalg.norm(q))


def _random_rotation_nanobragg(seed: int) -> np.ndarray:
    """nanoBragg's random misset: one mosaic rotation of spread 90 rad (single precision) from a fresh ran1."""
    r, _ = nanobragg_uniforms(Ran1(), seed, 1)
    angle = float32_angles_rad(MISSET_SPREAD_RAD, float32_unit_angles(r[:, 2]))
    return rotation_axis_angle(unit_axes(r[:, 0], r[:, 1]), angle)[0]


def random_misset_deg(misset_seed: int, rng: str = "numpy") -> tuple[float, float, float]:
    """Misset angles x, y, z (deg) of a random orientation drawn from the stored misset_seed.

    "numpy": a Haar-uniform rotation (docs/stochastic.md); "nanobragg": what nanoBragg prints as
    "random orientation misset angles" for that stored seed."""
    seed = check_seed("misset_seed", misset_seed)
    check_rng(rng)
    rotation = _random_rotation_numpy(seed) if rng == "numpy" else _random_rotation_nanobragg(seed)
    x, y, z = (rotation_to_misset_rad(rotation) * DEG_PER_RAD).tolist()
    return x, y, z


def entropy_seed() -> int:
    """A seed in [1, 2**31 - 1] from the operating system's entropy, for draws the user gave no seed for."""
    return secrets.randbelow(2**31 - 1) + 1
