"""Training, plain and in jet arithmetic (``taylorsketch/training.py``).

(a) the paper's check values (golden reference run); (b) a jet run's primal is
the plain run; (c) the jet coefficients of ``t -> loss(train(w = t psi))``
against finite differences of real retraining, for real and complex ``psi``;
(d) M directions at once equal M runs of one direction; (e) the MLP circuit;
(f) bad input gives errors naming the document, step or parameter.

Shape legend: N = documents, K = order, M = directions, P = parameters.
"""

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch.training import TrainingError

PAPER_LOSS_ON_MAX = 3.0913238794422027
PAPER_WTE0 = [-0.04273180935726127, 0.07696138795865093, 0.10844210106107166,
              0.03741680212434131, -0.0031437655498982994]


@pytest.fixture(scope="module")
def small(paper):
    """A small MicroGPT on 12 paper documents: every jet-vs-retraining check runs on it."""
    model = ts.MicroGPT(paper.vocab, n_embd=8, n_head=2, block_size=8)
    return model, model.init_params(seed=0), paper.docs[:12]


def _jet_weights(directions, order, primal=None):
    directions = np.atleast_2d(directions)
    primal = np.zeros(directions.shape[1]) if primal is None else primal
    return ts.Jet.from_directions(primal, directions, order)


def _train(model, init, docs, steps, weights=None):
    return ts.train(model, init, docs, steps=steps, weights=weights, progress=False)


# -- (a) the paper's check values ----------------------------------------------------


def test_paper_initialisation(paper):
    assert paper.init["wte"][0, :5].tolist() == PAPER_WTE0
    assert len(paper.docs) == 32033 and paper.vocab.size == 27 and paper.vocab.bos == 26


def test_paper_documents_with_x(paper):
    positions = [i for i, doc in enumerate(paper.docs[:1000]) if "x" in doc]
    assert len(positions) == 18
    assert positions[:4] == [2, 8, 66, 138]


def test_paper_training_loss_on_max(paper):
    """1,000 plain steps on the first 1,000 documents: the paper's number."""
    model = paper.model()
    params = _train(model, paper.init, paper.docs[:1000], steps=1000)
    assert abs(model.loss(params, "max") - PAPER_LOSS_ON_MAX) <= 1e-12


# -- (b) the primal of a jet run is the plain run ---------------------------------------


@pytest.mark.parametrize("expansion_point", ["zero", "half_deleted"])
def test_jet_primal_equals_plain_training(small, expansion_point):
    model, init, docs = small
    rng = np.random.default_rng(1)
    w0 = np.zeros(len(docs)) if expansion_point == "zero" else 0.5 * (np.arange(len(docs)) % 3 == 0)
    psi = rng.normal(size=(2, len(docs))) + 1j * rng.normal(size=(2, len(docs)))
    jets = _train(model, init, docs, 36, _jet_weights(psi, order=3, primal=w0))
    plain = _train(model, init, docs, 36, w0 if expansion_point != "zero" else None)
    for name, value in plain.items():
        assert isinstance(jets[name], ts.Jet) and jets[name].series.shape == (3, 2) + value.shape
        # the fused Adam kernel rounds the primal update as numpy does, (lr m_hat) / s:
        # the same operations in the same order, so the same bits
        np.testing.assert_array_equal(jets[name].primal, value, err_msg=name)


# -- (c) jet coefficients against finite differences of retraining -------------------------
#
# g(t) = loss on a training document after training with w = t psi (30 steps).
# Central differences D1(h) = (g(h) - g(-h)) / 2h = c_1 + c_3 h^2 + c_5 h^4 + ... and
# D2(h) = (g(h) - 2 g(0) + g(-h)) / 2h^2 = c_2 + c_4 h^2 + c_6 h^4 + ...; Richardson
# (4 D(h/2) - D(h)) / 3 removes the h^2 term and leaves -c_5 h^4 / 4 (resp. -c_6 h^4 / 4).
# With psi ~ N(0, I) on 12 documents the coefficients grow with the order (radius of
# convergence ~0.5 in t): up to |c_6| ~ 7 for the a + b direction below.  h = 0.005
# keeps that truncation error below 1.2e-9, while the rounding error of D2 (~1e-15 |g|
# amplified by ~1/h^2) is ~1e-10 (measured).  At h >= 0.01, where truncation
# dominates, the measured differences equal -c_5 h^4/4 and -c_6 h^4/4 of an order-6
# jet to 2-3 digits.  Tolerance 1e-8: ~10x the worst
# expected error, and 1e-6 of the coefficients' size (0.01 to 0.3), so a wrong
# coefficient cannot pass.

