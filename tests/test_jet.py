"""The ``Jet`` type: construction, every operator, indexing, reductions, shape
operations, numpy interoperability, shared-primal batches and bad input.

Each operation in ``OPERATIONS`` is checked against two independent oracles
applied to the *plain numpy* expression (the same lambda on arrays): the
64-point finite-difference stencil on a circle of complex steps, to order 12,
and real-line central differences with Richardson extrapolation, to order 4
(``reference.circle_coefficients``, ``reference.richardson_coefficients``).
Their tolerances are the oracles' own rounding bounds (see ``reference.py``).
Products are also checked against exact Cauchy sums at random orders 0..12.

Shape legend: K = order, M = number of directions, S = primal shape.
"""

import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference
import strategies
import taylorsketch as ts
from taylorsketch import Jet

ORDER = 12

_rng = np.random.default_rng(2026)
C4 = _rng.uniform(-1, 1, 4)
C34 = _rng.uniform(-1, 1, (3, 4))
C34_NONZERO = _rng.choice([-1, 1], (3, 4)) * _rng.uniform(1, 2, (3, 4))
C23 = _rng.uniform(-1, 1, (2, 3))
C45 = _rng.uniform(-1, 1, (4, 5))
C245 = _rng.uniform(-1, 1, (2, 4, 5))
C234 = _rng.uniform(-1, 1, (2, 3, 4))
MASK3 = np.array([True, False, True])
MASK4 = np.array([False, True, True, False])
MASK5 = np.array([True, True, False, False, True])
MASK34 = _rng.uniform(size=(3, 4)) > 0.5
MASK345 = _rng.uniform(size=(3, 4, 5)) > 0.5


def op(fn, *inputs, radius=1.0):
    """An operation: ``fn`` (run on arrays and on Jets alike), its inputs as
    ``(shape, domain)`` and the radius of the circle oracle (at most ~half the
    distance in ``t`` to the nearest singularity, given |v| <= 0.71)."""
    return fn, list(inputs), radius


ANY, POSITIVE, NONZERO = reference.ANY, reference.POSITIVE, reference.NONZERO

