"""Rotation matrices: orthonormality, conventions of nanoBragg's rotate/rotate_axis, adjoints vs FD."""

import math

import numpy as np
import pytest

from conftest import arr, explicit_rx, explicit_ry, explicit_rz, to_numpy
from arraybragg.gradcheck import central_difference
from arraybragg.rotation import (
    rotation_axis_angle,
    rotation_axis_angle_vjp,
    rotation_xyz,
    rotation_xyz_vjp,
)

FD_REL_TOL = 1e-8


def rotate_axis_reference(v, axis, phi):
    """nanoBragg's rotate_axis written out component by component (axis used as given)."""
    ax, ay, az = axis
    dot = (ax * v[0] + ay * v[1] + az * v[2]) * (1 - math.cos(phi))
    s, c = math.sin(phi), math.cos(phi)
    return np.array([
        ax * dot + v[0] * c + (-az * v[1] + ay * v[2]) * s,
        ay * dot + v[1] * c + (az * v[0] - ax * v[2]) * s,
        az * dot + v[2] * c + (-ay * v[0] + ax * v[1]) * s,
    ])


def test_rotation_xyz_single_axes_are_the_explicit_matrices(xp):
    t = 0.37
    np.testing.assert_allclose(to_numpy(rotation_xyz(arr(xp, [t, 0, 0]))), explicit_rx(t), atol=1e-15)
    np.testing.assert_allclose(to_numpy(rotation_xyz(arr(xp, [0, t, 0]))), explicit_ry(t), atol=1e-15)
    np.testing.assert_allclose(to_numpy(rotation_xyz(arr(xp, [0, 0, t]))), explicit_rz(t), atol=1e-15)


def test_rotation_xyz_rotates_about_x_first(xp):
    angles = [0.3, -1.1, 2.0]
    expected = explicit_rz(angles[2]) @ explicit_ry(angles[1]) @ explicit_rx(angles[0])
    r = to_numpy(rotation_xyz(arr(xp, angles)))
    np.testing.assert_allclose(r, expected, atol=1e-15)
    # quarter turns: about x first sends +y to +z, then about y sends +z to +x
    # (y first would leave +y in place and x would then send it to +z)
    quarter = to_numpy(rotation_xyz(arr(xp, [math.pi / 2, math.pi / 2, 0.0])))
    np.testing.assert_allclose(quarter @ [0, 1, 0], [1, 0, 0], atol=1e-15)


def test_rotation_xyz_is_proper_orthonormal(xp):
    rng = np.random.default_rng(11)
    for angles in rng.uniform(-math.pi, math.pi, size=(5, 3)):
        r = to_numpy(rotation_xyz(arr(xp, angles)))
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-14)
        assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-14)


def test_rotation_xyz_rejects_wrong_shape():
    with pytest.raises(ValueError, match="angles_rad"):
        rotation_xyz(np.zeros(2))


def test_rotation_axis_angle_matches_rotate_axis_formula_for_any_axis(xp):
    v = np.array([0.3, -1.2, 2.5])
    for axis in ([0.0, 0.6, 0.8], [1.3, -0.4, 0.7]):  # unit, and not unit: used as given
        r = to_numpy(rotation_axis_angle(arr(xp, axis), arr(xp, 0.83)))
        np.testing.assert_allclose(r @ v, rotate_axis_reference(v, axis, 0.83), atol=1e-14)


def test_rotation_axis_angle_is_proper_orthonormal_for_unit_axes(xp):
    rng = np.random.default_rng(5)
    axes = rng.normal(size=(6, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = rng.uniform(-3, 3, size=6)
    r = to_numpy(rotation_axis_angle(arr(xp, axes), arr(xp, angles)))
    assert r.shape == (6, 3, 3)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-14)
    # the axis is fixed and the angle between v and R v (v normal to the axis) is the angle
    v = np.cross(axes[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(r[0] @ axes[0], axes[0], atol=1e-15)
    cosine = (r[0] @ v) @ v / (v @ v)
    assert cosine == pytest.approx(math.cos(angles[0]), abs=1e-14)


def test_rotation_axis_angle_broadcasting(xp):
    axes = arr(xp, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    angles = arr(xp, [0.1, 0.2, 0.3])
    assert rotation_axis_angle(arr(xp, [0, 0, 1]), arr(xp, 0.1)).shape == (3, 3)
    assert rotation_axis_angle(axes, arr(xp, 0.1)).shape == (3, 3, 3)
    assert rotation_axis_angle(arr(xp, [0, 0, 1]), angles).shape == (3, 3, 3)
    batched = to_numpy(rotation_axis_angle(axes, angles))
    for i, explicit in enumerate((explicit_rx, explicit_ry, explicit_rz)):
        np.testing.assert_allclose(batched[i], explicit(0.1 * (i + 1)), atol=1e-15)


def test_rotation_axis_angle_rejects_bad_shapes():
    with pytest.raises(ValueError, match="axis"):
        rotation_axis_angle(np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="angle_rad"):
        rotation_axis_angle(np.zeros((2, 3)), np.zeros(3))


def test_rotation_xyz_vjp_matches_central_differences(xp):
    rng = np.random.default_rng(2)
    angles = np.array([0.4, -0.9, 1.7])
    bar = rng.normal(size=(3, 3))

    def objective(t):
        return np.sum(bar * to_numpy(rotation_xyz(arr(xp, t))))

    adjoint = to_numpy(rotation_xyz_vjp(arr(xp, angles), arr(xp, bar)))
    numeric = central_difference(objective, angles, 1e-5)
    np.testing.assert_allclose(adjoint, numeric, rtol=FD_REL_TOL, atol=FD_REL_TOL * np.abs(numeric).max())


@pytest.mark.parametrize(
    "axis_shape, angle_shape", [((3,), ()), ((4, 3), (4,)), ((3,), (4,)), ((4, 3), ())]
)
def test_rotation_axis_angle_vjp_matches_central_differences(xp, axis_shape, angle_shape):
    rng = np.random.default_rng(3)
    axis = rng.normal(size=axis_shape)
    angle = rng.uniform(-2, 2, size=angle_shape)
    out_shape = np.broadcast_shapes(axis_shape[:-1], angle_shape) + (3, 3)
    bar = rng.normal(size=out_shape)

    def objective(t):
        return np.sum(bar * to_numpy(rotation_axis_angle(arr(xp, axis), arr(xp, t.reshape(angle_shape)))))

    adjoint = to_numpy(rotation_axis_angle_vjp(arr(xp, axis), arr(xp, angle), arr(xp, bar)))
    assert adjoint.shape == angle_shape
    numeric = central_difference(objective, angle.reshape(-1), 1e-5).reshape(angle_shape)
    np.testing.assert_allclose(adjoint, numeric, rtol=FD_REL_TOL, atol=FD_REL_TOL * np.abs(numeric).max())
