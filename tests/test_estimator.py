"""The estimators (``taylorsketch/estimator.py``) on a polynomial "circuit" whose
Taylor terms are known exactly: unbiased, error ~ 1/sqrt(M), biased with real
directions, median of means, partial deletion and truncation, and a sketch of
the circuit end to end.

Shape legend: n = documents (or weights), M = directions, K = order.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