OPERATIONS = {
    # + - * / and unary, with numpy broadcasting and arrays/scalars on either side
    "add": op(lambda x, y: x + y, ((3, 4), ANY), ((4,), ANY)),
    "add_array": op(lambda x: x + C34, ((3, 4), ANY)),
    "radd_array": op(lambda x: C4 + x, ((3, 4), ANY)),
    "radd_scalar": op(lambda x: 1.5 + x, ((3, 4), ANY)),
    "sub": op(lambda x, y: x - y, ((3, 1), ANY), ((4,), ANY)),
    "sub_array": op(lambda x: x - C4, ((3, 4), ANY)),
    "rsub_scalar": op(lambda x: 2 - x, ((3, 4), ANY)),
    "rsub_array": op(lambda x: C34 - x, ((3, 4), ANY)),
    "mul": op(lambda x, y: x * y, ((3, 4), ANY), ((3, 4), ANY)),
    "mul_broadcast": op(lambda x, y: x * y, ((2, 1, 4), ANY), ((3, 1), ANY)),
    "mul_scalar_jet": op(lambda x, y: x * y, ((), ANY), ((3, 4), ANY)),
    "mul_array": op(lambda x: x * C34, ((3, 4), ANY)),
    "rmul_array": op(lambda x: C4 * x, ((3, 4), ANY)),
    "rmul_scalar": op(lambda x: 2.0 * x, ((3, 4), ANY)),
    "mul_complex_scalar": op(lambda x: x * (1 - 2j), ((3, 4), ANY)),
    "div": op(lambda x, y: x / y, ((3, 4), ANY), ((3, 4), NONZERO), radius=0.9),
    "div_broadcast": op(lambda x, y: x / y, ((3, 4), ANY), ((3, 1), NONZERO), radius=0.9),
    "div_array": op(lambda x: x / C34_NONZERO, ((3, 4), ANY)),
    "rdiv_scalar": op(lambda x: 2.0 / x, ((3, 4), NONZERO), radius=0.9),
    "rdiv_array": op(lambda x: C34 / x, ((3, 4), NONZERO), radius=0.9),
    "neg": op(lambda x: -x, ((3, 4), ANY)),
    "pos": op(lambda x: +x, ((3, 4), ANY)),
    "chain": op(lambda x, y: (x - y) * (x + 2.0) / (y * y + 3.0), ((3, 4), ANY), ((4,), ANY),
                radius=0.9),
    # ** with integer (products), negative integer (a division) and real (the power rule) exponents
    "pow_int": op(lambda x: x ** 3, ((3, 4), ANY)),
    "pow_int_large": op(lambda x: x ** 7, ((3, 4), ANY)),
    "pow_integer_float": op(lambda x: x ** 2.0, ((3, 4), ANY)),
    "pow_zero": op(lambda x: x ** 0, ((3, 4), ANY)),
    "pow_one": op(lambda x: x ** 1, ((3, 4), ANY)),
    "pow_neg_int": op(lambda x: x ** -2, ((3, 4), NONZERO), radius=0.9),
    "pow_real": op(lambda x: x ** 2.5, ((3, 4), POSITIVE), radius=0.9),
    "pow_neg_real": op(lambda x: x ** -0.7, ((3, 4), POSITIVE), radius=0.9),
    "pow_array_exponent": op(lambda x: x ** C34, ((3, 4), POSITIVE), radius=0.9),
    "rpow": op(lambda x: 2.0 ** x, ((3, 4), ANY), radius=4.0),
    # @: Jet@array, array@Jet, Jet@Jet, batched leading axes and 1-D operands
    "matmul_jet_array": op(lambda x: x @ C45, ((3, 4), ANY)),
    "matmul_array_jet": op(lambda x: C23 @ x, ((3, 4), ANY)),
    "matmul_jet_jet": op(lambda x, y: x @ y, ((3, 4), ANY), ((4, 5), ANY)),
    "matmul_activation_weight": op(lambda x, w: x @ w.T, ((8, 16), ANY), ((16, 16), ANY)),
    "matmul_batched": op(lambda x, y: x @ y, ((2, 3, 4), ANY), ((2, 4, 5), ANY)),
    "matmul_batch_broadcast": op(lambda x, y: x @ y, ((2, 1, 3, 4), ANY), ((3, 4, 2), ANY)),
    "matmul_batched_matrix": op(lambda x, y: x @ y, ((2, 3, 4), ANY), ((4, 5), ANY)),
    "matmul_matrix_batched": op(lambda x, y: x @ y, ((3, 4), ANY), ((2, 4, 5), ANY)),
    "matmul_batched_array_jet": op(lambda x: C234 @ x, ((4, 5), ANY)),
    "matmul_jet_batched_array": op(lambda x: x @ C245, ((3, 4), ANY)),
    "matmul_vector_matrix": op(lambda x, y: x @ y, ((4,), ANY), ((4, 5), ANY)),
    "matmul_matrix_vector": op(lambda x, y: x @ y, ((3, 4), ANY), ((4,), ANY)),
    "matmul_vector_vector": op(lambda x, y: x @ y, ((4,), ANY), ((4,), ANY)),
    "matmul_vector_batched": op(lambda x, y: x @ y, ((4,), ANY), ((2, 4, 5), ANY)),
    "matmul_batched_vector": op(lambda x, y: x @ y, ((2, 3, 4), ANY), ((4,), ANY)),
    "matmul_array_vector_jet": op(lambda x: C4 @ x, ((4, 5), ANY)),
    "matmul_jet_array_vector": op(lambda x: x @ C4, ((3, 4), ANY)),
    # sum / mean over axes, keepdims, negative axes
    "sum": op(lambda x: x.sum(), ((3, 4, 2), ANY)),
    "sum_axis": op(lambda x: x.sum(axis=0), ((3, 4, 2), ANY)),
    "sum_negative_axis_keepdims": op(lambda x: x.sum(axis=-1, keepdims=True), ((3, 4, 2), ANY)),
    "sum_axes": op(lambda x: x.sum(axis=(0, -1)), ((3, 4, 2), ANY)),
    "sum_axes_keepdims": op(lambda x: x.sum(axis=(1, 2), keepdims=True), ((3, 4, 2), ANY)),
    "mean": op(lambda x: x.mean(), ((3, 4, 2), ANY)),
    "mean_axis": op(lambda x: x.mean(axis=1), ((3, 4, 2), ANY)),
    "mean_negative_axis_keepdims": op(lambda x: x.mean(axis=-2, keepdims=True), ((3, 4, 2), ANY)),
    "mean_axes": op(lambda x: x.mean(axis=(0, 2)), ((3, 4, 2), ANY)),
    # reshape, transpose, .T
    "reshape": op(lambda x: x.reshape(6, 4), ((3, 4, 2), ANY)),
    "reshape_tuple": op(lambda x: x.reshape((4, 6)), ((3, 4, 2), ANY)),
    "reshape_inferred": op(lambda x: x.reshape(-1, 2), ((3, 4, 2), ANY)),
    "reshape_to_scalar": op(lambda x: x.reshape(()), ((1, 1), ANY)),
    "transpose": op(lambda x: x.transpose(), ((3, 4, 2), ANY)),
    "transpose_axes": op(lambda x: x.transpose(1, 2, 0), ((3, 4, 2), ANY)),
    "transpose_axes_tuple": op(lambda x: x.transpose((2, 0, 1)), ((3, 4, 2), ANY)),
    "transpose_negative_axes": op(lambda x: x.transpose(-1, 0, 1), ((3, 4, 2), ANY)),
    "T": op(lambda x: x.T, ((3, 4, 2), ANY)),
    # indexing: basic, integer arrays, booleans, Ellipsis, newaxis, mixed advanced
    "index_int": op(lambda x: x[1], ((3, 4, 5), ANY)),
    "index_negative_int": op(lambda x: x[-1, -2], ((3, 4, 5), ANY)),
    "index_slices": op(lambda x: x[1:, ::2], ((3, 4, 5), ANY)),
    "index_reversed": op(lambda x: x[::-1, 1:3, -2], ((3, 4, 5), ANY)),
    "index_int_array": op(lambda x: x[np.array([0, 2, 2])], ((3, 4, 5), ANY)),
    "index_list": op(lambda x: x[[2, 0]], ((3, 4, 5), ANY)),
    "index_int_array_2d": op(lambda x: x[np.array([[0, 1], [2, 2]])], ((3, 4, 5), ANY)),
    "index_bool_full": op(lambda x: x[MASK345], ((3, 4, 5), ANY)),
    "index_bool_leading": op(lambda x: x[MASK34], ((3, 4, 5), ANY)),
    "index_bool_axis": op(lambda x: x[:, MASK4], ((3, 4, 5), ANY)),
    "index_ellipsis": op(lambda x: x[..., 1], ((3, 4, 5), ANY)),
    "index_ellipsis_middle": op(lambda x: x[1, ..., 2], ((3, 4, 5), ANY)),
    "index_ellipsis_bool": op(lambda x: x[..., MASK5], ((3, 4, 5), ANY)),
    "index_ellipsis_int_array": op(lambda x: x[..., [0, 2]], ((3, 4, 5), ANY)),
    "index_newaxis": op(lambda x: x[None, ..., 0], ((3, 4, 5), ANY)),
    "index_newaxis_middle": op(lambda x: x[:, None, 2], ((3, 4, 5), ANY)),
    "index_advanced_adjacent": op(lambda x: x[:, [0, 1, 3], [4, 0, 2]], ((3, 4, 5), ANY)),
    "index_advanced_separated": op(lambda x: x[[0, 2], :, [1, 3]], ((3, 4, 5), ANY)),
    "index_int_and_array_separated": op(lambda x: x[1, :, [0, 4]], ((3, 4, 5), ANY)),
    "index_bool_and_int": op(lambda x: x[MASK3, 2], ((3, 4, 5), ANY)),
    "index_bool_and_array": op(lambda x: x[MASK3, :, [0, 1]], ((3, 4, 5), ANY)),
}

