"""Training speed of the paper's MicroGPT, plain and in jet arithmetic.

Each configuration runs in its own Python process (so that its peak memory is
its own), after an untimed warm-up run that loads the compiled kernels; the time
is the median of several runs.  Rows too slow to run in full are extrapolated
(marked so): each repeat times runs of p + s/2 and p + s steps, the difference
of the fastest run of each length gives the cost of one step and the rest the
one-time cost (allocating the jet state, the first p steps), and the estimate
is one-time + 1,000 x per-step (every step does the same work up to the
document's length; the first documents are of average length).  The host only
adds time, so the fastest runs are the least disturbed: estimates from each
repeat's own pair of runs at 500 directions ranged from 336 to 626 s for one
version and from 360 to 815 s for another in one measurement.  The prefix
p = 30 puts the timed steps after the first steps of each document length,
which run eagerly and are
recorded (13 of the 21 eager steps of a 1,000-step run come before step 30,
one between 30 and 60): the steps timed are replayed ones, as nearly all
steps of a full run are.  The order-100 row has no prefix (too slow); its
steps are recorded ones, whose extra cost is negligible at that size.  Memory is
the child process's peak resident set size (``resource.getrusage``) and the peak
of numpy/Python allocations during a short traced run (``tracemalloc``; numba's
own small work arrays are not traced).  A jet run's memory does not grow with
the number of steps.

    python benchmarks/bench_train.py                 # every row, ~5 minutes
    python benchmarks/bench_train.py --quick         # skip the 500-direction and order-100 rows
    python benchmarks/bench_train.py --write docs/performance.md
    python benchmarks/bench_train.py --threads 1     # numba kernels on one thread (NUMBA_NUM_THREADS)
    python benchmarks/bench_train.py --baseline DIR   # also time the package checked out in DIR

``--baseline`` runs every selected row a second time with another version of
the package (``git worktree add /tmp/base <commit>``, then ``--baseline
/tmp/base``), interleaved with this one's, and shows both and their ratio:
a speed-up measured in one run, on one machine state.  Rows ending in
"every step eager" run with ``TAYLORSKETCH_REPLAY=0`` (every step eagerly, no recorded
plans: :mod:`taylorsketch.plan`); rows ending in "malloc untuned" with
``TAYLORSKETCH_KEEP_FREED_MEMORY=0`` (glibc's malloc as it comes:
``_config.keep_freed_memory``).
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass

from _common import format_mib, format_seconds, load_text, machine, peak_rss_bytes, publish

TOTAL_STEPS = 1000
SECTION = "## Training (benchmarks/bench_train.py)"


@dataclass(frozen=True)
class Row:
    name: str
    order: int                 # 0: plain training
    n_directions: int
    steps: int                 # steps timed (TOTAL_STEPS: no extrapolation)
    repeats: int
    target_seconds: float = None
    target_bytes: float = None
    expensive: bool = False
    variant: str = ""          # a switch of the package, off: "eager" or "malloc"
    prefix: int = 0            # steps run before the timed ones of an extrapolated row

    # the environment of each variant, and how the table names it
    VARIANTS = {"eager": ({"TAYLORSKETCH_REPLAY": "0"}, "every step eager"),
                "malloc": ({"TAYLORSKETCH_KEEP_FREED_MEMORY": "0"}, "malloc untuned")}

    @property
    def label(self):
        if self.order == 0:
            return "plain"
        variant = f", {self.VARIANTS[self.variant][1]}" if self.variant else ""
        return f"jet, order {self.order}, {self.n_directions} direction{'s' * (self.n_directions > 1)}{variant}"


# targets: issue 11 (plain training: no slower than the 0.25 s measured before it)
ROWS = [
    Row("plain", 0, 0, TOTAL_STEPS, 5, target_seconds=0.25),
    Row("order3-m1", 3, 1, TOTAL_STEPS, 3),
    Row("order3-m1-eager", 3, 1, TOTAL_STEPS, 3, variant="eager"),
    Row("order3-m64", 3, 64, 60, 3, prefix=30),
    Row("order3-m500", 3, 500, 20, 3, target_seconds=200.0, target_bytes=1.5e9, expensive=True, prefix=30),
    Row("order3-m500-malloc", 3, 500, 20, 3, expensive=True, variant="malloc", prefix=30),
    Row("order6-m1", 6, 1, TOTAL_STEPS, 3, target_seconds=1.5),
    Row("order6-m1-eager", 6, 1, TOTAL_STEPS, 3, variant="eager"),
    Row("order20-m4", 20, 4, 100, 3, prefix=30),
    Row("order100-m12", 100, 12, 2, 3, target_seconds=1500.0, expensive=True),
]


# -- one configuration (runs in a child process) -----------------------------------------


def _train_once(row, setup, model, steps):
    """One training run of ``steps`` steps, scheduled as part of a 1,000-step run."""
    import numpy as np

    import taylorsketch as ts
    docs = setup.docs[:TOTAL_STEPS]
    optimizer = ts.Adam(total_steps=TOTAL_STEPS)
    weights = None
    if row.order:
        rng = np.random.default_rng(0)
        psi = rng.normal(size=(row.n_directions, len(docs))) + 1j * rng.normal(size=(row.n_directions, len(docs)))
        psi /= np.linalg.norm(psi, axis=1, keepdims=True)
        weights = ts.Jet.from_directions(np.zeros(len(docs)), psi, row.order)
    start = time.perf_counter()
    ts.train(model, setup.init, docs, steps=steps, weights=weights, optimizer=optimizer, progress=False)
    return time.perf_counter() - start


def run_row(row):
    import taylorsketch as ts
    setup = ts.paper.setup(seed=42)
    model = setup.model()
    _train_once(row, setup, model, min(row.steps, 2 if row.order < 50 else 1))     # warm-up
    times, shorts, fulls = [], [], []
    half = row.prefix + row.steps // 2
    for _ in range(row.repeats):
        if row.steps == TOTAL_STEPS:
            times.append(_train_once(row, setup, model, TOTAL_STEPS))
            continue
        shorts.append(_train_once(row, setup, model, half))
        fulls.append(_train_once(row, setup, model, row.prefix + row.steps))
    if shorts:
        # the host only ever adds time: the fastest run of each length is the least disturbed
        # (each repeat's own difference varied by up to 2.3 times: see the docstring)
        per_step = (min(fulls) - min(shorts)) / (row.prefix + row.steps - half)
        times.append(min(shorts) - half * per_step + TOTAL_STEPS * per_step)
    tracemalloc.start()
    _train_once(row, setup, model, 2)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    max_rss = peak_rss_bytes()
    import numba
    layer = numba.threading_layer() if row.order else None                 # known once a kernel ran
    floor = {"floor_seconds": None, "peak_seconds": None}
    if not os.environ.get("BENCH_BASELINE"):            # _floor records steps with this version's plan.py
        import _floor
        floor = _floor.step_floor(row.order, row.n_directions, steps=TOTAL_STEPS)
    return {"times": times, "traced_peak": traced_peak, "max_rss": max_rss,
            "threading_layer": layer, "threads": numba.config.NUMBA_NUM_THREADS,
            "floor": floor["floor_seconds"], "floor_at_gemm": floor["peak_seconds"]}


# -- the table --------------------------------------------------------------------------------


def _run_child(row, env):
    child = subprocess.run([sys.executable, __file__, "--row", row.name], capture_output=True, text=True,
                           env=dict(env, **(Row.VARIANTS[row.variant][0] if row.variant else {})))
    if child.returncode != 0:
        raise RuntimeError(f"row {row.name} failed:\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def measure(rows, threads=None, baseline=None):
    """Results per row name (and per row name in the ``baseline`` checkout, run right after)."""
    env = dict(os.environ, **({"NUMBA_NUM_THREADS": str(threads)} if threads else {}))
    results, base = {}, {}
    for row in rows:
        print(f"running {row.label} ({row.steps} steps x {row.repeats}) ...", file=sys.stderr, flush=True)
        results[row.name] = _run_child(row, env)
        if baseline and not row.variant:
            print(f"  ... and in {baseline}", file=sys.stderr, flush=True)
            base[row.name] = _run_child(row, dict(env, PYTHONPATH=os.path.abspath(baseline), BENCH_BASELINE="1"))
    return results, base


def table(rows, results, base=None):
    base = base or {}
    plain = statistics.median(results["plain"]["times"]) if "plain" in results else None
    extra = " baseline (same run) | speed-up |" if base else ""
    lines = ["| configuration | steps timed | time for 1,000 steps (median) | target | met? "
             "| machine's limit (all at GEMM rate) | fraction of the limit "
             "| jet / plain per direction | peak memory: RSS (traced) |" + extra,
             "|---|---|---|---|---|---|---|---|---|" + "---|---|" * bool(base)]
    for row in rows:
        result = results[row.name]
        total = statistics.median(result["times"])          # for 1,000 steps, extrapolated or not
        shown = format_seconds(total) + (" (extrapolated)" if row.steps < TOTAL_STEPS else "")
        targets, met = [], []
        if row.target_seconds is not None:
            targets.append(f"<= {format_seconds(row.target_seconds)}")
            met.append(total <= row.target_seconds)
        if row.target_bytes is not None:
            targets.append(f"<= {row.target_bytes / 1e9:g} GB")
            met.append(result["max_rss"] <= row.target_bytes)
        verdict = ("yes" if all(met) else "**no**") if met else "-"
        ratio = "-" if row.order == 0 or plain is None else f"{total / (plain * row.n_directions):.1f}"
        memory = f"{format_mib(result['max_rss'])} ({format_mib(result['traced_peak'])})"
        timed = (f"{row.steps}" if row.steps == TOTAL_STEPS
                 else f"{row.prefix + row.steps // 2} and {row.prefix + row.steps}")
        limit = f"{format_seconds(result['floor'])} ({format_seconds(result['floor_at_gemm'])})"
        line = (f"| {row.label} | {timed} x {row.repeats} | {shown} | {', '.join(targets) or '-'} "
                f"| {verdict} | {limit} | {result['floor'] / total:.2f} | {ratio} | {memory} |")
        if base:
            then = statistics.median(base[row.name]["times"]) if row.name in base else None
            line += f" {format_seconds(then)} | {then / total:.2f} |" if then else " - | - |"
        lines.append(line)
    return "\n".join(lines)


def numba_detail(results):
    """The numba threading layer(s) and thread count(s) the rows ran with."""
    layers = ", ".join(sorted({r["threading_layer"] for r in results.values() if r["threading_layer"]}))
    threads = ", ".join(str(n) for n in sorted({r["threads"] for r in results.values()}))
    return f"threading layer {layers or '-'}, {threads} numba threads"


def report(rows, results, load_before, load_after, elapsed, base=None, baseline=None):
    busy = ""
    if max(load_before, load_after) > 0.5 * len(os.sched_getaffinity(0)):
        busy = (" Other processes were running: timings are upper bounds, and jet rows with few "
                "directions suffer most (the fused Adam kernel's numba threads wait for cores "
                "at every parallel loop; compare a run with `--threads 1`).")
    return "\n".join([
        SECTION, "",
        f"Run on {datetime.date.today().isoformat()} on {machine(numba_detail(results))}.",
        load_text(load_before, load_after, elapsed) + busy,
        "Every run trains the paper's MicroGPT (4,192 parameters) on the first 1,000 paper "
        "documents with the 1,000-step schedule; jet rows use random complex unit directions. "
        "Rows with fewer steps timed are extrapolated to 1,000 steps from runs of a and b steps "
        "(per-step cost from the difference of the fastest run of each length, plus the one-time cost; "
        "a >= 30 puts the timed steps "
        "among the replayed ones). "
        "\"jet / plain per direction\" is the jet time divided by (plain time x directions). "
        "The machine's limit is the time of the step's useful flops at the rates measured in the "
        "row's own process (`_floor.py`: GEMMs at the one-thread GEMM rate, elementwise work and "
        "Adam at the rate of the package's Cauchy-product kernel, or the bytes a step must move at "
        "the copy bandwidth, whichever is longer; in brackets every flop at the GEMM rate); "
        "fraction = limit / measured time."
        + (f" The baseline is the package at {baseline}, each row run right after this one's; "
           "speed-up = baseline time / this time." if base else ""),
        "", table(rows, results, base), ""])


def _describe(checkout):
    """``DIR (commit abc1234)`` for a git checkout."""
    commit = subprocess.run(["git", "-C", checkout, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"commit {commit.stdout.strip()}" if commit.returncode == 0 else checkout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 500-direction and order-100 rows")
    parser.add_argument("--write", metavar="PATH", help="add or replace this section in a markdown file")
    parser.add_argument("--threads", type=int, help="NUMBA_NUM_THREADS for the runs (default: numba's)")
    parser.add_argument("--only", metavar="ROWS", help="comma-separated row names (e.g. order6-m1,plain)")
    parser.add_argument("--baseline", metavar="DIR", help="also time the package checked out in DIR")
    parser.add_argument("--row", help=argparse.SUPPRESS)            # internal: run one row, print JSON
    args = parser.parse_args()

    rows = {row.name: row for row in ROWS}
    if args.row:
        print(json.dumps(run_row(rows[args.row])))
        return
    selected = [row for row in ROWS if not (args.quick and row.expensive)]
    if args.only:
        unknown = set(args.only.split(",")) - set(rows)
        if unknown:
            parser.error(f"unknown rows {sorted(unknown)}; the rows are {', '.join(rows)}")
        selected = [row for row in selected if row.name in args.only.split(",")]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    results, base = measure(selected, args.threads, args.baseline)
    label = _describe(args.baseline) if args.baseline else None
    text = report(selected, results, load_before, os.getloadavg()[0], time.perf_counter() - start, base, label)
    publish(text, args.write, SECTION)


if __name__ == "__main__":
    main()
