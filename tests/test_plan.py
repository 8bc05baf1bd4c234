"""Recorded and replayed training steps (``taylorsketch/plan.py``).

The oracle is the eager step itself: a replayed run must equal the eager run
to the bit (``np.array_equal`` on every primal and series), for the paper's
set-up, random small MicroGPTs and the MLP, orders 1..12, real and complex
directions, one and several directions.  Then: most steps are replayed; a model that computes a value the
plan cannot recompute is refused (and still trained eagerly, to the bit); and
the recording parts on their own.

Shape legend: N = documents, K = order, M = directions.
"""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taylorsketch as ts
from taylorsketch import plan, training
from taylorsketch.functions import primal


@pytest.fixture(scope="module")
def gpt(paper):
    """A small MicroGPT on 40 paper documents (names of few lengths, so most steps replay)."""
    model = ts.MicroGPT(paper.vocab, n_embd=8, n_head=2, block_size=8)
    return model, model.init_params(seed=0), paper.docs[:40]


class Spy(plan.StepPlans):
    """StepPlans that remembers itself, to read its counts."""
    made = []

    def __init__(self, *args):
        super().__init__(*args)
        Spy.made.append(self)


def _weights(n_docs, order, n_dirs, complex_, seed=0):
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n_dirs, n_docs))
    if complex_:
        directions = directions + 1j * rng.normal(size=(n_dirs, n_docs))
    return ts.Jet.from_directions(rng.normal(scale=0.1, size=n_docs), directions, order)


def _train(monkeypatch, model, init, docs, weights, replay):
    Spy.made.clear()
    monkeypatch.setenv("TAYLORSKETCH_REPLAY", "1" if replay else "0")
    monkeypatch.setattr(training, "StepPlans", Spy)
    return ts.train(model, init, docs, weights=weights, progress=False)


def _assert_identical(a, b):
    for name in a:
        assert np.array_equal(a[name].primal, b[name].primal), name
        assert np.array_equal(a[name].series, b[name].series), name


@pytest.mark.parametrize("order", [1, 2, 3, 6, 12])
@pytest.mark.parametrize("n_dirs, complex_", [(1, True), (3, False), (2, True)])
def test_replayed_training_is_eager_training_to_the_bit(monkeypatch, gpt, order, n_dirs, complex_):
    model, init, docs = gpt
    weights = _weights(len(docs), order, n_dirs, complex_, seed=order)
    eager = _train(monkeypatch, model, init, docs, weights, replay=False)
    assert not Spy.made
    replayed = _train(monkeypatch, model, init, docs, weights, replay=True)
    stats = Spy.made[0].stats
    assert stats["replayed"] > 0 and not Spy.made[0].refused
    _assert_identical(replayed, eager)


def test_most_steps_replay_and_the_eager_ones_are_two_per_length(monkeypatch, paper):
    model = ts.MicroGPT(paper.vocab, n_embd=8, n_head=2)
    docs = paper.docs[:200]
    weights = _weights(len(docs), 3, 2, True)
    _train(monkeypatch, model, model.init_params(seed=1), docs, weights, replay=True)
    lengths = {min(len(d) + 1, model.config.block_size + 1) for d in docs}
    stats = Spy.made[0].stats
    assert stats["eager"] + stats["replayed"] == len(docs)
    assert stats["eager"] <= 2 * len(lengths)
    assert stats["replayed"] >= len(docs) - 2 * len(lengths)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_mlp_replays_to_the_bit(monkeypatch, task):
    """The MLP's documents enter as arrays (x is a matmul operand, y a subtrahend
    or an index): the plan reads them from each new document."""
    n_out = 1 if task == "regression" else 3
    data = ts.MLP.synthetic_dataset(30, seed=2, task=task)
    model = ts.MLP(n_in=2, n_hidden=5, n_out=n_out, task=task)
    weights = _weights(len(data), 4, 2, True, seed=3)
    eager = _train(monkeypatch, model, model.init_params(seed=0), data, weights, replay=False)
    replayed = _train(monkeypatch, model, model.init_params(seed=0), data, weights, replay=True)
    assert Spy.made[0].stats["replayed"] == len(data) - 2 and not Spy.made[0].refused
    _assert_identical(replayed, eager)


