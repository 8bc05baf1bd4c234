"""Speed of the sketch's queries, and (with ``--paper``) the paper's Figure-3 set-up end to end.

(a) Queries, on the paper's MicroGPT with the first 1,000 paper documents,
M = 500 random complex directions, order 3:

* predicting a new deletion set when the measurement's coefficients are known
  (one estimator evaluation, O(M |D| + M K)); target < 1 ms;
* the coefficients of a new measurement (the loss on one document evaluated
  in jet arithmetic on all 500 directions' parameter jets); target < 2 s.

Both costs depend on the shapes of the parameter jets, not on their values, so
the sketch for (a) is built cheaply with a 2-step precomputation (same shapes
as a 1,000-step one).  Each time is the median of several runs after an untimed
warm-up.

(b) ``--paper`` (about 5-15 minutes): D = the documents among the first 1,000
that contain 'x', measurement: loss on 'max', 1,000 steps.  Precompute order 3
with 500 directions (time, peak memory); the sketch's prediction with its
standard error; the exact degree-3 Taylor polynomial from the exact-direction
mode (``directions=indicator[None, :]``); the retrained truth.  Reports whether
the estimate lies within 3 standard errors of the exact polynomial and its
error against the degree-1 (influence-style) surrogate's.

    python benchmarks/bench_sketch.py                          # (a), under a minute
    python benchmarks/bench_sketch.py --paper                  # (a) and (b)
    python benchmarks/bench_sketch.py --write docs/performance.md
"""

import argparse
import datetime
import os
import time

import numpy as np

import taylorsketch as ts

from _common import (format_mib, format_seconds, load_text, machine, median_seconds, peak_rss_bytes, publish,
                     rss_bytes)

SECTION = "## Sketch (benchmarks/bench_sketch.py)"
N_DOCS = 1000
N_DIRECTIONS = 500
ORDER = 3


# -- (a) queries ---------------------------------------------------------------------------


def queries(progress):
    setup = ts.paper.setup(seed=42)
    model, docs = setup.model(), setup.docs[:N_DOCS]
    start = time.perf_counter()
    sketch = ts.precompute(model, setup.init, docs, order=ORDER, directions=N_DIRECTIONS, steps=2,
                           progress=progress)
    build = time.perf_counter() - start
    phi = ts.measure.doc_loss(model, "max")
    sketch.coefficients(phi)

    x_docs = np.flatnonzero(ts.deletion.deletion_indicator(docs, lambda d: "x" in d))
    rng = np.random.default_rng(0)
    random_sets = iter([np.sort(rng.choice(N_DOCS, size=100, replace=False)) for _ in range(100)])
    everything = np.arange(N_DOCS)
    t_grid = np.linspace(0, 1, 11)

    # every call of a new measurement must miss the cache: one document per call
    fresh_docs = iter([d for d in setup.docs[N_DOCS:] if 3 <= len(d) <= 8][:20])

    def new_measurement():
        sketch.coefficients(ts.measure.doc_loss(model, next(fresh_docs)))

    rows = [
        (f"predict a new deletion set: the {len(x_docs)} docs containing 'x'",
         median_seconds(lambda: sketch.predict(phi, x_docs), 51, 51), 1e-3),
        ("predict a new deletion set: 100 random docs",
         median_seconds(lambda: sketch.predict(phi, next(random_sets)), 51, 51), 1e-3),
        (f"predict, worst case: all {N_DOCS:,} docs deleted",
         median_seconds(lambda: sketch.predict(phi, everything), 51, 51), 1e-3),
        ("predict at 11 values of t (the 'x' docs)",
         median_seconds(lambda: sketch.predict(phi, x_docs, t=t_grid), 51, 51), 1e-3),
        ("predict with median of means, 10 groups (the 'x' docs)",
         median_seconds(lambda: sketch.predict(phi, x_docs, groups=10), 51, 51), 1e-3),
        ("coefficients of a new measurement (loss on one document)",
         median_seconds(new_measurement, 7, 7), 2.0),
    ]
    return rows, build


def queries_table(rows):
    lines = [f"| query (M = {N_DIRECTIONS}, order {ORDER}, paper MicroGPT, n = {N_DOCS:,}) "
             "| time (median) | target | met? |",
             "|---|---|---|---|"]
    for name, seconds, target in rows:
        lines.append(f"| {name} | {format_seconds(seconds)} | < {format_seconds(target)} | "
                     f"{'yes' if seconds < target else '**no**'} |")
    return "\n".join(lines)


# -- (b) the paper's set-up end to end ----------------------------------------------------------


