"""Measurements (``taylorsketch/measure.py``): ``doc_loss`` is the model's loss,
``logprob`` is the chain of next-token probabilities computed by hand, and
``as_measure`` wraps callables and refuses anything else."""

import math

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch.measure import Measure, as_measure


@pytest.fixture(scope="module")
def gpt():
    model = ts.MicroGPT(ts.Vocab("abcde"), n_embd=8, n_head=2, block_size=8)
    return model, model.init_params(seed=3)


def jet_params(model, params, order=2, n_directions=3, seed=0):
    """Every parameter as a jet along random complex directions."""
    rng = np.random.default_rng(seed)
    return {name: ts.Jet.from_directions(value, rng.normal(size=(n_directions,) + value.shape)
                                         + 1j * rng.normal(size=(n_directions,) + value.shape), order)
            for name, value in params.items()}


def test_doc_loss_is_the_model_loss(gpt):
    model, params = gpt
    for doc in ("abc", "e", "deadbee"):
        phi = ts.measure.doc_loss(model, doc)
        assert phi(params) == model.loss(params, doc)
        assert phi.name == f"loss({doc!r})"


def test_doc_loss_on_jets_is_the_model_loss_on_jets(gpt):
    model, params = gpt
    jets = jet_params(model, params)
    value = ts.measure.doc_loss(model, "bad")(jets)
    reference = model.loss(jets, "bad")
    assert isinstance(value, ts.Jet) and value.shape == ()
    assert value.primal == reference.primal == pytest.approx(model.loss(params, "bad"), rel=1e-14)
    assert np.array_equal(value.series, reference.series)


def test_doc_loss_of_an_mlp():
    model = ts.MLP(n_in=2, n_hidden=4, n_out=1)
    params = model.init_params(seed=1)
    doc = (np.array([0.5, -1.0]), np.array([0.25]))
    assert ts.measure.doc_loss(model, doc)(params) == model.loss(params, doc)


def _logsoftmax(row):
    return row - row.max() - math.log(np.exp(row - row.max()).sum())


def test_logprob_by_hand(gpt):
    model, params = gpt
    vocab = model.vocab
    prefix, continuation = "ab", "cd$"
    tokens = [vocab.bos] + [vocab.chars.index(ch) for ch in "abcd"] + [vocab.bos]
    logits = model.logits(params, np.array(tokens[:-1]))                      # (5, V)
    # positions 2, 3, 4 predict c, d and the end of the name
    by_hand = sum(_logsoftmax(logits[p])[tokens[p + 1]] for p in (2, 3, 4))
    phi = ts.measure.logprob(model, prefix, continuation)
    assert float(phi(params)) == pytest.approx(by_hand, rel=1e-13)
    assert phi.name == "logP('cd$'|'ab')"


def test_logprob_agrees_with_the_loss_and_the_chain_rule(gpt):
    model, params = gpt

    def logp(prefix, continuation):
        return float(ts.measure.logprob(model, prefix, continuation)(params))

    # the loss of a document is minus the mean log-probability of its tokens and end
    assert logp("", "abcd$") == pytest.approx(-5 * model.loss(params, "abcd"), rel=1e-13)
    assert logp("", "abcd$") == pytest.approx(logp("", "ab") + logp("ab", "cd$"), rel=1e-13)
    assert logp("a", "b") < 0


def test_logprob_on_jets(gpt):
    model, params = gpt
    phi = ts.measure.logprob(model, "a", "be")
    value = phi(jet_params(model, params))
    assert isinstance(value, ts.Jet) and value.shape == ()
    assert float(value.primal) == pytest.approx(float(phi(params)), rel=1e-13)


def test_logprob_bad_input(gpt):
    model, _ = gpt
    with pytest.raises(ValueError, match="empty"):
        ts.measure.logprob(model, "ab", "")
    with pytest.raises(ValueError, match="block_size"):
        ts.measure.logprob(model, "abcde", "abcde")
    with pytest.raises(ValueError, match="vocabulary"):
        ts.measure.logprob(model, "", "xyz")
    with pytest.raises(AttributeError):
        ts.measure.logprob(ts.MLP(), "", "a")


def test_measures_are_keyed_for_caching(gpt):
    model, _ = gpt
    assert ts.measure.doc_loss(model, "abc") == ts.measure.doc_loss(model, "abc")
    assert ts.measure.doc_loss(model, "abc").key != ts.measure.doc_loss(model, "abd").key
    assert ts.measure.logprob(model, "a", "b").key != ts.measure.logprob(model, "", "ab").key
    assert ts.measure.doc_loss(model, "ab").key != ts.measure.logprob(model, "", "ab").key


def test_as_measure():
    def my_measure(params):
        return params["w"].sum()

    wrapped = as_measure(my_measure)
    assert isinstance(wrapped, Measure) and wrapped.name == "my_measure"
    assert wrapped({"w": np.arange(4.0)}) == 6.0
    assert as_measure(my_measure).key == wrapped.key
    assert as_measure(lambda p: 0.0).key != wrapped.key
    assert as_measure(wrapped) is wrapped
    for not_callable in ("loss('max')", 3.0, None, [my_measure]):
        with pytest.raises(TypeError, match="callable"):
            as_measure(not_callable)


def test_the_measurements_pickle_to_workers():
    """doc_loss and logprob survive pickle (Sketch.coefficients sends them to workers)."""
    import pickle
    model = ts.MicroGPT(ts.Vocab("abc"), n_embd=4, n_head=1, block_size=4)
    params = model.init_params(seed=1)
    for phi in (ts.measure.doc_loss(model, "abc"), ts.measure.logprob(model, "ab", "c")):
        again = pickle.loads(pickle.dumps(phi))
        assert again.name == phi.name and again.key == phi.key
        assert again(params) == phi(params)
