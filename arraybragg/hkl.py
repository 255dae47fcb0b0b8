"""Structure-factor tables: text hkl files and nanoBragg's binary ``Fdump.bin`` cache.

An :class:`HKLTable` is a dense box of amplitudes indexed by Miller indices, with NaN where
the file gave no value (a hole). nanoBragg's lookup replaces holes by ``-default_F`` (or 0),
which is what :meth:`HKLTable.filled` returns.
"""

import os
import re
from dataclasses import dataclass

import numpy as np

from .atomic import atomic_output

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_MAX_CELLS = 2**31
_C_INT_MIN = -(2**31)

# glibc fscanf conversions, as used by nanoBragg's hkl reader (leading white space skipped).
_C_SPACE = "[ \t\n\v\f\r]*"
_C_DOUBLE = re.compile(
    _C_SPACE
    + r"([+-]?)(?:"
    + r"(?P<hex>0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+))(?:[pP](?P<hexp>[+-]?\d*))?"
    + r"|(?P<dec>\d+\.?\d*|\.\d+)(?:[eE](?P<exp>[+-]?\d*))?"
    + r"|(?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    + r"|(?P<nan>[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)"
    + r")"
)
_C_DECIMAL_INT = re.compile(_C_SPACE + r"([+-]?\d+)")


@dataclass(frozen=True, eq=False)
class HKLTable:
    """Amplitudes on the box hkl_min .. hkl_max.

    grid: (nh, nk, nl) float64, grid[i, j, m] is F of (hkl_min[0] + i, hkl_min[1] + j,
    hkl_min[2] + m); NaN marks an index the file did not give.
    """

    grid: np.ndarray
    hkl_min: tuple[int, int, int]

    def __post_init__(self):
        grid = np.asarray(self.grid, dtype=np.float64)
        if grid.ndim != 3 or 0 in grid.shape:
            raise ValueError(f"grid: shape {grid.shape}; a non-empty 3-D array (nh, nk, nl) is required")
        hkl_min = tuple(int(v) for v in self.hkl_min)
        if len(hkl_min) != 3 or any(a != b for a, b in zip(hkl_min, self.hkl_min)):
            raise ValueError(f"hkl_min={self.hkl_min!r}: three integers are required")
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "hkl_min", hkl_min)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.grid.shape)

    @property
    def hkl_max(self) -> tuple[int, int, int]:
        return tuple(lo + n - 1 for lo, n in zip(self.hkl_min, self.grid.shape))

    @property
    def count(self) -> int:
        """Number of indices with a value (cells that are not holes)."""
        return int(np.count_nonzero(~np.isnan(self.grid)))

    def filled(self, default_F: float) -> np.ndarray:
        """(nh, nk, nl) float64 grid with every hole set to ``default_F``."""
        return np.where(np.isnan(self.grid), float(default_F), self.grid)


def _table_from_entries(path, hkl: np.ndarray, F: np.ndarray) -> HKLTable:
    """Box the (n, 3) integer indices and their amplitudes; a repeated index keeps its last F."""
    hkl_min = hkl.min(axis=0)
    shape = hkl.max(axis=0) - hkl_min + 1
    if int(np.prod(shape, dtype=np.float64)) > _MAX_CELLS:
        raise ValueError(f"{path}: hkl box of shape {tuple(int(n) for n in shape)} exceeds {_MAX_CELLS} cells")
    flat = np.ravel_multi_index(tuple((hkl - hkl_min).T), tuple(shape))
    reversed_flat = flat[::-1]
    _, first_in_reversed = np.unique(reversed_flat, return_index=True)
    last = len(flat) - 1 - first_in_reversed
    grid = np.full(int(np.prod(shape)), np.nan)
    grid[flat[last]] = F[last]
    return HKLTable(grid.reshape(tuple(shape)), tuple(int(v) for v in hkl_min))


def _parse_index(path, line_number, name, token) -> int:
    if not _DECIMAL.match(token):
        raise ValueError(f"{path}, line {line_number}: {name}={token!r} is not a number; an integer Miller index is required")
    value = float(token)
    if value != int(value) or abs(value) >= 2**31:
        raise ValueError(f"{path}, line {line_number}: {name}={token!r} is not an integer Miller index")
    return int(value)


