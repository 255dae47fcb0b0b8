"""Mosaic domains: frozen random base numbers (axis, unit angle) times a differentiable spread.

Domain i is a rotation by angle_i = spread_rad * unit_angle_i about a uniformly random unit axis;
domain 0 is the identity. The base numbers come from a generator created from the stored seed at
every call (docs/stochastic.md gives the draw layout of each stream), so the rotation matrices are
a pure, smooth function of (seed, number of domains, spread, stream).
"""

import ctypes
import ctypes.util
import functools
import math
import operator
from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace

from arraybragg.ran1 import Ran1
from arraybragg.rotation import rotation_axis_angle, rotation_axis_angle_vjp

RNG_STREAMS = ("numpy", "nanobragg")
DEG_PER_RAD = 180.0 / math.pi  # equal to nanoBragg's RTD = 180 * M_1_PI
_SEED_LIMIT = 2**31 - 1
_NUMPY_SEED_MASK = 0x7FFFFFFF


@dataclass(frozen=True, eq=False)
class MosaicBase:
    """Frozen random numbers of the mosaic domains; the spread scales them into rotations."""

    axes: np.ndarray  # (n, 3) float64 unit rotation axes, one per domain (domain 0 included)
    unit_angles: np.ndarray  # (n,) float64: rotation angle per radian of spread, (1 - r3**2)**(1/3)
    rng: str  # "numpy" or "nanobragg"

    def __post_init__(self):
        check_rng(self.rng)
        axes = np.array(self.axes, dtype=np.float64)
        unit_angles = np.array(self.unit_angles, dtype=np.float64)
        if axes.ndim != 2 or axes.shape[1] != 3 or axes.shape[0] < 1:
            raise ValueError(f"MosaicBase.axes: shape {axes.shape}; expected (n, 3) with n >= 1")
        if unit_angles.shape != axes.shape[:1]:
            raise ValueError(
                f"MosaicBase.unit_angles: shape {unit_angles.shape}; expected ({axes.shape[0]},)"
            )
        axes.setflags(write=False)
        unit_angles.setflags(write=False)
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "unit_angles", unit_angles)


def check_rng(rng: str) -> str:
    """The stream name, or ValueError."""
    if rng not in RNG_STREAMS:
        raise ValueError(f"rng: {rng!r}; allowed: {', '.join(RNG_STREAMS)}")
    return rng


def check_seed(name: str, seed) -> int:
    """A stored seed as an int in [-(2**31 - 1), 2**31 - 1] (nanoBragg stores -atoi(flag)), or ValueError."""
    try:
        value = operator.index(seed)
    except TypeError:
        raise ValueError(f"{name}: {seed!r}; expected an integer") from None
    if abs(value) > _SEED_LIMIT:
        raise ValueError(f"{name}: {value}; allowed: integers from {-_SEED_LIMIT} to {_SEED_LIMIT}")
    return value


def numpy_generator(seed: int) -> np.random.Generator:
    """The default stream for a stored seed: Generator(PCG64(seed & 0x7FFFFFFF)), new at every call."""
    return np.random.Generator(np.random.PCG64(seed & _NUMPY_SEED_MASK))


