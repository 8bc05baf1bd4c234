"""Numba kernels on plain coefficient arrays (tier 1: no classes, no Jets).

The array layouts, by section of this file:

* the *series kernels* (the first section) work on full coefficient
  arrays of shape ``(K+1, L)``: row ``r`` holds the coefficients ``c_r`` of
  ``L`` independent scalar series, and row 0 holds the primal (repeated for
  every direction that shares it); the product and quotient have forms
  (:func:`cauchy`, :func:`quotient`) that take the primal ``(N,)`` once beside
  the series ``(K, M, N)`` instead, and the full-array :func:`mul` and
  :func:`div` call them;
* the *matrix product's kernel* :func:`matmul_series` takes stacks of the two
  primals ``(Ba, n, k)``, ``(Bb, k, p)`` and their series ``(K, M, Ba, n, k)``,
  ``(K, M, Bb, k, p)``;
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

import threading

import numba
import numpy as np
from numba.extending import overload

from ._config import COMPLEX_BLOCK_COLUMNS, NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS, NUMBA_SLP_VECTORIZE

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


def over(z, b):
    """``z / b`` for a real ``b > 0``: inside a kernel, to the bit numba's complex
    division when ``z`` is complex, in operations that vectorise.

    Numba divides by ``b + 0j`` with CPython's algorithm: ``ratio = 0 / b = +0``,
    ``denom = b + 0 * ratio = b``, and ``((x + y * ratio) / denom, (y - x * ratio) /
    denom)``, with branches and checks in every element's loop.  The same operations
    without them, signed zeros and non-finite values included.

    >>> over(complex(1.0, -0.0), 4.0)                 # outside a kernel, plain division
    (0.25-0j)
    """
    return z / b


@overload(over)
def _over(z, b):
    if isinstance(z, numba.types.Complex):
        return lambda z, b: complex((z.real + z.imag * 0.0) / b, (z.imag - z.real * 0.0) / b)
    return lambda z, b: z / b


@njit
def mul(a, b, out):
    """Cauchy product ``out_k = sum_{i=0..k} a_i b_{k-i}`` for every row k (:func:`cauchy`
    on the full arrays, row 0 the product of the primals)."""
    for l in range(a.shape[1]):
        out[0, l] = a[0, l] * b[0, l]
    cauchy(a[0], a[1:][:, None, :], b[0], b[1:][:, None, :], out[1:][:, None, :])


@njit
def cauchy(a0, as_, b0, bs, out):
    """Rows 1..K of the Cauchy product with the primals ``(N,)`` once beside the series
    ``(K, M, N)``: ``out_k = a_0 b_k + sum_{i=1..k-1} a_i b_{k-i} + a_k b_0``, summed in that
    order.  No full ``(K+1, M*N)`` copies, each direction's rows stay in cache."""
    order, n_dirs, n = as_.shape
    for d in range(n_dirs):
        for k in range(order):
            for l in range(n):
                out[k, d, l] = a0[l] * bs[k, d, l]
            for i in range(1, k + 1):
                for l in range(n):
                    out[k, d, l] += as_[i - 1, d, l] * bs[k - i, d, l]
            for l in range(n):
                out[k, d, l] += as_[k, d, l] * b0[l]


@njit
def cauchy_rows(a0, as_, b0, bs, out):
    """:func:`cauchy` of operands that broadcast along their last axis: primals
    ``(R, Ca)`` and ``(R, Cb)`` beside series ``(K, M, R, Ca)`` and ``(K, M, R, Cb)``,
    where ``Ca`` and ``Cb`` are the result's ``C`` or 1, into ``out`` ``(K, M, R, C)``.
    Each element is the same sequence of operations as in :func:`mul` on the
    broadcast full arrays (so the same bits), without making them.

    >>> import numpy as np
    >>> out = np.empty((1, 1, 1, 2))
    >>> cauchy_rows(np.ones((1, 1)), np.ones((1, 1, 1, 1)), np.ones((1, 2)), np.full((1, 1, 1, 2), 2.0), out)
    >>> out[0, 0, 0]                          # a_0 b_1 + a_1 b_0
    array([3., 3.])
    """
    order, n_dirs, rows, cols = out.shape
    step_a, step_b = (1 if a0.shape[1] > 1 else 0), (1 if b0.shape[1] > 1 else 0)
    for d in range(n_dirs):
        for k in range(order):
            for r in range(rows):
                for j in range(cols):
                    ja, jb = j * step_a, j * step_b
                    acc = a0[r, ja] * bs[k, d, r, jb]
                    for i in range(1, k + 1):
                        acc += as_[i - 1, d, r, ja] * bs[k - i, d, r, jb]
                    out[k, d, r, j] = acc + as_[k, d, r, ja] * b0[r, jb]


