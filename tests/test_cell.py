"""Cell -> lattice matrices: crystallographic identities, nanoBragg's vectors, adjoints vs FD."""

import json
import math
from pathlib import Path

import array_api_strict
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from arraybragg.cell import (
    cell_from_direct_matrix,
    check_cell,
    direct_matrix_A,
    direct_matrix_A_vjp,
    nanobragg_cell_matrices,
    nanobragg_cell_matrices_vjp,
    orientation_from_reciprocal_matrix,
    reciprocal_matrix_per_A,
    reciprocal_metric_per_A2,
    reciprocal_metric_per_A2_vjp,
)
from arraybragg.gradcheck import central_difference, default_steps, relative_errors
from arraybragg.rotation import rotation_xyz, rotation_xyz_vjp
from conftest import arr, to_numpy

XPS = [np, array_api_strict]
PARITY = Path(__file__).resolve().parent / "data" / "parity"
FD_REL_TOL = 1e-8  # |adjoint - FD| / max(|FD|, 1e-3 max|FD|), float64, default_steps
TRICLINIC_CELLS = [
    (70.0, 80.0, 90.0, 75.0, 85.0, 95.0),
    (32.0, 35.0, 38.0, 80.0, 96.0, 104.0),
    (12.5, 47.0, 150.0, 61.0, 118.0, 99.0),
]

# nanoBragg (bl831/nanoBragg 455534a) run as `-cell <cell> -default_F 1 -detpixels 4 -nonoise
# -nopgm`, with its "real-space" / "reciprocal-space cell vectors" printf widened to %.17g.
# Direct matrices hold a, b, c as rows (Å), reciprocal matrices a*, b*, c* as columns (Å^-1).
NANOBRAGG_CELL_VECTORS = {
    (70.0, 80.0, 90.0, 75.0, 85.0, 95.0): (
        [[69.280311092978465, -7.9510147124175772, 6.0843947852718987],
         [-0.0, 77.288163218625144, 20.652840634914089],
         [0.0, 0.0, 90.0]],
        [[0.01443704712066818, 0.0014852102738629486, -0.0013168278367905195],
         [0.0, 0.012941219898765151, -0.0029696994687841748],
         [-0.0, -0.0, 0.011113367953154228]],
    ),
    (32.0, 35.0, 38.0, 80.0, 96.0, 104.0): (
        [[30.981797986239492, -7.2708608790569587, -3.3560059024449687],
         [-0.0, 34.46478025249165, 6.0974521029247439],
         [0.0, 0.0, 38.0]],
        [[0.032272562605357068, 0.006808379777707799, 0.0017577142367765364],
         [0.0, 0.029011124046414136, -0.0046551036664478551],
         [-0.0, -0.0, 0.026312158293090516]],
    ),
    (70.0, 80.0, 90.0, 90.0, 95.0, 90.0): (
        [[69.733628866422194, 4.6598363018570404e-15, -6.1009019923360608],
         [-0.0, 80.0, 4.8985871965894122e-15],
         [0.0, -0.0, 90.0]],
        [[0.014340283393476391, -8.3529216419798694e-19, 0.00097209626139915383],
         [0.0, 0.012500000000000002, -6.8035933285964069e-19],
         [0.0, 0.0, 0.011111111111111112]],
    ),
}
# the "Unit Cell" line nanoBragg prints for -cell 70 80 90 75 85 95: the angles it really builds
NANOBRAGG_BUILT_ANGLES_DEG = (75.0391, 85.0136, 95.0081)

# tests/data/inputs/A.mat (MOSFLM A = reciprocal columns times lambda = 1.3 Å, for
# cell 62 71 83 84 97 103) and nanoBragg's direct vectors for `-mat A.mat -lambda 1.3` (%.17g).
A_MAT = [[0.01629221, -0.00893932, 0.00084264],
         [0.00931974, 0.01268369, -0.01092511],
         [0.01075202, 0.01070476, 0.01142551]]
A_MAT_LAMBDA_A = 1.3
A_MAT_CELL = (62.0, 71.0, 83.0, 84.0, 97.0, 103.0)
A_MAT_NANOBRAGG_DIRECT = [
    [54.577558434181533, 23.166808952206278, 18.127042233813594],
    [-46.674729484690459, 36.907716088174695, 38.733575320931656],
    [-7.6300508806130658, -56.380698635102497, 60.431792682225584],
]