class ShiftByMean(ts.MLP):
    """An MLP whose loss subtracts a value computed from the primal behind the plan's
    back (``np.mean`` of a primal, not an array operation): unplannable."""

    def forward(self, params, encoded):
        loss, cache = super().forward(params, encoded)
        return loss - float(np.mean(primal(params["w1"]))) * 0.0 + np.mean(primal(params["b1"])), cache


class DocumentConstant(ts.MLP):
    """An MLP that adds a constant made from the document by numpy (not an index)."""

    def forward(self, params, encoded):
        loss, cache = super().forward(params, encoded)
        x, _ = encoded
        return loss + np.sin(x).sum(), cache


@pytest.mark.parametrize("cls", [ShiftByMean, DocumentConstant])
def test_a_value_the_plan_cannot_recompute_is_refused_and_trained_eagerly(monkeypatch, cls):
    data = ts.MLP.synthetic_dataset(12, seed=4)
    model = cls(n_in=2, n_hidden=4, n_out=1)
    weights = _weights(len(data), 3, 1, True, seed=5)
    eager = _train(monkeypatch, model, model.init_params(seed=0), data, weights, replay=False)
    replayed = _train(monkeypatch, model, model.init_params(seed=0), data, weights, replay=True)
    spy = Spy.made[0]
    assert spy.stats == {"eager": len(data), "replayed": 0}
    assert "differ" in next(iter(spy.refused.values()))
    _assert_identical(replayed, eager)


def test_recordings_in_two_threads_stay_apart(gpt):
    """The recording in progress is per thread (a thread pool trains batches side by side)."""
    model, init, docs = gpt
    weights = [_weights(len(docs), 3, 1, True, seed=s) for s in (7, 8)]
    alone = [ts.train(model, init, docs, weights=w, progress=False) for w in weights]
    together = [None, None]

    def run(k):
        together[k] = ts.train(model, init, docs, weights=weights[k], progress=False)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        _assert_identical(a, b)


# -- the parts ---------------------------------------------------------------------


def test_a_recording_sees_rules_and_array_operations_and_fixes_literals():
    x = ts.Jet.from_directions(np.array([1.0, 2.0]), np.ones((1, 2)), order=2)
    with plan.Recorder([x], inputs=()) as recorder:
        y = ts.softmax(x * 3.0)
    program = recorder.program
    assert [entry[1] if entry[0] == plan.RULE else entry[1].__name__ for entry in program] == [
        "mul", "_primal_max", "sub", "exp", "sum", "div"]
    assert program[0][2][0] == 0 and isinstance(program[0][2][1], tuple)      # x is slot 0, 3.0 a literal
    outputs = recorder.outputs([y])
    recorder.finish()
    replayed, = plan.Plan(recorder, outputs, ts.Jet.RULES).replay([x], ())
    assert np.array_equal(replayed.series, y.series) and np.array_equal(replayed.primal, y.primal)


def test_an_index_drawn_from_the_inputs_is_read_from_each_new_document():
    tokens = np.array([3, 1, 4, 1, 5])
    assert plan.Input.of(tokens[1:4], tokens, 0) == plan.Input(0, 1, 3)
    assert plan.Input.of(tokens, tokens, 0) == plan.Input(0, None, None)
    assert plan.Input.of(tokens[::2], tokens, 0) is None            # not contiguous
    assert plan.Input.of(np.array([1, 4, 1]), tokens, 0) is None    # a copy is a literal
    assert np.array_equal(plan.Input(0, 1, 3).resolve((np.array([9, 8, 7, 6, 5]),)), [8, 7, 6])


