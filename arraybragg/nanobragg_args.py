"""nanoBragg's command line: flags to parameters, with nanoBragg's rules.

Two parsers fill the same record of what the user said (:class:`RawArgs`, flag units):
the default one matches documented flag names and an explicit alias table exactly, each
flag setting only its own parameter; the compat one (``-nanobragg_compat``) matches by
substring in nanoBragg's rule order, side effects included.  :func:`resolve` then applies
nanoBragg's automatic choices and builds a :class:`~arraybragg.simulation.Simulation`.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from .params import DEFAULT_FLUENCE_PER_M2, DEFAULT_MOSAIC_SEED, Beam, Crystal, Detector, Sampling
from .sampling_rules import (crystal_cells, mosaic_sampling, phi_sampling, range_sampling, thickness_sampling,
                             warn)

ENERGY_TIMES_WAVELENGTH = 12398.42


class ArgumentError(ValueError):
    """A command-line flag or value that cannot be used."""


@dataclass
class RawArgs:
    """What the command line said, in the flags' own units (None: not given)."""

    values: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def set(self, **kw):
        self.values.update(kw)

    def get(self, key, default=None):
        return self.values.get(key, default)


# ---------------------------------------------------------------- number parsing

def strict_float(flag, token):
    """A finite float or an ArgumentError naming the flag."""
    try:
        value = float(token)
    except (TypeError, ValueError):
        raise ArgumentError(f"{flag} expects a number, got {token!r}") from None
    if not math.isfinite(value):
        raise ArgumentError(f"{flag} expects a finite number, got {token!r}")
    return value


def strict_int(flag, token):
    """An integer or an ArgumentError naming the flag."""
    try:
        return int(token)
    except (TypeError, ValueError):
        raise ArgumentError(f"{flag} expects an integer, got {token!r}") from None


_C_FLOAT = re.compile(r"\s*[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)", re.IGNORECASE)
_C_INT = re.compile(r"\s*[+-]?\d+")


def c_atof(flag, token):
    """C's atof: the longest numeric prefix, 0 when there is none."""
    match = _C_FLOAT.match(token)
    return float(match.group(0)) if match else 0.0


def c_atoi(flag, token):
    """C's atoi: the leading integer, 0 when there is none."""
    match = _C_INT.match(token)
    return int(match.group(0)) if match else 0


@dataclass(frozen=True)
class Numbers:
    """Number readers of one parsing mode."""

    real: object
    integer: object


STRICT = Numbers(strict_float, strict_int)
C_STYLE = Numbers(c_atof, c_atoi)


def _non_negative(flag, value):
    if value < 0:
        raise ArgumentError(f"{flag} expects a value >= 0, got {value:g}")
    return value


def _positive(flag, value):
    if value <= 0:
        raise ArgumentError(f"{flag} expects a value > 0, got {value:g}")
    return value


# ---------------------------------------------------------------- actions (shared by both parsers)

def _set_real(key, check=None, pivot=None):
    def action(raw, flag, vals, num):
        value = num.real(flag, vals[0])
        raw.set(**{key: check(flag, value) if check else value})
        if pivot:
            raw.set(pivot=pivot)
    return action


def _set_int(key, check=None):
    def action(raw, flag, vals, num):
        value = num.integer(flag, vals[0])
        raw.set(**{key: check(flag, value) if check else value})
    return action


def _set_many(keys, integer=False, check=None):
    def action(raw, flag, vals, num):
        value = (num.integer if integer else num.real)(flag, vals[0])
        raw.set(**{k: check(flag, value) if check else value for k in keys})
    return action


def _set_const(**kw):
    def action(raw, flag, vals, num):
        raw.set(**kw)
    return action


def _set_output(key, value=None):
    def action(raw, flag, vals, num):
        raw.outputs[key] = vals[0] if value is None else value
    return action


def _input_file(key):
    def action(raw, flag, vals, num):
        raw.outputs[key] = os.path.abspath(vals[0])
    return action


def _output_file(key, switch):
    def action(raw, flag, vals, num):
        raw.outputs[key] = vals[0]
        raw.outputs[switch] = True
    return action


def _set_output_real(key, extra=None):
    def action(raw, flag, vals, num):
        raw.outputs[key] = num.real(flag, vals[0])
        raw.outputs.update(extra or {})
    return action


def _set_vector(key, convention="custom"):
    def action(raw, flag, vals, num):
        raw.set(**{key: tuple(num.real(flag, v) for v in vals[:3])})
        raw.set(convention=convention, convention_from_vector=flag)
    return action


def _set_seed(key):
    def action(raw, flag, vals, num):
        raw.set(**{key: -num.integer(flag, vals[0])})
    return action


def _set_engine(raw, flag, vals, num):
    from .engines import NAMES

    if vals[0] not in NAMES:
        raise ArgumentError(f"{flag} expects one of {', '.join(NAMES)}, got {vals[0]!r}")
    raw.outputs["engine"] = vals[0]


def _set_output_seed(raw, flag, vals, num):
    raw.outputs["seed"] = -num.integer(flag, vals[0])


def _set_convention(name, pivot):
    def action(raw, flag, vals, num):
        raw.set(convention=name, pivot=pivot, convention_flag=flag)
    return action


def _cell(raw, flag, vals, num):
    cell = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    for i, token in enumerate(vals[:6]):
        if token.startswith("-"):
            break
        cell[i] = num.real(flag, token)
    raw.set(cell=tuple(cell))


