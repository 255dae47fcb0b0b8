"""PGM previews: nanoBragg's scale rule and truncation, its file bytes, reading back."""

from pathlib import Path

import numpy as np
import pytest

from arraybragg.pgm import pgm_image, read_pgm, write_pgm
from arraybragg.smv import int_image

FILES = Path(__file__).parent / "data" / "files"


def _float_image(name):
    shape = {"A": (64, 64), "B": (64, 72)}[name]
    return np.fromfile(FILES / f"{name}.float.bin", "<f4").reshape(shape)


@pytest.mark.parametrize("name, pgmscale, printed", [("A", None, "0.0326084"), ("B", 2.0, "2")])
def test_pgm_equals_nanobragg(tmp_path, name, pgmscale, printed):
    image = _float_image(name)
    _, intfile_scale = int_image(image)
    pixels, scale = pgm_image(image, scale=pgmscale, fallback_scale=intfile_scale)
    assert "%g" % scale == printed  # pgm_scale printed in the log
    reference = read_pgm(FILES / f"{name}.pgm")
    assert reference.shape == image.shape
    assert np.array_equal(pixels, reference)
    out = tmp_path / "out.pgm"
    write_pgm(out, pixels, scale)
    assert out.read_bytes() == (FILES / f"{name}.pgm").read_bytes()


def test_auto_scale_is_250_over_5_rmsd():
    image = np.array([[0.0, 1.0], [2.0, 3.0]])
    rmsd = np.sqrt(np.sum((image - 1.5) ** 2) / 3)
    pixels, scale = pgm_image(image)
    assert scale == pytest.approx(50.0 / rmsd, rel=1e-12)
    assert pixels.tolist() == [[0, int(scale)], [int(2 * scale), min(255, int(3 * scale))]]


def test_truncation_clipping_roi_and_fallback():
    image = np.array([[0.99, 1.0, 2.6], [300.0, -4.0, 7.0]], dtype=np.float32)
    pixels, scale = pgm_image(image, scale=1.0)
    assert scale == 1.0 and pixels.tolist() == [[0, 1, 2], [255, 0, 7]]
    pixels, _ = pgm_image(image, scale=1.0, roi=(1, 2, 0, 0))
    assert pixels.tolist() == [[0, 1, 2], [0, 0, 0]]
    pixels, scale = pgm_image(np.full((2, 2), 3.0), fallback_scale=10.0)  # rmsd 0: the intfile scale
    assert scale == 10.0 and np.all(pixels == 30)


def test_read_pgm_with_comments_and_errors(tmp_path):
    path = tmp_path / "x.pgm"
    path.write_bytes(b"P5\n# made by hand\n3 2\n# two lines\n255\n" + bytes([1, 2, 3, 4, 5, 32]))
    assert read_pgm(path).tolist() == [[1, 2, 3], [4, 5, 32]]
    path.write_bytes(b"P5\n3 2\n255\n" + bytes(5))
    with pytest.raises(ValueError, match="truncated PGM data"):
        read_pgm(path)
    path.write_bytes(b"P2\n3 2\n255\n1 2 3 4 5 6\n")
    with pytest.raises(ValueError, match="not a binary PGM"):
        read_pgm(path)
    with pytest.raises(ValueError, match="uint8"):
        write_pgm(path, np.zeros((2, 2), np.uint16), 1.0)
