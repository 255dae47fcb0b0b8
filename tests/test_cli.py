"""The ``arraybragg`` command (console script and ``python -m arraybragg``), run as a subprocess."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import arraybragg
from arraybragg import Simulation

SMALL = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -N 5 -distance 100 "
         "-detpixels 16 -pixel 0.4 -oversample 1 -nonoise -nopgm").split()
DEFAULT_FILES = ("floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img")


def console_script():
    beside = os.path.join(os.path.dirname(sys.executable), "arraybragg")
    path = beside if os.path.exists(beside) else shutil.which("arraybragg")
    assert path, "the arraybragg console script is not installed (pip install -e .)"
    return [path]


MODULE = [sys.executable, "-m", "arraybragg"]


def run(argv, cwd, command=None, check_rc=None):
    proc = subprocess.run((command or MODULE) + [str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr
    return proc


def image_of(path, fpixels=16, spixels=16):
    data = np.fromfile(path, dtype="<f4")
    assert data.size == fpixels * spixels
    return data.reshape(spixels, fpixels)


def expected_image(argv):
    return np.asarray(arraybragg.from_nanobragg_args(argv).run()).astype(np.float32)


@pytest.mark.parametrize("command", ["script", "module"])
def test_writes_floatimage_bin_in_the_working_directory(command, tmp_path):
    run(SMALL, tmp_path, console_script() if command == "script" else MODULE, check_rc=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["floatimage.bin", "intimage.img"]
    np.testing.assert_array_equal(image_of(tmp_path / "floatimage.bin"), expected_image(SMALL))


def test_floatfile_names_the_output(tmp_path):
    proc = run(SMALL + ["-floatfile", "out.bin", "-intfile", "out.img"], tmp_path, check_rc=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "out.img"]
    np.testing.assert_array_equal(image_of(tmp_path / "out.bin"), expected_image(SMALL))
    assert "out.bin" in proc.stdout


def test_version(tmp_path):
    for command in (console_script(), MODULE):
        proc = run(["--version"], tmp_path, command, check_rc=0)
        assert proc.stdout.strip() == f"arraybragg {arraybragg.__version__}"
    assert list(tmp_path.iterdir()) == []


def test_no_arguments_prints_usage_and_fails(tmp_path):
    proc = run([], tmp_path)
    assert proc.returncode != 0
    assert "usage" in (proc.stdout + proc.stderr).lower()


BAD = [
    (["-no_such_flag", "3"], "-no_such_flag"),
    (["-distance", "-5"], "-distance"),
    (["-distance", "0"], "-distance"),
    (["-lambda", "abc"], "-lambda"),
    (["-pixel", "0"], "-pixel"),
    (["-cell", "0", "0", "0", "90", "90", "90"], "-cell"),
    (["-N", "2.5"], "-N"),
    (["-oversample", "0"], "-oversample"),
    (["-mosaic", "nan"], "-mosaic"),
    (["-hkl", "missing.hkl"], "missing.hkl"),
    (["-detpixels"], "-detpixels"),
]


@pytest.mark.parametrize("extra,named", BAD)
def test_bad_input_is_one_error_line(extra, named, tmp_path):
    proc = run(SMALL + extra, tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert named in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_output_path_that_is_a_directory_fails_cleanly(tmp_path):
    (tmp_path / "taken").mkdir()
    proc = run(SMALL + ["-floatfile", "taken"], tmp_path)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert list((tmp_path / "taken").iterdir()) == []


def test_output_in_a_missing_directory_fails_cleanly(tmp_path):
    proc = run(SMALL + ["-floatfile", "nowhere/out.bin"], tmp_path)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_interrupted_run_leaves_the_old_file_untouched(tmp_path):
    """SIGINT during the render: no new floatimage.bin, no temporary file, the old file intact."""
    old = b"previous image"
    (tmp_path / "floatimage.bin").write_bytes(old)
    argv = ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -oversample 2 -detpixels 1024 -nonoise -nopgm "
            "-engine array").split()
    proc = subprocess.Popen(MODULE + argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stdout:
            if "dials origin" in line:           # the last summary line, printed just before rendering
                break
        time.sleep(0.2)
        assert proc.poll() is None, "the render finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["floatimage.bin"]
    assert (tmp_path / "floatimage.bin").read_bytes() == old


def test_params_out_round_trips_through_from_dict(tmp_path):
    argv = SMALL + ["-mosaic", "0.3", "-mosaic_dom", "3", "-mosaic_seed", "77", "-phi", "2", "-osc", "1",
                    "-params_out", "params.json"]
    run(argv, tmp_path, check_rc=0)
    with open(tmp_path / "params.json") as handle:
        data = json.load(handle)
    assert data["crystal"]["mosaic_seed"] == -77
    sim = Simulation.from_dict(data)
    np.testing.assert_array_equal(np.asarray(sim.run()).astype(np.float32), image_of(tmp_path / "floatimage.bin"))


def test_params_out_records_the_random_misset_seed(tmp_path):
    run(SMALL + ["-misset", "random", "-params_out", "p.json"], tmp_path, check_rc=0)
    with open(tmp_path / "p.json") as handle:
        data = json.load(handle)
    assert data["crystal"]["misset_random"] is True
    assert isinstance(data["crystal"]["misset_seed"], int)
    again = np.asarray(Simulation.from_dict(data).run()).astype(np.float32)
    np.testing.assert_array_equal(again, image_of(tmp_path / "floatimage.bin"))


# N = 1: the recommended oversampling is 1, so no "recommend -oversample" warning
QUIET = ("-cell 70 80 90 75 85 95 -default_F 100 -N 1 -detpixels 8 -pixel 0.1 -oversample 1 -nonoise "
         "-nopgm").split()


def warning_lines(proc):
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("WARNING:")]


def test_mosaic_without_domains_prints_one_warning_line(tmp_path):
    assert warning_lines(run(QUIET, tmp_path, check_rc=0)) == []
    proc = run(QUIET + ["-mosaic", "1"], tmp_path, check_rc=0)
    lines = warning_lines(proc)
    assert len(lines) == 1, lines
    assert "10 mosaic domains" in lines[0]


def test_each_coercion_is_one_warning_line(tmp_path):
    proc = run(QUIET + ["-N", "0", "-mosaic", "1", "-detector_thick", "100", "-detector_thicksteps", "1"], tmp_path,
               check_rc=0)
    lines = warning_lines(proc)
    assert len(lines) == len(set(lines)) == 3, lines        # one line per coercion, none repeated
    assert any("mosaic" in line for line in lines)
    assert any("raised to 1" in line for line in lines)
    assert any("raised to 2" in line for line in lines)


def test_summary_prints_derived_quantities(tmp_path):
    proc = run(("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -N 5 -distance 100 "
                "-detpixels_f 96 -detpixels_s 80 -pixel 0.1 -oversample 1 -xds -ORGX 30.5 -ORGY 45.25 "
                "-nonoise -nopgm").split(), tmp_path, check_rc=0)
    out = proc.stdout
    assert "sample pivot, xds convention" in out
    assert "dials origin= 100 -4.475 3" in out
    assert "Fclose=0.003 Sclose=0.004475" in out
    assert "1 sources" in out
