"""MOSFLM matrix (-mat) and source file (-sourcefile) readers, default and nanoBragg-compatible."""

from pathlib import Path

import numpy as np
import pytest

from arraybragg.textinputs import read_mosflm_matrix, read_source_file

DATA = Path(__file__).parent / "data"
SOURCES = DATA / "inputs" / "sources.txt"
COMPAT = DATA / "sources_compat"

EXPECTED_SOURCES = np.array(
    [
        [-10.0, 0.0, 0.0, 1.0, 1.00e-10],
        [-10.0, 0.02, 0.0, 0.5, 1.03e-10],
        [-10.0, 0.0, -0.03, 3.0, 0.97e-10],
        [-10.0, -0.015, 0.015, np.nan, np.nan],
    ]
)


def _nanobragg_defaults(sources, lambda_m=1e-10):
    """nanoBragg's defaults for missing Z, weight and wavelength (MOSFLM frame, -lambda 1 A)."""
    out = sources.copy()
    out[np.isnan(out[:, 3]), 3] = 1.0
    out[np.isnan(out[:, 4]), 4] = lambda_m
    out[np.isnan(out[:, 2]), 2] = -0.0  # -10 m * beam_z, beam along +x
    return out


def _printed_sources(path):
    return np.loadtxt(path, ndmin=2)


def test_mosflm_matrix_first_nine_numbers_rows_as_in_file():
    A = read_mosflm_matrix(DATA / "inputs" / "A.mat")
    assert A.shape == (3, 3)
    assert A[0].tolist() == [0.01629221, -0.00893932, 0.00084264]
    assert A[2].tolist() == [0.01075202, 0.01070476, 0.01142551]
    # columns are a*, b*, c* times the wavelength (1.3 A) for the cell 62 71 83 84 97 103
    volume_star = abs(np.linalg.det(A / 1.3))
    a, b, c, al, be, ga = 62.0, 71.0, 83.0, *np.radians([84.0, 97.0, 103.0])
    volume = a * b * c * np.sqrt(1 - np.cos(al) ** 2 - np.cos(be) ** 2 - np.cos(ga) ** 2 + 2 * np.cos(al) * np.cos(be) * np.cos(ga))
    assert volume_star == pytest.approx(1 / volume, rel=1e-5)


def test_mosflm_matrix_touching_numbers_and_errors(tmp_path):
    path = tmp_path / "a.mat"
    path.write_text("1 2 3\n4 5-6\n7 8 9 trailer\n")
    assert read_mosflm_matrix(path).ravel().tolist() == [1, 2, 3, 4, 5, -6, 7, 8, 9]
    path.write_text("1 2 3\n4 5 6\n7 8\n")
    with pytest.raises(ValueError, match="the end of the file after 8 numbers"):
        read_mosflm_matrix(path)
    path.write_text("1 2 3\n4 x 6\n7 8 9\n")
    with pytest.raises(ValueError, match=r"a.mat: 'x' after 4 numbers"):
        read_mosflm_matrix(path)
    with pytest.raises(FileNotFoundError):
        read_mosflm_matrix(tmp_path / "absent.mat")


@pytest.mark.parametrize("compat", [False, True])
def test_reference_source_file_both_modes(compat):
    # the last line has only X Y Z and ends with a newline: both modes leave weight and lambda missing
    assert np.array_equal(read_source_file(SOURCES, compat=compat), EXPECTED_SOURCES, equal_nan=True)


def test_last_line_without_newline(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes(SOURCES.read_bytes().rstrip(b"\n"))
    assert np.array_equal(read_source_file(path), EXPECTED_SOURCES, equal_nan=True)
    compat = read_source_file(path, compat=True)
    assert compat[3].tolist() == [-10.0, -0.015, 0.015, 0.0, 0.0]
    assert np.array_equal(compat[:3], EXPECTED_SOURCES[:3])


@pytest.mark.parametrize("name", ["no_final_newline", "weird_sources", "crlf_and_suffixes"])
def test_compat_matches_what_nanobragg_printed(name):
    """Source lists printed by the real nanoBragg (tests/data/sources_compat/README.md)."""
    ours = _nanobragg_defaults(read_source_file(COMPAT / f"{name}.txt", compat=True))
    assert np.allclose(ours, _printed_sources(COMPAT / f"{name}.nanoBragg.txt"), rtol=1e-5, atol=0)


def test_delimiters_blank_lines_and_nan(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("\n -10,0.01;0:2!1.1e-10 extra\n\n\t-10 0 0.01 nan 2e-10\r\n   \n")
    sources = read_source_file(path)
    assert np.array_equal(
        sources, np.array([[-10, 0.01, 0, 2, 1.1e-10], [-10, 0, 0.01, np.nan, 2e-10]]), equal_nan=True
    )


def test_default_mode_rejects_non_numbers(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("-10 0 0\n  -10 0.02 0 abc\n")
    with pytest.raises(ValueError, match=r"s.txt, line 2: weight='abc' is not a number"):
        read_source_file(path)
    assert read_source_file(path, compat=True)[1].tolist() == [-10.0, 0.02, 0.0, 0.0, 0.0]


def test_empty_and_missing_source_files(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("\n  \n")
    with pytest.raises(ValueError, match="no sources"):
        read_source_file(path)
    with pytest.raises(FileNotFoundError):
        read_source_file(tmp_path / "absent.txt")
