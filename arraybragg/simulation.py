"""Simulation: parameters in, image (and its adjoint) out, in any array namespace.

A :class:`Simulation` holds the four parameter groups.  :meth:`Simulation.geometry` evaluates
the host-side geometry (float64 NumPy, a few hundred numbers), :meth:`Simulation.engine_inputs`
moves it into the caller's namespace, and the engine renders.  :meth:`Simulation.vjp` chains
the engine's adjoint back through mosaic, phi, misset and cell.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import engine as engine_module
from . import engines
from .cell import (direct_matrix_A, direct_matrix_A_vjp, nanobragg_cell_matrices, nanobragg_cell_matrices_vjp,
                   reciprocal_metric_per_A2, reciprocal_metric_per_A2_vjp)
from .detector import detector_frame
from .host import host_array
from .mosaic import draw_mosaic_base, mosaic_rotations, mosaic_rotations_vjp
from .orientation import random_misset_deg
from .params import GROUPS, Beam, Crystal, Detector, Sampling, field_owner
from .rotation import rotation_axis_angle, rotation_xyz, rotation_xyz_vjp
from .sampling_rules import recommended_oversample, warn
from .sources import beam_sources

R_E_SQR_M2 = 7.94079248018965e-30
AVOGADRO = 6.02214179e23
WATER_F = 2.57
WATER_MW = 18.0
RTD = 180.0 * 0.31830988618379067154
WRT_SIZES = {"cell": 6, "mosaic_spread_deg": 1, "misset_deg": 3}
MAX_TERMS_PER_SUBPIXEL = 1 << 22


@dataclass(frozen=True, eq=False)
class Geometry:
    """Host-side geometry of one simulation (float64 NumPy arrays, SI units unless named)."""

    frame: object
    incident: np.ndarray
    wavelength_m: np.ndarray
    direct_std_A: np.ndarray
    misset_rotation: np.ndarray
    misset_rad: np.ndarray
    base_lattice_m: np.ndarray
    phi_rad: np.ndarray
    phi_rotations: np.ndarray
    phi_rotations_first: np.ndarray | None
    mosaic_base: object
    mosaic_rotations: np.ndarray
    lattice_m: np.ndarray
    lattice_first_m: np.ndarray | None
    recip_metric: np.ndarray
    oversample: int
    recommended_oversample: int
    steps: int
    interpolate: bool

    @property
    def sources(self):
        return self.incident.shape[0]


def phi_angles_rad(sampling):
    """(phisteps,) spindle angles phi0 + k*step in radians, evaluated as nanoBragg does."""
    phi0, step = sampling.phi0_deg / RTD, sampling.phistep_deg / RTD
    return np.asarray([phi0 + step * k for k in range(sampling.phisteps)])


def stale_phi_indices(phi_rad, first_evaluation):
    """nanoBragg's phi-zero defect: for each step, the index of the rotation actually used.

    A step whose angle is exactly 0 keeps the previous non-zero step of the same evaluation,
    or, before any, the last non-zero step of the previous evaluation (-1 for the first
    evaluation or when every step is 0: the unrotated crystal).
    """
    nonzero = [k for k, phi in enumerate(phi_rad) if phi != 0.0]
    previous = -1 if first_evaluation or not nonzero else nonzero[-1]
    used = []
    for k, phi in enumerate(phi_rad):
        if phi != 0.0:
            previous = k
            used.append(k)
        else:
            used.append(previous)
    return used


def phi_rotations(spindle, phi_rad, used=None):
    """(P, 3, 3) spindle rotations; ``used`` maps each step to the angle index used (-1: none)."""
    used = range(len(phi_rad)) if used is None else used
    return np.stack([np.eye(3) if k < 0 else rotation_axis_angle(spindle, float(phi_rad[k])) for k in used])


def lattice_vectors_m(base_lattice_m, phi_rot, mosaic_rot):
    """(P*M, 3, 3) rows a, b, c of every (phi step, domain), phi-major: M_m R_k a0."""
    rows = np.einsum("ij,pkj,mlk->pmil", base_lattice_m, phi_rot, mosaic_rot)
    return rows.reshape(-1, 3, 3)


def lattice_vectors_m_vjp(base_lattice_m, phi_rot, mosaic_rot, lattice_bar):
    """(base_bar (3, 3), mosaic_bar (M, 3, 3)) for lattice cotangents (P*M, 3, 3)."""
    bar = lattice_bar.reshape(phi_rot.shape[0], mosaic_rot.shape[0], 3, 3)
    base_bar = np.einsum("pmil,pkj,mlk->ij", bar, phi_rot, mosaic_rot)
    mosaic_bar = np.einsum("pmil,ij,pkj->mlk", bar, base_lattice_m, phi_rot)
    return base_bar, mosaic_bar


def standard_cell(crystal):
    """(direct rows (3, 3) Å, reciprocal metric (3, 3) Å^-2) in the standard setting."""
    cell = np.asarray(crystal.cell, dtype=np.float64)
    if crystal.cell_model == "nanobragg":
        direct, recip = (np.asarray(m) for m in nanobragg_cell_matrices(cell))
        return direct, recip.T @ recip
    direct = np.asarray(direct_matrix_A(cell))
    return direct, np.asarray(reciprocal_metric_per_A2(direct))


def standard_cell_vjp(crystal, direct_bar, metric_bar):
    """Cell gradient (6,) from cotangents of :func:`standard_cell`'s outputs."""
    cell = np.asarray(crystal.cell, dtype=np.float64)
    if crystal.cell_model == "nanobragg":
        _, recip = (np.asarray(m) for m in nanobragg_cell_matrices(cell))
        return np.asarray(nanobragg_cell_matrices_vjp(cell, direct_bar, recip @ (metric_bar + metric_bar.T)))
    direct = np.asarray(direct_matrix_A(cell))
    direct_bar = direct_bar + np.asarray(reciprocal_metric_per_A2_vjp(direct, metric_bar))
    return np.asarray(direct_matrix_A_vjp(cell, direct_bar))


