r"""Slow, readable plain-numpy twins of every kernel in ``taylorsketch/kernels.py``,
and the numerical oracles that the other tests compare jets against.

The twins are written from defining identities, not from the kernels' O(K^2)
recurrences:

* a product is an explicit Cauchy sum (``np.convolve``, column by column);
* every elementary function ``h`` is its textbook Taylor series around the
  primal, ``h(x_0 + u) = sum_n h_n u^n`` with ``h_n = h^(n)(x_0) / n!``,
  evaluated in truncated power-series arithmetic (``u = x - x_0`` has no
  constant term, so ``u^n`` starts at order ``n`` and the sum is finite);
* ``tanh``'s derivatives are polynomials in ``tanh`` itself (exact integer
  coefficients, from ``(d/dx) P(y) = P'(y) (1 - y^2)``); ``ode`` integrates ``y' = d x'``
  term by term; ``compose`` is Faa di Bruno's formula summed over integer
  partitions.

Every function takes and returns *full* coefficient arrays ``(K+1, L)``
(row ``r`` holds ``c_r = f^(r)(0) / r!`` of ``L`` independent scalar series),
including row 0, which the kernels leave to their caller.

Shape legend: K = order, L = number of scalar series, M = number of
directions, P = number of parameters, S = primal shape.
"""

import functools
import math
import zlib

import numba
import numpy as np
import scipy.special

import taylorsketch as ts
from taylorsketch import Jet
from taylorsketch.kernels import adam_primal, scale

# ----------------------------------------------------------------------------
# truncated power-series arithmetic


def cauchy(a, b):
    """``(ab)_k = sum_{i+j=k} a_i b_j``: the product of two series, truncated at order K."""
    n_rows = a.shape[0]
    out = np.empty(a.shape, dtype=np.result_type(a, b))
    for l in range(a.shape[1]):
        out[:, l] = np.convolve(a[:, l], b[:, l])[:n_rows]
    return out


def constant_series(value, like):
    """The series ``value + 0 t + 0 t^2 + ...`` with the shape of ``like``."""
    out = np.zeros_like(like, dtype=np.result_type(like, value))
    out[0] = value
    return out


def taylor_series(h, x):
    """``sum_n h_n (x - x_0)^n``: the function with normalised Taylor coefficients
    ``h`` (shape ``(K+1, L)``, taken at ``x_0``) applied to the series ``x``."""
    u = x.copy()
    u[0] = 0.0
    out = np.zeros_like(x, dtype=np.result_type(x, h))
    u_power = constant_series(1.0, out)                 # u^0
    for n in range(x.shape[0]):
        out += h[n] * u_power
        u_power = cauchy(u_power, u)
    return out


def derivative(c):
    """``d/dt`` of a series; the top coefficient is lost (set to 0)."""
    out = np.zeros_like(c)
    for j in range(c.shape[0] - 1):
        out[j] = (j + 1) * c[j + 1]
    return out


def antiderivative(c, constant):
    """``y`` with ``y' = c`` and ``y_0 = constant``; ``c``'s top coefficient is not needed."""
    out = np.empty_like(c)
    out[0] = constant
    for k in range(1, c.shape[0]):
        out[k] = c[k - 1] / k
    return out


# ----------------------------------------------------------------------------
# twins of the kernels


def mul(a, b):
    return cauchy(a, b)


def reciprocal(b):
    """``1 / (b_0 + u) = sum_n (-1)^n u^n / b_0^(n+1)`` (a geometric series)."""
    b0 = b[0]
    h = np.array([(-1.0) ** n / b0 ** (n + 1) for n in range(b.shape[0])])
    return taylor_series(h, b)


def div(a, b):
    return cauchy(a, reciprocal(b))


def ode(x, d, y0):
    """The ``y`` with ``y' = d x'`` and ``y(0) = y0``."""
    return antiderivative(cauchy(d, derivative(x)), y0)


def exp(x):
    """``exp(x_0 + u) = exp(x_0) sum_n u^n / n!``."""
    h = np.array([np.exp(x[0]) / math.factorial(n) for n in range(x.shape[0])])
    return taylor_series(h, x)


def log(x):
    """``log(x_0 + u) = log(x_0) + sum_{n>=1} (-1)^(n+1) (u/x_0)^n / n``."""
    x0 = x[0]
    h = [np.log(x0)] + [(-1.0) ** (n + 1) / (n * x0 ** n) for n in range(1, x.shape[0])]
    return taylor_series(np.array(h), x)


def binomial(a, n):
    """The generalised binomial coefficient ``a (a-1) ... (a-n+1) / n!``."""
    return math.prod(a - i for i in range(n)) / math.factorial(n)


