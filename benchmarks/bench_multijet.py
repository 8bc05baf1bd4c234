"""MultiJet costs: fast against naive subset convolution, and a MicroGPT training against d.

1. Subset convolution of two functions on the subsets of ``{0..d-1}`` with
   ``L = 16`` values per subset, d = 4..18: the ranked transforms
   (``subset_kernels.subset_convolution``, O(2^d d^2)) against the direct
   sum over submasks compiled with numba (O(3^d)), both single-threaded.
2. The paper's MicroGPT trained on the first 1,000 paper documents with the
   1,000-step schedule, but only the first ``--steps`` (default 100) steps
   timed: plain, then in MultiJet arithmetic along the indicators of d
   documents, and, for comparison, the same mixed partials by polarisation
   (one univariate Jet of order d along the 2^d - 1 unions of the indicators,
   which stays in the ranked domain for the whole run).

Every time is the median of several runs (one for d >= 5 in the training
table) after an untimed warm-up (a 2-step run for the training table).

    python benchmarks/bench_multijet.py                 # about 2 minutes
    python benchmarks/bench_multijet.py --write docs/performance.md
"""

import argparse
import datetime
import os
import time

import numba
import numpy as np

from _common import format_seconds, load_text, machine, median_seconds, publish

SECTION = "## MultiJet (benchmarks/bench_multijet.py)"
WIDTH = 16
MAX_D = 18


@numba.njit(cache=True)
def naive_subset_convolution(f, g, out):
    """``out[S] = sum_{T subset S} f[T] g[S \\ T]`` by walking the submasks: O(3^d)."""
    n_masks, n = f.shape
    for mask in range(n_masks):
        for l in range(n):
            out[mask, l] = 0.0
        sub = mask
        while True:
            for l in range(n):
                out[mask, l] += f[sub, l] * g[mask ^ sub, l]
            if sub == 0:
                break
            sub = (sub - 1) & mask


def convolution_table():
    from taylorsketch import subset_kernels
    rng = np.random.default_rng(0)
    rows, crossover = [], None
    for d in range(4, MAX_D + 1):
        f, g = rng.normal(size=(2, 1 << d, WIDTH))
        out = np.empty_like(f)
        runs = 3 if d <= 16 else 1
        fast = median_seconds(lambda: subset_kernels.subset_convolution(f, g, out), min_runs=runs,
                              min_total=0.3)
        naive = median_seconds(lambda: naive_subset_convolution(f, g, out), min_runs=runs, max_runs=5,
                               min_total=0.3)
        if crossover is None and fast < naive:
            crossover = d
        rows.append((d, fast, naive))
    lines = ["| d | subsets | fast (ranked transforms) | naive (sum over submasks) | naive / fast |",
             "|---|---|---|---|---|"]
    for d, fast, naive in rows:
        lines.append(f"| {d} | {1 << d:,} | {format_seconds(fast)} | {format_seconds(naive)} | "
                     f"{naive / fast:.1f} |")
    return lines, crossover


def training_table(steps, max_d):
    import taylorsketch as ts
    s = ts.paper.setup(seed=42)
    model = ts.MicroGPT(s.vocab)
    docs = s.docs[:1000]

    def run(weights, n_steps=steps):
        ts.train(model, s.init, docs, steps=n_steps, weights=weights,
                 optimizer=ts.Adam(total_steps=1000), progress=False)

    def timed(weights, runs):
        run(weights, 2)                    # warm-up: compiles and loads the kernels
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            run(weights)
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    plain = timed(None, 5)
    lines = ["| d | MultiJet training | / plain | polarised Jet (order d, 2^d - 1 directions) | "
             "MultiJet / polarised |", "|---|---|---|---|---|",
             f"| 0 (plain) | {format_seconds(plain)} | 1 | - | - |"]
    for d in range(1, max_d + 1):
        directions = np.zeros((d, len(docs)))
        directions[np.arange(d), 7 * np.arange(d)] = 1.0
        multi = ts.MultiJet.from_directions(np.zeros(len(docs)), directions)
        unions = np.stack([directions[[i for i in range(d) if mask >> i & 1]].sum(axis=0)
                           for mask in range(1, 1 << d)])
        polar = ts.Jet.from_directions(np.zeros(len(docs)), unions, order=d)
        runs = 3 if d <= 4 else 1
        t_multi, t_polar = timed(multi, runs), timed(polar, runs)
        lines.append(f"| {d} | {format_seconds(t_multi)} | {t_multi / plain:.0f} | "
                     f"{format_seconds(t_polar)} | {t_multi / t_polar:.2f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps timed (default 100)")
    parser.add_argument("--max-d", type=int, default=6, help="largest group in the training table")
    parser.add_argument("--write", metavar="FILE", help="replace this file's MultiJet section")
    args = parser.parse_args()
    start, load_before = time.time(), os.getloadavg()[0]
    conv, crossover = convolution_table()
    train = training_table(args.steps, args.max_d)
    elapsed, load_after = time.time() - start, os.getloadavg()[0]
    cross = (f"The ranked transforms are faster from d = {crossover} on." if crossover else
             f"The naive sum is faster up to d = {MAX_D}.")
    text = "\n".join([
        SECTION, "",
        f"Run on {datetime.date.today().isoformat()} on {machine()}; numba on "
        f"{numba.get_num_threads()} thread(s), one BLAS thread.",
        load_text(load_before, load_after, elapsed), "",
        f"Subset convolution of two functions with {WIDTH} values per subset (float64), "
        f"median of several runs; the naive sum is compiled with numba too. " + cross, "",
        *conv, "",
        f"Training the paper's MicroGPT (4,192 parameters, 1,000 documents, the 1,000-step "
        f"learning-rate schedule) for its first {args.steps} steps only, along the indicators of "
        f"d single documents. Both jet columns give the same 2^d mixed partials (the tests check "
        f"it); the polarised Jet keeps the ranked (zeta) coefficients for the whole run, d times "
        f"the MultiJet's state, and skips the per-operation transforms.", "",
        *train,
    ])
    publish(text, args.write, SECTION)


if __name__ == "__main__":
    main()