def omega_squared(cell):
    ca, cb, cg = (math.cos(math.radians(t)) for t in cell[3:])
    return 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg


def volume_A3(cell):
    a, b, c = cell[:3]
    return a * b * c * math.sqrt(omega_squared(cell))


@st.composite
def valid_cells(draw):
    lengths = [draw(st.floats(3.0, 300.0)) for _ in range(3)]
    angles = [draw(st.floats(30.0, 150.0)) for _ in range(3)]
    cell = tuple(lengths + angles)
    # keep away from flat cells (V / abc -> 0), where the angles are ill-conditioned
    assume(omega_squared(cell) > 0.04)
    return cell


@pytest.mark.parametrize("xp", XPS)
@settings(max_examples=40, deadline=None)
@given(cell=valid_cells())
def test_direct_matrix_identities(xp, cell):
    d = to_numpy(direct_matrix_A(arr(xp, cell)))
    a, b, c = cell[:3]
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), cell[:3], rtol=1e-13)
    assert d[1, 0] == 0.0 and d[2, 0] == 0.0 and d[2, 1] == 0.0  # standard setting
    assert np.linalg.det(d) == pytest.approx(volume_A3(cell), rel=1e-12)
    recovered = cell_from_direct_matrix(arr(xp, d))
    np.testing.assert_allclose(recovered[:3], cell[:3], rtol=1e-13)
    np.testing.assert_allclose(recovered[3:], cell[3:], atol=1e-10)

    b_star = to_numpy(reciprocal_matrix_per_A(arr(xp, d)))
    np.testing.assert_allclose(d @ b_star, np.eye(3), atol=1e-13)  # a.a* = 1, a.b* = 0, ...
    assert b_star[1, 0] == 0.0 and b_star[2, 0] == 0.0 and b_star[2, 1] == 0.0  # a* along x, b* in xy
    assert b_star[0, 0] > 0 and b_star[1, 1] > 0 and b_star[2, 2] > 0
    v = volume_A3(cell)
    sines = [math.sin(math.radians(t)) for t in cell[3:]]
    expected_lengths = [b * c * sines[0] / v, c * a * sines[1] / v, a * b * sines[2] / v]
    np.testing.assert_allclose(np.linalg.norm(b_star, axis=0), expected_lengths, rtol=1e-12)
    cosines = [math.cos(math.radians(t)) for t in cell[3:]]
    cos_alpha_star = (cosines[1] * cosines[2] - cosines[0]) / (sines[1] * sines[2])
    measured = b_star[:, 1] @ b_star[:, 2] / np.prod(np.linalg.norm(b_star[:, 1:], axis=0))
    assert measured == pytest.approx(cos_alpha_star, abs=1e-12)


@pytest.mark.parametrize("xp", XPS)
def test_direct_matrix_is_nanobragg_where_nanobragg_builds_the_requested_cell(xp):
    cell = (70.0, 80.0, 90.0, 90.0, 95.0, 90.0)
    direct, _ = NANOBRAGG_CELL_VECTORS[cell]
    np.testing.assert_allclose(to_numpy(direct_matrix_A(arr(xp, cell))), direct, rtol=0, atol=1e-10)


@pytest.mark.parametrize("xp", XPS)
@pytest.mark.parametrize("cell", sorted(NANOBRAGG_CELL_VECTORS))
def test_nanobragg_cell_matrices_reproduce_nanobragg(xp, cell):
    direct, reciprocal = NANOBRAGG_CELL_VECTORS[cell]
    d, b = nanobragg_cell_matrices(arr(xp, cell))
    np.testing.assert_allclose(to_numpy(d), direct, rtol=0, atol=1e-10)
    np.testing.assert_allclose(to_numpy(b), reciprocal, rtol=0, atol=1e-15)


def test_nanobragg_cell_differs_from_the_requested_triclinic_cell():
    cell = (70.0, 80.0, 90.0, 75.0, 85.0, 95.0)
    d, b = (to_numpy(m) for m in nanobragg_cell_matrices(arr(np, cell)))
    built = cell_from_direct_matrix(d)
    np.testing.assert_allclose(built[:3], cell[:3], rtol=1e-14)
    np.testing.assert_allclose(built[3:], NANOBRAGG_BUILT_ANGLES_DEG, atol=5e-5)
    assert np.abs(d - to_numpy(direct_matrix_A(arr(np, cell)))).max() > 1e-2
    # reciprocal vectors are (b x c) / V with the requested V, not the inverse of d
    np.testing.assert_allclose(d @ b, np.eye(3) * np.linalg.det(d) / volume_A3(cell), atol=1e-15)


