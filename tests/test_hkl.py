"""hkl text files and nanoBragg's Fdump.bin: default reader, nanoBragg-compatible reader, cache layout."""

from pathlib import Path

import numpy as np
import pytest

from arraybragg.hkl import HKLTable, read_fdump, read_hkl, write_fdump

DATA = Path(__file__).parent / "data"
P1 = DATA / "inputs" / "P1.hkl"
COMPAT = DATA / "hkl_compat"


def _write(tmp_path, text, name="t.hkl"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_p1_box_and_holes():
    table = read_hkl(P1)
    assert table.hkl_min == (-5, -4, -4)
    assert table.hkl_max == (4, 5, 4)
    assert table.shape == (10, 10, 9)
    assert table.count == 846
    assert np.isnan(table.grid).sum() == 900 - 846
    assert table.grid[5, 4, 4] == 1000.0  # F(000)
    assert table.grid[0, 0, 0] == pytest.approx(299.92)  # first line: -5 -4 -4 299.92


def test_filled_sets_only_holes():
    table = read_hkl(P1)
    filled = table.filled(7.5)
    holes = np.isnan(table.grid)
    assert np.all(filled[holes] == 7.5)
    assert np.array_equal(filled[~holes], table.grid[~holes])
    assert not np.isnan(table.filled(0.0)).any()


def test_extra_columns_negative_indices_comments_and_last_wins(tmp_path):
    path = _write(
        tmp_path,
        "# h k l F sigma phase\n"
        "\n"
        "-2  0  1  10.0  0.5  90.0\n"
        " 1 -3  0  20.5  1.5 180.0\n"
        "-2  0  1  12.0  0.7  45.0\n"
        " 0  0  0   3.0\n",
    )
    table = read_hkl(path)
    assert table.hkl_min == (-2, -3, 0)
    assert table.hkl_max == (1, 0, 1)
    assert table.count == 3
    assert table.grid[-2 + 2, 0 + 3, 1] == 12.0  # repeated index: the last value
    assert table.grid[1 + 2, -3 + 3, 0] == 20.5
    assert table.grid[0 + 2, 0 + 3, 0] == 3.0
    assert np.isnan(table.grid[0, 0, 0])


def test_integral_float_indices_accepted(tmp_path):
    table = read_hkl(_write(tmp_path, "1.0 -2.0 3 4.5\n"))
    assert table.hkl_min == (1, -2, 3) and table.grid.item() == 4.5


@pytest.mark.parametrize(
    "line, message",
    [
        ("1 2 x 4.0", r"line 2: l='x' is not a number"),
        ("1 2.5 3 4.0", r"line 2: k='2.5' is not an integer"),
        ("1 2 3 abc", r"line 2: F='abc' is not a number"),
        ("1 2 3", r"line 2: .* has 3 columns"),
        ("1 2 3 nan", r"line 2: F='nan' is not a number"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, message):
    path = _write(tmp_path, "0 0 0 1.0\n" + line + "\n")
    with pytest.raises(ValueError, match=message) as info:
        read_hkl(path)
    assert str(path) in str(info.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_hkl(tmp_path / "absent.hkl")
    with pytest.raises(ValueError, match="no reflections"):
        read_hkl(_write(tmp_path, "# only a comment\n\n"))
    with pytest.raises(ValueError, match="no h k l F groups"):
        read_hkl(_write(tmp_path, "# only a comment\n"), compat=True)


def test_compat_equals_default_on_four_column_file():
    assert np.array_equal(read_hkl(P1, compat=True).grid, read_hkl(P1).grid, equal_nan=True)


@pytest.mark.parametrize("name, default_F", [("five_columns_decimal", 0.0), ("five_columns_integer", 1000.0)])
def test_compat_reproduces_nanobragg_on_five_columns(name, default_F):
    """Fdump.bin files written by the real nanoBragg after reading these files (tests/data/hkl_compat/README.md)."""
    table = read_hkl(COMPAT / f"{name}.hkl", compat=True)
    reference = read_fdump(COMPAT / f"{name}.Fdump.bin")
    assert table.hkl_min == reference.hkl_min
    assert np.array_equal(table.filled(default_F), reference.grid)


def test_compat_five_columns_details():
    # stream 0 0 1 12.50 | 1.20 1 0 0 | 8.25 0.80 0 1 | ... : the box comes from the shifted groups
    # (1.20 and 8.25 as h, truncated), and the %d re-reading stops at "1.20", so one F survives.
    table = read_hkl(COMPAT / "five_columns_decimal.hkl", compat=True)
    assert table.hkl_min == (-1, -1, 0) and table.hkl_max == (8, 3, 5)
    assert table.count == 1 and table.grid[1, 1, 1] == 12.5
    default = read_hkl(COMPAT / "five_columns_decimal.hkl")
    assert default.count == 5 and default.hkl_min == (-1, -1, -1) and default.hkl_max == (2, 2, 1)
    assert default.grid[-1 + 1, 2 + 1, 0 + 1] == 5.75


def test_compat_write_outside_box_is_an_error(tmp_path):
    # "1.5" as l: the %d re-reading takes 1 and F = ".5", then the groups are shifted and h = 7
    # falls outside the box of the first reading, where nanoBragg would corrupt memory.
    with pytest.raises(ValueError, match="outside the box"):
        read_hkl(_write(tmp_path, "0 0 1.5 7\n1 1 1 4\n"), compat=True)


def test_reference_fdump_matches_p1_filled_with_zero():
    reference = read_fdump(DATA / "files" / "A.Fdump.bin")
    table = read_hkl(P1)
    assert reference.hkl_min == table.hkl_min and reference.shape == table.shape
    assert np.array_equal(reference.grid, table.filled(0.0))


def test_write_fdump_is_byte_identical_to_nanobragg(tmp_path):
    out = tmp_path / "Fdump.bin"
    write_fdump(out, read_hkl(P1), default_F=0.0)
    assert out.read_bytes() == (DATA / "files" / "A.Fdump.bin").read_bytes()


def test_fdump_layout_and_round_trip(tmp_path):
    grid = np.full((2, 3, 4), np.nan)
    grid[0, 1, 2] = 5.0
    grid[1, 2, 3] = -1.25
    table = HKLTable(grid, (-1, 0, 2))
    out = tmp_path / "F.bin"
    write_fdump(out, table, default_F=9.0)
    raw = out.read_bytes()
    header = b"-1 0 0 2 2 5\n\f"
    assert raw.startswith(header)
    padded = np.frombuffer(raw[len(header):], "<f8").reshape(3, 4, 5)
    assert np.all(padded[2] == 0) and np.all(padded[:, 3] == 0) and np.all(padded[:, :, 4] == 0)
    back = read_fdump(out)
    assert back.hkl_min == (-1, 0, 2) and back.hkl_max == (0, 2, 5)
    assert np.array_equal(back.grid, table.filled(9.0))


def test_bad_fdump_files(tmp_path):
    good = tmp_path / "F.bin"
    write_fdump(good, HKLTable(np.ones((2, 2, 2)), (0, 0, 0)), 0.0)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(good.read_bytes()[:-8])
    with pytest.raises(ValueError, match="short.bin: Fdump holds 208 bytes of values; bounds .* require 216"):
        read_fdump(truncated)
    text = tmp_path / "text.bin"
    text.write_text("0 0 1 12.5\n")
    with pytest.raises(ValueError, match="not an Fdump file"):
        read_fdump(text)


def test_table_validation():
    with pytest.raises(ValueError, match="3-D"):
        HKLTable(np.ones((2, 2)), (0, 0, 0))
    with pytest.raises(ValueError, match="three integers"):
        HKLTable(np.ones((2, 2, 2)), (0, 0))


def test_fdump_whitespace_first_byte():
    """nanoBragg's reader eats a leading 0x20 byte of the first value (tests/data/hkl_compat/README.md)."""
    path = COMPAT / "fdump_whitespace.Fdump.bin"
    table = read_hkl(COMPAT / "fdump_whitespace.hkl")
    assert path.read_bytes()[path.read_bytes().index(b"\n\f") + 2] == 0x20
    assert np.array_equal(read_fdump(path).grid, table.filled(0.0))
    shifted = read_fdump(path, compat=True)
    assert shifted.hkl_min == table.hkl_min and shifted.shape == table.shape
    assert np.abs(shifted.grid).max() < 1e-300  # every amplitude lost, as nanoBragg's zero image showed
    assert np.array_equal(read_fdump(DATA / "files" / "A.Fdump.bin", compat=True).grid, read_hkl(P1).filled(0.0))
