"""Every numba kernel against its plain-numpy twin in ``reference.py``.

Float64 and complex128, orders 0..12, random sizes.  A kernel fills rows 1..K
of its output (``mul`` all rows); row 0 is set here as the rules set it.  The
tolerance ``1e-10`` is relative to the largest coefficient met so far in each
series (see ``reference.assert_series_close``): the recurrences and the twins
round differently, by at most 5e-12 times that size (measured against mpmath), while a
wrong index or weight gives an O(1) error.

Shape legend: K = order, L = number of scalar series, M = directions, P = parameters.
"""

import numba
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import reference
import strategies
from taylorsketch import kernels

RTOL = 1e-10


@st.composite
def cases(draw, *domains):
    """``(order, dtype, arrays...)``: one full ``(K+1, L)`` array per primal domain."""
    order = draw(strategies.orders)
    size = draw(strategies.sizes)
    dtype = draw(strategies.dtypes)
    arrays = [draw(strategies.coefficient_arrays(order, size, dtype, d)) for d in domains]
    return (order, dtype, *arrays)


def _with_primal(x, value):
    out = np.empty_like(x)
    out[0] = value
    return out


# ----------------------------------------------------------------------------
# one checker per kernel: run it, compare with the twin


def check_mul(a, b):
    out = np.empty_like(a)
    kernels.mul(a, b, out)
    reference.assert_series_close(out, reference.mul(a, b), RTOL)


def check_div(a, b):
    out = _with_primal(a, a[0] / b[0])
    kernels.div(a, b, out)
    reference.assert_series_close(out, reference.div(a, b), RTOL)


def check_ode(x, d):
    out = _with_primal(x, 0.25)
    kernels.ode(x, d, out)
    reference.assert_series_close(out, reference.ode(x, d, 0.25), RTOL)


def check_exp(x):
    out = _with_primal(x, np.exp(x[0]))
    kernels.exp(x, out)
    reference.assert_series_close(out, reference.exp(x), RTOL)


def check_log(x):
    out = _with_primal(x, np.log(x[0]))
    kernels.log(x, out)
    reference.assert_series_close(out, reference.log(x), RTOL)


def check_power(x, a):
    out = _with_primal(x, x[0] ** a)
    kernels.power(x, a, out)
    reference.assert_series_close(out, reference.power(x, a), RTOL)


def check_tanh(x):
    out = _with_primal(x, np.tanh(x[0]))
    work = np.empty_like(x)
    kernels.tanh(x, out, work)
    want, want_work = reference.tanh(x)
    reference.assert_series_close(out, want, RTOL)
    reference.assert_series_close(work, want_work, RTOL)


def check_sincos(x):
    s = _with_primal(x, np.sin(x[0]))
    c = _with_primal(x, np.cos(x[0]))
    kernels.sincos(x, s, c)
    want_s, want_c = reference.sincos(x)
    reference.assert_series_close(s, want_s, RTOL)
    reference.assert_series_close(c, want_c, RTOL)


def check_compose(x, derivatives):
    out = _with_primal(x, derivatives[0])
    kernels.compose(x, derivatives, out)
    reference.assert_series_close(out, reference.compose(x, derivatives), RTOL)


# ----------------------------------------------------------------------------
# hypothesis: random orders 0..12, sizes 1..6, float64 or complex128


@given(cases("any", "any"))
def test_mul(case):
    _, _, a, b = case
    check_mul(a, b)


@given(cases("any", "nonzero"))
def test_div(case):
    _, _, a, b = case
    check_div(a, b)


@given(cases("any", "any"))
def test_ode(case):
    _, _, x, d = case
    check_ode(x, d)


@given(cases("any"))
def test_exp(case):
    _, _, x = case
    check_exp(x)


@given(cases("positive"))
def test_log(case):
    _, _, x = case
    check_log(x)


@given(cases("positive"), strategies.real_exponents | strategies.integer_exponents.map(float))
def test_power(case, exponent):
    _, _, x = case
    check_power(x, exponent)


# found by hypothesis: the twin's old identity 1 - 2/(exp(2x) + 1) lost 1.5e-10 here
@example(case=(12, np.complex128, np.array([[2.0]] + [[1.0 + 1.0j]] * 12)))
@given(cases("any"))
def test_tanh(case):
    _, _, x = case
    check_tanh(x)


@given(cases("any"))
def test_sincos(case):
    _, _, x = case
    check_sincos(x)


@given(cases("any", "any"))
def test_compose(case):
    # Random values stand in for h^(n)(x_0): the formula is linear in them.
    _, _, x, derivatives = case
    check_compose(x, derivatives)