def parity_cases():
    if not (PARITY / "cases.json").exists():
        return []
    cases = json.loads((PARITY / "cases.json").read_text())
    return [c for c in cases if ("-cell" in c["args"] or "-mat" in c["args"]) and "random" not in c["args"]]


def flag_values(args, flag, count):
    i = args.index(flag)
    return [float(v) for v in args[i + 1:i + 1 + count]]


def printed_vectors(log_text, title):
    lines = log_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = [[float(v) for v in lines[start + 2 + j].split()[1:]] for j in range(3)]
    return np.array(rows)  # rows X, Y, Z; columns the three vectors


@pytest.mark.parametrize("case", parity_cases(), ids=lambda c: c["name"])
def test_vectors_agree_with_parity_logs(case):
    """The printed vectors (8 decimals) of every parity case built from -cell/-misset or -mat."""
    args = case["args"]
    log = (PARITY / f"{case['name']}.log").read_text()
    if "-cell" in args:
        d, b = (to_numpy(m) for m in nanobragg_cell_matrices(arr(np, flag_values(args, "-cell", 6))))
    else:
        lam = flag_values(args, "-lambda", 1)[0] if "-lambda" in args else 1.0
        a_matrix = np.loadtxt(PARITY / args[args.index("-mat") + 1], max_rows=3)
        b = a_matrix / lam
        d = np.linalg.inv(b)
    if "-misset" in args:
        r = to_numpy(rotation_xyz(arr(np, np.radians(flag_values(args, "-misset", 3)))))
        d, b = d @ r.T, r @ b
    np.testing.assert_allclose(printed_vectors(log, "real-space cell vectors"), d.T, rtol=0, atol=6e-9)
    np.testing.assert_allclose(printed_vectors(log, "reciprocal-space cell vectors"), b, rtol=0, atol=6e-9)


@pytest.mark.parametrize(
    "cell, message",
    [
        ((70, 80, 90, 75, 85), "six values"),
        ("70 80 90 90 90 90", "six numbers"),
        ((70, 80, float("nan"), 90, 90, 90), "cell c = nan"),
        ((70, float("inf"), 90, 90, 90, 90), "cell b = inf"),
        ((0.0, 80, 90, 90, 90, 90), "cell edge a = 0.0"),
        ((70, -80, 90, 90, 90, 90), "cell edge b = -80"),
        ((70, 80, 90, 0.0, 90, 90), "cell angle alpha = 0.0"),
        ((70, 80, 90, 90, 180.0, 90), "cell angle beta = 180.0"),
        ((70, 80, 90, 90, 90, -5.0), "cell angle gamma = -5.0"),
        ((70, 80, 90, 30, 40, 100), "give no cell"),
        ((70, 80, 90, 150, 120, 100), "give no cell"),
    ],
)
def test_check_cell_rejects_bad_cells(cell, message):
    with pytest.raises(ValueError, match=message) as info:
        check_cell(cell)
    assert "cell" in str(info.value)


@pytest.mark.parametrize("xp", XPS)
def test_check_cell_accepts_valid_cells(xp):
    for cell in TRICLINIC_CELLS:
        check_cell(cell)
        check_cell(arr(xp, cell))


def assert_adjoint_matches_fd(adjoint, numeric):
    assert np.max(relative_errors(adjoint, numeric)) < FD_REL_TOL


@pytest.mark.parametrize("xp", XPS)
@pytest.mark.parametrize("cell", TRICLINIC_CELLS + [(50.0, 50.0, 50.0, 90.0, 90.0, 90.0)])
def test_direct_matrix_vjp_matches_central_differences(xp, cell):
    bar = np.random.default_rng(7).normal(size=(3, 3))
    x0 = np.array(cell)

    def objective(p):
        return np.sum(bar * to_numpy(direct_matrix_A(arr(xp, p))))

    adjoint = to_numpy(direct_matrix_A_vjp(arr(xp, x0), arr(xp, bar)))
    assert_adjoint_matches_fd(adjoint, central_difference(objective, x0, default_steps(x0)))


