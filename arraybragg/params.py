"""Parameter dataclasses: what a simulation is made of, validated at construction.

Every field carries its unit in its name.  Values are the *resolved* ones: nanoBragg's
automatic choices (phi steps, divergence and dispersion sampling, layer count, domain count)
are applied by :mod:`arraybragg.nanobragg_args` before these objects are built, so a
parameter object describes exactly one image.  Two choices are also made here for Python
callers who give a range without its step: a divergence range with a count gets the step
range/(count - 1), and a sensor thickness without a layer step gets nanoBragg's layers
(:func:`arraybragg.sampling_rules.thickness_sampling`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from .sampling_rules import range_sampling, thickness_sampling

CONVENTIONS = ("mosflm", "xds", "dials", "adxv", "denzo", "custom")
PIVOTS = ("beam", "sample")
SHAPES = ("square", "round", "gauss", "tophat")
STREAMS = ("numpy", "nanobragg")
CELL_MODELS = ("nanobragg", "exact")
DEFAULT_FLUENCE_PER_M2 = 1.25932015286227086e29
DEFAULT_MOSAIC_SEED = -12345678


def _fail(name, value, allowed):
    raise ValueError(f"{name}={value!r} is not allowed: expected {allowed}")


def _finite(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        _fail(name, value, "a number")
    if not math.isfinite(value):
        _fail(name, value, "a finite number")
    return float(value)


def _positive(name, value):
    if _finite(name, value) <= 0:
        _fail(name, value, "a number > 0")
    return float(value)


def _non_negative(name, value):
    if _finite(name, value) < 0:
        _fail(name, value, "a number >= 0")
    return float(value)


def _count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        _fail(name, value, f"an integer >= {minimum}")
    return int(value)


def _choice(name, value, allowed):
    if value not in allowed:
        _fail(name, value, "one of " + ", ".join(repr(a) for a in allowed))
    return value


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        _fail(name, value, "True or False")
    return bool(value)


def _vector(name, value, length=3, optional=True):
    if value is None and optional:
        return None
    try:
        values = tuple(_finite(name, float(v)) for v in value)
    except (TypeError, ValueError):
        _fail(name, value, f"{length} finite numbers")
    if len(values) != length:
        _fail(name, value, f"{length} finite numbers")
    return values


def _unit_vector(name, value):
    vec = _vector(name, value)
    if vec is not None and math.hypot(*vec) == 0:
        _fail(name, value, "a non-zero vector")
    return vec


def _optional(check, name, value):
    return None if value is None else check(name, value)


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


def _store(obj, name, check):
    """Validate field ``name`` with ``check`` and keep the checked (plain Python) value."""
    _set(obj, name, check(name, getattr(obj, name)))


@dataclass(frozen=True, eq=False)
class Crystal:
    """The crystal: cell, orientation, size, lattice shape, structure factors and mosaicity.

    ``cell`` is (a, b, c, alpha, beta, gamma) in Å and degrees; ``u_matrix`` the orientation U of
    A = U·B (identity for a cell given directly); ``misset_deg`` rotations about lab x, then y,
    then z; ``n_cells`` the unit cells along a, b, c.  ``cell_model`` 'nanobragg' builds the
    lattice vectors as nanoBragg's ``-cell`` does (exact edges, triclinic angles slightly off);
    'exact' builds the exact cell (what ``-mat`` gives, and the physically expected choice).
    """

    cell: tuple = (100.0, 100.0, 100.0, 90.0, 90.0, 90.0)
    cell_model: str = "nanobragg"
    u_matrix: tuple = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    misset_deg: tuple = (0.0, 0.0, 0.0)
    n_cells: tuple = (1, 1, 1)
    shape: str = "square"
    fudge: float = 1.0
    default_F: float = 0.0
    hkl: object = None
    hkl_path: str | None = None
    hkl_format: str | None = None
    interpolate: bool | None = None
    mosaic_spread_deg: float = 0.0
    mosaic_domains: int = 1
    mosaic_seed: int = DEFAULT_MOSAIC_SEED
    misset_seed: int | None = None
    misset_random: bool = False
    rng: str = "numpy"

    def __post_init__(self):
        from .cell import check_cell

        cell = _vector("cell", self.cell, 6, optional=False)
        check_cell(cell)
        _set(self, "cell", cell)
        _choice("cell_model", self.cell_model, CELL_MODELS)
        u = np.asarray(self.u_matrix, dtype=np.float64)
        if u.shape != (3, 3) or not np.allclose(u @ u.T, np.eye(3), atol=1e-9):
            _fail("u_matrix", self.u_matrix, "an orthogonal 3x3 matrix")
        _set(self, "u_matrix", tuple(tuple(float(x) for x in row) for row in u))
        _set(self, "misset_deg", _vector("misset_deg", self.misset_deg, optional=False))
        n = self.n_cells
        if not isinstance(n, (tuple, list)) or len(n) != 3:
            _fail("n_cells", n, "three integers >= 1 (Na, Nb, Nc)")
        _set(self, "n_cells", tuple(_count("n_cells", v) for v in n))
        _choice("shape", self.shape, SHAPES)
        _set(self, "fudge", _positive("fudge", self.fudge))
        _set(self, "default_F", _finite("default_F", self.default_F))
        if self.interpolate is not None:
            _store(self, "interpolate", _flag)
        _set(self, "mosaic_spread_deg", _finite("mosaic_spread_deg", self.mosaic_spread_deg))
        _store(self, "mosaic_domains", _count)
        _set(self, "mosaic_seed", _seed("mosaic_seed", self.mosaic_seed))
        if self.misset_seed is not None:
            _set(self, "misset_seed", _seed("misset_seed", self.misset_seed))
        _store(self, "misset_random", _flag)
        if self.misset_random and self.misset_seed is None:
            _fail("misset_seed", None, "a seed when misset_random is True")
        _choice("rng", self.rng, STREAMS)
        _choice("hkl_format", self.hkl_format, (None, "hkl", "fdump"))
        if self.hkl is None and self.default_F == 0.0:
            _fail("default_F", 0.0, "a non-zero value when no hkl table is given (every F would be 0)")


def _seed(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or abs(value) > 2**31 - 1:
        _fail(name, value, "an integer from -(2**31 - 1) to 2**31 - 1 (the seeds nanoBragg can store)")
    return int(value)


@dataclass(frozen=True, eq=False)
class Beam:
    """The X-ray beam: wavelength, fluence, polarization, divergence, dispersion, sources, water."""

    wavelength_A: float = 1.0
    fluence_photons_per_m2: float = DEFAULT_FLUENCE_PER_M2
    kahn_factor: float = 0.0
    nopolar: bool = False
    beam_vector: tuple | None = None
    polar_vector: tuple | None = None
    dispersion_pct: float = 0.0
    dispsteps: int = 1
    hdivrange_mrad: float = 0.0
    hdivstep_mrad: float = 0.0
    hdivsteps: int = 1
    vdivrange_mrad: float = 0.0
    vdivstep_mrad: float = 0.0
    vdivsteps: int = 1
    round_div: bool = True
    sources: tuple | None = None
    source_path: str | None = None
    water_um: float = 0.0

    def __post_init__(self):
        _set(self, "wavelength_A", _positive("wavelength_A", self.wavelength_A))
        _set(self, "fluence_photons_per_m2", _non_negative("fluence_photons_per_m2", self.fluence_photons_per_m2))
        _set(self, "kahn_factor", _finite("kahn_factor", self.kahn_factor))
        _store(self, "nopolar", _flag)
        _set(self, "beam_vector", _unit_vector("beam_vector", self.beam_vector))
        _set(self, "polar_vector", _unit_vector("polar_vector", self.polar_vector))
        _set(self, "dispersion_pct", _non_negative("dispersion_pct", self.dispersion_pct))
        _store(self, "dispsteps", _count)
        for axis in ("h", "v"):
            _set(self, f"{axis}divrange_mrad", _non_negative(f"{axis}divrange_mrad", getattr(self, f"{axis}divrange_mrad")))
            _set(self, f"{axis}divstep_mrad", _non_negative(f"{axis}divstep_mrad", getattr(self, f"{axis}divstep_mrad")))
            _store(self, f"{axis}divsteps", _count)
        _store(self, "round_div", _flag)
        for axis in ("h", "v"):
            value_range, steps = getattr(self, f"{axis}divrange_mrad"), getattr(self, f"{axis}divsteps")
            if getattr(self, f"{axis}divstep_mrad") == 0.0 and value_range > 0.0:
                _, step, steps = range_sampling(value_range, None, steps)
                _set(self, f"{axis}divstep_mrad", step)
                _set(self, f"{axis}divsteps", steps)
        if self.sources is not None:
            rows = tuple(tuple(float("nan") if v is None else float(v) for v in row) for row in self.sources)
            if not rows or any(len(r) != 5 for r in rows):
                _fail("sources", self.sources, "rows of (X, Y, Z [m], weight, wavelength [m]) with NaN/None for missing")
            _set(self, "sources", rows)
        _set(self, "water_um", _non_negative("water_um", self.water_um))


@dataclass(frozen=True, eq=False)
class Detector:
    """The detector: size, pixels, convention, beam centre, distance, pivot, rotations, sensor."""

    fpixels: int = 1024
    spixels: int = 1024
    pixel_mm: float = 0.1
    detsize_f_mm: float | None = None
    detsize_s_mm: float | None = None
    convention: str = "mosflm"
    distance_mm: float = 100.0
    close_distance_mm: float | None = None
    xbeam_mm: float | None = None
    ybeam_mm: float | None = None
    xclose_mm: float | None = None
    yclose_mm: float | None = None
    orgx_px: float | None = None
    orgy_px: float | None = None
    pivot: str | None = None
    detector_rot_deg: tuple = (0.0, 0.0, 0.0)
    twotheta_deg: float = 0.0
    twotheta_axis: tuple | None = None
    fdet_vector: tuple | None = None
    sdet_vector: tuple | None = None
    odet_vector: tuple | None = None
    curved_detector: bool = False
    point_pixel: bool = False
    detector_thick_um: float = 0.0
    detector_thickstep_um: float = 0.0
    detector_thicksteps: int = 1
    detector_attenuation_um: float | None = None

    def __post_init__(self):
        _store(self, "fpixels", _count)
        _store(self, "spixels", _count)
        if self.fpixels * self.spixels > 2**31:
            _fail("fpixels*spixels", self.fpixels * self.spixels, "at most 2**31 pixels")
        _set(self, "pixel_mm", _positive("pixel_mm", self.pixel_mm))
        _set(self, "detsize_f_mm", _optional(_positive, "detsize_f_mm", self.detsize_f_mm))
        _set(self, "detsize_s_mm", _optional(_positive, "detsize_s_mm", self.detsize_s_mm))
        _choice("convention", self.convention, CONVENTIONS)
        _set(self, "distance_mm", _positive("distance_mm", self.distance_mm))
        _set(self, "close_distance_mm", _optional(_positive, "close_distance_mm", self.close_distance_mm))
        for name in ("xbeam_mm", "ybeam_mm", "xclose_mm", "yclose_mm", "orgx_px", "orgy_px"):
            _set(self, name, _optional(_finite, name, getattr(self, name)))
        if self.pivot is not None:
            _choice("pivot", self.pivot, PIVOTS)
        _set(self, "detector_rot_deg", _vector("detector_rot_deg", self.detector_rot_deg, optional=False))
        _set(self, "twotheta_deg", _finite("twotheta_deg", self.twotheta_deg))
        _set(self, "twotheta_axis", _unit_vector("twotheta_axis", self.twotheta_axis))
        for name in ("fdet_vector", "sdet_vector", "odet_vector"):
            _set(self, name, _unit_vector(name, getattr(self, name)))
        _store(self, "curved_detector", _flag)
        _store(self, "point_pixel", _flag)
        _set(self, "detector_thick_um", _non_negative("detector_thick_um", self.detector_thick_um))
        _set(self, "detector_thickstep_um", _non_negative("detector_thickstep_um", self.detector_thickstep_um))
        _store(self, "detector_thicksteps", _count)
        attenuation = self.detector_attenuation_um
        if attenuation is not None and (isinstance(attenuation, bool)
                                        or not isinstance(attenuation, (int, float, np.integer, np.floating))
                                        or not attenuation > 0):
            _fail("detector_attenuation_um", attenuation,
                  "None (= the thickness), a number > 0, or inf (a sensor that absorbs nothing: a zero image)")
        _set(self, "detector_attenuation_um", None if attenuation is None else float(attenuation))
        if self.detector_thick_um > 0.0 and self.detector_thickstep_um == 0.0:
            thick, step, steps = thickness_sampling(
                self.detector_thick_um, self.detector_thicksteps if self.detector_thicksteps > 1 else None)
            _set(self, "detector_thickstep_um", step)
            _set(self, "detector_thicksteps", steps)
        if self.convention != "custom":
            for name in ("fdet_vector", "sdet_vector", "odet_vector", "twotheta_axis"):
                if getattr(self, name) is not None:
                    _fail(name, getattr(self, name), "None unless convention='custom' (the convention fixes it)")

    @property
    def detsize_mm(self):
        """(fast, slow) detector size in mm as nanoBragg uses it for default beam centres."""
        f = self.detsize_f_mm if self.detsize_f_mm is not None else self.fpixels * self.pixel_mm
        s = self.detsize_s_mm if self.detsize_s_mm is not None else self.spixels * self.pixel_mm
        return f, s


@dataclass(frozen=True, eq=False)
class Sampling:
    """How the image is sampled: spindle rotation, sub-pixels, region of interest, resolution cut."""

    phi0_deg: float = 0.0
    phistep_deg: float = 0.0
    phisteps: int = 1
    osc_deg: float = 0.0
    spindle_axis: tuple | None = None
    oversample: int | None = None
    oversample_omega: bool = False
    oversample_polar: bool = False
    oversample_thick: bool = False
    roi: tuple | None = None
    dmin_A: float = 0.0
    mask: object = field(default=None, repr=False)
    nanobragg_compat: bool = False

    def __post_init__(self):
        _set(self, "phi0_deg", _finite("phi0_deg", self.phi0_deg))
        _set(self, "phistep_deg", _finite("phistep_deg", self.phistep_deg))
        _store(self, "phisteps", _count)
        _set(self, "osc_deg", _finite("osc_deg", self.osc_deg))
        _set(self, "spindle_axis", _unit_vector("spindle_axis", self.spindle_axis))
        if self.oversample is not None:
            _store(self, "oversample", _count)
        for name in ("oversample_omega", "oversample_polar", "oversample_thick", "nanobragg_compat"):
            _store(self, name, _flag)
        if self.roi is not None:
            roi = tuple(self.roi)
            if len(roi) != 4 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in roi):
                _fail("roi", self.roi, "four integers (xmin, xmax, ymin, ymax), inclusive pixel bounds")
            _set(self, "roi", tuple(int(v) for v in roi))
        _set(self, "dmin_A", _non_negative("dmin_A", self.dmin_A))
        if self.mask is not None:
            _set(self, "mask", np.asarray(self.mask) != 0)


GROUPS = {"crystal": Crystal, "beam": Beam, "detector": Detector, "sampling": Sampling}


def field_owner(name):
    """The group ('crystal', 'beam', 'detector', 'sampling') that owns parameter ``name``."""
    for group, cls in GROUPS.items():
        if name in {f.name for f in fields(cls)}:
            return group
    allowed = sorted(f.name for cls in GROUPS.values() for f in fields(cls))
    raise ValueError(f"unknown parameter {name!r}; allowed: {', '.join(allowed)}")
