"""Detector geometry: lab-frame axes of every convention, beam centres, pivots and the origin.

Lengths are metres unless the name says otherwise; vectors are (3,) float64 arrays in the lab
frame.  The rules are nanoBragg's (see docs/nanobragg.md): each convention fixes its axes, its
beam-centre mapping and its pivot; only CUSTOM honours the pivot the flags select.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import array_api_compat.numpy as host_xp

from .rotation import rotation_axis_angle, rotation_xyz
from .vectors import cross, norm, unit

MM = 1e-3

# beam, fdet, sdet, odet, twotheta axis, polarization, spindle
_AXES = {
    "mosflm": ((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1), (0, 0, 1)),
    "denzo": ((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1), (0, 0, 1)),
    "adxv": ((0, 0, 1), (1, 0, 0), (0, -1, 0), (0, 0, 1), (-1, 0, 0), (1, 0, 0), (1, 0, 0)),
    "xds": ((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 0), (1, 0, 0), (1, 0, 0)),
    "dials": ((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 0), (0, 1, 0), (0, 1, 0)),
    "custom": ((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 1)),
}
_AXIS_NAMES = ("beam", "fdet", "sdet", "odet", "twotheta_axis", "polar", "spindle")
_CONVENTION_PIVOT = {"mosflm": "beam", "denzo": "beam", "adxv": "beam", "xds": "sample", "dials": "sample"}


@dataclass(frozen=True, eq=False)
class DetectorFrame:
    """Resolved detector and lab frame (metres, unit vectors), plus the values nanoBragg reports.

    Vectors are (3,) float64 arrays of the namespace the frame was built in.
    """

    beam: object
    fdet: object
    sdet: object
    odet: object
    polar: object
    vert: object
    spindle: object
    twotheta_axis: object
    pix0_m: object
    pivot: str
    distance_m: float
    close_distance_m: float
    fbeam_m: float
    sbeam_m: float
    fclose_m: float
    sclose_m: float
    xbeam_m: float
    ybeam_m: float
    xclose_m: float
    yclose_m: float
    orgx_px: float
    orgy_px: float
    dials_origin_mm: tuple
    detsize_f_m: float
    detsize_s_m: float
    odet_generated: bool


def convention_axes(convention, xp=host_xp):
    """Default lab-frame axes of a convention as a dict of (3,) arrays (CUSTOM: its start values)."""
    return {name: xp.asarray(vec, dtype=xp.float64) for name, vec in zip(_AXIS_NAMES, _AXES[convention])}


def lab_axes(detector, beam_vector=None, polar_vector=None, spindle_axis=None, xp=host_xp):
    """All lab-frame axes for ``detector`` with user vectors applied (CUSTOM only) and normalised.

    Returns (axes dict, odet_generated).  The normal is kept only if its length is exactly 1,
    otherwise it becomes unit(fast x slow); the two-theta axis is used as given.
    """
    axes = convention_axes(detector.convention, xp)
    if detector.convention == "custom":
        given = {"beam": beam_vector, "fdet": detector.fdet_vector, "sdet": detector.sdet_vector,
                 "odet": detector.odet_vector, "twotheta_axis": detector.twotheta_axis,
                 "polar": polar_vector, "spindle": spindle_axis}
        for name, vec in given.items():
            if vec is not None:
                axes[name] = xp.asarray(vec, dtype=xp.float64)
    for name in ("beam", "fdet", "sdet", "polar", "spindle"):
        axes[name] = unit(axes[name])
    generated = float(norm(axes["odet"])) != 1.0
    axes["odet"] = unit(cross(axes["fdet"], axes["sdet"]) if generated else axes["odet"])
    axes["vert"] = unit(cross(axes["beam"], axes["polar"]))
    return axes, generated


def beam_centres_m(detector):
    """nanoBragg's beam-centre bookkeeping before rotation, all in metres.

    Returns dict with xbeam, ybeam, fbeam, sbeam, xclose, yclose, fclose, sclose.
    """
    px = detector.pixel_mm * MM
    dsf, dss = (v * MM for v in detector.detsize_mm)
    given = {k: (None if getattr(detector, k + "_mm") is None else getattr(detector, k + "_mm") * MM)
             for k in ("xbeam", "ybeam", "xclose", "yclose")}
    fclose = (detector.orgx_px - 0.5) * px if detector.orgx_px is not None else dsf / 2.0
    sclose = (detector.orgy_px - 0.5) * px if detector.orgy_px is not None else dss / 2.0
    xclose = given["xclose"] if given["xclose"] is not None else fclose
    yclose = given["yclose"] if given["yclose"] is not None else sclose
    conv = detector.convention
    if conv in ("mosflm", "denzo"):
        xbeam = given["xbeam"] if given["xbeam"] is not None else (dss + px) / 2.0
        ybeam = given["ybeam"] if given["ybeam"] is not None else (dsf + px) / 2.0
        shift = 0.5 * px if conv == "mosflm" else 0.0
        fbeam, sbeam = ybeam + shift, xbeam + shift
    elif conv == "adxv":
        xbeam = given["xbeam"] if given["xbeam"] is not None else (dsf + px) / 2.0
        ybeam = given["ybeam"] if given["ybeam"] is not None else (dss - px) / 2.0
        fbeam, sbeam = xbeam, dss - ybeam
    else:
        xbeam = given["xbeam"] if given["xbeam"] is not None else xclose
        ybeam = given["ybeam"] if given["ybeam"] is not None else yclose
        fbeam, sbeam = xbeam, ybeam
        if conv == "custom":
            fclose, sclose = xbeam, ybeam
    return dict(xbeam=xbeam, ybeam=ybeam, fbeam=fbeam, sbeam=sbeam,
                xclose=xclose, yclose=yclose, fclose=fclose, sclose=sclose)


def detector_pivot(detector):
    """The pivot actually used: forced by every convention except CUSTOM (default 'beam')."""
    return _CONVENTION_PIVOT.get(detector.convention, detector.pivot or "beam")


def detector_frame(detector, beam_vector=None, polar_vector=None, spindle_axis=None, xp=host_xp):
    """Place the detector: rotated axes, origin (corner of pixel 0,0) and reported quantities."""
    axes, generated = lab_axes(detector, beam_vector, polar_vector, spindle_axis, xp)
    centres = beam_centres_m(detector)
    beam = axes["beam"]
    rot = rotation_xyz(xp.asarray([math.radians(v) for v in detector.detector_rot_deg], dtype=xp.float64))
    twotheta = rotation_axis_angle(axes["twotheta_axis"], xp.asarray(math.radians(detector.twotheta_deg),
                                                                     dtype=xp.float64))
    ratio = float(beam @ (rot @ axes["odet"]))
    if ratio == 0.0:
        ratio = sys.float_info.min
    distance = detector.distance_mm * MM
    close_distance = (detector.close_distance_mm * MM if detector.close_distance_mm is not None
                      else abs(ratio * distance))
    distance = close_distance / ratio
    pivot = detector_pivot(detector)
    fdet, sdet, odet = (twotheta @ (rot @ axes[k]) for k in ("fdet", "sdet", "odet"))
    if pivot == "sample":
        pix0 = -centres["fclose"] * axes["fdet"] - centres["sclose"] * axes["sdet"] + close_distance * axes["odet"]
        pix0 = twotheta @ (rot @ pix0)
    else:
        pix0 = -centres["fbeam"] * fdet - centres["sbeam"] * sdet + distance * beam
    fclose, sclose = -float(pix0 @ fdet), -float(pix0 @ sdet)
    close_distance = float(pix0 @ odet)
    offset = close_distance / ratio * beam - pix0
    px = detector.pixel_mm * MM
    dsf, dss = (v * MM for v in detector.detsize_mm)
    return DetectorFrame(
        beam=beam, fdet=fdet, sdet=sdet, odet=odet, polar=axes["polar"], vert=axes["vert"],
        spindle=axes["spindle"], twotheta_axis=axes["twotheta_axis"], pix0_m=pix0, pivot=pivot,
        distance_m=close_distance / ratio, close_distance_m=close_distance,
        fbeam_m=float(fdet @ offset), sbeam_m=float(sdet @ offset), fclose_m=fclose, sclose_m=sclose,
        xbeam_m=centres["xbeam"], ybeam_m=centres["ybeam"], xclose_m=centres["xclose"], yclose_m=centres["yclose"],
        orgx_px=fclose / px + 0.5, orgy_px=sclose / px + 0.5,
        dials_origin_mm=(1000.0 * float(pix0[2]), 1000.0 * float(pix0[1]), -1000.0 * float(pix0[0])),
        detsize_f_m=dsf, detsize_s_m=dss, odet_generated=generated,
    )
