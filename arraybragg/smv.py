"""SMV (ADSC) images as nanoBragg writes and reads them: header, integer pixels, file I/O.

An SMV file is a text header of HEADER_BYTES bytes -- ``{``, newline, ``KEY=VALUE;`` lines,
``}``, form feed, padded with spaces -- followed by SIZE1 x SIZE2 unsigned 16-bit pixels,
fast index (SIZE1) varying fastest, in the header's BYTE_ORDER.
"""

import os
import re

import numpy as np

from .atomic import atomic_output
from .host import host_array
from .statistics import float32_roi_values

HEADER_BYTES = 512
_BYTE_ORDERS = {"little_endian": "<u2", "big_endian": ">u2"}
_FORBIDDEN_KEY = re.compile(r"[=;{}\n\r\f]")
_FORBIDDEN_VALUE = re.compile(r"[;{}\n\r\f]")
_NUMERIC_PREFIX = re.compile(r"[ \t\n\v\f\r]*([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan))", re.IGNORECASE)
_NO_SEMICOLON_KEYS = ("DIALS_ORIGIN",)
INT_IMAGE_MAX = 65535.0
AUTO_SCALE_TARGET = 55000.0


def format_g(value) -> str:
    """A number formatted like C's ``%g`` (six significant digits, trailing zeros dropped)."""
    return "%g" % float(value)