def paper_run(progress, workers):
    setup = ts.paper.setup(seed=42)
    model, docs = setup.model(), setup.docs[:N_DOCS]
    indicator = ts.deletion.deletion_indicator(docs, lambda d: "x" in d)
    deleted = np.flatnonzero(indicator)
    phi = ts.measure.doc_loss(model, "max")

    rss_before = rss_bytes()
    start = time.perf_counter()
    sketch = ts.precompute(model, setup.init, docs, order=ORDER, directions=N_DIRECTIONS, seed=0,
                           steps=N_DOCS, progress=progress, workers=workers,
                           batch_size=-(-N_DIRECTIONS // max(workers, 1)))
    precompute_seconds = time.perf_counter() - start
    peak_rss = peak_rss_bytes()
    peak_child_rss = peak_rss_bytes(children=True)
    start = time.perf_counter()
    estimate = sketch.predict(phi, deleted)
    first_query_seconds = time.perf_counter() - start
    by_degree = [sketch.predict(phi, deleted, degree=k) for k in range(ORDER + 1)]

    start = time.perf_counter()
    exact = ts.precompute(model, setup.init, docs, order=ORDER, directions=indicator[None, :],
                          steps=N_DOCS, progress=progress).predict(phi, deleted)
    exact_seconds = time.perf_counter() - start
    start = time.perf_counter()
    truth = phi(ts.retrain(model, setup.init, docs, deleted, steps=N_DOCS, progress=progress))
    retrain_seconds = time.perf_counter() - start
    return {"n_deleted": len(deleted), "estimate": estimate, "by_degree": by_degree, "exact": exact,
            "truth": truth,
            "precompute_seconds": precompute_seconds, "first_query_seconds": first_query_seconds,
            "exact_seconds": exact_seconds, "retrain_seconds": retrain_seconds,
            "rss_before": rss_before, "peak_rss": peak_rss, "peak_child_rss": peak_child_rss,
            "workers": workers,
            "series_bytes": sketch.series.nbytes + sketch.primal.nbytes}


def paper_table(r):
    est, exact, truth = r["estimate"], r["exact"], r["truth"]
    sketch_linear = r["by_degree"][1].value
    exact_truncations = exact.truncations()
    lines = [f"D = the {r['n_deleted']} documents containing 'x' among the first {N_DOCS:,}; "
             f"measurement: loss on 'max'; {N_DOCS:,} steps.", "",
             f"| degree | sketch ({N_DIRECTIONS} directions) | exact polynomial along 1_D | sketch - exact (in s.e.) "
             "| sketch - truth | exact - truth |",
             "|---|---|---|---|---|---|"]
    for k, p in enumerate(r["by_degree"]):
        z = (p.value - exact_truncations[k]) / p.stderr if p.stderr else 0.0
        lines.append(f"| {k} | {p.value:.6f} +- {p.stderr:.6f} | {exact_truncations[k]:.6f} | {z:+.2f} "
                     f"| {p.value - truth:+.2e} | {exact_truncations[k] - truth:+.2e} |")
    within = abs(est.value - exact.value) <= 3 * est.stderr
    linear_error = abs(exact_truncations[1] - truth)
    lines += ["",
              f"* retrained truth: {truth:.6f}",
              f"* sketch, degree 3: {est.value:.6f} +- {est.stderr:.6f} (one standard error); "
              f"within 3 standard errors of the exact degree-3 polynomial: **{'yes' if within else 'no'}**",
              f"* error against the truth: sketch degree 3 {abs(est.value - truth):.2e}; degree-1 surrogate "
              f"(exact c_0 + c_1) {linear_error:.2e}; sketch degree 1 {abs(sketch_linear - truth):.2e}",
              f"* precompute (order {ORDER}, {N_DIRECTIONS} directions, {N_DOCS:,} steps): "
              f"{format_seconds(r['precompute_seconds'])} with {r['workers']} worker process(es); "
              f"peak RSS {format_mib(r['peak_rss'])} (before: {format_mib(r['rss_before'])})"
              + (f", largest worker {format_mib(r['peak_child_rss'])}" if r["workers"] > 1 else "") + "; "
              f"stored jets {format_mib(r['series_bytes'])}",
              f"* first prediction (coefficients + estimator): {format_seconds(r['first_query_seconds'])}; "
              f"exact-direction precompute: {format_seconds(r['exact_seconds'])}; "
              f"one retraining: {format_seconds(r['retrain_seconds'])}"]
    return "\n".join(lines)


# -- report ------------------------------------------------------------------------------------


def report(rows, build, paper, load_before, load_after):
    parts = [SECTION, "",
             f"Run on {datetime.date.today().isoformat()} on {machine()}. " + load_text(load_before, load_after),
             "",
             "(a) Queries. The sketch's parameter jets for these timings come from a 2-step "
             f"precomputation ({format_seconds(build)}): query costs depend only on the jets' shapes, "
             "which are those of a 1,000-step run. Median of 51 runs (7 for coefficients, each a "
             "new measurement), after a warm-up.",
             "", queries_table(rows), ""]
    if paper is not None:
        parts += ["(b) The paper's set-up end to end (`--paper`).", "", paper_table(paper), ""]
    else:
        parts += ["(b) The paper's set-up end to end: not run here (`--paper`, about 5-15 minutes).", ""]
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true",
                        help="also run the paper's set-up end to end (about 5-15 minutes)")
    parser.add_argument("--write", metavar="PATH", help="add or replace this section in a markdown file")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes for the --paper precompute (default 2; peak memory is then per process)")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    # (b) first, so that its peak memory is not that of (a)
    paper = paper_run(args.progress, args.workers) if args.paper else None
    rows, build = queries(args.progress)
    text = report(rows, build, paper, load_before, os.getloadavg()[0])
    publish(text, args.write, SECTION)


if __name__ == "__main__":
    main()