# ----------------------------------------------------------------------------
# the extreme orders 0 and 12 for both dtypes, whatever hypothesis draws


CHECKS = {
    "mul": (check_mul, ("any", "any")),
    "div": (check_div, ("any", "nonzero")),
    "ode": (check_ode, ("any", "any")),
    "exp": (check_exp, ("any",)),
    "log": (check_log, ("positive",)),
    "power": (lambda x: check_power(x, -1.5), ("positive",)),
    "tanh": (check_tanh, ("any",)),
    "sincos": (check_sincos, ("any",)),
    "compose": (check_compose, ("any", "any")),
}


def _random_full(rng, order, size, dtype, domain):
    real = {"any": rng.uniform(-2, 2, size), "positive": rng.uniform(0.5, 2, size),
            "nonzero": rng.choice([-1, 1], size) * rng.uniform(0.5, 2, size)}[domain]
    full = np.empty((order + 1, size), dtype=dtype)
    full[0] = real if dtype is np.float64 else real + 0.5j * rng.uniform(-1, 1, size)
    full[1:] = rng.uniform(-1, 1, (order, size))
    if dtype is np.complex128:
        full[1:] += 1j * rng.uniform(-1, 1, (order, size))
    return full


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("order", [0, 1, 12])
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_extreme_orders(name, order, dtype):
    check, domains = CHECKS[name]
    rng = np.random.default_rng(order)
    check(*[_random_full(rng, order, 5, dtype, d) for d in domains])


def test_twins_agree_with_closed_forms():
    """The twins themselves, on series whose coefficients are known exactly."""
    order = 12
    line = np.zeros((order + 1, 1))
    line[1] = 1.0                                              # t
    r = np.arange(order + 1)
    factorial = np.array([float(np.prod(np.arange(1, k + 1))) for k in r])
    np.testing.assert_allclose(reference.exp(line)[:, 0], 1 / factorial, rtol=1e-14)
    one_plus_t = line + reference.constant_series(1.0, line)
    want_log = np.where(r == 0, 0.0, (-1.0) ** (r + 1) / np.maximum(r, 1))
    np.testing.assert_allclose(reference.log(one_plus_t)[:, 0], want_log, rtol=1e-14)
    one_minus_t = reference.constant_series(1.0, line) - line
    np.testing.assert_allclose(reference.reciprocal(one_minus_t)[:, 0], np.ones(order + 1), rtol=1e-14)
    np.testing.assert_allclose(reference.power(one_plus_t, 0.5)[:, 0],
                               [reference.binomial(0.5, k) for k in r], rtol=1e-14)
    tanh_odd = [1, -1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925]
    # 1 - 2/(exp(2t) + 1) sums O(1) terms with alternating signs: absolute rounding ~1e-14.
    np.testing.assert_allclose(reference.tanh(line)[0][1::2, 0], tanh_odd, rtol=0, atol=1e-13)
    np.testing.assert_allclose(reference.sincos(line)[0][1::2, 0],
                               (-1.0) ** np.arange(6) / factorial[1::2], rtol=1e-14)
    exp_derivatives = np.ones((order + 1, 1))
    np.testing.assert_allclose(reference.compose(line, exp_derivatives), reference.exp(line), rtol=1e-14)


# ----------------------------------------------------------------------------
# adam_update: the fused optimiser step against the same step in series arithmetic


@st.composite
def adam_cases(draw):
    order = draw(strategies.orders)
    n_dirs = draw(strategies.n_directions)
    n_params = draw(strategies.sizes)
    dtype = draw(strategies.dtypes)
    step = draw(st.integers(0, 50))
    beta1 = draw(strategies.reals(0.5, 0.95))
    beta2 = draw(strategies.reals(0.9, 0.999))
    hyper = dict(beta1=beta1, beta2=beta2, lr=draw(strategies.reals(1e-3, 0.1)),
                 bias1=1 - beta1 ** (step + 1), bias2=1 - beta2 ** (step + 1),
                 eps=draw(strategies.reals(1e-3, 0.1)))
    primal = lambda low, high: draw(strategies.real_arrays((n_params,), low, high))  # noqa: E731
    series = lambda: draw(strategies.arrays((order, n_dirs, n_params), dtype))        # noqa: E731
    # v, a running mean of g^2, is >= 0; its series is arbitrary.
    state = dict(p0=primal(-1, 1), m0=primal(-1, 1), v0=primal(0.0, 1.0), g0=primal(-1, 1),
                 ps=series(), ms=series(), vs=series(), gs=series())
    return state, hyper