FD_STEP = 0.005
FD_TOLERANCE = 1e-8
MEASURED_DOC = 2        # "xavien", a training document among the 12


def _fd_coefficients(small, psi, steps=30):
    """``(c_1, c_2)`` of ``t -> loss(train(w = t psi))`` for a real ``psi``, by retraining."""
    model, init, docs = small

    def g(t):
        return model.loss(_train(model, init, docs, steps, t * psi), docs[MEASURED_DOC])

    g0 = g(0.0)
    values = {h: (g(h), g(-h)) for h in (FD_STEP, FD_STEP / 2)}
    d1 = {h: (plus - minus) / (2 * h) for h, (plus, minus) in values.items()}
    d2 = {h: (plus - 2 * g0 + minus) / (2 * h * h) for h, (plus, minus) in values.items()}
    h = FD_STEP
    return (4 * d1[h / 2] - d1[h]) / 3, (4 * d2[h / 2] - d2[h]) / 3


def _jet_coefficients(small, psi, order=2, steps=30):
    model, init, docs = small
    params = _train(model, init, docs, steps, _jet_weights(psi, order))
    return model.loss(params, docs[MEASURED_DOC]).coefficients()[:, 0]


def test_jet_coefficients_match_retraining_real_direction(small):
    psi = np.random.default_rng(2).normal(size=len(small[2]))
    coefficients = _jet_coefficients(small, psi)
    c1, c2 = _fd_coefficients(small, psi)
    assert max(abs(coefficients[1]), abs(coefficients[2])) > 1e-3       # a test with teeth
    assert abs(coefficients[1] - c1) <= FD_TOLERANCE
    assert abs(coefficients[2] - c2) <= FD_TOLERANCE