def power(x, a):
    """``(x_0 + u)^a = sum_n binom(a, n) x_0^(a-n) u^n`` (Newton's binomial series)."""
    x0 = x[0]
    h = np.array([binomial(a, n) * x0 ** (a - n) for n in range(x.shape[0])])
    return taylor_series(h, x)


@functools.cache
def _tanh_derivative_polynomial(n):
    """Integer coefficients (constant first) of ``P_n`` with ``tanh^(n) = P_n(tanh)``:
    ``P_0(y) = y``, ``P_(n+1)(y) = P_n'(y) (1 - y^2)``."""
    if n == 0:
        return (0, 1)
    p = _tanh_derivative_polynomial(n - 1)
    derivative_p = [i * a for i, a in enumerate(p)][1:]
    out = [0] * (len(derivative_p) + 2)
    for i, a in enumerate(derivative_p):
        out[i] += a
        out[i + 2] -= a
    return tuple(out)


def tanh(x):
    """``tanh(x_0 + u) = sum_n P_n(y_0) u^n / n!`` with ``y_0 = tanh(x_0)``; returns
    ``(tanh(x), 1 - tanh(x)^2)``.

    Not ``1 - 2 / (exp(2x) + 1)``: the series of ``exp(2x)`` grows like ``2^k`` and
    its reciprocal cancels, so that identity lost up to 2.2e-10 (scaled, order 12,
    against 50-digit mpmath over 300 random complex cases) where this one loses 4.8e-12.
    """
    y0 = np.tanh(x[0])
    h = []
    for n in range(x.shape[0]):
        value = np.zeros_like(y0)
        for a in reversed(_tanh_derivative_polynomial(n)):   # Horner
            value = value * y0 + a / math.factorial(n)
        h.append(value)
    y = taylor_series(np.array(h), x)
    return y, constant_series(1.0, y) - cauchy(y, y)


def sincos(x):
    """``sin(x_0 + u) = sum_n sin(x_0 + n pi/2) u^n / n!``, and the same for cos."""
    x0 = x[0]
    n_rows = x.shape[0]
    h_sin = np.array([np.sin(x0 + n * np.pi / 2) / math.factorial(n) for n in range(n_rows)])
    h_cos = np.array([np.cos(x0 + n * np.pi / 2) / math.factorial(n) for n in range(n_rows)])
    return taylor_series(h_sin, x), taylor_series(h_cos, x)


def partitions(k, largest=None):
    """The integer partitions of ``k`` as lists of parts, largest part first."""
    largest = k if largest is None else largest
    if k == 0:
        yield []
        return
    for part in range(min(k, largest), 0, -1):
        for rest in partitions(k - part, part):
            yield [part] + rest


def compose(x, derivatives):
    """Faa di Bruno in normalised coefficients: for ``k >= 1``

        y_k = sum over partitions of k (m_j parts equal to j, n = sum m_j)
              of  h^(n)(x_0) * prod_j x_j^(m_j) / m_j!

    where ``derivatives[n] = h^(n)(x_0)``.
    """
    out = np.zeros_like(x, dtype=np.result_type(x, derivatives))
    out[0] = derivatives[0]
    for k in range(1, x.shape[0]):
        for parts in partitions(k):
            term = derivatives[len(parts)].copy()
            for j in set(parts):
                m = parts.count(j)
                term = term * x[j] ** m / math.factorial(m)
            out[k] += term
    return out


