"""What progress reporting costs: training with a visible bar against training without.

Each row times the same run with ``progress=False`` and with a bar that is
drawn (``taylorsketch.progress.Bar(True)``, its output sent to ``/dev/null``
so that tqdm formats and writes exactly as on a terminal), alternating the
two (in the order ABBA, so that neither always runs first) so that a change
in the machine's load hits both alike.  Times are CPU time
(``time.process_time``, plus the finished worker processes' for the row with
workers): what other processes on a shared machine change least.  Each time
is the median of several runs, and the ratio is the median of bar / no bar
over the pairs of consecutive runs.  The noise column is the median change
from one run without a bar to the next: a ratio within it is no measurable
overhead.  So the second table gives the direct cost of what a bar adds: one
``add`` call per training step (the bar's in one process; the worker's
``SharedCounter``: a clock reading, and a lock every 0.2 s), and at most five
redraws a second.

    python benchmarks/bench_progress.py                 # ~4 minutes
    python benchmarks/bench_progress.py --write docs/performance.md
"""

import argparse
import contextlib
import datetime
import multiprocessing
import os
import resource
import statistics
import sys
import time

from _common import format_seconds, load_text, machine, publish

import numpy as np

import taylorsketch as ts
from taylorsketch.progress import Bar, SharedCounter

SECTION = "## Progress bars (benchmarks/bench_progress.py)"


@contextlib.contextmanager
def stderr_to_devnull():
    with open(os.devnull, "w") as sink:
        saved, sys.stderr = sys.stderr, sink
        try:
            yield
        finally:
            sys.stderr = saved


def paired(run, repeats, clock):
    """``run(False)`` and ``run(True)`` alternated, after one warm-up each, timed by ``clock``:
    ``(median off, median on, median on/off of each pair, median |off_next / off - 1|)``."""
    run(False)
    run(True)
    off, on = [], []
    for i in range(repeats):
        order = ((False, off), (True, on)) if i % 2 == 0 else ((True, on), (False, off))
        for show, times in order:
            start = clock()
            run(show)
            times.append(clock() - start)
    ratio = statistics.median(b / a for a, b in zip(off, on))
    noise = statistics.median(abs(b / a - 1) for a, b in zip(off, off[1:]))
    return statistics.median(off), statistics.median(on), ratio, noise


def rows(quick):
    s = ts.paper.setup(seed=42)
    model = s.model()
    docs = s.docs[:1000]

    def plain(show):
        with stderr_to_devnull():
            ts.train(model, s.init, docs, steps=1000, progress=Bar(True) if show else False)

    def jet(show):
        psi = ts.estimator.random_directions(len(docs), np.arange(8), seed=0)
        weights = ts.Jet.from_directions(np.zeros(len(docs)), psi, 3)
        with stderr_to_devnull():
            ts.train(model, s.init, docs, steps=100, weights=weights, progress=Bar(True) if show else False)

    def workers(show):
        with stderr_to_devnull():
            ts.precompute(model, s.init, docs, order=3, directions=16, steps=200, batch_size=8,
                          workers=2, progress=Bar(True) if show else False)

    yield "plain training, 1,000 steps (one process)", plain, 1000, 21, time.process_time
    yield "jet training, order 3, 8 directions, 100 steps (one process)", jet, 100, 9, time.process_time
    if not quick:
        yield "precompute, order 3, 16 directions, 200 steps, workers=2 (2 batches; the CPU time " \
            "of all three processes, their start included)", workers, 200, 5, cpu_with_children


def cpu_with_children():
    """CPU seconds of this process and of its finished children (the workers of a run)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def per_call(n=200_000):
    """Seconds per ``add`` of a drawn bar (to /dev/null) and of a worker's SharedCounter, and
    per redraw of the bar (tqdm redraws at most every ``mininterval`` = 0.2 s)."""
    with stderr_to_devnull():
        bar = Bar(True, total=n, label="bench", unit="step")
        start = time.perf_counter()
        for _ in range(n):
            bar.add(8)
        bar_cost = (time.perf_counter() - start) / n
        start = time.perf_counter()
        for _ in range(1000):
            bar._bar.refresh()
        redraw = (time.perf_counter() - start) / 1000
        bar.close()
    counter = SharedCounter(multiprocessing.get_context("spawn").Value("q", 0))
    start = time.perf_counter()
    for _ in range(n):
        counter.add(8)
    return bar_cost, (time.perf_counter() - start) / n, redraw


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the workers=2 row")
    parser.add_argument("--write", metavar="PATH", help="add or replace this section in a markdown file")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    lines = ["| run | runs (each) | no bar: CPU time (median) | bar (median) | bar / no bar (median of pairs) "
             "| noise (no bar / no bar) |", "|---|---|---|---|---|---|"]
    step_times = {}
    for label, run, steps, repeats, clock in rows(args.quick):
        print(f"running {label} ...", file=sys.stderr, flush=True)
        off, on, ratio, noise = paired(run, repeats, clock)
        step_times[label] = off / steps
        lines.append(f"| {label} | {repeats} | {format_seconds(off)} | {format_seconds(on)} "
                     f"| {ratio:.4f} ({100 * (ratio - 1):+.2f} %) | {100 * noise:.2f} % |")
    bar_cost, shared_cost, redraw = per_call()
    fastest = min(step_times.values())
    cost_lines = [
        "| one `add` call | cost | share of the fastest step (plain training, "
        f"{format_seconds(fastest)}) |", "|---|---|---|",
        f"| `Bar.add` (tqdm drawn, one process: once per step) | {bar_cost * 1e6:.2f} us "
        f"| {100 * bar_cost / fastest:.2f} % |",
        f"| `SharedCounter.add` (in a worker: once per step) | {shared_cost * 1e6:.2f} us "
        f"| {100 * shared_cost / fastest:.3f} % |",
        f"| one redraw of the bar (at most 5 a second) | {redraw * 1e6:.0f} us "
        f"| {100 * 5 * redraw:.3f} % of the time, at most |"]
    text = "\n".join([
        SECTION, "",
        f"Run on {datetime.date.today().isoformat()} on {machine()}, "
        f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}.",
        load_text(load_before, os.getloadavg()[0], time.perf_counter() - began),
        "Each run trains the paper's MicroGPT; \"bar\" draws a progress bar (to /dev/null), \"no bar\" "
        "is `progress=False`; the two alternate (ABBA), times are CPU time (with the workers' for "
        "the last row), each is the median of the runs and the ratio the median over consecutive "
        "pairs. The goal is an overhead under 1 %. On a shared machine "
        "the runs themselves vary by more than that (the noise column: consecutive runs without a "
        "bar), so the second table gives what the bar adds directly: one `add` per training step "
        "and at most five redraws a second.", "",
        *lines, "", *cost_lines, ""])
    publish(text, args.write, SECTION)


if __name__ == "__main__":
    main()