@njit
def div(a, b, out):
    """Quotient ``y = a / b``: from ``y b = a``, ``y_k = (a_k - sum_{j=1..k} b_j y_{k-j}) / b_0``
    (:func:`quotient` on the full arrays; row 0, ``y_0``, is the caller's)."""
    quotient(a[1:][:, None, :], b[0], b[1:][:, None, :], out[0], out[1:][:, None, :])


@njit
def quotient(as_, b0, bs, y0, out):
    """Rows 1..K of ``y = a / b`` with the primals ``b_0``, ``y_0`` ``(N,)`` once beside the
    series ``(K, M, N)``: ``y_k = (a_k - sum_{j=1..k} b_j y_{k-j}) / b_0``, summed in that order."""
    order, n_dirs, n = as_.shape
    for d in range(n_dirs):
        for k in range(order):
            for l in range(n):
                out[k, d, l] = as_[k, d, l]
            for j in range(1, k + 1):
                for l in range(n):
                    out[k, d, l] -= bs[j - 1, d, l] * out[k - j, d, l]
            for l in range(n):
                out[k, d, l] -= bs[k, d, l] * y0[l]
                out[k, d, l] /= b0[l]


@njit
def quotient_rows(as_, b0, bs, y0, out):
    """:func:`quotient` of operands that broadcast along their last axis: ``as_``
    ``(K, M, R, Ca)``, ``b0`` ``(R, Cb)``, ``bs`` ``(K, M, R, Cb)``, with ``Ca`` and ``Cb``
    the result's ``C`` or 1, ``y0`` and ``out`` ``(R, C)`` and ``(K, M, R, C)``.  Each element
    is the same sequence of operations as in :func:`div` on the broadcast full arrays.

    >>> import numpy as np
    >>> out = np.empty((1, 1, 1, 2))                  # (1 + t) / (2 + t), broadcast to 2 columns
    >>> quotient_rows(np.ones((1, 1, 1, 1)), np.full((1, 2), 2.0), np.ones((1, 1, 1, 2)), np.full((1, 2), 0.5), out)
    >>> out[0, 0, 0]                                  # (a_1 - b_1 y_0) / b_0
    array([0.25, 0.25])
    """
    order, n_dirs, rows, cols = out.shape
    step_a, step_b = (1 if as_.shape[3] > 1 else 0), (1 if b0.shape[1] > 1 else 0)
    for d in range(n_dirs):
        for k in range(order):
            for r in range(rows):
                for j in range(cols):
                    ja, jb = j * step_a, j * step_b
                    acc = as_[k, d, r, ja]
                    for i in range(1, k + 1):
                        acc -= bs[i - 1, d, r, jb] * out[k - i, d, r, j]
                    acc -= bs[k, d, r, jb] * y0[r, j]
                    out[k, d, r, j] = acc / b0[r, jb]


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
# the matrix product's series: stacks of primals (Ba, n, k), (Bb, k, p) beside
# series (K, M, Ba, n, k), (K, M, Bb, k, p); loops in a fixed order, no BLAS


