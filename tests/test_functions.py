"""``taylorsketch.functions``: every ``ts`` function on Jets and on arrays.

Four independent checks:

* finite differences of the plain numpy/scipy expression (circle stencil to
  order 12, Richardson-extrapolated central differences to order 4; tolerances
  are the oracles' rounding bounds, see ``reference.py``);
* exact Taylor series known in closed form, to order 16, along real and complex
  directions;
* identities that hold in every order, for arbitrary jets (hypothesis);
* ``ts.compose`` (Faa di Bruno) against the specialised recurrences, with the
  derivatives given analytically.

Shape legend: K = order, M = number of directions, S = primal shape.
"""

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given
from hypothesis import strategies as st

import reference
import strategies
import taylorsketch as ts
from taylorsketch import Jet

ANY, POSITIVE, NONZERO = reference.ANY, reference.POSITIVE, reference.NONZERO

_rng = np.random.default_rng(11)
C32 = _rng.uniform(-1, 1, (3, 2))
C34 = _rng.uniform(-1, 1, (3, 4))
REPEATED = np.array([0, 3, 0, 1])                       # index 0 twice: contributions add up


def _numpy_gelu(x):
    return 0.5 * x * (1.0 + scipy.special.erf(x / np.sqrt(2.0)))


def _numpy_softmax(x, axis=-1):
    return np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)


def _numpy_logsumexp(x, axis=-1, keepdims=False):
    return np.log(np.exp(x).sum(axis=axis, keepdims=keepdims))


def _numpy_scatter_add(values, index, shape):
    out = np.zeros(shape, dtype=values.dtype)
    np.add.at(out, index, values)
    return out


def _derivatives_of(name):
    """``(x_0, K) -> [h(x_0), h'(x_0), ..., h^(K)(x_0)]`` in closed form."""
    def exp(x0, order):
        return np.stack([np.exp(x0)] * (order + 1))

    def sin(x0, order):
        return np.stack([np.sin(x0 + n * np.pi / 2) for n in range(order + 1)])

    def log(x0, order):
        # d^n/dx^n log x = (-1)^(n-1) (n-1)! / x^n
        return np.stack([np.log(x0)] + [(-1.0) ** (n - 1) * math.factorial(n - 1) / x0 ** n
                                        for n in range(1, order + 1)])

    return {"exp": exp, "sin": sin, "log": log, "erf": reference.erf_derivatives}[name]


def case(jet_fn, numpy_fn, *inputs, radius=1.0):
    return jet_fn, numpy_fn, list(inputs), radius