@pytest.mark.parametrize("xp", XPS)
@pytest.mark.parametrize("cell", TRICLINIC_CELLS + [(50.0, 60.0, 70.0, 90.0, 110.0, 90.0)])
def test_nanobragg_cell_matrices_vjp_matches_central_differences(xp, cell):
    rng = np.random.default_rng(8)
    d_bar = rng.normal(size=(3, 3))
    b_bar = rng.normal(size=(3, 3)) * 1e4  # reciprocal entries are ~1e-2 Å^-1
    x0 = np.array(cell)

    def objective(p):
        d, b = nanobragg_cell_matrices(arr(xp, p))
        return np.sum(d_bar * to_numpy(d)) + np.sum(b_bar * to_numpy(b))

    adjoint = to_numpy(nanobragg_cell_matrices_vjp(arr(xp, x0), arr(xp, d_bar), arr(xp, b_bar)))
    assert_adjoint_matches_fd(adjoint, central_difference(objective, x0, default_steps(x0)))
    for only_d, only_b in ((d_bar, 0 * b_bar), (0 * d_bar, b_bar)):
        part = to_numpy(nanobragg_cell_matrices_vjp(arr(xp, x0), arr(xp, only_d), arr(xp, only_b)))

        def partial_objective(p, only_d=only_d, only_b=only_b):
            d, b = nanobragg_cell_matrices(arr(xp, p))
            return np.sum(only_d * to_numpy(d)) + np.sum(only_b * to_numpy(b))

        assert_adjoint_matches_fd(part, central_difference(partial_objective, x0, default_steps(x0)))


@pytest.mark.parametrize("xp", XPS)
def test_cell_and_misset_chain_matches_central_differences(xp):
    """The chain of docs/adjoints.md: -cell vectors rotated by -misset (degrees)."""
    rng = np.random.default_rng(13)
    d_bar, b_bar = rng.normal(size=(3, 3)), rng.normal(size=(3, 3)) * 1e4
    x0 = np.array([70.0, 80.0, 90.0, 75.0, 85.0, 95.0, 10.0, 20.0, 30.0])

    def forward(p):
        d0, b0 = (to_numpy(m) for m in nanobragg_cell_matrices(arr(xp, p[:6])))
        r = to_numpy(rotation_xyz(arr(xp, np.radians(p[6:]))))
        return d0, b0, r

    def objective(p):
        d0, b0, r = forward(p)
        return np.sum(d_bar * (d0 @ r.T)) + np.sum(b_bar * (r @ b0))

    def gradient(p):
        d0, b0, r = forward(p)
        r_bar = d_bar.T @ d0 + b_bar @ b0.T
        cell_bar = to_numpy(nanobragg_cell_matrices_vjp(arr(xp, p[:6]), arr(xp, d_bar @ r), arr(xp, r.T @ b_bar)))
        misset_bar = to_numpy(rotation_xyz_vjp(arr(xp, np.radians(p[6:])), arr(xp, r_bar))) * np.pi / 180
        return np.concatenate([cell_bar, misset_bar])

    assert_adjoint_matches_fd(gradient(x0), central_difference(objective, x0, default_steps(x0)))


def test_matrix_cell_keeps_orientation_and_its_adjoint():
    """A cell from a MOSFLM matrix changes with U fixed: D = D_std(cell) U^T, adjoint via D_bar U."""
    b_star = np.array(A_MAT) / A_MAT_LAMBDA_A
    cell, u = orientation_from_reciprocal_matrix(b_star)
    d_bar = np.random.default_rng(14).normal(size=(3, 3))

    def objective(p):
        return np.sum(d_bar * (to_numpy(direct_matrix_A(arr(np, p))) @ u.T))

    x0 = np.array(cell)
    adjoint = to_numpy(direct_matrix_A_vjp(arr(np, x0), arr(np, d_bar @ u)))
    assert_adjoint_matches_fd(adjoint, central_difference(objective, x0, default_steps(x0)))