def matmul_series(a0, as_, b0, bs, a_index=None, b_index=None):
    """``c_1..c_K`` of ``A B`` for stacks of real matrices ``a0`` ``(Ba, n, k)`` and
    ``b0`` ``(Bb, k, p)`` with series ``(K, M, Ba, n, k)`` and ``(K, M, Bb, k, p)``
    (either may be ``None``, a constant; both real or both complex):
    ``(A B)_r = A_r B_0 + A_0 B_r + sum_{i=1..r-1} A_i B_{r-i}``.

    Product ``c`` of the result pairs matrix ``a_index[c]`` with ``b_index[c]`` (by
    default ``c`` with ``c``), which is how broadcast stacks come in; the result is
    contiguous, ``(K, M, len(a_index), n, p)``.  Each coefficient is one fixed sequence
    of IEEE operations: the terms against the primals, then the cross terms by
    increasing ``i``, each a sum over the inner index in order (no fused
    multiply-adds: ``fastmath`` is off).  The sequence does not depend on the number
    of directions, on an element's position, on the operands' memory layout, on the
    machine's BLAS or on its vector width, so a direction's series is the same to
    the bit alone, among others, or on another worker.  Operands may be any views.

    >>> import numpy as np
    >>> a0, b0 = np.eye(2)[None], 2 * np.eye(2)[None]
    >>> as_, bs = np.ones((1, 1, 1, 2, 2)), np.ones((1, 1, 1, 2, 2))
    >>> matmul_series(a0, as_, b0, bs)[0, 0, 0]          # A_1 B_0 + A_0 B_1
    array([[3., 3.],
           [3., 3.]])
    """
    if a_index is None:
        a_index = b_index = np.arange(max(a0.shape[0], b0.shape[0]))
    series = as_ if as_ is not None else bs
    order, n_dirs = series.shape[:2]
    empty = series[:0, :0, :0, :0, :0]                 # stands for a constant's series
    args = (a0, empty if as_ is None else as_, as_ is not None,
            b0, empty if bs is None else bs, bs is not None,
            np.asarray(a_index, dtype=np.int64), np.asarray(b_index, dtype=np.int64), order, n_dirs)
    return matmul_series_kernel(series.dtype, b0.shape[2])(*args)


def matmul_series_kernel(dtype, columns):
    """The compiled kernel behind :func:`matmul_series` for series of ``dtype`` and
    products with ``columns`` columns, for a caller that works out its arguments once
    (a recorded step, :mod:`taylorsketch.plan`):
    ``kernel(a0, as_, has_a, b0, bs, has_b, a_index, b_index, order, n_dirs)``, where
    the series of a constant is an empty 5-D array of the other's dtype and ``has_*``
    says which operands have series.  Complex products of up to
    ``_config.COMPLEX_BLOCK_COLUMNS`` columns (the attention's) run in register
    blocks, wider ones row by row; both kernels form the same sums in the same order.

    >>> matmul_series_kernel(np.dtype(complex), 16) is matmul_series_kernel(np.dtype(float), 16)
    False
    """
    if np.dtype(dtype).char != "D":
        return _matmul_series_real
    return _matmul_series_complex_blocks if columns <= COMPLEX_BLOCK_COLUMNS else _matmul_series_complex


def _vectorized(fn):
    """``njit(fn)``, every signature compiled with LLVM's SLP vectoriser on
    (:data:`_config.NUMBA_SLP_VECTORIZE`; numba's default leaves it off).

    The vectoriser packs identical scalar operations on neighbouring elements into
    the lanes of one vector operation, each lane the same IEEE operation: the
    kernel's results are the same to the bit with it or without it.
    """
    dispatcher = njit(fn)
    compile_one = dispatcher.compile

    def compile_vectorized(signature):
        with _COMPILING:
            saved = numba.config.SLP_VECTORIZE
            numba.config.SLP_VECTORIZE = NUMBA_SLP_VECTORIZE
            try:
                return compile_one(signature)
            finally:
                numba.config.SLP_VECTORIZE = saved
    dispatcher.compile = compile_vectorized
    return dispatcher


_COMPILING = threading.Lock()
PANEL = 8                                    # the real kernel's block: 2 rows x 8 columns
COMPLEX_PANEL = 4                            # the complex block kernel's: 2 rows x 4 columns


@njit
def _panels(b, out):
    """``b`` ``(k, p)`` as column panels ``out`` ``(ceil(p / w), k, w)``, the last one zero-padded."""
    k, p = b.shape
    width = out.shape[2]
    for jb in range(out.shape[0]):
        for l in range(k):
            for q in range(width):
                j = jb * width + q
                out[jb, l, q] = b[l, j] if j < p else 0.0


@njit
def _planar_panels(b, re, im):
    """Complex ``b`` ``(k, p)`` as column panels of its real parts ``re`` and imaginary
    parts ``im``, each ``(ceil(p / 4), k, 4)``, the last one zero-padded."""
    k, p = b.shape
    for jb in range(re.shape[0]):
        for l in range(k):
            for q in range(COMPLEX_PANEL):
                j = jb * COMPLEX_PANEL + q
                if j < p:
                    z = b[l, j]
                    re[jb, l, q], im[jb, l, q] = z.real, z.imag
                else:
                    re[jb, l, q] = im[jb, l, q] = 0.0


