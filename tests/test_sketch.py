"""The data-deletion sketch (``taylorsketch/sketch.py``).

(a) the estimator on a polynomial "circuit" whose Taylor terms are known
exactly: unbiased, error ~ 1/sqrt(M), biased with real directions, median of
means, partial deletion and truncation; (b) the exact-direction mode on a small
MicroGPT against retraining and finite differences; (c) the random sketch on
the same MicroGPT against the exact polynomial and retraining; (d)
coefficients, stability; (e) persistence (round trip, atomic save, damaged
files, fingerprints); (f) shards, merge and workers; (g) bad input.

Shape legend: n = documents (or weights), M = directions, K = order.
"""

import itertools
import json
import math
import os
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import taylorsketch as ts
from taylorsketch.estimator import estimate, random_directions
from taylorsketch.sketch import Sketch

# ----------------------------------------------------------------------------
# a polynomial circuit: g(w) = a_0 + sum_r <T_r, w^{(x) r}> with symmetric T_r


def symmetric_tensor(rng, n, r):
    """A random symmetric tensor of shape (n,)*r (entries ~ N(0, 1) before symmetrising)."""
    tensor = rng.normal(size=(n,) * r)
    perms = list(itertools.permutations(range(r)))
    return sum(np.transpose(tensor, p) for p in perms) / len(perms)


def contract(tensor, vectors):
    """``T[v, ..., v]`` for every row ``v`` of ``vectors`` (M, n): shape (M,)."""
    out = np.broadcast_to(tensor, (len(vectors),) + tensor.shape)
    for _ in range(tensor.ndim):
        out = np.einsum("m...i,mi->m...", out, vectors)
    return out


def jet_contract(tensor, w):
    """``T[w, ..., w]`` for a Jet ``w`` of shape (n,), by repeated matmuls."""
    n = tensor.shape[0]
    out = tensor
    for _ in range(tensor.ndim):
        rest = out.shape[:-1]
        out = (out.reshape(math.prod(rest), n) @ w).reshape(rest)
    return out


class Polynomial:
    """``g(w) = a0 + sum_{r=1..K} T_r[w, ..., w]``: along ``psi`` its jet coefficients
    are ``c_r(psi) = T_r[psi, ..., psi]`` and its Taylor terms at ``1_D`` are ``T_r[1_D, ..., 1_D]``."""

    def __init__(self, a0, tensors):
        self.a0 = a0
        self.tensors = tensors

    @classmethod
    def random(cls, n, order, seed):
        rng = np.random.default_rng(seed)
        return cls(float(rng.normal()), [symmetric_tensor(rng, n, r) for r in range(1, order + 1)])

    @property
    def order(self):
        return len(self.tensors)

    def coefficients(self, directions):
        """(M, K+1): ``[a0, c_1(psi_j), ..., c_K(psi_j)]``."""
        columns = [np.full(len(directions), self.a0, dtype=complex)]
        columns += [contract(tensor, directions) for tensor in self.tensors]
        return np.stack(columns, axis=1)

    def taylor_terms(self, indicator):
        """``T_r[1_D, ..., 1_D]`` for r = 1..K."""
        return np.array([contract(tensor, indicator[None])[0] for tensor in self.tensors])

    def measure(self, params):
        """The same polynomial in jet arithmetic, as a measurement of the weights."""
        w = params["w"]
        return self.a0 + sum(jet_contract(tensor, w) for tensor in self.tensors)


class WeightsAsParameters:
    """A stand-in model whose only parameter is the weight vector: its "trained
    parameters" along ``psi`` are the jets ``w = t psi``."""

    def __init__(self, n):
        self.n = n

    def param_shapes(self):
        return {"w": (self.n,)}

    def describe(self):
        return {"model": "WeightsAsParameters", "n": self.n}


def polynomial_sketch(n, order, n_directions, seed=0):
    """A Sketch of the weights themselves along ``n_directions`` random directions."""
    model = WeightsAsParameters(n)
    psi = random_directions(n, range(n_directions), seed)
    series = np.zeros((order, n_directions, n), dtype=complex)
    series[0] = psi
    meta = {"kind": "random", "order": order, "seed": seed, "model": model.describe()}
    return Sketch(model, np.zeros(n), series, psi, np.arange(n_directions), meta)


def indicator_of(n, deleted):
    indicator = np.zeros(n)
    indicator[list(deleted)] = 1.0
    return indicator


def real_sphere(rng, n_directions, n):
    z = rng.standard_normal((n_directions, n))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


# ----------------------------------------------------------------------------
# (a) the estimator on the polynomial circuit