@pytest.mark.parametrize("kind", reference.DIRECTION_KINDS)
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operation_matches_finite_differences(name, kind):
    fn, inputs, radius = OPERATIONS[name]
    points, directions = reference.make_inputs(name, inputs, kind)
    reference.check_against_oracles(fn, points, directions, radius)


# ----------------------------------------------------------------------------
# exact: products are Cauchy sums, at every order 0..12


def _aligned_coefficients(*jets):
    """Coefficients ``(K+1, M, *S)`` with length-1 axes inserted after M, so that the
    primal shapes broadcast as numpy broadcasts them (from the right)."""
    ndim = max(j.ndim for j in jets)
    return [c.reshape(c.shape[:2] + (1,) * (ndim - j.ndim) + j.shape)
            for j, c in ((j, j.coefficients()) for j in jets)]


@given(st.data())
def test_product_is_cauchy_sum(data):
    shape_a, shape_b = data.draw(strategies.broadcastable_shape_pairs).input_shapes
    order = data.draw(strategies.orders)
    n_dirs = data.draw(strategies.n_directions)
    dtype = data.draw(strategies.dtypes)
    a = data.draw(strategies.jets(shape_a, order, n_dirs, dtype))
    b = data.draw(strategies.jets(shape_b, order, n_dirs, dtype))
    got = (a * b).coefficients()
    ca, cb = _aligned_coefficients(a, b)
    want = np.array([sum(ca[i] * cb[r - i] for i in range(r + 1)) for r in range(order + 1)])
    # at most 13 products of factors |.| <= 2: rounding <= 13 * eps * 52 ~ 1.5e-13
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-12)