def test_an_operand_from_outside_the_recording_is_unplannable():
    x = ts.Jet.from_directions(np.ones(2), np.ones((1, 2)), order=1)
    stranger = ts.Jet.from_directions(np.ones(2), np.ones((1, 2)), order=1)
    with pytest.raises(plan.Unplannable, match="not made by a recorded operation"):
        with plan.Recorder([x], inputs=()):
            x + stranger


def test_values_compare_by_kind_shape_dtype_and_elements():
    assert plan.same(np.array([1.0, np.nan]), np.array([1.0, np.nan]))
    assert not plan.same(np.array([1.0]), np.array([1]))
    assert not plan.same(np.zeros(2), np.zeros((2, 1)))
    assert not plan.same((1.0, 2), (1.0, 2.0))
    assert plan.same({"index": (plan.Input(0, 0, 2), np.arange(2))}, {"index": (plan.Input(0, 0, 2), np.arange(2))})


def test_the_paper_set_up_replays_to_the_bit(monkeypatch, paper):
    """The paper's MicroGPT and initial parameters, 60 of its documents, complex directions."""
    model, docs = paper.model(), paper.docs[:60]
    weights = _weights(len(docs), 3, 2, True, seed=11)
    eager = _train(monkeypatch, model, paper.init, docs, weights, replay=False)
    replayed = _train(monkeypatch, model, paper.init, docs, weights, replay=True)
    assert Spy.made[0].stats["replayed"] >= 30
    _assert_identical(replayed, eager)


@settings(max_examples=12)
@given(n_layer=st.integers(1, 2), heads_and_width=st.sampled_from([(1, 4), (2, 4), (2, 6), (4, 8)]),
       block_size=st.integers(3, 9), order=st.integers(1, 12), n_dirs=st.integers(1, 3),
       complex_=st.booleans(), seed=st.integers(0, 10**6))
def test_random_small_models_replay_to_the_bit(paper, n_layer, heads_and_width, block_size, order, n_dirs,
                                               complex_, seed):
    """Random MicroGPT shapes (layers, heads, width, block size: documents longer than the
    block are cut, so lengths repeat), random documents, orders 1..12, real and complex."""
    n_head, n_embd = heads_and_width
    model = ts.MicroGPT(paper.vocab, n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=block_size)
    rng = np.random.default_rng(seed)
    docs = [paper.docs[i] for i in rng.choice(len(paper.docs), size=16, replace=False)]
    init = model.init_params(seed=seed % 1000)
    weights = _weights(len(docs), order, n_dirs, complex_, seed=seed)
    with pytest.MonkeyPatch.context() as monkeypatch:
        eager = _train(monkeypatch, model, init, docs, weights, replay=False)
        replayed = _train(monkeypatch, model, init, docs, weights, replay=True)
        assert Spy.made[0].stats["replayed"] > 0
    _assert_identical(replayed, eager)


def test_a_plan_runs_the_specialized_rules(monkeypatch, gpt):
    """Every rule with a specialization is bound to its recorded layouts in a plan of the
    paper model's step (and the plan still replays to the bit: the tests above)."""
    from taylorsketch.rules import SPECIALIZED
    model, init, docs = gpt
    _train(monkeypatch, model, init, docs, _weights(len(docs), 3, 2, True), replay=True)
    plans = Spy.made[0].plans.values()
    bound = {entry[2].func.__name__ for p in plans for entry in p.program if hasattr(entry[2], "func")}
    planned = {type(entry[2]).__name__ for p in plans for entry in p.program}
    assert {"mul_rule", "pow_rule", "sum_rule", "transpose_rule", "rule"} <= bound
    assert {"_PlannedMatmul", "_PlannedProduct", "_PlannedRows"} <= planned
    assert {"mul", "div", "pow", "sum", "transpose", "exp", "erf", "matmul"} <= set(SPECIALIZED)


