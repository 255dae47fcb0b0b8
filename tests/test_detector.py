"""Detector geometry: convention axes, beam-centre mappings, pivots, rotations, reported values.

Geometry is checked against independent evaluations (rotation matrices written out here) and
against the numbers nanoBragg printed for the parity cases (tests/data/parity/*.log, as %g).
"""

import json
import math

import numpy as np
import pytest

import arraybragg
from arraybragg.detector import detector_frame
from arraybragg.params import Detector
from conftest import PARITY, explicit_rx, explicit_ry, explicit_rz, to_numpy

MM = 1e-3
X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def neg(v):
    return tuple(-c for c in v)


# beam, fast, slow, normal, polarization, spindle, two-theta axis (parity README)
AXES = {
    "mosflm": (X, Z, neg(Y), X, Z, Z, neg(Z)),
    "denzo": (X, Z, neg(Y), X, Z, Z, neg(Z)),
    "adxv": (Z, X, neg(Y), Z, X, X, neg(X)),
    "xds": (Z, X, Y, Z, X, X, X),
    "dials": (Z, X, Y, Z, Y, Y, Y),
    "custom": (X, Z, neg(Y), X, Z, Z, Y),
}


def axis_angle(axis, a):
    """Right-handed rotation by a about the unit axis (Rodrigues)."""
    k = np.asarray(axis, dtype=float)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(a) * kx + (1 - math.cos(a)) * kx @ kx


def frame_of(xp, beam_vector=None, polar_vector=None, spindle_axis=None, **detector):
    """detector_frame of Detector(**detector) with every vector as a float64 NumPy array."""
    f = detector_frame(Detector(**detector), beam_vector, polar_vector, spindle_axis, xp=xp)
    vectors = {k: to_numpy(getattr(f, k)) for k in ("beam", "fdet", "sdet", "odet", "polar", "spindle",
                                                    "twotheta_axis", "pix0_m")}
    return f, vectors


SIZE_96x80 = dict(fpixels=96, spixels=80, pixel_mm=0.1, distance_mm=100.0)


# ---------------------------------------------------------------- axes

@pytest.mark.parametrize("convention", sorted(AXES))
def test_convention_axes(convention, xp):
    f, v = frame_of(xp, convention=convention, **SIZE_96x80)
    beam, fast, slow, normal, polar, spindle, twotheta = AXES[convention]
    for name, expected in (("beam", beam), ("fdet", fast), ("sdet", slow), ("odet", normal), ("polar", polar),
                           ("spindle", spindle), ("twotheta_axis", twotheta)):
        np.testing.assert_array_equal(v[name], expected, err_msg=f"{convention} {name}")


# ---------------------------------------------------------------- beam centres

def hits_beam_at(v, fbeam_m, sbeam_m, distance_m):
    """pix0 + Fbeam f + Sbeam s is the point distance*beam (the direct-beam spot)."""
    spot = v["pix0_m"] + fbeam_m * v["fdet"] + sbeam_m * v["sdet"]
    np.testing.assert_allclose(spot, distance_m * v["beam"], rtol=0, atol=1e-15)


# default centres on a 9.6 x 8.0 mm detector of 0.1 mm pixels, (Fbeam, Sbeam) in mm
DEFAULT_BEAM_MM = {
    "mosflm": (4.8 + 0.1, 4.0 + 0.1),   # Ybeam = (Df+px)/2 + px/2, Xbeam = (Ds+px)/2 + px/2
    "denzo": (4.85, 4.05),              # (Df+px)/2, (Ds+px)/2
    "adxv": (4.85, 8.0 - 3.95),         # Xbeam = (Df+px)/2, Ds - Ybeam with Ybeam = (Ds-px)/2
    "custom": (4.8, 4.0),               # detector centre
}
# Xbeam = 4.0 mm, Ybeam = 5.5 mm
GIVEN_BEAM_MM = {
    "mosflm": (5.55, 4.05),             # Fbeam = Ybeam + px/2, Sbeam = Xbeam + px/2
    "denzo": (5.5, 4.0),                # Fbeam = Ybeam, Sbeam = Xbeam
    "adxv": (4.0, 8.0 - 5.5),           # Fbeam = Xbeam, Sbeam = Ds - Ybeam
    "custom": (4.0, 5.5),               # Fbeam = Xbeam, Sbeam = Ybeam
}