def check_adam(state, hyper):
    want = reference.adam_update(**state, **hyper)
    got = {name: value.copy() for name, value in state.items()}
    kernels.adam_update(got["p0"], got["m0"], got["v0"], got["g0"], got["ps"], got["ms"], got["vs"],
                        got["gs"], hyper["beta1"], hyper["beta2"], hyper["lr"], hyper["bias1"],
                        hyper["bias2"], hyper["eps"])
    for name, value in zip(("p0", "m0", "v0", "ps", "ms", "vs"), want):
        if name.endswith("0"):
            np.testing.assert_allclose(got[name], value, rtol=1e-13, atol=1e-15, err_msg=name)
        else:
            order, n_dirs, n_params = value.shape
            full = lambda x: x.reshape(order, n_dirs * n_params)  # noqa: E731
            reference.assert_series_close(full(got[name]), full(value), RTOL)
    np.testing.assert_array_equal(got["g0"], state["g0"])
    np.testing.assert_array_equal(got["gs"], state["gs"])


@given(adam_cases())
def test_adam_update(case):
    check_adam(*case)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("order", [0, 12])
def test_adam_update_extreme_orders(order, dtype):
    rng = np.random.default_rng(order)
    n_dirs, n_params = 3, 7
    series = lambda: (rng.uniform(-1, 1, (order, n_dirs, n_params))                     # noqa: E731
                      + (1j * rng.uniform(-1, 1, (order, n_dirs, n_params)) if dtype is np.complex128
                         else 0)).astype(dtype)
    state = dict(p0=rng.uniform(-1, 1, n_params), m0=rng.uniform(-1, 1, n_params),
                 v0=rng.uniform(0, 1, n_params), g0=rng.uniform(-1, 1, n_params),
                 ps=series(), ms=series(), vs=series(), gs=series())
    hyper = dict(beta1=0.85, beta2=0.99, lr=0.01, bias1=1 - 0.85 ** 4, bias2=1 - 0.99 ** 4, eps=1e-3)
    check_adam(state, hyper)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("order", list(range(0, 13)) + [20])
def test_adam_update_is_its_one_pass_per_term_twin_to_the_bit(order, dtype):
    """The fused passes repeat the sequence of operations of one pass per step
    (``reference.adam_update_in_passes``): every coefficient the same to the bit,
    with signed zeros, at every order of the recurrences' first and last terms."""
    rng = np.random.default_rng(100 + order)
    n_dirs, n_params = 3, 37
    series = lambda: (rng.normal(size=(order, n_dirs, n_params))                        # noqa: E731
                      + (1j * rng.normal(size=(order, n_dirs, n_params)) if dtype is np.complex128
                         else 0)).astype(dtype)
    state = [rng.uniform(-1, 1, n_params), rng.uniform(-1, 1, n_params), rng.uniform(0, 1, n_params),
             rng.uniform(-1, 1, n_params), series(), series(), series(), series()]
    state[4][..., :3] = 0.0                          # zero coefficients: their signs must agree too
    state[7][..., 3:5] = -0.0
    zeros = [0.0, -0.0, complex(-0.0, 0.0), complex(0.0, -0.0)] if dtype is np.complex128 else [0.0, -0.0, -0.0, 0.0]
    state[5][..., 5:9] = state[7][..., 5:9] = zeros       # zeros of m: the signs of m_hat / s must agree too
    hyper = (0.85, 0.99, 0.01, 1 - 0.85 ** 4, 1 - 0.99 ** 4, 1e-3)
    got, want = [x.copy() for x in state], [x.copy() for x in state]
    kernels.adam_update(*got, *hyper)
    reference.adam_update_in_passes(*want, *hyper)
    for name, a, b in zip(("p0", "m0", "v0", "g0", "ps", "ms", "vs", "gs"), got, want):
        assert a.tobytes() == b.tobytes(), name
    assert not np.array_equal(got[4], state[4]) or order == 0      # the step did move the parameters


@numba.njit
def _divided(z, b):
    return z / b, kernels.over(z, b)


@pytest.mark.parametrize("b", [1.0, 0.25, 1 - 0.85 ** 4, 3e-300])
def test_over_is_numbas_division_by_a_real_to_the_bit(b):
    """``kernels.over(z, b)`` is numba's ``z / b`` for complex ``z`` and real ``b > 0``, with
    signed zeros, infinities and NaNs in either part; and plain division for real ``z``."""
    parts = [0.0, -0.0, 1.5, -2.5e-310, np.inf, -np.inf, np.nan, 1e308]
    for x in parts:
        for y in parts:
            want, got = _divided(complex(x, y), b)
            assert np.array([want]).tobytes() == np.array([got]).tobytes(), (x, y, want, got)
        want, got = _divided(x, b)
        assert np.array([want]).tobytes() == np.array([got]).tobytes(), (x, want, got)


