"""Speed and memory of arraybragg's engines, and nanoBragg's time on the same arguments.

Every engine installed here (``arraybragg.engines.ENGINES``: ``array``, and ``numba`` when it
imports) is measured on the same inputs, unless --engine picks one; JIT compilation happens in
a warm-up before any timing.

Forward: each standard case is one nanoBragg argument list.  arraybragg builds it with
``from_nanobragg_args(args)`` (setup: parsing, host geometry, engine inputs) and renders it
(render); when ``nanoBragg`` is on PATH the C program runs the same arguments plus
``-nonoise -nopgm -floatfile`` in a scratch directory with OMP_NUM_THREADS=--threads, and the
table shows each engine's render time over the ``array`` engine's, our time over nanoBragg's
wall time and the agreement of the two images.

Adjoint: for a 512² image with 10 mosaic domains, the time of ``Simulation.vjp``'s pullback
over one forward render, and the peak memory (tracemalloc, NumPy only) of each; the peaks at
two detector sizes (the pullback has no pixels x domains term: it grows only with the image)
and at several engine chunk sizes (memory is bounded by the chunk).

    python validation/bench.py              # full run
    python validation/bench.py --quick      # sizes divided by 4, one repeat
    python validation/bench.py --json out.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import tracemalloc

import numpy as np

import arraybragg
from arraybragg import engine, engines
from arraybragg.host import host_array

WRT = ("cell", "mosaic_spread_deg", "misset_deg")
CUBIC = "-cell 100 100 100 90 90 90"
TRICLINIC = "-cell 70 80 90 75 85 95 -misset 10 20 30"
COMMON = "-N 5 -lambda 6.2 -default_F 100 -distance 100 -pixel 0.1"
MOSAIC = "-mosaic 0.5 -mosaic_dom 10"
# our own switch, appended to arraybragg's arguments only: nanoBragg's random stream, so the
# mosaic domains (and hence the images) of both programs are the same; it costs nothing extra
SAME_DOMAINS = ["-rng", "nanobragg"]

# engine name -> (render(inputs) -> image, render_vjp(inputs, cotangent) -> cotangents): every
# engine installed here; Simulation.vjp takes the same name as its ``engine``
ENGINES = dict(engines.ENGINES)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    args: tuple

    @property
    def pixels(self):
        i = self.args.index("-detpixels")
        return int(self.args[i + 1]) ** 2


def detpixels(n):
    return f"-detpixels {n}"


def standard_cases(scale):
    """The forward cases; ``scale`` divides every detector edge (1 full, 4 quick)."""
    def case(name, *parts):
        return Case(name, tuple(" ".join(parts).split()))
    n256, n512, n1024 = 256 // scale, 512 // scale, 1024 // scale
    return [
        case(f"cubic {n256}²", CUBIC, COMMON, detpixels(n256)),
        case(f"cubic {n512}²", CUBIC, COMMON, detpixels(n512)),
        case(f"cubic {n1024}²", CUBIC, COMMON, detpixels(n1024)),
        case(f"triclinic+misset {n512}²", TRICLINIC, COMMON, detpixels(n512)),
        case(f"10 mosaic domains {n512}²", CUBIC, COMMON, MOSAIC, detpixels(n512)),
    ]


def mosaic_args(n):
    return tuple(" ".join([CUBIC, COMMON, MOSAIC, detpixels(n)]).split())


def namespace(name):
    if name == "numpy":
        return np
    if name == "array_api_strict":
        import array_api_strict
        return array_api_strict
    import cupy
    return cupy


def synchronize(xp):
    """Wait for queued device work (CuPy); nothing for host namespaces."""
    if getattr(xp, "__name__", "") == "cupy":
        xp.cuda.Device().synchronize()


def best_time(fn, repeat, xp):
    """(smallest wall time in s over ``repeat`` calls, last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        synchronize(xp)
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_mb(fn):
    """(peak of traced allocations during fn() above those before it, in MB; fn's result)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - before) / 1e6, result


def setup(args, xp):
    """(simulation, engine inputs) built from a nanoBragg argument list: parse, geometry, conversion."""
    sim = arraybragg.from_nanobragg_args(list(args) + SAME_DOMAINS)
    geometry = sim.geometry()
    return sim, sim.engine_inputs(xp, geometry=geometry)


def run_nanobragg(binary, args, threads, repeat):
    """(best wall time in s, float image (spixels, fpixels)) of nanoBragg in a scratch directory."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    best, image = float("inf"), None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-nanobragg-") as scratch:
            command = [binary, *args, "-nonoise", "-nopgm", "-floatfile", "float.bin"]
            start = time.perf_counter()
            subprocess.run(command, cwd=scratch, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            best = min(best, time.perf_counter() - start)
            image = np.fromfile(os.path.join(scratch, "float.bin"), dtype="<f4")
    return best, image


def engine_names(options, xp):
    """The engines to measure: the one asked for, or every installed engine that runs on ``xp``."""
    def runs(name):
        try:
            engines.select_engine(name, xp)
        except ValueError:
            return False
        return True
    return [options.engine] if options.engine != "all" else [name for name in ENGINES if runs(name)]


def warm_up(name, xp, args):
    """One render and one pullback, so that first-call costs (JIT compilation) stay out of the tables."""
    render, render_vjp = ENGINES[name]
    inputs = setup(args, xp)[1]
    render_vjp(inputs, render(inputs))


def forward_row(case, name, options, xp, nanobragg):
    """Times of one engine on one case; ``nanobragg`` is (wall time, image) of the C program or None."""
    render = ENGINES[name][0]
    setup_s, (_, inputs) = best_time(lambda: setup(case.args, xp), options.repeat, xp)
    render_s, image = best_time(lambda: render(inputs), options.repeat, xp)
    terms = engine.count_terms(inputs)
    row = dict(case=case.name, pixels=case.pixels, engine=name, xp=options.xp, setup_s=setup_s,
               render_s=render_s, terms=terms, terms_per_s=terms / render_s, vs_array=None,
               nanobragg_s=None, ratio=None, max_rel_diff=None, args=" ".join(case.args))
    if nanobragg is not None:
        c_s, c_image = nanobragg
        ours = host_array(image).reshape(-1)
        row.update(nanobragg_s=c_s, ratio=(setup_s + render_s) / c_s,
                   max_rel_diff=float(np.max(np.abs(ours - c_image)) / np.max(np.abs(c_image))))
    return row


def forward_rows(case, names, options, xp, binary):
    """One row per engine for one case, nanoBragg run once; render/array relative to the array engine."""
    nanobragg = None if binary is None else run_nanobragg(binary, case.args, options.threads, options.repeat)
    rows = [forward_row(case, name, options, xp, nanobragg) for name in names]
    array_s = {r["engine"]: r["render_s"] for r in rows}.get("array")
    for r in rows:
        r["vs_array"] = None if array_s is None else r["render_s"] / array_s
    return rows


def adjoint_row(n, name, options, xp):
    """Time and peak memory of one forward render and of Simulation.vjp's pullback with one engine."""
    render = ENGINES[name][0]
    sim = arraybragg.from_nanobragg_args(list(mosaic_args(n)) + SAME_DOMAINS)
    inputs = sim.engine_inputs(xp)
    forward_s, image = best_time(lambda: render(inputs), options.repeat, xp)
    _, pullback = sim.vjp(WRT, xp=xp, engine=name)
    cotangent = image
    pullback_s, _ = best_time(lambda: pullback(cotangent), options.repeat, xp)
    row = dict(engine=name, pixels=n * n, domains=sim.crystal.mosaic_domains, forward_s=forward_s,
               pullback_s=pullback_s, time_ratio=pullback_s / forward_s, image_mb=n * n * 8 / 1e6,
               forward_peak_mb=None, pullback_peak_mb=None)
    if options.xp == "numpy":
        row["forward_peak_mb"], _ = peak_mb(lambda: render(inputs))
        row["pullback_peak_mb"], _ = peak_mb(lambda: pullback(cotangent))
    return row


def chunk_row(n, chunk_terms, name, options, xp):
    """Peak memory and time of one engine's render and pullback at one chunk size."""
    render, render_vjp = ENGINES[name]
    sim = arraybragg.from_nanobragg_args(list(mosaic_args(n)) + SAME_DOMAINS)
    inputs = sim.engine_inputs(xp, chunk_terms=chunk_terms)
    forward_s, image = best_time(lambda: render(inputs), options.repeat, xp)
    pullback_s, _ = best_time(lambda: render_vjp(inputs, image), options.repeat, xp)
    row = dict(engine=name, pixels=n * n, chunk_terms=chunk_terms, forward_s=forward_s, pullback_s=pullback_s,
               forward_peak_mb=None, pullback_peak_mb=None)
    if options.xp == "numpy":
        row["forward_peak_mb"], _ = peak_mb(lambda: render(inputs))
        row["pullback_peak_mb"], _ = peak_mb(lambda: render_vjp(inputs, image))
    return row


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def print_table(title, headers, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def report_forward(rows, binary, threads):
    print_table(
        "Forward render (times: best of repeats; render/array = render s / the array engine's; "
        "ours/theirs = (setup + render) / nanoBragg wall time)",
        ["case", "engine", "xp", "setup s", "render s", "terms", "Mterms/s", "render/array", "nanoBragg s",
         "ours/theirs", "max|Δ|/max"],
        [[r["case"], r["engine"], r["xp"], fmt(r["setup_s"], ".4f"), fmt(r["render_s"], ".4f"),
          f"{r['terms']:,}", fmt(r["terms_per_s"] / 1e6, ".2f"), fmt(r["vs_array"], ".3f"),
          fmt(r["nanobragg_s"], ".4f"), fmt(r["ratio"], ".3f"), fmt(r["max_rel_diff"], ".1e")] for r in rows])
    if binary is None:
        print("nanoBragg not run (not on PATH, or --no-nanobragg): its columns are empty")
    else:
        print(f"nanoBragg: {binary}, OMP_NUM_THREADS={threads}; its wall time includes process start and "
              "writing intimage.img and the float image")
    for case, args in dict((r["case"], r["args"]) for r in rows).items():
        print(f"  {case}: {args}")


def report_adjoint(rows):
    print_table(
        f"Adjoint: Simulation.vjp pullback (wrt {', '.join(WRT)}) vs one forward render, 10 mosaic domains",
        ["engine", "pixels", "domains", "forward s", "pullback s", "pullback/forward", "image MB",
         "forward peak MB", "pullback peak MB"],
        [[r["engine"], f"{r['pixels']:,}", str(r["domains"]), fmt(r["forward_s"], ".3f"), fmt(r["pullback_s"], ".3f"),
          fmt(r["time_ratio"], ".2f"), fmt(r["image_mb"], ".2f"), fmt(r["forward_peak_mb"], ".1f"),
          fmt(r["pullback_peak_mb"], ".1f")] for r in rows])
    for name in dict.fromkeys(r["engine"] for r in rows):
        report_memory_growth(name, [r for r in rows if r["engine"] == name])


def report_memory_growth(name, rows):
    """How one engine's peaks grow from the smallest to the largest detector."""
    small, large = rows[0], rows[-1]
    if small["forward_peak_mb"] is not None and large["pixels"] != small["pixels"]:
        pixel_ratio = large["pixels"] / small["pixels"]
        domain_term_mb = (large["pixels"] - small["pixels"]) * large["domains"] * 8 / 1e6
        print(f"{name}: pixel ratio {pixel_ratio:g}; peak ratio forward "
              f"{large['forward_peak_mb'] / small['forward_peak_mb']:.2f}, pullback "
              f"{large['pullback_peak_mb'] / small['pullback_peak_mb']:.2f}; pullback peak growth "
              f"{large['pullback_peak_mb'] - small['pullback_peak_mb']:.1f} MB for "
              f"{large['image_mb'] - small['image_mb']:.1f} MB more image "
              f"(a pixels x domains term would add {domain_term_mb:.1f} MB per float64 array); "
              "below one full chunk of pixels the peaks still grow with the detector")


def report_chunks(rows):
    print_table(
        f"Memory vs engine chunk size ({rows[0]['pixels']:,} pixels, 10 domains; default chunk_terms "
        f"{engine.DEFAULT_CHUNK_TERMS:,}; the numba engine holds no chunk temporaries)",
        ["engine", "chunk_terms", "forward s", "pullback s", "forward peak MB", "pullback peak MB"],
        [[r["engine"], f"{r['chunk_terms']:,}", fmt(r["forward_s"], ".3f"), fmt(r["pullback_s"], ".3f"),
          fmt(r["forward_peak_mb"], ".1f"), fmt(r["pullback_peak_mb"], ".1f")] for r in rows])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="detector edges divided by 4, one repeat")
    parser.add_argument("--repeat", type=int, default=None, help="timing repeats, best kept (default 5; 1 quick)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for nanoBragg (default 1)")
    parser.add_argument("--engine", choices=sorted(ENGINES) + ["all"], default="all",
                        help="arraybragg engine (default: every installed engine that runs on --xp)")
    parser.add_argument("--xp", choices=("numpy", "array_api_strict", "cupy"), default="numpy",
                        help="array namespace of our runs (peak memory is measured for numpy only)")
    parser.add_argument("--nanobragg", default=None, help="nanoBragg binary (default: `nanoBragg` on PATH)")
    parser.add_argument("--no-nanobragg", action="store_true", help="do not run nanoBragg")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write every figure as JSON")
    options = parser.parse_args(argv)
    if options.repeat is None:
        options.repeat = 1 if options.quick else 5
    if options.repeat < 1 or options.threads < 1:
        parser.error("--repeat and --threads must be >= 1")
    return options


def main(argv=None):
    options = parse_args(argv)
    xp = namespace(options.xp)
    scale = 4 if options.quick else 1
    binary = None if options.no_nanobragg else (options.nanobragg or shutil.which("nanoBragg"))
    names = engine_names(options, xp)
    print(f"arraybragg {arraybragg.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; engines {', '.join(names)} on {options.xp}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'unset')}")
    cases = standard_cases(scale)
    for name in names:
        warm_up(name, xp, cases[0].args)
    forward = [row for case in cases for row in forward_rows(case, names, options, xp, binary)]
    report_forward(forward, binary, options.threads)
    adjoint = [adjoint_row(n // scale, name, options, xp) for name in names for n in (256, 512)]
    report_adjoint(adjoint)
    sizes = sorted({1 << 12, 1 << 14, 1 << 16, 1 << 18, engine.DEFAULT_CHUNK_TERMS})
    chunks = [chunk_row(512 // scale, c, name, options, xp) for name in names for c in sizes]
    report_chunks(chunks)
    if options.json:
        with open(options.json, "w") as handle:
            json.dump(dict(options=vars(options), nanobragg=binary, forward=forward, adjoint=adjoint,
                           chunks=chunks), handle, indent=1)
            handle.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