# radius: at most ~half the distance in t to the nearest singularity (|v| <= 0.71,
# primal imaginary part <= 0.3); larger for entire functions, so that their
# fast-decaying high coefficients stay resolved by the circle stencil.
FUNCTIONS = {
    "exp": case(ts.exp, np.exp, ((3, 4), ANY), radius=4.0),
    "log": case(ts.log, np.log, ((3, 4), POSITIVE), radius=0.9),
    "sqrt": case(ts.sqrt, np.sqrt, ((3, 4), POSITIVE), radius=0.9),
    "reciprocal": case(ts.reciprocal, lambda x: 1.0 / x, ((3, 4), NONZERO), radius=0.9),
    "tanh": case(ts.tanh, np.tanh, ((3, 4), ANY), radius=1.1),    # poles at +-i pi/2
    "sigmoid": case(ts.sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x)), ((3, 4), ANY), radius=1.1),
    "erf": case(ts.erf, scipy.special.erf, ((3, 4), ANY), radius=3.0),
    "gelu": case(ts.gelu, _numpy_gelu, ((3, 4), ANY), radius=3.0),
    "sin": case(ts.sin, np.sin, ((3, 4), ANY), radius=4.0),
    "cos": case(ts.cos, np.cos, ((3, 4), ANY), radius=4.0),
    "softmax": case(ts.softmax, _numpy_softmax, ((3, 5), ANY), radius=1.2),
    "softmax_axis0": case(lambda x: ts.softmax(x, axis=0), lambda x: _numpy_softmax(x, 0),
                          ((3, 5), ANY), radius=1.2),
    "log_softmax": case(ts.log_softmax, lambda x: x - _numpy_logsumexp(x, keepdims=True),
                        ((3, 5), ANY), radius=1.2),
    "log_softmax_axis0": case(lambda x: ts.log_softmax(x, axis=0),
                              lambda x: x - _numpy_logsumexp(x, axis=0, keepdims=True),
                              ((3, 5), ANY), radius=1.2),
    "logsumexp": case(ts.logsumexp, _numpy_logsumexp, ((3, 5), ANY), radius=1.2),
    "logsumexp_keepdims": case(lambda x: ts.logsumexp(x, axis=0, keepdims=True),
                               lambda x: _numpy_logsumexp(x, axis=0, keepdims=True),
                               ((3, 5), ANY), radius=1.2),
    "logsumexp_axes": case(lambda x: ts.logsumexp(x, axis=(0, 2)),
                           lambda x: _numpy_logsumexp(x, axis=(0, 2)), ((2, 3, 2), ANY), radius=1.2),
    "logsumexp_all": case(lambda x: ts.logsumexp(x, axis=None),
                          lambda x: _numpy_logsumexp(x, axis=None), ((3, 5), ANY), radius=1.2),
    "matmul": case(ts.matmul, np.matmul, ((3, 4), ANY), ((4, 2), ANY)),
    "sum": case(lambda x: ts.sum(x, axis=-1, keepdims=True),
                lambda x: np.sum(x, axis=-1, keepdims=True), ((3, 4), ANY)),
    "mean": case(lambda x: ts.mean(x, axis=0), lambda x: np.mean(x, axis=0), ((3, 4), ANY)),
    "reshape": case(lambda x: ts.reshape(x, (2, 6)), lambda x: np.reshape(x, (2, 6)), ((3, 4), ANY)),
    "transpose": case(ts.transpose, np.transpose, ((3, 4), ANY)),
    "transpose_axes": case(lambda x: ts.transpose(x, (2, 0, 1)), lambda x: np.transpose(x, (2, 0, 1)),
                           ((3, 4, 2), ANY)),
    "concatenate": case(lambda x, y: ts.concatenate([x, C32, y], axis=1),
                        lambda x, y: np.concatenate([x, C32, y], axis=1), ((3, 4), ANY), ((3, 1), ANY)),
    "concatenate_axis0": case(lambda x, y: ts.concatenate([C34, x, y]),
                              lambda x, y: np.concatenate([C34, x, y]), ((1, 4), ANY), ((2, 4), ANY)),
    "concatenate_negative_axis": case(lambda x: ts.concatenate([x, C32], axis=-1),
                                      lambda x: np.concatenate([x, C32], axis=-1), ((3, 4), ANY)),
    "stack": case(lambda x, y: ts.stack([x, C34, y]), lambda x, y: np.stack([x, C34, y]),
                  ((3, 4), ANY), ((3, 4), ANY)),
    "stack_negative_axis": case(lambda x: ts.stack([C34, x], axis=-1),
                                lambda x: np.stack([C34, x], axis=-1), ((3, 4), ANY)),
    "scatter_add": case(lambda x: ts.scatter_add(x, REPEATED, (5, 3)),
                        lambda x: _numpy_scatter_add(x, REPEATED, (5, 3)), ((4, 3), ANY)),
    "scatter_add_2d_index": case(lambda x: ts.scatter_add(x, (REPEATED, np.array([0, 2, 0, 2])), (4, 3)),
                                 lambda x: _numpy_scatter_add(x, (REPEATED, np.array([0, 2, 0, 2])),
                                                              (4, 3)), ((4,), ANY)),
    "scatter_add_ellipsis": case(lambda x: ts.scatter_add(x, (Ellipsis, REPEATED), (2, 4)),
                                 lambda x: _numpy_scatter_add(x, (Ellipsis, REPEATED), (2, 4)),
                                 ((2, 4), ANY)),
    "compose_exp": case(lambda x: ts.compose(x, _derivatives_of("exp")), np.exp, ((3, 4), ANY),
                        radius=4.0),
    "compose_log": case(lambda x: ts.compose(x, _derivatives_of("log")), np.log, ((3, 4), POSITIVE),
                        radius=0.9),
    # numpy's ufuncs on a Jet dispatch to the same functions
    "np.exp": case(np.exp, np.exp, ((3, 4), ANY), radius=4.0),
    "np.log": case(np.log, np.log, ((3, 4), POSITIVE), radius=0.9),
    "np.sqrt": case(np.sqrt, np.sqrt, ((3, 4), POSITIVE), radius=0.9),
    "np.reciprocal": case(np.reciprocal, np.reciprocal, ((3, 4), NONZERO), radius=0.9),
    "np.tanh": case(np.tanh, np.tanh, ((3, 4), ANY), radius=1.1),
    "np.sin": case(np.sin, np.sin, ((3, 4), ANY), radius=4.0),
    "np.cos": case(np.cos, np.cos, ((3, 4), ANY), radius=4.0),
    "np.power": case(lambda x: np.power(x, 1.5), lambda x: np.power(x, 1.5), ((3, 4), POSITIVE),
                     radius=0.9),
    "np.power_array_base": case(lambda x: np.power(C34 + 2.0, x), lambda x: np.power(C34 + 2.0, x),
                                ((3, 4), ANY), radius=4.0),
    "np.subtract": case(np.subtract, np.subtract, ((3, 4), ANY), ((4,), ANY)),
    "np.true_divide": case(np.true_divide, np.true_divide, ((3, 4), ANY), ((4,), NONZERO), radius=0.9),
    "np.negative": case(np.negative, np.negative, ((3, 4), ANY)),
    "np.positive": case(np.positive, np.positive, ((3, 4), ANY)),
    "np.matmul": case(np.matmul, np.matmul, ((3, 4), ANY), ((4, 2), ANY)),
}


