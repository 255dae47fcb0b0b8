"""nanoBragg's command line: exact-name default parser, aliases, compat (substring) parser, rules.

Where nanoBragg's behaviour is stated below as fact it was checked against the C program
(upstream commit 455534a) or its source.
"""

import math
import warnings

import numpy as np
import pytest

import arraybragg
from arraybragg.nanobragg_args import ALIASES, ArgumentError, flag_names, parse_nanobragg_args
from arraybragg.sampling_rules import NanoBraggWarning
from conftest import DATA, PARITY_INPUTS

BASE = "-cell 50 50 50 90 90 90 -default_F 1 -oversample 1".split()
SMALL = BASE + "-N 3 -detpixels 8 -pixel 0.4".split()
HKL = str(PARITY_INPUTS / "P1.hkl")
MAT = str(PARITY_INPUTS / "A.mat")
SMV = str(DATA / "files" / "A.img")


def parse(*argv, base=BASE):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NanoBraggWarning)
        return parse_nanobragg_args(list(base) + [str(a) for a in argv])


def state(parsed):
    return parsed.simulation.to_dict(), parsed.outputs


# ---------------------------------------------------------------- every documented flag

# Flags of nanoBragg's usage text (printed by nanoBragg run without arguments; -adxv, which it
# names only as a default, added), with values and the context they need to have an effect:
# flag -> (values, context).
USAGE_FLAGS = {
    "-mat": ([MAT], []), "-hkl": ([HKL], []), "-misset": (["10", "20", "30"], []),
    "-cell": (["60", "60", "60", "90", "90", "90"], []), "-default_F": (["3"], []),
    "-distance": (["80"], []), "-detsize": (["3.2"], []), "-detsize_f": (["3.2"], []), "-detsize_s": (["2.4"], []),
    "-detpixels": (["8"], []), "-detpixels_x": (["8"], []), "-detpixels_y": (["6"], []), "-pixel": (["0.2"], []),
    "-img": ([SMV], []), "-mask": ([SMV], []),
    "-detector_absorb": (["200"], ["-detector_thick", "100"]), "-detector_thick": (["100"], []),
    "-detector_thicksteps": (["3"], ["-detector_thick", "100"]),
    "-Xbeam": (["1.5"], []), "-Ybeam": (["1.5"], []),
    "-mosflm": ([], ["-xds"]), "-denzo": ([], []), "-xds": ([], []), "-adxv": ([], []),
    "-ORGX": (["4"], []), "-ORGY": (["4"], []), "-twotheta": (["5"], []),
    "-N": (["3"], []), "-Na": (["3"], []), "-Nb": (["3"], []), "-Nc": (["3"], []), "-xtalsize": (["0.0001"], []),
    "-square_xtal": ([], ["-round_xtal"]), "-round_xtal": ([], []), "-gauss_xtal": ([], []), "-tophat_spots": ([], []),
    "-oversample": (["2"], []), "-oversample_thick": ([], []), "-oversample_polar": ([], []),
    "-oversample_omega": ([], []), "-lambda": (["1.2"], []), "-energy": (["12000"], []),
    "-mosaic": (["0.5"], []), "-mosaic_domains": (["3"], ["-mosaic", "0.5"]),
    "-dispersion": (["1"], []), "-dispsteps": (["3"], ["-dispersion", "1"]),
    "-hdivrange": (["1"], []), "-vdivrange": (["1"], []), "-hdivstep": (["0.5"], []), "-vdivstep": (["0.5"], []),
    "-square_div": ([], ["-hdivrange", "2", "-vdivrange", "2", "-divsteps", "4"]),
    "-phi": (["3"], []), "-osc": (["1"], []), "-phisteps": (["2"], []), "-water": (["1"], []),
    "-floatfile": (["f.bin"], []), "-intfile": (["i.img"], []), "-scale": (["2"], []), "-adc": (["10"], []),
    "-polar": (["0.9"], []), "-noisefile": (["n.img"], []), "-pgmfile": (["p.pgm"], []), "-pgmscale": (["2"], []),
    "-nopgm": ([], []), "-roi": (["0", "3", "0", "3"], []), "-printout": ([], []), "-seed": (["5"], []),
    "-mosaic_seed": (["5"], []), "-misset_seed": (["5"], []), "-fluence": (["1e24"], []), "-flux": (["1e12"], []),
    "-beamsize": (["0.05"], ["-flux", "1e12"]), "-exposure": (["2"], ["-flux", "1e12"]), "-nonoise": ([], []),
    "-noprogress": ([], []), "-nopolar": ([], []), "-nointerpolate": ([], ["-hkl", HKL, "-N", "2"]),
    "-interpolate": ([], ["-hkl", HKL, "-N", "5"]), "-point_pixel": ([], []), "-curved_det": ([], []),
    "-fdet_vector": (["0", "0", "1"], []), "-sdet_vector": (["0", "-1", "0"], []),
    "-odet_vector": (["1", "0", "0"], []), "-beam_vector": (["1", "0", "0"], []),
    "-polar_vector": (["0", "0", "1"], []), "-spindle_axis": (["0", "0", "1"], []),
    "-pix0_vector": (["0.1", "0", "0"], []),
}