def _cell_strict(raw, flag, vals, num):
    values = [_positive(flag, num.real(flag, v)) for v in vals]
    if any(v >= 180.0 for v in values[3:]):
        raise ArgumentError(f"{flag} expects angles between 0 and 180 degrees, got {values[3:]}")
    raw.set(cell=tuple(values + [0.0] * (6 - len(values))))


def _misset(raw, flag, vals, num):
    if vals and "rand" in vals[0]:
        raw.set(misset_random=True)
        return
    raw.set(misset_deg=tuple(num.real(flag, v) for v in vals[:3]), misset_random=False)


def _energy(raw, flag, vals, num):
    energy = num.real(flag, vals[0])
    if energy <= 0:
        raise ArgumentError(f"{flag} expects a photon energy in eV > 0, got {energy:g}")
    raw.set(**{"lambda": ENERGY_TIMES_WAVELENGTH / energy})


def _pivot(raw, flag, vals, num):
    if "sample" in vals[0]:
        raw.set(pivot="sample")
    elif "beam" in vals[0]:
        raw.set(pivot="beam")
    elif num is STRICT:
        raise ArgumentError(f"{flag} expects 'beam' or 'sample', got {vals[0]!r}")


def _detector_abs(raw, flag, vals, num):
    token = vals[0]
    value = math.inf if "inf" in token.lower() else num.real(flag, token)
    if value == 0.0 or math.isinf(value):
        raw.set(detector_abs_off=True, detector_mu=0.0)
        if num is C_STYLE:
            raw.set(detector_thick=0.0)
    else:
        raw.set(detector_mu=1.0 / (_positive(flag, value) * 1e-6), detector_abs_off=False)


def _roi(raw, flag, vals, num):
    raw.set(roi=tuple(num.integer(flag, v) for v in vals[:4]))


def _printout_pixel(raw, flag, vals, num):
    raw.outputs["printout_pixel"] = (num.integer(flag, vals[0]), num.integer(flag, vals[1]))


def _no_effect(what):
    def action(raw, flag, vals, num):
        raw.notes.append(f"{flag} {what}")
    return action


def _sizes(*axes):
    def action(raw, flag, vals, num):
        value = _non_negative(flag, num.real(flag, vals[0]))
        raw.set(**{f"sample_{a}_mm": value for a in axes})
    return action


