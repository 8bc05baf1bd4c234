"""Numba kernels on plain coefficient arrays (tier 1: no classes, no Jets).

Three array layouts, one per section of this file:

* the *series kernels* (the first section) work on full coefficient
  arrays of shape ``(K+1, L)``: row ``r`` holds the coefficients ``c_r`` of
  ``L`` independent scalar series, and row 0 holds the primal (repeated for
  every direction that shares it);
* the *matrix product's kernel* :func:`matmul_series` takes the two primals
  ``(n, k)``, ``(k, p)`` and the series ``(K, M, n, k)``, ``(K, M, k, p)``;
* the *optimiser kernel* :func:`adam_update` works on a Jet's own storage,
  the primal ``(P,)`` once beside the series ``(K, M, P)``, because the
  optimiser state is the largest array of a jet run and is updated in place
  (a full ``(K+1, M*P)`` copy per step would double its memory traffic).  The
convention is the normalised one of :mod:`taylorsketch.jet`,
``c_r = f^(r)(0) / r!``, so products are plain Cauchy products.

Most rules come from a first-order ODE ``y' = d(x) x'`` that the function
satisfies.  Comparing the coefficients of ``t^(k-1)`` in ``y' = d x'`` gives

    y_k = (1/k) * sum_{j=1..k} j x_j d_{k-j},          k >= 1,

which is O(K^2) per scalar (Griewank and Walther, *Evaluating Derivatives*,
ch. 13).  Each kernel below states its recurrence.  Row 0 of every output is
written by the caller (it is the ordinary function value, computed once by
numpy); kernels fill rows 1..K.

Shape legend: K = order, L = number of scalars (directions x elements),
M = directions, P = parameters.
"""

import numba
import numpy as np
from numba.extending import overload

from ._config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS

njit = numba.njit(**NUMBA_OPTIONS)


def scale(w, z):
    """``w * z`` for a real ``w``: inside a kernel, two real products when ``z`` is complex.

    Numba computes ``w * z`` as a complex product ``(w + 0j) z`` (four products and two
    sums); the result is the same for finite values (up to the sign of a zero).
    """
    return w * z


@overload(scale)
def _scale(w, z):
    if isinstance(z, numba.types.Complex):
        return lambda w, z: complex(w * z.real, w * z.imag)
    return lambda w, z: w * z


@njit
def mul(a, b, out):
    """Cauchy product ``out_k = sum_{i=0..k} a_i b_{k-i}`` for every row k."""
    n_rows, n = a.shape
    for k in range(n_rows):
        for l in range(n):
            out[k, l] = a[0, l] * b[k, l]
        for i in range(1, k + 1):
            for l in range(n):
                out[k, l] += a[i, l] * b[k - i, l]


@njit
def div(a, b, out):
    """Quotient ``y = a / b``: from ``y b = a``, ``y_k = (a_k - sum_{j=1..k} b_j y_{k-j}) / b_0``."""
    n_rows, n = a.shape
    for k in range(1, n_rows):
        for l in range(n):
            out[k, l] = a[k, l]
        for j in range(1, k + 1):
            for l in range(n):
                out[k, l] -= b[j, l] * out[k - j, l]
        for l in range(n):
            out[k, l] /= b[0, l]


@njit
def ode(x, d, out):
    """``y' = d x'`` with ``d`` known in full: ``y_k = (1/k) sum_{j=1..k} j x_j d_{k-j}``."""
    n_rows, n = x.shape
    for k in range(1, n_rows):
        for l in range(n):
            out[k, l] = 0.0
        for j in range(1, k + 1):
            w = j / k
            for l in range(n):
                out[k, l] += w * x[j, l] * d[k - j, l]


@njit
def exp(x, out):
    """``y = exp(x)``: ``y' = y x'``, the ODE recurrence with ``d = y`` itself
    (row ``k`` reads only rows ``< k`` of ``y``, already final)."""
    ode(x, out, out)


@njit
def log(x, out):
    """``y = log(x)``: from ``x y' = x'``, ``y_k = (x_k - (1/k) sum_{j=1..k-1} j y_j x_{k-j}) / x_0``."""
    n_rows, n = x.shape
    for k in range(1, n_rows):
        for l in range(n):
            out[k, l] = x[k, l]
        for j in range(1, k):
            w = j / k
            for l in range(n):
                out[k, l] -= w * out[j, l] * x[k - j, l]
        for l in range(n):
            out[k, l] /= x[0, l]


