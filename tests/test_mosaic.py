"""Mosaic domains: nanoBragg parity, seeded determinism, pinned layout, gradient in the spread.

nanoBragg reference matrices: its ran1 and mosaic_rotation_umat compiled with gcc 12 (x86-64,
glibc) in a harness outside the repository, domain 0 forced to the identity as in the program.
"""

import dataclasses
import subprocess
import sys

import array_api_strict
import numpy as np
import pytest

from conftest import to_numpy
from arraybragg.mosaic import (
    MosaicBase,
    draw_mosaic_base,
    mosaic_angles_rad,
    mosaic_rotations,
    mosaic_rotations_vjp,
)

DEFAULT_SEED = -12345678

# nanoBragg's umats 1..14 (row-major) for stored seed -1234, 15 domains, spread 1.5 deg
NB_SEED_1234 = [
    [0.999702288411908, 0.004542978573126293, -0.02397281563935529, -0.004769580170253391, 0.9999444088199804, -0.009403742587904497, 0.02392876196116146, 0.009515283250863241, 0.999668381882543],
    [0.9999046724718306, 0.008564750977738953, -0.010830097399867119, -0.008348234133370163, 0.999767484588928, 0.019881744027681787, 0.010997861421918453, -0.019789436561386653, 0.999743679772334],
    [0.9999265720787008, -0.007443286003498564, 0.009562841858412151, 0.007474441056812781, 0.9999668612142154, -0.0032263298464799044, -0.009538510461655355, 0.0032975698415921347, 0.9999490701287305],
    [0.9999991106115873, -0.0013161176150561786, 0.00021589455249762556, 0.00131136775903936, 0.999784968114158, 0.020695358116558395, -0.0002430856536519597, -0.02069505659319119, 0.9997858048311996],
    [0.9997388029903378, -0.010307147760399786, 0.020398247485797102, 0.010045904087652177, 0.9998667323989655, 0.01286845961555674, -0.020528166174995647, -0.01266017957458768, 0.9997091148162204],
    [0.999723806099675, 0.0068522029452281275, 0.02248018755208263, -0.007061915282135276, 0.999932163786797, 0.009262676567938824, -0.022415192841627483, -0.009418871453189372, 0.9997043782991155],
    [0.9997104746968002, 0.01655169958130149, 0.017464478877675188, -0.01650503506382065, 0.9998598263325753, -0.0028127395425683846, -0.01750858643753029, 0.0025236733470520955, 0.9998435279951543],
    [0.9999589582526297, -0.0036242631422977755, -0.008303404542166569, 0.0038269461718775945, 0.9996918870860758, 0.024525198822399945, 0.00821196038184805, -0.02455596894761186, 0.9996647278441563],
    [0.9996660028101635, -0.024570209479225707, -0.008011718398516918, 0.024554833818834356, 0.9996964601062088, -0.0020119113411396147, 0.008058719605470575, 0.0018145129545266091, 0.9999658817085002],
    [0.999998512261265, -0.0006020457532655117, 0.0016164826530131776, 0.0006322904776332812, 0.9998235276430631, -0.01877535033315902, -0.0016048937685753024, 0.018776344486931825, 0.9998224208346699],
    [0.9999442843785561, 0.001646551013831469, 0.01042674486194576, -0.0014291552275843755, 0.9997821551435851, -0.020823058655817028, -0.010458759677549244, 0.020806997049237514, 0.9997288048364917],
    [0.9999587840892442, 0.0007683275187146429, -0.009046535004317001, -0.0008587672389539088, 0.9999496546868805, -0.009997530215901974, 0.0090383981760955, 0.010004887026476575, 0.9999091006656544],
    [0.9996828738174568, 0.008740089912869592, 0.02361699863203982, -0.00859246009746046, 0.9999429519962337, -0.006345264575361298, -0.02367110951232251, 0.0061403242074617205, 0.9997009427789307],
    [0.9997725028095219, -0.016778393598396432, 0.013169211602892597, 0.016685484321366385, 0.9998353404021655, 0.007133491140202653, -0.013286731687887274, -0.006912133617285107, 0.999887836294607],
]
# domains 1..3 for a random misset from stored seed -4242 first, then stored mosaic seed 99 (CLI -99)
NB_MISSET_4242_THEN_99 = [
    [0.9999175375066989, -0.008200898746711694, -0.00988248178777578, 0.007974138174379069, 0.9997089119703841, -0.02277069272917992, 0.010066345261088946, 0.02269001072580177, 0.999691868580688],
    [0.9997171053860088, 0.01336573925652514, 0.01967399839245455, -0.013521218217815774, 0.9998782305603059, 0.007791066005238336, -0.01956746934393736, -0.00805487838010956, 0.9997760914713633],
    [0.9996995330426685, 0.014736059874744115, 0.01958806201844935, -0.014858828415824867, 0.9998707690105294, 0.006136814841735702, -0.019495098162864863, -0.0064260265841831485, 0.9997893014680441],
]