def test_usage_flag_list_is_complete():
    """The usage text of nanoBragg 455534a lists 86 flag spellings."""
    assert len(set(USAGE_FLAGS) - {"-adxv"}) == 86
    assert set(USAGE_FLAGS) <= set(flag_names())


@pytest.mark.parametrize("flag", sorted(USAGE_FLAGS))
def test_every_usage_flag_is_accepted_and_has_an_effect(flag):
    values, context = USAGE_FLAGS[flag]
    base = BASE[7:] if flag == "-mat" else BASE
    before = parse(*context, base=BASE)
    after = parse(*context, flag, *values, base=base)
    assert state(after) != state(before) or after.notes != before.notes


# ---------------------------------------------------------------- aliases

ALIAS_VALUES = {
    "-lambda": (["1.5"], []), "-floatfile": (["x.bin"], []), "-intfile": (["x.img"], []),
    "-pgmfile": (["x.pgm"], []), "-noisefile": (["n.img"], []),
    "-detector_thicksteps": (["3"], ["-detector_thick", "100"]), "-tophat_spots": ([], []),
    "-mosaic_dom": (["5"], ["-mosaic", "1"]), "-detector_abs": (["150"], ["-detector_thick", "100"]),
    "-xtalsize": (["0.0005"], []), "-samplesize": (["0.0005"], []), "-detpixels_f": (["20"], []),
    "-detpixels_s": (["30"], []), "-mosaic": (["0.5"], ["-mosaic_dom", "3"]),
    "-sample_thick": (["0.0005"], []), "-sample_width": (["0.0005"], []), "-sample_height": (["0.0005"], []),
    "-xtal_thick": (["0.0005"], []), "-xtal_width": (["0.0005"], []), "-xtal_height": (["0.0005"], []),
    "-MW": (["20000"], []), "-density": (["1.2"], []),
}


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_alias_gives_the_same_simulation_as_its_target(alias):
    target = ALIASES[alias]
    values, context = ALIAS_VALUES[target]
    by_alias = parse(*context, alias, *values)
    by_target = parse(*context, target, *values)
    assert state(by_alias) == state(by_target)
    assert [n.replace(alias, target) for n in by_alias.notes] == list(by_target.notes)
    assert state(by_target) != state(parse(*context)) or by_target.notes


# ---------------------------------------------------------------- default parser: exact names

def test_unknown_flag_is_an_error_naming_it():
    with pytest.raises(ArgumentError, match="-distanse"):
        parse("-distanse", "100")
    with pytest.raises(ArgumentError, match="-twotheta_axes"):
        parse("-twotheta_axes", "0", "1", "0")


def test_missing_and_bad_values_are_errors_naming_the_flag():
    with pytest.raises(ArgumentError, match="-distance"):
        parse("-distance")
    with pytest.raises(ArgumentError, match="-lambda"):
        parse("-lambda", "abc")
    with pytest.raises(ArgumentError, match="-N"):
        parse("-N", "2.5")
    with pytest.raises(ArgumentError, match="-pixel"):
        parse("-pixel", "0")
    with pytest.raises(ArgumentError, match="-fdet_vector"):
        parse("-fdet_vector", "0", "1")
    with pytest.raises(ArgumentError, match="-rng"):
        parse("-rng", "mt19937")


def test_twotheta_axis_does_not_set_the_angle():
    d = parse("-twotheta_axis", "0.6", "0.8", "0").simulation.detector
    assert (d.convention, d.twotheta_deg, d.pivot, d.twotheta_axis) == ("custom", 0.0, None, (0.6, 0.8, 0.0))


def test_misset_seed_does_not_set_misset_angles():
    c = parse("-misset_seed", "10").simulation.crystal
    assert (c.misset_deg, c.misset_seed, c.misset_random) == ((0.0, 0.0, 0.0), -10, False)


