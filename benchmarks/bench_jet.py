"""Speed of the two hot jet operations: the elementwise product and the matrix product.

For orders 3 and 100 and 1, 64 and 500 directions, with a real primal and complex
series (as in the sketch), this times

* ``x * y``: two jets of the same shape, the activation shape ``(8, 16)`` and the
  MLP weight shape ``(64, 16)`` of the paper's MicroGPT;
* ``x @ W.T``: an activation jet ``x`` ``(8, 16)`` times a weight jet ``W``
  ``(16, 16)`` (attention) or ``(64, 16)`` (MLP), both with series.

Each time is the median of several runs after an untimed warm-up run.  GFLOP/s
counts the useful real floating-point operations (a complex multiply-add is 8, a
real-times-complex one 4, a real one 2):

    product   (K+1)(K+2)/2 complex multiply-adds per scalar and direction
              (the kernel works on full (K+1, M*N) arrays, c_0 included)
    matmul    2nkp for the primal, and per direction 2K real-times-complex GEMMs
              (A_0 B_r, A_r B_0) and K(K-1)/2 complex ones (A_i B_j, i, j >= 1)

and is shown next to the rate of one large plain numpy GEMM (complex128 and
float64) measured in the same run.  The matrix product is timed twice: with
numpy's default BLAS threads and, if ``threadpoolctl`` is installed, with one BLAS
thread (on a loaded machine a multi-threaded BLAS call on small matrices can wait
for a descheduled thread).  A configuration whose arrays would need more than
``MEMORY_LIMIT`` bytes is skipped, and the table says so.

    python benchmarks/bench_jet.py                          # ~2-3 minutes on 2 cores
    python benchmarks/bench_jet.py --write docs/performance.md

Shape legend: K = order, M = number of directions, N = elements of the primal,
(n, k) @ (k, p) for the matrix product.
"""

import argparse
import datetime
import os
import sys
import time

import numpy as np

from taylorsketch import Jet

from _common import format_seconds, load_text, machine, median_seconds, publish

try:
    from threadpoolctl import threadpool_limits
except ImportError:                  # optional: the one-thread column is left out
    threadpool_limits = None

SECTION = "## Jet operations (benchmarks/bench_jet.py)"
ORDERS = (3, 100)
N_DIRECTIONS = (1, 64, 500)
ACTIVATION = (8, 16)
WEIGHTS = ((16, 16), (64, 16))
MEMORY_LIMIT = 4e9
COMPLEX_BYTES = 16


# ----------------------------------------------------------------------------
# the operations, their useful flops and the memory they need


def random_jet(rng, shape, order, n_dirs):
    """A real primal and a complex series ``(K, M, *shape)``."""
    series = np.empty((order, n_dirs) + shape, dtype=np.complex128)
    series.real = rng.standard_normal(series.shape)
    series.imag = rng.standard_normal(series.shape)
    return Jet(rng.standard_normal(shape), series)


def product_flops(order, n_dirs, shape):
    return 8 * (order + 1) * (order + 2) / 2 * n_dirs * np.prod(shape)


def product_bytes(order, n_dirs, shape):
    # the two inputs, their full (K+1, M*N) copies and the output
    return 5 * (order + 1) * n_dirs * np.prod(shape) * COMPLEX_BYTES


def matmul_flops(order, n_dirs, weight):
    (n, k), p = ACTIVATION, weight[0]
    return 2 * n * k * p + n_dirs * n * k * p * (4 * 2 * order + 8 * order * (order - 1) / 2)


def matmul_bytes(order, n_dirs, weight):
    # inputs, the copies the rule makes of both series (stacked A_i, flipped B_j,
    # a transposed B for array@series), and four output-sized arrays
    (n, k), p = ACTIVATION, weight[0]
    per_order = n_dirs * COMPLEX_BYTES * order
    return per_order * (2 * n * k + 3 * k * p + 4 * n * p)


CASES = [("x * y", shape, product_flops, product_bytes) for shape in (ACTIVATION, WEIGHTS[1])] + \
        [("x @ W.T", weight, matmul_flops, matmul_bytes) for weight in WEIGHTS]