@given(n=st.integers(4, 8), order=st.integers(1, 3), data=st.data())
def test_estimator_is_unbiased_for_the_taylor_polynomial(n, order, data):
    # 4 standard errors: a simulation of 3000 such cases at M = 2000 never exceeded 4.
    deleted = data.draw(st.sets(st.integers(0, n - 1), min_size=1), label="deleted")
    degree = data.draw(st.integers(0, order), label="degree")
    poly = Polynomial.random(n, order, seed=data.draw(st.integers(0, 2**32 - 1), label="tensor seed"))
    directions = random_directions(n, range(2000), seed=data.draw(st.integers(0, 2**32 - 1), label="seed"))
    indicator = indicator_of(n, deleted)
    exact_terms = poly.taylor_terms(indicator)[:degree]

    p = estimate(poly.coefficients(directions), directions, indicator, degree)

    assert p.base == pytest.approx(poly.a0, rel=1e-14)
    if degree == 0:
        assert p.value == p.base and p.stderr == 0
        return
    assert abs(p.value - (poly.a0 + exact_terms.sum())) <= 4 * p.stderr
    assert np.all(np.abs(p.terms - exact_terms) <= 4 * p.term_stderr)


def test_estimator_error_shrinks_like_one_over_sqrt_m():
    n, order = 6, 3
    poly = Polynomial.random(n, order, seed=7)
    indicator = indicator_of(n, [0, 2, 3])
    truth = poly.a0 + poly.taylor_terms(indicator).sum()
    directions = random_directions(n, range(3200), seed=3)
    coeffs = poly.coefficients(directions)

    blocks = [estimate(coeffs[a:a + 200], directions[a:a + 200], indicator, order)
              for a in range(0, 3200, 200)]
    full = estimate(coeffs, directions, indicator, order)

    small_stderr = np.mean([b.stderr for b in blocks])
    assert 3.3 < small_stderr / full.stderr < 4.8                       # sqrt(3200 / 200) = 4
    # the stated standard error of M = 200 is the actual spread of 16 independent estimates
    assert 0.55 < np.std([b.value for b in blocks], ddof=1) / small_stderr < 1.6
    assert abs(full.value - truth) <= 4 * full.stderr


def test_real_directions_are_biased_complex_ones_are_not():
    # g(w) = <w, T w> with T = I + noise: with real directions E[psi_i psi_j] = delta_ij / n
    # does not vanish, and E[C(n+1, 2) s^2 c_2] = (n+1)/(2(n+2)) (d tr T + 2 T[1_D, 1_D]).
    n, m = 6, 20000
    rng = np.random.default_rng(0)
    tensor = np.eye(n) + 0.1 * symmetric_tensor(rng, n, 2)
    poly = Polynomial(0.0, [np.zeros(n), tensor])
    deleted = [0, 1, 2]
    indicator = indicator_of(n, deleted)
    truth = poly.taylor_terms(indicator).sum()

    complex_dirs = random_directions(n, range(m), seed=1)
    real_dirs = real_sphere(rng, m, n)
    on_complex = estimate(poly.coefficients(complex_dirs), complex_dirs, indicator, 2)
    on_real = estimate(poly.coefficients(real_dirs).real, real_dirs, indicator, 2)

    assert abs(on_complex.value - truth) <= 4 * on_complex.stderr
    assert abs(on_real.value - truth) > 50 * on_real.stderr
    real_mean = (n + 1) / (2 * (n + 2)) * (len(deleted) * np.trace(tensor) + 2 * truth)
    assert abs(on_real.value - real_mean) <= 4 * on_real.stderr


