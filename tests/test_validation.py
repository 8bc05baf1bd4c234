"""Validation against retraining (``taylorsketch/validation.py``): shapes, the
truth is retraining, the predictions are the sketch's truncations, and the
summary numbers (errors, rank correlation, coverage) recomputed by hand.

Shape legend: S = deletion sets, K = order.
"""

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

import taylorsketch as ts

STEPS = 20


@pytest.fixture(scope="module")
def setup():
    docs = [d for d in ts.load_names() if set(d) <= set("abcdefgh") and len(d) <= 7][:20]
    model = ts.MicroGPT(ts.Vocab("abcdefgh"), n_embd=8, n_head=2, block_size=8)
    init = model.init_params(seed=0)
    sketch = ts.precompute(model, init, docs, order=2, directions=16, steps=STEPS, progress=False)
    return model, init, docs, sketch, ts.measure.doc_loss(model, "bad")


@pytest.fixture(scope="module")
def validation(setup):
    model, init, docs, sketch, phi = setup
    return ts.validate(sketch, model, init, docs, phi, sizes=(1, 3), sets_per_size=2, seed=0,
                       progress=False)


def test_shapes(validation):
    v = validation
    assert v.sizes == [1, 3] and v.degree == 2
    assert [len(s) for s in v.sets] == [1, 1, 3, 3]
    assert v.truth.shape == (4,) and v.stderr.shape == (4,) and v.truncations.shape == (4, 3)
    assert v.errors().shape == (2, 3)
    for s in v.sets:
        assert np.all(np.diff(s) > 0) and 0 <= s.min() and s.max() < 20


def test_truth_is_retraining_and_predictions_are_the_sketch(setup, validation):
    model, init, docs, sketch, phi = setup
    v = validation
    for deleted, truth, truncations, stderr in zip(v.sets, v.truth, v.truncations, v.stderr):
        params = ts.retrain(model, init, docs, deleted, steps=STEPS, progress=False)
        assert truth == phi(params)
        p = sketch.predict(phi, deleted)
        assert np.array_equal(truncations, p.truncations()) and stderr == p.stderr
    assert np.all(v.truncations[:, 0] == v.base)
    assert v.base == phi(ts.train(model, init, docs, steps=STEPS, progress=False))


def test_summary_numbers_by_hand(validation):
    v = validation
    sizes = np.array([len(s) for s in v.sets])
    errors = np.abs(v.truncations - v.truth[:, None])
    by_hand = np.stack([errors[sizes == 1].mean(axis=0), errors[sizes == 3].mean(axis=0)])
    assert np.allclose(v.errors(), by_hand, rtol=1e-14)
    assert np.allclose(v.errors()[:, 0], [np.abs(v.base - v.truth[sizes == s]).mean() for s in (1, 3)])
    for degree in (1, 2):
        rho = v.rank_correlation(degree)
        assert -1 <= rho <= 1
        assert rho == pytest.approx(spearmanr(v.truncations[:, degree], v.truth).statistic)
    assert v.rank_correlation() == v.rank_correlation(2)
    assert v.within(3.0) == np.mean(np.abs(v.truncations[:, -1] - v.truth) <= 3 * v.stderr)
    assert 0 <= v.within() <= 1

    report = json.loads(json.dumps(v.as_dict()))
    assert report["sets"] == [s.tolist() for s in v.sets]
    assert report["mean_abs_error"]["size 3"] == pytest.approx(v.errors()[1].tolist())
    text = v.format()
    assert "rank correlation" in text and len(text.splitlines()) == 2 + len(v.sizes)


def test_rank_correlation_needs_three_sets(setup):
    model, init, docs, sketch, phi = setup
    v = ts.validate(sketch, model, init, docs, phi, sizes=(2,), sets_per_size=2, progress=False)
    assert np.isnan(v.rank_correlation())


def test_bad_input(setup):
    model, init, docs, sketch, phi = setup
    for sizes in ((0,), (21,)):
        with pytest.raises(ValueError, match="sizes"):
            ts.validate(sketch, model, init, docs, phi, sizes=sizes, progress=False)
    with pytest.raises(ValueError, match="fingerprint"):
        ts.validate(sketch, model, init, docs[::-1], phi, progress=False)
