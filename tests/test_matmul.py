"""The jet matrix product: every layout the rule meets, against a plain Cauchy sum,
and each direction's series independent, to the bit, of the directions beside it.

The rule (:func:`taylorsketch.rules.matmul_rule`) folds the orders and directions
into the rows of GEMMs against the primals and batches the cross terms per order;
the operands here cover what reaches it: stacks and broadcast batch axes, 1-D
operands, a constant on either side, transposed (non-contiguous) views as a
weight's ``W.T`` is, real and complex series, orders 1..12 and 100.

Tolerance.  Each coefficient ``Y_r[a, q] = sum_{i+j=r} sum_c A_i[a, c] B_j[c, q]`` is a
sum of ``n_terms = (r + 1) k`` products; both the rule and the oracle compute it in
some order, each within ``gamma_{n_terms + 2} * mag`` of the exact value (Higham,
*Accuracy and Stability*, 3.1; ``+2`` for the complex multiply), where ``mag`` is the
same sum of ``|A_i[a, c]| |B_j[c, q]|``.  So they differ by at most
``2 gamma_{n_terms + 2} mag``, an entrywise bound checked with a factor 2 to spare.

Shape legend: K = order, M = directions, (n, k) @ (k, p) per order and direction.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import strategies
from taylorsketch import Jet

EPS = np.finfo(np.float64).eps


def coefficients(x, order, n_dirs):
    """``(K+1, M, *S)`` coefficients of a Jet or of a constant array (zero series)."""
    if isinstance(x, Jet):
        return x.coefficients()
    full = np.zeros((order + 1, n_dirs) + np.shape(x), dtype=np.result_type(x, np.float64))
    full[0] = x
    return full


def cauchy_matmul(ca, cb):
    """``sum_{i+j=r} A_i @ B_j`` and the same sum of ``|A_i| @ |B_j|``, for every r, one
    direction at a time (so ``np.matmul``'s own rules for vectors and stacks apply)."""
    order, n_dirs = ca.shape[0] - 1, ca.shape[1]

    def cauchy(f):
        return np.array([[sum(f(ca[i, m], cb[r - i, m]) for i in range(r + 1)) for m in range(n_dirs)]
                         for r in range(order + 1)])
    return cauchy(np.matmul), cauchy(lambda x, y: np.matmul(abs(x), abs(y)))


def assert_matmul_close(a, b, order, n_dirs):
    got = (a @ b).coefficients()
    ca, cb = coefficients(a, order, n_dirs), coefficients(b, order, n_dirs)
    want, mag = cauchy_matmul(ca, cb)
    k = a.shape[-1]
    n_terms = (np.arange(order + 1) + 1) * k + 2
    bound = 2 * 2 * n_terms * EPS / (1 - n_terms * EPS)
    bound = bound.reshape((-1,) + (1,) * (mag.ndim - 1)) * mag
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) / np.maximum(mag, 1e-300))


@st.composite
def operand(draw, shape, order, n_dirs, dtype, transposed):
    """A Jet of ``shape``; when ``transposed``, a view of a jet stored with its last two
    axes swapped (as ``W.T`` of a contiguous weight is)."""
    if not transposed or len(shape) < 2:
        return draw(strategies.jets(shape, order, n_dirs, dtype))
    stored = draw(strategies.jets(shape[:-2] + shape[:-3:-1], order, n_dirs, dtype))
    return Jet(np.swapaxes(stored.primal, -1, -2), np.swapaxes(stored.series, -1, -2))


@st.composite
def products(draw, orders=st.integers(1, strategies.MAX_ORDER), n_dirs=strategies.n_directions):
    """``(a, b, order, n_dirs)``: a product the matmul rule meets, either side possibly a
    constant array (not both), a vector, a stack with broadcast batch axes or a view."""
    order, m = draw(orders), draw(n_dirs)
    n, k, p = draw(st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)))
    batch_a, batch_b = draw(st.sampled_from([((), ()), ((2,), ()), ((), (2,)), ((2,), (2,)),
                                             ((2, 1), (3,)), ((1,), (2,))]))
    a_shape = draw(st.sampled_from([batch_a + (n, k)] + ([(k,)] if not batch_a else [])))
    b_shape = draw(st.sampled_from([batch_b + (k, p)] + ([(k,)] if not batch_b else [])))
    dtype = draw(strategies.dtypes)
    kinds = draw(st.sampled_from([("jet", "jet"), ("jet", "array"), ("array", "jet")]))
    operands = []
    for kind, shape in zip(kinds, (a_shape, b_shape)):
        if kind == "array":
            operands.append(draw(strategies.real_arrays(shape, -2.0, 2.0)))
        else:
            operands.append(draw(operand(shape, order, m, dtype, draw(st.booleans()))))
    return operands[0], operands[1], order, m


@given(products())
def test_matmul_equals_the_cauchy_sum_of_matrix_products(product):
    a, b, order, n_dirs = product
    assert_matmul_close(a, b, order, n_dirs)


def test_matmul_at_order_100_equals_the_cauchy_sum():
    rng = np.random.default_rng(100)
    order, n_dirs = 100, 3
    for dtype in (np.float64, np.complex128):
        def jet(shape):
            series = rng.uniform(-1, 1, (order, n_dirs) + shape).astype(dtype)
            if dtype is np.complex128:
                series = series + 1j * rng.uniform(-1, 1, series.shape)
            return Jet(rng.uniform(-2, 2, shape), series)
        w = jet((5, 4))
        assert_matmul_close(jet((3, 4)), w.T, order, n_dirs)            # x @ W.T
        assert_matmul_close(jet((2, 3, 4)), jet((2, 4, 2)), order, n_dirs)
        assert_matmul_close(jet((4,)), rng.uniform(-1, 1, (4, 3)), order, n_dirs)


def direction(x, m):
    """Direction ``m`` of ``x`` alone, its series a fresh contiguous array (a separate run)."""
    if not isinstance(x, Jet):
        return x
    return Jet(x.primal, np.ascontiguousarray(x.series[:, m:m + 1]))


@given(products(n_dirs=st.just(7)), st.integers(0, 6))
def test_a_direction_does_not_depend_on_the_directions_beside_it(product, m):
    a, b, order, n_dirs = product
    together = (a @ b).series[:, m]
    alone = (direction(a, m) @ direction(b, m)).series[:, 0]
    assert np.array_equal(together, alone)
