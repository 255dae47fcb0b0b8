"""Small text inputs of nanoBragg: the MOSFLM orientation matrix (``-mat``) and the source file (``-sourcefile``)."""

import os
import re

import numpy as np

_SPACE = "[ \t\n\v\f\r]*"
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_SCANF_NUMBER = re.compile(_SPACE + "(" + _NUMBER + ")")
_C_ATOF = re.compile(_SPACE + r"([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan))", re.IGNORECASE)
_TOKEN = re.compile("(?:" + _NUMBER + r"|nan)\Z", re.IGNORECASE)

SOURCE_COLUMNS = ("X", "Y", "Z", "weight", "lambda_m")
_DELIMITERS = " \t,;:!"
_NUMBER_CHARACTERS = "0123456789-+.EGeg"


def read_mosflm_matrix(path) -> np.ndarray:
    """The first nine numbers of a MOSFLM matrix file as a (3, 3) array, rows as in the file.

    The columns are a*, b*, c* (in Å⁻¹ times the wavelength); trailer lines are not read.
    Numbers are scanned like C's ``%lg``, so touching values such as "0.1-0.2" are two numbers.
    """
    path = os.fspath(path)
    with open(path, "r", encoding="latin-1") as handle:
        text = handle.read()
    values, pos = [], 0
    while len(values) < 9:
        match = _SCANF_NUMBER.match(text, pos)
        if match is None:
            rest = text[pos:].split()
            found = f"{rest[0]!r}" if rest else "the end of the file"
            raise ValueError(f"{path}: {found} after {len(values)} numbers; a MOSFLM matrix needs nine numbers first")
        values.append(float(match.group(1)))
        pos = match.end()
    return np.array(values, dtype=np.float64).reshape(3, 3)


def _split_fields(line: str) -> list[str]:
    return [field for field in re.split("[" + _DELIMITERS + "\r]+", line) if field]


def _read_sources_lines(path, text: str) -> np.ndarray:
    rows = []
    for line_number, line in enumerate(text.split("\n"), start=1):
        fields = _split_fields(line)
        if not fields:
            continue
        row = [np.nan] * len(SOURCE_COLUMNS)
        for column, token in enumerate(fields[: len(SOURCE_COLUMNS)]):
            if not _TOKEN.match(token):
                raise ValueError(
                    f"{path}, line {line_number}: {SOURCE_COLUMNS[column]}={token!r} is not a number "
                    "(columns X Y Z weight lambda_m; 'nan' marks a missing value)"
                )
            row[column] = float(token)
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(-1, len(SOURCE_COLUMNS))


def _span(text: str, pos: int, characters: str) -> int:
    """Position after the run of ``characters`` starting at ``pos`` (C's strspn)."""
    while pos < len(text) and text[pos] in characters:
        pos += 1
    return pos


def _complement_span(text: str, pos: int, characters: str) -> int:
    """Position of the first of ``characters`` at or after ``pos`` (C's strcspn)."""
    while pos < len(text) and text[pos] not in characters:
        pos += 1
    return pos


def _c_atof(text: str, pos: int) -> float:
    """C's atof at ``pos``: the longest numeric prefix, 0.0 when there is none."""
    match = _C_ATOF.match(text, pos)
    return float(match.group(1)) if match else 0.0


def _read_sources_nanobragg(text: str) -> np.ndarray:
    """nanoBragg's pointer walk over each line; the line keeps its newline, if it has one."""
    rows = []
    for line in re.findall(r"[^\n]*\n|[^\n]+\Z", text):
        pos = _span(line, 0, _DELIMITERS)
        if line[pos:] == "\n":
            continue
        row = [np.nan] * len(SOURCE_COLUMNS)
        for column in range(len(SOURCE_COLUMNS)):
            row[column] = _c_atof(line, pos)
            pos = _span(line, pos, _NUMBER_CHARACTERS)
            if line[pos:] == "\n":
                break
            pos = _span(line, _complement_span(line, pos, _DELIMITERS), _DELIMITERS)
            if line[pos:] == "\n":
                break
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(-1, len(SOURCE_COLUMNS))


def read_source_file(path, compat: bool = False) -> np.ndarray:
    """Read a ``-sourcefile``: (n, 5) float64, columns X Y Z weight lambda_m, NaN where missing.

    Fields are separated by blanks, tabs and any of ``,;:!``; blank lines are skipped; there are
    no comments; columns after the fifth are ignored. The caller applies the defaults
    (position 10 m along -beam, weight 1, wavelength ``-lambda``).
    Default: missing trailing columns are NaN on every line; a field that is not a number (or
    'nan') raises ValueError naming the file and line.
    compat=True reproduces nanoBragg's parser: non-numbers read as their numeric prefix (or 0),
    and on a line that does not end in a newline (the last line of a file without a final
    newline) -- or whose last field is not a plain number -- the missing columns become 0.
    """
    path = os.fspath(path)
    with open(path, "r", encoding="latin-1", newline="") as handle:
        text = handle.read()
    sources = _read_sources_nanobragg(text) if compat else _read_sources_lines(path, text)
    if len(sources) == 0:
        raise ValueError(f"{path}: no sources (lines X Y Z weight lambda_m) found")
    return sources