@pytest.mark.parametrize("kind", reference.DIRECTION_KINDS)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_matches_finite_differences(name, kind):
    jet_fn, numpy_fn, inputs, radius = FUNCTIONS[name]
    points, directions = reference.make_inputs(name, inputs, kind)
    reference.check_against_oracles(jet_fn, points, directions, radius, numpy_fn=numpy_fn)


def _mini_transformer_block(x, w_qkv, w_fc):
    """rmsnorm, causal-free attention and a GELU MLP: every function above in one expression."""
    x = x * (ts.mean(x * x, axis=-1, keepdims=True) + 1e-5) ** -0.5
    q, k, v = x @ w_qkv[0].T, x @ w_qkv[1].T, x @ w_qkv[2].T
    attention = ts.softmax(q @ k.T * 0.5, axis=-1)
    x = x + attention @ v
    hidden = ts.gelu(x @ w_fc.T)
    return ts.log_softmax(hidden @ w_fc, axis=-1)


def _numpy_mini_transformer_block(x, w_qkv, w_fc):
    x = x * (np.mean(x * x, axis=-1, keepdims=True) + 1e-5) ** -0.5
    q, k, v = x @ w_qkv[0].T, x @ w_qkv[1].T, x @ w_qkv[2].T
    attention = _numpy_softmax(q @ k.T * 0.5)
    x = x + attention @ v
    hidden = _numpy_gelu(x @ w_fc.T)
    logits = hidden @ w_fc
    return logits - _numpy_logsumexp(logits, keepdims=True)


@pytest.mark.parametrize("kind", reference.DIRECTION_KINDS[:2])
def test_composite_function_matches_finite_differences(kind):
    inputs = [((5, 4), ANY), ((3, 4, 4), ANY), ((6, 4), ANY)]
    points, directions = reference.make_inputs("transformer", inputs, kind)
    points = [0.5 * p for p in points]
    directions = [0.5 * d for d in directions]
    # rmsnorm's (mean x^2 + 1e-5)^(-1/2) has branch points at |t| ~ 1: a smaller circle
    reference.check_against_oracles(_mini_transformer_block, points, directions, radius=0.5, order=8,
                                    numpy_fn=_numpy_mini_transformer_block)


