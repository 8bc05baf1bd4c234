"""Per-document jets and the estimators built on them (``taylorsketch/documents.py``
and the ``documents`` kind of ``Sketch``).

(a) the per-document series against exact-direction jets along ``e_i`` and
against finite differences of retraining; (b) leave-one-out against retraining;
(c) the additive models against brute force (the summed parameter series,
evaluated directly); (d) the residual estimator unbiased over many independent
groups of directions; (e) the direction planner; (f) persistence and bad input.

Shape legend: n = documents, M = directions, K = order, P = parameters.
"""

import math

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch import documents as dm

N_DOCS = 14


@pytest.fixture(scope="module")
def small():
    """A small MicroGPT on 14 names, 20 steps (so documents 0..5 are seen twice)."""
    s = ts.paper.setup()
    model = ts.MicroGPT(s.vocab, n_embd=8, n_head=2, block_size=8)
    init = model.init_params(seed=3)
    docs = s.docs[:N_DOCS]
    per = ts.precompute(model, init, docs, order=4, directions="documents", steps=20, batch_size=4,
                        progress=False)
    return {"model": model, "init": init, "docs": docs, "per": per, "steps": 20,
            "phi": ts.measure.doc_loss(model, "max")}


def flat(model, params):
    return np.concatenate([np.ravel(params[name]) for name in model.param_shapes()])


# ----------------------------------------------------------------------------
# (a) the series


def test_series_equal_exact_direction_jets(small):
    """Late-started batches give the jets of a full run along every e_i (to rounding)."""
    exact = ts.precompute(small["model"], small["init"], small["docs"], order=4, directions=np.eye(N_DOCS),
                          steps=small["steps"], progress=False)
    per = small["per"]
    assert per.kind == "documents" and per.series.shape == exact.series.shape
    assert np.abs(per.series - exact.series).max() <= 1e-10 * np.abs(exact.series).max()
    assert np.array_equal(per.primal, exact.primal)


def test_batch_size_does_not_change_the_series(small):
    other = ts.precompute(small["model"], small["init"], small["docs"], order=4, directions="documents",
                          steps=small["steps"], batch_size=5, progress=False)
    assert np.abs(other.series - small["per"].series).max() <= 1e-15


def test_documents_never_trained_on_have_zero_series(small):
    per = ts.precompute(small["model"], small["init"], small["docs"], order=2, directions="documents",
                        steps=9, progress=False)
    assert np.all(per.series[:, 9:] == 0) and np.all(np.abs(per.series[0, :9]).max(axis=1) > 0)
    trained = ts.train(small["model"], small["init"], small["docs"], steps=9, progress=False)
    assert np.allclose(per.primal, flat(small["model"], trained), rtol=0, atol=1e-15)


def test_first_order_series_matches_finite_differences_of_retraining(small):
    """c_1 and c_2 of the parameters along e_i by Richardson-extrapolated central differences."""
    model, init, docs, steps = small["model"], small["init"], small["docs"], small["steps"]
    i = 3

    def theta(h):
        w = np.zeros(N_DOCS)
        w[i] = h
        return flat(model, ts.train(model, init, docs, steps=steps, weights=w, progress=False))

    def central(h):
        return (theta(h) - theta(-h)) / (2 * h), (theta(h) - 2 * theta(0.0) + theta(-h)) / h ** 2

    (d1_h, d2_h), (d1_2h, d2_2h) = central(1e-3), central(2e-3)
    d1 = (4 * d1_h - d1_2h) / 3
    d2 = (4 * d2_h - d2_2h) / 3
    series = small["per"].series[:, i]
    assert np.allclose(series[0], d1, rtol=0, atol=1e-9 * np.abs(d1).max() + 1e-12)
    assert np.allclose(2 * series[1], d2, rtol=0, atol=1e-5 * np.abs(d2).max())


# ----------------------------------------------------------------------------
# (b) leave-one-out