@njit
def _store_partial(row, j, x0, x1, x2, x3, x4, x5, x6, x7):
    """``row[j:j + 8] = x0..x7`` as far as ``row`` goes."""
    w = row.shape[0] - j
    row[j] = x0
    if w > 1:
        row[j + 1] = x1
    if w > 2:
        row[j + 2] = x2
    if w > 3:
        row[j + 3] = x3
    if w > 4:
        row[j + 4] = x4
    if w > 5:
        row[j + 5] = x5
    if w > 6:
        row[j + 6] = x6
    if w > 7:
        row[j + 7] = x7


@_vectorized
def _matmul_series_real(a0, as_, has_a, b0, bs, has_b, a_index, b_index, order, n_dirs):
    """Real series, in blocks of 2 rows x 8 columns of one output order held in
    registers.  Order ``r``'s block sums ``A_s B_(r-s)`` for ``s = r, 0, 1, .., r-1``
    (``A_r B_0``, ``A_0 B_r``, then the cross terms), each over the inner index in order.
    ``B_0..B_K`` are copied into column panels once per direction (a row of 8 is one
    vector load); the two ``A`` values of a step are scalars, read where they are."""
    n, k, p = a0.shape[1], a0.shape[2], b0.shape[2]
    n_panels = (p + PANEL - 1) // PANEL
    out = np.empty((order, n_dirs, a_index.shape[0], n, p))
    b = np.empty((order + 1, n_panels, k, PANEL))     # B_0..B_K in column panels
    for c in range(a_index.shape[0]):
        ha, hb = a_index[c], b_index[c]
        _panels(b0[hb], b[0])
        for d in range(n_dirs):
            if has_b:
                for r in range(order):
                    _panels(bs[r, d, hb], b[r + 1])
            for r in range(1, order + 1):
                for i in range(0, n, 2):
                    i1 = min(i + 1, n - 1)                    # an odd last row: row i again, not stored
                    for jb in range(n_panels):
                        x00 = x01 = x02 = x03 = x04 = x05 = x06 = x07 = 0.0     # row i
                        x10 = x11 = x12 = x13 = x14 = x15 = x16 = x17 = 0.0     # row i + 1
                        if has_a:                             # A_r B_0
                            for l in range(k):
                                u, v = as_[r - 1, d, ha, i, l], as_[r - 1, d, ha, i1, l]
                                w0, w1, w2, w3 = b[0, jb, l, 0], b[0, jb, l, 1], b[0, jb, l, 2], b[0, jb, l, 3]
                                w4, w5, w6, w7 = b[0, jb, l, 4], b[0, jb, l, 5], b[0, jb, l, 6], b[0, jb, l, 7]
                                x00 += u * w0; x01 += u * w1; x02 += u * w2; x03 += u * w3    # noqa: E702
                                x04 += u * w4; x05 += u * w5; x06 += u * w6; x07 += u * w7    # noqa: E702
                                x10 += v * w0; x11 += v * w1; x12 += v * w2; x13 += v * w3    # noqa: E702
                                x14 += v * w4; x15 += v * w5; x16 += v * w6; x17 += v * w7    # noqa: E702
                        if has_b:                             # A_0 B_r
                            for l in range(k):
                                u, v = a0[ha, i, l], a0[ha, i1, l]
                                w0, w1, w2, w3 = b[r, jb, l, 0], b[r, jb, l, 1], b[r, jb, l, 2], b[r, jb, l, 3]
                                w4, w5, w6, w7 = b[r, jb, l, 4], b[r, jb, l, 5], b[r, jb, l, 6], b[r, jb, l, 7]
                                x00 += u * w0; x01 += u * w1; x02 += u * w2; x03 += u * w3    # noqa: E702
                                x04 += u * w4; x05 += u * w5; x06 += u * w6; x07 += u * w7    # noqa: E702
                                x10 += v * w0; x11 += v * w1; x12 += v * w2; x13 += v * w3    # noqa: E702
                                x14 += v * w4; x15 += v * w5; x16 += v * w6; x17 += v * w7    # noqa: E702
                        if has_a and has_b:                   # A_s B_(r-s), s = 1..r-1
                            for s in range(1, r):
                                t = r - s
                                for l in range(k):
                                    u, v = as_[s - 1, d, ha, i, l], as_[s - 1, d, ha, i1, l]
                                    w0, w1, w2, w3 = b[t, jb, l, 0], b[t, jb, l, 1], b[t, jb, l, 2], b[t, jb, l, 3]
                                    w4, w5, w6, w7 = b[t, jb, l, 4], b[t, jb, l, 5], b[t, jb, l, 6], b[t, jb, l, 7]
                                    x00 += u * w0; x01 += u * w1; x02 += u * w2; x03 += u * w3    # noqa: E702
                                    x04 += u * w4; x05 += u * w5; x06 += u * w6; x07 += u * w7    # noqa: E702
                                    x10 += v * w0; x11 += v * w1; x12 += v * w2; x13 += v * w3    # noqa: E702
                                    x14 += v * w4; x15 += v * w5; x16 += v * w6; x17 += v * w7    # noqa: E702
                        j = jb * PANEL
                        if j + PANEL <= p and i + 1 < n:
                            out[r - 1, d, c, i, j], out[r - 1, d, c, i, j + 1] = x00, x01
                            out[r - 1, d, c, i, j + 2], out[r - 1, d, c, i, j + 3] = x02, x03
                            out[r - 1, d, c, i, j + 4], out[r - 1, d, c, i, j + 5] = x04, x05
                            out[r - 1, d, c, i, j + 6], out[r - 1, d, c, i, j + 7] = x06, x07
                            out[r - 1, d, c, i + 1, j], out[r - 1, d, c, i + 1, j + 1] = x10, x11
                            out[r - 1, d, c, i + 1, j + 2], out[r - 1, d, c, i + 1, j + 3] = x12, x13
                            out[r - 1, d, c, i + 1, j + 4], out[r - 1, d, c, i + 1, j + 5] = x14, x15
                            out[r - 1, d, c, i + 1, j + 6], out[r - 1, d, c, i + 1, j + 7] = x16, x17
                        else:                                 # a partial panel, or row i alone
                            _store_partial(out[r - 1, d, c, i], j, x00, x01, x02, x03, x04, x05, x06, x07)
                            if i + 1 < n:
                                _store_partial(out[r - 1, d, c, i + 1], j, x10, x11, x12, x13, x14, x15, x16, x17)
    return out