@pytest.mark.parametrize("convention", sorted(DEFAULT_BEAM_MM))
def test_default_beam_centre(convention, xp):
    f, v = frame_of(xp, convention=convention, **SIZE_96x80)
    fbeam, sbeam = (c * MM for c in DEFAULT_BEAM_MM[convention])
    assert f.pivot == "beam"
    assert f.fbeam_m == pytest.approx(fbeam, rel=1e-12)
    assert f.sbeam_m == pytest.approx(sbeam, rel=1e-12)
    hits_beam_at(v, fbeam, sbeam, 0.1)


@pytest.mark.parametrize("convention", sorted(GIVEN_BEAM_MM))
def test_given_beam_centre(convention, xp):
    f, v = frame_of(xp, convention=convention, xbeam_mm=4.0, ybeam_mm=5.5, **SIZE_96x80)
    fbeam, sbeam = (c * MM for c in GIVEN_BEAM_MM[convention])
    assert (f.xbeam_m, f.ybeam_m) == pytest.approx((4.0 * MM, 5.5 * MM), rel=1e-12)
    assert (f.fbeam_m, f.sbeam_m) == pytest.approx((fbeam, sbeam), rel=1e-12)
    hits_beam_at(v, fbeam, sbeam, 0.1)


def test_mosflm_default_beam_is_one_pixel_past_the_centre(xp):
    """6.4 mm detector of 0.1 mm pixels: the beam hits at 3.3 mm on both axes."""
    f, v = frame_of(xp, fpixels=64, spixels=64, pixel_mm=0.1, distance_mm=100.0)
    assert (f.fbeam_m, f.sbeam_m) == pytest.approx((3.3 * MM, 3.3 * MM), rel=1e-12)
    hits_beam_at(v, 3.3 * MM, 3.3 * MM, 0.1)


@pytest.mark.parametrize("convention", ["xds", "dials"])
def test_xds_dials_near_point_from_orgx_orgy(convention, xp):
    """Fclose = (ORGX - 1/2) px, Sclose = (ORGY - 1/2) px; the near point is close_distance along the normal."""
    f, v = frame_of(xp, convention=convention, orgx_px=30.5, orgy_px=45.25, **SIZE_96x80)
    fclose, sclose = 3.0 * MM, 4.475 * MM
    assert f.pivot == "sample"
    assert (f.fclose_m, f.sclose_m) == pytest.approx((fclose, sclose), rel=1e-12)
    near = v["pix0_m"] + fclose * v["fdet"] + sclose * v["sdet"]
    np.testing.assert_allclose(near, 0.1 * v["odet"], atol=1e-15)
    assert (f.orgx_px, f.orgy_px) == pytest.approx((30.5, 45.25), rel=1e-12)


@pytest.mark.parametrize("convention", ["xds", "dials"])
def test_xds_dials_default_near_point_is_the_centre(convention, xp):
    f, v = frame_of(xp, convention=convention, **SIZE_96x80)
    assert (f.fclose_m, f.sclose_m) == pytest.approx((4.8 * MM, 4.0 * MM), rel=1e-12)


@pytest.mark.parametrize("convention", ["xds", "dials"])
def test_xds_dials_beam_and_close_flags_change_printed_values_only(convention, xp):
    _, plain = frame_of(xp, convention=convention, orgx_px=30.5, orgy_px=45.25, **SIZE_96x80)
    f, moved = frame_of(xp, convention=convention, orgx_px=30.5, orgy_px=45.25, xbeam_mm=1.0, ybeam_mm=2.0,
                        xclose_mm=3.0, yclose_mm=7.0, **SIZE_96x80)
    np.testing.assert_array_equal(moved["pix0_m"], plain["pix0_m"])
    assert (f.xbeam_m, f.ybeam_m, f.xclose_m, f.yclose_m) == pytest.approx((1e-3, 2e-3, 3e-3, 7e-3))