# flag -> (number of values, action); values of variable-length flags are handled by the action
_FLAGS = {
    "-Na": (1, _set_int("Na")), "-Nb": (1, _set_int("Nb")), "-Nc": (1, _set_int("Nc")),
    "-N": (1, _set_many(("Na", "Nb", "Nc"), integer=True)),
    "-cell": (6, None), "-misset": (3, _misset),
    "-samplesize": (1, _sizes("x", "y", "z")), "-sample_thick": (1, _sizes("x")),
    "-sample_width": (1, _sizes("y")), "-sample_height": (1, _sizes("z")),
    "-xtalsize": (1, _sizes("x", "y", "z")), "-xtal_thick": (1, _sizes("x")),
    "-xtal_width": (1, _sizes("y")), "-xtal_height": (1, _sizes("z")),
    "-density": (1, _no_effect("has no effect on the image (nanoBragg overwrites it before use)")),
    "-MW": (1, _no_effect("has no effect on the image (nanoBragg overwrites it before use)")),
    "-Xbeam": (1, _set_real("Xbeam", pivot="beam")), "-Ybeam": (1, _set_real("Ybeam", pivot="beam")),
    "-Xclose": (1, _set_real("Xclose", pivot="sample")), "-Yclose": (1, _set_real("Yclose", pivot="sample")),
    "-ORGX": (1, _set_real("ORGX", pivot="sample")), "-ORGY": (1, _set_real("ORGY", pivot="sample")),
    "-pivot": (1, _pivot),
    "-mosflm": (0, _set_convention("mosflm", "beam")), "-xds": (0, _set_convention("xds", "sample")),
    "-adxv": (0, _set_convention("adxv", "beam")), "-denzo": (0, _set_convention("denzo", "beam")),
    "-dials": (0, _set_convention("dials", "beam")),
    "-fdet_vector": (3, _set_vector("fdet_vector")), "-sdet_vector": (3, _set_vector("sdet_vector")),
    "-odet_vector": (3, _set_vector("odet_vector")), "-beam_vector": (3, _set_vector("beam_vector")),
    "-polar_vector": (3, _set_vector("polar_vector")), "-spindle_axis": (3, _set_vector("spindle_axis")),
    "-twotheta_axis": (3, _set_vector("twotheta_axis")), "-pix0_vector": (3, _set_vector("pix0_vector")),
    "-distance": (1, _set_real("distance", _positive, pivot="beam")),
    "-close_distance": (1, _set_real("close_distance", _positive, pivot="sample")),
    "-detector_abs": (1, _detector_abs),
    "-detector_thick": (1, _set_real("detector_thick", _non_negative)),
    "-detector_thicksteps": (1, _set_int("detector_thicksteps", _non_negative)),
    "-twotheta": (1, _set_real("twotheta", pivot="sample")),
    "-detector_rotx": (1, _set_real("rotx")), "-detector_roty": (1, _set_real("roty")),
    "-detector_rotz": (1, _set_real("rotz")),
    "-detsize": (1, _set_many(("detsize_f", "detsize_s"), check=_positive)),
    "-detsize_f": (1, _set_real("detsize_f", _positive)), "-detsize_s": (1, _set_real("detsize_s", _positive)),
    "-detpixels": (1, _set_many(("fpixels", "spixels"), integer=True, check=_positive)),
    "-detpixels_f": (1, _set_int("fpixels", _positive)), "-detpixels_s": (1, _set_int("spixels", _positive)),
    "-curved_det": (0, _set_const(curved=True)), "-pixel": (1, _set_real("pixel", _positive)),
    "-point_pixel": (0, _set_const(point_pixel=True)),
    "-polar": (1, _set_many(("polar",))), "-nopolar": (0, _set_const(nopolar=True)),
    "-oversample_thick": (0, _set_const(oversample_thick=True)),
    "-oversample_polar": (0, _set_const(oversample_polar=True)),
    "-oversample_omega": (0, _set_const(oversample_omega=True)),
    "-oversample": (1, _set_int("oversample", _positive)), "-roi": (4, _roi),
    "-lambda": (1, _set_real("lambda", _positive)), "-energy": (1, _energy),
    "-fluence": (1, _set_real("fluence", _non_negative)), "-flux": (1, _set_real("flux", _non_negative)),
    "-exposure": (1, _set_real("exposure", _non_negative)), "-beamsize": (1, _set_real("beamsize", _positive)),
    "-mosaic": (1, _set_real("mosaic", _non_negative)), "-mosaic_dom": (1, _set_int("mosaic_dom", _non_negative)),
    "-dispersion": (1, _set_real("dispersion", _non_negative)), "-dispsteps": (1, _set_int("dispsteps", _non_negative)),
    "-divergence": (1, _set_many(("hdivrange", "vdivrange"), check=_non_negative)),
    "-hdivrange": (1, _set_real("hdivrange", _non_negative)), "-vdivrange": (1, _set_real("vdivrange", _non_negative)),
    "-hdivstep": (1, _set_real("hdivstep", _non_negative)), "-vdivstep": (1, _set_real("vdivstep", _non_negative)),
    "-hdivsteps": (1, _set_int("hdivsteps", _non_negative)), "-vdivsteps": (1, _set_int("vdivsteps", _non_negative)),
    "-divsteps": (1, _set_many(("hdivsteps", "vdivsteps"), integer=True, check=_non_negative)),
    "-round_div": (0, _set_const(round_div=True)), "-square_div": (0, _set_const(round_div=False)),
    "-adc": (1, _set_output_real("adc")),
    "-phi": (1, _set_real("phi")), "-osc": (1, _set_real("osc", _non_negative)),
    "-phistep": (1, _set_real("phistep", _non_negative)), "-phisteps": (1, _set_int("phisteps", _non_negative)),
    "-dmin": (1, _set_real("dmin", _non_negative)),
    "-mat": (1, _input_file("mat")), "-hkl": (1, _input_file("hkl")),
    "-default_F": (1, _set_real("default_F")), "-dump": (1, _input_file("dump")),
    "-img": (1, _set_output("img")), "-mask": (1, _set_output("mask")),
    "-stol": (1, _no_effect("is read by nanoBragg but has no effect on its image; ignored")),
    "-4stol": (1, _no_effect("is read by nanoBragg but has no effect on its image; ignored")),
    "-Q": (1, _no_effect("is read by nanoBragg but has no effect on its image; ignored")),
    "-stolout": (1, _no_effect("names a file nanoBragg never writes; ignored")),
    "-sourcefile": (1, _input_file("sourcefile")),
    "-floatfile": (1, _set_output("floatfile")), "-intfile": (1, _set_output("intfile")),
    "-pgmfile": (1, _output_file("pgmfile", "write_pgm")), "-noisefile": (1, _output_file("noisefile", "write_noise")),
    "-nonoise": (0, _set_output("write_noise", False)), "-nopgm": (0, _set_output("write_pgm", False)),
    "-scale": (1, _set_output_real("scale")), "-pgmscale": (1, _set_output_real("pgmscale", {"write_pgm": True})),
    "-coherent": (0, _no_effect("has no effect on nanoBragg's image; ignored")),
    "-printout": (0, _set_output("printout", True)), "-noprogress": (0, _set_output("progress", False)),
    "-progress": (0, _set_output("progress", True)),
    "-interpolate": (0, _set_const(interpolate=True)), "-nointerpolate": (0, _set_const(interpolate=False)),
    "-round_xtal": (0, _set_const(shape="round")), "-square_xtal": (0, _set_const(shape="square")),
    "-gauss_xtal": (0, _set_const(shape="gauss")), "-tophat_spots": (0, _set_const(shape="tophat")),
    "-fudge": (1, _set_real("fudge", _positive)), "-printout_pixel": (2, _printout_pixel),
    "-seed": (1, _set_output_seed), "-mosaic_seed": (1, _set_seed("mosaic_seed")),
    "-misset_seed": (1, _set_seed("misset_seed")), "-water": (1, _set_real("water", _non_negative)),
    "-params_out": (1, _set_output("params_out")), "-engine": (1, _set_engine),
}