@given(st.data())
def test_quotient_times_divisor_is_dividend(data):
    shape_a, shape_b = data.draw(strategies.broadcastable_shape_pairs).input_shapes
    order = data.draw(strategies.orders)
    n_dirs = data.draw(strategies.n_directions)
    dtype = data.draw(strategies.dtypes)
    a = data.draw(strategies.jets(shape_a, order, n_dirs, dtype))
    b = data.draw(strategies.jets(shape_b, order, n_dirs, dtype, domain="nonzero"))
    quotient = a / b
    want = (a + 0.0 * b).coefficients()                       # a broadcast to the result's shape
    # The quotient grows like 3^k (|b_0| >= 0.5, |b_k| <= 1); multiplying back sums 13
    # terms of size |q| |b| <= 2 max|q|, so the rounding is ~ 13 * eps * 2 max|q| < 1e-14 max|q|.
    scale = max(1.0, float(np.max(np.abs(quotient.coefficients()))))
    np.testing.assert_allclose((quotient * b).coefficients(), want, rtol=0, atol=1e-12 * scale)


@given(st.data())
def test_matmul_is_cauchy_sum_of_matrix_products(data):
    order = data.draw(strategies.orders)
    n_dirs = data.draw(strategies.n_directions)
    dtype = data.draw(strategies.dtypes)
    n, k, p = data.draw(st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)))
    batch = data.draw(st.sampled_from([(), (2,)]))
    a = data.draw(strategies.jets(batch + (n, k), order, n_dirs, dtype))
    b = data.draw(strategies.jets((k, p), order, n_dirs, dtype))
    got = (a @ b).coefficients()
    ca, cb = _aligned_coefficients(a, b)
    want = np.array([sum(ca[i] @ cb[r - i] for i in range(r + 1)) for r in range(order + 1)])
    # at most 13 * 4 products of factors |.| <= 2: rounding <= 52 * eps * 208 ~ 2.4e-12
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-11)


