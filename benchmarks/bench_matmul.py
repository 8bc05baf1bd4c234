"""Speed and memory of the jet matrix product: the package's rule against its numpy
formulation and against block-Toeplitz GEMMs.

Up to order ``_config.COMPILED_MATMUL_MAX_ORDER`` (12) the package's ``matmul``
rule runs one compiled kernel of loops in a fixed order, without BLAS
(``kernels.matmul_series``: a direction's series the same to the bit alone or
among others); above it, and as the first candidate here, by numpy calls
(``rules.matmul_series_numpy``): two GEMMs against the primals (the stack of
orders and directions folded into the rows; a real primal times a complex series
at half the cost of a complex GEMM) and one batched product per order r for the
cross terms.  The other candidates (idea (a) of issue 11) compute every order
pair of one product in one GEMM per direction, against a block lower-triangular
Toeplitz matrix of the smaller operand, in one block of orders or in blocks
bounded to +50 % of the memory of the three series.
For the paper MicroGPT's products

    x @ W.T     activations (8, 16) times the weights (16, 16), (64, 16) and the
                output layer's (27, 16), transposed views into one flat parameter
                jet, as training has them
    h @ W.T     the MLP's hidden (8, 64) times its output weight (16, 64), the same
    dy.T @ x    the weight gradient of the (64, 16) layer: (64, 8) @ (8, 16)
    q @ k^T     attention, 4 heads: (4, 8, 4) @ (4, 4, 8), a transposed view
    att @ v     attention, 4 heads: (4, 8, 8) @ (4, 8, 4)

with a real primal and complex series on both operands (as in the sketch), at
(order, directions) = (3, 1), (6, 1), (3, 64), (3, 500), (20, 4), (100, 12), and
with real series (real directions) at the first four, it
prints the median time of each (median of 3-7 runs after a warm-up run, all in
one process), the package rule's useful GFLOP/s, the peak of numpy allocations of
one call of each (``tracemalloc``, the operands excluded) and the largest
difference from the package rule relative to the largest coefficient.  Useful
flops per direction and order pair: a real-times-complex multiply-add (the pairs
with a primal) counts 4, a complex one 8, a real one 2.

    python benchmarks/bench_matmul.py            # ~1.5 minutes on one core
    python benchmarks/bench_matmul.py --write docs/performance.md

Shape legend: K = order, M = directions, (n, k) @ (k, p) per order and direction.
"""

import argparse
import functools
import os
import sys
import time
import tracemalloc

import numpy as np

from taylorsketch import rules

from _common import format_seconds, load_text, machine, median_seconds, publish

SETTINGS = ((3, 1), (6, 1), (3, 64), (3, 500), (20, 4), (100, 12))
REAL_SETTINGS = ((3, 1), (6, 1), (3, 64), (3, 500))       # real directions (bench_peers.py's)


# ----------------------------------------------------------------------------
# the candidate: every order pair of one product in one GEMM per direction


def toeplitz_rule(primals, series, memory=None):
    """The ``matmul`` rule with the series by block-Toeplitz GEMMs (both operands with
    series; otherwise the package's rule).

    Per direction, ``[Y_1; ...; Y_K] = T [B_0; B_1; ...; B_K]`` with the block lower
    triangular Toeplitz matrix ``T[(r, a), (j, c)] = A_{r-j}[a, c]`` (zero for ``j > r``)
    of the smaller operand (``Y^T = B^T A^T`` when ``n > p``), gathered by one
    ``np.take``; ``np.matmul`` batches the GEMMs over directions.  With ``memory``,
    the output orders are split into blocks whose ``T`` holds at most ``memory`` times
    the elements of the three series (``A``, ``B``, ``Y``); otherwise one block.
    """
    (a0, b0), (as_, bs) = primals, series
    if as_ is None or bs is None or a0.ndim == 1 or b0.ndim == 1:
        return rules.RULES["matmul"](primals, series)
    y0 = np.matmul(a0, b0)
    as_, bs = rules.expand_series(as_, y0.ndim), rules.expand_series(bs, y0.ndim)
    dtype = np.result_type(np.float64, a0, as_, b0, bs)
    ys = np.empty(as_.shape[:2] + y0.shape, dtype=dtype)
    if as_.shape[-2] <= bs.shape[-1]:
        toeplitz_product(a0, as_, b0, bs, ys, memory)
    else:
        t = lambda x: np.swapaxes(x, -1, -2)        # noqa: E731
        toeplitz_product(t(b0), t(bs), t(a0), t(as_), t(ys), memory)
    return y0, ys