def test_median_of_means_by_hand():
    n, order, m, groups = 7, 3, 600, 6
    poly = Polynomial.random(n, order, seed=11)
    directions = random_directions(n, range(m), seed=5)
    coeffs = poly.coefficients(directions)
    indicator = indicator_of(n, [1, 4])
    t = 0.7

    s = np.conj(directions[:, [1, 4]]).sum(axis=1)
    samples = np.stack([np.real(math.comb(n + r - 1, r) * s ** r * coeffs[:, r]) * t ** r
                        for r in range(1, order + 1)], axis=1).sum(axis=1)     # (M,)
    group_means = samples.reshape(groups, m // groups).mean(axis=1)

    p = estimate(coeffs, directions, indicator, order, t=t, groups=groups)
    assert p.value == pytest.approx(poly.a0 + np.median(group_means), rel=1e-12)
    assert p.stderr == pytest.approx(math.sqrt(math.pi / 2) * np.std(group_means, ddof=1)
                                     / math.sqrt(groups), rel=1e-12)
    plain = estimate(coeffs, directions, indicator, order, t=t)
    assert plain.value == pytest.approx(poly.a0 + samples.mean(), rel=1e-12)


def test_median_of_means_is_robust_to_one_wild_direction():
    n, order, m, groups = 6, 2, 2000, 20
    poly = Polynomial.random(n, order, seed=2)
    directions = random_directions(n, range(m), seed=9)
    indicator = indicator_of(n, [0, 5])
    truth = poly.a0 + poly.taylor_terms(indicator).sum()
    coeffs = poly.coefficients(directions)
    clean = estimate(coeffs, directions, indicator, order, groups=groups)
    wild = coeffs.copy()
    wild[123, 1] = 1e9

    assert abs(estimate(wild, directions, indicator, order).value - truth) > 1e3 * clean.stderr
    assert abs(estimate(wild, directions, indicator, order, groups=groups).value - truth) <= 4 * clean.stderr


def test_partial_deletion_degree_truncation_and_truncations():
    n, order = 6, 3
    poly = Polynomial.random(n, order, seed=4)
    directions = random_directions(n, range(500), seed=0)
    coeffs = poly.coefficients(directions)
    indicator = indicator_of(n, [2, 3, 5])
    at_one = estimate(coeffs, directions, indicator, order)
    powers = 0.3 ** np.arange(1, order + 1)

    scalar = estimate(coeffs, directions, indicator, order, t=0.3)
    assert np.allclose(scalar.terms, at_one.terms * powers, rtol=1e-13)
    assert np.allclose(scalar.term_stderr, at_one.term_stderr * powers, rtol=1e-13)
    assert scalar.value == pytest.approx(at_one.base + (at_one.terms * powers).sum(), rel=1e-13)
    assert scalar.t == 0.3

    t_values = np.array([0.0, 0.3, 1.0, -0.5])
    array = estimate(coeffs, directions, indicator, order, t=t_values)
    assert array.value.shape == array.stderr.shape == (4,) and array.terms.shape == (order, 4)
    assert array.value[0] == at_one.base and array.stderr[0] == 0
    for i, t in enumerate(t_values):
        single = estimate(coeffs, directions, indicator, order, t=t)
        assert array.value[i] == pytest.approx(single.value, rel=1e-13)
        assert array.stderr[i] == pytest.approx(single.stderr, rel=1e-12, abs=1e-300)

    truncations = at_one.truncations()
    assert truncations.shape == (order + 1,)
    assert truncations[0] == at_one.base and truncations[-1] == pytest.approx(at_one.value, rel=1e-13)
    for degree in range(order + 1):
        lower = estimate(coeffs, directions, indicator, degree)
        assert lower.degree == degree and lower.terms.shape == (degree,)
        assert lower.value == pytest.approx(truncations[degree], rel=1e-13)
    assert array.truncations().shape == (order + 1, 4)
    assert np.allclose(array.truncations()[:, 1], scalar.truncations(), rtol=1e-13)


def test_sketch_of_the_polynomial_circuit():
    """The whole Sketch path (jet measurement, coefficients, predict, stability) on the polynomial."""
    n, order, m = 5, 3, 4000
    poly = Polynomial.random(n, order, seed=21)
    sketch = polynomial_sketch(n, order, m, seed=4)

    coeffs = sketch.coefficients(poly.measure)
    assert coeffs.shape == (m, order + 1)
    assert np.allclose(coeffs, poly.coefficients(sketch.directions), rtol=1e-12, atol=1e-12)

    deleted = [0, 3]
    p = sketch.predict(poly.measure, deleted)
    exact_terms = poly.taylor_terms(indicator_of(n, deleted))
    assert abs(p.value - (poly.a0 + exact_terms.sum())) <= 4 * p.stderr
    assert np.all(np.abs(p.terms - exact_terms) <= 4 * p.term_stderr)

    stability = sketch.stability(poly.measure)
    orders = np.arange(1, order + 1)
    by_hand = np.array([np.log2(math.sqrt(math.comb(n + r - 1, r)) * np.abs(coeffs[:, r])) for r in orders]).T
    assert np.allclose(stability.per_direction, by_hand, rtol=1e-12)
    # E|c_r(psi)|^2 = ||T_r||_F^2 / C(n+r-1, r): the combined estimate recovers log2 ||T_r||_F
    frobenius = np.log2([np.linalg.norm(tensor) for tensor in poly.tensors])
    assert np.all(np.abs(stability.combined - frobenius) < 0.15)
    assert stability.orders.tolist() == orders.tolist()
    curvature, slope, _ = np.polyfit(orders, stability.combined, 2)
    assert stability.curvature == pytest.approx(curvature) and stability.slope == pytest.approx(slope)


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
