"""The engine seam: which engine renders an :class:`arraybragg.engine.EngineInputs` bundle.

``ENGINES`` maps an engine name to its (render, render_vjp) pair, with the signatures of
:func:`arraybragg.engine.render` and :func:`arraybragg.engine.render_vjp`:

* ``array`` -- the reference engine, any array-API namespace, always available;
* ``numba`` -- the fused CPU kernels (``_kernels_numba``), NumPy float64/float32 only, present
  when numba imports.

:func:`select_engine` resolves a requested name (``"array"``, ``"numba"`` or ``"auto"``) for a
namespace and dtype and returns the chosen :class:`Engine`, whose ``name`` callers may report.
``"auto"`` takes the fastest engine that supports the inputs: numba, falling back to array.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from array_api_compat import is_numpy_namespace

from . import engine

NAMES = ("array", "numba", "auto")
NUMBA_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

ENGINES = {"array": (engine.render, engine.render_vjp)}
try:
    from . import _kernels_numba
except ImportError:  # numba is an optional dependency
    _kernels_numba = None
else:
    ENGINES["numba"] = (_kernels_numba.render, _kernels_numba.render_vjp)


class Engine(NamedTuple):
    """A chosen engine: its name and its render / render_vjp functions."""

    name: str
    render: Callable
    render_vjp: Callable


def available_engines():
    """Names of the engines that can run here (``array`` always, ``numba`` when installed)."""
    return tuple(ENGINES)


def _numba_supports(xp, dtype):
    return is_numpy_namespace(xp) and (dtype is None or np.dtype(dtype) in NUMBA_DTYPES)


def select_engine(name, xp, dtype=None):
    """The :class:`Engine` for ``name`` ('array', 'numba' or 'auto') on namespace ``xp`` and ``dtype``.

    'auto' picks 'numba' when it is installed and the inputs are NumPy float64/float32, else
    'array'.  Asking for 'numba' where it cannot run raises ValueError.
    """
    if name not in NAMES:
        raise ValueError(f"engine={name!r} is not known; choose from {', '.join(map(repr, NAMES))}")
    if name == "auto":
        name = "numba" if "numba" in ENGINES and _numba_supports(xp, dtype) else "array"
    elif name == "numba":
        if "numba" not in ENGINES:
            raise ValueError("engine='numba' needs the numba package (pip install 'arraybragg[numba]'); "
                             f"available engines: {', '.join(map(repr, available_engines()))}, or 'auto'")
        if not _numba_supports(xp, dtype):
            raise ValueError(f"engine='numba' runs on NumPy float64/float32 arrays only, not namespace "
                             f"{getattr(xp, '__name__', xp)!s} with dtype {dtype}; use engine='array' or 'auto'")
    return Engine(name, *ENGINES[name])
