"""Shared fixtures: array namespaces, the parity data folder, small simulations."""

import math
from pathlib import Path

import array_api_strict
import numpy as np
import pytest

import arraybragg

DATA = Path(__file__).parent / "data"
PARITY = DATA / "parity"
PARITY_INPUTS = PARITY / "inputs"

# A small, quick crystal/detector: triclinic cell with misset, 5^3 cells, 16x16 pixels.
SMALL_ARGS = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -N 5 "
              "-distance 100 -detpixels 16 -pixel 0.4 -oversample 1").split()


@pytest.fixture(params=["numpy", "array_api_strict"])
def xp(request):
    """The array namespace a test runs under (NumPy and the strict reference namespace)."""
    return {"numpy": np, "array_api_strict": array_api_strict}[request.param]


def explicit_rx(t):
    """Rotation about lab x by t rad, written out (independent of arraybragg.rotation)."""
    c, s = math.cos(t), math.sin(t)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def explicit_ry(t):
    """Rotation about lab y by t rad, written out."""
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def explicit_rz(t):
    """Rotation about lab z by t rad, written out."""
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def arr(xp, values):
    """A float64 array of namespace ``xp`` holding ``values``."""
    return xp.asarray(np.asarray(values, dtype=np.float64))


def central_difference_columns(func, points, step):
    """(n, 3) central differences of func (n, 3) -> (n,) along each column of ``points``."""
    columns = []
    for axis in range(points.shape[1]):
        e = np.zeros(points.shape[1])
        e[axis] = step
        columns.append((func(points + e) - func(points - e)) / (2 * step))
    return np.stack(columns, axis=1)


def to_numpy(x):
    """A float64 NumPy copy of an array of any namespace (or a Python scalar)."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.asarray(x, dtype=np.float64)
    return np.asarray(np.from_dlpack(x), dtype=np.float64)


def small_simulation(*extra, base=SMALL_ARGS):
    """The Simulation of the small base command line plus ``extra`` nanoBragg flags."""
    return arraybragg.from_nanobragg_args(list(base) + [str(a) for a in extra])


@pytest.fixture
def small_sim():
    """Factory fixture: small_sim('-round_xtal', ...) -> Simulation."""
    return small_simulation


@pytest.fixture
def parity_workdir(tmp_path, monkeypatch):
    """An empty working directory holding a link ``inputs`` -> tests/data/parity/inputs."""
    (tmp_path / "inputs").symlink_to(PARITY_INPUTS, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path