# copy_finite: a copy into a slice of the flat gradient, and a finiteness check in the same pass


@pytest.mark.parametrize("dtype, bad", [(dtype, bad) for dtype in (np.float64, np.complex128)
                                        for bad in (None, np.nan, np.inf, -np.inf)]
                         + [(np.complex128, complex(1.0, np.nan)), (np.complex128, complex(np.inf, 0.0))])
def test_copy_finite_copies_and_tells_whether_every_value_is_finite(dtype, bad):
    rng = np.random.default_rng(1)
    src = rng.normal(size=(3, 2, 5)).astype(dtype) * 1e300             # huge but finite
    src[0, 0, 0] = -0.0
    if bad is not None:
        src[1, 1, 2] = bad
    dst = np.full((3, 2, 9), 7.0, dtype=dtype)
    finite = kernels.copy_finite(src, dst, 3)
    assert finite is (bad is None)
    assert dst[:, :, 3:8].tobytes() == src.tobytes()
    assert np.all(dst[:, :, :3] == 7.0) and np.all(dst[:, :, 8:] == 7.0)     # nothing else written


# scale: a real factor times a real or complex value, inside a kernel

@kernels.njit
def _scale_all(w, z, out):
    for i in range(z.shape[0]):
        out[i] = kernels.scale(w[i], z[i])


@given(st.lists(st.tuples(strategies.reals(-1e3, 1e3), strategies.reals(-1e3, 1e3),
                          strategies.reals(-1e3, 1e3)), min_size=1, max_size=20))
def test_scale_is_the_product_to_the_bit(values):
    w, re, im = (np.array(column) for column in zip(*values))
    for z in (re + 1j * im, re):
        out = np.empty_like(z)
        _scale_all(w, z, out)
        assert out.dtype == z.dtype                      # a real value stays real
        np.testing.assert_array_equal(out, w * z)        # numpy's product, as the kernels had it


@pytest.mark.parametrize("size", [1, kernels.ERF_BLOCK - 1, kernels.ERF_BLOCK, 2 * kernels.ERF_BLOCK + 3])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("order", [1, 3, 6, 12])
def test_erf_blocks_are_the_whole_array_kernels_to_the_bit(order, dtype, size):
    """``kernels.erf`` against the composition of the whole-array kernels it blocks
    (``mul``, ``exp``, ``ode``, as the erf rule computed before): equal to the bit,
    across block edges.  (The erf rule itself is checked against finite differences
    and exact series in test_functions.py.)"""
    rng = np.random.default_rng(order * 1000 + size)
    x = rng.uniform(-1.5, 1.5, (order + 1, size)).astype(dtype)
    if dtype is np.complex128:
        x[1:] += 1j * rng.uniform(-1.5, 1.5, (order, size))
    square = np.empty_like(x)
    kernels.mul(x, x, square)
    gauss = np.empty_like(x)
    gauss[0] = np.exp(-square[0])
    kernels.exp(-square, gauss)
    whole = np.zeros_like(x)
    kernels.ode(x, (2.0 / np.sqrt(np.pi)) * gauss, whole)
    blocked = np.zeros_like(x)
    kernels.erf(x, np.exp(-(x[0] * x[0])), blocked)
    assert np.array_equal(blocked[1:], whole[1:])


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("order", [1, 2, 3, 6, 12])
def test_primal_once_products_are_the_full_array_kernels_to_the_bit(order, dtype):
    """The product and quotient rules on same-shaped contiguous series run
    ``kernels.cauchy`` and ``kernels.quotient`` on the primal once beside the series;
    they equal the full coefficient arrays' ``kernels.mul`` and ``kernels.div`` (the
    rules' path for broadcast operands) to the bit, real primals beside complex series
    included.  (The values themselves: ``test_mul``, ``test_div`` above.)"""
    from taylorsketch import rules
    rng = np.random.default_rng(order)
    shape, n_dirs = (5, 3), 4
    a0, b0 = rng.uniform(-2, 2, shape), rng.uniform(0.5, 2, shape)
    as_, bs = (rng.uniform(-1, 1, (order, n_dirs) + shape).astype(dtype) for _ in range(2))
    if dtype is np.complex128:
        as_ += 1j * rng.uniform(-1, 1, as_.shape)
        bs += 1j * rng.uniform(-1, 1, bs.shape)
    assert rules._same_layout(a0, as_, b0, bs)
    for name, kernel, y0 in (("mul", kernels.mul, a0 * b0), ("div", kernels.div, a0 / b0)):
        primal, series = rules.RULES[name]((a0, b0), (as_, bs))
        np.testing.assert_array_equal(primal, y0)
        assert series.dtype == dtype
        assert np.array_equal(series, rules._binary_series(a0, as_, b0, bs, y0, kernel))
    assert not rules._same_layout(a0, as_, b0[:1], bs[..., :1, :])            # broadcast: full arrays
    assert not rules._same_layout(a0, as_[:, :, ::-1], b0, bs)                # a view: full arrays


