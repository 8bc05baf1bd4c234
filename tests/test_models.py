"""The learning circuits of ``taylorsketch/models.py``: MicroGPT and MLP.

Gradients of every parameter against central differences of the loss (a
small MicroGPT, the paper's MicroGPT on a paper document, and both MLP tasks);
truncation to ``block_size``; ``logprob`` and the loss against log-softmax
computed by hand from the logits; sampling; the paper's parameter names, order,
shapes and initialisation stream.

Shape legend: n = positions, C = n_embd, V = vocabulary size.
"""

import random

import numpy as np
import pytest

import taylorsketch as ts

PAPER_NAMES = ["wte", "wpe", "lm_head", "layer0.attn_wq", "layer0.attn_wk", "layer0.attn_wv",
               "layer0.attn_wo", "layer0.mlp_fc1", "layer0.mlp_fc2"]


def small_gpt():
    return ts.MicroGPT(ts.Vocab("abc"), n_embd=8, n_head=2, block_size=8)


def fd_gradients(loss_fn, params, h=1e-3):
    """Gradient of ``loss_fn(params)`` for every entry of every parameter.

    Central differences at ``h`` and ``h/2`` combined by Richardson
    extrapolation: truncation error O(h^4 f^(5)) ~ 1e-12, rounding error
    ~ eps |loss| / h ~ 1e-12, for losses and derivatives of order 1.  Entries
    are moved in place and restored, so no parameter is copied.
    """
    grads = {}
    for name, value in params.items():
        grad = np.empty_like(value)
        for index in np.ndindex(value.shape):
            original = value[index]

            def g(t):
                value[index] = original + t
                return loss_fn(params)

            coarse = (g(h) - g(-h)) / (2 * h)
            fine = (g(h / 2) - g(-h / 2)) / h
            value[index] = original
            grad[index] = (4 * fine - coarse) / 3
        grads[name] = grad
    return grads


def assert_gradients_close(got, want, atol):
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=atol, err_msg=name)


# -- MicroGPT gradients -------------------------------------------------------


@pytest.mark.parametrize("doc", ["abcab", "c", "abcabcabcabcab"])   # the last is longer than block_size
def test_microgpt_gradient_small(doc):
    model = small_gpt()
    params = model.init_params(seed=1)
    tokens = model.encode(doc)
    loss, grads = model.loss_and_grads(params, tokens)
    assert loss == model.loss(params, doc)
    want = fd_gradients(lambda p: float(model.forward(p, tokens)[0]), params)
    # measured differences ~4e-11 (the difference formula's truncation: gradients up to 0.6)
    assert_gradients_close(grads, want, atol=1e-9)


def test_microgpt_gradient_paper_config():
    """Every one of the 4,192 parameters, on a paper document, from the paper's initialisation."""
    s = ts.paper.setup(seed=42)
    model = s.model()
    doc = s.docs[2]                                     # a training document that contains 'x'
    tokens = model.encode(doc)
    params = {k: v.copy() for k, v in s.init.items()}
    _, grads = model.loss_and_grads(params, tokens)
    want = fd_gradients(lambda p: float(model.forward(p, tokens)[0]), params)
    # measured differences ~2e-12 for gradients up to 0.34 (mean |entry| ~1e-4 in some matrices)
    assert_gradients_close(grads, want, atol=1e-10)


def test_gradient_is_scaled_by_dloss():
    """The seed ``dloss`` (the paper's ``1 - w_i``) scales every gradient."""
    model = small_gpt()
    params = model.init_params(seed=2)
    tokens = model.encode("abca")
    _, grads = model.loss_and_grads(params, tokens)
    _, scaled = model.loss_and_grads(params, tokens, dloss=0.25)
    for name in grads:
        np.testing.assert_allclose(scaled[name], 0.25 * grads[name], rtol=1e-14, atol=1e-18)


# -- truncation, loss and logprob by hand ---------------------------------------


def _log_softmax_by_hand(logits):
    """Row-wise ``z - log(sum(exp(z)))``, stabilised by the row maximum."""
    top = logits.max(axis=-1, keepdims=True)
    return logits - (np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)) + top)


def test_long_document_is_truncated_to_block_size():
    model = small_gpt()                                 # block_size 8
    params = model.init_params(seed=3)
    doc = "abcabcabcabca"                               # 13 characters, 15 tokens
    tokens = model.encode(doc)
    loss, _ = model.forward(params, tokens)
    assert loss == model.forward(params, tokens[:9])[0]             # 8 positions, 9 tokens
    logp = _log_softmax_by_hand(model.logits(params, tokens[:8]))
    by_hand = -np.mean(logp[np.arange(8), tokens[1:9]])
    assert loss == pytest.approx(by_hand, rel=1e-14)


def test_loss_is_mean_next_token_cross_entropy():
    s = ts.paper.setup(seed=42)
    model = s.model()
    tokens = model.encode("max")                         # [BOS, m, a, x, BOS]: 4 positions
    logp = _log_softmax_by_hand(model.logits(s.init, tokens[:-1]))
    by_hand = -np.mean(logp[np.arange(4), tokens[1:]])
    assert model.loss(s.init, "max") == pytest.approx(by_hand, rel=1e-14)