def _format_value(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return "%d" % value
    return format_g(value)


def smv_header_nanobragg(
    *,
    fpixels,
    spixels,
    pixel_size_mm,
    distance_mm,
    wavelength_A,
    xbeam_mm,
    ybeam_mm,
    fbeam_mm,
    sbeam_mm,
    detsize_s_mm,
    dials_origin_mm,
    orgx,
    orgy,
    close_distance_mm,
    phi0_deg,
    osc_deg,
    twotheta_deg,
    extra=None,
) -> dict:
    """The header nanoBragg writes for its ``-intfile`` and ``-noisefile``, as an ordered dict of strings.

    Beam centres per convention: BEAM_CENTER = (Xbeam, Ybeam); ADXV = (Fbeam, detsize_s - Sbeam);
    MOSFLM = (Sbeam - pixel/2, Fbeam - pixel/2); DENZO = (Sbeam, Fbeam); all in mm.
    ``dials_origin_mm`` is a 3-vector; ``extra`` (key -> str or number) adds keys at the end
    (a key already present is replaced in place).
    """
    dials = [float(v) for v in dials_origin_mm]
    if len(dials) != 3:
        raise ValueError(f"dials_origin_mm={dials_origin_mm!r}: three numbers (mm) are required")
    header = {
        "HEADER_BYTES": "%d" % HEADER_BYTES,
        "DIM": "2",
        "BYTE_ORDER": "little_endian",
        "TYPE": "unsigned_short",
        "SIZE1": "%d" % fpixels,
        "SIZE2": "%d" % spixels,
        "PIXEL_SIZE": format_g(pixel_size_mm),
        "DISTANCE": format_g(distance_mm),
        "WAVELENGTH": format_g(wavelength_A),
        "BEAM_CENTER_X": format_g(xbeam_mm),
        "BEAM_CENTER_Y": format_g(ybeam_mm),
        "ADXV_CENTER_X": format_g(fbeam_mm),
        "ADXV_CENTER_Y": format_g(detsize_s_mm - sbeam_mm),
        "MOSFLM_CENTER_X": format_g(sbeam_mm - 0.5 * pixel_size_mm),
        "MOSFLM_CENTER_Y": format_g(fbeam_mm - 0.5 * pixel_size_mm),
        "DENZO_X_BEAM": format_g(sbeam_mm),
        "DENZO_Y_BEAM": format_g(fbeam_mm),
        "DIALS_ORIGIN": ",".join(format_g(v) for v in dials),
        "XDS_ORGX": format_g(orgx),
        "XDS_ORGY": format_g(orgy),
        "CLOSE_DISTANCE": format_g(close_distance_mm),
        "PHI": format_g(phi0_deg),
        "OSC_START": format_g(phi0_deg),
        "OSC_RANGE": format_g(osc_deg),
        "TWOTHETA": format_g(twotheta_deg),
        "DETECTOR_SN": "000",
        "BEAMLINE": "fake",
    }
    for key, value in (extra or {}).items():
        header[str(key)] = _format_value(value)
    return header


def smv_header_text(header: dict) -> str:
    """The header text without padding: ``{\\n``, one ``KEY=VALUE;`` line per key, ``}\\f``.

    As nanoBragg writes it, the DIALS_ORIGIN line has no semicolon.
    """
    lines = ["{\n"]
    for key, value in header.items():
        key, value = str(key), _format_value(value)
        if not key or _FORBIDDEN_KEY.search(key):
            raise ValueError(f"header key {key!r}: a non-empty key without '=', ';', braces or line breaks is required")
        if _FORBIDDEN_VALUE.search(value):
            raise ValueError(f"header[{key!r}]={value!r}: a value without ';', braces or line breaks is required")
        lines.append(f"{key}={value}\n" if key in _NO_SEMICOLON_KEYS else f"{key}={value};\n")
    lines.append("}\f")
    return "".join(lines)


def with_header_room(header: dict) -> dict:
    """The header with HEADER_BYTES raised to the next multiple of 512 that holds its text.

    nanoBragg keeps 512 and writes a header that overruns it (the pixels then start late);
    long values (e.g. a DIALS_ORIGIN of tilted detectors) need the room.
    """
    size = _required_int(header, "HEADER_BYTES", "with_header_room")
    needed = len(smv_header_text(header).encode("ascii"))
    if needed <= size:
        return header
    return {**header, "HEADER_BYTES": str(512 * -(-needed // 512))}


def _required_int(header: dict, key: str, where: str) -> int:
    value = header.get(key)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{where}: header {key}={value!r}; an integer is required") from None


def write_smv(path, data_uint16, header: dict) -> None:
    """Write an SMV file atomically, byte for byte as nanoBragg does for the same header.

    data_uint16: (SIZE2, SIZE1) unsigned 16-bit pixels (slow, fast); any integer array with
    values in 0..65535 is accepted. The header must hold HEADER_BYTES, BYTE_ORDER
    (little_endian or big_endian; the pixels are written in that order), TYPE=unsigned_short
    and SIZE1/SIZE2 matching the data; the text must fit in HEADER_BYTES.
    """
    data = host_array(data_uint16)
    if data.ndim != 2 or not (np.issubdtype(data.dtype, np.integer) or data.dtype == np.bool_):
        raise ValueError(f"data_uint16: {data.ndim}-D {data.dtype} array; a 2-D integer array (slow, fast) is required")
    if data.size and (data.min() < 0 or data.max() > 65535):
        raise ValueError(f"data_uint16: values {data.min()}..{data.max()}; 0..65535 is required")
    where = "write_smv"
    header_bytes = _required_int(header, "HEADER_BYTES", where)
    size1, size2 = _required_int(header, "SIZE1", where), _required_int(header, "SIZE2", where)
    if (size2, size1) != data.shape:
        raise ValueError(f"header SIZE1={size1}, SIZE2={size2} but data has shape {data.shape} (slow, fast)")
    if header.get("TYPE") != "unsigned_short":
        raise ValueError(f"header TYPE={header.get('TYPE')!r}; only 'unsigned_short' is written")
    byte_order = header.get("BYTE_ORDER")
    if byte_order not in _BYTE_ORDERS:
        raise ValueError(f"header BYTE_ORDER={byte_order!r}; allowed: {sorted(_BYTE_ORDERS)}")
    text = smv_header_text(header).encode("ascii")
    if len(text) > header_bytes:
        raise ValueError(f"header text needs {len(text)} bytes but HEADER_BYTES={header_bytes}")
    with atomic_output(path, "wb") as handle:
        handle.write(text.ljust(header_bytes, b" "))
        handle.write(data.astype(_BYTE_ORDERS[byte_order]).tobytes(order="C"))


def parse_smv_header(text: str) -> dict:
    """KEY=VALUE pairs between ``{`` and ``}``, values stripped of blanks and a trailing ';'.

    A key given twice keeps its last value, placed where it last occurs.
    """
    body = text[text.find("{") + 1 : text.find("}")]
    header = {}
    for line in body.split("\n"):
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if value.endswith(";"):
            value = value[:-1].rstrip()
        header.pop(key, None)
        header[key] = value
    return header


def read_smv(path) -> tuple[dict, np.ndarray]:
    """Read an SMV file: (header dict of strings, (SIZE2, SIZE1) uint16 pixels in native order).

    HEADER_BYTES and BYTE_ORDER are honoured; TYPE must be unsigned_short. Raises
    FileNotFoundError for a missing file and ValueError (naming the file) for a file that is
    not SMV or whose header or data are truncated.
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        raw = handle.read()
    start = raw[: HEADER_BYTES].decode("latin-1")
    match = re.match(r"\{\s*HEADER_BYTES\s*=\s*(\d+)", start)
    if match is None:
        raise ValueError(f"{path}: not an SMV image (it must start with '{{' and HEADER_BYTES=)")
    header_bytes = int(match.group(1))
    if len(raw) < header_bytes:
        raise ValueError(f"{path}: truncated SMV header ({len(raw)} bytes; HEADER_BYTES={header_bytes})")
    text = raw[:header_bytes].decode("latin-1")
    if "}" not in text:
        raise ValueError(f"{path}: SMV header has no closing '}}' within HEADER_BYTES={header_bytes}")
    header = parse_smv_header(text)
    size1, size2 = _required_int(header, "SIZE1", path), _required_int(header, "SIZE2", path)
    if header.get("TYPE", "unsigned_short") != "unsigned_short":
        raise ValueError(f"{path}: TYPE={header.get('TYPE')!r}; only unsigned_short SMV images are supported")
    dtype = _BYTE_ORDERS.get(header.get("BYTE_ORDER", "little_endian"))
    if dtype is None:
        raise ValueError(f"{path}: BYTE_ORDER={header.get('BYTE_ORDER')!r}; allowed: {sorted(_BYTE_ORDERS)}")
    if size1 < 0 or size2 < 0:
        raise ValueError(f"{path}: SIZE1={size1}, SIZE2={size2}; non-negative sizes are required")
    needed = 2 * size1 * size2
    payload = raw[header_bytes : header_bytes + needed]
    if len(payload) < needed:
        raise ValueError(f"{path}: truncated SMV data ({len(payload)} of {needed} bytes for {size1}x{size2} pixels)")
    data = np.frombuffer(payload, dtype=dtype).reshape(size2, size1).astype(np.uint16)
    return header, data


def _numeric_prefix(text: str):
    match = _NUMERIC_PREFIX.match(text)
    return float(match.group(1)) if match else None


def header_value(header: dict, key, compat: bool = False) -> float | None:
    """Numeric value of ``key`` in an SMV header dict, None when the key is absent.

    Default: the exact key, or else the single key ending in "_" + key (so "ORGX" finds
    XDS_ORGX); the value's leading number is used (ValueError when it has none).
    compat=True reproduces nanoBragg's lookup: the last occurrence of ``key`` as a substring
    anywhere in the header text wins, so "DISTANCE" reads CLOSE_DISTANCE when that follows it;
    a value without a leading number reads as 0.
    """
    key = str(key)
    if compat:
        text = "".join(f"{k}={v}\n" for k, v in header.items())
        found = text.rfind(key)
        if found < 0:
            return None
        equals = text.find("=", found + len(key))
        if equals < 0:
            return 0.0
        value = _numeric_prefix(text[equals + 1 :])
        return 0.0 if value is None else value
    if key in header:
        name = key
    else:
        candidates = [k for k in header if k.endswith("_" + key)]
        if not candidates:
            return None
        if len(candidates) > 1:
            raise ValueError(f"header key {key!r} is ambiguous: {candidates}")
        name = candidates[0]
    value = _numeric_prefix(str(header[name]))
    if value is None:
        raise ValueError(f"header {name}={header[name]!r} is not a number")
    return value


def auto_int_scale(max_value: float) -> float:
    """nanoBragg's automatic ``-intfile`` scale: 55000 / max, or 1 when max <= 0."""
    return AUTO_SCALE_TARGET / max_value if max_value > 0.0 else 1.0


def int_image(float_image, scale=None, adc=40.0, roi=None) -> tuple[np.ndarray, float]:
    """nanoBragg's ``-intfile`` pixels from a (slow, fast) float image.

    The image is taken as float32 (what nanoBragg stores). Per pixel, in double precision,
    v * scale + adc is clipped to [0, 65535]; then 0.5 is added, the sum rounded to float32 and
    floored (C's floorf), which gives the unsigned 16-bit value. scale None or <= 0: the
    automatic scale 55000 / max over the roi (1 when that max <= 0). Pixels outside roi =
    (xmin, xmax, ymin, ymax) (inclusive) are 0. Returns (uint16 image, scale used).
    """
    image, inside, values = float32_roi_values(float_image, roi, "integer pixel")
    if scale is None or scale <= 0.0:
        scale = auto_int_scale(max(0.0, float(values.max())) if values.size else 0.0)
    test = np.clip(values * float(scale) + float(adc), 0.0, INT_IMAGE_MAX)
    pixels = np.floor((test + 0.5).astype(np.float32))
    out = np.zeros(image.shape, dtype=np.uint16)
    out[inside] = pixels.astype(np.uint16)
    return out, float(scale)