def _parse_amplitude(path, line_number, token) -> float:
    if not _DECIMAL.match(token):
        raise ValueError(f"{path}, line {line_number}: F={token!r} is not a number; a finite amplitude is required")
    value = float(token)
    if not np.isfinite(value):
        raise ValueError(f"{path}, line {line_number}: F={token!r} is not finite")
    return value


def _read_hkl_lines(path) -> HKLTable:
    indices, amplitudes = [], []
    with open(path, "r", encoding="latin-1") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) < 4:
                raise ValueError(f"{path}, line {line_number}: {line.strip()!r} has {len(fields)} columns; h k l F is required")
            indices.append([_parse_index(path, line_number, name, token) for name, token in zip("hkl", fields[:3])])
            amplitudes.append(_parse_amplitude(path, line_number, fields[3]))
    if not indices:
        raise ValueError(f"{path}: no reflections (lines h k l F) found")
    return _table_from_entries(path, np.array(indices, dtype=np.int64), np.array(amplitudes))


def _exponent_digits(exponent) -> str:
    """glibc consumes a dangling exponent marker ("1e", "1e+") and ignores it."""
    if exponent is None or not exponent.lstrip("+-"):
        return "0"
    return exponent


def _c_double(text: str, pos: int):
    """One glibc ``%lg`` conversion at ``pos``: (value, new pos), or None on a matching failure."""
    match = _C_DOUBLE.match(text, pos)
    if match is None:
        return None
    sign = -1.0 if match.group(1) == "-" else 1.0
    if match.group("hex") is not None:
        value = float.fromhex(match.group("hex") + "p" + _exponent_digits(match.group("hexp")))
    elif match.group("dec") is not None:
        value = float(match.group("dec") + "e" + _exponent_digits(match.group("exp")))
    elif match.group("inf") is not None:
        value = np.inf
    else:
        value = np.nan
    return sign * value, match.end()


def _c_int(text: str, pos: int):
    """One glibc ``%d`` conversion at ``pos``: (value, new pos), or None on a matching failure."""
    match = _C_DECIMAL_INT.match(text, pos)
    if match is None:
        return None
    return int(match.group(1)), match.end()


def _scan_groups(text: str, converters) -> list:
    """Apply the four conversions repeatedly, as ``while(4 == fscanf(...))`` does."""
    groups, pos = [], 0
    while True:
        group = []
        for convert in converters:
            result = convert(text, pos)
            if result is None:
                return groups
            value, pos = result
            group.append(value)
        groups.append(group)


def _double_to_c_int(value: float) -> int:
    """C's double -> int conversion on x86-64: truncation; NaN and out-of-range give INT_MIN."""
    if not np.isfinite(value) or not (-(2**31) <= value < 2**31):
        return _C_INT_MIN
    return int(value)


def _read_hkl_nanobragg(path) -> HKLTable:
    with open(path, "r", encoding="latin-1") as handle:
        text = handle.read()
    first_pass = _scan_groups(text, (_c_double,) * 4)
    lo = [10**9] * 3
    hi = [-(10**9)] * 3
    for group in first_pass:
        for axis in range(3):
            if lo[axis] > group[axis]:
                lo[axis] = _double_to_c_int(group[axis])
            if hi[axis] < group[axis]:
                hi[axis] = _double_to_c_int(group[axis])
    extent = [b - a + 1 for a, b in zip(lo, hi)]
    if not first_pass or min(extent) < 1:
        raise ValueError(f"{path}: no h k l F groups could be read (nanoBragg: not enough HKL indices)")
    if float(np.prod(extent, dtype=np.float64)) > _MAX_CELLS:
        raise ValueError(f"{path}: hkl box of shape {tuple(extent)} exceeds {_MAX_CELLS} cells")
    grid = np.full(extent, np.nan)
    for h, k, l, F in _scan_groups(text, (_c_int, _c_int, _c_int, _c_double)):
        offset = (h - lo[0], k - lo[1], l - lo[2])
        if not all(0 <= o <= n for o, n in zip(offset, extent)):
            raise ValueError(
                f"{path}: the second reading gives h k l = {h} {k} {l}, outside the box {tuple(lo)}..{tuple(hi)} "
                "of the first reading; nanoBragg would write outside its table"
            )
        # an index one past the box lands in nanoBragg's padding layer, which lookups never read
        if all(o < n for o, n in zip(offset, extent)):
            grid[offset] = F
    return HKLTable(grid, tuple(lo))