@given(st.sampled_from(["mul", "div"]), st.sampled_from([((3, 4), (3, 1)), ((1, 4), (3, 4)), ((), (2,)), ((2, 3), ()),
                                                         ((3, 4), (3, 4)), ((), ()), ((3, 1), (3, 4)),
                                                         ((2, 3, 1), (2, 3, 5)), ((2, 3, 5), (2, 3, 1))]),
       st.booleans(), st.booleans(), st.integers(1, 4), st.integers(1, 3))
@settings(max_examples=30, deadline=None)
def test_a_specialized_binary_rule_is_the_rule_to_the_bit(name, shapes, complex_a, complex_b, order, n_dirs):
    from taylorsketch.rules import RULES, SPECIALIZED
    rng = np.random.default_rng(order * 10 + n_dirs)

    def jet(shape, complex_):
        series = rng.normal(size=(order, n_dirs) + (1,) * (2 - len(shape)) + shape)
        primal = rng.uniform(0.5, 2.0, (1,) * (2 - len(shape)) + shape)
        return ts.Jet(primal, series + 1j * series if complex_ else series)
    a, b = jet(shapes[0], complex_a), jet(shapes[1], complex_b)
    y0, ys = RULES[name]((a.primal, b.primal), (a.series, b.series))
    extra = SPECIALIZED[name]((plan.layout(a), plan.layout(b), plan.layout(ts.Jet(y0, ys))), {})
    z0, zs = RULES[name]((a.primal, b.primal), (a.series, b.series), **extra)
    assert np.array_equal(y0, z0) and np.array_equal(ys, zs) and ys.dtype == zs.dtype and ys.strides == zs.strides


_PRODUCT_SHAPES = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
                   ((3, 4), (2, 4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (2, 4, 1))]


@given(st.sampled_from(_PRODUCT_SHAPES), st.sampled_from(["both", "left", "right"]), st.booleans(),
       st.integers(1, 4), st.integers(1, 3), st.booleans())
@settings(max_examples=40, deadline=None)
def test_a_planned_product_is_the_rule_to_the_bit(shapes, which, complex_, order, n_dirs, transposed):
    """Matrices, vectors, stacks broadcast against matrices and against each other,
    constants on either side, real and complex series, operands stored transposed:
    the product's kernel call worked out from the layouts gives the rule's values,
    dtype and strides."""
    from taylorsketch.rules import RULES, SPECIALIZED
    rng = np.random.default_rng(order * 10 + n_dirs)

    def operand(shape, has_series):
        x0 = rng.normal(size=shape[::-1]).T if transposed else rng.normal(size=shape)
        if not has_series:
            return x0, None
        xs = rng.normal(size=(order, n_dirs) + shape)
        return x0, xs + 1j * rng.normal(size=xs.shape) if complex_ else xs
    (a0, as_), (b0, bs) = operand(shapes[0], which != "right"), operand(shapes[1], which != "left")
    layouts = [plan.layout(ts.Jet(x0, xs) if xs is not None else x0) for x0, xs in ((a0, as_), (b0, bs))]
    y0, ys = RULES["matmul"]((a0, b0), (as_, bs))
    extra = SPECIALIZED["matmul"](layouts + [plan.layout(ts.Jet(y0, ys))], {})
    assert set(extra) == {"_plan"}
    z0, zs = RULES["matmul"]((a0, b0), (as_, bs), **extra)
    assert np.array_equal(y0, z0) and np.array_equal(ys, zs) and ys.dtype == zs.dtype and ys.strides == zs.strides


