"""SMV files: nanoBragg's header byte for byte, its integer pixels bit for bit, fabio compatibility, errors."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from arraybragg.smv import (
    header_value,
    int_image,
    read_smv,
    smv_header_nanobragg,
    smv_header_text,
    write_smv,
)

FILES = Path(__file__).parent / "data" / "files"
CASES = {case["name"]: case for case in json.loads((FILES / "files.json").read_text())}


def _float_image(name, shape):
    return np.fromfile(FILES / f"{name}.float.bin", "<f4").reshape(shape)


def _flag(name, flag, default=None):
    args = CASES[name]["args"]
    return float(args[args.index(flag) + 1]) if flag in args else default


def _log_values(name):
    """Xbeam ... Sclose (m) and the dials origin (mm) as nanoBragg printed them."""
    text = (FILES / f"{name}.log").read_text()
    values = {key: float(v) for key, v in re.findall(r"\b([XYFS](?:beam|close))=(\S+)", text)}
    values["dials"] = [float(v) for v in re.search(r"dials origin= (\S+) (\S+) (\S+)", text).groups()]
    return values


def _header_arguments(name):
    """smv_header_nanobragg arguments recovered from the reference header (inverting its formulas)."""
    header, _ = read_smv(FILES / f"{name}.img")
    pixel = float(header["PIXEL_SIZE"])
    detsize_s = pixel * int(header["SIZE2"])
    return dict(
        fpixels=int(header["SIZE1"]),
        spixels=int(header["SIZE2"]),
        pixel_size_mm=pixel,
        distance_mm=float(header["DISTANCE"]),
        wavelength_A=float(header["WAVELENGTH"]),
        xbeam_mm=float(header["BEAM_CENTER_X"]),
        ybeam_mm=float(header["BEAM_CENTER_Y"]),
        fbeam_mm=float(header["ADXV_CENTER_X"]),
        sbeam_mm=detsize_s - float(header["ADXV_CENTER_Y"]),
        detsize_s_mm=detsize_s,
        dials_origin_mm=[float(v) for v in header["DIALS_ORIGIN"].split(",")],
        orgx=float(header["XDS_ORGX"]),
        orgy=float(header["XDS_ORGY"]),
        close_distance_mm=float(header["CLOSE_DISTANCE"]),
        phi0_deg=float(header["PHI"]),
        osc_deg=float(header["OSC_RANGE"]),
        twotheta_deg=float(header["TWOTHETA"]),
    )


@pytest.mark.parametrize("name", ["A", "B"])
def test_header_arguments_agree_with_log(name):
    arguments, log = _header_arguments(name), _log_values(name)
    for key, printed in [("xbeam_mm", "Xbeam"), ("ybeam_mm", "Ybeam"), ("fbeam_mm", "Fbeam"), ("sbeam_mm", "Sbeam")]:
        assert arguments[key] == pytest.approx(1000 * log[printed], rel=1e-5)
    assert arguments["dials_origin_mm"] == pytest.approx(log["dials"], rel=1e-5)
    assert arguments["distance_mm"] == _flag(name, "-distance")
    assert arguments["pixel_size_mm"] == _flag(name, "-pixel")
    assert arguments["twotheta_deg"] == _flag(name, "-twotheta", 0.0)
    assert arguments["phi0_deg"] == _flag(name, "-phi", 0.0)


@pytest.mark.parametrize("name", ["A", "B"])
def test_header_byte_identical_to_nanobragg(name):
    header = smv_header_nanobragg(**_header_arguments(name))
    reference = (FILES / f"{name}.img").read_bytes()[:512]
    text = smv_header_text(header).encode("ascii")
    assert reference == text.ljust(512, b" ")
    assert b"DIALS_ORIGIN=" in text and re.search(rb"DIALS_ORIGIN=[^;\n]*\n", text)  # nanoBragg's line without ';'


@pytest.mark.parametrize("name, scale, adc", [("A", None, 40.0), ("B", 200.0, 10.0)])
def test_int_image_equals_nanobragg_pixel_for_pixel(name, scale, adc):
    header, reference = read_smv(FILES / f"{name}.img")
    assert scale == _flag(name, "-scale") and adc == _flag(name, "-adc", 40.0)
    pixels, used = int_image(_float_image(name, reference.shape), scale=scale, adc=adc)
    assert pixels.dtype == np.uint16
    assert np.array_equal(pixels, reference)
    if scale is None:
        assert "%g" % used == "1.41673"  # intfile_scale printed in A.log
        assert used == 55000.0 / float(_float_image(name, reference.shape).max())


@pytest.mark.parametrize("name", ["A", "B"])
def test_written_file_byte_identical(tmp_path, name):
    header, reference = read_smv(FILES / f"{name}.img")
    out = tmp_path / "out.img"
    write_smv(out, reference, smv_header_nanobragg(**_header_arguments(name)))
    assert out.read_bytes() == (FILES / f"{name}.img").read_bytes()


def test_int_image_single_precision_rounding():
    # 1234.4999999 + 0.5 rounds up to 1235 in float32: nanoBragg's floorf gives 1235, a double floor 1234
    pixels, _ = int_image(np.ones((1, 1)), scale=1234.4999999, adc=0.0)
    assert pixels.item() == 1235
    pixels, _ = int_image(np.ones((1, 1)), scale=1234.49, adc=0.0)
    assert pixels.item() == 1234


def test_int_image_clipping_roi_and_auto_scale():
    image = np.array([[-5.0, 0.0, 1.0], [2.0, 100.0, 4.0]], dtype=np.float32)
    pixels, scale = int_image(image, scale=1000.0, adc=40.0)
    assert scale == 1000.0
    assert pixels.tolist() == [[0, 40, 1040], [2040, 65535, 4040]]
    pixels, scale = int_image(image, roi=(0, 1, 1, 1))  # only (fast 0..1, slow 1): max 100
    assert scale == 550.0
    assert pixels.tolist() == [[0, 0, 0], [1140, 55040, 0]]
    pixels, scale = int_image(np.zeros((2, 2)), scale=-1.0)
    assert scale == 1.0 and np.all(pixels == 40)
    with pytest.raises(ValueError, match="NaN"):
        int_image(np.full((2, 2), np.nan))


def test_fabio_reads_our_files(tmp_path):
    fabio = pytest.importorskip("fabio")
    header = smv_header_nanobragg(**_header_arguments("B"), extra={"SEED": -99})
    rng = np.random.Generator(np.random.PCG64(7))
    data = rng.integers(0, 65536, size=(64, 72), dtype=np.uint16)
    out = tmp_path / "ours.img"
    write_smv(out, data, header)
    image = fabio.open(str(out))
    assert np.array_equal(image.data, data)
    for key, value in header.items():
        assert image.header[key] == value
    assert image.header["SEED"] == "-99"


def test_read_back_and_byte_order(tmp_path):
    data = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    header = smv_header_nanobragg(**{**_header_arguments("A"), "fpixels": 4, "spixels": 3})
    header["BYTE_ORDER"] = "big_endian"
    out = tmp_path / "big.img"
    write_smv(out, data, header)
    assert out.read_bytes()[512:514] == b"\x00\x00" and out.read_bytes()[514:516] == (5000).to_bytes(2, "big")
    back_header, back = read_smv(out)
    assert back_header == header and np.array_equal(back, data) and back.dtype == np.uint16


def test_header_bytes_honoured(tmp_path):
    data = np.array([[1, 2], [3, 4]], dtype=np.uint16)
    header = {"HEADER_BYTES": "1024", "DIM": "2", "BYTE_ORDER": "little_endian", "TYPE": "unsigned_short",
              "SIZE1": "2", "SIZE2": "2"}
    out = tmp_path / "big_header.img"
    write_smv(out, data, header)
    assert out.stat().st_size == 1024 + 8
    assert np.array_equal(read_smv(out)[1], data)


def test_header_value_lookup():
    header, _ = read_smv(FILES / "B.img")
    assert header_value(header, "DISTANCE") == 100.0
    assert header_value(header, "ORGX") == 30.0  # XDS_ORGX, the key nanoBragg's -img reads
    assert header_value(header, "DIALS_ORIGIN") == 99.2752  # leading number, as atof
    assert header_value(header, "GAIN") is None
    with pytest.raises(ValueError, match="BEAMLINE='fake' is not a number"):
        header_value(header, "BEAMLINE")
    changed = {**header, "DISTANCE": "250", "CLOSE_DISTANCE": "240"}
    assert header_value(changed, "DISTANCE") == 250.0
    assert header_value(changed, "DISTANCE", compat=True) == 240.0  # nanoBragg's last-substring match
    assert header_value(changed, "BEAMLINE", compat=True) == 0.0
    assert header_value(changed, "GAIN", compat=True) is None


def test_write_validation(tmp_path):
    header = smv_header_nanobragg(**_header_arguments("A"))
    with pytest.raises(ValueError, match=r"SIZE1=64, SIZE2=64 but data has shape \(2, 2\)"):
        write_smv(tmp_path / "x.img", np.zeros((2, 2), np.uint16), header)
    with pytest.raises(ValueError, match="0..65535"):
        write_smv(tmp_path / "x.img", np.full((64, 64), 70000), header)
    with pytest.raises(ValueError, match="needs .* bytes but HEADER_BYTES=512"):
        write_smv(tmp_path / "x.img", np.zeros((64, 64), np.uint16), {**header, "NOTE": "x" * 200})
    with pytest.raises(ValueError, match="without ';'"):
        write_smv(tmp_path / "x.img", np.zeros((64, 64), np.uint16), {**header, "NOTE": "a;b"})
    assert not list(tmp_path.iterdir())


def test_bad_smv_files(tmp_path):
    whole = (FILES / "A.img").read_bytes()
    cases = {
        "short_header.img": (whole[:300], "truncated SMV header"),
        "short_data.img": (whole[:-2], r"truncated SMV data \(8190 of 8192 bytes"),
        "not_smv.img": (b"P5\n64 64\n255\n" + bytes(4096), "not an SMV image"),
        "no_brace.img": (whole[:512].replace(b"}", b" ") + whole[512:], "no closing"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=message) as info:
            read_smv(path)
        assert name in str(info.value)
    with pytest.raises(FileNotFoundError):
        read_smv(tmp_path / "absent.img")
