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
from hypothesis import given, settings
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


# -- the compiled kernel of a training step's products ----------------------------------------


def paper_layouts(rng, order, n_dirs, dtype, n_pos=7):
    """The operands of the paper MicroGPT's products, as a step has them: activations,
    weights as views into one flat parameter jet (transposed for ``x @ W.T``),
    gradients, and the attention's per-head stacks, with a transposed key."""
    def series(shape):
        s = rng.uniform(-1, 1, (order, n_dirs) + shape)
        return s + 1j * rng.uniform(-1, 1, s.shape) if dtype is np.complex128 else s

    def jet(shape):
        return Jet(rng.uniform(-1, 1, shape), series(shape))
    flat = Jet(rng.uniform(-1, 1, 600), series((600,)))
    w = Jet(flat.primal[40:40 + 64 * 4].reshape(64, 4), flat.series[..., 40:40 + 64 * 4].reshape(order, n_dirs, 64, 4))
    x, h, dy = jet((n_pos, 4)), jet((n_pos, 64)), jet((n_pos, 64))
    q, k = jet((2, n_pos, 3)), jet((2, n_pos, 3))
    att = jet((2, n_pos, n_pos))
    return [(x, w.T), (h, w), (dy.T, x), (x[0], w.T), (h, w[:, 0]), (q, k.transpose((0, 2, 1))), (att, q)]


def test_the_compiled_products_equal_the_cauchy_sum_and_the_numpy_formulation():
    """Every layout of a training step at orders 1..12, real and complex, 1 and 11
    directions: the compiled kernel (matrices and the attention's stacks) against
    the oracle (to the rounding bound) and against the numpy formulation (to
    twice that).  Above ``COMPILED_MATMUL_MAX_ORDER`` the rule
    takes the numpy formulation."""
    from taylorsketch import kernels, rules
    rng = np.random.default_rng(7)
    for order in range(1, strategies.MAX_ORDER + 1):
        for dtype in (np.float64, np.complex128):
            for n_dirs in (1, 11):
                for a, b in paper_layouts(rng, order, n_dirs, dtype):
                    a0, as_, b0, bs = a.primal, a.series, b.primal, b.series
                    if a0.ndim == 1:
                        a0, as_ = a0[None, :], as_[..., None, :]
                    if b0.ndim == 1:
                        b0, bs = b0[:, None], bs[..., :, None]
                    assert rules._fused_matmul(a0, as_, b0, bs)
                    assert_matmul_close(a, b, order, n_dirs)
                    fused = (a @ b).series
                    numpy = rules.matmul_series_numpy(a0, as_, b0, bs, a0.ndim).reshape(fused.shape)
                    _, mag = cauchy_matmul(coefficients(a, order, n_dirs), coefficients(b, order, n_dirs))
                    n_terms = (np.arange(1, order + 1) + 1) * a.shape[-1] + 2
                    bound = (4 * 2 * n_terms * EPS).reshape((-1,) + (1,) * (mag.ndim - 1)) * mag[1:]
                    assert np.all(np.abs(fused - numpy) <= bound)
    # a direction alone equals itself among 18 others, also where BLAS would round an
    # element with its position in a larger product (a 1-row product of order 1), for
    # matrices, broadcast stacks and a constant operand, laid out contiguously or not
    for order, (n, k, p), (batch_a, batch_b) in [(1, (1, 5, 3), ((), ())), (3, (7, 16, 16), ((), ())),
                                                 (6, (7, 4, 7), ((4,), (4,))), (12, (3, 1, 4), ((2, 1), (3,))),
                                                 (2, (1, 3, 1), ((2,), ()))]:
        a0, b0 = rng.normal(size=batch_a + (n, k)), rng.normal(size=batch_b + (p, k)).swapaxes(-1, -2)
        as_ = rng.normal(size=(order, 19) + a0.shape) + 1j * rng.normal(size=(order, 19) + a0.shape)
        bs = (rng.normal(size=(order, 19) + batch_b + (p, k))
              + 1j * rng.normal(size=(order, 19) + batch_b + (p, k))).swapaxes(-1, -2)
        for a_series in (as_, None):
            together = rules._kernel_matmul(a0, a_series, b0, bs)
            for m in (0, 7, 18):
                alone = rules._kernel_matmul(a0, None if a_series is None else np.array(as_[:, m:m + 1]),
                                             b0, np.array(bs[:, m:m + 1]))
                assert np.array_equal(together[:, m], alone[:, 0])
    high = Jet(np.ones((2, 3)), np.ones((13, 1, 2, 3)))
    assert not rules._fused_matmul(high.primal, high.series, high.primal.T, high.series.swapaxes(-1, -2))