def matmul_series_in_order(a0, as_, b0, bs, a_index, b_index):
    """The series of :func:`taylorsketch.kernels.matmul_series` in Python floats, one
    element at a time, in the order of operations that its docstring promises: for
    output order ``r`` and each element, a sum from 0 of ``A_r B_0``, then ``A_0 B_r``,
    then ``A_s B_(r-s)`` for ``s = 1..r-1``, each over the inner index in order; complex
    terms as the kernel forms them (``x u - y v`` and ``x v + y u`` for
    ``(x + iy)(u + iv)``; a real times a complex, two real products).  Python floats
    are IEEE doubles without fused multiply-adds, so the kernel must equal this to
    the bit."""
    series = as_ if as_ is not None else bs
    order, n_dirs = series.shape[:2]
    n, k, p = a0.shape[1], a0.shape[2], b0.shape[2]
    out = np.zeros((order, n_dirs, len(a_index), n, p), dtype=series.dtype)
    for r in range(1, order + 1):
        terms = ([(r, 0)] if as_ is not None else []) + ([(0, r)] if bs is not None else []) + (
            [(s, r - s) for s in range(1, r)] if as_ is not None and bs is not None else [])
        for d in range(n_dirs):
            for c, (ha, hb) in enumerate(zip(a_index, b_index)):
                def a_at(s, i, l):
                    return complex(a0[ha, i, l]) if s == 0 else complex(as_[s - 1, d, ha, i, l])

                def b_at(t, l, j):
                    return complex(b0[hb, l, j]) if t == 0 else complex(bs[t - 1, d, hb, l, j])
                for i in range(n):
                    for j in range(p):
                        re = im = 0.0
                        for s, t in terms:
                            for l in range(k):
                                x, u = a_at(s, i, l), b_at(t, l, j)
                                if t == 0:                     # a series times the real B_0
                                    re, im = re + x.real * u.real, im + x.imag * u.real
                                elif s == 0:                   # the real A_0 times a series
                                    re, im = re + x.real * u.real, im + x.real * u.imag
                                else:
                                    re = re + (x.real * u.real - x.imag * u.imag)
                                    im = im + (x.real * u.imag + x.imag * u.real)
                        out[r - 1, d, c, i, j] = complex(re, im) if out.dtype.kind == "c" else re
    return out


@numba.njit
def adam_update_in_passes(p0, m0, v0, g0, ps, ms, vs, gs, beta1, beta2, lr, bias1, bias2, eps):
    """``kernels.adam_update`` as it was written first, one pass over the parameters per
    step of each recurrence (the zeroing, every term, the scaling): the sequence of
    operations that the fused kernel must repeat to the bit, in about twice the passes."""
    n_orders, n_dirs, n = ps.shape
    inv_v, s0, inv_s, q0 = adam_primal(m0, v0, g0, beta1, beta2, bias1, bias2, eps)
    for d in range(n_dirs):
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
    for l in range(p0.shape[0]):
        p0[l] -= lr * (m0[l] / bias1) / s0[l]


def adam_update(p0, m0, v0, g0, ps, ms, vs, gs, beta1, beta2, lr, bias1, bias2, eps):
    """The paper's Adam step in series arithmetic; returns new ``(p0, m0, v0, ps, ms, vs)``.

    ``m = beta1 m + (1-beta1) g``, ``v = beta2 v + (1-beta2) g^2``,
    ``p = p - lr (m/bias1) / sqrt(v/bias2 + eps)``; primals ``(P,)``, series ``(K, M, P)``.
    """
    order, n_dirs, n_params = ps.shape

    def full(x0, xs):                           # (K+1, M*P), primal repeated per direction
        out = np.empty((order + 1, n_dirs, n_params), dtype=np.result_type(x0, xs))
        out[0] = x0
        out[1:] = xs
        return out.reshape(order + 1, -1)

    p, m, v, g = full(p0, ps), full(m0, ms), full(v0, vs), full(g0, gs)
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * cauchy(g, g)
    v_hat = v / bias2 + constant_series(eps, v)
    step = div(m / bias1, power(v_hat, 0.5))
    p = p - lr * step

    def split(x):
        x = x.reshape(order + 1, n_dirs, n_params)
        return x[0, 0].real.copy(), x[1:]

    (p0, ps), (m0, ms), (v0, vs) = split(p), split(m), split(v)
    return p0, m0, v0, ps, ms, vs


# ----------------------------------------------------------------------------
# oracles: the coefficients of t -> g(t) from values of g alone
#
# Each oracle returns ``(coefficients, tolerance)``: coefficients ``(K+1, *g_shape)``
# and, per order r, an absolute error bound built from its own rounding error,
# ``ORACLE_SAFETY * eps * max|g| * (sum of |stencil weights| for c_r)``.  The jet's
# own rounding errors are a few eps times its coefficients, and by Cauchy's
# estimate ``|c_r| <= max|g| / radius^r``: they fit in the same bound.

EPS = np.finfo(np.float64).eps
# Measured over every oracle test: errors up to 1.5x (circle) and 3.6x (central
# differences) the bound without this factor.
ORACLE_SAFETY = 100.0