ALIASES = {
    "-wave": "-lambda", "-floatimage": "-floatfile", "-intimage": "-intfile", "-pgmimage": "-pgmfile",
    "-noiseimage": "-noisefile", "-thicksteps": "-detector_thicksteps", "-binary_spots": "-tophat_spots",
    "-mosaic_domains": "-mosaic_dom", "-detector_absorb": "-detector_abs", "-xtal_size": "-xtalsize",
    "-sample_size": "-samplesize", "-detpixels_x": "-detpixels_f", "-detpixels_y": "-detpixels_s",
    "-mosaic_spread": "-mosaic", "-mosaicity": "-mosaic", "-sample_x": "-sample_thick", "-sample_y": "-sample_width",
    "-sample_z": "-sample_height", "-xtal_x": "-xtal_thick", "-xtal_y": "-xtal_width", "-xtal_z": "-xtal_height",
    "-molecular_weight": "-MW", "-sample_density": "-density",
}


def flag_names():
    """Every flag the default parser accepts (documented names and aliases)."""
    return sorted(set(_FLAGS) | set(ALIASES) | {"-rng", "-nanobragg_compat"})


def _own_switches(argv):
    """Pull out arraybragg's own switches (-rng NAME, -nanobragg_compat) wherever they are."""
    rest, rng, compat = [], "numpy", False
    i = 0
    while i < len(argv):
        if argv[i] == "-rng":
            if i + 1 >= len(argv) or argv[i + 1] not in ("numpy", "nanobragg"):
                raise ArgumentError("-rng expects 'numpy' or 'nanobragg'")
            rng, i = argv[i + 1], i + 2
            continue
        if argv[i] == "-nanobragg_compat":
            compat, i = True, i + 1
            continue
        rest.append(argv[i])
        i += 1
    return rest, rng, compat


def parse_default(argv, raw=None):
    """Exact-name parser: every token is a known flag followed by its values."""
    raw = RawArgs() if raw is None else raw
    i = 0
    while i < len(argv):
        flag = argv[i]
        name = ALIASES.get(flag, flag)
        if name not in _FLAGS:
            raise ArgumentError(f"unknown flag {flag!r} (see docs/nanobragg.md for the accepted flags)")
        count, action = _FLAGS[name]
        vals = argv[i + 1:i + 1 + count]
        if name == "-cell":
            vals = _leading_numbers(vals)
            count, action = max(len(vals), 1), _cell_strict
        elif name == "-misset" and vals and "rand" in vals[0]:
            vals, count = vals[:1], 1
        if len(vals) < count:
            raise ArgumentError(f"{flag} expects {count} value{'s' if count > 1 else ''}")
        action(raw, flag, vals, STRICT)
        i += 1 + len(vals)
    return raw


def _leading_numbers(tokens):
    out = []
    for token in tokens:
        try:
            float(token)
        except ValueError:
            break
        out.append(token)
    return out


# ---------------------------------------------------------------- compat (substring) parser

def _rule(patterns, need, action, kind="sub", length=None, stop=False):
    return (tuple(patterns), need, action, kind, length, stop)