def test_nanobragg_stream_matches_nanobragg_seed_1234():
    base = draw_mosaic_base(15, -1234, "nanobragg")
    rotations = mosaic_rotations(base, 1.5)
    assert np.array_equal(rotations[0], np.eye(3))
    np.testing.assert_allclose(rotations[1:].reshape(14, 9), NB_SEED_1234, rtol=0, atol=1e-15)


def test_nanobragg_stream_after_random_misset_continues_the_table():
    base = draw_mosaic_base(4, 99, "nanobragg", misset_seed=-4242)
    rotations = mosaic_rotations(base, 1.5)
    np.testing.assert_allclose(rotations[1:].reshape(3, 9), NB_MISSET_4242_THEN_99, rtol=0, atol=1e-15)


def test_negative_mosaic_seed_after_random_misset_restarts_the_stream():
    after_misset = draw_mosaic_base(15, -1234, "nanobragg", misset_seed=-4242)
    alone = draw_mosaic_base(15, -1234, "nanobragg")
    assert np.array_equal(after_misset.axes, alone.axes)
    assert np.array_equal(after_misset.unit_angles, alone.unit_angles)


def test_nanobragg_angles_are_single_precision_products():
    base = draw_mosaic_base(15, -1234, "nanobragg")
    angles = mosaic_angles_rad(base, 1.5)
    assert np.all(base.unit_angles.astype(np.float32) == base.unit_angles)
    assert np.all(angles.astype(np.float32) == angles)
    expected = np.float32(1.5 / (180.0 / np.pi)) * base.unit_angles[1:].astype(np.float32)
    assert np.array_equal(angles[1:], expected.astype(np.float64))