def test_leave_one_out_against_retraining(small):
    """Down-weighting each document by t = 0.5: the truncation error falls with the
    degree, to well below the linear surrogate's (at t = 1 the largest single-document
    effect of this 20-step run converges slowly: 2.3e-2 at degree 1, 1.0e-2 at 4)."""
    model, init, docs, steps, phi = small["model"], small["init"], small["docs"], small["steps"], small["phi"]
    loo = small["per"].leave_one_out(phi, docs=docs)
    assert loo.coefficients.shape == (N_DOCS, 5)
    assert loo.base == pytest.approx(phi(ts.train(model, init, docs, steps=steps, progress=False)), abs=1e-14)
    truth = np.array([phi(ts.retrain(model, init, docs, [i], t=0.5, steps=steps, progress=False))
                      for i in range(N_DOCS)])
    worst = [np.abs(loo.values(k, t=0.5) - truth).max() for k in range(1, 5)]
    assert all(a > b for a, b in zip(worst, worst[1:]))
    assert worst[-1] < 1e-3 and worst[-1] < 0.1 * worst[0]


def test_leave_one_out_ranking(small):
    loo = small["per"].leave_one_out(small["phi"], docs=small["docs"])
    rows = loo.ranked(top=5)
    changes = [abs(r["change"]) for r in rows]
    assert len(rows) == 5 and changes == sorted(changes, reverse=True)
    assert changes[0] == pytest.approx(np.abs(loo.changes()).max())
    assert rows[0]["doc"] == small["docs"][rows[0]["index"]]
    text = loo.format(top=3)
    assert repr(rows[0]["doc"]) in text and len(text.splitlines()) == 5
    assert loo.as_dict(top=2)["ranked"] == rows[:2]


# ----------------------------------------------------------------------------
# (c) the additive models


def test_additive_is_exact_for_one_document(small):
    per, phi = small["per"], small["phi"]
    loo = per.leave_one_out(phi)
    for i in (0, 5, 13):
        for method in ("additive", "sum"):
            p = per.predict(phi, [i], method=method)
            assert p.value == pytest.approx(loo.values()[i], abs=1e-13)
            assert p.method == method and math.isnan(p.stderr)


def test_additive_against_direct_evaluation(small):
    """The jet of phi on the summed parameter series equals phi evaluated directly on
    theta_0 + sum_{i in D} sum_r t^r theta_r^(i), to O(t^(K+1))."""
    per, phi, model = small["per"], small["phi"], small["model"]
    deleted = [1, 4, 8, 11]
    shapes = model.param_shapes()
    summed = per.series[:, deleted].sum(axis=1)                  # (K, P)
    for t in (0.05, 0.1):
        theta = per.primal + sum(t ** (r + 1) * summed[r] for r in range(per.order))
        direct = phi(_views(shapes, theta))
        p = per.predict(phi, deleted, t=t, method="additive")
        assert abs(p.value - direct) < 50 * t ** (per.order + 1) * abs(p.terms[-1] / t ** per.order) + 1e-14


def _views(shapes, theta):
    out, start = {}, 0
    for name, shape in shapes.items():
        out[name] = theta[start:start + math.prod(shape)].reshape(shape)
        start += math.prod(shape)
    return out


def test_additive_series_along_directions():
    """sum_i w_i^r theta_r^(i): indicators sum the series, unit vectors pick one, and
    complex weights raise to powers."""
    rng = np.random.default_rng(0)
    series = rng.normal(size=(3, 5, 7))
    w = rng.normal(size=(2, 5)) + 1j * rng.normal(size=(2, 5))
    out = dm.additive_series(series, w)
    expected = np.stack([[sum(w[q, i] ** (r + 1) * series[r, i] for i in range(5)) for q in range(2)]
                         for r in range(3)])
    assert np.allclose(out, expected)
    loo = rng.normal(size=(5, 4))
    loo[:, 0] = 2.0
    coeffs = dm.scalar_additive(loo, np.eye(5)[[2]])
    assert np.allclose(coeffs[0], loo[2])
    coeffs = dm.scalar_additive(loo, w)
    assert np.allclose(coeffs[:, 0], 2.0)
    assert np.allclose(coeffs[:, 1:], [[sum(w[q, i] ** r * loo[i, r] for i in range(5)) for r in range(1, 4)]
                                       for q in range(2)])