def test_jet_coefficients_match_retraining_complex_direction(small):
    """Training cannot take complex weights, but ``g`` is analytic: ``c_r(psi)`` is the
    r-linear symmetric form at ``psi``, so for ``psi = a + ib``
    ``c_1(psi) = c_1(a) + i c_1(b)`` and, by polarisation,
    ``c_2(psi) = c_2(a) - c_2(b) + i (c_2(a + b) - c_2(a) - c_2(b))``."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=len(small[2])), rng.normal(size=len(small[2]))
    coefficients = _jet_coefficients(small, a + 1j * b)
    c1_a, c2_a = _fd_coefficients(small, a)
    c1_b, c2_b = _fd_coefficients(small, b)
    _, c2_ab = _fd_coefficients(small, a + b)
    # each side carries the errors of two (c_1) or three (c_2) difference quotients
    assert abs(coefficients[1] - (c1_a + 1j * c1_b)) <= 2 * FD_TOLERANCE
    assert abs(coefficients[2] - (c2_a - c2_b + 1j * (c2_ab - c2_a - c2_b))) <= 3 * FD_TOLERANCE
    assert abs(coefficients[2].imag) > 1e-3


def test_jet_coefficients_finite_difference_error_is_the_next_coefficient(small):
    """Without Richardson, ``D1(h) - c_1 = c_3 h^2 + O(h^4)``: the jet predicts the
    error of the finite difference itself (a check of ``c_3`` by retraining)."""
    model, init, docs = small
    psi = np.random.default_rng(2).normal(size=len(docs))
    coefficients = _jet_coefficients(small, psi, order=5)
    h = 0.01

    def g(t):
        return model.loss(_train(model, init, docs, 30, t * psi), docs[MEASURED_DOC])

    d1 = (g(h) - g(-h)) / (2 * h)
    predicted = coefficients[3] * h ** 2 + coefficients[5] * h ** 4
    assert abs((d1 - coefficients[1]) - predicted) <= 1e-11 + 1e-3 * abs(predicted)


# -- (d) many directions at once ---------------------------------------------------------


def test_batched_directions_equal_separate_runs(small):
    model, init, docs = small
    rng = np.random.default_rng(4)
    psi = rng.normal(size=(3, len(docs))) + 1j * rng.normal(size=(3, len(docs)))
    together = _train(model, init, docs, 20, _jet_weights(psi, order=3))
    for m in range(3):
        alone = _train(model, init, docs, 20, _jet_weights(psi[m], order=3))
        for name in init:
            got, want = together[name].series[:, m], alone[name].series[:, 0]
            # the batched GEMMs group the sums differently: rounding only, per order
            for r in range(3):
                scale = np.max(np.abs(want[r]))
                error = np.max(np.abs(got[r] - want[r]))
                assert error <= 1e-12 * scale, f"{name}, direction {m}, order {r + 1}: {error:.3g} vs {scale:.3g}"
            np.testing.assert_array_equal(together[name].primal, alone[name].primal)


# -- (e) the MLP circuit -------------------------------------------------------------------


@pytest.mark.parametrize("task, n_out", [("regression", 1), ("classification", 3)])
def test_mlp_training_reduces_loss(task, n_out):
    data = ts.MLP.synthetic_dataset(64, seed=0, task=task)
    model = ts.MLP(n_in=2, n_hidden=16, n_out=n_out, task=task)
    init = model.init_params(seed=0)
    params = _train(model, init, data, steps=5 * len(data))
    before = np.mean([model.loss(init, doc) for doc in data])
    after = np.mean([model.loss(params, doc) for doc in data])
    assert after < 0.6 * before


def test_mlp_jet_training_matches_retraining():
    """The same Richardson check as (c), on the MLP: measured error ~1e-11."""
    data = ts.MLP.synthetic_dataset(10, seed=1)
    model = ts.MLP(n_in=2, n_hidden=6, n_out=1)
    init = model.init_params(seed=1)
    test_doc = ts.MLP.synthetic_dataset(1, seed=9)[0]
    psi = np.random.default_rng(5).normal(size=len(data))

    def g(t):
        return model.loss(_train(model, init, data, 25, t * psi), test_doc)

    params = _train(model, init, data, 25, _jet_weights(psi, order=2))
    coefficients = model.loss(params, test_doc).coefficients()[:, 0]
    h = FD_STEP
    d1 = [(g(s) - g(-s)) / (2 * s) for s in (h, h / 2)]
    d2 = [(g(s) - 2 * g(0.0) + g(-s)) / (2 * s * s) for s in (h, h / 2)]
    assert coefficients[0] == g(0.0)
    assert abs(coefficients[1] - (4 * d1[1] - d1[0]) / 3) <= FD_TOLERANCE
    assert abs(coefficients[2] - (4 * d2[1] - d2[0]) / 3) <= FD_TOLERANCE


# -- retrain --------------------------------------------------------------------------------


def test_retrain_is_training_with_weights(small):
    model, init, docs = small
    deleted = [i for i, doc in enumerate(docs) if "x" in doc]
    indicator = np.zeros(len(docs))
    indicator[deleted] = 1.0
    want = _train(model, init, docs, 15, 0.5 * indicator)
    by_index = ts.retrain(model, init, docs, deleted, t=0.5, steps=15, progress=False)
    by_predicate = ts.retrain(model, init, docs, lambda doc: "x" in doc, t=0.5, steps=15, progress=False)
    for name in init:
        np.testing.assert_array_equal(by_index[name], want[name])
        np.testing.assert_array_equal(by_predicate[name], want[name])


def test_training_does_not_modify_init(small):
    model, init, docs = small
    before = {k: v.copy() for k, v in init.items()}
    params = _train(model, init, docs, 5)
    for name in init:
        np.testing.assert_array_equal(init[name], before[name])
        assert not np.shares_memory(params[name], init[name])
    unchanged = _train(model, init, docs, 0)
    for name in init:
        np.testing.assert_array_equal(unchanged[name], init[name])


# -- (f) bad input -----------------------------------------------------------------------------


@pytest.fixture
def tiny():
    model = ts.MicroGPT(ts.Vocab("abc"), n_embd=4, n_head=2, block_size=4)
    return model, model.init_params(seed=0), ["ab", "ba", "cab", "abc"]


def test_document_outside_vocabulary(tiny):
    model, init, docs = tiny
    with pytest.raises(ValueError, match=r"document 3: .*outside the vocabulary: \['z'\]"):
        _train(model, init, docs[:3] + ["abz"], 4)


def test_empty_document(tiny):
    model, init, docs = tiny
    with pytest.raises(ValueError, match="document 1: empty document"):
        _train(model, init, ["ab", "", "ba"], 4)


def test_document_not_a_string(tiny):
    model, init, docs = tiny
    with pytest.raises(TypeError, match="document 2: a document must be a string"):
        _train(model, init, ["ab", "ba", 7], 4)


def test_no_documents_and_negative_steps(tiny):
    model, init, docs = tiny
    with pytest.raises(ValueError, match="no documents"):
        _train(model, init, [], 4)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        _train(model, init, docs, -1)


@pytest.mark.parametrize("weights", [np.zeros(3), np.zeros((4, 1)),
                                     ts.Jet.from_directions(np.zeros(5), np.ones((1, 5)), 2)])
def test_weights_of_wrong_length(tiny, weights):
    model, init, docs = tiny
    with pytest.raises(ValueError, match=r"one entry per document \(4\)"):
        _train(model, init, docs, 4, weights)


def test_non_finite_weights(tiny):
    model, init, docs = tiny
    with pytest.raises(ValueError, match="weights contain non-finite values"):
        _train(model, init, docs, 4, np.array([0.0, np.nan, 0.0, 0.0]))
    series = np.zeros((2, 1, 4))
    series[1, 0, 2] = np.inf
    with pytest.raises(ValueError, match="Jet series contains non-finite values"):
        ts.Jet(np.zeros(4), series)
    with pytest.raises(ValueError, match="weights contain non-finite values"):
        _train(model, init, docs, 4, ts.Jet.wrap(np.zeros(4), series))


def test_parameters_of_wrong_shape_missing_or_non_finite(tiny):
    model, init, docs = tiny
    wrong = {**init, "wpe": np.zeros((5, 4))}
    with pytest.raises(ValueError, match=r"parameter 'wpe' has shape \(5, 4\); the model needs \(4, 4\)"):
        _train(model, wrong, docs, 4)
    missing = {k: v for k, v in init.items() if k != "layer0.attn_wk"}
    with pytest.raises(ValueError, match=r"missing \['layer0.attn_wk'\]"):
        _train(model, missing, docs, 4)
    extra = {**init, "bias": np.zeros(4)}
    with pytest.raises(ValueError, match=r"unexpected \['bias'\]"):
        _train(model, extra, docs, 4)
    nan = {**init, "lm_head": init["lm_head"].copy()}
    nan["lm_head"][1, 2] = np.nan
    with pytest.raises(ValueError, match="parameter 'lm_head' has non-finite values"):
        _train(model, nan, docs, 4)


def test_non_finite_loss_names_step_and_document(tiny):
    """A finite but huge ``lm_head`` overflows the logits at the first step."""
    model, init, docs = tiny
    huge = {**init, "lm_head": np.full(init["lm_head"].shape, 1e308)}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
            pytest.raises(TrainingError, match=r"non-finite loss or gradient at step 0 \(document 0: 'ab'\)"):
        _train(model, huge, docs, 4)


def test_non_finite_gradient_later_in_training(tiny):
    """A circuit whose gradient turns NaN at its 7th call: step 6, document 6 mod 4 = 2."""
    model, init, docs = tiny

    class FailsAtStep6(ts.MicroGPT):
        calls = 0

        def loss_and_grads(self, params, encoded, dloss=1.0):
            loss, grads = super().loss_and_grads(params, encoded, dloss)
            FailsAtStep6.calls += 1
            if FailsAtStep6.calls == 7:
                grads["wte"] = grads["wte"] * np.nan
            return loss, grads

    failing = FailsAtStep6(model.vocab, n_embd=4, n_head=2, block_size=4)
    with np.errstate(invalid="ignore"), \
            pytest.raises(TrainingError, match=r"at step 6 \(document 2: 'cab'\)"):
        _train(failing, init, docs, 8)


def test_non_finite_jet_series_is_caught(tiny):
    """In a jet run a non-finite *series* coefficient is an error too: with weights'
    series of 1e300 the primal stays finite (it does not see the series), while
    Adam's ``g^2`` overflows at step 0, so step 1's gradient series is not finite."""
    model, init, docs = tiny
    weights = ts.Jet.from_directions(np.zeros(4), np.full((1, 4), 1e300), order=3)
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(TrainingError, match=r"at step 1 \(document 1: 'ba'\)"):
        _train(model, init, docs, 4, weights)


def test_mlp_bad_document():
    model = ts.MLP(n_in=2, n_hidden=3, n_out=1)
    good = ts.MLP.synthetic_dataset(3, seed=0)
    with pytest.raises(ValueError, match="document 1: an MLP document must be a pair"):
        _train(model, model.init_params(0), [good[0], 5.0, good[2]], 3)
    with pytest.raises(ValueError, match="document 2: x must be 2 finite numbers"):
        _train(model, model.init_params(0), good[:2] + [(np.array([np.nan, 0.0]), np.array([1.0]))], 3)


def test_flatten_into_a_given_buffer_equals_a_fresh_one(small):
    """The run reuses one gradient buffer: writing into it gives the fresh flattening,
    constant (non-jet) gradients as zeros, whatever the buffer held before."""
    from taylorsketch.training import FlatParams
    model, init, _ = small
    like = _jet_weights(np.ones((2, 3)), order=2)
    flat = FlatParams.from_dict(model.param_shapes(), init, like=like)
    rng = np.random.default_rng(5)
    grads = {name: ts.Jet(rng.normal(size=v.shape), rng.normal(size=(2, 2) + v.shape)) for name, v in init.items()}
    grads["wte"] = rng.normal(size=init["wte"].shape)                      # a constant gradient
    buffer = np.full_like(flat.flat.series, np.nan)
    fresh, reused = flat.flatten(grads), flat.flatten(grads, out=buffer)
    assert reused.series is buffer
    np.testing.assert_array_equal(reused.series, fresh.series)
    np.testing.assert_array_equal(reused.primal, fresh.primal)
    a, b = flat.offsets["wte"]
    assert not np.any(reused.series[:, :, a:b])



@pytest.mark.parametrize("series_dtype", [np.float64, np.complex128])
def test_flatten_checked_flags_a_non_finite_series_coefficient(small, series_dtype):
    """The flag comes from the copy itself: with a real buffer (the copy kernel) and with a
    complex buffer that real series are cast into (numpy's assignment), a NaN or inf in one
    coefficient of one parameter is found, and finite series give True with the same values."""
    from taylorsketch.training import FlatParams
    model, init, _ = small
    like = ts.Jet(np.zeros(3), np.zeros((2, 2, 3), dtype=series_dtype))
    flat = FlatParams.from_dict(model.param_shapes(), init, like=like)
    rng = np.random.default_rng(6)
    grads = {name: ts.Jet(rng.normal(size=v.shape), rng.normal(size=(2, 2) + v.shape)) for name, v in init.items()}
    buffer = np.empty_like(flat.flat.series)
    reused, finite = flat.flatten_checked(grads, out=buffer)
    assert finite is True and reused.series is buffer
    np.testing.assert_array_equal(reused.series, flat.flatten(grads).series)
    for bad in (np.nan, np.inf):
        name = list(init)[-1]
        broken = {**grads, name: ts.Jet(grads[name].primal, grads[name].series.copy())}
        broken[name].series.flat[3] = bad
        assert flat.flatten_checked(broken, out=buffer)[1] is False


_FAULTS = """
import resource, numpy as np, taylorsketch as ts
data = ts.MLP.synthetic_dataset(4, seed=0)
model = ts.MLP(n_in=2, n_hidden=3, n_out=1)
ts.train(model, model.init_params(seed=0), data, weights=ts.Jet.from_directions(np.zeros(4), np.ones((1, 4)), 1),
         progress=False)
np.ones(3 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    np.ones(3 << 20)            # 24 MiB, allocated, touched and freed, as a jet step's temporaries are
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the malloc tuning is glibc's")
def test_jet_training_makes_malloc_keep_freed_memory():
    """After a jet run, freeing and reallocating a large array reuses its pages (measured here:
    0 faults in 20 rounds against 523 untuned) instead of
    faulting in fresh ones (TAYLORSKETCH_KEEP_FREED_MEMORY=0: glibc as it comes)."""
    def faults(keep):
        env = dict(os.environ, TAYLORSKETCH_KEEP_FREED_MEMORY=keep)
        out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])
    tuned, untuned = faults("1"), faults("0")
    assert tuned * 4 < untuned, (tuned, untuned)


@pytest.mark.parametrize("order, n_dirs, complex_", [(1, 1, False), (3, 4, True), (6, 2, False), (12, 1, True)])
def test_the_loss_scales_are_one_minus_each_weight_to_the_bit(order, n_dirs, complex_):
    """A step's loss scale ``1 - w_i``, read from all of them computed at once, equals the
    jet operation on the one weight (values, dtype, shape; its series contiguous)."""
    from taylorsketch.training import loss_scales
    rng = np.random.default_rng(order)
    directions = rng.normal(size=(n_dirs, 7)) + (1j * rng.normal(size=(n_dirs, 7)) if complex_ else 0)
    weights = ts.Jet.from_directions(rng.normal(size=7), directions, order)
    scale = loss_scales(weights)
    for i in range(7):
        expected, got = 1.0 - weights[i], scale(i)
        assert type(got) is ts.Jet and got.primal.shape == expected.primal.shape == ()
        assert np.array_equal(got.primal, expected.primal) and np.array_equal(got.series, expected.series)
        assert got.series.dtype == expected.series.dtype and got.series.flags.c_contiguous
    plain = rng.normal(size=7)
    assert all(loss_scales(plain)(i) == 1.0 - plain[i] for i in range(7))