def test_mosflm_ignores_orgx_and_close_flags(xp):
    _, plain = frame_of(xp, **SIZE_96x80)
    _, other = frame_of(xp, orgx_px=10.0, orgy_px=70.0, xclose_mm=1.0, yclose_mm=2.0, **SIZE_96x80)
    np.testing.assert_array_equal(other["pix0_m"], plain["pix0_m"])


def test_custom_sample_pivot_near_point_from_xclose(xp):
    """CUSTOM: Fclose = Xbeam, which defaults to Xclose."""
    f, v = frame_of(xp, convention="custom", pivot="sample", xclose_mm=4.2, yclose_mm=3.1,
                    close_distance_mm=95.0, **SIZE_96x80)
    assert (f.fclose_m, f.sclose_m, f.close_distance_m) == pytest.approx((4.2e-3, 3.1e-3, 0.095), rel=1e-12)
    np.testing.assert_allclose(v["pix0_m"] + 4.2e-3 * v["fdet"] + 3.1e-3 * v["sdet"], 0.095 * v["odet"], atol=1e-15)


def test_custom_default_beam_follows_orgx(xp):
    f, v = frame_of(xp, convention="custom", orgx_px=20.5, orgy_px=10.5, **SIZE_96x80)
    assert f.pivot == "beam"
    hits_beam_at(v, 2.0e-3, 1.0e-3, 0.1)


# ---------------------------------------------------------------- pivots

@pytest.mark.parametrize("convention,asked,used", [
    ("mosflm", "sample", "beam"), ("denzo", "sample", "beam"), ("adxv", "sample", "beam"),
    ("xds", "beam", "sample"), ("dials", "beam", "sample"),
    ("custom", None, "beam"), ("custom", "beam", "beam"), ("custom", "sample", "sample"),
])
def test_pivot_is_forced_by_the_convention(convention, asked, used, xp):
    f, _ = frame_of(xp, convention=convention, pivot=asked, **SIZE_96x80)
    assert f.pivot == used


def test_mosflm_pivot_sample_gives_the_beam_pivot_geometry(xp):
    _, beam = frame_of(xp, detector_rot_deg=(3.0, -5.0, 7.0), twotheta_deg=10.0, **SIZE_96x80)
    _, sample = frame_of(xp, pivot="sample", detector_rot_deg=(3.0, -5.0, 7.0), twotheta_deg=10.0, **SIZE_96x80)
    np.testing.assert_array_equal(sample["pix0_m"], beam["pix0_m"])


def grid_points(v, fpixels=96, spixels=80, px=1e-4):
    """Lab positions of a few pixel corners of the detector."""
    return np.array([v["pix0_m"] + a * px * v["fdet"] + b * px * v["sdet"]
                     for a in (0, 17, fpixels) for b in (0, 33, spixels)])


@pytest.mark.parametrize("convention", ["xds", "dials", "custom"])
def test_sample_pivot_keeps_near_point_and_distances_under_rotations(convention, xp):
    common = dict(convention=convention, pivot="sample", orgx_px=30.5, orgy_px=45.25, close_distance_mm=95.0,
                  **SIZE_96x80)
    if convention == "custom":
        common.update(orgx_px=None, orgy_px=None, xclose_mm=3.0, yclose_mm=4.475)
    f0, flat = frame_of(xp, **common)
    f, turned = frame_of(xp, detector_rot_deg=(3.0, -4.0, 5.0), twotheta_deg=12.0, **common)
    assert (f.fclose_m, f.sclose_m, f.close_distance_m) == pytest.approx((3.0e-3, 4.475e-3, 0.095), rel=1e-12)
    np.testing.assert_allclose(np.linalg.norm(grid_points(turned), axis=1), np.linalg.norm(grid_points(flat), axis=1),
                               rtol=1e-14)
    rotation = axis_angle(turned["twotheta_axis"], math.radians(12.0)) @ explicit_rz(math.radians(5.0)) @ \
        explicit_ry(math.radians(-4.0)) @ explicit_rx(math.radians(3.0))
    np.testing.assert_allclose(turned["pix0_m"], rotation @ flat["pix0_m"], atol=1e-15)
    np.testing.assert_allclose(turned["fdet"], rotation @ flat["fdet"], atol=1e-15)