@njit
def power(x, a, out):
    """``y = x^a`` (real ``a``): from ``x y' = a y x'``,
    ``y_k = (1/(k x_0)) sum_{j=1..k} (a j - (k - j)) x_j y_{k-j}``."""
    n_rows, n = x.shape
    for k in range(1, n_rows):
        for l in range(n):
            out[k, l] = 0.0
        for j in range(1, k + 1):
            w = (a * j - (k - j)) / k
            for l in range(n):
                out[k, l] += w * x[j, l] * out[k - j, l]
        for l in range(n):
            out[k, l] /= x[0, l]


@njit
def tanh(x, out, z):
    """``y = tanh(x)``: ``y' = z x'`` with ``z = 1 - y^2`` built alongside.

    ``z`` is a work array of the same shape; on return it holds ``1 - y^2``.
    """
    n_rows, n = x.shape
    for l in range(n):
        z[0, l] = 1.0 - out[0, l] * out[0, l]
    for k in range(1, n_rows):
        for l in range(n):
            out[k, l] = 0.0
        for j in range(1, k + 1):
            w = j / k
            for l in range(n):
                out[k, l] += w * x[j, l] * z[k - j, l]
        for l in range(n):
            z[k, l] = 0.0
        for i in range(k + 1):
            for l in range(n):
                z[k, l] -= out[i, l] * out[k - i, l]


@njit
def sincos(x, s, c):
    """``s = sin(x)``, ``c = cos(x)`` together: ``s' = c x'`` and ``c' = -s x'``."""
    n_rows, n = x.shape
    for k in range(1, n_rows):
        for l in range(n):
            s[k, l] = 0.0
            c[k, l] = 0.0
        for j in range(1, k + 1):
            w = j / k
            for l in range(n):
                s[k, l] += w * x[j, l] * c[k - j, l]
                c[k, l] -= w * x[j, l] * s[k - j, l]


ERF_BLOCK = 256    # scalars per block of :func:`erf`: its work arrays stay in cache


@njit
def erf(x, gauss0, out):
    """``y = erf(x)``: ``y' = (2/sqrt(pi)) g x'`` with ``g = exp(-x^2)``, whose row 0 is
    ``gauss0`` (the caller's numpy ``exp``).

    Per block of :data:`ERF_BLOCK` scalars: ``s = -x^2`` (:func:`mul`), ``g = exp(s)``
    (:func:`exp`), ``g`` scaled, then :func:`ode`: the same operations on every
    scalar as those kernels on whole arrays, so the same values to the bit, with
    work arrays of one block instead of four temporaries of the full size.
    """
    n_rows, n = x.shape
    scale_factor = 2.0 / np.sqrt(np.pi)
    square = np.empty((n_rows, ERF_BLOCK), dtype=x.dtype)
    gauss = np.empty((n_rows, ERF_BLOCK), dtype=x.dtype)
    for start in range(0, n, ERF_BLOCK):
        m = min(ERF_BLOCK, n - start)
        xb, s, g = x[:, start:start + m], square[:, :m], gauss[:, :m]
        mul(xb, xb, s)
        for k in range(n_rows):
            for l in range(m):
                s[k, l] = -s[k, l]
        for l in range(m):
            g[0, l] = gauss0[start + l]
        exp(s, g)
        for k in range(n_rows):
            for l in range(m):
                g[k, l] = scale_factor * g[k, l]
        ode(xb, g, out[:, start:start + m])


@njit
def compose(x, derivatives, out):
    """Faa di Bruno: ``y = h(x)`` from ``h^(n)(x_0)``, n = 0..K (``derivatives`` is ``(K+1, L)``).

    With ``u = x - x_0`` (a series without constant term), ``h(x) = sum_n h^(n)(x_0) u^n / n!``
    and ``u^n`` starts at order n, so ``y_k = sum_{n=1..k} h^(n)(x_0)/n! (u^n)_k``.  The powers
    of ``u`` are built by Cauchy products; this is Faa di Bruno's formula with its Bell
    polynomials summed by the computer rather than enumerated.  O(K^3).
    """
    n_rows, n = x.shape
    u_pow = np.zeros_like(x)  # u^p for the current p, rows < p are zero
    nxt = np.zeros_like(x)
    for k in range(1, n_rows):
        for l in range(n):
            u_pow[k, l] = x[k, l]
            out[k, l] = 0.0
    factorial = 1.0
    for p in range(1, n_rows):
        factorial *= p
        for k in range(p, n_rows):
            for l in range(n):
                out[k, l] += derivatives[p, l] / factorial * u_pow[k, l]
        # u^(p+1) = u * u^p, both without constant term
        for k in range(n_rows):
            for l in range(n):
                nxt[k, l] = 0.0
        for k in range(p + 1, n_rows):
            for i in range(1, k - p + 1):
                for l in range(n):
                    nxt[k, l] += x[i, l] * u_pow[k - i, l]
        for k in range(n_rows):
            for l in range(n):
                u_pow[k, l] = nxt[k, l]


