"""The statistics nanoBragg prints after rendering."""

from pathlib import Path

import numpy as np
import pytest

from arraybragg.host import host_array
from arraybragg.statistics import image_statistics, roi_mask

FILES = Path(__file__).parent / "data" / "files"


@pytest.mark.parametrize(
    "name, shape, lines",
    [
        ("A", (64, 64), ["max_I = 38821.7  at 0.00335 0.00335", "mean= 120.307 rms= 1538.06 rmsd= 1533.35"]),
        ("B", (64, 72), ["max_I = 146.175  at 0.00625 0.00165", "mean= 1.40334 rms= 8.29727 rmsd= 8.17771"]),
    ],
)
def test_summary_lines_equal_nanobragg_log(name, shape, lines):
    image = np.fromfile(FILES / f"{name}.float.bin", "<f4").reshape(shape)
    stats = image_statistics(image)
    assert stats.summary_lines(pixel_size_m=1e-4) == lines
    assert all(line in (FILES / f"{name}.log").read_text() for line in lines)
    assert stats.n == image.size


def test_definitions_on_small_image():
    image = np.array([[1.0, 5.0, 2.0], [5.0, 0.0, 3.0]])
    stats = image_statistics(image)
    assert stats.max_I == 5.0 and stats.max_pixel == (1, 0)  # first maximum in row order, (fast, slow)
    assert stats.mean == pytest.approx(16 / 6)
    assert stats.rms == pytest.approx(np.sqrt(64 / 5))
    assert stats.rmsd == pytest.approx(np.sqrt(np.sum((image - 16 / 6) ** 2) / 5))
    # the reported position is the centre of the last sub-pixel of that pixel
    assert stats.max_position_m(pixel_size_m=1e-4, oversample=2) == pytest.approx((1.75e-4, 0.75e-4))


def test_roi_and_mask():
    image = np.arange(12, dtype=float).reshape(3, 4)
    stats = image_statistics(image, roi=(1, 2, 0, 1))  # fast 1..2, slow 0..1: 1 2 5 6
    assert stats.n == 4 and stats.max_I == 6.0 and stats.max_pixel == (2, 1) and stats.mean == 3.5
    mask = np.ones((3, 4))
    mask[1, 2] = 0
    masked = image_statistics(image, roi=(1, 2, 0, 1), mask=mask)
    assert masked.n == 3 and masked.max_I == 5.0 and masked.mean == pytest.approx(8 / 3)
    # nanoBragg's rmsd runs over the roi without the mask, around the masked mean
    assert masked.rmsd == pytest.approx(np.sqrt(np.sum((np.array([1, 2, 5, 6]) - 8 / 3) ** 2) / 3))
    assert roi_mask((3, 4), (1, 2, 0, 1)).sum() == 4 and roi_mask((3, 4), None).all()


def test_empty_and_nonpositive_images():
    stats = image_statistics(np.zeros((2, 2)))
    assert stats.max_I == 0.0 and stats.max_pixel is None
    assert stats.summary_lines()[0] == "max_I = 0  at 0 0"
    single = image_statistics(np.array([[4.0]]))
    assert single.mean == 4.0 and single.rms == 4.0 and single.rmsd == 0.0  # divisor n - 1 raised to 1
    nothing = image_statistics(np.ones((2, 2)), roi=(5, 6, 5, 6))
    assert nothing.n == 0 and nothing.mean == 0.0 and nothing.max_pixel is None


def test_values_taken_as_float32_and_host_array():
    image = np.array([[0.1, 0.2]])
    assert image_statistics(image).max_I == float(np.float32(0.2))
    xp = pytest.importorskip("array_api_strict")
    assert np.array_equal(host_array(xp.asarray([[1.0, 2.0]])), [[1.0, 2.0]])
    assert image_statistics(xp.asarray([[1.0, 3.0]])).max_pixel == (1, 0)
    with pytest.raises(ValueError, match="four integers"):
        roi_mask((2, 2), (0, 1))