def test_dials_twotheta_rotates_the_detector_about_the_sample(xp):
    _, flat = frame_of(xp, convention="dials", fpixels=80, spixels=80, pixel_mm=0.1, distance_mm=100.0)
    _, swung = frame_of(xp, convention="dials", fpixels=80, spixels=80, pixel_mm=0.1, distance_mm=100.0,
                        twotheta_deg=12.0)
    rotation = explicit_ry(math.radians(12.0))
    for name in ("pix0_m", "fdet", "sdet", "odet"):
        np.testing.assert_allclose(swung[name], rotation @ flat[name], atol=1e-15)
    np.testing.assert_array_equal(swung["beam"], flat["beam"])


@pytest.mark.parametrize("convention", ["mosflm", "custom"])
def test_beam_pivot_keeps_the_beam_spot_under_rotations_and_twotheta(convention, xp):
    f, v = frame_of(xp, convention=convention, xbeam_mm=3.1, ybeam_mm=5.2, detector_rot_deg=(4.0, -6.0, 12.0),
                    twotheta_deg=10.0, **SIZE_96x80)
    fbeam, sbeam = ((5.25e-3, 3.15e-3) if convention == "mosflm" else (3.1e-3, 5.2e-3))
    hits_beam_at(v, fbeam, sbeam, 0.1)


def test_detector_rotations_apply_x_then_y_then_z(xp):
    angles = (4.0, -6.0, 12.0)
    _, v = frame_of(xp, detector_rot_deg=angles, **SIZE_96x80)
    ax, ay, az = (math.radians(a) for a in angles)
    xyz = explicit_rz(az) @ explicit_ry(ay) @ explicit_rx(ax)
    for name, start in (("fdet", Z), ("sdet", neg(Y)), ("odet", X)):
        np.testing.assert_allclose(v[name], xyz @ np.array(start), atol=1e-15)
    assert np.abs(v["fdet"] - explicit_rx(ax) @ explicit_ry(ay) @ explicit_rz(az) @ np.array(Z)).max() > 1e-3


def test_twotheta_follows_the_xyz_rotations(xp):
    _, v = frame_of(xp, convention="custom", twotheta_axis=(0.0, 0.6, -0.8), twotheta_deg=10.0,
                    detector_rot_deg=(5.0, 0.0, 0.0), **SIZE_96x80)
    rotation = axis_angle((0.0, 0.6, -0.8), math.radians(10.0)) @ explicit_rx(math.radians(5.0))
    np.testing.assert_allclose(v["sdet"], rotation @ np.array(neg(Y)), atol=1e-15)


def test_normal_is_generated_when_not_unit_length(xp):
    f, v = frame_of(xp, convention="custom", fdet_vector=(0.0, -1.0, 0.0), sdet_vector=(1.0, 0.0, 0.0),
                    odet_vector=(0.0, 0.0, 2.0), beam_vector=Z, **SIZE_96x80)
    assert f.odet_generated
    np.testing.assert_allclose(v["odet"], Z, atol=0)


def test_unit_normal_is_used_as_given(xp):
    f, v = frame_of(xp, convention="custom", fdet_vector=(0.0, -1.0, 0.0), sdet_vector=(1.0, 0.0, 0.0),
                    odet_vector=(0.0, 0.0, -1.0), beam_vector=neg(Z), **SIZE_96x80)
    assert not f.odet_generated
    np.testing.assert_array_equal(v["odet"], neg(Z))