@pytest.mark.parametrize("prefix, continuation", [("ab", "c"), ("ab", "ca$"), ("", "b"),
                                                  ("", "abc$"), ("c", "$")])
def test_logprob_by_hand(prefix, continuation):
    model = small_gpt()
    params = model.init_params(seed=4)
    chars = prefix + continuation.rstrip("$")
    ids = [model.vocab.bos] + ["abc".index(ch) for ch in chars]
    if continuation.endswith("$"):
        ids.append(model.vocab.bos)
    n_cont = len(continuation)
    logp = _log_softmax_by_hand(model.logits(params, np.array(ids[:-1])))
    want = sum(logp[p, ids[p + 1]] for p in range(len(ids) - 1 - n_cont, len(ids) - 1))
    assert model.logprob(params, prefix, continuation) == pytest.approx(want, rel=1e-14)


def test_logprob_errors():
    model = small_gpt()
    params = model.init_params(seed=4)
    with pytest.raises(ValueError, match="empty continuation"):
        model.logprob(params, "ab", "")
    with pytest.raises(ValueError, match="longer than block_size=8"):
        model.logprob(params, "abcabcab", "c")


def test_logprob_and_loss_on_jets():
    """With jet parameters a measurement is a 0-d Jet whose primal is the plain value."""
    model = small_gpt()
    params = model.init_params(seed=5)
    rng = np.random.default_rng(5)
    jets = {k: ts.Jet.from_directions(v, rng.normal(size=(2,) + v.shape), order=2)
            for k, v in params.items()}
    for plain, jet in [(model.loss(params, "abc"), model.loss(jets, "abc")),
                       (model.logprob(params, "a", "bc$"), model.logprob(jets, "a", "bc$"))]:
        assert isinstance(jet, ts.Jet) and jet.shape == () and jet.n_directions == 2
        np.testing.assert_allclose(jet.primal, plain, rtol=1e-14)


# -- sampling -------------------------------------------------------------------


def test_sample_returns_names_over_the_vocabulary():
    s = ts.paper.setup(seed=42)
    model = s.model()
    names = model.sample(s.init, n=12, seed=1)
    assert len(names) == 12
    assert all(isinstance(name, str) and len(name) <= model.config.block_size for name in names)
    assert set("".join(names)) <= set(s.vocab.chars)
    assert names == model.sample(s.init, n=12, seed=1)                 # reproducible
    jets = {k: ts.Jet.constant(v, order=2) for k, v in s.init.items()}
    assert model.sample(jets, n=12, seed=1) == names                     # a jet samples from its primal


def test_sample_rejects_bad_temperature():
    model = small_gpt()
    with pytest.raises(ValueError, match="temperature"):
        model.sample(model.init_params(0), temperature=0.0)


# -- parameters -------------------------------------------------------------------


def test_paper_parameter_names_shapes_and_count():
    model = ts.paper.setup(seed=42).model()
    shapes = model.param_shapes()
    assert list(shapes) == PAPER_NAMES
    assert shapes["wte"] == (27, 16) and shapes["wpe"] == (16, 16) and shapes["lm_head"] == (27, 16)
    assert all(shapes[f"layer0.attn_w{x}"] == (16, 16) for x in "qkvo")
    assert shapes["layer0.mlp_fc1"] == (64, 16) and shapes["layer0.mlp_fc2"] == (16, 64)
    assert sum(np.prod(s) for s in shapes.values()) == 4192


def test_init_draws_gauss_in_paper_order():
    """Matrix by matrix in the order above, row by row, one ``gauss(0, 0.08)`` per entry."""
    model = small_gpt()
    params = model.init_params(seed=3)
    rng = random.Random(3)
    stream = np.array([rng.gauss(0, 0.08) for _ in range(sum(v.size for v in params.values()))])
    np.testing.assert_array_equal(np.concatenate([params[n].ravel() for n in model.param_shapes()]),
                                  stream)


def test_bad_config():
    with pytest.raises(ValueError, match="not a multiple of n_head"):
        ts.MicroGPT(ts.Vocab("abc"), n_embd=6, n_head=4)


# -- MLP --------------------------------------------------------------------------


@pytest.mark.parametrize("task, n_out", [("regression", 2), ("classification", 3)])
def test_mlp_gradient(task, n_out):
    model = ts.MLP(n_in=3, n_hidden=5, n_out=n_out, task=task)
    params = model.init_params(seed=6)
    rng = np.random.default_rng(6)
    params = {k: v + 0.1 * rng.normal(size=v.shape) for k, v in params.items()}   # non-zero biases
    doc = (rng.normal(size=3), rng.normal(size=2) if task == "regression" else 2)
    encoded = model.encode(doc)
    _, grads = model.loss_and_grads(params, encoded)
    want = fd_gradients(lambda p: float(model.forward(p, encoded)[0]), params)
    assert_gradients_close(grads, want, atol=1e-10)


def test_mlp_predict_matches_forward():
    model = ts.MLP(n_in=2, n_hidden=4, n_out=1)
    params = model.init_params(seed=7)
    x, y = ts.MLP.synthetic_dataset(1, seed=7)[0]
    loss = model.loss(params, (x, y))
    assert loss == pytest.approx(float((model.predict(params, x)[0] - y[0]) ** 2), rel=1e-14)