def misset_angles_deg(crystal):
    """The misset angles used: the given ones, or the seeded random draw."""
    if crystal.misset_random:
        return np.asarray(random_misset_deg(crystal.misset_seed, crystal.rng), dtype=np.float64)
    return np.asarray(crystal.misset_deg, dtype=np.float64)


def water_background(beam):
    """nanoBragg's water term (photons per pixel sum, before the 1/steps scaling)."""
    water_m = beam.water_um * 1e-6
    return WATER_F**2 * R_E_SQR_M2 * beam.fluence_photons_per_m2 * water_m**3 * 1e6 * AVOGADRO / WATER_MW


_DERIVED_FROM = {
    "misset_random": ("misset_deg",), "hkl_path": ("hkl",), "hkl_format": ("hkl",), "source_path": ("sources",),
    "detector_thickstep_um": ("detector_thick_um", "detector_thicksteps"), "detector_thicksteps": ("detector_thick_um",),
    "hdivstep_mrad": ("hdivrange_mrad", "hdivsteps"), "vdivstep_mrad": ("vdivrange_mrad", "vdivsteps"),
}
_DERIVED_RESETS = (("misset_random", False), ("hkl_path", None), ("hkl_format", None), ("source_path", None),
                   ("detector_thickstep_um", 0.0), ("detector_thicksteps", 1), ("hdivstep_mrad", 0.0),
                   ("vdivstep_mrad", 0.0))