@pytest.mark.parametrize("exponent", [2, 3, 5, 8])
def test_integer_power_is_repeated_product(exponent):
    # |x_k / x_0| <= 0.4 keeps 1/x^n well conditioned (its terms do not dwarf its value)
    x = Jet(np.array([1.5, -1.3]), np.random.default_rng(exponent).uniform(-0.5, 0.5, (ORDER, 3, 2)))
    product = x
    for _ in range(exponent - 1):
        product = product * x
    flat = lambda jet: jet.coefficients().reshape(ORDER + 1, -1)  # noqa: E731  (K+1, M*S)
    reference.assert_series_close(flat(x ** exponent), flat(product), 1e-12)
    # The oracle of x^-n is (1/x)^n: 1/x as a geometric series in u/x_0 (|u/x_0| <= 0.4,
    # sum of its terms' magnitudes <= 3.9 |1/x|), then n - 1 Cauchy products.  The
    # geometric series of the product itself, 1/(x^n), is not an oracle: x^n - x_0^n is
    # large beside x_0^n, and for n = 8 the magnitudes of its terms reach 2.0e6 times the
    # result (error bound 4.4e-10; measured 1.4e-10 against a 60-digit mpmath value, while
    # x ** -8 is within 2.6e-14 of it, and (1/x)^8 within 1.1e-15).
    inverse = reference.reciprocal(flat(x))
    oracle = inverse
    for _ in range(exponent - 1):
        oracle = reference.cauchy(oracle, inverse)
    reference.assert_series_close(flat(x ** -exponent), oracle, 1e-12)
    np.testing.assert_array_equal(flat(x ** 0), np.eye(ORDER + 1, 1).repeat(6, axis=1))


# ----------------------------------------------------------------------------
# shared-primal batches: M directions at once equal M single-direction runs


def _mlp(x, w1, w2):
    h = ts.tanh(x @ w1.T) * 0.5 + ts.gelu(x @ w1.T) ** 2
    return ts.log_softmax(h @ w2.T / (1.0 + (x * x).mean(axis=-1, keepdims=True)), axis=-1)


BATCHED = {
    "mul_div": lambda x, w1, w2: x * x / (x ** 2 + 2.0),
    "pow": lambda x, w1, w2: (x * x + 1.0) ** -1.5,
    "matmul_jet_jet": lambda x, w1, w2: x @ w1.T,
    "index_sum": lambda x, w1, w2: x[:, [0, 2]].sum(axis=0) * w2[1:3, 0],
    "mlp": _mlp,
}


