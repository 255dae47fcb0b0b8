"""End to end: the command line writes nanoBragg's files for the two reference runs.

tests/data/files holds nanoBragg's outputs for runs A and B (files.json); B was made in the
directory where A had left Fdump.bin, so nanoBragg read A's structure factors implicitly.
"""
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from arraybragg.cli import main, run
from arraybragg.hkl import read_fdump, read_hkl
from arraybragg.pgm import read_pgm
from arraybragg.nanobragg_args import from_nanobragg_args
from arraybragg.smv import read_smv, write_smv

DATA = Path(__file__).parent / "data"
FILES = DATA / "files"
GEOMETRY_KEYS = ("SIZE1", "SIZE2", "PIXEL_SIZE", "DISTANCE", "WAVELENGTH", "BEAM_CENTER_X", "BEAM_CENTER_Y",
                 "ADXV_CENTER_X", "ADXV_CENTER_Y", "MOSFLM_CENTER_X", "MOSFLM_CENTER_Y", "DENZO_X_BEAM",
                 "DENZO_Y_BEAM", "DIALS_ORIGIN", "XDS_ORGX", "XDS_ORGY", "CLOSE_DISTANCE", "PHI", "OSC_START",
                 "OSC_RANGE", "TWOTHETA", "BYTE_ORDER", "TYPE", "HEADER_BYTES")


def _args(name):
    cases = {c["name"]: c for c in json.loads((FILES / "files.json").read_text())}
    return list(cases[name]["args"])


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "inputs").symlink_to(DATA / "inputs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(argv):
    return run(argv, out=io.StringIO())


def _assert_same_files(name, workdir):
    ours_header, ours = read_smv(workdir / f"{name}.img")
    ref_header, ref = read_smv(FILES / f"{name}.img")
    for key in GEOMETRY_KEYS:
        assert ours_header[key] == ref_header[key], key
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(read_pgm(workdir / f"{name}.pgm"), read_pgm(FILES / f"{name}.pgm"))
    assert (workdir / f"{name}.pgm").read_bytes() == (FILES / f"{name}.pgm").read_bytes()
    np.testing.assert_array_equal(np.fromfile(workdir / f"{name}.float.bin", "<f4"),
                                  np.fromfile(FILES / f"{name}.float.bin", "<f4"))


def test_run_a_reproduces_nanobragg_files(workdir):
    _run(_args("A"))
    _assert_same_files("A", workdir)


def test_run_b_with_the_cache_named_explicitly(workdir):
    _run(_args("B") + ["-dump", str(FILES / "A.Fdump.bin")])
    _assert_same_files("B", workdir)


def test_run_b_after_a_in_compat_mode_reads_the_implicit_cache(workdir):
    _run(_args("A") + ["-nanobragg_compat"])
    assert (workdir / "Fdump.bin").read_bytes() == (FILES / "A.Fdump.bin").read_bytes()
    _run(_args("B") + ["-nanobragg_compat"])
    _assert_same_files("B", workdir)


def test_default_mode_never_touches_fdump(workdir):
    (workdir / "Fdump.bin").write_bytes((FILES / "A.Fdump.bin").read_bytes())
    image_default = _run(_args("B"))
    assert not np.array_equal(image_default, np.fromfile(FILES / "B.float.bin", "<f4").reshape(64, 72))
    os.remove(workdir / "Fdump.bin")
    _run(_args("A"))
    assert not (workdir / "Fdump.bin").exists()


def test_dump_written_on_request_round_trips(workdir):
    _run(_args("A") + ["-dump", "cache.bin"])
    np.testing.assert_array_equal(read_fdump("cache.bin").grid, read_hkl(DATA / "inputs" / "P1.hkl").filled(0.0))


def test_default_files_and_switches(workdir):
    argv = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "32",
            "-distance", "100", "-seed", "5"]
    _run(argv)
    assert sorted(p.name for p in workdir.iterdir() if p.name != "inputs") == [
        "floatimage.bin", "image.pgm", "intimage.img", "noiseimage.img"]
    for p in workdir.glob("*.*"):
        p.unlink()
    _run(argv + ["-nopgm", "-nonoise"])
    assert sorted(p.name for p in workdir.iterdir() if p.name != "inputs") == ["floatimage.bin", "intimage.img"]
    for p in workdir.glob("*.*"):
        p.unlink()
    _run(argv + ["-nopgm", "-pgmfile", "x.pgm", "-noisefile", "n.img", "-nonoise"])
    assert sorted(p.name for p in workdir.iterdir() if p.name != "inputs") == [
        "floatimage.bin", "intimage.img", "x.pgm"]


def test_noise_image_is_reproducible_and_records_its_seed(workdir):
    argv = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "32",
            "-distance", "100", "-nopgm"]
    _run(argv + ["-seed", "77", "-noisefile", "a.img"])
    _run(argv + ["-seed", "77", "-noisefile", "b.img"])
    _run(argv + ["-seed", "78", "-noisefile", "c.img"])
    header_a, a = read_smv("a.img")
    assert header_a["SEED"] == "77"
    np.testing.assert_array_equal(a, read_smv("b.img")[1])
    assert not np.array_equal(a, read_smv("c.img")[1])
    out = io.StringIO()
    run(argv + ["-noisefile", "d.img"], out=out)
    seed = read_smv("d.img")[0]["SEED"]
    assert f"-seed {seed}" in out.getvalue()


