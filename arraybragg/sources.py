"""X-ray sources: directions and wavelengths from divergence, dispersion or a source file.

Every source sits 10 m from the sample; what the engine needs is the unit vector of the
incident beam (from source to sample) and the wavelength in metres.  Arrays are float64 in
the namespace of the frame's vectors.
"""
from __future__ import annotations

from array_api_compat import array_namespace

from .rotation import rotation_axis_angle
from .vectors import norm

SOURCE_DISTANCE_M = 10.0


def divergence_angles_rad(range_rad, step_rad, steps):
    """Angles step*k - range/2, k = 0 .. steps-1, of one divergence axis (list of floats)."""
    return [step_rad * k - range_rad / 2.0 for k in range(steps)]


def inside_round_divergence(h_rad, v_rad, hdiv, vdiv):
    """nanoBragg's elliptical cut of the divergence grid (hdiv, vdiv: (range, step, steps) in rad).

    A grid point is kept when 4*[(h^2 - s_h^2/4*e_h)/R_h^2 + (v^2 - s_v^2/4*e_v)/R_v^2] <= 1.1
    with e = 1 for an even count; with a zero range the test is undefined and the point is kept.
    """
    (hrange, hstep, hsteps), (vrange, vstep, vsteps) = hdiv, vdiv
    if hrange == 0.0 or vrange == 0.0:
        return True
    test = (h_rad**2 - hstep**2 / 4.0 * (1 - hsteps % 2)) / hrange**2
    test += (v_rad**2 - vstep**2 / 4.0 * (1 - vsteps % 2)) / vrange**2
    return not test * 4.0 > 1.1


def dispersion_wavelengths_m(wavelength_m, dispersion_pct, dispsteps):
    """Wavelengths lambda0*(1 + k*step - dispersion/2), step = dispersion/(n-1) (list of floats)."""
    dispersion = dispersion_pct / 100.0
    step = dispersion / (dispsteps - 1) if dispsteps > 1 else 0.0
    return [wavelength_m * (1.0 + step * k - dispersion / 2.0) for k in range(dispsteps)]


def generated_sources(beam_params, beam, polar, vert):
    """Sources of a divergence grid times a wavelength list, in nanoBragg's order.

    Returns (positions (S, 3) m, wavelengths (S,) m): horizontal angle outermost, then
    vertical, then wavelength.  A source is -10 m * beam rotated about the polarization axis
    by the vertical angle, then about beam x polarization by the horizontal angle.
    """
    xp = array_namespace(beam)
    mrad = 1e-3
    hdiv = (beam_params.hdivrange_mrad * mrad, beam_params.hdivstep_mrad * mrad, beam_params.hdivsteps)
    vdiv = (beam_params.vdivrange_mrad * mrad, beam_params.vdivstep_mrad * mrad, beam_params.vdivsteps)
    wavelengths = dispersion_wavelengths_m(beam_params.wavelength_A * 1e-10, beam_params.dispersion_pct,
                                           beam_params.dispsteps)
    positions, lambdas = [], []
    for h in divergence_angles_rad(*hdiv):
        for v in divergence_angles_rad(*vdiv):
            if beam_params.round_div and not inside_round_divergence(h, v, hdiv, vdiv):
                continue
            turn_v = rotation_axis_angle(polar, xp.asarray(v, dtype=xp.float64))
            turn_h = rotation_axis_angle(vert, xp.asarray(h, dtype=xp.float64))
            vec = turn_h @ (turn_v @ (-SOURCE_DISTANCE_M * beam))
            positions.extend([vec] * len(wavelengths))
            lambdas.extend(wavelengths)
    if not positions:
        return xp.zeros((0, 3), dtype=xp.float64), xp.zeros((0,), dtype=xp.float64)
    return xp.stack(positions), xp.asarray(lambdas, dtype=xp.float64)


def file_sources(rows, beam, wavelength_m):
    """Sources from source-file rows (X, Y, Z m, weight, lambda m; NaN = missing).

    Missing positions default to 10 m along -beam, missing wavelengths to the beam's; the
    weight column is read but not used (nanoBragg counts every source once).
    """
    xp = array_namespace(beam)
    table = xp.asarray(rows, dtype=xp.float64)
    default_position = xp.broadcast_to(-SOURCE_DISTANCE_M * beam, (table.shape[0], 3))
    positions = xp.where(xp.isnan(table[:, :3]), default_position, table[:, :3])
    lambdas = xp.where(xp.isnan(table[:, 4]), xp.full_like(table[:, 4], wavelength_m), table[:, 4])
    return positions, lambdas


def incident_directions(positions):
    """(S, 3) unit vectors of propagation (source to sample) from source positions (S, 3)."""
    xp = array_namespace(positions)
    lengths = norm(positions)
    if bool(xp.any(lengths == 0.0)):
        raise ValueError("sources: a source position of (0, 0, 0) has no direction")
    return -positions / lengths[:, None]


def beam_sources(beam_params, frame):
    """(incident (S, 3), wavelengths (S,) m) for a Beam and a detector frame's lab axes."""
    xp = array_namespace(frame.beam)
    if beam_params.sources is not None:
        positions, lambdas = file_sources(beam_params.sources, frame.beam, beam_params.wavelength_A * 1e-10)
    else:
        positions, lambdas = generated_sources(beam_params, frame.beam, frame.polar, frame.vert)
    if positions.shape[0] == 0:
        raise ValueError("sources: the round divergence cut left no source; use -square_div or more steps")
    if bool(xp.any(lambdas <= 0.0)) or not bool(xp.all(xp.isfinite(lambdas))):
        raise ValueError("sources: wavelengths must be finite and > 0")
    return incident_directions(positions), lambdas