# ----------------------------------------------------------------------------
# exact series to order 16, along real and complex directions
#
# For a scalar f and x = x_0 + t v, c_r = a_r v^r where a_r are the Taylor
# coefficients of s -> f(x_0 + s).  Directions: 1, a negative real, a unit
# complex number and a small complex one.

EXACT_ORDER = 16
DIRECTIONS = np.array([1.0, -0.7, 0.6 + 0.8j, 0.3 - 0.4j])
R = np.arange(EXACT_ORDER + 1)
FACTORIAL = np.array([math.factorial(r) for r in R], dtype=float)
TANH = {1: 1, 3: -1 / 3, 5: 2 / 15, 7: -17 / 315, 9: 62 / 2835, 11: -1382 / 155925,
        13: 21844 / 6081075, 15: -929569 / 638512875}
TANH_COEFFICIENTS = np.array([TANH.get(r, 0.0) for r in R])
ERF_COEFFICIENTS = np.array([2 / math.sqrt(math.pi) * (-1) ** (r // 2) / (math.factorial(r // 2) * r)
                             if r % 2 else 0.0 for r in R])


def _binomials(a):
    return np.array([reference.binomial(a, r) for r in R])


def _shifted(coefficients):
    """Coefficients of ``s * f(s)`` from those of ``f``."""
    return np.concatenate([[0.0], coefficients[:-1]])


EXACT = {
    # name: (function, x_0, a_r)
    "exp(t)": (ts.exp, 0.0, 1 / FACTORIAL),
    "exp(1 + t)": (ts.exp, 1.0, math.e / FACTORIAL),
    "log(1 + t)": (ts.log, 1.0, np.where(R == 0, 0.0, (-1.0) ** (R + 1) / np.maximum(R, 1))),
    "(1 + t)^2.5": (lambda x: x ** 2.5, 1.0, _binomials(2.5)),
    "(1 + t)^(-1/3)": (lambda x: x ** (-1 / 3), 1.0, _binomials(-1 / 3)),
    "(1 + t)^5": (lambda x: x ** 5, 1.0, _binomials(5)),
    "(1 + t)^-3": (lambda x: x ** -3, 1.0, _binomials(-3)),
    "sqrt(1 + t)": (ts.sqrt, 1.0, _binomials(0.5)),
    "1 / (1 - t)": (lambda x: 1 / (1 - x), 0.0, np.ones(EXACT_ORDER + 1)),
    "reciprocal(1 - t)": (lambda x: ts.reciprocal(1 - x), 0.0, np.ones(EXACT_ORDER + 1)),
    "sin(t)": (ts.sin, 0.0, np.where(R % 2, (-1.0) ** (R // 2), 0.0) / FACTORIAL),
    "cos(t)": (ts.cos, 0.0, np.where(R % 2, 0.0, (-1.0) ** (R // 2)) / FACTORIAL),
    "sin(0.3 + t)": (ts.sin, 0.3, np.sin(0.3 + R * np.pi / 2) / FACTORIAL),
    "tanh(t)": (ts.tanh, 0.0, TANH_COEFFICIENTS),
    "sigmoid(t)": (ts.sigmoid, 0.0, np.where(R == 0, 0.5, TANH_COEFFICIENTS / 2.0 ** (R + 1))),
    "erf(t)": (ts.erf, 0.0, ERF_COEFFICIENTS),
    # gelu(t) = t/2 + (t/2) erf(t / sqrt 2)
    "gelu(t)": (ts.gelu, 0.0, np.where(R == 1, 0.5, 0.0) + 0.5 * _shifted(ERF_COEFFICIENTS / 2 ** (R / 2))),
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_series(name):
    fn, x0, a = EXACT[name]
    x = Jet.from_directions(np.array(x0), DIRECTIONS, order=EXACT_ORDER)
    got = fn(x).coefficients()                                # (K+1, M)
    want = a[:, None] * DIRECTIONS[None, :] ** R[:, None]
    # ~K recurrence steps on O(1) numbers: rounding ~ K^2 eps = 6e-14
    reference.assert_series_close(got, want, rtol=1e-12)


# ----------------------------------------------------------------------------
# identities in every order, for arbitrary jets


@st.composite
def identity_cases(draw, domain="any", max_side=4):
    shape = draw(st.tuples(st.integers(1, 3), st.integers(1, max_side)))
    order = draw(strategies.orders)
    n_dirs = draw(strategies.n_directions)
    dtype = draw(strategies.dtypes)
    # |c_k / c_0| <= 0.5: intermediate coefficients stay O(1), rounding ~ K^2 eps
    return draw(strategies.jets(shape, order, n_dirs, dtype, domain=domain, series_scale=0.25))


IDENTITY_RTOL = 1e-10


@given(identity_cases("positive"))
def test_exp_of_log_is_identity(x):
    reference.assert_series_close(ts.exp(ts.log(x)).coefficients(), x.coefficients(), IDENTITY_RTOL)


@given(identity_cases("positive"))
def test_square_of_sqrt_is_identity(x):
    root = ts.sqrt(x)
    reference.assert_series_close((root * root).coefficients(), x.coefficients(), IDENTITY_RTOL)
    reference.assert_series_close((root ** 2).coefficients(), x.coefficients(), IDENTITY_RTOL)


@given(identity_cases())
def test_softmax_sums_to_one(x):
    total = ts.softmax(x, axis=-1).sum(axis=-1).coefficients()
    want = np.zeros_like(total)
    want[0] = 1.0                                             # c_0 = 1, every higher c_r = 0
    reference.assert_series_close(total, want, IDENTITY_RTOL)


@given(identity_cases())
def test_log_softmax_is_log_of_softmax(x):
    reference.assert_series_close(ts.log_softmax(x, axis=-1).coefficients(),
                                  ts.log(ts.softmax(x, axis=-1)).coefficients(), IDENTITY_RTOL)


@given(identity_cases())
def test_sigmoid_is_symmetric(x):
    total = (ts.sigmoid(x) + ts.sigmoid(-x)).coefficients()
    want = np.zeros_like(total)
    want[0] = 1.0
    reference.assert_series_close(total, want, IDENTITY_RTOL)


@given(identity_cases())
def test_sine_squared_plus_cosine_squared_is_one(x):
    total = (ts.sin(x) ** 2 + ts.cos(x) ** 2).coefficients()
    want = np.zeros_like(total)
    want[0] = 1.0
    reference.assert_series_close(total, want, IDENTITY_RTOL)


# ----------------------------------------------------------------------------
# compose (Faa di Bruno) against the specialised recurrences


SPECIALISED = {"exp": (ts.exp, "any"), "sin": (ts.sin, "any"), "log": (ts.log, "positive"),
               "erf": (ts.erf, "any")}


@pytest.mark.parametrize("name", sorted(SPECIALISED))
@given(data=st.data())
def test_compose_agrees_with_specialised_rule(name, data):
    fn, domain = SPECIALISED[name]
    x = data.draw(identity_cases(domain))
    derivatives = _derivatives_of(name)(x.primal, x.order)
    reference.assert_series_close(ts.compose(x, derivatives).coefficients(), fn(x).coefficients(),
                                  IDENTITY_RTOL)
    reference.assert_series_close(ts.compose(x, _derivatives_of(name)).coefficients(),
                                  fn(x).coefficients(), IDENTITY_RTOL)


def test_compose_uses_only_the_derivatives_it_needs():
    x = Jet.from_directions(np.array([0.2, 0.4]), np.ones((1, 2)), order=3)
    extra = np.concatenate([_derivatives_of("exp")(x.primal, 3), np.full((4, 2), np.nan)])
    np.testing.assert_allclose(ts.compose(x, extra).coefficients(), ts.exp(x).coefficients(),
                               rtol=1e-14)


# ----------------------------------------------------------------------------
# arrays in, arrays out: one code path for ordinary and jet runs


def test_functions_on_arrays_are_numpy():
    x = np.array([[0.3, -1.2, 2.0], [1.5, 0.1, -0.4]])
    positive = np.abs(x) + 0.5
    np.testing.assert_array_equal(ts.exp(x), np.exp(x))
    np.testing.assert_array_equal(ts.log(positive), np.log(positive))
    np.testing.assert_array_equal(ts.sqrt(positive), np.sqrt(positive))
    np.testing.assert_allclose(ts.reciprocal(x), 1 / x)
    np.testing.assert_array_equal(ts.tanh(x), np.tanh(x))
    np.testing.assert_allclose(ts.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_array_equal(ts.erf(x), scipy.special.erf(x))
    np.testing.assert_allclose(ts.gelu(x), _numpy_gelu(x), rtol=1e-15)
    np.testing.assert_array_equal(ts.sin(x), np.sin(x))
    np.testing.assert_array_equal(ts.cos(x), np.cos(x))
    np.testing.assert_allclose(ts.softmax(x), _numpy_softmax(x), rtol=1e-15)
    np.testing.assert_allclose(ts.log_softmax(x, axis=0), x - _numpy_logsumexp(x, 0, True), rtol=1e-15)
    np.testing.assert_allclose(ts.logsumexp(x), _numpy_logsumexp(x), rtol=1e-15)
    np.testing.assert_allclose(ts.logsumexp(x, axis=None), _numpy_logsumexp(x, axis=None), rtol=1e-15)
    np.testing.assert_array_equal(ts.concatenate([x, x], axis=1), np.concatenate([x, x], axis=1))
    np.testing.assert_array_equal(ts.stack([x, x]), np.stack([x, x]))
    np.testing.assert_array_equal(ts.scatter_add(x, REPEATED[:2], (4, 3)),
                                  _numpy_scatter_add(x, REPEATED[:2], (4, 3)))
    np.testing.assert_array_equal(ts.compose(x, np.stack([x, x])), x)
    assert ts.primal(x) is x


def test_softmax_of_large_primals_does_not_overflow():
    x = Jet.from_directions(np.array([1000.0, 1001.0, 999.0]), np.eye(3), order=3)
    p = ts.softmax(x).coefficients()
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p[:, :, :].sum(axis=-1), np.eye(4, 1).repeat(3, axis=1), atol=1e-15)
    np.testing.assert_allclose(ts.logsumexp(x).primal, 1001.0 + np.log1p(np.exp(-1) + np.exp(-2)))


def test_primal_of_a_jet():
    x = Jet.from_directions(np.array([1.0, 2.0]), np.ones((1, 2)), order=2)
    assert ts.primal(x) is x.primal


# ----------------------------------------------------------------------------
# bad input


def _jet(primal, order=3, n_dirs=1):
    primal = np.asarray(primal)
    return Jet(primal, np.ones((order, n_dirs) + primal.shape))


@pytest.mark.parametrize("primal", [[1.0, 0.0], [2.0, -1.0], [1.0, -1.0 + 0j]])
def test_log_at_non_positive_primal_is_refused(primal):
    with pytest.raises(ValueError, match=r"log: the primal has 1 entries where log is not analytic "
                                         r"\(log needs x_0 > 0\)"):
        ts.log(_jet(primal))


@pytest.mark.parametrize("primal", [[1.0, 0.0], [2.0, -1.0]])
def test_sqrt_at_non_positive_primal_is_refused(primal):
    with pytest.raises(ValueError, match=r"not analytic \(a real power needs x_0 > 0\)"):
        ts.sqrt(_jet(primal))


def test_compose_with_too_few_derivatives_is_refused():
    with pytest.raises(ValueError, match=r"compose: need derivatives of orders 0..3"):
        ts.compose(_jet([1.0, 2.0]), np.ones((3, 2)))


def test_joining_mismatched_jets_is_refused():
    with pytest.raises(ValueError, match="different orders"):
        ts.concatenate([_jet([1.0], order=2), _jet([1.0], order=3)])
    with pytest.raises(ValueError, match="different numbers of directions"):
        ts.stack([_jet([1.0], n_dirs=2), _jet([1.0], n_dirs=3)])
    with pytest.raises(ValueError, match="same number of dimensions"):
        ts.concatenate([_jet([1.0, 2.0]), np.ones((1, 2))])
    with pytest.raises(ValueError, match="same shape"):
        ts.stack([_jet([1.0, 2.0]), np.ones(3)])
