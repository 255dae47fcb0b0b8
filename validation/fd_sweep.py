"""Adjoint against central finite differences over a grid of simulations.

For every configuration (cell x mosaic spread x lattice shape x sampling feature) the gradient
of f = sum(cotangent * image) for a seeded random cotangent with respect to the cell (6), the
mosaic spread and the misset (3) is computed twice: by ``Simulation.vjp`` and by central
differences through the public API.  The error of each component is the project's measure
|adjoint - FD| / max(|FD|, 1e-3 * max over that parameter's vector of |FD|).

The image is differentiable only almost everywhere (Miller-index rounding; see
docs/adjoints.md), so a difference quotient whose step straddles a kink or a jump is wrong, and
a very small step drowns a small component in rounding error.  Each component's quotient is
therefore taken on a ladder of steps h0, h0/2, h0/4, ... (then 2 h0, 4 h0): the first window
of three successive steps whose quotients agree to a tenth of the threshold gives the estimate
(the quotient at its finest step).  A jump within the step doubles the quotient's error at
every halving; a kink close to x0 shifts the quotient by an amount that grows as the step
shrinks towards its distance, so neither passes three agreeing quotients.  Where no window
agrees the closest one is used and the component is marked "unresolved" (reported, and judged
against the threshold like any other).

Prints a table, writes a plot (adjoint vs FD per parameter; relative errors), and exits with
status 1 if any error exceeds --threshold.

    python validation/fd_sweep.py --quick
    python validation/fd_sweep.py --output validation/out/fd_sweep.png
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import arraybragg
from arraybragg.gradcheck import default_steps, relative_errors

try:
    from tqdm import tqdm
except ImportError:
    tqdm = None

WRT = ("cell", "mosaic_spread_deg", "misset_deg")
NAMES = ("a", "b", "c", "alpha", "beta", "gamma", "spread", "misset_x", "misset_y", "misset_z")
GROUPS = (slice(0, 6), slice(6, 7), slice(7, 10))
CELLS = {"cubic": "-cell 30 30 30 90 90 90 -misset 10 20 30",
         "triclinic": "-cell 30 33 36 80 95 105 -misset 10 20 30"}
SPREADS_DEG = (0.0, 0.001, 0.003, 0.5, 2.0)
SHAPES = {"square": "-square_xtal", "round": "-round_xtal", "gauss": "-gauss_xtal", "tophat": "-tophat_spots"}
FEATURES = {"none": "", "phi": "-phi 0 -osc 2 -phisteps 4", "divergence": "-divergence 0.5 -divsteps 3",
            "dispersion": "-dispersion 2 -dispsteps 3", "oversample": "-oversample 2"}
AGREEMENT = 0.1
QUICK = {"spreads": (0.0, 0.5), "shapes": ("square", "gauss"), "features": ("none", "phi")}


@dataclass(frozen=True)
class Row:
    """One gradient component of one configuration.

    step: the finest step of the window used; window: its index in step_windows (0: the first);
    resolved: whether that window's three quotients agreed.
    """

    config: str
    parameter: str
    adjoint: float
    numeric: float
    rel_error: float
    step: float
    window: int
    resolved: bool


def base_flags(pixels, domains):
    return (f"-detpixels {pixels} -pixel 0.4 -distance 100 -lambda 1 -N 5 -default_F 100 "
            f"-mosaic 0.5 -mosaic_dom {domains}").split()


def build(cell, spread_deg, shape, feature, pixels, domains):
    """The simulation of one grid point: domains drawn at 0.5 deg, then the spread set."""
    flags = base_flags(pixels, domains) + CELLS[cell].split() + SHAPES[shape].split() + FEATURES[feature].split()
    return arraybragg.from_nanobragg_args(flags).replace(mosaic_spread_deg=spread_deg)


def first_steps(x0):
    """Starting steps: default_steps for the spread, a quarter of it for cell and misset."""
    factors = np.ones_like(x0)
    factors[GROUPS[0]] = 0.25
    factors[GROUPS[2]] = 0.25
    return factors * default_steps(x0)


def quotient(f, x0, i, h):
    plus, minus = x0.copy(), x0.copy()
    plus[i] += h
    minus[i] -= h
    return (f(plus) - f(minus)) / (plus[i] - minus[i])


def step_windows(halvings):
    """Exponents k (step h0 / 2^k) of the three-step windows, in the order tried: from h0 down to
    h0 / 2^halvings, then up to 4 h0."""
    return [(k, k + 1, k + 2) for k in range(halvings - 1)] + [(-1, 0, 1), (-2, -1, 0)]


def resolved_difference(f, x0, i, h0, coarse, threshold, halvings, scale):
    """(central difference, step, index of the window used, resolved): the first window of three
    successive steps whose quotients agree (module docstring).

    coarse: the quotient at h0; scale: the floor of the error measure for this component
    (1e-3 of its vector's largest FD)."""
    quotients = {0: coarse}

    def at(k):
        if k not in quotients:
            quotients[k] = quotient(f, x0, i, h0 * 0.5**k)
        return quotients[k]

    tried = []
    for index, window in enumerate(step_windows(halvings)):
        values = [at(k) for k in window]
        fine = values[-1]
        gap = max(abs(values[0] - values[1]), abs(values[1] - values[2])) / max(
            abs(fine), scale, np.finfo(np.float64).tiny)
        if gap <= AGREEMENT * threshold:
            return fine, h0 * 0.5 ** window[-1], index, True
        tried.append((gap, fine, h0 * 0.5 ** window[-1], index))
    _, fine, step, index = min(tried)
    return fine, step, index, False


def sweep_one(sim, label, threshold, halvings, seed):
    image, pullback = sim.vjp(WRT)
    cotangent = np.random.default_rng(seed).standard_normal(image.shape)
    grads = pullback(cotangent)
    adjoint = np.concatenate([np.atleast_1d(np.asarray(grads[name], dtype=np.float64)) for name in WRT])
    x0 = sim.parameter_vector(WRT)

    def f(x):
        return float(np.sum(cotangent * sim.with_parameter_vector(WRT, x).run()))

    steps = first_steps(x0)
    first = np.array([quotient(f, x0, i, steps[i]) for i in range(x0.size)])
    results = [None] * x0.size
    for group in GROUPS:
        floor = 1e-3 * np.max(np.abs(first[group]), initial=0.0)
        for i in range(group.start, group.stop):
            results[i] = resolved_difference(f, x0, i, steps[i], first[i], threshold, halvings, floor)
    numeric = np.array([r[0] for r in results])
    errors = np.concatenate([relative_errors(adjoint[g], numeric[g]) for g in GROUPS])
    return [Row(label, NAMES[i], float(adjoint[i]), float(numeric[i]), float(errors[i]), results[i][1],
                results[i][2], results[i][3]) for i in range(x0.size)]


def grid(args):
    return list(itertools.product(args.cells, args.spreads, args.shapes, args.features))


def print_table(rows, threshold):
    header = f"{'config':44s} {'parameter':>9s} {'adjoint':>16s} {'FD':>16s} {'rel error':>10s} {'step':>9s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        flag = ("  FAIL" if r.rel_error > threshold else "") + ("" if r.resolved else "  (unresolved)")
        print(f"{r.config:44s} {r.parameter:>9s} {r.adjoint:16.9e} {r.numeric:16.9e} {r.rel_error:10.2e} "
              f"{r.step:9.2e}{flag}")


def plot(rows, threshold, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    markers = itertools.cycle("osD^v<>pP*X")
    for name in NAMES:
        pts = np.array([(abs(r.numeric), abs(r.adjoint)) for r in rows if r.parameter == name
                        and r.numeric != 0.0 and r.adjoint != 0.0])
        if pts.size:
            left.scatter(pts[:, 0], pts[:, 1], s=14, marker=next(markers), label=name, alpha=0.7)
    finite = [v for r in rows for v in (abs(r.numeric), abs(r.adjoint)) if v > 0.0]
    if finite:
        span = np.array([min(finite) / 2, max(finite) * 2])
        left.plot(span, span, "k-", lw=0.8, label="adjoint = FD")
    left.set(xscale="log", yscale="log", xlabel="|central difference|", ylabel="|adjoint|",
             title="gradient components (zero components omitted)")
    left.legend(fontsize=7, ncol=2)

    errors = np.array([r.rel_error for r in rows])
    index = np.arange(errors.size)
    exact = errors == 0.0
    floor = min(np.min(errors[~exact], initial=threshold), threshold) / 10.0
    right.scatter(index[~exact], errors[~exact], s=6,
                  c=["tab:red" if e > threshold else "tab:blue" for e in errors[~exact]], label="components")
    if exact.any():
        right.scatter(index[exact], np.full(exact.sum(), floor), s=6, c="tab:gray",
                      label=f"adjoint = FD = 0 exactly (top-hat), drawn at {floor:.0e}")
    right.axhline(threshold, color="k", lw=0.8, ls="--", label=f"threshold {threshold:g}")
    right.set(yscale="log", xlabel="component (configuration-major)", ylabel="relative error",
              title="|adjoint - FD| / max(|FD|, 1e-3 max |FD| of its vector)")
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a small grid: spreads 0 and 0.5, square and gauss, without and with phi steps")
    p.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    p.add_argument("--spreads", nargs="+", type=float, default=None, metavar="DEG",
                   help=f"mosaic spreads in degrees (default {' '.join(map(str, SPREADS_DEG))})")
    p.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=None)
    p.add_argument("--features", nargs="+", choices=list(FEATURES), default=None)
    p.add_argument("--pixels", type=int, default=24, help="detector pixels along each side (default 24)")
    p.add_argument("--domains", type=int, default=10, help="mosaic domains (default 10)")
    p.add_argument("--threshold", type=float, default=1e-6, help="largest allowed relative error (default 1e-6)")
    p.add_argument("--halvings", type=int, default=10,
                   help="halvings of the first step tried per component (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random cotangent (default 0)")
    p.add_argument("--output", type=Path, default=Path(__file__).parent / "out" / "fd_sweep.png",
                   help="plot path (default validation/out/fd_sweep.png)")
    args = p.parse_args(argv)
    for name, default in (("spreads", SPREADS_DEG), ("shapes", tuple(SHAPES)), ("features", tuple(FEATURES))):
        if getattr(args, name) is None:
            setattr(args, name, QUICK[name] if args.quick else default)
    return args


def main(argv=None):
    args = parse_args(argv)
    points = grid(args)
    progress = tqdm(points, desc="configurations", file=sys.stderr) if tqdm else points
    rows, start = [], time.perf_counter()
    for cell, spread, shape, feature in progress:
        label = f"{cell} spread={spread:g} {shape} {feature}"
        sim = build(cell, spread, shape, feature, args.pixels, args.domains)
        rows.extend(sweep_one(sim, label, args.threshold, args.halvings, args.seed))
    print_table(rows, args.threshold)
    failed = [r for r in rows if r.rel_error > args.threshold]
    worst = max(rows, key=lambda r: r.rel_error)
    print(f"\n{len(points)} configurations, {len(rows)} components in {time.perf_counter() - start:.0f} s; "
          f"largest relative error {worst.rel_error:.2e} ({worst.config}, {worst.parameter}); "
          f"{sum(r.window > 0 for r in rows)} needed other steps than the first window; "
          f"{sum(not r.resolved for r in rows)} unresolved; {len(failed)} failed")
    plot(rows, args.threshold, args.output)
    print(f"plot: {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
