"""The data-deletion sketch (``taylorsketch/sketch.py``, ``taylorsketch/precomputation.py``).

(a) the exact-direction mode on a small MicroGPT against retraining and
finite differences; (b) the random sketch on the same MicroGPT against the
exact polynomial and retraining; (c) coefficients, stability; (d) persistence
(round trip, atomic save, damaged files, fingerprints); (e) shards, merge and
workers; (f) bad input.  The estimators on a polynomial circuit are in
``test_estimator.py``.

Shape legend: n = documents, M = directions, K = order.
"""

import json
import os
import pickle

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch.sketch import Sketch


# ----------------------------------------------------------------------------
# a small MicroGPT


STEPS = 20
DELETED = [3, 11]


@pytest.fixture(scope="module")
def tiny():
    """(model, init, docs, phi): a MicroGPT on 20 short names over the letters a..h."""
    docs = [d for d in ts.load_names() if set(d) <= set("abcdefgh") and len(d) <= 7][:20]
    model = ts.MicroGPT(ts.Vocab("abcdefgh"), n_embd=8, n_head=2, block_size=8)
    return model, model.init_params(seed=0), docs, ts.measure.doc_loss(model, "bad")


def retrained(tiny, t, deleted=DELETED):
    model, init, docs, phi = tiny
    return phi(ts.retrain(model, init, docs, deleted, t=t, steps=STEPS, progress=False))


@pytest.fixture(scope="module")
def exact(tiny):
    """The exact-direction sketch along 1_D, order 4."""
    model, init, docs, _ = tiny
    indicator = ts.deletion.deletion_indicator(docs, DELETED)
    return ts.precompute(model, init, docs, order=4, directions=indicator[None, :], steps=STEPS,
                         progress=False)


@pytest.fixture(scope="module")
def sketch(tiny):
    """128 random complex directions, order 3."""
    model, init, docs, _ = tiny
    return ts.precompute(model, init, docs, order=3, directions=128, steps=STEPS, seed=0, progress=False)


def test_exact_direction_polynomial_matches_retraining(tiny, exact):
    phi = tiny[3]
    c = exact.coefficients(phi)[0]
    t = 0.05
    p = exact.predict(phi, DELETED, t=t)
    assert p.exact and p.stderr == 0 and p.n_deleted == 2
    truth = retrained(tiny, t)
    # the error of the degree-k polynomial is its first missing term c_(k+1) t^(k+1)
    for k in range(1, 4):
        error = truth - p.truncations()[k]
        assert error == pytest.approx(c[k + 1].real * t ** (k + 1), rel=0.2)
    assert retrained(tiny, 0.0) == pytest.approx(c[0].real, rel=1e-14)


def test_exact_direction_matches_finite_differences(tiny, exact):
    c = exact.coefficients(tiny[3])[0].real
    g0 = retrained(tiny, 0.0)

    def first(h):
        return (retrained(tiny, h) - retrained(tiny, -h)) / (2 * h)

    def second(h):
        return (retrained(tiny, h) - 2 * g0 + retrained(tiny, -h)) / (2 * h * h)

    h = 0.02   # Richardson-extrapolated central differences: error ~ h^4, rounding ~ 1e-15 / h^2
    assert (4 * first(h / 2) - first(h)) / 3 == pytest.approx(c[1], abs=1e-8)
    assert (4 * second(h / 2) - second(h)) / 3 == pytest.approx(c[2], abs=1e-8)


def test_exact_sketch_predicts_only_along_its_direction(tiny, exact):
    with pytest.raises(ValueError, match="explicit directions"):
        exact.predict(tiny[3], [3])


def test_sketch_agrees_with_exact_polynomial_and_retraining(tiny, exact, sketch):
    # a regime where the Taylor polynomial converges: |D| = 2, t = 1/2
    phi, t = tiny[3], 0.5
    p = sketch.predict(phi, DELETED, t=t)
    poly = exact.predict(phi, DELETED, t=t, degree=3)
    assert not p.exact and p.n_directions == 128 and p.degree == 3
    assert np.all(np.abs(p.terms - poly.terms) <= 4 * p.term_stderr)
    assert abs(p.value - poly.value) <= 4 * p.stderr
    truth = retrained(tiny, t)
    truncation = abs(poly.value - truth)
    assert truncation < 1e-4 * abs(truth)
    assert abs(p.value - truth) <= 4 * p.stderr + truncation


