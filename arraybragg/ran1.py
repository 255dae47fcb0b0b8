"""nanoBragg's uniform generator: Park-Miller minimal standard with a Bays-Durham shuffle.

The shuffle table is program-wide state in nanoBragg (shared by the random misset, the mosaic
domains and the noise), so it lives in a `Ran1` instance; each consumer's seed (C's `idum`) is
passed in and handed back, as the C program passes it by pointer.
"""

import operator

import numpy as np

_MULTIPLIER = 16807
_MODULUS = 2147483647
_SCHRAGE_Q = 127773  # _MODULUS // _MULTIPLIER
_SCHRAGE_R = 2836  # _MODULUS % _MULTIPLIER
_TABLE_SIZE = 32
_WARM_UP_DRAWS = 8
_BUCKET = 1 + (_MODULUS - 1) // _TABLE_SIZE
_INVERSE_MODULUS = 1.0 / _MODULUS
_LARGEST_VALUE = 1.0 - 1.2e-7


def _park_miller_step(state: int) -> int:
    """One multiplicative congruential step, state * 16807 mod (2^31 - 1), by Schrage's method."""
    quotient = state // _SCHRAGE_Q
    state = _MULTIPLIER * (state - quotient * _SCHRAGE_Q) - _SCHRAGE_R * quotient
    return state + _MODULUS if state < 0 else state


class Ran1:
    """nanoBragg's ran1 (Park-Miller minimal standard, 32-entry Bays-Durham shuffle, 8 warm-up draws),
    with the program-wide shuffle state held by the instance; seeds (C's `idum`) are held by the caller."""

    def __init__(self) -> None:
        self._table = [0] * _TABLE_SIZE
        self._last = 0  # 0 means the table was never loaded

    def _load_table(self, idum: int) -> int:
        """Seed from idum (<= 0 -> -idum, else 1; 0 -> 1), fill the table after 8 warm-up steps."""
        state = max(-idum, 1)
        for slot in range(_TABLE_SIZE + _WARM_UP_DRAWS - 1, -1, -1):
            state = _park_miller_step(state)
            if slot < _TABLE_SIZE:
                self._table[slot] = state
        self._last = self._table[0]
        return state

    def uniform(self, idum: int) -> tuple[float, int]:
        """One draw: (value, new_idum). value is the float32 C returns (as a Python float), in (0, 1-1.2e-7];
        (re)initialises exactly as C does when idum <= 0 or the table was never loaded."""
        try:
            idum = operator.index(idum)
        except TypeError:
            raise ValueError(f"idum: {idum!r}; expected an integer") from None
        if idum <= 0 or self._last == 0:
            idum = self._load_table(idum)
        idum = _park_miller_step(idum)
        slot = self._last // _BUCKET
        self._last = self._table[slot]
        self._table[slot] = idum
        value = float(np.float32(self._last * _INVERSE_MODULUS))
        if value > _LARGEST_VALUE:
            value = float(np.float32(_LARGEST_VALUE))
        return value, idum