_COMPAT_RULES = [
    _rule(["-Na"], 1, _set_int("Na"), stop=True), _rule(["-Nb"], 1, _set_int("Nb"), stop=True),
    _rule(["-Nc"], 1, _set_int("Nc"), stop=True),
    _rule(["-N"], 1, _set_many(("Na", "Nb", "Nc"), integer=True), kind="exact", stop=True),
    _rule(["-cell"], 1, _cell),
    _rule(["-misset"], 1, _misset, kind="misset_random", stop=True),
    _rule(["-misset"], 3, _misset),
    _rule(["-samplesize", "-sample_size"], 1, _sizes("x", "y", "z")),
    _rule(["-sample_thick", "-sample_x"], 1, _sizes("x")),
    _rule(["-sample_width", "-sample_y", "-width"], 1, _sizes("y")),
    _rule(["-sample_heigh", "-sample_z", "-heigh"], 1, _sizes("z")),
    _rule(["-xtalsize", "-xtal_size"], 1, _sizes("x", "y", "z")),
    _rule(["-xtal_thick", "-xtal_x"], 1, _sizes("x")),
    _rule(["-xtal_width", "-xtal_y", "-width"], 1, _sizes("y")),
    _rule(["-xtal_heigh", "-xtal_z", "-heigh"], 1, _sizes("z")),
    _rule(["-density", "-sample_den"], 1, _no_effect("has no effect on the image")),
    _rule(["-molec"], 1, _no_effect("has no effect on the image")),
    _rule(["-MW"], 1, _no_effect("has no effect on the image"), kind="exact"),
    _rule(["-Xbeam"], 1, _set_real("Xbeam", pivot="beam")), _rule(["-Ybeam"], 1, _set_real("Ybeam", pivot="beam")),
    _rule(["-Xclose"], 1, _set_real("Xclose", pivot="sample")),
    _rule(["-Yclose"], 1, _set_real("Yclose", pivot="sample")),
    _rule(["-ORGX"], 1, _set_real("ORGX", pivot="sample")), _rule(["-ORGY"], 1, _set_real("ORGY", pivot="sample")),
    _rule(["-pivot"], 1, _pivot),
    _rule(["-mosflm"], 0, _set_convention("mosflm", "beam")), _rule(["-xds"], 0, _set_convention("xds", "sample")),
    _rule(["-adxv"], 0, _set_convention("adxv", "beam")), _rule(["-denzo"], 0, _set_convention("denzo", "beam")),
    _rule(["-dials"], 0, _set_convention("dials", "beam")),
] + [_rule([f], 3, _set_vector(f[1:])) for f in ("-fdet_vector", "-sdet_vector", "-odet_vector", "-beam_vector",
                                                  "-polar_vector", "-spindle_axis", "-twotheta_axis", "-pix0_vector")] + [
    _rule(["-distance"], 1, _set_real("distance", pivot="beam")),
    _rule(["-close_distance"], 1, _set_real("close_distance", pivot="sample")),
    _rule(["-detector_abs"], 1, _detector_abs),
    _rule(["-detector_thick"], 1, _set_real("detector_thick"), kind="len", length=15),
    _rule(["-detector_thicksteps"], 1, _set_int("detector_thicksteps")),
    _rule(["-thicksteps"], 1, _set_int("detector_thicksteps")),
    _rule(["-twotheta"], 1, _set_real("twotheta", pivot="sample")),
    _rule(["-detector_rotx"], 1, _set_real("rotx")), _rule(["-detector_roty"], 1, _set_real("roty")),
    _rule(["-detector_rotz"], 1, _set_real("rotz")),
    _rule(["-detsize"], 1, _set_many(("detsize_f", "detsize_s")), kind="len", length=8),
    _rule(["-detsize_f"], 1, _set_real("detsize_f")), _rule(["-detsize_s"], 1, _set_real("detsize_s")),
    _rule(["-detpixels"], 1, _set_many(("fpixels", "spixels"), integer=True), kind="len", length=10),
    _rule(["-detpixels_f", "-detpixels_x"], 1, _set_int("fpixels")),
    _rule(["-detpixels_s", "-detpixels_y"], 1, _set_int("spixels")),
    _rule(["-curved_det"], 1, _set_const(curved=True)), _rule(["-pixel"], 1, _set_real("pixel")),
    _rule(["-point_pixel"], 0, _set_const(point_pixel=True)),
    _rule(["-polar"], 1, lambda raw, f, v, n: raw.set(polar=n.real(f, v[0]), nopolar=False), kind="len", length=6),
    _rule(["-nopolar"], 0, _set_const(nopolar=True)),
    _rule(["-oversample_thick"], 0, _set_const(oversample_thick=True), stop=True),
    _rule(["-oversample_polar"], 0, _set_const(oversample_polar=True), stop=True),
    _rule(["-oversample_omega"], 0, _set_const(oversample_omega=True), stop=True),
    _rule(["-oversample"], 1, _set_int("oversample")), _rule(["-roi"], 4, _roi),
    _rule(["-lambda", "-wave"], 1, _set_real("lambda")), _rule(["-energy"], 1, _energy),
    _rule(["-fluence"], 1, _set_real("fluence")), _rule(["-flux"], 1, _set_real("flux")),
    _rule(["-exposure"], 1, _set_real("exposure")), _rule(["-beamsize"], 1, _set_real("beamsize")),
    _rule(["-mosaic"], 1, _set_real("mosaic"), kind="mosaic"),
    _rule(["-mosaic_dom"], 1, _set_int("mosaic_dom")),
    _rule(["-dispersion"], 1, _set_real("dispersion")), _rule(["-dispsteps"], 1, _set_int("dispsteps")),
    _rule(["-divergence"], 1, _set_many(("hdivrange", "vdivrange"))),
    _rule(["-hdivrange"], 1, _set_real("hdivrange")), _rule(["-vdivrange"], 1, _set_real("vdivrange")),
    _rule(["-hdivstep"], 1, _set_real("hdivstep"), kind="len", length=9),
    _rule(["-hdivsteps"], 1, _set_int("hdivsteps")),
    _rule(["-vdivstep"], 1, _set_real("vdivstep"), kind="len", length=9),
    _rule(["-vdivsteps"], 1, _set_int("vdivsteps")),
    _rule(["-divsteps"], 1, _set_many(("hdivsteps", "vdivsteps"), integer=True)),
    _rule(["-round_div"], 0, _set_const(round_div=True)), _rule(["-square_div"], 0, _set_const(round_div=False)),
    _rule(["-adc"], 1, _set_output_real("adc")),
    _rule(["-phi"], 1, _set_real("phi"), kind="len", length=4), _rule(["-osc"], 1, _set_real("osc")),
    _rule(["-phistep"], 1, _set_real("phistep"), kind="len", length=8),
    _rule(["-phisteps"], 1, _set_int("phisteps")), _rule(["-dmin"], 1, _set_real("dmin")),
    _rule(["-mat"], 1, _input_file("mat")), _rule(["-hkl"], 1, _input_file("hkl")),
    _rule(["-default_F"], 1, _set_real("default_F")), _rule(["-dump"], 1, _input_file("dump")),
    _rule(["-img"], 1, _set_output("img")), _rule(["-mask"], 1, _set_output("mask")),
    _rule(["-sourcefile"], 1, _input_file("sourcefile")),
    _rule(["-stolout"], 1, _FLAGS["-stolout"][1], kind="longer", length=7),
    _rule(["-stol"], 1, _FLAGS["-stol"][1], kind="len", length=5),
    _rule(["-4stol"], 1, _FLAGS["-4stol"][1], kind="len", length=6),
    _rule(["-Q"], 1, _FLAGS["-Q"][1], kind="len", length=2),
    _rule(["-floatfile", "-floatimage"], 1, _set_output("floatfile")),
    _rule(["-intfile", "-intimage"], 1, _set_output("intfile")),
    _rule(["-pgmfile", "-pgmimage"], 1, _output_file("pgmfile", "write_pgm")),
    _rule(["-noisefile", "-noiseimage"], 1, _output_file("noisefile", "write_noise")),
    _rule(["-nonoise"], 0, _set_output("write_noise", False)), _rule(["-nopgm"], 0, _set_output("write_pgm", False)),
    _rule(["-scale"], 1, _set_output_real("scale")),
    _rule(["-pgmscale"], 1, _set_output_real("pgmscale", {"write_pgm": True})),
    _rule(["-coherent"], 0, _FLAGS["-coherent"][1]), _rule(["-printout"], 0, _set_output("printout", True)),
    _rule(["-noprogress"], 0, _set_output("progress", False)), _rule(["-progress"], 0, _set_output("progress", True)),
    _rule(["-interpolate"], 0, _set_const(interpolate=True)),
    _rule(["-nointerpolate"], 0, _set_const(interpolate=False)),
    _rule(["-round_xtal"], 0, _set_const(shape="round")), _rule(["-square_xtal"], 0, _set_const(shape="square")),
    _rule(["-gauss_xtal"], 0, _set_const(shape="gauss")),
    _rule(["-binary_spots", "-tophat_spots"], 0, _set_const(shape="tophat")),
    _rule(["-fudge"], 1, _set_real("fudge")), _rule(["-printout_pixel"], 2, _printout_pixel),
    _rule(["-seed"], 1, _set_output_seed), _rule(["-mosaic_seed"], 1, _set_seed("mosaic_seed")),
    _rule(["-misset_seed"], 1, _set_seed("misset_seed")), _rule(["-water"], 1, _set_real("water")),
    _rule(["-params_out"], 1, _set_output("params_out"), kind="exact"),
    _rule(["-engine"], 1, _set_engine, kind="exact"),
]