def test_coefficients(tiny, sketch):
    model, init, docs, phi = tiny
    coeffs = sketch.coefficients(phi)
    assert coeffs.shape == (128, 4)
    assert np.all(coeffs[:, 0] == coeffs[0, 0])
    plain = ts.train(model, init, docs, steps=STEPS, progress=False)
    assert coeffs[0, 0].real == pytest.approx(phi(plain), rel=1e-13)
    assert np.allclose(sketch.primal_params()["wte"], plain["wte"], rtol=1e-13, atol=1e-15)

    def loss_on_bad(params):
        return model.loss(params, "bad")

    assert np.allclose(sketch.coefficients(loss_on_bad, batch_size=50), coeffs, rtol=1e-12, atol=1e-15)

    # cached per measurement: the same measure (or an equal one) gives the same array
    assert sketch.coefficients(phi) is coeffs
    assert sketch.coefficients(ts.measure.doc_loss(model, "bad")) is coeffs
    assert sketch.coefficients(loss_on_bad) is sketch.coefficients(loss_on_bad)
    assert sketch.coefficients(ts.measure.doc_loss(model, "ade")) is not coeffs


def test_fresh_callables_never_share_cached_coefficients(tiny, sketch):
    """A new lambda may get a dead lambda's id(); the cache must not mistake one for the other."""
    model, _, docs, _ = tiny
    for doc in docs[:4]:
        fresh = (lambda d: lambda params: model.loss(params, d))(doc)
        expected = sketch.coefficients(ts.measure.doc_loss(model, doc))
        assert np.array_equal(sketch.coefficients(fresh), expected), doc
        del fresh
    unkeyed = [ts.measure.Measure("same name", (lambda d: lambda p: model.loss(p, d))(d)) for d in docs[:2]]
    first, second = (sketch.coefficients(m)[0, 0] for m in unkeyed)
    assert first != second


def test_stability_refuses_explicit_directions(exact, tiny):
    with pytest.raises(ValueError, match="random directions"):
        exact.stability(tiny[3])


# ----------------------------------------------------------------------------
# persistence


def test_save_load_round_trip(tiny, sketch, tmp_path):
    path = tmp_path / "sketch.npz"
    sketch.save(path)
    loaded = Sketch.load(path)
    for name in ("primal", "series", "directions", "direction_ids"):
        assert np.array_equal(getattr(loaded, name), getattr(sketch, name))
        assert getattr(loaded, name).dtype == getattr(sketch, name).dtype
    assert {k: v for k, v in loaded.meta.items() if k != "format_version"} == sketch.meta
    assert loaded.model.describe() == sketch.model.describe()
    phi = tiny[3]
    a, b = sketch.predict(phi, DELETED, t=[0.5, 1.0]), loaded.predict(phi, DELETED, t=[0.5, 1.0])
    assert np.array_equal(a.value, b.value) and np.array_equal(a.stderr, b.stderr)
    assert os.listdir(tmp_path) == ["sketch.npz"]


def test_save_is_atomic(sketch, exact, tmp_path, monkeypatch):
    path = tmp_path / "sketch.npz"
    exact.save(path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(RuntimeError, match="disk full"):
        sketch.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["sketch.npz"]
    monkeypatch.undo()
    assert Sketch.load(path).kind == "explicit"


def _saved_arrays(sketch, path):
    sketch.save(path)
    with np.load(path) as data:
        return dict(data)


def _with_meta(arrays, meta):
    return dict(arrays, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))


