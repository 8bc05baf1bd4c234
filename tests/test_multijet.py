"""``MultiJet``: every operation against an independent oracle.

* exact series in the subset algebra (``reference.py``): ``f(x_0 + u) = sum_k
  f^(k)(x_0)/k! u^k`` with ``u^k`` by the naive O(3^d) subset convolution, for
  arbitrary MultiJets (hypothesis, d = 1..4, real and complex series);
* polarisation through univariate Jets, for ``x + sum_i z_i v_i``:
  ``c_S = sum_{X subset S} (-1)^{|S \\ X|} [t^|S|] f(x + t sum_{i in X} v_i)``
  (no subset transform involved), for the derived functions and the layers;
* nested central differences of the plain numpy function (d = 2);
* d = 1 against ``Jet`` of order 1.

Shape legend: d = number of variables, M = groups, S = primal shape.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference
import reference_subsets
import strategies
import taylorsketch as ts
from taylorsketch import Jet, MultiJet, nn

RTOL = 1e-10


def _flat(x):
    """All coefficients ``(2^d, L)``."""
    full = x.coefficients()
    return full.reshape(full.shape[0], -1)


def _normalised(derivatives):
    return np.stack([derivatives[k] / math.factorial(k) for k in range(len(derivatives))])


def _power_series(a):
    """``binom(a, k) x0^(a-k)``; the terms past an integer power vanish."""
    def terms(x0, d):
        return np.stack([reference.binomial(a, k) * x0 ** (a - k) if reference.binomial(a, k) else
                         np.zeros_like(x0) for k in range(d + 1)])
    return terms


SERIES = {   # name -> (function, normalised derivatives (x0, d) -> (d+1, *x0.shape), domain)
    "exp": (ts.exp, lambda x0, d: _normalised([np.exp(x0)] * (d + 1)), "any"),
    "log": (ts.log, lambda x0, d: np.stack([np.log(x0)] + [(-1.0) ** (k + 1) / (k * x0 ** k)
                                                           for k in range(1, d + 1)]), "positive"),
    "sqrt": (ts.sqrt, _power_series(0.5), "positive"),
    "pow_1.7": (lambda x: x ** 1.7, _power_series(1.7), "positive"),
    "pow_-2": (lambda x: x ** -2, _power_series(-2), "nonzero"),
    "cube": (lambda x: x ** 3, _power_series(3), "any"),
    "reciprocal": (ts.reciprocal, _power_series(-1), "nonzero"),
    "sin": (ts.sin, lambda x0, d: _normalised([np.sin(x0 + k * np.pi / 2) for k in range(d + 1)]), "any"),
    "cos": (ts.cos, lambda x0, d: _normalised([np.cos(x0 + k * np.pi / 2) for k in range(d + 1)]), "any"),
    "erf": (ts.erf, lambda x0, d: _normalised(reference.erf_derivatives(x0, d)), "any"),
    "compose_exp": (lambda x: ts.compose(x, lambda x0, k: np.stack([np.exp(x0)] * (k + 1))),
                    lambda x0, d: _normalised([np.exp(x0)] * (d + 1)), "any"),
}


@st.composite
def multijet_pairs(draw, domain="any", second_domain="any"):
    d = draw(strategies.multijet_variables)
    n_dirs = draw(st.integers(1, 2))
    shape = draw(st.sampled_from([(), (3,), (2, 2)]))
    dtype = draw(strategies.dtypes)
    return (draw(strategies.multijets(shape, d, n_dirs, dtype, domain, 0.5)),
            draw(strategies.multijets(shape, d, n_dirs, dtype, second_domain, 0.5)))


@pytest.mark.parametrize("name", sorted(SERIES))
@given(data=st.data())
def test_elementwise_function_is_its_exact_subset_series(name, data):
    fn, derivatives, domain = SERIES[name]
    x, _ = data.draw(multijet_pairs(domain))
    got = fn(x)
    assert isinstance(got, MultiJet)
    x0 = np.broadcast_to(x.primal, (x.n_directions,) + x.shape).reshape(-1)
    want = reference_subsets.subset_taylor_series(derivatives(x0, x.n_variables), _flat(x))
    reference.assert_series_close(_flat(got), want, RTOL)


def test_tanh_is_one_minus_two_over_exp_plus_one():
    x = MultiJet(np.array([0.3, -1.2]), np.random.default_rng(0).uniform(-1, 1, (7, 1, 2)))
    e = reference_subsets.subset_taylor_series(_normalised([np.exp(2 * x.primal)] * 4), 2 * _flat(x))
    e[0] += 1.0
    want = -2.0 * reference_subsets.subset_taylor_series(
        np.stack([(-1.0) ** k / e[0] ** (k + 1) for k in range(4)]), e)
    want[0] += 1.0
    reference.assert_series_close(_flat(ts.tanh(x)), want, RTOL)


@given(multijet_pairs("any", "nonzero"))
def test_product_and_quotient_are_subset_convolutions(pair):
    a, b = pair
    reference.assert_series_close(_flat(a * b), reference_subsets.subset_convolution(_flat(a), _flat(b)), RTOL)
    reciprocal = reference_subsets.subset_taylor_series(_power_series(-1)(_flat(b)[0], b.n_variables), _flat(b))
    reference.assert_series_close(_flat(a / b), reference_subsets.subset_convolution(_flat(a), reciprocal), RTOL)
    reference.assert_series_close(_flat(a * np.float64(2.5)), 2.5 * _flat(a), RTOL)


def _naive_matmul(a, b):
    """``(A B)_S = sum_{T subset S} A_T B_{S \\ T}`` over coefficient arrays ``(2^d, M, ...)``."""
    out = np.zeros(a.shape[:2] + np.matmul(a[0, 0], b[0, 0]).shape, dtype=np.result_type(a, b))
    for mask in range(a.shape[0]):
        for sub in reference_subsets.submasks(mask):
            for m in range(a.shape[1]):
                out[mask, m] += np.matmul(a[sub, m], b[mask ^ sub, m])
    return out


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (4, 2)), ((2, 3, 4), (4, 2)),
                                               ((3, 4), (2, 4, 5)), ((4,), (4, 2)), ((3, 4), (4,))])
@pytest.mark.parametrize("d", [1, 3])
def test_matmul_is_subset_convolution_of_matrix_products(a_shape, b_shape, d):
    rng = np.random.default_rng(d)
    a = MultiJet(rng.normal(size=a_shape), rng.normal(size=((1 << d) - 1, 2) + a_shape))
    b = MultiJet(rng.normal(size=b_shape), rng.normal(size=((1 << d) - 1, 2) + b_shape)
                 + 1j * rng.normal(size=((1 << d) - 1, 2) + b_shape))
    want = _naive_matmul(a.coefficients(), b.coefficients())
    np.testing.assert_allclose((a @ b).coefficients(), want, rtol=1e-12, atol=1e-12)
    constant = np.zeros_like(b.coefficients())
    constant[0] = b.primal
    np.testing.assert_allclose((a @ b.primal).coefficients(), _naive_matmul(a.coefficients(), constant),
                               rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------
# polarisation: derived functions and layers on x + sum_i z_i v_i


def polarised(fn, x, directions):
    """``c_S`` of ``fn(x + sum_i z_i v_i)`` from one univariate Jet of order d per nonempty mask."""
    d = len(directions)
    masks = range(1, 1 << d)
    lines = np.stack([sum(directions[i] for i in range(d) if mask >> i & 1) for mask in masks])
    jet = fn(Jet.from_directions(x, lines, order=d))
    out = np.empty(((1 << d),) + jet.shape, dtype=jet.dtype)
    out[0] = jet.primal
    for mask in masks:
        rank = bin(mask).count("1")
        out[mask] = sum((-1) ** (rank - bin(sub).count("1")) * jet.series[rank - 1, sub - 1]
                        for sub in reference_subsets.submasks(mask) if sub)
    return out


def _rmsnorm(x):
    return nn.rmsnorm_forward(x)[0]


def _attention(x):
    q, k, v = x[:, :4], x[:, 4:8] * 0.5, x[:, 8:]
    return nn.attention_forward(q, k, v, n_head=2)[0]


def _cross_entropy(x):
    return nn.cross_entropy_forward(x, np.array([0, 3, 1]))[0]


DERIVED = {
    "softmax": (lambda x: ts.softmax(x, axis=-1), (3, 4)),
    "log_softmax": (lambda x: ts.log_softmax(x, axis=0), (3, 4)),
    "logsumexp": (lambda x: ts.logsumexp(x, axis=-1), (3, 4)),
    "gelu": (ts.gelu, (5,)),
    "sigmoid": (ts.sigmoid, (5,)),
    "tanh": (ts.tanh, (5,)),
    "rmsnorm": (_rmsnorm, (3, 4)),
    "attention": (_attention, (3, 12)),
    "cross_entropy": (_cross_entropy, (3, 4)),
    "structure": (lambda x: ts.stack([x.T[1:], ts.concatenate([x[:1], x[2:] * 2.0])]).sum(axis=1)
                  .reshape(-1)[::3].mean(), (3, 3)),
    "scatter_add": (lambda x: ts.scatter_add(x * x, np.array([0, 2, 0]), (4, 4)), (3, 4)),
    "numpy_dispatch": (lambda x: np.sum(np.exp(x) * np.sqrt(x * x + 1.0), axis=0) @ np.ones(4), (3, 4)),
}


@pytest.mark.parametrize("name", sorted(DERIVED))
@pytest.mark.parametrize("d", [1, 2, 4])
def test_derived_function_matches_polarised_univariate_jets(name, d):
    fn, shape = DERIVED[name]
    rng = np.random.default_rng(d)
    x = rng.uniform(-1, 1, shape)
    directions = rng.uniform(-1, 1, (d,) + shape)
    got = fn(MultiJet.from_directions(x, directions))
    assert isinstance(got, MultiJet)
    want = polarised(fn, x, directions)
    np.testing.assert_allclose(got.coefficients()[:, 0], want, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("name", ["softmax", "gelu", "rmsnorm", "cross_entropy"])
def test_mixed_partial_matches_nested_central_differences(name):
    fn, shape = DERIVED[name]
    rng = np.random.default_rng(7)
    x, v = rng.uniform(-1, 1, shape), rng.uniform(-1, 1, (2,) + shape)
    got = fn(MultiJet.from_directions(x, v)).coefficients()[:, 0]

    def g(a, b):
        return np.asarray(fn(x + a * v[0] + b * v[1]))

    def richardson(difference, h=2e-3):
        """Central differences have error ``a h^2 + O(h^4)``: ``(4 D(h/2) - D(h)) / 3`` removes ``a``.
        Left: ~h^4 |f^(6)| ~ 1e-10, and rounding ~eps/h^2 ~ 1e-9."""
        return (4.0 * difference(h / 2) - difference(h)) / 3.0
    first = [richardson(lambda h: (g(h, 0) - g(-h, 0)) / (2 * h)),
             richardson(lambda h: (g(0, h) - g(0, -h)) / (2 * h))]
    mixed = richardson(lambda h: (g(h, h) - g(h, -h) - g(-h, h) + g(-h, -h)) / (4 * h * h))
    for mask, want in zip([1, 2, 3], first + [mixed]):
        np.testing.assert_allclose(got[mask], want, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", sorted(DERIVED) + sorted(SERIES))
def test_one_variable_is_jet_of_order_one(name):
    fn = DERIVED[name][0] if name in DERIVED else SERIES[name][0]
    shape = DERIVED[name][1] if name in DERIVED else (4,)
    rng = np.random.default_rng(3)
    x, v = rng.uniform(0.5, 1.5, shape), rng.uniform(-1, 1, (1,) + shape)
    multi, jet = fn(MultiJet.from_directions(x, v)), fn(Jet.from_directions(x, v, order=1))
    np.testing.assert_allclose(multi.primal, jet.primal, rtol=1e-14)
    np.testing.assert_allclose(multi.series, jet.series, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------
# construction, description, errors


def test_constructors_and_description():
    x = MultiJet.from_directions(np.zeros(3), np.eye(3)[:2])
    assert (x.n_variables, x.order, x.n_directions, x.shape) == (2, 2, 1, (3,))
    assert repr(x) == "MultiJet(n_variables=2, n_directions=1, shape=(3,), dtype=float64)"
    np.testing.assert_array_equal(x.coefficient([1]), [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(x.coefficient(0b11), np.zeros((1, 3)))
    np.testing.assert_array_equal(x.derivatives(), x.coefficients())
    c = MultiJet.constant(np.ones(2), n_variables=3, n_directions=2)
    assert c.series.shape == (7, 2, 2) and not np.any(c.series)
    assert isinstance(ts.primal(x), np.ndarray) and np.max(ts.primal(x)) == 0.0   # comparisons: on the primal


@pytest.mark.parametrize("make, message", [
    (lambda: MultiJet(np.zeros(2), np.zeros((4, 1, 2))), "2\\^d - 1 rows"),
    (lambda: MultiJet(np.zeros(2), np.zeros((3, 1, 3))), "series must have shape"),
    (lambda: MultiJet.constant(0.0, n_variables=21), "1..20"),
    (lambda: MultiJet.constant(0.0, n_variables=0), "1..20"),
    (lambda: MultiJet.from_directions(np.zeros(2), np.zeros((2, 3))), "directions must have shape"),
    (lambda: MultiJet.from_directions(np.zeros(2), np.full((2, 2), np.inf)), "finite"),
    (lambda: MultiJet.from_directions(np.zeros(2), np.eye(2)).coefficient([2]), "variable index"),
    (lambda: MultiJet.from_directions(np.zeros(2), np.eye(2)) + Jet.constant(np.zeros(2), 3), "types"),
    (lambda: MultiJet.constant(np.zeros(2), 2) * MultiJet.constant(np.zeros(2), 3), "orders"),
    (lambda: ts.log(MultiJet.constant(-np.ones(2), 2)), "log"),
])
def test_bad_input_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_every_jet_rule_has_a_multijet_rule():
    from taylorsketch.multijet_rules import LIFTED, LINEAR, MULTI_RULES
    from taylorsketch.rules import RULES
    assert set(MULTI_RULES) == set(RULES) == set(LINEAR) | set(LIFTED)


# ----------------------------------------------------------------------------
# the optimiser


def test_fused_adam_step_matches_the_step_in_multijet_arithmetic():
    from reference import adam_reference_step
    rng = np.random.default_rng(5)
    d, n = 3, 6

    def draw():
        return MultiJet(rng.normal(size=n), 0.3 * rng.normal(size=((1 << d) - 1, 2, n)))
    p, g1, g2 = draw(), draw(), draw()
    opt = ts.Adam(total_steps=4)
    want_p, m, v = p, MultiJet.constant(np.zeros(n), d, 2), MultiJet.constant(np.zeros(n), d, 2)
    got = MultiJet(p.primal.copy(), p.series.copy())
    for step, g in enumerate([g1, g2]):
        opt.step(got, g)
        want_p, m, v = adam_reference_step(want_p, m, v, g, step, opt)
    np.testing.assert_allclose(got.coefficients(), want_p.coefficients(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(opt.v.coefficients(), v.coefficients(), rtol=1e-12, atol=1e-14)


def test_adam_step_in_slices_of_parameters_is_the_same(monkeypatch):
    import taylorsketch.multijet_rules as multijet_rules
    rng = np.random.default_rng(6)
    p = MultiJet(rng.normal(size=10), rng.normal(size=(7, 1, 10)))
    g = MultiJet(rng.normal(size=10), rng.normal(size=(7, 1, 10)))
    whole, sliced = (MultiJet(p.primal.copy(), p.series.copy()) for _ in range(2))
    ts.Adam(total_steps=3).step(whole, g)
    monkeypatch.setattr(multijet_rules, "MULTIJET_ADAM_CHUNK", 3 * 7 * 3)   # 3 parameters per slice
    ts.Adam(total_steps=3).step(sliced, g)
    np.testing.assert_array_equal(sliced.coefficients(), whole.coefficients())