def _compat_matches(token, patterns, kind, length, following):
    if kind == "misset_random":
        return "-misset" in token and "rand" in following[0]
    if kind == "exact":
        return token in patterns
    if kind == "len":
        return len(token) == length and any(p in token for p in patterns)
    if kind == "longer":
        return len(token) > length and any(p in token for p in patterns)
    if kind == "mosaic":
        return (len(token) == 7 and "-mosaic" in token) or "-mosaici" in token or "-mosaic_spr" in token
    return any(p in token for p in patterns)


def parse_compat(argv, raw=None):
    """nanoBragg's own parsing: every token starting with '-' runs every rule it contains."""
    raw = RawArgs() if raw is None else raw
    for i, token in enumerate(argv):
        if not token.startswith("-"):
            continue
        for patterns, need, action, kind, length, stop in _COMPAT_RULES:
            if len(argv) <= i + need or not _compat_matches(token, patterns, kind, length, argv[i + 1:]):
                continue
            action(raw, token, argv[i + 1:i + 1 + (6 if patterns == ("-cell",) else need)], C_STYLE)
            if stop:
                break
    return raw


@dataclass(frozen=True)
class Parsed:
    """A parsed command line: the simulation, output requests and notes for the user."""

    simulation: object
    outputs: dict
    notes: tuple


def parse_nanobragg_args(argv):
    """Parse nanoBragg flags (plus -rng, -nanobragg_compat, -params_out) into a :class:`Parsed`."""
    argv = [str(a) for a in argv]
    rest, rng, compat = _own_switches(argv)
    raw = RawArgs()
    for path, is_mask in _header_files(rest, compat):
        apply_smv_header(raw, path, is_mask, compat)
    raw = parse_compat(rest, raw) if compat else parse_default(rest, raw)
    simulation = resolve(raw, rng=rng, compat=compat)
    return Parsed(simulation, dict(raw.outputs), tuple(raw.notes))


def from_nanobragg_args(argv):
    """The :class:`~arraybragg.simulation.Simulation` a nanoBragg command line describes."""
    return parse_nanobragg_args(argv).simulation


# ---------------------------------------------------------------- resolution

def _crystal_orientation(raw, wavelength_A):
    """(cell, u_matrix, cell_model) from -cell or -mat."""
    from .cell import orientation_from_reciprocal_matrix
    from .textinputs import read_mosflm_matrix

    mat = raw.outputs.get("mat")
    cell = raw.get("cell")
    if mat is not None and cell is not None:
        raise ArgumentError("give either -cell or -mat, not both")
    if mat is not None:
        b_star = read_mosflm_matrix(mat) / wavelength_A
        cell, u = orientation_from_reciprocal_matrix(b_star)
        return tuple(float(v) for v in cell), np.asarray(u), "exact"
    if cell is None:
        raise ArgumentError("no crystal: give -cell a b c alpha beta gamma or -mat FILE")
    a, b, c, alpha, beta, gamma = cell
    if a <= 0:
        raise ArgumentError(f"-cell expects a cell edge a > 0, got {a:g}")
    b = b if b > 0 else a
    c = c if c > 0 else a
    angles = [x if x > 0 else 90.0 for x in (alpha, beta, gamma)]
    return (a, b, c, *angles), np.eye(3), "nanobragg"


def _structure_factors(raw, compat):
    """(table, path, format): -hkl, else the Fdump cache -dump names (compat: Fdump.bin if it exists).

    Records in raw.outputs['fdump_write'] where the cache is to be written: the -dump file
    when -hkl is read (compat: always, default name Fdump.bin).
    """
    from .hkl import read_fdump, read_hkl

    hkl_path = raw.outputs.get("hkl")
    dump = raw.outputs.get("dump", "Fdump.bin" if compat else None)
    if hkl_path is not None:
        if dump is not None:
            raw.outputs["fdump_write"] = dump
        return read_hkl(hkl_path, compat=compat), hkl_path, "hkl"
    if dump is not None and (not compat or os.path.exists(dump)):
        return read_fdump(dump, compat=compat), dump, "fdump"
    return None, None, None