def test_additive_coefficients_along_unit_vectors_are_the_leave_one_out_ones(small):
    per, phi = small["per"], small["phi"]
    along = dm.additive_coefficients(per, phi, np.eye(N_DOCS)[[2, 9]])
    assert np.allclose(along, per.leave_one_out(phi).coefficients[[2, 9]], rtol=0, atol=1e-14)


# ----------------------------------------------------------------------------
# (d) the residual estimator


@pytest.fixture(scope="module")
def random_sketch(small):
    return ts.precompute(small["model"], small["init"], small["docs"], order=2, directions=1600, seed=4,
                         steps=small["steps"], batch_size=400, progress=False)


def test_residual_estimator_is_unbiased(small, random_sketch):
    """Over 40 independent groups of 40 directions, the residual estimate's mean is the
    exact degree-2 polynomial plus the additive model's orders 3..4, within a few
    standard errors, and its z-scores spread like a standard normal's."""
    model, init, docs, steps, phi, per = (small[k] for k in ("model", "init", "docs", "steps", "phi", "per"))
    sk = random_sketch
    deleted = [0, 2, 5, 6, 9, 12]
    indicator = np.zeros(N_DOCS)
    indicator[deleted] = 1.0
    exact = ts.precompute(model, init, docs, order=4, directions=indicator[None], steps=steps, progress=False)
    c = exact.coefficients(phi)[0].real
    additive = per.predict(phi, deleted, method="additive")
    expected = c[0] + c[1:3].sum() + additive.terms[2:].sum()
    values, z = [], []
    for g in np.array_split(np.arange(sk.n_directions), 40):
        sub = ts.Sketch(model, sk.primal, sk.series[:, g], sk.directions[g], sk.direction_ids[g], sk.meta)
        p = sub.predict(phi, deleted, documents=per)
        assert p.method == "residual" and p.terms.shape == (4,)
        assert p.terms[0] == pytest.approx(additive.terms[0], abs=1e-15)   # first order is exact
        values.append(p.value)
        z.append((p.value - expected) / p.stderr)
    values = np.array(values)
    assert abs(values.mean() - expected) < 4 * values.std(ddof=1) / math.sqrt(len(values))
    assert 0.6 < np.std(z, ddof=1) < 1.5
    # the residual's variance is what the additive model leaves out: below the paper's estimator's
    plain = sk.predict(phi, deleted, method="sketch")
    full = sk.predict(phi, deleted, documents=per)
    assert full.stderr < plain.stderr


def test_residual_of_one_document_is_the_exact_leave_one_out(small, random_sketch):
    """The residual has no single-document monomials; their moments are left out, so for
    one document the random part vanishes exactly, noise included."""
    per, phi = small["per"], small["phi"]
    p = random_sketch.predict(phi, [7], documents=per)
    assert p.value == per.predict(phi, [7], method="additive").value and p.stderr == 0.0
    assert random_sketch.predict(phi, [7, 8], documents=per).stderr > 0


def test_default_methods(small, random_sketch):
    per, phi, sk = small["per"], small["phi"], random_sketch
    assert per.predict(phi, [1, 2]).method == "sum"
    assert sk.predict(phi, [1, 2]).method == "sketch"
    assert sk.predict(phi, [1, 2], documents=per).method == "residual"


# ----------------------------------------------------------------------------
# (e) the direction planner


def test_required_directions_reaches_the_target(small, random_sketch):
    model, init, docs, steps, phi, per = (small[k] for k in ("model", "init", "docs", "steps", "phi", "per"))
    pilot = ts.Sketch(model, random_sketch.primal, random_sketch.series[:, :64], random_sketch.directions[:64],
                      random_sketch.direction_ids[:64], random_sketch.meta)
    deleted = [1, 3, 10]
    se = pilot.predict(phi, deleted, documents=per).stderr
    needed = pilot.required_directions(phi, deleted, se / 2, documents=per)
    assert needed == pytest.approx(256, abs=1)
    assert pilot.required_directions(phi, deleted, se / 2, documents=per, groups=8) == math.ceil(math.pi / 2 * needed)
    bigger = ts.Sketch(model, random_sketch.primal, random_sketch.series[:, 64:64 + needed],
                       random_sketch.directions[64:64 + needed], random_sketch.direction_ids[64:64 + needed],
                       random_sketch.meta)
    assert 0.6 * se / 2 < bigger.predict(phi, deleted, documents=per).stderr < 1.5 * se / 2