def make_operation(name, shape, order, n_dirs, rng):
    if name == "x * y":
        x, y = random_jet(rng, shape, order, n_dirs), random_jet(rng, shape, order, n_dirs)
        return lambda: x * y
    x, w = random_jet(rng, ACTIVATION, order, n_dirs), random_jet(rng, shape, order, n_dirs)
    return lambda: x @ w.T


# ----------------------------------------------------------------------------
# timing


def gemm_rate(dtype, n=1024, rng=None):
    """GFLOP/s of one ``(n, n) @ (n, n)`` numpy GEMM (8 n^3 flops complex, 2 n^3 real)."""
    rng = rng or np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    if np.iscomplexobj(a):
        a += 1j * rng.standard_normal((n, n))
        b += 1j * rng.standard_normal((n, n))
    flops = (8 if np.iscomplexobj(a) else 2) * n ** 3
    return flops / median_seconds(lambda: a @ b) / 1e9


def measure():
    rng = np.random.default_rng(0)
    rows = []
    for name, shape, flops, memory in CASES:
        for order in ORDERS:
            for n_dirs in N_DIRECTIONS:
                row = dict(name=name, shape=shape, order=order, n_dirs=n_dirs,
                           bytes=memory(order, n_dirs, shape))
                if row["bytes"] > MEMORY_LIMIT:
                    row["skipped"] = (f"skipped: needs ~{row['bytes'] / 1e9:.1f} GB "
                                      f"> {MEMORY_LIMIT / 1e9:.0f} GB")
                else:
                    operation = make_operation(name, shape, order, n_dirs, rng)
                    row["seconds"] = median_seconds(operation)
                    if name == "x @ W.T" and threadpool_limits is not None:
                        with threadpool_limits(1, user_api="blas"):
                            row["seconds_one_thread"] = median_seconds(operation)
                    row["flops"] = flops(order, n_dirs, shape)
                rows.append(row)
                print(_row_text(row, None), file=sys.stderr, flush=True)
    return rows


# ----------------------------------------------------------------------------
# report


def _operation_text(row):
    if row["name"] == "x * y":
        return f"x * y, {row['shape'][0]}x{row['shape'][1]}"
    return f"x @ W.T, x {ACTIVATION[0]}x{ACTIVATION[1]}, W {row['shape'][0]}x{row['shape'][1]}"


def _row_text(row, complex_rate):
    cells = [_operation_text(row), str(row["order"]), str(row["n_dirs"])]
    if "skipped" in row:
        return "| " + " | ".join(cells + [row["skipped"], "", "", "", ""]) + " |"
    for key in ("seconds", "seconds_one_thread"):
        if key not in row:
            cells += ["", ""]
            continue
        gflops = row["flops"] / row[key] / 1e9
        cells += [format_seconds(row[key]), f"{gflops:.2f}"]
        if key == "seconds":
            cells.append(f"{100 * gflops / complex_rate:.0f}%" if complex_rate else "")
    return "| " + " | ".join(cells) + " |"


def report(rows, complex_rate, real_rate, load_before, load_after, elapsed):
    header = ("| operation | order K | directions M | median time | GFLOP/s | of numpy complex GEMM "
              "| median time, 1 BLAS thread | GFLOP/s, 1 BLAS thread |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|")
    return "\n".join([
        SECTION, "",
        f"Run on {datetime.date.today().isoformat()} on {machine()}.",
        load_text(load_before, load_after, elapsed),
        "Real primal, complex series; median of 3-7 runs after a warm-up run. GFLOP/s counts "
        "useful flops (see the script's docstring). Plain numpy GEMM (1024x1024) in the same run: "
        f"complex128 {complex_rate:.1f} GFLOP/s, float64 {real_rate:.1f} GFLOP/s. "
        "The elementwise product is a single-threaded numba kernel; the matrix product is numpy "
        "(BLAS) GEMMs, timed with the default BLAS threads and with one.",
        "", header, *[_row_text(row, complex_rate) for row in rows], ""])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="PATH", help="add or replace this section in a markdown file")
    args = parser.parse_args()
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    complex_rate = gemm_rate(np.complex128)
    real_rate = gemm_rate(np.float64)
    rows = measure()
    text = report(rows, complex_rate, real_rate, load_before, os.getloadavg()[0],
                  time.perf_counter() - start)
    publish(text, args.write, SECTION)


if __name__ == "__main__":
    main()