def test_a_product_off_the_kernels_path_is_not_planned():
    """Above the kernel's orders, with complex primals and with series of two dtypes the
    rule keeps its own path (numpy's products, or a cast first)."""
    from taylorsketch._config import COMPILED_MATMUL_MAX_ORDER
    from taylorsketch.rules import SPECIALIZED

    def layouts(a, b):
        return [plan.layout(a), plan.layout(b), None]
    real, high = ts.Jet(np.ones((2, 2)), np.ones((3, 1, 2, 2))), ts.Jet(np.ones((2, 2)), np.ones(
        (COMPILED_MATMUL_MAX_ORDER + 1, 1, 2, 2)))
    complex_ = ts.Jet(np.ones((2, 2)), np.ones((3, 1, 2, 2), complex))
    assert SPECIALIZED["matmul"](layouts(real, real), {})
    assert SPECIALIZED["matmul"](layouts(high, np.ones((2, 2))), {}) is None
    assert SPECIALIZED["matmul"](layouts(real, complex_), {}) is None
    assert SPECIALIZED["matmul"](layouts(real, np.ones((2, 2), complex)), {}) is None


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
@pytest.mark.parametrize("complex_", [False, True])
def test_a_planned_product_is_the_rule_on_scalars_and_on_series_stored_transposed(shape, complex_):
    """A planned product of 0-d primals, and of series that are not contiguous at the
    replay (it takes the rule's full arrays then), is the rule to the bit."""
    from taylorsketch.rules import RULES, SPECIALIZED
    rng = np.random.default_rng(len(shape))

    def series(transposed):
        xs = rng.normal(size=(3, 2) + shape) * (1 + 1j if complex_ else 1)
        return np.ascontiguousarray(xs.T).T if transposed else xs
    primals = (rng.normal(size=shape), rng.normal(size=shape))
    layouts = [plan.layout(ts.Jet(x0, series(False))) for x0 in primals]
    extra = SPECIALIZED["mul"](layouts + [layouts[0]], {})
    assert type(extra["_plan"]).__name__ == "_PlannedProduct"
    for transposed in (False, True):
        xs = (series(transposed), series(False))
        y0, ys = RULES["mul"](primals, xs)
        z0, zs = extra["_plan"](primals, xs)
        assert np.array_equal(y0, z0) and np.array_equal(ys, zs) and ys.dtype == zs.dtype and ys.strides == zs.strides


@pytest.mark.parametrize("shapes", [((3, 4), (3, 1)), ((3, 1), (3, 4)), ((3, 4), (3, 4))])
def test_a_planned_quotient_by_zero_is_the_rules_error(shapes):
    from taylorsketch.rules import RULES, SPECIALIZED
    a, b = (ts.Jet(np.ones(shape), np.ones((2, 1) + shape)) for shape in shapes)
    b.primal[1, 0] = 0.0
    y = ts.Jet(np.ones(np.broadcast_shapes(*shapes)), np.ones((2, 1) + np.broadcast_shapes(*shapes)))
    extra = SPECIALIZED["div"]((plan.layout(a), plan.layout(b), plan.layout(y)), {}) or {}
    for params in ({}, extra):
        with pytest.raises(ValueError, match="division: the primal has 1 entries where division is not analytic"):
            RULES["div"]((a.primal, b.primal), (a.series, b.series), **params)


def test_the_planned_broadcast_products_are_chosen_by_layout():
    """Series broadcast along the last axis only are planned as rows; broadcasting along
    another axis keeps the full arrays."""
    from taylorsketch.rules import SPECIALIZED

    def kinds(name, sa, sb):
        a, b = (ts.Jet(np.ones(shape), np.ones((2, 3) + shape)) for shape in (sa, sb))
        y = ts.Jet(np.ones(np.broadcast_shapes(sa, sb)), np.ones((2, 3) + np.broadcast_shapes(sa, sb)))
        extra = SPECIALIZED[name]((plan.layout(a), plan.layout(b), plan.layout(y)), {})
        return type(extra["_plan"]).__name__ if "_plan" in extra else sorted(extra)
    assert kinds("mul", (7, 1), (7, 16)) == kinds("div", (4, 7, 7), (4, 7, 1)) == "_PlannedRows"
    assert kinds("mul", (7, 16), (7, 16)) == "_PlannedProduct"
    assert kinds("mul", (1, 16), (7, 16)) == kinds("div", (7, 16), (7, 16)) == ["_layout"]
