"""The ``arraybragg`` command: nanoBragg's flags, nanoBragg's image files.

Errors are one line on stderr and a non-zero exit; outputs are written atomically, so a failed
run leaves no half-written file.
"""
from __future__ import annotations

import json
import math
import sys
import warnings

import numpy as np

from . import __version__
from .atomic import atomic_output
from .engine import count_pixels
from .engines import select_engine
from .nanobragg_args import ArgumentError, parse_nanobragg_args
from .outputs import noise_seed, write_outputs
from .sampling_rules import NanoBraggWarning

USAGE = """usage: arraybragg -cell a b c alpha beta gamma | -mat FILE  (-hkl FILE | -default_F F) [nanoBragg flags]
       arraybragg --version
Renders a diffraction image with nanoBragg's physics and writes nanoBragg's files (floatimage.bin,
intimage.img, image.pgm, noiseimage.img unless renamed or switched off with -nopgm / -nonoise).
Every nanoBragg flag and its aliases are listed in docs/nanobragg.md; our own: -rng numpy|nanobragg,
-nanobragg_compat (reproduce nanoBragg's defects), -params_out FILE (effective parameters as JSON),
-engine array|numba|auto (default auto: the fused numba kernels when installed)."""


def write_params(path, simulation, noise_seed=None):
    """The effective parameters as JSON (``Simulation.to_dict()``, plus the stored noise seed
    when a noise image is written), atomically."""
    data = simulation.to_dict()
    if noise_seed is not None:
        data["noise_seed"] = noise_seed
    with atomic_output(path, mode="w") as handle:
        json.dump(data, handle, indent=1)
        handle.write("\n")


def summary_lines(simulation, geometry):
    """The derived quantities nanoBragg prints before rendering."""
    c, b, d, s = simulation.crystal, simulation.beam, simulation.detector, simulation.sampling
    f = geometry.frame
    vec = " ".join
    lines = [
        f"{f.pivot} pivot, {d.convention} convention",
        "Unit Cell: " + " ".join(f"{v:g}" for v in c.cell),
        f"crystal: {c.n_cells[0]}x{c.n_cells[1]}x{c.n_cells[2]} cells, {c.shape} shape",
        f"  {geometry.sources} sources",
        f"  {c.mosaic_domains} mosaic domains over mosaic spread of {c.mosaic_spread_deg:g} degrees",
        f"  {s.phisteps} phi steps from {s.phi0_deg:g} to {s.phi0_deg + s.osc_deg:g} degrees",
        f"  {geometry.oversample}x{geometry.oversample} pixel oversample steps",
        f"  {d.detector_thicksteps} detector layers, {geometry.steps} steps",
        f"  wave={b.wavelength_A * 1e-10:g} meters, fluence={b.fluence_photons_per_m2:g} photons/m^2",
        f"  distance={f.distance_m:g} detsize={f.detsize_f_m:g}x{f.detsize_s_m:g}  pixel={d.pixel_mm * 1e-3:g} "
        f"meters ({d.fpixels}x{d.spixels} pixels)",
        f"  Xbeam={f.xbeam_m:g} Ybeam={f.ybeam_m:g}",
        f"  Fbeam={f.fbeam_m:g} Sbeam={f.sbeam_m:g}",
        f"  Xclose={f.xclose_m:g} Yclose={f.yclose_m:g}",
        f"  Fclose={f.fclose_m:g} Sclose={f.sclose_m:g}",
        f"  ORGX={f.orgx_px:g} ORGY={f.orgy_px:g} close_distance={f.close_distance_m:g}",
        "  DIRECTION_OF_DETECTOR_X-AXIS= " + vec(f"{v:g}" for v in f.fdet),
        "  DIRECTION_OF_DETECTOR_Y-AXIS= " + vec(f"{v:g}" for v in f.sdet),
        "  DIRECTION_OF_DETECTOR_Z-AXIS= " + vec(f"{v:g}" for v in f.odet),
        "  INCIDENT_BEAM_DIRECTION= " + vec(f"{v:g}" for v in f.beam),
        "  spindle ROTATION_AXIS= " + vec(f"{v:g}" for v in f.spindle),
        "  dials origin= " + vec(f"{v:g}" for v in f.dials_origin_mm),
    ]
    if c.misset_random:
        lines.append("random orientation misset angles: "
                     + " ".join(f"{math.degrees(v):f}" for v in geometry.misset_rad) + " deg")
    if geometry.oversample < geometry.recommended_oversample:
        lines.append(f"WARNING: recommend -oversample {geometry.recommended_oversample}")
    return lines


def progress_bar(total, enabled):
    """A tqdm bar on stderr that appears only for renders longer than a few seconds."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="pixel", delay=3.0, file=sys.stderr, leave=False)


def printout(image, outputs, out):
    """-printout / -printout_pixel: pixel values on the console."""
    if "printout_pixel" in outputs:
        fast, slow = outputs["printout_pixel"]
        print(f"{fast:4d} {slow:4d} : {image[slow, fast]:.10g}", file=out)
    elif outputs.get("printout"):
        for (slow, fast), value in np.ndenumerate(image):
            if value != 0.0:
                print(f"{fast:4d} {slow:4d} : {value:.10g}", file=out)


def run(argv, out=sys.stdout):
    """Parse, render and write every output file; returns the rendered image (NumPy)."""
    parsed = parse_nanobragg_args(argv)
    simulation = parsed.simulation
    for note in parsed.notes:
        print(f"WARNING: {note}", file=out)
    geometry = simulation.geometry()
    for line in summary_lines(simulation, geometry):
        print(line, file=out)
    inputs = simulation.engine_inputs(geometry=geometry)
    chosen = select_engine(parsed.outputs.get("engine", "auto"), np)
    print(f"  {chosen.name} engine", file=out)
    bar = progress_bar(count_pixels(inputs), parsed.outputs.get("progress", True))
    image = np.asarray(chosen.render(inputs, progress=bar.update if bar is not None else None))
    if bar is not None:
        bar.close()
    printout(image, parsed.outputs, out)
    options = dict(parsed.outputs)
    if options.get("write_noise", True):
        options["seed"] = noise_seed(options, out)
    write_outputs(simulation, geometry, image, options, out)
    if "params_out" in options:
        write_params(options["params_out"], simulation, options.get("seed"))
        print(f"writing {options['params_out']} (effective parameters)", file=out)
    return image


def main(argv=None):
    """Console entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("--version", "-version") for a in argv):
        print(f"arraybragg {__version__}")
        return 0
    if not argv or any(a in ("-h", "--help", "-help") for a in argv):
        print(USAGE)
        return 0 if argv else 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NanoBraggWarning)
        try:
            run(argv)
        except (ArgumentError, ValueError, OSError) as err:
            _print_warnings(caught)
            print(f"arraybragg: error: {err}", file=sys.stderr)
            return 2
    _print_warnings(caught)
    return 0


def _print_warnings(caught):
    for item in caught:
        print(f"WARNING: {item.message}", file=sys.stderr)