def unit_axes(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """(n,) uniforms on [-1, 1] -> (n, 3) unit axes (sqrt(1-r2^2) sin(pi r1), sqrt(1-r2^2) cos(pi r1), r2)."""
    radius = np.sqrt(1.0 - r2 * r2)
    return np.stack([radius * np.sin(np.pi * r1), radius * np.cos(np.pi * r1), r2], axis=-1)


@functools.cache
def _c_powf():
    """The C math library's powf (the function nanoBragg calls), or None where none can be loaded."""
    path = ctypes.util.find_library("m") or ctypes.util.find_library("c")
    if path is None:
        return None
    powf = ctypes.CDLL(path).powf
    powf.restype = ctypes.c_float
    powf.argtypes = (ctypes.c_float, ctypes.c_float)
    return powf


def float32_unit_angles(r3: np.ndarray) -> np.ndarray:
    """(n,) uniforms on [-1, 1] -> powf(float32(1 - r3^2), float32(1/3)), nanoBragg's single-precision unit angle.

    Uses the C library's powf, which is not correctly rounded; where it cannot be loaded, the
    float64 power rounded to float32 (1 ulp apart for about 0.06% of arguments)."""
    powf = _c_powf()
    third = float(np.float32(1.0 / 3.0))
    bases = [float(np.float32(1.0 - r * r)) for r in r3.tolist()]
    if powf is None:
        return np.array([np.float32(b**third) for b in bases], dtype=np.float64)
    return np.array([powf(b, third) for b in bases], dtype=np.float64)


def float32_angles_rad(spread_rad: float, unit_angles: np.ndarray) -> np.ndarray:
    """nanoBragg's single-precision angle: float32(float32(spread_rad) * float32(unit_angles)), as float64."""
    product = np.float32(spread_rad) * unit_angles.astype(np.float32)
    return product.astype(np.float64)


def nanobragg_uniforms(generator: Ran1, idum: int, n: int) -> tuple[np.ndarray, int]:
    """3n draws of nanoBragg's stream as (n, 3) numbers 2u - 1 (columns r1, r2, r3), and the new idum."""
    draws = []
    for _ in range(3 * n):
        value, idum = generator.uniform(idum)
        draws.append(value)
    return 2.0 * np.array(draws, dtype=np.float64).reshape(n, 3) - 1.0, idum


def _check_count(n_domains) -> int:
    try:
        n = operator.index(n_domains)
    except TypeError:
        raise ValueError(f"n_domains: {n_domains!r}; expected an integer >= 1") from None
    if n < 1:
        raise ValueError(f"n_domains: {n}; allowed: integers >= 1")
    return n


def draw_mosaic_base(
    n_domains: int, mosaic_seed: int, rng: str = "numpy", *, misset_seed: int | None = None
) -> MosaicBase:
    """Base numbers of n_domains domains from the stored mosaic_seed (nanoBragg's default is -12345678).

    "numpy": u = Generator(PCG64(mosaic_seed & 0x7FFFFFFF)).random((n_domains, 3)), r = 2u - 1,
    columns r1, r2, r3; domain 0 drawn too, so the first k domains do not depend on n_domains.
    misset_seed does not enter: every stream of this kind has its own generator.
    "nanobragg": a fresh ran1; if misset_seed is given, the random misset's 3 draws come first
    (seeded with it), then 3 draws per domain continue the shared table with mosaic_seed as idum.
    """
    n = _check_count(n_domains)
    seed = check_seed("mosaic_seed", mosaic_seed)
    check_rng(rng)
    if rng == "numpy":
        r = 2.0 * numpy_generator(seed).random((n, 3)) - 1.0
        return MosaicBase(unit_axes(r[:, 0], r[:, 1]), np.cbrt(1.0 - r[:, 2] ** 2), rng)
    generator = Ran1()
    if misset_seed is not None:
        nanobragg_uniforms(generator, check_seed("misset_seed", misset_seed), 1)
    r, _ = nanobragg_uniforms(generator, seed, n)
    return MosaicBase(unit_axes(r[:, 0], r[:, 1]), float32_unit_angles(r[:, 2]), rng)


def _spread_values_deg(spread_deg) -> np.ndarray:
    value = np.asarray(spread_deg, dtype=np.float64)
    if not np.all(np.isfinite(value)):
        raise ValueError(f"mosaic_spread_deg: {spread_deg}; expected finite numbers")
    return value


def _angle_rates_rad_per_deg(base: MosaicBase) -> np.ndarray:
    """(n,) d angle_i / d spread_deg; 0 for domain 0."""
    rates = base.unit_angles / DEG_PER_RAD
    rates[0] = 0.0
    return rates


def mosaic_angles_rad(base: MosaicBase, spread_deg) -> np.ndarray:
    """(..., n) rotation angle of each domain (rad) for signed spreads (...) in degrees; domain 0 -> 0.

    A scalar spread gives (n,); an array of spreads a batch of angle sets, one per spread.
    """
    spread_rad = _spread_values_deg(spread_deg)[..., None] / DEG_PER_RAD
    if base.rng == "nanobragg":
        angles = float32_angles_rad(spread_rad, base.unit_angles)
    else:
        angles = spread_rad * base.unit_angles
    angles[..., 0] = 0.0
    return angles


def mosaic_rotations(base: MosaicBase, spread_deg, xp=None):
    """(..., n, 3, 3) float64 rotation of each domain in namespace xp (default numpy); R_0 = I exactly.

    ``spread_deg`` a scalar gives (n, 3, 3); an array of spreads (...) a batch of domain sets.
    """
    xp = np if xp is None else xp
    angles = xp.asarray(mosaic_angles_rad(base, spread_deg), dtype=xp.float64)
    return rotation_axis_angle(xp.asarray(base.axes, dtype=xp.float64), angles)


def mosaic_rotations_vjp(base: MosaicBase, spread_deg, rotations_bar):
    """d/d spread_deg of sum(rotations_bar * mosaic_rotations(base, spread_deg)).

    A float for a scalar spread, else an array shaped like ``spread_deg``. For the "nanobragg"
    stream the float32 roundings of the angle are taken as the identity: the derivative is that
    of spread_rad * unit_angle, evaluated at the rounded angles."""
    xp = array_namespace(rotations_bar)
    angles = xp.asarray(mosaic_angles_rad(base, spread_deg), dtype=xp.float64)
    axes = xp.asarray(base.axes, dtype=xp.float64)
    angles_bar = rotation_axis_angle_vjp(axes, angles, rotations_bar)
    rates = xp.asarray(_angle_rates_rad_per_deg(base), dtype=xp.float64)
    grad = xp.sum(angles_bar * rates, axis=-1)
    return float(grad) if grad.ndim == 0 else grad
