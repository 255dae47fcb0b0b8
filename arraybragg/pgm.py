"""8-bit PGM (P5) preview images as nanoBragg writes them (``-pgmfile``, ``-pgmscale``)."""

import os
import re

import numpy as np

from .atomic import atomic_output
from .host import host_array
from .statistics import float32_roi_values, image_statistics

PGM_MAX = 255.0
PGM_RMSD_TARGET = 250.0 / 5.0
_PGM_HEADER = re.compile(rb"P5(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)\s")


def auto_pgm_scale(rmsd: float, fallback_scale: float) -> float:
    """nanoBragg's automatic PGM scale: 250 / (5 rmsd), or ``fallback_scale`` when rmsd is 0."""
    return PGM_RMSD_TARGET / rmsd if rmsd > 0.0 else float(fallback_scale)


def pgm_image(float_image, scale=None, roi=None, fallback_scale=1.0, mask=None) -> tuple[np.ndarray, float]:
    """nanoBragg's PGM pixels from a (slow, fast) float image: (uint8 image, scale used).

    The image is taken as float32; each pixel is min(v * scale, 255) truncated towards zero
    (negative values give 0). scale None or <= 0: 250 / (5 rmsd) with nanoBragg's rmsd of the
    rendered pixels (see :func:`arraybragg.statistics.image_statistics`; ``mask`` as there), or
    ``fallback_scale`` (nanoBragg passes its intfile scale) when that rmsd is 0. Pixels outside
    roi = (xmin, xmax, ymin, ymax) (inclusive) are 0.
    """
    image, inside, values = float32_roi_values(float_image, roi, "PGM")
    if scale is None or scale <= 0.0:
        scale = auto_pgm_scale(image_statistics(image, roi=roi, mask=mask).rmsd, fallback_scale)
    test = np.clip(values * float(scale), 0.0, PGM_MAX)
    out = np.zeros(image.shape, dtype=np.uint8)
    out[inside] = np.trunc(test).astype(np.uint8)
    return out, float(scale)


def write_pgm(path, image_uint8, scale: float) -> None:
    """Write a binary PGM atomically, byte for byte as nanoBragg: the header
    ``P5\\n<fast> <slow>\\n# pixels scaled by <scale %g>\\n255\\n``, then the (slow, fast) bytes."""
    image = host_array(image_uint8)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"image_uint8: {image.ndim}-D {image.dtype} array; a 2-D uint8 array (slow, fast) is required")
    header = "P5\n%d %d\n# pixels scaled by %g\n255\n" % (image.shape[1], image.shape[0], float(scale))
    with atomic_output(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(np.ascontiguousarray(image).tobytes())


def read_pgm(path) -> np.ndarray:
    """Read a binary 8-bit PGM (P5, maxval <= 255, comments allowed): (height, width) uint8."""
    path = os.fspath(path)
    with open(path, "rb") as handle:
        raw = handle.read()
    match = _PGM_HEADER.match(raw)
    if match is None:
        raise ValueError(f"{path}: not a binary PGM (P5) image")
    width, height, maxval = (int(v) for v in match.groups())
    if not 0 < maxval <= 255:
        raise ValueError(f"{path}: maxval {maxval}; only 8-bit PGM (maxval 1..255) is supported")
    payload = raw[match.end() : match.end() + width * height]
    if len(payload) < width * height:
        raise ValueError(f"{path}: truncated PGM data ({len(payload)} of {width * height} bytes)")
    return np.frombuffer(payload, dtype=np.uint8).reshape(height, width).copy()