def test_vectorized_kernels_compile_with_the_slp_vectoriser_on(monkeypatch):
    """``kernels._vectorized`` compiles every signature with numba's SLP vectoriser
    switched on (the real matrix product's register blocks run scalar without it) and
    leaves numba's setting as it was.  A probe whose overload runs while the kernel is
    typed, inside its compilation, sees the setting; the kernel is not cached here, so
    it compiles in this process."""
    import numba
    from numba.extending import overload
    seen = []

    def probe(x):
        pass

    @overload(probe)
    def _probe(x):                     # typed once per argument type: once per signature
        seen.append(numba.config.SLP_VECTORIZE)
        return lambda x: None

    def kernel(x):
        probe(x)
        return x + 1.0
    monkeypatch.setattr(kernels, "njit", numba.njit(cache=False))
    monkeypatch.setattr(numba.config, "SLP_VECTORIZE", 0)
    compiled = kernels._vectorized(kernel)
    assert compiled(1.0) == 2.0 and compiled(np.float32(1.0)) == 2.0
    assert seen == [1, 1] and numba.config.SLP_VECTORIZE == 0


# cauchy_rows, quotient_rows: the product and quotient of operands broadcast along their last axis


@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 4), st.integers(2, 9), st.booleans(),
       st.sampled_from([np.float64, np.complex128]), st.integers(0, 2**32 - 1))
def test_row_kernels_are_mul_and_div_on_the_broadcast_full_arrays(order, n_dirs, rows, cols, left, dtype, seed):
    """Each element of :func:`kernels.cauchy_rows` and :func:`kernels.quotient_rows` is
    :func:`kernels.mul` and :func:`kernels.div` on the broadcast full arrays, to the bit,
    and close to the twins (``reference.mul``, ``reference.div``) coefficient by coefficient."""
    rng = np.random.default_rng(seed)

    def operand(width):
        x = rng.uniform(0.5, 2.0, size=(order + 1, n_dirs, rows, width))
        return (x + 1j * rng.uniform(-1, 1, size=x.shape) if dtype is np.complex128 else x).astype(dtype)
    a, b = (operand(1), operand(cols)) if left else (operand(cols), operand(1))
    a[0] = a[0, :1]                                  # one primal, shared by the directions
    b[0] = b[0, :1]
    full = (order + 1, n_dirs, rows, cols)
    fa, fb = np.broadcast_to(a, full).reshape(order + 1, -1), np.broadcast_to(b, full).reshape(order + 1, -1)
    want_mul, want_div = np.empty_like(fa), np.empty_like(fa)
    kernels.mul(fa, fb, want_mul)
    want_div[0] = fa[0] / fb[0]
    kernels.div(fa, fb, want_div)
    got_mul, got_div = np.empty((order, n_dirs, rows, cols), dtype), np.empty((order, n_dirs, rows, cols), dtype)
    kernels.cauchy_rows(a[0, 0], a[1:], b[0, 0], b[1:], got_mul)
    kernels.quotient_rows(a[1:], b[0, 0], b[1:], want_div[0].reshape(full[1:])[0], got_div)
    assert np.array_equal(got_mul, want_mul[1:].reshape(got_mul.shape))
    assert np.array_equal(got_div, want_div[1:].reshape(got_div.shape))
    for d in range(n_dirs):
        ad, bd = (np.broadcast_to(x, full)[:, d].reshape(order + 1, -1) for x in (a, b))
        reference.assert_series_close(np.concatenate([ad[:1] * bd[:1], got_mul[:, d].reshape(order, -1)]),
                                      reference.mul(ad, bd), RTOL)
        reference.assert_series_close(np.concatenate([ad[:1] / bd[:1], got_div[:, d].reshape(order, -1)]),
                                      reference.div(ad, bd), RTOL)