def test_mosaic_and_misset_seeds_do_not_set_the_noise_seed():
    assert "seed" not in parse("-mosaic_seed", "10").outputs
    assert "seed" not in parse("-misset_seed", "10", "-misset", "random").outputs
    assert parse("-seed", "7").outputs["seed"] == -7


def test_curved_det_as_last_token_is_honoured():
    assert parse("-curved_det").simulation.detector.curved_detector


@pytest.mark.parametrize("vector", ["-fdet_vector", "-sdet_vector", "-odet_vector", "-beam_vector", "-polar_vector",
                                    "-spindle_axis", "-twotheta_axis", "-pix0_vector"])
def test_vector_flags_select_custom(vector):
    assert parse(vector, "0", "0", "1").simulation.detector.convention == "custom"


@pytest.mark.parametrize("convention", ["-xds", "-mosflm", "-dials", "-adxv", "-denzo"])
def test_vector_flag_with_an_explicit_convention_is_an_error(convention):
    with pytest.raises(ArgumentError, match=convention):
        parse("-fdet_vector", "0", "0", "1", convention)
    with pytest.raises(ArgumentError, match="-spindle_axis"):
        parse(convention, "-spindle_axis", "0", "0", "1")


def test_pix0_vector_is_accepted_with_a_warning():
    with pytest.warns(NanoBraggWarning, match="pix0_vector"):
        parse_nanobragg_args(BASE + ["-pix0_vector", "0.1", "0", "0"])


@pytest.mark.parametrize("flags,pivot", [
    (["-distance", "100", "-close_distance", "90"], "sample"),
    (["-close_distance", "90", "-distance", "100"], "beam"),
    (["-Xclose", "3", "-pivot", "beam"], "beam"),
    (["-pivot", "beam", "-ORGX", "10"], "sample"),
    (["-pivot", "sample", "-Xbeam", "3"], "beam"),
    (["-Ybeam", "3", "-twotheta", "5"], "sample"),
    (["-Yclose", "3", "-Ybeam", "2"], "beam"),
    (["-ORGY", "3"], "sample"),
    ([], None),
])
def test_last_pivot_flag_wins_in_custom(flags, pivot):
    d = parse("-fdet_vector", "0", "0", "1", *flags).simulation.detector
    assert d.pivot == pivot
    assert parse(*flags).simulation.detector.pivot is None          # MOSFLM: the convention decides


def test_spindle_axis_alone_moves_the_default_beam_spot_by_one_pixel():
    """CUSTOM's beam-centre rule (detector centre) differs from MOSFLM's (centre + 1 pixel)."""
    from arraybragg.detector import detector_frame

    mosflm = parse("-detpixels", "64", "-pixel", "0.1").simulation
    custom = parse("-detpixels", "64", "-pixel", "0.1", "-spindle_axis", "0", "0", "1").simulation
    f0 = detector_frame(mosflm.detector)
    f1 = detector_frame(custom.detector, spindle_axis=custom.sampling.spindle_axis)
    assert (f0.fbeam_m, f0.sbeam_m) == pytest.approx((3.3e-3, 3.3e-3))
    assert (f1.fbeam_m, f1.sbeam_m) == pytest.approx((3.2e-3, 3.2e-3))


# ---------------------------------------------------------------- compat parser: nanoBragg's side effects

def compat(*argv, base=BASE):
    return parse(*argv, "-nanobragg_compat", base=base)


def test_compat_twotheta_axis_sets_angle_and_pivot():
    d = compat("-twotheta_axis", "0.6", "0.8", "0").simulation.detector
    assert (d.convention, d.twotheta_deg, d.pivot, d.twotheta_axis) == ("custom", 0.6, "sample", (0.6, 0.8, 0.0))
    d = compat("-twotheta_axis", "0.6", "0.8", "0", "-twotheta", "7", "-pivot", "beam").simulation.detector
    assert (d.twotheta_deg, d.pivot) == (7.0, "beam")


def test_compat_misset_seed_acts_as_misset():
    c = compat("-misset_seed", "10", "20", "30").simulation.crystal
    assert (c.misset_deg, c.misset_seed, c.misset_random) == ((10.0, 20.0, 30.0), -10, False)
    c = compat("-misset_seed", "4242", "-misset", "random").simulation.crystal
    assert (c.misset_seed, c.misset_random) == (-4242, True)
    c = compat("-misset_seed", "4242", "-N", "3").simulation.crystal   # non-numbers read as 0
    assert c.misset_deg == (4242.0, 0.0, 3.0)


def test_compat_curved_det_needs_a_following_token():
    assert not compat("-curved_det").simulation.detector.curved_detector
    assert compat("-curved_det", "-N", "3").simulation.detector.curved_detector


