"""The files a nanoBragg run writes: float image, SMV integer and noise images, PGM, statistics.

:func:`write_outputs` takes the rendered image, the simulation and the output requests of a
command line and writes every file atomically, printing what nanoBragg prints about them.
"""
from __future__ import annotations

import numpy as np

from .atomic import atomic_output
from .hkl import write_fdump
from .noise import noise_image
from .orientation import entropy_seed
from .pgm import pgm_image, write_pgm
from .smv import int_image, smv_header_nanobragg, with_header_room, write_smv
from .statistics import image_statistics

DEFAULT_FILES = {"floatfile": "floatimage.bin", "intfile": "intimage.img", "pgmfile": "image.pgm",
                 "noisefile": "noiseimage.img"}


def write_float_image(path, image):
    """Raw little-endian float32, fast-major (nanoBragg's -floatfile), written atomically."""
    with atomic_output(path) as handle:
        handle.write(np.ascontiguousarray(image, dtype="<f4").tobytes())


def smv_header(simulation, geometry, extra=None):
    """nanoBragg's SMV header for this simulation's geometry."""
    d, s, frame = simulation.detector, simulation.sampling, geometry.frame
    return with_header_room(smv_header_nanobragg(
        fpixels=d.fpixels, spixels=d.spixels, pixel_size_mm=d.pixel_mm, distance_mm=frame.distance_m * 1e3,
        wavelength_A=simulation.beam.wavelength_A, xbeam_mm=frame.xbeam_m * 1e3, ybeam_mm=frame.ybeam_m * 1e3,
        fbeam_mm=frame.fbeam_m * 1e3, sbeam_mm=frame.sbeam_m * 1e3, detsize_s_mm=frame.detsize_s_m * 1e3,
        dials_origin_mm=frame.dials_origin_mm, orgx=frame.orgx_px, orgy=frame.orgy_px,
        close_distance_mm=frame.close_distance_m * 1e3, phi0_deg=s.phi0_deg, osc_deg=s.osc_deg,
        twotheta_deg=d.twotheta_deg, extra=extra))


def _misset_seed_key(simulation):
    """{'MISSET_SEED': flag value} for a random misset (so the orientation can be drawn again)."""
    crystal = simulation.crystal
    return {"MISSET_SEED": str(-crystal.misset_seed)} if crystal.misset_random else {}


def noise_seed(options, out):
    """The stored noise seed: -seed's, or one from the system entropy, printed."""
    if options.get("seed") is not None:
        return options["seed"]
    seed = -entropy_seed()
    print(f"noise seed taken from the system: -seed {-seed}", file=out)
    return seed


def write_outputs(simulation, geometry, image, options, out):
    """Write the float, SMV, PGM and noise files nanoBragg would write; print the statistics.

    ``options`` are the parsed output requests; with noise on, ``options['seed']`` is the
    stored noise seed (see :func:`noise_seed`).
    """
    image = np.asarray(image)
    if options.get("fdump_write") is not None:
        write_fdump(options["fdump_write"], simulation.crystal.hkl, simulation.crystal.default_F)
        print(f"writing dump file for next time: {options['fdump_write']}", file=out)
    roi = simulation.rendered_roi
    stats = image_statistics(image, roi=roi, mask=simulation.sampling.mask)
    for line in stats.summary_lines(pixel_size_m=simulation.detector.pixel_mm * 1e-3,
                                    oversample=geometry.oversample):
        print(line, file=out)
    path = options.get("floatfile", DEFAULT_FILES["floatfile"])
    write_float_image(path, image)
    print(f"writing {path} as {image.size} 4-byte floats", file=out)
    adc = options.get("adc", 40.0)
    ints, int_scale = int_image(image, scale=options.get("scale"), adc=adc, roi=roi)
    print(f"intfile_scale = {int_scale:g}", file=out)
    path = options.get("intfile", DEFAULT_FILES["intfile"])
    write_smv(path, ints, smv_header(simulation, geometry, extra=_misset_seed_key(simulation)))
    print(f"writing {path} as 2-byte integers", file=out)
    if options.get("write_pgm", True):
        grey, pgm_scale = pgm_image(image, scale=options.get("pgmscale"), roi=roi, fallback_scale=int_scale,
                                    mask=simulation.sampling.mask)
        path = options.get("pgmfile", DEFAULT_FILES["pgmfile"])
        write_pgm(path, grey, pgm_scale)
        print(f"pgm_scale = {pgm_scale:g}\nwriting {path} as 1-byte integers", file=out)
    if options.get("write_noise", True):
        seed = options["seed"]
        noisy, overloads, photons = noise_image(image, seed, adc=adc, roi=roi)
        print(f"{photons:.0f} photons on noise image ({overloads} overloads)", file=out)
        path = options.get("noisefile", DEFAULT_FILES["noisefile"])
        write_smv(path, noisy, smv_header(simulation, geometry,
                                          extra={**_misset_seed_key(simulation), "SEED": str(-seed)}))
        print(f"writing {path} as 2-byte integers", file=out)