def toeplitz_product(a0, as_, b0, bs, ys, memory):
    order, n_dirs = as_.shape[:2]
    n, k, p = as_.shape[-2], as_.shape[-1], bs.shape[-1]
    rows = order_stack(a0, as_, ys.dtype, zero_block=True)           # (M, ..., K+2, n, k)
    rows = rows.reshape(rows.shape[:-3] + ((order + 2) * n, k))
    b_stack = inner_stack(b0, bs, ys.dtype)                         # (M, ..., (K+1) k, p)
    lead = (n_dirs,) + ys.shape[2:-2]
    nb = ys.ndim - 4
    order_first = (nb + 1,) + tuple(range(nb + 1)) + (nb + 2, nb + 3)
    budget = order * (order + 1) if memory is None else \
        max(1, int(memory * order * (n * k + k * p + n * p) / (n * k)))
    for r0, r1, index in blocks(order, n, budget):
        toeplitz = np.take(rows, index, axis=-2)                    # (M, ..., R, n, r1, k)
        toeplitz = toeplitz.reshape(toeplitz.shape[:-4] + ((r1 - r0) * n, r1 * k))
        out = np.matmul(toeplitz, b_stack[..., : r1 * k, :])        # (M, ..., R n, p)
        ys[r0 - 1:r1 - 1] = out.reshape(lead + (r1 - r0, n, p)).transpose(order_first)


def order_stack(x0, xs, dtype, zero_block=False):
    """``X_0..X_K`` (and a zero block), direction first: ``(M, ..., K+1 (+1), n, k)``."""
    order, n_dirs = xs.shape[:2]
    nd = xs.ndim
    stack = np.empty((n_dirs,) + xs.shape[2:-2] + (order + 1 + zero_block,) + xs.shape[-2:], dtype)
    stack[..., 0, :, :] = x0
    stack[..., 1:order + 1, :, :] = xs.transpose(tuple(range(1, nd - 2)) + (0, nd - 2, nd - 1))
    if zero_block:
        stack[..., order + 1, :, :] = 0
    return stack


def inner_stack(b0, bs, dtype):
    """``[B_0; ...; B_K]`` along the inner axis, ``(M, ..., (K+1) k, p)``; stored transposed
    when ``B``'s matrices are (so the copy moves runs of ``k`` contiguous entries)."""
    if bs.strides[-2] < bs.strides[-1]:
        stack = order_stack(np.swapaxes(b0, -1, -2), np.swapaxes(bs, -1, -2), dtype)  # (M, ..., K+1, p, k)
        stack = np.swapaxes(stack, -2, -3).reshape(stack.shape[:-3] + (bs.shape[-1], -1))
        return np.swapaxes(stack, -1, -2)
    stack = order_stack(b0, bs, dtype)
    return stack.reshape(stack.shape[:-3] + (-1, bs.shape[-1]))


@functools.lru_cache(maxsize=None)
def blocks(order, n, budget):
    """``(r0, r1, index)``: output orders ``r0..r1-1`` with ``R r1 <= budget`` (at least one);
    ``index[r', a, j] = (r - j) n + a``, the row of ``A_{r-j}`` (a zero row for ``j > r``)."""
    out, r0 = [], 1
    while r0 <= order:
        size = 1
        while r0 + size <= order and (size + 1) * (r0 + size + 1) <= budget:
            size += 1
        r1 = r0 + size
        r = np.arange(r0, r1)[:, None, None]
        j = np.arange(r1)[None, None, :]
        a = np.arange(n)[None, :, None]
        out.append((r0, r1, np.where(j <= r, (r - j) * n + a, (order + 1) * n + a)))
        r0 = r1
    return tuple(out)


# ----------------------------------------------------------------------------
# the operands


def series(rng, order, n_dirs, shape, real=False):
    if real:
        return rng.standard_normal((order, n_dirs) + shape)
    out = np.empty((order, n_dirs) + shape, dtype=np.complex128)
    out.real = rng.standard_normal(out.shape)
    out.imag = rng.standard_normal(out.shape)
    return out


def transposed(primal, xs):
    return np.swapaxes(primal, -1, -2), np.swapaxes(xs, -1, -2)


def operands(name, order, n_dirs, rng, real=False):
    """``(primals, series)`` of one product, laid out as the model's jets are (complex
    series, or real ones)."""
    series = functools.partial(globals()["series"], real=real)
    a_shape, b_shape, b_transposed, a_transposed = CASES[name]
    if a_transposed:       # dy.T: a transposed view of a contiguous (8, 64)
        a0, as_ = transposed(rng.standard_normal(a_shape[::-1]), series(rng, order, n_dirs, a_shape[::-1]))
    else:
        a0, as_ = rng.standard_normal(a_shape), series(rng, order, n_dirs, a_shape)
    stored = b_shape[:-2] + b_shape[-2:][::-1]
    if b_transposed and len(b_shape) == 2:      # W.T: a view into a flat parameter jet
        size = int(np.prod(stored))
        flat = series(rng, order, n_dirs, (size + 100,))
        b0, bs = transposed(rng.standard_normal(stored), flat[..., 50:50 + size].reshape((order, n_dirs) + stored))
    elif b_transposed:     # k^T: a transposed view of a contiguous array
        b0, bs = transposed(rng.standard_normal(stored), series(rng, order, n_dirs, stored))
    else:
        b0, bs = rng.standard_normal(b_shape), series(rng, order, n_dirs, b_shape)
    return (a0, b0), (as_, bs)