@njit
def _store_complex(row, j, a0, a1, a2, a3, b0, b1, b2, b3):
    """``row[j:j + 4] = a + ib`` as far as ``row`` goes."""
    w = row.shape[0] - j
    row[j] = complex(a0, b0)
    if w > 1:
        row[j + 1] = complex(a1, b1)
    if w > 2:
        row[j + 2] = complex(a2, b2)
    if w > 3:
        row[j + 3] = complex(a3, b3)


@_vectorized
def _matmul_series_complex_blocks(a0, as_, has_a, b0, bs, has_b, a_index, b_index, order, n_dirs):
    """Complex series, in blocks of 2 rows x 4 columns of one output order held in
    registers, real and imaginary parts apart: each element the same sums in the same
    order as :func:`_matmul_series_complex` (the terms against the primals, then the
    cross terms, each over the inner index in order; ``x u - y v`` and ``x v + y u``
    added for a product of two series).  ``B_0`` and the real and imaginary parts of
    ``B_1..B_K`` are copied into column panels of 4 once per direction."""
    n, k, p = a0.shape[1], a0.shape[2], b0.shape[2]
    n_panels = (p + COMPLEX_PANEL - 1) // COMPLEX_PANEL
    out = np.empty((order, n_dirs, a_index.shape[0], n, p), dtype=np.complex128)
    w0p = np.empty((n_panels, k, COMPLEX_PANEL))                # B_0
    br = np.empty((order + 1, n_panels, k, COMPLEX_PANEL))      # re and im of B_1..B_K
    bi = np.empty((order + 1, n_panels, k, COMPLEX_PANEL))
    for c in range(a_index.shape[0]):
        ha, hb = a_index[c], b_index[c]
        _panels(b0[hb], w0p)
        for d in range(n_dirs):
            if has_b:
                for r in range(order):
                    _planar_panels(bs[r, d, hb], br[r + 1], bi[r + 1])
            for r in range(1, order + 1):
                for i in range(0, n, 2):
                    i1 = min(i + 1, n - 1)
                    for jb in range(n_panels):
                        p0 = p1 = p2 = p3 = q0 = q1 = q2 = q3 = 0.0      # row i: re, im
                        s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = 0.0      # row i + 1: re, im
                        if has_a:                                         # A_r B_0
                            for l in range(k):
                                z0, z1 = as_[r - 1, d, ha, i, l], as_[r - 1, d, ha, i1, l]
                                x0, y0, x1, y1 = z0.real, z0.imag, z1.real, z1.imag
                                w0, w1, w2, w3 = w0p[jb, l, 0], w0p[jb, l, 1], w0p[jb, l, 2], w0p[jb, l, 3]
                                p0 += x0 * w0; p1 += x0 * w1; p2 += x0 * w2; p3 += x0 * w3    # noqa: E702
                                q0 += y0 * w0; q1 += y0 * w1; q2 += y0 * w2; q3 += y0 * w3    # noqa: E702
                                s0 += x1 * w0; s1 += x1 * w1; s2 += x1 * w2; s3 += x1 * w3    # noqa: E702
                                t0 += y1 * w0; t1 += y1 * w1; t2 += y1 * w2; t3 += y1 * w3    # noqa: E702
                        if has_b:                                         # A_0 B_r
                            for l in range(k):
                                x0, x1 = a0[ha, i, l], a0[ha, i1, l]
                                u0, u1, u2, u3 = br[r, jb, l, 0], br[r, jb, l, 1], br[r, jb, l, 2], br[r, jb, l, 3]
                                v0, v1, v2, v3 = bi[r, jb, l, 0], bi[r, jb, l, 1], bi[r, jb, l, 2], bi[r, jb, l, 3]
                                p0 += x0 * u0; p1 += x0 * u1; p2 += x0 * u2; p3 += x0 * u3    # noqa: E702
                                q0 += x0 * v0; q1 += x0 * v1; q2 += x0 * v2; q3 += x0 * v3    # noqa: E702
                                s0 += x1 * u0; s1 += x1 * u1; s2 += x1 * u2; s3 += x1 * u3    # noqa: E702
                                t0 += x1 * v0; t1 += x1 * v1; t2 += x1 * v2; t3 += x1 * v3    # noqa: E702
                        if has_a and has_b:                               # A_s B_(r-s)
                            for s in range(1, r):
                                t = r - s
                                for l in range(k):
                                    z0, z1 = as_[s - 1, d, ha, i, l], as_[s - 1, d, ha, i1, l]
                                    x0, y0, x1, y1 = z0.real, z0.imag, z1.real, z1.imag
                                    u0, u1, u2, u3 = br[t, jb, l, 0], br[t, jb, l, 1], br[t, jb, l, 2], br[t, jb, l, 3]
                                    v0, v1, v2, v3 = bi[t, jb, l, 0], bi[t, jb, l, 1], bi[t, jb, l, 2], bi[t, jb, l, 3]
                                    p0 += x0 * u0 - y0 * v0; p1 += x0 * u1 - y0 * v1    # noqa: E702
                                    p2 += x0 * u2 - y0 * v2; p3 += x0 * u3 - y0 * v3    # noqa: E702
                                    q0 += x0 * v0 + y0 * u0; q1 += x0 * v1 + y0 * u1    # noqa: E702
                                    q2 += x0 * v2 + y0 * u2; q3 += x0 * v3 + y0 * u3    # noqa: E702
                                    s0 += x1 * u0 - y1 * v0; s1 += x1 * u1 - y1 * v1    # noqa: E702
                                    s2 += x1 * u2 - y1 * v2; s3 += x1 * u3 - y1 * v3    # noqa: E702
                                    t0 += x1 * v0 + y1 * u0; t1 += x1 * v1 + y1 * u1    # noqa: E702
                                    t2 += x1 * v2 + y1 * u2; t3 += x1 * v3 + y1 * u3    # noqa: E702
                        j = jb * COMPLEX_PANEL
                        _store_complex(out[r - 1, d, c, i], j, p0, p1, p2, p3, q0, q1, q2, q3)
                        if i + 1 < n:
                            _store_complex(out[r - 1, d, c, i + 1], j, s0, s1, s2, s3, t0, t1, t2, t3)
    return out