def test_default_stream_pinned_layout():
    """u = Generator(PCG64(seed & 0x7FFFFFFF)).random((n, 3)); r = 2u - 1 (docs/stochastic.md)."""
    base = draw_mosaic_base(3, DEFAULT_SEED)
    u = np.array([[0.6290029047703641, 0.08163782176977696, 0.6281123610320595],
                  [0.4813073272372008, 0.08267279831425123, 0.7132270026562026]])
    r = 2.0 * u - 1.0
    radius = np.sqrt(1.0 - r[:, 1] ** 2)
    np.testing.assert_allclose(base.axes[:2, 0], radius * np.sin(np.pi * r[:, 0]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(base.axes[:2, 1], radius * np.cos(np.pi * r[:, 0]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(base.axes[:2, 2], r[:, 1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(base.unit_angles[:2], np.cbrt(1.0 - r[:, 2] ** 2), rtol=1e-15)
    np.testing.assert_allclose(
        base.axes[2], [0.7921859524765521, 0.4029401060815955, 0.4583455984404896], rtol=0, atol=1e-15
    )
    assert base.unit_angles[2] == pytest.approx(0.6245787926521743, rel=1e-15)


def test_default_stream_masks_the_stored_seed():
    assert np.array_equal(draw_mosaic_base(3, -1234).axes, draw_mosaic_base(3, 2147482414).axes)
    np.testing.assert_allclose(
        draw_mosaic_base(3, 1234).unit_angles,
        [0.6568896367287397, 0.7468506605187152, 0.5174154504497634],
        rtol=1e-15,
    )


def test_same_seed_gives_bitwise_identical_matrices_across_calls():
    first = mosaic_rotations(draw_mosaic_base(10, DEFAULT_SEED), 0.7)
    second = mosaic_rotations(draw_mosaic_base(10, DEFAULT_SEED), 0.7)
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("rng", ["numpy", "nanobragg"])
def test_same_seed_gives_bitwise_identical_matrices_across_processes(rng):
    code = (
        "from arraybragg.mosaic import draw_mosaic_base, mosaic_rotations;"
        f"print(mosaic_rotations(draw_mosaic_base(10, {DEFAULT_SEED}, {rng!r}), 0.7).tobytes().hex())"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = mosaic_rotations(draw_mosaic_base(10, DEFAULT_SEED, rng), 0.7)
    assert child.stdout.strip() == here.tobytes().hex()


@pytest.mark.parametrize("rng", ["numpy", "nanobragg"])
def test_different_seeds_give_different_matrices(rng):
    first = mosaic_rotations(draw_mosaic_base(10, DEFAULT_SEED, rng), 0.7)
    second = mosaic_rotations(draw_mosaic_base(10, -1234, rng), 0.7)
    assert np.array_equal(first[0], second[0])
    assert np.min(np.max(np.abs(first[1:] - second[1:]), axis=(1, 2))) > 1e-5


@pytest.mark.parametrize("rng", ["numpy", "nanobragg"])
def test_first_domains_do_not_depend_on_the_count(rng):
    few = draw_mosaic_base(4, DEFAULT_SEED, rng)
    many = draw_mosaic_base(25, DEFAULT_SEED, rng)
    assert np.array_equal(few.axes, many.axes[:4])
    assert np.array_equal(few.unit_angles, many.unit_angles[:4])


@pytest.mark.parametrize("rng", ["numpy", "nanobragg"])
def test_matrices_are_proper_rotations_about_the_drawn_axes(rng):
    base = draw_mosaic_base(20, DEFAULT_SEED, rng)
    rotations = mosaic_rotations(base, 2.0)
    eye = np.broadcast_to(np.eye(3), rotations.shape)
    np.testing.assert_allclose(rotations @ np.swapaxes(rotations, 1, 2), eye, atol=1e-15)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-15)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", rotations, base.axes), base.axes, atol=1e-15)
    cos_angles = (np.trace(rotations, axis1=1, axis2=2) - 1.0) / 2.0
    np.testing.assert_allclose(cos_angles, np.cos(mosaic_angles_rad(base, 2.0)), atol=1e-15)
    assert np.all(np.abs(mosaic_angles_rad(base, 2.0)) <= np.radians(2.0))


def test_rotation_is_right_handed():
    base = MosaicBase(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]), np.array([1.0, 1.0]), "numpy")
    quarter_turn = mosaic_rotations(base, 90.0)[1]
    np.testing.assert_allclose(quarter_turn @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)


@pytest.mark.parametrize("rng", ["numpy", "nanobragg"])
def test_zero_spread_gives_exact_identities(rng):
    rotations = mosaic_rotations(draw_mosaic_base(10, DEFAULT_SEED, rng), 0.0)
    assert np.array_equal(rotations, np.broadcast_to(np.eye(3), (10, 3, 3)))


def test_negative_spread_mirrors_the_angles():
    base = draw_mosaic_base(10, DEFAULT_SEED)
    np.testing.assert_array_equal(mosaic_angles_rad(base, -0.8), -mosaic_angles_rad(base, 0.8))
    forward, backward = mosaic_rotations(base, 0.8), mosaic_rotations(base, -0.8)
    np.testing.assert_allclose(backward, np.swapaxes(forward, 1, 2), atol=1e-16)


def total(base, spread_deg, weights):
    return float(np.sum(weights * mosaic_rotations(base, spread_deg)))


@pytest.mark.parametrize("spread_deg", [0.5, 0.001, 0.003, 0.0, -0.2])
def test_spread_gradient_matches_central_differences(spread_deg):
    base = draw_mosaic_base(12, DEFAULT_SEED)
    weights = np.random.Generator(np.random.PCG64(7)).standard_normal((12, 3, 3))
    step = 1e-3
    numeric = (total(base, spread_deg + step, weights) - total(base, spread_deg - step, weights)) / (2 * step)
    analytic = mosaic_rotations_vjp(base, spread_deg, weights)
    assert abs(numeric) > 1e-3
    assert analytic == pytest.approx(numeric, rel=1e-8)


def test_nanobragg_gradient_treats_float32_rounding_as_identity():
    base = draw_mosaic_base(12, DEFAULT_SEED, "nanobragg")
    smooth = dataclasses.replace(base, rng="numpy")
    weights = np.random.Generator(np.random.PCG64(8)).standard_normal((12, 3, 3))
    step = 1e-3
    numeric = (total(smooth, 0.5 + step, weights) - total(smooth, 0.5 - step, weights)) / (2 * step)
    assert mosaic_rotations_vjp(base, 0.5, weights) == pytest.approx(numeric, rel=1e-6)


def test_domain_zero_carries_no_gradient():
    base = draw_mosaic_base(5, DEFAULT_SEED)
    weights = np.zeros((5, 3, 3))
    weights[0] = 1.0
    assert mosaic_rotations_vjp(base, 0.5, weights) == 0.0


def test_array_api_strict_namespace_gives_the_numpy_result():
    base = draw_mosaic_base(10, DEFAULT_SEED)
    strict = mosaic_rotations(base, 0.5, xp=array_api_strict)
    assert type(strict).__module__.startswith("array_api_strict")
    np.testing.assert_array_equal(to_numpy(strict), mosaic_rotations(base, 0.5))
    weights = np.random.Generator(np.random.PCG64(9)).standard_normal((10, 3, 3))
    strict_grad = mosaic_rotations_vjp(base, 0.5, array_api_strict.asarray(weights))
    assert strict_grad == pytest.approx(mosaic_rotations_vjp(base, 0.5, weights), rel=1e-14)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_domains=0, mosaic_seed=1), "n_domains"),
        (dict(n_domains=2.5, mosaic_seed=1), "n_domains"),
        (dict(n_domains=3, mosaic_seed=2**31), "mosaic_seed"),
        (dict(n_domains=3, mosaic_seed=1.0), "mosaic_seed"),
        (dict(n_domains=3, mosaic_seed=1, rng="mt19937"), "rng"),
        (dict(n_domains=3, mosaic_seed=1, rng="nanobragg", misset_seed="x"), "misset_seed"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        draw_mosaic_base(**kwargs)


def test_non_finite_spread_is_rejected():
    with pytest.raises(ValueError, match="mosaic_spread_deg"):
        mosaic_rotations(draw_mosaic_base(3, 1), float("nan"))


@pytest.mark.parametrize("rng", ["numpy", "nanobragg"])
def test_an_array_of_spreads_gives_one_domain_set_per_spread(rng):
    base = draw_mosaic_base(6, -1234, rng)
    spreads = np.array([[0.0, 0.5], [1.5, -0.2]])
    batch = mosaic_rotations(base, spreads)
    assert batch.shape == (2, 2, 6, 3, 3)
    for index in np.ndindex(spreads.shape):
        np.testing.assert_array_equal(batch[index], mosaic_rotations(base, spreads[index]))
    bar = np.random.default_rng(1).standard_normal(batch.shape)
    grads = mosaic_rotations_vjp(base, spreads, bar)
    assert grads.shape == spreads.shape
    for index in np.ndindex(spreads.shape):
        assert grads[index] == pytest.approx(mosaic_rotations_vjp(base, spreads[index], bar[index]), rel=1e-14)