# ----------------------------------------------------------------------------
# the matrix product's series: primals (n, k), (k, p) beside series
# (K, M, n, k), (K, M, k, p); every product is a BLAS call (np.dot)


def real_times(a, b):
    """``a @ b`` for a real matrix ``a`` and a contiguous ``b``: a complex ``b`` as
    one real GEMM on its interleaved (re, im) columns, half a complex GEMM's work."""
    return a @ b


@overload(real_times)
def _real_times(a, b):
    if isinstance(b.dtype, numba.types.Complex):
        return lambda a, b: np.dot(a, b.view(np.float64)).view(np.complex128)
    return lambda a, b: np.dot(a, b)


def times_real(a, b):
    """``a @ b`` for a contiguous ``a`` and a real matrix ``b``: a complex ``a`` as one
    real GEMM on its real rows stacked over its imaginary rows."""
    return a @ b


@overload(times_real)
def _times_real(a, b):
    if isinstance(a.dtype, numba.types.Complex):
        def planar(a, b):
            rows = a.shape[0]
            parts = np.empty((2 * rows, a.shape[1]))
            parts[:rows] = a.real
            parts[rows:] = a.imag
            y = np.dot(parts, b)
            out = np.empty((rows, b.shape[1]), dtype=a.dtype)
            for i in range(rows):
                for q in range(b.shape[1]):
                    out[i, q] = complex(y[i, q], y[rows + i, q])
            return out
        return planar
    return lambda a, b: np.dot(a, b)


@njit
def matmul_series(a0, as_, b0, bs):
    """``c_1..c_K`` of ``A B`` for real matrices ``a0`` ``(n, k)``, ``b0`` ``(k, p)`` and
    series ``(K, M, n, k)``, ``(K, M, k, p)``:
    ``(A B)_r = A_r B_0 + A_0 B_r + sum_{i=1..r-1} A_i B_{r-i}``.

    Per direction: the terms against the primals as one GEMM each, the orders
    folded into its rows (``A_r B_0``) or columns (``A_0 B_r``); then for each order
    ``r`` the cross terms as one GEMM of ``A_1..A_{r-1}`` side by side against
    ``B_{r-1}..B_1`` stacked.  Every GEMM has the same shape whatever the number of
    directions, so a direction's series does not depend on the directions beside
    it, to the bit (BLAS may round an element of a product differently with its
    position in a larger one).  Operands may be any views; the work arrays are one
    direction's; the result is contiguous, ``(K, M, n, p)``.
    """
    order, n_dirs, n, k = as_.shape
    p = b0.shape[1]
    out = np.empty((order, n_dirs, n, p), dtype=bs.dtype)
    a_rows = np.empty((order, n, k), dtype=as_.dtype)      # A_1..A_K stacked
    b_cols = np.empty((k, order, p), dtype=bs.dtype)       # B_1..B_K side by side
    a_cat = np.empty((order * k, n), dtype=as_.dtype)      # A_i^T stacked, i = 1..K
    b_flip = np.empty((order * k, p), dtype=bs.dtype)      # B_j stacked, j = K..1
    a0, b0 = np.ascontiguousarray(a0), np.ascontiguousarray(b0)
    for d in range(n_dirs):
        a_rows[:] = as_[:, d]
        for c in range(k):
            b_cols[c] = bs[:, d, c]
        left = times_real(a_rows.reshape((order * n, k)), b0).reshape((order, n, p))
        right = real_times(a0, b_cols.reshape((k, order * p))).reshape((n, order, p))
        for r in range(order):
            for i in range(n):
                for q in range(p):
                    out[r, d, i, q] = left[r, i, q] + right[i, r, q]
        if order < 2:
            continue
        for i in range(order):
            a_cat[i * k:(i + 1) * k] = as_[i, d].T
            b_flip[(order - 1 - i) * k:(order - i) * k] = bs[i, d]
        for r in range(2, order + 1):
            out[r - 1, d] += np.dot(a_cat[:(r - 1) * k].T, b_flip[(order - r + 1) * k:])
    return out