@dataclass(frozen=True, eq=False)
class Simulation:
    """One diffraction image: crystal, beam, detector and sampling parameters."""

    crystal: Crystal
    beam: Beam = dataclasses.field(default_factory=Beam)
    detector: Detector = dataclasses.field(default_factory=Detector)
    sampling: Sampling = dataclasses.field(default_factory=Sampling)

    def __post_init__(self):
        if self.detector.convention != "custom":
            for group, name in (("beam", "beam_vector"), ("beam", "polar_vector"), ("sampling", "spindle_axis")):
                if getattr(getattr(self, group), name) is not None:
                    raise ValueError(f"{name} is only used with convention='custom'; the "
                                     f"{self.detector.convention!r} convention fixes it")
        mask = self.sampling.mask
        if mask is not None and mask.shape != (self.detector.spixels, self.detector.fpixels):
            raise ValueError(f"mask shape {mask.shape} does not match the detector "
                             f"({self.detector.spixels}, {self.detector.fpixels}) pixels (slow, fast)")

    @property
    def rendered_roi(self):
        """Inclusive (xmin, xmax, ymin, ymax) of the rendered pixels (nanoBragg's -roi default)."""
        d, roi = self.detector, self.sampling.roi
        return roi if roi is not None else (0, d.fpixels, 0, d.spixels)

    def replace(self, **changes):
        """A new simulation with parameters changed by name (e.g. cell=..., distance_mm=...).

        Values derived from a changed parameter are reset unless given too: ``misset_deg``
        switches a random misset off; a new ``hkl`` or ``sources`` drops the file it came from;
        a new thickness (with nanoBragg's two layers unless ``detector_thicksteps`` is given)
        or divergence range (or count) has its step worked out again.
        """
        groups = {name: {} for name in GROUPS}
        for name, value in changes.items():
            groups[field_owner(name)][name] = value
        for name, value in _DERIVED_RESETS:
            if any(key in changes for key in _DERIVED_FROM[name]):
                groups[field_owner(name)].setdefault(name, value)
        new = {name: dataclasses.replace(getattr(self, name), **fields) if fields else getattr(self, name)
               for name, fields in groups.items()}
        return Simulation(**new)

    def geometry(self):
        """Evaluate the host-side geometry (see :class:`Geometry`)."""
        c, b, d, s = self.crystal, self.beam, self.detector, self.sampling
        frame = detector_frame(d, b.beam_vector, b.polar_vector, s.spindle_axis)
        if frame.odet_generated:
            warn("odet_vector is not a unit vector: auto-generating it as fast x slow")
        incident, wavelength_m = beam_sources(b, frame)
        direct_std, recip_metric = standard_cell(c)
        misset_rad = np.radians(misset_angles_deg(c))
        misset_rot = np.asarray(rotation_xyz(misset_rad))
        u = np.asarray(c.u_matrix)
        base = 1e-10 * direct_std @ u.T @ misset_rot.T
        phi_rad = phi_angles_rad(s)
        if s.nanobragg_compat and np.any(phi_rad == 0.0):
            rot = phi_rotations(frame.spindle, phi_rad, stale_phi_indices(phi_rad, False))
            rot_first = phi_rotations(frame.spindle, phi_rad, stale_phi_indices(phi_rad, True))
        else:
            rot, rot_first = phi_rotations(frame.spindle, phi_rad), None
        misset_seed = c.misset_seed if (c.misset_random and c.rng == "nanobragg") else None
        mosaic_base = draw_mosaic_base(c.mosaic_domains, c.mosaic_seed, c.rng, misset_seed=misset_seed)
        mosaic_rot = np.asarray(mosaic_rotations(mosaic_base, c.mosaic_spread_deg))
        edges = [float(np.linalg.norm(row)) for row in base]
        recommended = recommended_oversample(c.n_cells, edges, b.wavelength_A * 1e-10, frame.distance_m,
                                             d.pixel_mm * 1e-3)
        oversample = s.oversample if s.oversample is not None else recommended
        terms = incident.shape[0] * c.mosaic_domains * s.phisteps
        if terms > MAX_TERMS_PER_SUBPIXEL:
            raise ValueError(f"sources x mosaic_domains x phisteps = {terms} evaluations per sub-pixel; at most "
                             f"{MAX_TERMS_PER_SUBPIXEL} are allowed (reduce mosaic_domains, phisteps or sources)")
        interpolate = (c.hkl is not None and min(c.hkl.grid.shape) >= 4
                       and (c.interpolate if c.interpolate is not None else min(c.n_cells) <= 2))
        return Geometry(
            frame=frame, incident=incident, wavelength_m=wavelength_m, direct_std_A=direct_std,
            misset_rotation=misset_rot, misset_rad=misset_rad, base_lattice_m=base, phi_rad=phi_rad,
            phi_rotations=rot, phi_rotations_first=rot_first, mosaic_base=mosaic_base,
            mosaic_rotations=mosaic_rot, lattice_m=lattice_vectors_m(base, rot, mosaic_rot),
            lattice_first_m=None if rot_first is None else lattice_vectors_m(base, rot_first, mosaic_rot),
            recip_metric=recip_metric, oversample=oversample,
            recommended_oversample=recommended,
            steps=incident.shape[0] * c.mosaic_domains * s.phisteps * oversample**2, interpolate=interpolate)

    def engine_inputs(self, xp=None, dtype=None, geometry=None, chunk_terms=engine_module.DEFAULT_CHUNK_TERMS):
        """The engine bundle in namespace ``xp`` (default NumPy) and ``dtype`` (default float64)."""
        xp = np if xp is None else xp
        dtype = xp.float64 if dtype is None else dtype
        geo = self.geometry() if geometry is None else geometry
        c, b, d, s = self.crystal, self.beam, self.detector, self.sampling

        def arr(x):
            return None if x is None else xp.asarray(np.ascontiguousarray(x, dtype=np.float64), dtype=dtype)

        frame = geo.frame
        table = c.hkl.filled(c.default_F).reshape(-1) if c.hkl is not None else None
        thick = d.detector_thick_um * 1e-6
        attenuation = d.detector_attenuation_um if d.detector_attenuation_um is not None else d.detector_thick_um
        roi = self.rendered_roi
        active = None if s.mask is None else arr(s.mask.reshape(-1).astype(np.float64))
        return engine_module.EngineInputs(
            pix0=arr(frame.pix0_m), fdet=arr(frame.fdet), sdet=arr(frame.sdet), odet=arr(frame.odet),
            beam=arr(frame.beam), fpixels=d.fpixels, spixels=d.spixels, pixel_m=d.pixel_mm * 1e-3,
            oversample=geo.oversample, roi=roi, active=active, layers=d.detector_thicksteps,
            layer_step_m=d.detector_thickstep_um * 1e-6,
            mu_per_m=1.0 / (attenuation * 1e-6) if thick > 0 else 0.0, thick_m=thick,
            curved=d.curved_detector, distance_m=frame.distance_m, close_distance_m=frame.close_distance_m,
            point_pixel=d.point_pixel, incident=arr(geo.incident), wavelength_m=arr(geo.wavelength_m),
            kahn_factor=b.kahn_factor, polar_axis=arr(frame.polar), nopolar=b.nopolar,
            dmin_m=s.dmin_A * 1e-10, lattice_m=arr(geo.lattice_m), lattice_first_m=arr(geo.lattice_first_m),
            recip_metric=arr(geo.recip_metric), n_cells=c.n_cells, shape=c.shape, fudge=c.fudge,
            table=arr(table), hkl_min=tuple(c.hkl.hkl_min) if c.hkl is not None else (0, 0, 0),
            hkl_shape=tuple(c.hkl.grid.shape) if c.hkl is not None else (0, 0, 0), default_F=c.default_F,
            interpolate=geo.interpolate, interpolation_switch_off=s.nanobragg_compat,
            scale=R_E_SQR_M2 * b.fluence_photons_per_m2 / geo.steps, background=water_background(b),
            oversample_omega=s.oversample_omega, oversample_polar=s.oversample_polar,
            oversample_thick=s.oversample_thick, chunk_terms=chunk_terms)

    def run(self, xp=None, dtype=None, chunk_terms=engine_module.DEFAULT_CHUNK_TERMS, engine="auto"):
        """The image, (spixels, fpixels) photons per pixel, in namespace ``xp`` (default NumPy).

        ``chunk_terms`` bounds the evaluations held in memory at once (larger suits GPUs).
        ``engine``: 'array', 'numba' or 'auto' (numba for NumPy inputs when installed; see
        :func:`arraybragg.engines.select_engine`).
        """
        inputs = self.engine_inputs(xp, dtype, chunk_terms=chunk_terms)
        return engines.select_engine(engine, np if xp is None else xp, inputs.pix0.dtype).render(inputs)

    def vjp(self, wrt=("cell", "mosaic_spread_deg", "misset_deg"), xp=None, engine="auto"):
        """(image, pullback); pullback(cotangent) -> {name: gradient of sum(cotangent * image)}.

        ``wrt`` names from 'cell' (6: Å, deg), 'mosaic_spread_deg' (per degree) and
        'misset_deg' (3, per degree).  The pullback recomputes the pixel loop: O(image) memory.
        ``engine`` as in :meth:`run`.
        """
        unknown = set(wrt) - set(WRT_SIZES)
        if unknown:
            raise ValueError(f"wrt={sorted(unknown)} not supported; choose from {sorted(WRT_SIZES)}")
        geo = self.geometry()
        inputs = engine_module.with_plan(self.engine_inputs(xp, geometry=geo))
        chosen = engines.select_engine(engine, np if xp is None else xp, inputs.pix0.dtype)
        image = chosen.render(inputs)

        def pullback(cotangent):
            grads = chosen.render_vjp(inputs, cotangent)
            return self._chain(geo, {k: None if v is None else host_array(v) for k, v in grads.items()}, wrt)

        return image, pullback

    def _chain(self, geo, grads, wrt):
        """Host-side chain rule from engine cotangents to the requested parameters."""
        base_bar, mosaic_bar = lattice_vectors_m_vjp(geo.base_lattice_m, geo.phi_rotations, geo.mosaic_rotations,
                                                     grads["lattice"])
        if grads["lattice_first"] is not None:
            first_base, first_mosaic = lattice_vectors_m_vjp(geo.base_lattice_m, geo.phi_rotations_first,
                                                             geo.mosaic_rotations, grads["lattice_first"])
            base_bar, mosaic_bar = base_bar + first_base, mosaic_bar + first_mosaic
        u = np.asarray(self.crystal.u_matrix)
        out = {}
        if "mosaic_spread_deg" in wrt:
            out["mosaic_spread_deg"] = float(mosaic_rotations_vjp(geo.mosaic_base, self.crystal.mosaic_spread_deg,
                                                                  mosaic_bar))
        if "misset_deg" in wrt:
            oriented = 1e-10 * geo.direct_std_A @ u.T
            rot_bar = base_bar.T @ oriented
            out["misset_deg"] = np.asarray(rotation_xyz_vjp(geo.misset_rad, rot_bar)) * (math.pi / 180.0)
        if "cell" in wrt:
            direct_bar = 1e-10 * base_bar @ geo.misset_rotation @ u
            out["cell"] = standard_cell_vjp(self.crystal, direct_bar, grads["recip_metric"])
        return out

    def parameter_vector(self, wrt):
        """Flat float64 vector of the parameters named in ``wrt`` (cell, mosaic_spread_deg, misset_deg)."""
        values = {"cell": self.crystal.cell, "mosaic_spread_deg": (self.crystal.mosaic_spread_deg,),
                  "misset_deg": tuple(misset_angles_deg(self.crystal))}
        return np.concatenate([np.asarray(values[name], dtype=np.float64) for name in wrt])

    def with_parameter_vector(self, wrt, x):
        """The simulation with the parameters of ``wrt`` set from the flat vector ``x``."""
        changes, offset = {}, 0
        for name in wrt:
            size = WRT_SIZES[name]
            part = [float(v) for v in x[offset:offset + size]]
            changes[name] = part[0] if size == 1 else tuple(part)
            offset += size
        return self.replace(**changes)

    def value_and_grad(self, loss, wrt=("cell", "mosaic_spread_deg"), xp=None):
        """f(x) -> (value, gradient) for scipy.optimize.minimize(jac=True).

        ``loss(image) -> (value, d value / d image)``; x is the flat vector of ``wrt``
        (see :meth:`parameter_vector`).
        """
        wrt = tuple(wrt)

        def fun(x):
            image, pullback = self.with_parameter_vector(wrt, x).vjp(wrt, xp=xp)
            value, cotangent = loss(image)
            grads = pullback(cotangent)
            return float(value), np.concatenate([np.atleast_1d(np.asarray(grads[name], dtype=np.float64))
                                                 for name in wrt])

        return fun

    def to_dict(self):
        """Every parameter by group, JSON-ready (tables by file path; NaN as None)."""
        return {group: _group_dict(getattr(self, group)) for group in GROUPS}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict` (hkl tables re-read from their files or taken inline)."""
        groups = {}
        compat = bool(data.get("sampling", {}).get("nanobragg_compat", False))
        for group, klass in GROUPS.items():
            values = dict(data.get(group, {}))
            if group == "crystal":
                values["hkl"] = _table_from_dict(values.pop("hkl_table", None), values, compat)
            if group == "sampling" and values.get("mask") is not None:
                values["mask"] = np.asarray(values["mask"])
            groups[group] = klass(**values)
        return cls(**groups)


def _table_from_dict(inline, crystal_values, compat):
    from .hkl import HKLTable, read_fdump, read_hkl

    if inline is not None:
        grid = np.asarray([[[np.nan if v is None else v for v in row] for row in plane] for plane in inline["grid"]],
                          dtype=np.float64)
        return HKLTable(grid, tuple(inline["hkl_min"]))
    path = crystal_values.get("hkl_path")
    if path is None:
        return None
    reader = read_fdump if crystal_values.get("hkl_format") == "fdump" else read_hkl
    return reader(path, compat=compat)


def _jsonable(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def _group_dict(params):
    out = {}
    for f in dataclasses.fields(params):
        if f.name == "hkl":
            if params.hkl is not None and params.hkl_path is None:
                out["hkl_table"] = {"hkl_min": list(params.hkl.hkl_min), "grid": _jsonable(params.hkl.grid)}
            continue
        out[f.name] = _jsonable(getattr(params, f.name))
    return out