def read_hkl(path, compat: bool = False) -> HKLTable:
    """Read an hkl text file (columns h k l F; further columns such as sigma or phase ignored).

    Default: line by line; blank lines and lines starting with '#' are skipped; indices must be
    integers (negative allowed), F a finite number; a repeated index keeps its last value.
    compat=True reproduces nanoBragg's reader: the file is a stream of numbers taken four at a
    time (first as doubles to find the box, then as ``%d %d %d %lg``), so extra columns shift
    every later value exactly as in nanoBragg.
    Raises FileNotFoundError for a missing file, ValueError (file and line) for a bad one.
    """
    path = os.fspath(path)
    if compat:
        return _read_hkl_nanobragg(path)
    return _read_hkl_lines(path)


def _fdump_header(table: HKLTable) -> bytes:
    bounds = []
    for lo, hi in zip(table.hkl_min, table.hkl_max):
        bounds += [lo, hi]
    return ("%d %d %d %d %d %d\n\f" % tuple(bounds)).encode("ascii")


def write_fdump(path, table: HKLTable, default_F: float) -> None:
    """Write ``table`` in nanoBragg's ``Fdump.bin`` layout, atomically.

    Layout: the text ``"hmin hmax kmin kmax lmin lmax\\n\\f"``, then (nh+1)(nk+1)(nl+1)
    little-endian float64 in C order (h slowest, l fastest); the extra last layer along each
    axis is zero, as nanoBragg writes it. Holes are written as ``default_F``.
    """
    nh, nk, nl = table.shape
    padded = np.zeros((nh + 1, nk + 1, nl + 1), dtype="<f8")
    padded[:nh, :nk, :nl] = table.filled(default_F)
    with atomic_output(path, "wb") as handle:
        handle.write(_fdump_header(table))
        handle.write(padded.tobytes(order="C"))


_FDUMP_HEADER_NANOBRAGG = re.compile(rb"\s*([+-]?\d+)" * 6 + rb"\s*")


def _fdump_payload_nanobragg(data: bytes, expected: int) -> bytes:
    """What nanoBragg's reader takes as the values: its header scan skips every white-space byte
    after the six integers, including leading bytes of the first value that look like white
    space; a short file leaves zeros."""
    match = _FDUMP_HEADER_NANOBRAGG.match(data)
    return data[match.end() : match.end() + expected].ljust(expected, b"\0")


def read_fdump(path, compat: bool = False) -> HKLTable:
    """Read a ``Fdump.bin`` written by nanoBragg or :func:`write_fdump`; the zero padding is dropped.

    The file has no hole information: every cell holds what was written (default_F or 0 for
    indices the hkl file lacked), so the returned grid has no NaN. Default: the layout is read
    exactly and a file of the wrong length is a ValueError. compat=True reproduces nanoBragg's
    reader, which skips white-space bytes after the text line: when the first value's first
    byte is one of 09-0D or 20 (hex), every value is read shifted by that many bytes.
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        data = handle.read()
    end = data.find(b"\n\f", 0, 256)
    fields = data[:end].split() if end >= 0 else []
    try:
        bounds = [int(v) for v in fields]
    except ValueError:
        bounds = []
    if len(bounds) != 6:
        raise ValueError(f"{path}: not an Fdump file (expected the text 'hmin hmax kmin kmax lmin lmax' ending in newline and form feed)")
    lo = bounds[0::2]
    extent = [b - a + 1 for a, b in zip(lo, bounds[1::2])]
    if min(extent) < 1:
        raise ValueError(f"{path}: Fdump bounds {bounds} describe an empty box")
    padded_shape = tuple(n + 1 for n in extent)
    expected = int(np.prod(padded_shape)) * 8
    payload = _fdump_payload_nanobragg(data, expected) if compat else data[end + 2 :]
    if len(payload) != expected:
        raise ValueError(f"{path}: Fdump holds {len(payload)} bytes of values; bounds {bounds} require {expected}")
    padded = np.frombuffer(payload, dtype="<f8").reshape(padded_shape)
    grid = padded[: extent[0], : extent[1], : extent[2]].astype(np.float64)
    return HKLTable(grid, tuple(lo))