# ----------------------------------------------------------------------------
# the optimiser kernel: primal (P,) beside series (K, M, P), not (K+1, L)


@njit
def adam_primal(m0, v0, g0, beta1, beta2, bias1, bias2, eps):
    """The primal part of :func:`adam_update`: ``m`` and ``v`` updated in place, and
    ``(1 / (v_hat_0 + eps), s_0 = sqrt(v_hat_0 + eps), 1 / s_0, m_hat_0 / s_0)``, ``(P,)`` each."""
    n = m0.shape[0]
    inv_v, s0, inv_s, q0 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for l in range(n):
        m0[l] = beta1 * m0[l] + (1.0 - beta1) * g0[l]
        v0[l] = beta2 * v0[l] + (1.0 - beta2) * g0[l] * g0[l]
        vh = v0[l] / bias2 + eps
        inv_v[l] = 1.0 / vh
        s0[l] = np.sqrt(vh)
        inv_s[l] = 1.0 / s0[l]
        q0[l] = m0[l] / bias1 / s0[l]
    return inv_v, s0, inv_s, q0


@numba.njit(**NUMBA_PARALLEL_OPTIONS)
def adam_update(p0, m0, v0, g0, ps, ms, vs, gs, beta1, beta2, lr, bias1, bias2, eps):
    """One Adam step of the paper's variant on every parameter's jet, fused and in place.

    ``m <- beta1 m + (1-beta1) g``; ``v <- beta2 v + (1-beta2) g^2``;
    ``p <- p - lr * (m/bias1) / sqrt(v/bias2 + eps)``, in jet arithmetic:
    ``g^2`` is a Cauchy product, ``s = sqrt(v_hat + eps)`` the ``x^(1/2)``
    recurrence and ``q = m_hat / s`` the division recurrence.  Unlike the other
    kernels this one takes the primal once, ``(P,)``, beside the series
    ``(K, M, P)``: the optimiser state is the largest array of a jet run.  One
    pass over memory instead of a dozen temporaries.
    """
    n_orders, n_dirs, n = ps.shape
    inv_v, s0, inv_s, q0 = adam_primal(m0, v0, g0, beta1, beta2, bias1, bias2, eps)
    for d in numba.prange(n_dirs):
        # rows 0..K of s and q for this direction; every loop runs over l innermost
        s = np.empty((n_orders + 1, n), dtype=ps.dtype)
        q = np.empty((n_orders + 1, n), dtype=ps.dtype)
        g2 = np.empty(n, dtype=ps.dtype)
        for l in range(n):
            s[0, l] = s0[l]
            q[0, l] = q0[l]
        for k in range(1, n_orders + 1):
            for l in range(n):
                g2[l] = scale(2.0 * g0[l], gs[k - 1, d, l])
            for i in range(1, k):
                for l in range(n):
                    g2[l] += gs[i - 1, d, l] * gs[k - i - 1, d, l]
            for l in range(n):
                ms[k - 1, d, l] = scale(beta1, ms[k - 1, d, l]) + scale(1.0 - beta1, gs[k - 1, d, l])
                vs[k - 1, d, l] = scale(beta2, vs[k - 1, d, l]) + scale(1.0 - beta2, g2[l])
        # s = (v_hat + eps)^(1/2): s_k = sum_j (j/2 - (k-j))/k v_hat_j s_{k-j} / (v_hat_0 + eps)
        for k in range(1, n_orders + 1):
            for l in range(n):
                s[k, l] = 0.0
            for j in range(1, k + 1):
                w = (0.5 * j - (k - j)) / (k * bias2)
                for l in range(n):
                    s[k, l] += scale(w, vs[j - 1, d, l]) * s[k - j, l]
            for l in range(n):
                s[k, l] = scale(inv_v[l], s[k, l])
        # q = m_hat / s: q_k = (m_hat_k - sum_j s_j q_{k-j}) / s_0
        for k in range(1, n_orders + 1):
            for l in range(n):
                q[k, l] = ms[k - 1, d, l] / bias1
            for j in range(1, k + 1):
                for l in range(n):
                    q[k, l] -= s[j, l] * q[k - j, l]
            for l in range(n):
                q[k, l] = scale(inv_s[l], q[k, l])
                ps[k - 1, d, l] -= scale(lr, q[k, l])
    # the primal as plain Adam (and the paper's code) associates it, (lr m_hat) / s_0,
    # not lr (m_hat / s_0): so a jet run's primal is the plain run to the bit
    for l in numba.prange(n):
        p0[l] -= lr * (m0[l] / bias1) / s0[l]