def test_img_header_sets_the_detector_and_flags_override(workdir):
    _run(_args("B") + ["-dump", str(FILES / "A.Fdump.bin")])
    argv = ["-cell", "70", "80", "90", "75", "85", "95", "-default_F", "100", "-N", "5", "-xds", "-nopgm",
            "-nonoise", "-img", "B.img", "-floatfile", "from_header.bin"]
    image = _run(argv)
    assert image.shape == (64, 72)
    header = read_smv("intimage.img")[0]
    for key in ("PIXEL_SIZE", "WAVELENGTH", "XDS_ORGX", "XDS_ORGY", "PHI", "OSC_RANGE"):
        assert header[key] == read_smv("B.img")[0][key], key
    image = _run(argv + ["-detpixels", "40"])
    assert image.shape == (40, 40)


def test_mask_zeros_skip_pixels(workdir):
    base = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "24",
            "-distance", "100", "-nopgm", "-nonoise"]
    full = _run(base)
    mask = np.ones((24, 24), dtype=np.uint16)
    mask[5:10, 3:20] = 0
    header = {"HEADER_BYTES": "512", "DIM": "2", "BYTE_ORDER": "little_endian", "TYPE": "unsigned_short",
              "SIZE1": "24", "SIZE2": "24", "PIXEL_SIZE": "0.1"}
    write_smv("mask.img", mask, header)
    masked = _run(base + ["-mask", "mask.img"])
    np.testing.assert_array_equal(masked[mask == 0], 0.0)
    np.testing.assert_allclose(masked[mask != 0], full[mask != 0], rtol=1e-12)


def test_mask_beam_centre_y_counts_from_the_far_edge(workdir):
    header = {"HEADER_BYTES": "512", "DIM": "2", "BYTE_ORDER": "little_endian", "TYPE": "unsigned_short",
              "SIZE1": "30", "SIZE2": "20", "PIXEL_SIZE": "0.2", "BEAM_CENTER_X": "2.5", "BEAM_CENTER_Y": "1.5"}
    write_smv("mask.img", np.ones((20, 30), dtype=np.uint16), header)
    write_smv("header.img", np.ones((20, 30), dtype=np.uint16), header)
    base = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1"]
    from_mask = from_nanobragg_args(base + ["-mask", "mask.img"]).detector
    from_img = from_nanobragg_args(base + ["-img", "header.img"]).detector
    assert (from_mask.fpixels, from_mask.spixels, from_mask.pixel_mm) == (30, 20, 0.2)
    assert from_mask.xbeam_mm == 2.5 and from_mask.ybeam_mm == pytest.approx(20 * 0.2 - 1.5)
    assert from_img.xbeam_mm == 2.5 and from_img.ybeam_mm == 1.5


@pytest.mark.parametrize("content, message", [
    (b"{\nHEADER_BYTES=512;\nDIM=2;\n", "mask.img"),
    (b"not an smv file at all" * 30, "mask.img"),
])
def test_bad_mask_file_is_one_clear_error(workdir, capsys, content, message):
    Path("mask.img").write_bytes(content)
    status = main(["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1", "-mask", "mask.img"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0
    assert len(err) == 1 and err[0].startswith("arraybragg: error:") and message in err[0]
    assert not Path("floatimage.bin").exists()


def test_missing_mask_and_bad_hkl_are_one_clear_error(workdir, capsys):
    assert main(["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1", "-mask", "nope.img"]) != 0
    assert "nope.img" in capsys.readouterr().err
    Path("bad.hkl").write_text("1 2 3 10\n1 2 x 11\n")
    assert main(["-cell", "100", "100", "100", "90", "90", "90", "-hkl", "bad.hkl"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.hkl" in err[0] and "2" in err[0]


def test_engine_flag_chooses_and_reports_the_engine(workdir, capsys):
    argv = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "24",
            "-distance", "100", "-nopgm", "-nonoise"]
    out = io.StringIO()
    array_image = run(argv + ["-engine", "array"], out=out)
    assert "array engine" in out.getvalue()
    np.testing.assert_allclose(_run(argv), array_image, rtol=1e-12, atol=1e-12 * array_image.max())
    assert main(argv + ["-engine", "gpu"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "-engine" in err[0] and "numba" in err[0]


def test_params_dump_records_the_noise_seed_taken_from_the_system(workdir):
    argv = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "16",
            "-distance", "100", "-nopgm", "-params_out", "p.json"]
    _run(argv)
    dump = json.loads(Path("p.json").read_text())
    assert str(-dump["noise_seed"]) == read_smv("noiseimage.img")[0]["SEED"]
    _run(argv + ["-nonoise"])
    assert "noise_seed" not in json.loads(Path("p.json").read_text())