def test_every_product_of_a_jet_training_step_runs_compiled(monkeypatch):
    """The paper MicroGPT's step at order 3, eager and replayed: each of its products of
    matrices goes through the compiled kernel (:func:`kernels.matmul_series_kernel`,
    by :func:`kernels.matmul_series` eagerly, directly in a replayed step), so a layout
    the kernel does not take would show up here, not as a silent slowdown."""
    import taylorsketch as ts
    from taylorsketch import kernels, rules
    calls = {"rule": 0, "kernel": 0}
    kernel_of, rule = kernels.matmul_series_kernel, rules.RULES["matmul"]

    def counting_kernel_of(dtype, columns):
        def counting_kernel(*args):
            calls["kernel"] += 1
            return kernel_of(dtype, columns)(*args)
        return counting_kernel

    def counting_rule(primals, series):
        calls["rule"] += 1
        return rule(primals, series)
    monkeypatch.setattr(kernels, "matmul_series_kernel", counting_kernel_of)
    monkeypatch.setitem(rules.RULES, "matmul", counting_rule)
    setup = ts.paper.setup(seed=42)
    docs = ["emma", "liam", "noah", "mila", "ava"]          # steps 3 and 4 replay the plan of 1 and 2
    rng = np.random.default_rng(0)
    weights = ts.Jet.from_directions(np.zeros(len(docs)), rng.normal(size=(2, len(docs))) + 0j, 3)
    ts.train(setup.model(), setup.init, docs, steps=5, weights=weights, progress=False)
    # steps 1, 2 and 5 run the rule, steps 3 and 4 the plan's kernel calls
    assert calls["rule"] >= 3 * 15 and calls["kernel"] == calls["rule"] // 3 * 5


@given(st.data())
def test_the_kernel_follows_its_order_of_operations_to_the_bit(data):
    """:func:`kernels.matmul_series` equals, to the bit, the same sums formed one element
    at a time in Python floats in the order its docstring states
    (:func:`reference.matmul_series_in_order`).  That order is what makes a
    direction's series independent of its neighbours, its position, the memory layout
    and the machine; the kernel computes 2 x 8 blocks at a time in vector registers,
    so the shapes cover partial blocks: an odd number of rows, columns short of,
    at and past a multiple of 8, stacks paired by index, a constant on either side,
    transposed views, real and complex series."""
    import reference
    from taylorsketch import kernels
    order = data.draw(st.integers(1, 4))
    n_dirs = data.draw(st.integers(1, 3))
    n, k = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    p = data.draw(st.sampled_from([1, 3, 7, 8, 9, 17]))
    a_index, b_index = data.draw(st.sampled_from([([0], [0]), ([0, 1, 2], [0, 1, 2]), ([0, 0, 1], [1, 0, 1])]))
    dtype = data.draw(st.sampled_from([np.float64, np.complex128]))
    kind = data.draw(st.sampled_from(["both", "a constant", "b constant"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    stack_a, stack_b = max(a_index) + 1, max(b_index) + 1

    def series(shape):
        x = rng.normal(size=(order, n_dirs) + shape)
        return x + 1j * rng.normal(size=x.shape) if dtype is np.complex128 else x
    a0, b0 = rng.normal(size=(stack_a, n, k)), rng.normal(size=(stack_b, p, k)).swapaxes(-1, -2)
    as_ = None if kind == "a constant" else series((stack_a, n, k))
    bs = None if kind == "b constant" else series((stack_b, p, k)).swapaxes(-1, -2)
    a_index, b_index = np.array(a_index), np.array(b_index)
    got = kernels.matmul_series(a0, as_, b0, bs, a_index, b_index)
    want = reference.matmul_series_in_order(a0, as_, b0, bs, a_index, b_index)
    assert got.dtype == want.dtype and np.array_equal(got, want)


@given(st.data())
@settings(max_examples=30, deadline=None)
def test_the_two_complex_kernels_are_the_same_sums(data):
    """Complex products of few columns run in register blocks
    (``_config.COMPLEX_BLOCK_COLUMNS``), wider ones row by row: on any shape both
    give the same values to the bit, so which one runs is a matter of speed only."""
    from taylorsketch import kernels
    from taylorsketch._config import COMPLEX_BLOCK_COLUMNS
    order, n_dirs = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 3))
    n, k, p = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)), data.draw(st.integers(1, 19))
    has_a, has_b = data.draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))

    def series(shape):
        return rng.normal(size=(order, n_dirs, 2) + shape) + 1j * rng.normal(size=(order, n_dirs, 2) + shape)
    a0, b0 = rng.normal(size=(2, n, k)), rng.normal(size=(2, k, p))
    empty = np.empty((0,) * 5, complex)
    args = (a0, series((n, k)) if has_a else empty, has_a, b0, series((k, p)) if has_b else empty, has_b,
            np.array([0, 1, 1]), np.array([1, 0, 1]), order, n_dirs)
    blocks = kernels.matmul_series_kernel(np.dtype(complex), 1)
    rows = kernels.matmul_series_kernel(np.dtype(complex), COMPLEX_BLOCK_COLUMNS + 1)
    assert blocks is not rows
    assert np.array_equal(blocks(*args), rows(*args))
