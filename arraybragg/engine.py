"""The reference ``array`` engine: per-pixel accumulation on any array-API namespace.

:func:`render` turns an :class:`EngineInputs` bundle into an image; :func:`render_vjp` is its
adjoint, reducing over pixels into cotangents of the small inputs (lattice vectors of every
(phi step, mosaic domain) pair and the reciprocal metric).  Pixels are processed in chunks of
the rendered region (ROI, row-major, the order nanoBragg visits them) so that peak memory is
bounded by ``chunk_terms`` whatever the detector size.  Every pixel evaluates, in nanoBragg's
order, thickness layers, sub-pixel rows and columns, sources, phi steps and mosaic domains.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from array_api_compat import array_namespace

from .lattice_factor import lattice_factor, lattice_factor_grad, gauss_exponent_scale, nearest_index
from .structure_factor import interpolation_out_of_range, nearest_F, tricubic_F
from .vectors import cross, unit

DEFAULT_CHUNK_TERMS = 1 << 14


@dataclass(frozen=True, eq=False)
class EngineInputs:
    """Flat bundle of everything the engine needs: arrays of one namespace, plain scalars.

    Detector: ``pix0``, ``fdet``, ``sdet``, ``odet``, ``beam`` (3,) m / unit vectors; pixel and
    layer sizes in m; ``roi`` inclusive (xmin, xmax, ymin, ymax); ``active`` (spixels*fpixels,)
    1/0 mask or None.  Beam: ``incident`` (S, 3) unit vectors, ``wavelength_m`` (S,).
    Crystal: ``lattice_m`` (L, 3, 3) rows a, b, c per (phi step, domain), phi-major;
    ``lattice_first_m`` the same for nanoBragg's first evaluation (phi-zero quirk) or None;
    ``recip_metric`` (3, 3) Å^-2; ``table`` flat F table or None.  ``plan``: nanoBragg's
    serial-order facts (:func:`serial_plan`) when already known, so a render and its adjoint
    locate them once.
    """

    pix0: object
    fdet: object
    sdet: object
    odet: object
    beam: object
    fpixels: int
    spixels: int
    pixel_m: float
    oversample: int
    roi: tuple
    active: object
    layers: int
    layer_step_m: float
    mu_per_m: float
    thick_m: float
    curved: bool
    distance_m: float
    close_distance_m: float
    point_pixel: bool
    incident: object
    wavelength_m: object
    kahn_factor: float
    polar_axis: object
    nopolar: bool
    dmin_m: float
    lattice_m: object
    lattice_first_m: object
    recip_metric: object
    n_cells: tuple
    shape: str
    fudge: float
    table: object
    hkl_min: tuple
    hkl_shape: tuple
    default_F: float
    interpolate: bool
    interpolation_switch_off: bool
    scale: float
    background: float
    oversample_omega: bool
    oversample_polar: bool
    oversample_thick: bool
    chunk_terms: int = DEFAULT_CHUNK_TERMS
    plan: object = None

    @property
    def compounding(self):
        return self.oversample_omega or self.oversample_polar or self.oversample_thick


@dataclass(frozen=True)
class _Region:
    x0: int
    y0: int
    width: int
    height: int

    @property
    def size(self):
        return self.width * self.height


@dataclass(frozen=True)
class _Plan:
    """Serial-order facts of nanoBragg's defects (compat mode): pixel and inner index, or None."""

    first_evaluation: tuple | None = None
    switch_off: tuple | None = None


def _region(inp):
    xmin, xmax, ymin, ymax = inp.roi
    x0, x1 = max(xmin, 0), min(xmax, inp.fpixels - 1)
    y0, y1 = max(ymin, 0), min(ymax, inp.spixels - 1)
    return _Region(x0, y0, max(x1 - x0 + 1, 0), max(y1 - y0 + 1, 0))


def _namespace(inp):
    return array_namespace(inp.pix0, inp.lattice_m)


