"""Moving arrays of any supported namespace to host NumPy memory."""
from __future__ import annotations

import numpy as np
from array_api_compat import is_cupy_array


def host_array(x) -> np.ndarray:
    """A NumPy array with the values of ``x`` (NumPy, CuPy, any DLPack array, or nested lists)."""
    if isinstance(x, np.ndarray):
        return x
    if is_cupy_array(x):
        return x.get()
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return np.asarray(x)