def circle_coefficients(g, order, radius=1.0, n_points=64):
    """``c_0..c_K`` of an analytic ``g`` from its values on the circle ``|t| = radius``.

    This is the N-point finite-difference stencil on a circle (Lyness and Moler
    1967, Fornberg 1981): ``c_r = mean_j g(radius w^j) w^(-j r) / radius^r``
    with ``w = exp(2 pi i / N)``, the trapezoidal rule for Cauchy's integral.
    Its aliasing error is ``sum_{m>=1} c_(r+mN) radius^(mN)``, negligible when
    ``radius`` is at most ~2/3 of the radius of convergence (N = 64); its
    rounding error is ``eps * max|g| / radius^r``.
    """
    angles = 2.0 * np.pi * np.arange(n_points) / n_points
    values = np.stack([np.asarray(g(radius * np.exp(1j * a))) for a in angles])
    spectrum = np.fft.fft(values, axis=0) / n_points       # sum_j g_j w^(-j r) / N
    per_order = radius ** -np.arange(order + 1.0)
    coefficients = spectrum[: order + 1] * per_order.reshape((-1,) + (1,) * (values.ndim - 1))
    tolerance = ORACLE_SAFETY * EPS * np.max(np.abs(values)) * per_order
    return coefficients, tolerance


def richardson_coefficients(g, order, step=0.1, levels=4):
    """``c_0..c_K`` (K <= 4) of ``g`` on the real line by central differences.

    The central difference ``delta_h^r g(0) / h^r`` (points ``(r/2 - j) h``,
    weights ``(-1)^j binom(r, j)``) equals ``g^(r)(0) + a_1 h^2 + a_2 h^4 + ...``;
    halving ``h`` ``levels - 1`` times and Richardson-extrapolating removes the
    terms up to ``h^(2 (levels-1))``; for ``step`` <~ R/15 (R the radius of
    convergence) the truncation error left is far below the rounding error
    ``eps * max|g| * 2^r / (h_min^r r!)`` of the finest level.
    """
    if order > 4:
        raise ValueError("real-line finite differences are only trusted up to order 4")
    values_seen = [np.asarray(g(0.0))]

    def central(r, h):
        points = [(r / 2 - j) * h for j in range(r + 1)]
        values = [np.asarray(g(t)) for t in points]
        values_seen.extend(values)
        weights = [(-1) ** j * math.comb(r, j) for j in range(r + 1)]
        return sum(w * v for w, v in zip(weights, values)) / h ** r

    coefficients = [values_seen[0]]
    for r in range(1, order + 1):
        table = [[central(r, step / 2 ** i)] for i in range(levels)]
        for i in range(1, levels):
            for j in range(1, i + 1):
                factor = 4.0 ** j
                table[i].append((factor * table[i][j - 1] - table[i - 1][j - 1]) / (factor - 1))
        coefficients.append(table[-1][-1] / math.factorial(r))
    h_min = step / 2 ** (levels - 1)
    weight_sums = np.array([2.0 ** r / (h_min ** r * math.factorial(r)) for r in range(order + 1)])
    scale = max(float(np.max(np.abs(v))) for v in values_seen)
    return np.stack(coefficients), ORACLE_SAFETY * EPS * scale * weight_sums


def line_coefficients(fn, points, directions, order, oracle):
    """The oracle's coefficients of ``t -> fn(*(x + t v_m))`` for every direction m.

    ``points`` is a list of primals, ``directions`` the matching list of
    ``(M, *S)`` arrays.  Returns ``(coefficients (K+1, M, *out), tolerance (K+1,))``.
    """
    n_dirs = directions[0].shape[0]
    results = []
    for m in range(n_dirs):
        def g(t, m=m):
            return fn(*[x + t * v[m] for x, v in zip(points, directions)])
        results.append(oracle(g, order))
    coefficients = np.stack([c for c, _ in results], axis=1)
    return coefficients, np.max([tol for _, tol in results], axis=0)