def test_compat_seeds_do_not_set_the_noise_seed():
    """strstr('-mosaic_seed', '-seed') is NULL in C: nanoBragg keeps its clock seed (checked with the binary)."""
    assert "seed" not in compat("-mosaic_seed", "10").outputs
    assert "seed" not in compat("-misset_seed", "10", "-misset", "random").outputs
    assert compat("-seed", "7").outputs["seed"] == -7


def test_pgmscale_does_not_set_the_int_scale():
    """strstr('-pgmscale', '-scale') is NULL: nanoBragg's intfile_scale stays automatic (checked with the binary)."""
    for parsed in (parse("-pgmscale", "3"), compat("-pgmscale", "3")):
        assert parsed.outputs["pgmscale"] == 3.0
        assert "scale" not in parsed.outputs


def test_compat_ignores_unknown_flags_and_matches_substrings():
    assert compat("-foo", "3").simulation.to_dict() == compat().simulation.to_dict()
    assert compat("--distance", "80").simulation.detector.distance_mm == 80.0
    assert compat("-lambda", "2x").simulation.beam.wavelength_A == 2.0                  # C atof: numeric prefix
    with pytest.raises(ArgumentError, match="--distance"):
        parse("--distance", "80")


def zero_thickness_reference():
    return np.asarray(arraybragg.from_nanobragg_args(SMALL).run())


def test_compat_detector_abs_inf_before_thickness_gives_a_zero_image():
    """nanoBragg: mu = 0 and thickness 0 at -detector_abs inf; a later -detector_thick applies, so the
    capture fraction exp(0) - exp(0) is 0 everywhere (max_I = 0 from the C program)."""
    with pytest.warns(NanoBraggWarning, match="detector_abs"):
        sim = arraybragg.from_nanobragg_args(SMALL + ["-detector_abs", "inf", "-detector_thick", "100",
                                                      "-nanobragg_compat"])
    image = np.asarray(sim.run())
    assert image.shape == (8, 8)
    assert np.all(image == 0.0)


def test_compat_detector_abs_inf_after_thickness_switches_the_sensor_off():
    image = arraybragg.from_nanobragg_args(SMALL + ["-detector_thick", "100", "-detector_abs", "inf",
                                                   "-nanobragg_compat"]).run()
    np.testing.assert_array_equal(image, zero_thickness_reference())


@pytest.mark.parametrize("order", [["-detector_abs", "inf", "-detector_thick", "100"],
                                   ["-detector_thick", "100", "-detector_abs", "inf"]])
def test_default_detector_abs_inf_switches_the_sensor_off_in_any_order(order):
    image = arraybragg.from_nanobragg_args(SMALL + order).run()
    np.testing.assert_array_equal(image, zero_thickness_reference())


# ---------------------------------------------------------------- rules applied by the parser

def test_seeds_are_stored_negated_and_the_default_mosaic_seed():
    c = parse("-mosaic_seed", "1234", "-misset_seed", "42").simulation.crystal
    assert (c.mosaic_seed, c.misset_seed) == (-1234, -42)
    assert parse().simulation.crystal.mosaic_seed == -12345678
    assert parse("-mosaic_seed", "-5").simulation.crystal.mosaic_seed == 5


def test_n_zero_becomes_one_with_a_warning():
    with pytest.warns(NanoBraggWarning, match="raised to 1"):
        c = parse_nanobragg_args(BASE + ["-N", "0"]).simulation.crystal
    assert c.n_cells == (1, 1, 1)
    with pytest.warns(NanoBraggWarning):
        assert parse_nanobragg_args(BASE + ["-Na", "4", "-Nb", "-2"]).simulation.crystal.n_cells == (4, 1, 1)


def test_energy_sets_the_wavelength_and_the_last_of_lambda_energy_wins():
    assert parse("-energy", "9000").simulation.beam.wavelength_A == pytest.approx(12398.42 / 9000, rel=1e-15)
    assert parse("-lambda", "1.5", "-energy", "9000").simulation.beam.wavelength_A == pytest.approx(12398.42 / 9000)
    assert parse("-energy", "9000", "-lambda", "1.5").simulation.beam.wavelength_A == 1.5
    assert parse("-energy", "9000", "-wave", "1.5").simulation.beam.wavelength_A == 1.5
    with pytest.raises(ArgumentError, match="-energy"):
        parse("-energy", "0")