def _damaged_files(exact, folder):
    """name -> path of a file that is not a loadable sketch."""
    arrays = _saved_arrays(exact, folder / "good.npz")
    meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    raw = (folder / "good.npz").read_bytes()
    files = {
        "truncated": raw[: len(raw) // 2],
        "corrupt": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "empty": b"",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    paths = {name: folder / name for name in files}

    def npz(name, **contents):
        np.savez(folder / f"{name}.npz", **contents)
        paths[name] = folder / f"{name}.npz"

    npz("wrong_version", **_with_meta(arrays, dict(meta, format_version=99)))
    npz("no_version", **_with_meta(arrays, {k: v for k, v in meta.items() if k != "format_version"}))
    npz("not_a_sketch", weights=np.arange(3.0))
    npz("object_array", **dict(arrays, directions=np.array([{"a": 1}, None], dtype=object)))
    npz("bad_json", **dict(arrays, meta=np.frombuffer(b"{not json", dtype=np.uint8)))
    npz("meta_not_object", **_with_meta(arrays, [1, 2]))
    npz("meta_without_model", **_with_meta(arrays, {k: v for k, v in meta.items() if k != "model"}))
    npz("unknown_model", **_with_meta(arrays, dict(meta, model={"model": "Transformer9000"})))
    npz("wrong_shapes", **dict(arrays, primal=arrays["primal"][:-1]))
    np.save(folder / "single_array.npy", np.arange(3.0))
    paths["single_array"] = folder / "single_array.npy"
    return paths


def test_damaged_files_are_sketch_file_errors_naming_the_file(exact, tmp_path):
    for name, path in _damaged_files(exact, tmp_path).items():
        with pytest.raises(ts.SketchFileError) as info:
            Sketch.load(path)
        assert str(path) in str(info.value), name
    with pytest.raises(ts.SketchFileError, match="version 99"):
        Sketch.load(tmp_path / "wrong_version.npz")
    with pytest.raises(FileNotFoundError):
        Sketch.load(tmp_path / "missing.npz")


def test_no_pickle_is_ever_loaded(exact, tmp_path, monkeypatch):
    # an object array can only be read by unpickling: loading must refuse it, not run it
    path = tmp_path / "object.npz"
    arrays = _saved_arrays(exact, path)
    np.savez(path, **dict(arrays, series=np.array([object()], dtype=object)))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("Sketch.load unpickled data")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    with pytest.raises(ts.SketchFileError, match="object.npz"):
        Sketch.load(path)


def test_documents_must_match_the_fingerprint(tiny, sketch):
    model, _, docs, phi = tiny
    sketch.check_docs(docs)
    assert sketch.predict(phi, DELETED, docs=docs).value == sketch.predict(phi, DELETED).value
    for other in (docs[::-1], docs[:-1], docs[:-1] + ["bead"]):
        with pytest.raises(ValueError, match="fingerprint"):
            sketch.predict(phi, [0], docs=other)


# ----------------------------------------------------------------------------
# shards, merge, workers


@pytest.fixture(scope="module")
def eight(tiny):
    """precompute(directions=8) in one run (order 2)."""
    model, init, docs, _ = tiny
    return ts.precompute(model, init, docs, order=2, directions=8, steps=STEPS, progress=False)


def shard(tiny, index, seed=0):
    model, init, docs, _ = tiny
    return ts.precompute(model, init, docs, order=2, directions=8, steps=STEPS, seed=seed,
                         shard=index, num_shards=2, progress=False)


def test_shards_merge_to_one_run(tiny, eight):
    shards = [shard(tiny, 0), shard(tiny, 1)]
    assert [s.n_directions for s in shards] == [4, 4]
    merged = Sketch.merge(shards[::-1])
    assert merged.direction_ids.tolist() == list(range(8)) == eight.direction_ids.tolist()
    assert np.array_equal(merged.directions, eight.directions)
    assert np.array_equal(merged.primal, eight.primal)
    assert np.allclose(merged.series, eight.series, rtol=1e-12, atol=1e-12 * np.abs(eight.series).max())
    phi = tiny[3]
    assert merged.predict(phi, DELETED).value == pytest.approx(eight.predict(phi, DELETED).value, rel=1e-12)

    with pytest.raises(ValueError, match="repeat"):
        Sketch.merge([shards[0], shards[0]])
    with pytest.raises(ValueError, match="seed"):
        Sketch.merge([shards[0], shard(tiny, 1, seed=1)])


def test_workers_give_the_same_result(tiny, eight):
    model, init, docs, _ = tiny
    parallel = ts.precompute(model, init, docs, order=2, directions=8, steps=STEPS, batch_size=4,
                             workers=2, progress=False)
    assert np.array_equal(parallel.directions, eight.directions)
    assert np.array_equal(parallel.primal, eight.primal)
    assert np.allclose(parallel.series, eight.series, rtol=1e-12, atol=1e-12 * np.abs(eight.series).max())


# ----------------------------------------------------------------------------
# bad input


def test_bad_input_is_a_clear_value_error(tiny, sketch):
    model, init, docs, phi = tiny
    n = len(docs)
    with pytest.raises(ValueError, match="shape"):
        ts.precompute(model, init, docs, order=2, directions=np.ones((2, n + 1)), progress=False)
    with pytest.raises(ValueError, match="shape"):
        ts.precompute(model, init, docs, order=2, directions=np.ones(n), progress=False)
    for order in (0, -1, 1.5):
        with pytest.raises(ValueError, match="order"):
            ts.precompute(model, init, docs, order=order, directions=4, progress=False)
    with pytest.raises(ValueError, match="integers"):
        sketch.predict(phi, [0.5, 2.0])
    for deleted in ([0, n], [-1]):
        with pytest.raises(ValueError, match="range|in 0"):
            sketch.predict(phi, deleted)
    with pytest.raises(ValueError, match="duplicates"):
        sketch.predict(phi, [1, 1])
    with pytest.raises(ValueError, match="degree"):
        sketch.predict(phi, DELETED, degree=4)
    with pytest.raises(ValueError, match="groups"):
        sketch.predict(phi, DELETED, groups=129)
    with pytest.raises(ValueError, match="docs"):
        sketch.predict(phi, lambda doc: "e" in doc)
    assert sketch.predict(phi, lambda doc: "e" in doc, docs=docs).n_deleted == sum("e" in d for d in docs)
    with pytest.raises(ValueError, match="scalar"):
        sketch.coefficients(lambda params: params["wte"])
    with pytest.raises(TypeError, match="callable"):
        sketch.coefficients("loss")