@njit
def _matmul_series_complex(a0, as_, has_a, b0, bs, has_b, a_index, b_index, order, n_dirs):
    n, k, p = a0.shape[1], a0.shape[2], b0.shape[2]
    out = np.empty((order, n_dirs, a_index.shape[0], n, p), dtype=np.complex128)
    b0c = np.ascontiguousarray(b0)
    br, bi = np.empty((order, k, p)), np.empty((order, k, p))             # planar
    acc = np.empty((4, p))                   # re and im of the rows i and i + 1
    for d in range(n_dirs):
        for c in range(a_index.shape[0]):
            ha, hb = a_index[c], b_index[c]
            for r in range(order):
                if has_b:
                    for l in range(k):
                        for j in range(p):
                            z = bs[r, d, hb, l, j]
                            br[r, l, j], bi[r, l, j] = z.real, z.imag
            for r in range(order):
                for i in range(0, n, 2):
                    i1 = min(i + 1, n - 1)                      # an odd last row: row i again, not stored
                    acc[:] = 0.0
                    if has_a:
                        for l in range(k):                      # A_r B_0
                            z0, z1 = as_[r, d, ha, i, l], as_[r, d, ha, i1, l]
                            x0, y0, x1, y1 = z0.real, z0.imag, z1.real, z1.imag
                            for j in range(p):
                                w = b0c[hb, l, j]
                                acc[0, j] += x0 * w
                                acc[1, j] += y0 * w
                                acc[2, j] += x1 * w
                                acc[3, j] += y1 * w
                    if has_b:
                        for l in range(k):                      # A_0 B_r
                            x0, x1 = a0[ha, i, l], a0[ha, i1, l]
                            for j in range(p):
                                u, v = br[r, l, j], bi[r, l, j]
                                acc[0, j] += x0 * u
                                acc[1, j] += x0 * v
                                acc[2, j] += x1 * u
                                acc[3, j] += x1 * v
                    if has_a and has_b:
                        for s in range(r):                      # A_(s+1) B_(r-s)
                            t = r - 1 - s
                            for l in range(k):
                                z0, z1 = as_[s, d, ha, i, l], as_[s, d, ha, i1, l]
                                x0, y0, x1, y1 = z0.real, z0.imag, z1.real, z1.imag
                                for j in range(p):
                                    u, v = br[t, l, j], bi[t, l, j]
                                    acc[0, j] += x0 * u - y0 * v
                                    acc[1, j] += x0 * v + y0 * u
                                    acc[2, j] += x1 * u - y1 * v
                                    acc[3, j] += x1 * v + y1 * u
                    for q in range(min(2, n - i)):
                        for j in range(p):
                            out[r, d, c, i + q, j] = complex(acc[2 * q, j], acc[2 * q + 1, j])
    return out