def test_xtalsize_with_beam_clipping():
    """flux_beamsize_xtalsize: 0.2 um cube, beam 0.125 um clips y and z: N = (29, 16, 14)."""
    argv = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -xtalsize 0.0002 -flux 1e10 "
            "-exposure 0.1 -beamsize 0.000125 -distance 100 -detpixels 64 -pixel 0.1 -oversample 2").split()
    with pytest.warns(NanoBraggWarning, match="clipping") as caught:
        sim = parse_nanobragg_args(argv).simulation
    assert len([w for w in caught if "clipping" in str(w.message)]) == 2
    assert sim.crystal.n_cells == (29, 16, 14)
    assert sim.beam.fluence_photons_per_m2 == pytest.approx(1e10 * 0.1 / (0.125e-6) ** 2, rel=1e-15)


def test_interpolation_auto_rule_uses_the_n_flags_not_the_size():
    big = parse("-hkl", HKL, "-N", "1", "-xtalsize", "0.001").simulation
    assert min(big.crystal.n_cells) > 2 and big.geometry().interpolate
    tiny = parse("-hkl", HKL, "-N", "5", "-xtalsize", "0.000001").simulation
    assert tiny.crystal.n_cells == (1, 1, 1) and not tiny.geometry().interpolate


def test_pixel_count_rules():
    d = parse("-detsize", "10.24", "-pixel", "0.1").simulation.detector
    assert (d.fpixels, d.spixels) == (102, 102)                    # ceil(detsize/pixel - 0.5)
    d = parse("-detsize", "5", "-detpixels", "20", "-pixel", "0.1").simulation.detector
    assert (d.fpixels, d.spixels) == (20, 20)
    d = parse("-detsize_f", "3.0", "-detsize_s", "2.0", "-pixel", "0.2").simulation.detector
    assert (d.fpixels, d.spixels) == (15, 10)
    d = parse().simulation.detector
    assert (d.fpixels, d.spixels, d.pixel_mm) == (1024, 1024, 0.1)


def test_cell_with_missing_values_takes_nanobragg_defaults():
    c = parse_nanobragg_args(["-cell", "50", "-default_F", "1"]).simulation.crystal
    assert c.cell == (50.0, 50.0, 50.0, 90.0, 90.0, 90.0)
    with pytest.raises(ArgumentError, match="-cell"):
        parse_nanobragg_args(["-cell", "0", "0", "0", "90", "90", "90", "-default_F", "1"])


def test_mat_file_cell_scales_with_the_wavelength():
    """inputs/A.mat holds cell 62 71 83 84 97 103 times the wavelength 1.3 A."""
    argv = ["-mat", MAT, "-default_F", "1"]
    at_1_3 = parse_nanobragg_args(argv + ["-lambda", "1.3"]).simulation.crystal.cell
    np.testing.assert_allclose(at_1_3, (62, 71, 83, 84, 97, 103), rtol=1e-4)
    at_2_6 = parse_nanobragg_args(argv + ["-lambda", "2.6"]).simulation.crystal.cell
    np.testing.assert_allclose(at_2_6[:3], 2 * np.asarray(at_1_3[:3]), rtol=1e-12)
    np.testing.assert_allclose(at_2_6[3:], at_1_3[3:], rtol=1e-12)
    with pytest.raises(ArgumentError):
        parse_nanobragg_args(argv + ["-cell", "50", "50", "50", "90", "90", "90"])


def test_no_structure_factors_is_an_error():
    with pytest.raises(ArgumentError, match="default_F"):
        parse_nanobragg_args(["-cell", "50", "50", "50", "90", "90", "90"])


def test_flux_needs_positive_exposure_otherwise_fluence_is_used():
    b = parse("-fluence", "1e24", "-flux", "1e12", "-exposure", "0").simulation.beam
    assert b.fluence_photons_per_m2 == 1e24
    b = parse("-flux", "1e12").simulation.beam
    assert b.fluence_photons_per_m2 == pytest.approx(1e12 / (1e-4) ** 2, rel=1e-15)


def test_rng_switch():
    assert parse("-rng", "nanobragg").simulation.crystal.rng == "nanobragg"
    assert parse().simulation.crystal.rng == "numpy"
    assert parse("-nanobragg_compat").simulation.sampling.nanobragg_compat
    assert not parse().simulation.sampling.nanobragg_compat


def test_divergence_units_are_mrad_and_angles_in_degrees():
    sim = parse("-hdivrange", "2", "-phi", "30", "-mosaic", "0.5", "-mosaic_dom", "2").simulation
    assert sim.beam.hdivrange_mrad == 2.0
    assert sim.sampling.phi0_deg == 30.0
    assert sim.crystal.mosaic_spread_deg == 0.5
    assert math.isclose(sim.beam.hdivstep_mrad, 2.0)