@pytest.mark.parametrize("target", [0.0, -1.0, float("nan"), float("inf")])
def test_required_directions_refuses_bad_targets(small, random_sketch, target):
    with pytest.raises(ValueError, match="target_stderr"):
        random_sketch.required_directions(small["phi"], [1], target)


# ----------------------------------------------------------------------------
# (f) persistence and bad input


def test_documents_sketch_round_trip(small, tmp_path):
    per = small["per"]
    per.save(tmp_path / "per.npz")
    back = ts.Sketch.load(tmp_path / "per.npz")
    assert back.kind == "documents" and back.n_docs == N_DOCS and back.directions.shape == (0, N_DOCS)
    assert np.array_equal(back.series, per.series)
    for method in ("sum", "additive"):
        assert back.predict(small["phi"], [2, 3], method=method).value == \
            per.predict(small["phi"], [2, 3], method=method).value


def test_documents_file_with_a_direction_matrix_is_refused(small, tmp_path):
    per = small["per"]
    damaged = ts.Sketch(per.model, per.primal, per.series, np.eye(N_DOCS), per.direction_ids, per.meta)
    damaged.save(tmp_path / "bad.npz")
    with pytest.raises(ts.SketchFileError, match="no direction matrix"):
        ts.Sketch.load(tmp_path / "bad.npz")


def test_documents_sketch_of_other_data_or_model_is_refused(small, random_sketch):
    model, init, docs, steps, phi = (small[k] for k in ("model", "init", "docs", "steps", "phi"))
    other_docs = ts.precompute(model, init, list(reversed(docs)), order=2, directions="documents", steps=steps,
                               progress=False)
    with pytest.raises(ValueError, match="fingerprint"):
        random_sketch.predict(phi, [1], documents=other_docs)
    other_init = ts.precompute(model, model.init_params(seed=99), docs, order=2, directions="documents",
                               steps=steps, progress=False)
    with pytest.raises(ValueError, match="primal"):
        random_sketch.predict(phi, [1], documents=other_init)
    with pytest.raises(ValueError, match="kind 'documents'"):
        random_sketch.predict(phi, [1], documents=random_sketch)


def test_bad_requests_to_a_documents_sketch(small, random_sketch):
    per, phi = small["per"], small["phi"]
    with pytest.raises(ValueError, match="indices must be in 0..13"):
        per.predict(phi, [14])
    with pytest.raises(ValueError, match="method must be one of"):
        per.predict(phi, [1], method="sketch")
    with pytest.raises(ValueError, match="method must be one of"):
        random_sketch.predict(phi, [1], method="additive")
    with pytest.raises(ValueError, match="needs the documents sketch"):
        random_sketch.predict(phi, [1], method="residual")
    with pytest.raises(ValueError, match="combines a documents sketch"):
        per.predict(phi, [1], documents=per)
    with pytest.raises(ValueError, match="kind 'documents'"):
        random_sketch.leave_one_out(phi)
    with pytest.raises(ValueError, match="degree"):
        per.predict(phi, [1], degree=7)
    with pytest.raises(ValueError, match="degree"):
        per.leave_one_out(phi).values(degree=1.5)


def test_bad_precompute_requests(small):
    model, init, docs = small["model"], small["init"], small["docs"]
    with pytest.raises(ValueError, match="'documents'"):
        ts.precompute(model, init, docs, order=2, directions="document", progress=False)
    with pytest.raises(ValueError, match="not sharded"):
        ts.precompute(model, init, docs, order=2, directions="documents", num_shards=2, progress=False)