@pytest.mark.parametrize("name", sorted(BATCHED))
def test_batch_of_directions_equals_separate_runs(name):
    fn = BATCHED[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    shapes = [(5, 4), (6, 4), (3, 6)]
    points = [rng.normal(size=s) for s in shapes]
    directions = [rng.normal(size=(4,) + s) + 1j * rng.normal(size=(4,) + s) for s in shapes]
    batched = reference.run_jets(fn, points, directions, order=5)
    for m in range(4):
        single = reference.run_jets(fn, points, [v[m:m + 1] for v in directions], order=5)
        # the same arithmetic, grouped differently by BLAS: rounding only
        np.testing.assert_allclose(batched[:, m], single[:, 0], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------
# construction and description


def test_constructor_and_description():
    primal = np.arange(6.0).reshape(2, 3)
    series = np.ones((4, 5, 2, 3))
    x = Jet(primal, series)
    assert (x.order, x.n_directions, x.shape, x.ndim, x.size, len(x)) == (4, 5, (2, 3), 2, 6, 2)
    assert x.dtype == np.float64
    assert repr(x) == "Jet(order=4, n_directions=5, shape=(2, 3), dtype=float64)"
    coefficients = x.coefficients()
    assert coefficients.shape == (5, 5, 2, 3)
    np.testing.assert_array_equal(coefficients[0], np.broadcast_to(primal, (5, 2, 3)))
    np.testing.assert_array_equal(coefficients[1:], series)
    factorials = np.array([1, 1, 2, 6, 24.0])
    np.testing.assert_array_equal(x.derivatives(), coefficients * factorials[:, None, None, None])


def test_integer_and_complex_inputs_are_promoted():
    x = Jet(np.array([1, 2]), np.zeros((1, 1, 2), dtype=int))
    assert x.primal.dtype == np.float64 and x.series.dtype == np.float64
    z = Jet(np.array([1 + 1j]), np.zeros((2, 1, 1)))
    assert z.series.dtype == np.complex128


def test_from_directions_and_constant():
    x0 = np.array([1.0, 2.0])
    v = np.array([[1.0, 0.0], [0.5j, 2.0]])
    x = Jet.from_directions(x0, v, order=3)
    want = np.zeros((4, 2, 2), dtype=complex)
    want[0] = x0
    want[1] = v
    np.testing.assert_array_equal(x.coefficients(), want)
    c = Jet.constant(x0, order=3, n_directions=2)
    np.testing.assert_array_equal(c.series, np.zeros((3, 2, 2)))
    assert Jet.from_directions(x0, v, order=0).series.shape == (0, 2, 2)


def test_order_zero_jets_are_plain_values():
    x = Jet.from_directions(np.array([[1.0, 2.0]]), np.ones((1, 1, 2)), order=0)
    y = ts.exp(x @ x.T) / x.sum()
    assert y.order == 0
    np.testing.assert_allclose(y.primal, np.exp(np.array([[5.0]])) / 3.0)


# ----------------------------------------------------------------------------
# numpy interoperability


@pytest.fixture
def jet():
    rng = np.random.default_rng(7)
    return Jet(rng.uniform(1, 2, (3, 4)), rng.normal(size=(3, 2, 3, 4)))


@pytest.mark.parametrize("expression", [
    lambda j: np.ones((3, 4)) * j,
    lambda j: np.ones(4) + j,
    lambda j: np.ones((3, 4)) - j,
    lambda j: np.ones((3, 4)) / j,
    lambda j: np.float64(2.0) * j,
    lambda j: 2.0 * j,
    lambda j: 1 + j,
    lambda j: np.ones((2, 3)) @ j,
    lambda j: np.exp(j),
    lambda j: np.multiply(j, np.ones(4)),
    lambda j: np.power(j, 0.5),
    lambda j: np.sum(j, axis=0),
    lambda j: np.mean(j),
    lambda j: np.transpose(j),
    lambda j: np.reshape(j, (12,)),
    lambda j: np.concatenate([j, np.zeros((1, 4))]),
    lambda j: np.stack([np.zeros((3, 4)), j]),
], ids=["array*jet", "array+jet", "array-jet", "array/jet", "float64*jet", "2.0*jet", "1+jet",
        "A@jet", "np.exp", "np.multiply", "np.power", "np.sum", "np.mean", "np.transpose",
        "np.reshape", "np.concatenate", "np.stack"])
def test_numpy_operands_give_jets(jet, expression):
    out = expression(jet)
    assert isinstance(out, Jet), f"got {type(out).__name__}"
    assert out.order == 3 and out.n_directions == 2


def test_numpy_operands_give_the_right_values(jet):
    a = np.arange(1.0, 13.0).reshape(3, 4)
    np.testing.assert_array_equal((a * jet).series, a * jet.series)
    np.testing.assert_array_equal((2.0 * jet).series, 2.0 * jet.series)
    np.testing.assert_array_equal((1 + jet).primal, 1 + jet.primal)
    np.testing.assert_array_equal((1 + jet).series, jet.series)
    np.testing.assert_allclose((a.T @ jet).series, np.einsum("ij,kmjl->kmil", a.T, jet.series))
    np.testing.assert_allclose(np.exp(jet).coefficients(), ts.exp(jet).coefficients())


def test_jet_is_not_an_array(jet):
    with pytest.raises(TypeError, match="a Jet is not an array"):
        np.asarray(jet)
    with pytest.raises(TypeError, match="a Jet is not an array"):
        np.array(jet)


def test_unsupported_ufunc_is_refused(jet):
    with pytest.raises(TypeError):
        np.maximum(jet, 0.0)


# ----------------------------------------------------------------------------
# bad input: errors that name the problem


def _jet(order=3, n_dirs=1, shape=(3,), primal=1.0):
    return Jet(np.full(shape, primal), np.ones((order, n_dirs) + shape))


@pytest.mark.parametrize("expression", [
    lambda: _jet(order=3) + _jet(order=4),
    lambda: _jet(order=3) * _jet(order=2),
    lambda: _jet(order=3, shape=(3, 3)) @ _jet(order=5, shape=(3, 3)),
], ids=["add", "mul", "matmul"])
def test_mixing_orders_is_refused(expression):
    with pytest.raises(ValueError, match="different orders"):
        expression()


@pytest.mark.parametrize("expression", [
    lambda: _jet(n_dirs=1) + _jet(n_dirs=2),
    lambda: _jet(n_dirs=3) / _jet(n_dirs=2),
    lambda: _jet(n_dirs=1, shape=(3, 3)) @ _jet(n_dirs=4, shape=(3, 3)),
], ids=["add", "div", "matmul"])
def test_mixing_direction_counts_is_refused(expression):
    with pytest.raises(ValueError, match="different numbers of directions"):
        expression()


@pytest.mark.parametrize("expression", [
    lambda: _jet(shape=(3,)) + _jet(shape=(4,)),
    lambda: _jet(shape=(3,)) * np.ones(4),
    lambda: np.ones((2, 4)) - _jet(shape=(3,)),
    lambda: _jet(shape=(2, 3)) / _jet(shape=(3, 2)),
], ids=["jet+jet", "jet*array", "array-jet", "jet/jet"])
def test_shapes_that_do_not_broadcast_are_refused(expression):
    with pytest.raises(ValueError, match=r"could not be broadcast together with shapes"):
        expression()


def test_matmul_core_dimension_mismatch_is_refused():
    with pytest.raises(ValueError, match="mismatch in its core dimension"):
        _jet(shape=(2, 3)) @ _jet(shape=(4, 2))


def test_division_by_zero_primal_is_refused():
    with pytest.raises(ValueError, match="division.*divisor's primal is 0"):
        _jet() / Jet(np.array([1.0, 0.0, 2.0]), np.ones((3, 1, 3)))
    with pytest.raises(ValueError, match="divisor's primal is 0"):
        1.0 / _jet(primal=0.0)
    with pytest.raises(ValueError, match="divisor's primal is 0"):
        _jet(primal=0.0) ** -2


@pytest.mark.parametrize("primal", [0.0, -1.0])
@pytest.mark.parametrize("exponent", [0.5, -1.5, 2.7])
def test_real_power_at_non_positive_primal_is_refused(primal, exponent):
    with pytest.raises(ValueError, match=r"x\*\*.*not analytic \(a real power needs x_0 > 0\)"):
        _jet(primal=primal) ** exponent


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match=r"series must have shape \(order, n_directions, \*primal.shape\)"):
        Jet(np.zeros(3), np.zeros((2, 1, 4)))
    with pytest.raises(ValueError, match="series must have shape"):
        Jet(np.zeros(3), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"directions must have shape \(M, \*x.shape\)"):
        Jet.from_directions(np.zeros(3), np.zeros(3), order=2)
    for order in (-1, 2.5, True):
        with pytest.raises(ValueError, match="order must be a non-negative integer"):
            Jet.from_directions(np.zeros(3), np.zeros((1, 3)), order=order)
    with pytest.raises(TypeError, match="object array"):
        _jet() + np.array([object(), object(), object()])
    with pytest.raises(TypeError, match="dtype"):
        _jet() * np.array(["a", "b", "c"])


def test_bad_use_is_refused():
    with pytest.raises(TypeError, match="cannot be used as an index"):
        _jet()[_jet()]
    with pytest.raises(TypeError, match="len"):
        len(_jet(shape=()))
    with pytest.raises(TypeError, match="unsupported exponent"):
        _jet() ** "2"
    with pytest.raises(ValueError, match="out of bounds"):
        _jet(shape=(2, 3)).sum(axis=2)


def test_reshape_accepts_an_array_shape_and_power_a_0d_array_exponent():
    x = ts.Jet.from_directions(np.arange(1.0, 4.0), np.ones((2, 3)), order=2)
    assert x.reshape(np.array([3, 1])).shape == (3, 1)
    assert x.reshape(np.array(3)).shape == (3,)
    assert np.allclose((x ** np.array(2.5)).coefficients(), (x ** 2.5).coefficients(), rtol=0, atol=0)


def test_a_number_to_the_power_of_a_jet():
    x = ts.Jet.from_directions(np.array(0.5), np.ones((1,)), order=4)
    expected = np.exp(np.log(3.0) * 0.5) * np.log(3.0) ** np.arange(5) / np.array([1, 1, 2, 6, 24])
    assert np.allclose((3.0 ** x).coefficients()[:, 0], expected, rtol=1e-14)
    with pytest.raises(ValueError, match="positive base"):
        (-2.0) ** x


_INDICES = [
    (1, slice(None), [0, 4]), ([0, 2], 1), (1, [0, 3]), ([1, 0], [2, 3]), (slice(None), [1, 1, 0]),
    (slice(None), [0, 1], [4, 2]), ([0, 2], slice(None), [1, 3]), (Ellipsis, [0, 4]), (None, [2, 0], 1),
    (np.array([[0, 1], [2, 2]]),), (slice(1, 3), None, 2), (np.array([True, False, True]),),
    (np.array([2, 0, 2, 1]),),                          # repeated rows, as an embedding's gradient
]


@pytest.mark.parametrize("index", _INDICES, ids=str)
def test_indexing_and_its_adjoint_act_on_every_coefficient_as_on_an_array(index):
    """getitem and scatter_add against numpy on each c_r of each direction separately
    (the rules index the series directly or with (K, M) moved to the end, by numpy's
    placement of advanced-index axes)."""
    rng = np.random.default_rng(0)
    x = ts.Jet(rng.normal(size=(3, 4, 5)), rng.normal(size=(2, 3, 3, 4, 5)) + 1j * rng.normal(size=(2, 3, 3, 4, 5)))
    y = x[index]
    for k in range(2):
        for m in range(3):
            np.testing.assert_array_equal(y.series[k, m], x.series[k, m][index])
    np.testing.assert_array_equal(y.primal, x.primal[index])
    back = ts.scatter_add(y, index, x.shape)
    for k in range(2):
        for m in range(3):
            want = np.zeros(x.shape, dtype=complex)
            np.add.at(want, index, y.series[k, m])
            np.testing.assert_array_equal(back.series[k, m], want)


@pytest.mark.parametrize("n_dirs, shape, complex_", [(1, (27, 16), True), (64, (27, 16), True), (3, (27, 16), False),
                                                     (2, (12,), False), (2, (12, 2, 3), True)])
def test_scatter_add_of_repeated_rows_is_np_add_at_to_the_bit(n_dirs, shape, complex_):
    """An embedding's gradient: rows of the leading axis, repeated and negative, added
    by :func:`kernels.add_rows`: ``np.add.at`` on the primal and on every coefficient
    to the bit, for signed and unsigned rows (the latter by ``np.add.at`` itself)."""
    rng = np.random.default_rng(n_dirs)
    rows = np.array([3, 5, 3, 1, -1, 7, 9, 3])
    value_shape = (8,) + shape[1:]
    series = rng.normal(size=(3, n_dirs) + value_shape)
    series = series + 1j * rng.normal(size=series.shape) if complex_ else series
    x = ts.Jet(rng.normal(size=value_shape), series)
    want0, want = np.zeros(shape), np.zeros((3, n_dirs) + shape, dtype=series.dtype)
    np.add.at(want0, rows, x.primal)
    np.add.at(want, (slice(None), slice(None), rows), x.series)
    for index in (rows, rows.astype(np.int32), (rows % shape[0]).astype(np.uint8)):
        got = ts.scatter_add(x, index, shape)
        assert np.array_equal(got.primal, want0) and np.array_equal(got.series, want)
        assert got.series.dtype == want.dtype


def test_scatter_add_of_a_row_out_of_range_is_numpys_error():
    x = ts.Jet(np.ones((2, 3)), np.ones((1, 1, 2, 3)))
    for rows in (np.array([0, 4]), np.array([-5, 0])):
        with pytest.raises(IndexError, match="out of bounds"):
            ts.scatter_add(x, rows, (4, 3))