@pytest.mark.parametrize("xp", XPS)
def test_reciprocal_metric(xp):
    cell = TRICLINIC_CELLS[0]
    d = to_numpy(direct_matrix_A(arr(xp, cell)))
    g = to_numpy(reciprocal_metric_per_A2(arr(xp, d)))
    b = np.linalg.inv(d)
    np.testing.assert_allclose(g, b.T @ b, rtol=1e-12)
    np.testing.assert_allclose(np.diag(g), np.linalg.norm(b, axis=0) ** 2, rtol=1e-12)  # 1 / d_100^2 ...
    r = to_numpy(rotation_xyz(arr(xp, [0.3, -0.7, 1.9])))
    np.testing.assert_allclose(to_numpy(reciprocal_metric_per_A2(arr(xp, d @ r.T))), g, rtol=1e-12)


@pytest.mark.parametrize("xp", XPS)
def test_reciprocal_metric_vjp_matches_central_differences(xp):
    rng = np.random.default_rng(9)
    d0 = to_numpy(direct_matrix_A(arr(xp, TRICLINIC_CELLS[1]))) @ to_numpy(rotation_xyz(arr(xp, [0.2, 0.5, -1.0]))).T
    g_bar = rng.normal(size=(3, 3)) * 1e6  # G* entries are ~1e-3 Å^-2

    def objective(flat):
        return np.sum(g_bar * to_numpy(reciprocal_metric_per_A2(arr(xp, flat.reshape(3, 3)))))

    adjoint = to_numpy(reciprocal_metric_per_A2_vjp(arr(xp, d0), arr(xp, g_bar))).reshape(-1)
    numeric = central_difference(objective, d0.reshape(-1), default_steps(d0.reshape(-1)))
    assert_adjoint_matches_fd(adjoint, numeric)


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("cell", TRICLINIC_CELLS)
def test_orientation_from_reciprocal_matrix_round_trip(cell):
    rng = np.random.default_rng(10)
    u = random_rotation(rng)
    b_star = u @ np.linalg.inv(to_numpy(direct_matrix_A(arr(np, cell))))
    found, found_u = orientation_from_reciprocal_matrix(b_star)
    np.testing.assert_allclose(found, cell, rtol=1e-12)
    np.testing.assert_allclose(found_u, u, atol=1e-13)
    np.testing.assert_allclose(to_numpy(direct_matrix_A(arr(np, found))) @ found_u.T, np.linalg.inv(b_star),
                               rtol=0, atol=1e-10 * max(cell[:3]))


def test_orientation_keeps_a_left_handed_matrix():
    cell = TRICLINIC_CELLS[0]
    u = random_rotation(np.random.default_rng(12))
    b_star = u @ np.linalg.inv(to_numpy(direct_matrix_A(arr(np, cell))))
    b_star[:, 1] *= -1.0  # swap the hand of b*
    found, found_u = orientation_from_reciprocal_matrix(b_star)
    assert np.linalg.det(found_u) == pytest.approx(-1.0, abs=1e-13)
    np.testing.assert_allclose(found_u @ found_u.T, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(to_numpy(direct_matrix_A(arr(np, found))) @ found_u.T, np.linalg.inv(b_star),
                               atol=1e-10 * max(cell[:3]))


def test_orientation_of_the_reference_mosflm_matrix():
    b_star = np.array(A_MAT) / A_MAT_LAMBDA_A
    cell, u = orientation_from_reciprocal_matrix(b_star)
    # the file's 8 decimals (±5e-9 on entries ~1e-2) fix the cell to a few 1e-7 relative
    np.testing.assert_allclose(cell, A_MAT_CELL, rtol=1e-6, atol=0)
    d = to_numpy(direct_matrix_A(arr(np, cell))) @ u.T
    np.testing.assert_allclose(d, np.linalg.inv(b_star), rtol=0, atol=1e-10)
    np.testing.assert_allclose(d, A_MAT_NANOBRAGG_DIRECT, rtol=0, atol=1e-10)
    if (PARITY / "inputs" / "A.mat").exists():
        np.testing.assert_array_equal(np.loadtxt(PARITY / "inputs" / "A.mat", max_rows=3), A_MAT)


def test_orientation_rejects_singular_and_malformed_matrices():
    with pytest.raises(ValueError, match="B_star"):
        orientation_from_reciprocal_matrix(np.ones((3, 3)))
    with pytest.raises(ValueError, match="B_star"):
        orientation_from_reciprocal_matrix(np.eye(2))