def test_custom_vectors_are_normalised_except_the_twotheta_axis(xp):
    f, v = frame_of(xp, convention="custom", beam_vector=(2.0, 0.0, 0.0), fdet_vector=(0.0, 0.0, 3.0),
                    sdet_vector=(0.0, -0.5, 0.0), polar_vector=(0.0, 0.0, 4.0), spindle_axis=(0.0, 0.0, 5.0),
                    twotheta_axis=(0.0, 2.0, 0.0), **SIZE_96x80)
    for name, expected in (("beam", X), ("fdet", Z), ("sdet", neg(Y)), ("polar", Z), ("spindle", Z)):
        np.testing.assert_allclose(v[name], expected, atol=0)
    np.testing.assert_array_equal(v["twotheta_axis"], (0.0, 2.0, 0.0))


# ---------------------------------------------------------------- distances and reported values

def test_tilted_detector_distance_and_close_distance(xp):
    """r = beam . (rotated normal); close_distance = r * distance, or distance = close_distance / r."""
    r = math.cos(math.radians(20.0))
    f, _ = frame_of(xp, detector_rot_deg=(0.0, 20.0, 0.0), **SIZE_96x80)
    assert (f.distance_m, f.close_distance_m) == pytest.approx((0.1, 0.1 * r), rel=1e-12)
    f, v = frame_of(xp, detector_rot_deg=(0.0, 20.0, 0.0), close_distance_mm=90.0, **SIZE_96x80)
    assert (f.distance_m, f.close_distance_m) == pytest.approx((0.09 / r, 0.09), rel=1e-12)
    hits_beam_at(v, 4.9e-3, 4.1e-3, 0.09 / r)


def test_reported_values_xds_by_hand(xp):
    """96x80, 0.1 mm, ORGX 30.5, ORGY 45.25, 100 mm: pix0 = (-3.0, -4.475, 100) mm."""
    f, v = frame_of(xp, convention="xds", orgx_px=30.5, orgy_px=45.25, **SIZE_96x80)
    np.testing.assert_allclose(v["pix0_m"], (-3.0e-3, -4.475e-3, 0.1), atol=1e-16)
    assert (f.distance_m, f.close_distance_m) == pytest.approx((0.1, 0.1), rel=1e-14)
    assert f.dials_origin_mm == pytest.approx((100.0, -4.475, 3.0), rel=1e-12)
    assert (f.fbeam_m, f.sbeam_m) == pytest.approx((3.0e-3, 4.475e-3), rel=1e-12)


def test_reported_values_mosflm_by_hand(xp):
    """64x64 default MOSFLM: beam at 3.3 mm, pix0 = (100, 3.3, -3.3) mm, ORGX = ORGY = 33.5."""
    f, v = frame_of(xp, fpixels=64, spixels=64, pixel_mm=0.1, distance_mm=100.0)
    np.testing.assert_allclose(v["pix0_m"], (0.1, 3.3e-3, -3.3e-3), atol=1e-16)
    assert (f.fclose_m, f.sclose_m) == pytest.approx((3.3e-3, 3.3e-3), rel=1e-12)
    assert (f.orgx_px, f.orgy_px) == pytest.approx((33.5, 33.5), rel=1e-12)
    assert f.dials_origin_mm == pytest.approx((-3.3, 3.3, -100.0), rel=1e-12)
    assert (f.xclose_m, f.yclose_m) == pytest.approx((3.2e-3, 3.2e-3), rel=1e-12)