@njit
def add_rows(out, rows, values):
    """``out[:, rows[i]] += values[:, i]`` for ``i = 0, 1, ..`` in turn (``out`` ``(L, P, W)``,
    ``values`` ``(L, n, W)``): what ``np.add.at`` does with a row index, repeated rows
    accumulating in the same order, so the same sums.  Negative rows count from the
    end; if any row is outside ``-P..P-1``, nothing is added and the result is False.

    >>> import numpy as np
    >>> out = np.zeros((1, 3, 1))
    >>> add_rows(out, np.array([0, 2, 0]), np.ones((1, 3, 1))), out[0, :, 0]
    (True, array([2., 0., 1.]))
    """
    n_rows = out.shape[1]
    for i in range(rows.shape[0]):
        if rows[i] < -n_rows or rows[i] >= n_rows:
            return False
    for l in range(out.shape[0]):
        for i in range(rows.shape[0]):
            row = rows[i] + n_rows if rows[i] < 0 else rows[i]
            for w in range(out.shape[2]):
                out[l, row, w] += values[l, i, w]
    return True


@njit
def copy_finite(src, dst, start):
    """``dst[:, :, start:start + n] = src`` for ``src`` ``(K, M, n)`` and ``dst`` ``(K, M, P)``,
    and whether every value copied is finite: one pass where a copy and ``np.isfinite``
    would make three (``x - x`` is 0 exactly for a finite ``x``, NaN otherwise; the
    flags are or-ed as integers, which the compiler may vectorise, unlike a float sum)."""
    order, n_dirs, n = src.shape
    bad = 0
    for k in range(order):
        for d in range(n_dirs):
            for l in range(n):
                x = src[k, d, l]
                dst[k, d, start + l] = x
                z = x - x
                bad |= (z.real != 0.0) | (z.imag != 0.0)
    return bad == 0


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
    kernel instead of a dozen numpy temporaries.

    Every loop runs over the parameters innermost (so it is vectorised), one
    pass per term of a recurrence; the first term of each sum is added to its
    start (``0.0`` for ``s``) and the last term's pass also finishes the
    coefficient (the scaling, ``m``, ``v`` and ``p``), so that each coefficient
    is the same sequence of operations as one pass per step would make (the
    twin in the tests, ``reference.adam_update_in_passes``), in about half the
    passes.
    """
    n_orders, n_dirs, n = ps.shape
    inv_v, s0, inv_s, q0 = adam_primal(m0, v0, g0, beta1, beta2, bias1, bias2, eps)
    for d in numba.prange(n_dirs):
        # rows 0..K of s and q for this direction
        s = np.empty((n_orders + 1, n), dtype=ps.dtype)
        q = np.empty((n_orders + 1, n), dtype=ps.dtype)
        g2 = np.empty(n, dtype=ps.dtype)
        for l in range(n):
            s[0, l] = s0[l]
            q[0, l] = q0[l]
        # (g^2)_k = 2 g_0 g_k + sum_{i=1..k-1} g_i g_(k-i); its last pass updates m_k and v_k
        for k in range(1, n_orders + 1):
            if k == 1:
                for l in range(n):
                    x = scale(2.0 * g0[l], gs[0, d, l])
                    ms[0, d, l] = scale(beta1, ms[0, d, l]) + scale(1.0 - beta1, gs[0, d, l])
                    vs[0, d, l] = scale(beta2, vs[0, d, l]) + scale(1.0 - beta2, x)
                continue
            for l in range(n):
                g2[l] = scale(2.0 * g0[l], gs[k - 1, d, l])
            for i in range(1, k - 1):
                for l in range(n):
                    g2[l] += gs[i - 1, d, l] * gs[k - i - 1, d, l]
            for l in range(n):
                x = g2[l] + gs[k - 2, d, l] * gs[0, d, l]
                ms[k - 1, d, l] = scale(beta1, ms[k - 1, d, l]) + scale(1.0 - beta1, gs[k - 1, d, l])
                vs[k - 1, d, l] = scale(beta2, vs[k - 1, d, l]) + scale(1.0 - beta2, x)
        # s = (v_hat + eps)^(1/2): s_k = sum_j (j/2 - (k-j))/k v_hat_j s_(k-j) / (v_hat_0 + eps),
        # the sum from 0.0 by increasing j
        for k in range(1, n_orders + 1):
            w = (0.5 - (k - 1)) / (k * bias2)
            if k == 1:
                for l in range(n):
                    s[1, l] = scale(inv_v[l], 0.0 + scale(w, vs[0, d, l]) * s[0, l])
                continue
            for l in range(n):
                s[k, l] = 0.0 + scale(w, vs[0, d, l]) * s[k - 1, l]
            for j in range(2, k):
                w = (0.5 * j - (k - j)) / (k * bias2)
                for l in range(n):
                    s[k, l] += scale(w, vs[j - 1, d, l]) * s[k - j, l]
            w = (0.5 * k) / (k * bias2)
            for l in range(n):
                s[k, l] = scale(inv_v[l], s[k, l] + scale(w, vs[k - 1, d, l]) * s[0, l])
        # q = m_hat / s: q_k = (m_hat_k - sum_j s_j q_(k-j)) / s_0; its last pass updates p_k
        for k in range(1, n_orders + 1):
            if k == 1:
                for l in range(n):
                    x = scale(inv_s[l], over(ms[0, d, l], bias1) - s[1, l] * q[0, l])
                    q[1, l] = x
                    ps[0, d, l] -= scale(lr, x)
                continue
            for l in range(n):
                q[k, l] = over(ms[k - 1, d, l], bias1) - s[1, l] * q[k - 1, l]
            for j in range(2, k):
                for l in range(n):
                    q[k, l] -= s[j, l] * q[k - j, l]
            for l in range(n):
                x = scale(inv_s[l], q[k, l] - s[k, l] * q[0, l])
                q[k, l] = x
                ps[k - 1, d, l] -= scale(lr, x)
    # the primal as plain Adam (and the paper's code) associates it, (lr m_hat) / s_0,
    # not lr (m_hat / s_0): so a jet run's primal is the plain run to the bit
    for l in numba.prange(n):
        p0[l] -= lr * (m0[l] / bias1) / s0[l]