def assert_matches_oracle(got, want, tolerance):
    """``|got_r - want_r| <= tolerance_r`` for every order r (arrays ``(K+1, ...)``)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    for r in range(got.shape[0]):
        error = float(np.max(np.abs(got[r] - want[r]), initial=0.0))
        assert error <= tolerance[r], (f"order {r}: error {error:.3g} > tolerance {tolerance[r]:.3g} "
                                       f"(|c_{r}| up to {float(np.max(np.abs(want[r]), initial=0)):.3g})")


# ----------------------------------------------------------------------------
# the harness that runs an operation on Jets and through the oracles


ANY, POSITIVE, NONZERO = "any", "positive", "nonzero"
DIRECTION_KINDS = ("real", "complex directions", "complex primal")


def make_inputs(name, inputs, kind, n_dirs=2):
    """Primals for ``inputs`` (a list of ``(shape, domain)``) and ``(M, *S)`` directions
    with parts in [-0.5, 0.5], |v| <= 0.71; seeded by ``name`` and ``kind``.

    Domains: ``any`` in [-2, 2], ``positive`` in [1, 2], ``nonzero`` in +-[1, 2].
    Kinds: real primal and directions; real primal and complex directions (the
    sketch); complex primal (imaginary part in [-0.3, 0.3]) and directions.
    """
    rng = np.random.default_rng(zlib.crc32(f"{name}/{kind}".encode()))
    points, directions = [], []
    for shape, domain in inputs:
        magnitude = rng.uniform(1, 2, shape)
        x = {ANY: rng.uniform(-2, 2, shape), POSITIVE: magnitude,
             NONZERO: rng.choice([-1, 1], shape) * magnitude}[domain]
        v = rng.uniform(-0.5, 0.5, (n_dirs,) + shape)
        if kind != "real":
            v = v + 1j * rng.uniform(-0.5, 0.5, v.shape)
        if kind == "complex primal":
            x = x + 1j * rng.uniform(-0.3, 0.3, shape)
        points.append(x)
        directions.append(v)
    return points, directions


def run_jets(fn, points, directions, order):
    jets = [Jet.from_directions(x, v, order) for x, v in zip(points, directions)]
    out = fn(*jets)
    assert isinstance(out, Jet), f"expected a Jet, got {type(out).__name__}"
    return out.coefficients()


def check_against_oracles(fn, points, directions, radius, order=12, numpy_fn=None, step=0.1):
    """``fn`` on Jets against ``numpy_fn`` (default: ``fn`` itself, run on arrays) through
    the circle stencil up to ``order`` and Richardson-extrapolated central differences
    up to order 4.

    ``radius`` (circle) and ``step`` (largest central-difference step) must both be
    well inside the radius of convergence R of ``t -> fn(x + t v)``: the tolerances
    bound rounding only, so aliasing (``radius`` <~ R/2) and truncation
    (``step`` <~ R/15) must be negligible by this choice.
    """
    numpy_fn = fn if numpy_fn is None else numpy_fn
    circle = functools.partial(circle_coefficients, radius=radius)
    want, tolerance = line_coefficients(numpy_fn, points, directions, order, circle)
    assert_matches_oracle(run_jets(fn, points, directions, order), want, tolerance)
    low = min(order, 4)
    central = functools.partial(richardson_coefficients, step=step)
    want, tolerance = line_coefficients(numpy_fn, points, directions, low, central)
    assert_matches_oracle(run_jets(fn, points, directions, low), want, tolerance)


# ----------------------------------------------------------------------------
# comparison


def assert_series_close(got, want, rtol=1e-10):
    """Compare coefficient arrays ``(K+1, ...)`` row by row, relative to their size.

    Row ``k`` of a recurrence is a sum of products of lower rows, so its rounding
    error scales with the largest coefficient met so far in that series, not
    with ``|c_k|`` itself (which can be small by cancellation).  The tolerance
    of entry ``(k, l)`` is ``rtol * max(1, max_{j<=k} |want_j,l|)``.
    """
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    scale = np.maximum(1.0, np.maximum.accumulate(np.abs(want), axis=0))
    error = np.abs(got - want)
    bad = error > rtol * scale
    if np.any(bad):
        rows = sorted(set(np.nonzero(bad)[0].tolist()))
        worst = float(np.max(error / scale))
        raise AssertionError(f"series differ in rows {rows}: max scaled error {worst:.3g} > {rtol:g}")


def erf_derivatives(x0, order):
    """``erf^(n)(x_0)`` for n = 0..K: ``(2/sqrt(pi)) (-1)^(n-1) H_(n-1)(x_0) exp(-x_0^2)``
    with the physicists' Hermite polynomials ``H``."""
    x0 = np.asarray(x0)
    out = [scipy.special.erf(x0)]
    for n in range(1, order + 1):
        hermite = np.polynomial.hermite.hermval(x0, [0] * (n - 1) + [1])
        out.append(2.0 / np.sqrt(np.pi) * (-1) ** (n - 1) * hermite * np.exp(-x0 ** 2))
    return np.stack(out)


def adam_reference_step(p, m, v, g, step, opt):
    """The same update written with generic ``ts`` operations (returns new p, m, v).

    Slow; the independent twin of the fused kernel (``kernels.adam_update``).
    """
    m = opt.beta1 * m + (1.0 - opt.beta1) * g
    v = opt.beta2 * v + (1.0 - opt.beta2) * (g * g)
    m_hat = m * (1.0 / (1.0 - opt.beta1 ** (step + 1)))
    v_hat = v * (1.0 / (1.0 - opt.beta2 ** (step + 1)))
    p = p - opt.learning_rate(step) * (m_hat / ts.sqrt(v_hat + opt.eps))
    return p, m, v