# Values nanoBragg printed (tests/data/parity/<case>.log, %g): distance, Fbeam, Sbeam, Fclose,
# Sclose (m), dials origin (mm), fast, slow, normal axes.
LOGGED = {
    "xds_orgx_orgy": dict(distance=0.1, fbeam=0.003, sbeam=0.004475, fclose=0.003, sclose=0.004475,
                          origin=(100, -4.475, 3), fdet=(1, 0, 0), sdet=(0, 1, 0), odet=(0, 0, 1)),
    "dials_twotheta": dict(distance=0.1, fbeam=-0.0167912, sbeam=0.004, fclose=0.004, sclose=0.004,
                           origin=(98.6464, -4, -16.8786), fdet=(0.978148, 0, -0.207912), sdet=(0, 1, 0),
                           odet=(0.207912, 0, 0.978148)),
    "mosflm_rotations_xbeam": dict(distance=0.1, fbeam=0.00525, sbeam=0.00315, fclose=0.0139992,
                                   sclose=-0.0183037, origin=(-4.98999, 3.54092, -99.7835),
                                   fdet=(-0.087492, -0.0899119, 0.992099), sdet=(0.214537, -0.974249, -0.0693743),
                                   odet=(0.972789, 0.206773, 0.104528)),
    "custom_vectors_sample_pivot": dict(distance=0.0951304, fbeam=-0.000778739, sbeam=0.0031, fclose=0.0042,
                                        sclose=0.0031, origin=(95.0896, -0.777672, 3.1), fdet=(0, -0.99863, -0.052336),
                                        sdet=(1, 0, 0), odet=(0, -0.052336, 0.99863)),
    "custom_twotheta_pivot_beam": dict(distance=0.0984808, fbeam=0.00334171, sbeam=0.00301105, fclose=-0.00691889,
                                       sclose=0.0166919, origin=(-3.50128, 2.7983, -100.024),
                                       fdet=(0.104189, -0.00729228, 0.994531), sdet=(-0.138919, -0.990277, 0.00729228),
                                       odet=(0.984808, -0.138919, -0.104189)),
    "adxv_xbeam_ybeam": dict(distance=0.1, fbeam=0.004, sbeam=0.0025, fclose=0.004, sclose=0.0025,
                             origin=(100, 2.5, 4), fdet=(1, 0, 0), sdet=(0, -1, 0), odet=(0, 0, 1)),
    "denzo_xbeam_ybeam": dict(distance=0.1, fbeam=0.0055, sbeam=0.004, fclose=0.0055, sclose=0.004,
                              origin=(-5.5, 4, -100), fdet=(0, 0, 1), sdet=(0, -1, 0), odet=(1, 0, 0)),
    "detector_thickness": dict(distance=0.1, fbeam=0.0033, sbeam=0.0033, fclose=-0.0383198, sclose=0.0106387,
                               origin=(-2.42603, 3.8229, -98.8687), fdet=(0.416198, -0.173648, 0.892539),
                               sdet=(-0.0733869, -0.984808, -0.157379), odet=(0.906308, 0, -0.422618)),
}


def printed(value, expected, sig=6):
    """``value`` printed with %g equals ``expected`` (compared as 6-significant-digit numbers)."""
    return float(f"{value:.{sig}g}") == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(LOGGED))
def test_reported_values_match_nanobragg_log(name, xp):
    with open(PARITY / "cases.json") as handle:
        case = {c["name"]: c for c in json.load(handle)}[name]
    sim = arraybragg.from_nanobragg_args(case["args"])
    f = detector_frame(sim.detector, sim.beam.beam_vector, sim.beam.polar_vector, sim.sampling.spindle_axis, xp=xp)
    log = LOGGED[name]
    for key, value in (("distance", f.distance_m), ("fbeam", f.fbeam_m), ("sbeam", f.sbeam_m),
                       ("fclose", f.fclose_m), ("sclose", f.sclose_m)):
        assert printed(value, log[key]), f"{name} {key}: {value:g} vs {log[key]}"
    for got, want in zip(f.dials_origin_mm, log["origin"]):
        assert printed(got, want), f"{name} dials origin {f.dials_origin_mm} vs {log['origin']}"
    for key in ("fdet", "sdet", "odet"):
        for got, want in zip(to_numpy(getattr(f, key)), log[key]):
            assert printed(got, want) or abs(got - want) < 1e-12, f"{name} {key}"