# name: A shape, B shape, B is a transposed view, A is a transposed view
CASES = {
    "x @ W.T, W 16x16": ((8, 16), (16, 16), True, False),
    "x @ W.T, W 64x16": ((8, 16), (16, 64), True, False),
    "h @ W.T, W 16x64": ((8, 64), (64, 16), True, False),
    "dy.T @ x, (64,8)@(8,16)": ((64, 8), (8, 16), False, True),
    "x @ W.T, W 27x16": ((8, 16), (16, 27), True, False),
    "q @ k^T, (4,8,4)@(4,4,8)": ((4, 8, 4), (4, 4, 8), True, False),
    "att @ v, (4,8,8)@(4,8,4)": ((4, 8, 8), (4, 8, 4), False, False),
}


def useful_flops(name, order, n_dirs, real=False):
    a_shape, b_shape = CASES[name][:2]
    batch = int(np.prod(np.broadcast_shapes(a_shape[:-2], b_shape[:-2])))
    n, k, p = a_shape[-2], a_shape[-1], b_shape[-1]
    pairs = (2 * 2 * order + 2 * order * (order - 1) / 2 if real
             else 4 * 2 * order + 8 * order * (order - 1) / 2)
    return batch * n * k * p * (2 + n_dirs * pairs)


def peak_bytes(rule, primals, series_):
    """Peak numpy allocations of one call beyond its operands."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    out = rule(primals, series_)
    peak = tracemalloc.get_traced_memory()[1] - start
    tracemalloc.stop()
    del out
    return peak


def numpy_rule(primals, series_):
    """The rule's numpy formulation (the package rule above order 12)."""
    (a0, b0), (as_, bs) = primals, series_
    y0 = np.matmul(a0, b0)
    return y0, rules.matmul_series_numpy(a0, as_, b0, bs, y0.ndim)


RULES = {
    "package rule": lambda primals, series_: rules.RULES["matmul"](primals, series_),
    "numpy formulation": numpy_rule,
    "Toeplitz, one block": toeplitz_rule,
    "Toeplitz, blocks": lambda primals, series_: toeplitz_rule(primals, series_, memory=0.5),
}


def measure():
    rng = np.random.default_rng(0)
    rows = []
    for real in (False, True):
        for name in CASES:
            for order, n_dirs in REAL_SETTINGS if real else SETTINGS:
                rows.append(measure_one(name, order, n_dirs, real, rng))
    return rows


def measure_one(name, order, n_dirs, real, rng):
    """One product at one (order, directions): every rule's time, peak and difference."""
    primals, series_ = operands(name, order, n_dirs, rng, real)
    reference = RULES["package rule"](primals, series_)[1]
    scale = np.max(np.abs(reference))
    row = dict(name=name + (", real" if real else ""), order=order, n_dirs=n_dirs,
               flops=useful_flops(name, order, n_dirs, real), seconds={}, bytes={}, difference={})
    for label, rule in RULES.items():
        got = rule(primals, series_)[1]
        row["difference"][label] = float(np.max(np.abs(got - reference)) / scale)
        row["seconds"][label] = median_seconds(lambda: rule(primals, series_))
        row["bytes"][label] = peak_bytes(rule, primals, series_)
    print(row_text(row), file=sys.stderr, flush=True)
    return row


def row_text(row):
    base = row["seconds"]["package rule"]
    cells = [row["name"], str(row["order"]), str(row["n_dirs"]), format_seconds(base),
             f"{row['flops'] / base / 1e9:.1f}"]
    for label in list(RULES)[1:]:
        cells += [format_seconds(row["seconds"][label]), f"{base / row['seconds'][label]:.2f}"]
    cells += [" / ".join(f"{row['bytes'][label] / 2 ** 20:.2f}" for label in RULES),
              " / ".join(f"{row['difference'][label]:.0e}" for label in list(RULES)[1:])]
    return "| " + " | ".join(cells) + " |"


SECTION = "## Matrix products (benchmarks/bench_matmul.py)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="PATH", help="write the table as a section of PATH (docs/performance.md)")
    args = parser.parse_args()
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    rows = measure()
    lines = [SECTION, "", f"Run on {machine()}.",
             load_text(load_before, os.getloadavg()[0], time.perf_counter() - start),
             "Real primals, complex series (rows marked real: real series, as with real directions); "
             "one call of each rule; speed-up = package rule time / candidate "
             "time (below 1: the package rule is faster). Peak: numpy allocations of one call (package / "
             "numpy / one block / blocks), MiB (the compiled kernel's own work arrays are not traced). "
             "Difference: max |candidate - package| / max |coefficient|.",
             "",
             "| product | K | M | package rule | GFLOP/s | numpy formulation | speed-up | Toeplitz, one block "
             "| speed-up | Toeplitz, blocks (+50 % memory) | speed-up | peak MiB | difference |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    lines += [row_text(row) for row in rows]
    publish("\n".join(lines), args.write, SECTION)


if __name__ == "__main__":
    main()
