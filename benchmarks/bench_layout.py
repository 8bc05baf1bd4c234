"""Layouts and loop orders of the elementwise kernels: what each would give.

Issue 11 asked whether the elementwise series kernels and the Adam update, which
run far below the GEMM rate, would be faster with another storage of the
complex coefficients or another loop order.  This times, on one core, the
package's kernels against variants written here, each checked to give the
same result to the bit (finite values):

* the Cauchy product (:func:`taylorsketch.kernels.mul`, interleaved complex128,
  ``(K+1, L)``) against
  * *float view*: the same array seen as float64, real and imaginary parts
    computed explicitly;
  * *planar*: real and imaginary parts in separate float64 arrays;
  * *blocked*: the package's loops over blocks of 256 scalars (so that the
    rows of a block stay in cache at high order);
* the series of ``erf`` (:func:`taylorsketch.kernels.erf`, which runs the
  kernels it is made of block by block) against
  * *whole arrays*: ``mul``, ``exp`` and ``ode`` each over the whole array, with
    four temporaries of its size (the erf rule before this benchmark);
* the Adam update (:func:`taylorsketch.kernels.adam_update`, which multiplies
  real factors into complex coefficients as two real products) against
  * *promoted*: the same loops with ``w * z`` as numba computes it, a complex
    product ``(w + 0j) z`` (the package's kernel before this benchmark);
  * *per parameter*: one pass over the parameters, every order of one
    parameter at once.

Sizes: ``L = M x 128`` (the activation shape (8, 16) of the paper's MicroGPT) for
the product, ``L = M x 512`` (the MLP's hidden activations (8, 64)) for ``erf``;
the paper's 4,192 parameters for Adam; (K, M) the rows of
``bench_train.py``.  Median of 7 calls after a warm-up.

    python benchmarks/bench_layout.py
    python benchmarks/bench_layout.py --write docs/performance.md
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numba                                               # noqa: E402
import numpy as np                                         # noqa: E402

from taylorsketch import kernels                           # noqa: E402

from _common import machine, publish                       # noqa: E402

SECTION = "## Kernel layouts (benchmarks/bench_layout.py)"
SIZES = [(3, 1), (3, 64), (3, 500), (6, 1), (20, 4), (100, 12)]
N_PARAMS = 4192
njit = numba.njit(nogil=True)


# -- variants of the Cauchy product -------------------------------------------------------


@njit
def mul_float_view(a, b, out):
    """``kernels.mul`` on float64 views ``(K+1, 2L)`` of the complex arrays."""
    n_rows, n = a.shape[0], a.shape[1] // 2
    for k in range(n_rows):
        for l in range(n):
            ar, ai, br, bi = a[0, 2 * l], a[0, 2 * l + 1], b[k, 2 * l], b[k, 2 * l + 1]
            out[k, 2 * l] = ar * br - ai * bi
            out[k, 2 * l + 1] = ar * bi + ai * br
        for i in range(1, k + 1):
            for l in range(n):
                ar, ai, br, bi = a[i, 2 * l], a[i, 2 * l + 1], b[k - i, 2 * l], b[k - i, 2 * l + 1]
                out[k, 2 * l] += ar * br - ai * bi
                out[k, 2 * l + 1] += ar * bi + ai * br


@njit
def mul_planar(ar, ai, br, bi, out_r, out_i):
    """``kernels.mul`` with the real and imaginary parts in separate arrays."""
    n_rows, n = ar.shape
    for k in range(n_rows):
        for l in range(n):
            out_r[k, l] = ar[0, l] * br[k, l] - ai[0, l] * bi[k, l]
            out_i[k, l] = ar[0, l] * bi[k, l] + ai[0, l] * br[k, l]
        for i in range(1, k + 1):
            for l in range(n):
                out_r[k, l] += ar[i, l] * br[k - i, l] - ai[i, l] * bi[k - i, l]
                out_i[k, l] += ar[i, l] * bi[k - i, l] + ai[i, l] * br[k - i, l]


@njit
def mul_blocked(a, b, out, block=256):
    """``kernels.mul`` over blocks of ``block`` scalars."""
    n_rows, n = a.shape
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        for k in range(n_rows):
            for l in range(lo, hi):
                out[k, l] = a[0, l] * b[k, l]
            for i in range(1, k + 1):
                for l in range(lo, hi):
                    out[k, l] += a[i, l] * b[k - i, l]


# -- variants of the Adam update ------------------------------------------------------------


@njit
def adam_promoted(p0, m0, v0, g0, ps, ms, vs, gs, beta1, beta2, lr, bias1, bias2, eps):
    """``kernels.adam_update`` with real factors multiplied in as complex numbers."""
    n_orders, n_dirs, n = ps.shape
    inv_v, s0, inv_s, q0 = kernels.adam_primal(m0, v0, g0, beta1, beta2, bias1, bias2, eps)
    for d in range(n_dirs):
        s = np.empty((n_orders + 1, n), dtype=ps.dtype)
        q = np.empty((n_orders + 1, n), dtype=ps.dtype)
        g2 = np.empty(n, dtype=ps.dtype)
        s[0], q[0] = s0, q0
        for k in range(1, n_orders + 1):
            for l in range(n):
                g2[l] = 2.0 * g0[l] * gs[k - 1, d, l]
            for i in range(1, k):
                for l in range(n):
                    g2[l] += gs[i - 1, d, l] * gs[k - i - 1, d, l]
            for l in range(n):
                ms[k - 1, d, l] = beta1 * ms[k - 1, d, l] + (1.0 - beta1) * gs[k - 1, d, l]
                vs[k - 1, d, l] = beta2 * vs[k - 1, d, l] + (1.0 - beta2) * g2[l]
        for k in range(1, n_orders + 1):
            s[k] = 0.0
            for j in range(1, k + 1):
                w = (0.5 * j - (k - j)) / (k * bias2)
                for l in range(n):
                    s[k, l] += w * vs[j - 1, d, l] * s[k - j, l]
            for l in range(n):
                s[k, l] *= inv_v[l]
        for k in range(1, n_orders + 1):
            for l in range(n):
                q[k, l] = ms[k - 1, d, l] / bias1
            for j in range(1, k + 1):
                for l in range(n):
                    q[k, l] -= s[j, l] * q[k - j, l]
            for l in range(n):
                q[k, l] *= inv_s[l]
                ps[k - 1, d, l] -= lr * q[k, l]
    for l in range(n):
        p0[l] -= lr * (m0[l] / bias1) / s0[l]


@njit
def adam_per_parameter(p0, m0, v0, g0, ps, ms, vs, gs, beta1, beta2, lr, bias1, bias2, eps):
    """``kernels.adam_update`` with the parameter loop outside: every order of one
    parameter and direction in small work arrays, in one pass over memory."""
    n_orders, n_dirs, n = ps.shape
    inv_v, s0, inv_s, q0 = kernels.adam_primal(m0, v0, g0, beta1, beta2, bias1, bias2, eps)
    g = np.empty(n_orders + 1, dtype=ps.dtype)
    v = np.empty(n_orders + 1, dtype=ps.dtype)
    s = np.empty(n_orders + 1, dtype=ps.dtype)
    q = np.empty(n_orders + 1, dtype=ps.dtype)
    for d in range(n_dirs):
        for l in range(n):
            for k in range(1, n_orders + 1):
                g[k] = gs[k - 1, d, l]
            s[0], q[0] = s0[l], q0[l]
            for k in range(1, n_orders + 1):
                g2 = kernels.scale(2.0 * g0[l], g[k])
                for i in range(1, k):
                    g2 += g[i] * g[k - i]
                ms[k - 1, d, l] = kernels.scale(beta1, ms[k - 1, d, l]) + kernels.scale(1.0 - beta1, g[k])
                v[k] = kernels.scale(beta2, vs[k - 1, d, l]) + kernels.scale(1.0 - beta2, g2)
                vs[k - 1, d, l] = v[k]
            for k in range(1, n_orders + 1):
                acc = kernels.scale((0.5 - (k - 1)) / (k * bias2), v[1]) * s[k - 1]
                for j in range(2, k + 1):
                    acc += kernels.scale((0.5 * j - (k - j)) / (k * bias2), v[j]) * s[k - j]
                s[k] = kernels.scale(inv_v[l], acc)
            for k in range(1, n_orders + 1):
                acc = ms[k - 1, d, l] / bias1
                for j in range(1, k + 1):
                    acc -= s[j] * q[k - j]
                q[k] = kernels.scale(inv_s[l], acc)
                ps[k - 1, d, l] -= kernels.scale(lr, q[k])
    for l in range(n):
        p0[l] -= lr * (m0[l] / bias1) / s0[l]


# -- timing ---------------------------------------------------------------------------------


def median_call(fn, args, runs=7):
    fn(*args)                                              # warm-up (and compilation)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def product_row(order, n_dirs, rng):
    n = n_dirs * 128
    a, b = (0.5 * (rng.normal(size=(order + 1, n)) + 1j * rng.normal(size=(order + 1, n))) for _ in range(2))
    ref = np.empty_like(a)
    kernels.mul(a, b, ref)
    view, blocked = np.empty_like(a), np.empty_like(a)
    planar = [np.ascontiguousarray(x) for x in (a.real, a.imag, b.real, b.imag)] + \
        [np.empty(a.shape), np.empty(a.shape)]
    variants = {"package": (kernels.mul, (a, b, np.empty_like(a))),
                "float view": (mul_float_view, (a.view(np.float64), b.view(np.float64), view.view(np.float64))),
                "planar": (mul_planar, planar),
                "blocked": (mul_blocked, (a, b, blocked))}
    times = {name: median_call(fn, args) for name, (fn, args) in variants.items()}
    same = all(np.array_equal(x, ref) for x in (view, blocked, planar[4] + 1j * planar[5]))
    return times, same


def erf_whole(x, gauss0, out):
    """The erf series by whole-array kernels (``gauss0`` unused: row 0 as before)."""
    square = np.empty_like(x)
    kernels.mul(x, x, square)
    gauss = np.empty_like(x)
    gauss[0] = np.exp(-square[0])
    kernels.exp(-square, gauss)
    kernels.ode(x, (2.0 / np.sqrt(np.pi)) * gauss, out)


def erf_row(order, n_dirs, rng):
    x = 0.5 * (rng.normal(size=(order + 1, n_dirs * 512)) + 1j * rng.normal(size=(order + 1, n_dirs * 512)))
    x[0] = x[0].real
    gauss0 = np.exp(-(x[0] * x[0]))
    outs = {name: np.zeros_like(x) for name in ("package", "whole arrays")}
    variants = {"package": kernels.erf, "whole arrays": erf_whole}
    times = {name: median_call(fn, (x, gauss0, outs[name])) for name, fn in variants.items()}
    return times, np.array_equal(outs["package"][1:], outs["whole arrays"][1:])


def adam_state(order, n_dirs, rng):
    def series():
        return 0.01 * (rng.normal(size=(order, n_dirs, N_PARAMS)) + 1j * rng.normal(size=(order, n_dirs, N_PARAMS)))
    return [rng.normal(size=N_PARAMS), 0.01 * rng.normal(size=N_PARAMS), 0.5 + rng.random(N_PARAMS),
            rng.normal(size=N_PARAMS), series(), series(), series(), series()]


def adam_row(order, n_dirs, rng):
    state = adam_state(order, n_dirs, rng)
    hyper = (0.85, 0.99, 0.01, 0.5, 0.3, 1e-8)
    variants = {"package": kernels.adam_update, "promoted": adam_promoted, "per parameter": adam_per_parameter}
    results = {}
    for name, fn in variants.items():                      # one step from the same state: compared
        after = [x.copy() for x in state]
        fn(*after, *hyper)
        results[name] = after
    finite = all(np.all(np.isfinite(x)) for x in results["package"])
    same = finite and all(np.array_equal(x, y) for name in variants
                          for x, y in zip(results[name], results["package"]))
    times = {name: median_call(fn, [x.copy() for x in state] + list(hyper)) for name, fn in variants.items()}
    return times, same


def table(title, rows, names):
    lines = [f"| {title} | " + " | ".join(names) + " | same to the bit |",
             "|---" * (len(names) + 2) + "|"]
    for (order, n_dirs), (times, same) in rows:
        base = times["package"]
        cells = [f"{times['package'] * 1e3:.3g} ms"] + [f"{times[name] * 1e3:.3g} ms ({base / times[name]:.2f}x)"
                                                        for name in names[1:]]
        lines.append(f"| {order}, {n_dirs} | " + " | ".join(cells) + f" | {'yes' if same else 'NO'} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", metavar="PATH", help="add or replace this section in a markdown file")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(0)
    products = [((k, m), product_row(k, m, rng)) for k, m in SIZES]
    erfs = [((k, m), erf_row(k, m, rng)) for k, m in SIZES]
    adams = [((k, m), adam_row(k, m, rng)) for k, m in SIZES]
    text = "\n".join([
        SECTION, "",
        f"On {machine()}, one core, numba {numba.__version__}. Time per call (median of 7) and the "
        "speed-up over the package's kernel in brackets (above 1: the variant is faster).", "",
        "Cauchy product of two series of L = M x 128 complex scalars:", "",
        table("order, directions", products, ["package", "float view", "planar", "blocked"]), "",
        "Series of erf of L = M x 512 complex scalars:", "",
        table("order, directions", erfs, ["package", "whole arrays"]), "",
        f"Adam update of the paper's {N_PARAMS} parameters:", "",
        table("order, directions", adams, ["package", "promoted", "per parameter"]), ""])
    publish(text, args.write, SECTION)


if __name__ == "__main__":
    main()