def _chunk_pixels(inp):
    """Pixels per chunk: ``chunk_terms`` (pixel, source, phi step, domain) evaluations at once."""
    return max(1, inp.chunk_terms // (inp.incident.shape[0] * inp.lattice_m.shape[0]))


def _chunks(inp, region):
    step = _chunk_pixels(inp)
    for start in range(0, region.size, step):
        yield start, min(start + step, region.size)


def _chunk_coordinates(xp, inp, region, start, stop):
    """Fast and slow pixel coordinates (float) and the 1/0 activity of chunk pixels."""
    idx = xp.arange(start, stop, dtype=xp.int64)
    fast = region.x0 + idx % region.width
    slow = region.y0 + idx // region.width
    dtype = inp.pix0.dtype
    if inp.active is None:
        active = xp.ones((stop - start,), dtype=dtype)
    else:
        active = xp.take(inp.active, slow * inp.fpixels + fast)
    return xp.astype(fast, dtype), xp.astype(slow, dtype), active


def _rotate_about(xp, v, axis, angle):
    """Rotate vectors v (n, 3) about a unit axis (3,) by angles (n,) (right-handed)."""
    c, s = xp.cos(angle)[:, None], xp.sin(angle)[:, None]
    dot = (v @ axis)[:, None]
    return axis * dot * (1.0 - c) + v * c + cross(axis, v) * s


@dataclass(frozen=True, eq=False)
class _SubpixelGeometry:
    """Per-pixel quantities of one (layer, sub-pixel) evaluation for a chunk of n pixels."""

    diffracted: object  # (n, 3)
    omega: object       # (n,)
    capture: object     # (n,)
    q: object           # (n, S, 3) scattering vectors, 1/m
    survive: object     # (n, S) bool, kept by the dmin cut
    polar: object       # (n, S) polarization factor


def _subpixel_geometry(xp, inp, fast, slow, layer, sub_s, sub_f):
    sub = inp.pixel_m / inp.oversample
    fdet = sub * (fast * inp.oversample + sub_f) + sub / 2.0
    sdet = sub * (slow * inp.oversample + sub_s) + sub / 2.0
    odet = layer * inp.layer_step_m
    pos = fdet[:, None] * inp.fdet + sdet[:, None] * inp.sdet + odet * inp.odet + inp.pix0
    if inp.curved:
        start = xp.broadcast_to(inp.distance_m * inp.beam, pos.shape)
        turned = _rotate_about(xp, start, inp.sdet, pos[:, 1] / inp.distance_m)
        pos = _rotate_about(xp, turned, inp.fdet, pos[:, 2] / inp.distance_m)
    airpath = xp.sqrt(xp.sum(pos * pos, axis=1))
    diffracted = pos / airpath[:, None]
    if inp.point_pixel:
        omega = 1.0 / (airpath * airpath)
    else:
        omega = inp.pixel_m * inp.pixel_m / (airpath * airpath) * inp.close_distance_m / airpath
    parallax = diffracted @ inp.odet
    depth = inp.layer_step_m * inp.mu_per_m
    capture = xp.exp(-layer * depth / parallax) - xp.exp(-(layer + 1) * depth / parallax)
    q = (diffracted[:, None, :] - inp.incident[None, :, :]) / inp.wavelength_m[None, :, None]
    stol = 0.5 * xp.sqrt(xp.sum(q * q, axis=2))
    if inp.dmin_m > 0.0:
        safe = xp.where(stol > 0.0, stol, xp.ones_like(stol))
        survive = (stol <= 0.0) | ~(inp.dmin_m > 0.5 / safe)
    else:
        survive = xp.ones(stol.shape, dtype=xp.bool)
    return _SubpixelGeometry(diffracted, omega, capture, q, survive, _polarization(xp, inp, diffracted))


def _polarization(xp, inp, diffracted):
    """(n, S) nanoBragg's polarization factor 1/2 (1 + cos^2 2t - K cos 2psi sin^2 2t)."""
    inc = inp.incident
    cos2t = diffracted @ xp.permute_dims(inc, (1, 0))
    sin2t_sqr = 1.0 - cos2t * cos2t
    if inp.kahn_factor == 0.0:
        return 0.5 * (1.0 + cos2t * cos2t)
    b_in = unit(cross(inp.polar_axis, inc))
    e_in = unit(cross(inc, b_in))
    psi = -xp.atan2(diffracted @ xp.permute_dims(b_in, (1, 0)), diffracted @ xp.permute_dims(e_in, (1, 0)))
    return 0.5 * (1.0 + cos2t * cos2t - inp.kahn_factor * xp.cos(2.0 * psi) * sin2t_sqr)


def _miller(xp, q, lattice):
    """Fractional indices (n, S, L, 3) of scattering vectors q (n, S, 3) for lattices (L, 3, 3)."""
    n, s, _ = q.shape
    nl = lattice.shape[0]
    flat = xp.reshape(xp.permute_dims(lattice, (2, 0, 1)), (3, nl * 3))
    return xp.reshape(xp.reshape(q, (n * s, 3)) @ flat, (n, s, nl, 3))


def _structure_factor(xp, inp, h, h0, use_nearest, with_grad):
    """F_cell (and dF/dh) of terms: tricubic where allowed, nearest where ``use_nearest``."""
    near = nearest_F(h0, inp.table, inp.hkl_min, inp.hkl_shape, inp.default_F) if inp.table is not None \
        else xp.full_like(h[..., 0], inp.default_F)
    if not inp.interpolate:
        return (near, None) if with_grad else near
    anchor = xp.asarray([float(m) + 1.0 for m in inp.hkl_min], dtype=h.dtype)
    safe_h = xp.where(use_nearest[..., None], xp.broadcast_to(anchor, h.shape), h)
    interp = tricubic_F(safe_h, inp.table, inp.hkl_min, inp.hkl_shape, with_grad=with_grad)
    if with_grad:
        value, grad = interp
        return xp.where(use_nearest, near, value), xp.where(use_nearest[..., None], 0.0 * grad, grad)
    return xp.where(use_nearest, near, interp)


def _inner_index(xp, block, shape):
    """nanoBragg's serial position (n, S, L) of each term inside its pixel."""
    n, ns, nl = shape
    source = xp.reshape(xp.arange(ns, dtype=xp.int64), (1, ns, 1))
    lattice = xp.reshape(xp.arange(nl, dtype=xp.int64), (1, 1, nl))
    return xp.broadcast_to((block * ns + source) * nl + lattice, shape)


def _first_mask(xp, plan, start, block, shape):
    """(n, S) True at nanoBragg's first evaluation if it lies in this chunk and block, else None."""
    if plan.first_evaluation is None:
        return None
    pixel, inner = plan.first_evaluation
    n, ns = shape
    if not (start <= pixel < start + n and inner // ns == block):
        return None
    rows = xp.reshape(xp.arange(n, dtype=xp.int64) == pixel - start, (n, 1))
    cols = xp.reshape(xp.arange(ns, dtype=xp.int64) == inner % ns, (1, ns))
    return rows & cols


def _nearest_selector(xp, inp, plan, start, block, h):
    """(n, S, L) True where a term uses the nearest lookup instead of interpolation."""
    out = interpolation_out_of_range(h, inp.hkl_min, inp.hkl_shape)
    if plan.switch_off is None:
        return out
    pixel, inner = plan.switch_off
    n = h.shape[0]
    idx = xp.reshape(xp.arange(start, start + n, dtype=xp.int64), (n, 1, 1))
    return (idx > pixel) | ((idx == pixel) & (_inner_index(xp, block, h.shape[:-1]) >= inner))


@dataclass(frozen=True, eq=False)
class _Terms:
    """Terms of one evaluation block: values (n, S, L), which count, and what the adjoint needs."""

    value: object
    reached: object
    use_nearest: object
    first: object
    dterm_dh: object = None
    dh: object = None


def _lattice_terms(xp, inp, q, lattice, plan, start, block, with_grad):
    h = _miller(xp, q, lattice)
    h0 = nearest_index(h)
    dh = h - h0
    if with_grad:
        f_latt, f_latt_grad = lattice_factor_grad(inp.shape, dh, inp.n_cells, inp.fudge, inp.recip_metric)
    else:
        f_latt = lattice_factor(inp.shape, dh, inp.n_cells, inp.fudge, inp.recip_metric)
    use_nearest = _nearest_selector(xp, inp, plan, start, block, h) if inp.interpolate else None
    f_cell = _structure_factor(xp, inp, h, h0, use_nearest, with_grad)
    reached = (f_latt != 0.0) | (inp.background != 0.0)
    if not with_grad:
        return _Terms(f_cell * f_cell * f_latt * f_latt, reached, use_nearest, None)
    f_cell, f_cell_grad = f_cell
    dterm_dh = (2.0 * f_cell * f_cell * f_latt)[..., None] * f_latt_grad
    if inp.interpolate:
        dterm_dh = dterm_dh + (2.0 * f_cell * f_latt * f_latt)[..., None] * f_cell_grad
    return _Terms(f_cell * f_cell * f_latt * f_latt, reached, use_nearest, None, dterm_dh, dh)


def _merge(xp, mask, a, b):
    """Per-field choice of b where mask (n, S) is True, else a (fields may be None)."""
    def pick(x, y):
        if x is None:
            return None
        m = xp.reshape(mask, mask.shape + (1,) * (x.ndim - 2))
        return xp.where(m, y, x)
    return _Terms(pick(a.value, b.value), pick(a.reached, b.reached), pick(a.use_nearest, b.use_nearest),
                  mask, pick(a.dterm_dh, b.dterm_dh), pick(a.dh, b.dh))


def _terms(xp, inp, geo, plan, start, block, with_grad=False):
    """Terms of one (layer, sub-pixel) block; nanoBragg's first evaluation uses its own lattices."""
    terms = _lattice_terms(xp, inp, geo.q, inp.lattice_m, plan, start, block, with_grad)
    first = _first_mask(xp, plan, start, block, geo.survive.shape)
    if first is not None:
        terms = _merge(xp, first, terms, _lattice_terms(xp, inp, geo.q, inp.lattice_first_m, plan, start, block,
                                                        with_grad))
    return replace(terms, reached=terms.reached & geo.survive[:, :, None])


def _term_factor(inp, geo):
    """(n, S) factor multiplying the running sum after each term under the oversample_* flags."""
    factor = geo.polar if inp.oversample_polar else 1.0 + 0.0 * geo.polar
    if inp.oversample_thick:
        factor = factor * geo.capture[:, None]
    if inp.oversample_omega:
        factor = factor * geo.omega[:, None]
    return factor


def _blocks(inp):
    """(block index, layer, sub-pixel row, sub-pixel column) in nanoBragg's loop order."""
    block = 0
    for layer in range(inp.layers):
        for sub_s in range(inp.oversample):
            for sub_f in range(inp.oversample):
                yield block, layer, sub_s, sub_f
                block += 1


class _PixelFactors:
    """nanoBragg's once-per-pixel factors: the first non-zero evaluation of each, in loop order.

    Solid angle: first sub-pixel of the pixel; polarization: first sub-pixel and source kept by
    dmin; capture fraction: first sub-pixel of each layer, the last layer's value kept.
    """

    def __init__(self, xp, inp, n, dtype):
        self.xp, self.inp, self.n, self.dtype = xp, inp, n, dtype
        self.omega = xp.zeros((n,), dtype=dtype)
        self.polar = xp.ones((n,), dtype=dtype) if inp.nopolar else xp.zeros((n,), dtype=dtype)
        self.capture = None

    def update(self, geo, new_layer):
        xp = self.xp
        if new_layer:
            fill = 1.0 if self.inp.thick_m == 0.0 else 0.0
            self.capture = xp.full((self.n,), fill, dtype=self.dtype)
        self.omega = xp.where(self.omega == 0.0, geo.omega, self.omega)
        self.capture = xp.where(self.capture == 0.0, geo.capture, self.capture)
        for source in range(geo.polar.shape[1]):
            take = (self.polar == 0.0) & geo.survive[:, source]
            self.polar = xp.where(take, geo.polar[:, source], self.polar)

    def final(self):
        """Product of the factors applied once at the end (those not oversampled)."""
        inp, total = self.inp, self.xp.ones((self.n,), dtype=self.dtype)
        if not inp.oversample_thick:
            total = total * self.capture
        if not inp.oversample_polar:
            total = total * self.polar
        if not inp.oversample_omega:
            total = total * self.omega
        return total


def _render_chunk(xp, inp, region, start, stop, plan):
    fast, slow, active = _chunk_coordinates(xp, inp, region, start, stop)
    n, dtype = stop - start, fast.dtype
    acc = xp.full((n,), inp.background, dtype=dtype)
    factors = _PixelFactors(xp, inp, n, dtype)
    for block, layer, sub_s, sub_f in _blocks(inp):
        geo = _subpixel_geometry(xp, inp, fast, slow, layer, sub_s, sub_f)
        factors.update(geo, new_layer=sub_s == 0 and sub_f == 0)
        terms = _terms(xp, inp, geo, plan, start, block)
        if inp.compounding:
            ones = xp.ones((n,), dtype=dtype)
            weights, block_product = _compound_weights(xp, xp.astype(terms.reached, dtype), _term_factor(inp, geo), ones)
            acc = acc * block_product + xp.sum(weights * terms.value, axis=(1, 2))
        else:
            acc = acc + xp.sum(xp.where(terms.reached, terms.value, xp.zeros_like(terms.value)), axis=(1, 2))
    return inp.scale * acc * factors.final() * active


def _first_in_order(xp, flags, inner):
    """(pixel, inner index) of the first True of flags (n, ...) in serial order, or None."""
    big = xp.iinfo(xp.int64).max
    masked = xp.where(flags, inner, xp.full_like(inner, big))
    per_pixel = xp.min(xp.reshape(masked, (flags.shape[0], -1)), axis=1)
    hits = per_pixel < big
    if not bool(xp.any(hits)):
        return None
    pixel = int(xp.argmax(xp.astype(hits, xp.int8)))
    return pixel, int(per_pixel[pixel])


def _earlier(a, b):
    return b if a is None else a if b is None else min(a, b)


def _scan(xp, inp, region, find):
    """First (pixel, inner index) in serial order where find(geo, block, start, active) flags a term."""
    for start, stop in _chunks(inp, region):
        fast, slow, active = _chunk_coordinates(xp, inp, region, start, stop)
        best = None
        for block, layer, sub_s, sub_f in _blocks(inp):
            geo = _subpixel_geometry(xp, inp, fast, slow, layer, sub_s, sub_f)
            best = _earlier(best, find(geo, block, start, active))
        if best is not None:
            return start + best[0], best[1]
    return None


def _plan(xp, inp, region):
    """Locate nanoBragg's first evaluation (phi-zero quirk) and interpolation switch-off point."""
    plan = _Plan()
    if inp.lattice_first_m is not None:
        def first_live(geo, block, start, active):
            live = geo.survive & (active[:, None] != 0.0)
            ns = live.shape[1]
            inner = block * ns + xp.broadcast_to(xp.arange(ns, dtype=xp.int64), live.shape)
            return _first_in_order(xp, live, inner)
        plan = _Plan(first_evaluation=_scan(xp, inp, region, first_live))
    if inp.interpolate and inp.interpolation_switch_off:
        def first_out_of_range(geo, block, start, active):
            terms = _terms(xp, inp, geo, plan, start, block)
            flags = terms.use_nearest & terms.reached & (active[:, None, None] != 0.0)
            return _first_in_order(xp, flags, _inner_index(xp, block, flags.shape))
        plan = _Plan(plan.first_evaluation, _scan(xp, inp, region, first_out_of_range))
    return plan


def serial_plan(inp):
    """nanoBragg's serial-order facts of this bundle (compat mode): ``inp.plan`` or computed now."""
    if inp.plan is not None:
        return inp.plan
    return _plan(_namespace(inp), inp, _region(inp))


def with_plan(inp):
    """The bundle with its serial plan attached (for a render followed by its adjoint)."""
    return replace(inp, plan=serial_plan(inp))


def _embed(xp, block, region, inp):
    """Place the (height, width) region block into a zero (spixels, fpixels) image."""
    dtype = block.dtype
    right = inp.fpixels - region.x0 - region.width
    rows = xp.concat([xp.zeros((region.height, region.x0), dtype=dtype), block,
                      xp.zeros((region.height, right), dtype=dtype)], axis=1)
    bottom = inp.spixels - region.y0 - region.height
    return xp.concat([xp.zeros((region.y0, inp.fpixels), dtype=dtype), rows,
                      xp.zeros((bottom, inp.fpixels), dtype=dtype)], axis=0)


def render(inp, progress=None):
    """The image (spixels, fpixels) in the namespace and dtype of the inputs.

    ``progress``, if given, is called with the number of pixels of each finished chunk.
    """
    xp = _namespace(inp)
    region = _region(inp)
    if region.size == 0:
        return xp.zeros((inp.spixels, inp.fpixels), dtype=inp.pix0.dtype)
    plan = serial_plan(inp)
    values = []
    for start, stop in _chunks(inp, region):
        values.append(_render_chunk(xp, inp, region, start, stop, plan))
        if progress is not None:
            progress(stop - start)
    block = xp.reshape(xp.concat(values), (region.height, region.width))
    return _embed(xp, block, region, inp)


def _compound_weights(xp, reached, factor, after):
    """d(pixel sum)/d(term) (n, S, L) under the compounding flags, walking sources backwards.

    ``after`` (n,) is the product of the factors of every later counted term; returns the
    weights and the product updated to include this block.
    """
    weights = []
    for source in reversed(range(reached.shape[1])):
        w = reached[:, source, :]
        count = xp.sum(w, axis=1)
        remaining = count[:, None] - xp.cumulative_sum(w, axis=1) + w
        f = factor[:, source]
        weights.append(w * after[:, None] * f[:, None] ** remaining)
        after = after * f**count
    return xp.stack(weights[::-1], axis=1), after


def _lattice_cotangent(xp, hbar, q):
    """Sum over pixels and sources of hbar (n, S, L, 3) outer q (n, S, 3): (L, 3, 3)."""
    n, s, nl, _ = hbar.shape
    flat = xp.reshape(hbar, (n * s, nl * 3))
    return xp.reshape(xp.permute_dims(flat, (1, 0)) @ xp.reshape(q, (n * s, 3)), (nl, 3, 3))


def _vjp_chunk(xp, inp, region, start, stop, plan, cotangent, grads):
    fast, slow, active = _chunk_coordinates(xp, inp, region, start, stop)
    n, dtype = stop - start, fast.dtype
    index = xp.astype(slow, xp.int64) * inp.fpixels + xp.astype(fast, xp.int64)
    factors = _PixelFactors(xp, inp, n, dtype)
    for _, layer, sub_s, sub_f in _blocks(inp):
        factors.update(_subpixel_geometry(xp, inp, fast, slow, layer, sub_s, sub_f), sub_s == 0 and sub_f == 0)
    pixel_weight = xp.take(cotangent, index) * active * inp.scale * factors.final()
    after = xp.ones((n,), dtype=dtype)
    for block, layer, sub_s, sub_f in reversed(list(_blocks(inp))):
        geo = _subpixel_geometry(xp, inp, fast, slow, layer, sub_s, sub_f)
        terms = _terms(xp, inp, geo, plan, start, block, with_grad=True)
        w = xp.astype(terms.reached, dtype)
        if inp.compounding:
            w, after = _compound_weights(xp, w, _term_factor(inp, geo), after)
        w = w * pixel_weight[:, None, None]
        hbar = w[..., None] * terms.dterm_dh
        if terms.first is None:
            grads["lattice"] = grads["lattice"] + _lattice_cotangent(xp, hbar, geo.q)
        else:
            keep = xp.astype(terms.first, dtype)[:, :, None, None]
            grads["lattice"] = grads["lattice"] + _lattice_cotangent(xp, hbar * (1.0 - keep), geo.q)
            grads["lattice_first"] = grads["lattice_first"] + _lattice_cotangent(xp, hbar * keep, geo.q)
        if inp.shape == "gauss":
            c = gauss_exponent_scale(inp.n_cells, inp.fudge)
            dh = xp.reshape(terms.dh, (-1, 3))
            scaled = dh * xp.reshape(2.0 * c * w * terms.value, (-1, 1))
            grads["recip_metric"] = grads["recip_metric"] - xp.permute_dims(scaled, (1, 0)) @ dh


def render_vjp(inp, cotangent):
    """Cotangents of the small inputs for sum(cotangent * render(inp)).

    Returns a dict: ``lattice`` (L, 3, 3) per m, ``lattice_first`` (L, 3, 3) or None,
    ``recip_metric`` (3, 3) per Å^-2.  Memory is O(chunk): the pixel loop is recomputed.
    """
    xp = _namespace(inp)
    region = _region(inp)
    dtype = inp.pix0.dtype
    grads = {"lattice": xp.zeros(inp.lattice_m.shape, dtype=dtype),
             "lattice_first": xp.zeros(inp.lattice_m.shape, dtype=dtype) if inp.lattice_first_m is not None else None,
             "recip_metric": xp.zeros((3, 3), dtype=dtype)}
    cotangent = xp.asarray(cotangent, dtype=dtype)
    if tuple(cotangent.shape) != (inp.spixels, inp.fpixels):
        raise ValueError(f"cotangent shape {tuple(cotangent.shape)} must equal the image shape "
                         f"({inp.spixels}, {inp.fpixels}) (slow, fast)")
    if region.size == 0:
        return grads
    plan = serial_plan(inp)
    flat = xp.reshape(cotangent, (-1,))
    for start, stop in _chunks(inp, region):
        _vjp_chunk(xp, inp, region, start, stop, plan, flat, grads)
    return grads


def count_pixels(inp):
    """Number of pixels a render visits (the region of interest)."""
    return _region(inp).size


def count_terms(inp):
    """Number of (pixel, layer, sub-pixel, source, phi step, domain) evaluations of a render."""
    region = _region(inp)
    return region.size * inp.layers * inp.oversample**2 * inp.incident.shape[0] * inp.lattice_m.shape[0]