_HEADER_KEYS = (("PIXEL_SIZE", "pixel"), ("DISTANCE", "distance"), ("CLOSE_DISTANCE", "close_distance"),
                ("WAVELENGTH", "lambda"), ("BEAM_CENTER_X", "Xbeam"), ("BEAM_CENTER_Y", "Ybeam"),
                ("ORGX", "ORGX"), ("ORGY", "ORGY"), ("PHI", "phi"), ("OSC_RANGE", "osc"))


def apply_smv_header(raw, path, is_mask, compat):
    """Start values from an SMV header (-img, -mask) as nanoBragg reads them; flags override.

    Size, pixel, distances, wavelength, beam centre (a mask's Y as detector size minus the
    value), XDS origin, phi and oscillation; a mask also selects the pixels to render.
    """
    from .smv import header_value, read_smv

    header, data = read_smv(path)
    spixels, fpixels = data.shape
    raw.set(fpixels=fpixels, spixels=spixels)
    for key, name in _HEADER_KEYS:
        value = header_value(header, key, compat=compat)
        if value is None:
            continue
        if name == "Ybeam" and is_mask:
            value = raw.get("pixel", 0.1) * spixels - value
        raw.set(**{name: value})
    if is_mask:
        raw.set(mask=data != 0)


def _header_files(argv, compat):
    """The -mask and -img paths (nanoBragg reads the mask first, so the image header wins)."""
    found = {}
    for i, token in enumerate(argv[:-1]):
        for name in ("-mask", "-img"):
            if (name in token if compat else token == name) and token.startswith("-"):
                found[name] = argv[i + 1]
    return [(found[name], name == "-mask") for name in ("-mask", "-img") if name in found]


def _n_cells(raw, edges_m, beam_size_m):
    n = [raw.get(k, 1) for k in ("Na", "Nb", "Nc")]
    sizes = [raw.get(f"sample_{a}_mm") for a in "xyz"]
    sizes = [None if s is None else s * 1e-3 for s in sizes]
    for axis in (1, 2):
        if beam_size_m is not None and sizes[axis] is not None and beam_size_m < sizes[axis]:
            warn(f"clipping sample ({sizes[axis]:g} m) with beam ({beam_size_m:g} m)")
            sizes[axis] = beam_size_m
    return crystal_cells(n, sizes, edges_m)


def _fluence(raw):
    flux, exposure = raw.get("flux", 0.0), raw.get("exposure", 1.0)
    beamsize_m = raw.get("beamsize", 0.1) * 1e-3
    if flux != 0.0 and exposure > 0.0:
        return flux * exposure / beamsize_m**2
    return raw.get("fluence", DEFAULT_FLUENCE_PER_M2)


def _convention(raw, compat):
    convention = raw.get("convention", "mosflm")
    explicit = raw.get("convention_flag")
    vector = raw.get("convention_from_vector")
    if not compat and explicit is not None and vector is not None:
        raise ArgumentError(f"{vector} selects the CUSTOM convention; it cannot be combined with {explicit}")
    if not compat and vector is not None:
        convention = "custom"
    if raw.get("pix0_vector") is not None:
        warn("-pix0_vector is accepted but ignored: the origin is computed (only the CUSTOM convention is kept)")
    return convention


def _detector(raw, compat):
    pixel = raw.get("pixel", 0.1)
    fpixels, spixels = raw.get("fpixels"), raw.get("spixels")
    detsize_f, detsize_s = raw.get("detsize_f", 102.4), raw.get("detsize_s", 102.4)
    if fpixels:
        detsize_f = pixel * fpixels
    if spixels:
        detsize_s = pixel * spixels
    fpixels = math.ceil(detsize_f / pixel - 0.5)
    spixels = math.ceil(detsize_s / pixel - 0.5)
    thick_um = raw.get("detector_thick", 0.0)
    if raw.get("detector_abs_off") and not compat:
        thick_um = 0.0
    thick, step, steps = thickness_sampling(thick_um, raw.get("detector_thicksteps"))
    mu = raw.get("detector_mu")
    attenuation = None if (mu is None or mu <= 0.0) else 1e6 / mu
    if thick > 0.0 and mu == 0.0:
        warn("-detector_abs inf/0 given before -detector_thick: the capture fraction is 0 (nanoBragg's order effect)")
        attenuation = math.inf
    convention = _convention(raw, compat)
    return Detector(
        fpixels=fpixels, spixels=spixels, pixel_mm=pixel,
        detsize_f_mm=None if abs(detsize_f - pixel * fpixels) == 0.0 else detsize_f,
        detsize_s_mm=None if abs(detsize_s - pixel * spixels) == 0.0 else detsize_s,
        convention=convention, distance_mm=raw.get("distance", 100.0), close_distance_mm=raw.get("close_distance"),
        xbeam_mm=raw.get("Xbeam"), ybeam_mm=raw.get("Ybeam"), xclose_mm=raw.get("Xclose"),
        yclose_mm=raw.get("Yclose"), orgx_px=raw.get("ORGX"), orgy_px=raw.get("ORGY"),
        pivot=raw.get("pivot") if convention == "custom" else None,
        detector_rot_deg=(raw.get("rotx", 0.0), raw.get("roty", 0.0), raw.get("rotz", 0.0)),
        twotheta_deg=raw.get("twotheta", 0.0),
        twotheta_axis=raw.get("twotheta_axis") if convention == "custom" else None,
        **{name: raw.get(name) if convention == "custom" else None
           for name in ("fdet_vector", "sdet_vector", "odet_vector")},
        curved_detector=raw.get("curved", False), point_pixel=raw.get("point_pixel", False),
        detector_thick_um=thick, detector_thickstep_um=step, detector_thicksteps=steps,
        detector_attenuation_um=attenuation if thick > 0 else None)


