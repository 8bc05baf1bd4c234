"""Cost of per-document jets against the random sketch, in the same run.

The paper's MicroGPT on its first ``n`` names, ``n`` steps (default 1,000):
``precompute(..., directions="documents")`` (every ``e_i``, real, batches
started at their first document's step) at each order of ``--orders``, against
``precompute(..., directions=M)`` (random complex directions, order 3, default
M = 500), one process each.  Each time is the median of ``--runs`` runs (default 1
at the paper's scale, where one run takes minutes; the ratio is what the issue
asks for, and both sides run in the same session under the same load).  Also
printed: direction-steps (what late starting saves) and storage.

    python benchmarks/bench_documents.py                      # paper scale, ~15-25 min
    python benchmarks/bench_documents.py --n 200 --runs 3     # a minute or two
    python benchmarks/bench_documents.py --write docs/performance.md
"""

import argparse
import datetime
import time

import numpy as np

import taylorsketch as ts

from _common import format_mib, format_seconds, machine, publish


def direction_steps_documents(n, steps, batch):
    """Direction-steps trained by the late-started batches (``n`` random directions
    would take ``n * steps``)."""
    starts = np.arange(0, min(n, steps), batch)
    sizes = np.minimum(batch, min(n, steps) - starts)
    return int(np.sum(sizes * (steps - starts)))


def timed(fn, runs):
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--directions", type=int, default=500)
    ap.add_argument("--orders", default="3", help="orders of the per-document jets, comma-separated")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--write", help="replace this benchmark's section of a markdown file")
    args = ap.parse_args()

    s = ts.paper.setup()
    model = ts.MicroGPT(s.vocab)
    docs = s.docs[:args.n]
    ts.precompute(model, s.init, docs[:20], order=2, directions="documents", steps=4, progress=False)  # compile
    ts.precompute(model, s.init, docs[:20], order=2, directions=4, steps=4, progress=False)
    base, sketch = timed(lambda: ts.precompute(model, s.init, docs, order=3, directions=args.directions,
                                               progress=False), args.runs)
    rows = [("random directions", 3, args.directions, args.directions * args.n, base, sketch.series.nbytes)]
    for order in (int(k) for k in args.orders.split(",")):
        seconds, per = timed(lambda: ts.precompute(model, s.init, docs, order=order, directions="documents",
                                                   progress=False), args.runs)
        rows.append(("documents", order, args.n, direction_steps_documents(args.n, args.n, 64), seconds,
                     per.series.nbytes))
    lines = [f"Paper MicroGPT, first {args.n} names, {args.n} steps, one process; median of {args.runs} run(s); "
             f"{machine()}; {datetime.date.today()}.", "",
             "| directions | order | count | direction-steps | time | vs the random sketch | storage |",
             "|---|---|---|---|---|---|---|"]
    for kind, order, count, steps, seconds, nbytes in rows:
        lines.append(f"| {kind} | {order} | {count} | {steps:,} | {format_seconds(seconds)} | "
                     f"{seconds / base:.2f} | {format_mib(nbytes)} |")
    heading = "## Per-document jets (benchmarks/bench_documents.py)"
    publish("\n".join([heading, ""] + lines), args.write, heading)


if __name__ == "__main__":
    main()
