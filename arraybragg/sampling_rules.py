"""nanoBragg's automatic choices of sampling counts, ranges and steps.

Each function takes what the user gave (``None`` for "not given") and returns the resolved
values nanoBragg would use, with the warnings nanoBragg prints for its silent coercions.
Units are whatever the caller uses consistently (degrees, mrad, percent, µm).
"""
from __future__ import annotations

import math
import warnings


class NanoBraggWarning(UserWarning):
    """A nanoBragg rule that changed what the user asked for."""


def warn(message):
    """Report a nanoBragg coercion (the CLI prints these as one WARNING line each)."""
    warnings.warn(message, NanoBraggWarning, stacklevel=3)


def phi_sampling(osc=None, phistep=None, phisteps=None):
    """(osc, phistep, phisteps) from -osc, -phistep, -phisteps (degrees).

    -osc alone: 2 steps of osc/2; -phisteps alone: osc 1°; -osc with -phistep: ceil(osc/step)
    steps; -phistep alone: 2 steps of that size.
    """
    step_set = phistep is not None and phistep > 0.0
    if phisteps is None:
        if osc is None:
            return (phistep, phistep, 2) if step_set else (0.0, 0.0, 1)
        if not step_set:
            return osc, osc / 2.0, 2
        return osc, phistep, math.ceil(osc / phistep)
    phisteps = max(phisteps, 1)
    if osc is None:
        if not step_set:
            return 1.0, 1.0 / phisteps, phisteps
        return phistep, phistep, 2
    if phistep is None:
        return osc, osc / phisteps, phisteps
    return osc, phistep, phisteps


def range_sampling(value_range=None, step=None, steps=None, unset_range=None):
    """(range, step, steps) for divergence or dispersion, with nanoBragg's final sanity rule.

    ``unset_range`` is the range used when only a count is given (nanoBragg: 1 rad of
    divergence); any zero range, step or count collapses the axis to one sample.
    """
    step_set = step is not None and step > 0.0
    if steps is None or steps <= 0:
        if value_range is None:
            value_range, step, steps = (step, step, 2) if step_set else (0.0, 0.0, 1)
        elif not step_set:
            step, steps = value_range, 2
        else:
            steps = math.ceil(value_range / step)
    elif value_range is None:
        value_range, step, steps = (step, step, 2) if step_set else (unset_range, unset_range / steps, steps)
    elif not step_set:
        steps = max(steps, 2)
        step = value_range / (steps - 1)
    if value_range <= 0.0 or step is None or step <= 0.0 or steps <= 0:
        return 0.0, 0.0, 1
    return value_range, step, steps


def thickness_sampling(thick, thicksteps=None):
    """(thick, thickstep, thicksteps) of the detector sensor (µm).

    Thickness alone gives 2 layers of thick/2; n layers step thick/(n-1); n = 1 becomes 2.
    """
    if thicksteps is None or thicksteps <= 0:
        step, steps = thick / 2.0, 2
    else:
        if thicksteps == 1 and thick > 0.0:
            warn("one detector layer is raised to 2 (nanoBragg's rule)")
        steps = max(thicksteps, 2)
        step = thick / (steps - 1)
    if thick <= 0.0 or step <= 0.0:
        return 0.0, 0.0, 1
    return thick, step, steps


def mosaic_sampling(spread=None, domains=None):
    """(spread, domains): a spread without a count gives 10 domains, no or zero spread gives 1."""
    if domains is None or domains <= 0:
        if spread is None or spread == 0.0:
            return (spread or 0.0), 1
        warn("finite mosaicity with only one domain! upping to 10 mosaic domains")
        return spread, 10
    if spread is None:
        warn("no mosaic spread specified.  setting mosaic_domains = 1")
        return 0.0, 1
    if spread == 0.0:
        warn("zero mosaic spread specified.  setting mosaic_domains = 1")
        return 0.0, 1
    return spread, domains


def crystal_cells(n_cells, size_m, edge_m):
    """Unit cells per axis: ceil(size/edge) where a size is given, values below 1 become 1."""
    cells = []
    for n, size, edge in zip(n_cells, size_m, edge_m):
        if size is not None and size > 0:
            n = math.ceil(size / edge)
        cells.append(int(n))
    if min(cells) < 1:
        warn(f"N = {' x '.join(str(n) for n in cells)} unit cells: values below 1 are raised to 1 (nanoBragg's rule)")
    return tuple(max(n, 1) for n in cells)


def recommended_oversample(n_cells, edge_m, wavelength_m, distance_m, pixel_m):
    """nanoBragg's sub-pixel count: ceil(3 * largest crystal dimension / (lambda*distance/pixel)), >= 1."""
    largest = max(n * e for n, e in zip(n_cells, edge_m))
    return max(math.ceil(3.0 * largest / (wavelength_m * distance_m / pixel_m)), 1)