def _beam(raw, wavelength_A, fluence, compat):
    from .textinputs import read_source_file

    hdiv = range_sampling(raw.get("hdivrange"), raw.get("hdivstep"), raw.get("hdivsteps"), unset_range=1000.0)
    vdiv = range_sampling(raw.get("vdivrange"), raw.get("vdivstep"), raw.get("vdivsteps"), unset_range=1000.0)
    disp, _, dispsteps = range_sampling(raw.get("dispersion", 0.0), None, raw.get("dispsteps"), unset_range=100.0)
    source_path = raw.outputs.get("sourcefile")
    sources = None
    if source_path is not None:
        sources = [tuple(None if math.isnan(v) else v for v in row)
                   for row in read_source_file(source_path, compat=compat).tolist()]
    return Beam(
        wavelength_A=wavelength_A, fluence_photons_per_m2=fluence, kahn_factor=raw.get("polar", 0.0),
        nopolar=raw.get("nopolar", False), beam_vector=raw.get("beam_vector"), polar_vector=raw.get("polar_vector"),
        dispersion_pct=disp, dispsteps=dispsteps, hdivrange_mrad=hdiv[0], hdivstep_mrad=hdiv[1], hdivsteps=hdiv[2],
        vdivrange_mrad=vdiv[0], vdivstep_mrad=vdiv[1], vdivsteps=vdiv[2], round_div=raw.get("round_div", True),
        sources=sources, source_path=source_path, water_um=raw.get("water", 0.0))


def _sampling(raw, compat):
    osc, step, steps = phi_sampling(raw.get("osc"), raw.get("phistep"), raw.get("phisteps"))
    if steps < 1:
        raise ArgumentError(f"-osc {osc:g} with -phistep {step:g} gives no phi step")
    roi = raw.get("roi")
    if roi is not None:
        defaults = (0, raw.get("fpixels_final"), 0, raw.get("spixels_final"))
        roi = tuple(d if v < 0 else v for v, d in zip(roi, defaults))
    return Sampling(
        phi0_deg=raw.get("phi", 0.0), phistep_deg=step, phisteps=steps, osc_deg=osc,
        spindle_axis=raw.get("spindle_axis"), oversample=raw.get("oversample"),
        oversample_omega=raw.get("oversample_omega", False), oversample_polar=raw.get("oversample_polar", False),
        oversample_thick=raw.get("oversample_thick", False), roi=roi, dmin_A=raw.get("dmin", 0.0),
        mask=raw.get("mask"), nanobragg_compat=compat)


def resolve(raw, rng="numpy", compat=False):
    """Apply nanoBragg's rules to what the user said and build the Simulation."""
    from .orientation import entropy_seed
    from .simulation import Simulation

    wavelength_A = raw.get("lambda", 1.0)
    cell, u, cell_model = _crystal_orientation(raw, wavelength_A)
    hkl, hkl_path, hkl_format = _structure_factors(raw, compat)
    default_F = raw.get("default_F", 0.0)
    if hkl is None and default_F == 0.0:
        raise ArgumentError("no structure factors: give -hkl FILE or a non-zero -default_F")
    edges_m = [v * 1e-10 for v in cell[:3]]
    n_raw = [raw.get(k, 1) for k in ("Na", "Nb", "Nc")]
    interpolate = raw.get("interpolate")
    if interpolate is None:
        interpolate = min(n_raw) <= 2
    n_cells = _n_cells(raw, edges_m, raw.get("beamsize", 0.1) * 1e-3)
    spread, domains = mosaic_sampling(raw.get("mosaic"), raw.get("mosaic_dom"))
    misset_random = raw.get("misset_random", False)
    misset_seed = raw.get("misset_seed")
    if misset_random and misset_seed is None:
        misset_seed = -entropy_seed()
        warn(f"random misset seed taken from the system: -misset_seed {-misset_seed}")
    crystal = Crystal(
        cell=cell, cell_model=cell_model, u_matrix=tuple(map(tuple, u)), misset_deg=raw.get("misset_deg", (0.0, 0.0, 0.0)),
        n_cells=n_cells, shape=raw.get("shape", "square"), fudge=raw.get("fudge", 1.0), default_F=default_F,
        hkl=hkl, hkl_path=hkl_path, hkl_format=hkl_format, interpolate=bool(interpolate) and hkl is not None,
        mosaic_spread_deg=spread, mosaic_domains=domains, mosaic_seed=raw.get("mosaic_seed", DEFAULT_MOSAIC_SEED),
        misset_seed=misset_seed, misset_random=misset_random, rng=rng)
    detector = _detector(raw, compat)
    raw.set(fpixels_final=detector.fpixels, spixels_final=detector.spixels)
    if detector.convention != "custom":
        raw.set(beam_vector=None, polar_vector=None, spindle_axis=None)
    beam = _beam(raw, wavelength_A, _fluence(raw), compat)
    return Simulation(crystal=crystal, beam=beam, detector=detector, sampling=_sampling(raw, compat))
