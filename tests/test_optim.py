"""The paper's Adam (``taylorsketch/optim.py``), plain and fused-jet.

* Plain ``Adam.step`` against a scalar loop written from method.md section 4
  (epsilon inside the square root, linear learning-rate decay, bias correction).
* ``Adam.step`` on a flat Jet (the fused numba kernel ``kernels.adam_update``)
  against ``adam_reference_step``, the same update written with generic ``ts``
  operations, on random real and complex jets of orders 1..6 and 1..3 directions.

Shape legend: P = parameters, K = order, M = directions.
"""

import math

import numpy as np
import pytest

import reference
import taylorsketch as ts


def _paper_adam_loop(p, grads_per_step, total_steps, lr=0.01, beta1=0.85, beta2=0.99, eps=1e-3):
    """method.md section 4, one scalar at a time: the slowest, most literal reading."""
    p = [float(x) for x in p]
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for s, g in enumerate(grads_per_step):
        lr_s = lr * (1 - s / total_steps)
        for i in range(len(p)):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            m_hat = m[i] / (1 - beta1 ** (s + 1))
            v_hat = v[i] / (1 - beta2 ** (s + 1))
            p[i] -= lr_s * m_hat / math.sqrt(v_hat + eps)
    return np.array(p), np.array(m), np.array(v)


def test_plain_adam_matches_formulas():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=7)
    grads = [rng.normal(size=7) * 10.0 ** rng.integers(-3, 2) for _ in range(6)]
    grads[2][3] = 0.0                               # a zero gradient: only eps keeps the root > 0
    opt = ts.Adam(total_steps=8)
    p = p0.copy()
    for g in grads:
        opt.step(p, g)
    want_p, want_m, want_v = _paper_adam_loop(p0, grads, total_steps=8)
    np.testing.assert_allclose(p, want_p, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(opt.m, want_m, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(opt.v, want_v, rtol=1e-14, atol=1e-15)
    assert opt.t == 6


def test_adam_defaults_and_schedule():
    """The paper's hyper-parameters, and the learning rate decaying linearly to 0 at S."""
    opt = ts.Adam(total_steps=1000)
    assert (opt.lr, opt.beta1, opt.beta2, opt.eps) == (0.01, 0.85, 0.99, 1e-3)
    assert opt.learning_rate(0) == 0.01
    assert opt.learning_rate(500) == pytest.approx(0.005, abs=1e-18)
    assert opt.learning_rate(1000) == 0.0


def test_first_step_size():
    """At step 0 with v = g^2 exactly (bias-corrected), ``dp = -lr g / sqrt(g^2 + eps)``."""
    opt = ts.Adam(total_steps=10)
    p = np.zeros(3)
    g = np.array([1.0, -2.0, 0.0])
    opt.step(p, g)
    np.testing.assert_allclose(p, -0.01 * g / np.sqrt(g * g + 1e-3), rtol=1e-15)


def _random_jet(rng, order, n_dirs, n, dtype, positive=False):
    primal = rng.uniform(0.1, 1.0, n) if positive else rng.normal(size=n)
    series = rng.normal(size=(order, n_dirs, n))
    if dtype is complex:
        series = series + 1j * rng.normal(size=series.shape)
    return ts.Jet(primal, series)


def _copy(jet):
    return ts.Jet(jet.primal.copy(), jet.series.copy())


def _assert_jets_close(got, want, what):
    """Agreement to rounding: the kernel and the generic operations round differently,
    by a few ulps of the largest coefficient met in the recurrences (the scale)."""
    scale = max(np.max(np.abs(want.primal)), np.max(np.abs(want.series)), 1.0)
    np.testing.assert_allclose(got.primal, want.primal, rtol=0, atol=1e-13 * scale, err_msg=what)
    np.testing.assert_allclose(got.series, want.series, rtol=0, atol=1e-13 * scale, err_msg=what)


@pytest.mark.parametrize("dtype", [float, complex])
@pytest.mark.parametrize("n_dirs", [1, 2, 3])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6])
def test_fused_kernel_matches_reference(order, n_dirs, dtype):
    """Several steps from a random (non-zero) state, in the middle of the schedule."""
    rng = np.random.default_rng(100 * order + 10 * n_dirs + (dtype is complex))
    n = 11
    opt = ts.Adam(total_steps=12)
    opt.t = 4
    p = _random_jet(rng, order, n_dirs, n, dtype)
    m = _random_jet(rng, order, n_dirs, n, dtype)
    v = _random_jet(rng, order, n_dirs, n, dtype, positive=True)
    opt.m, opt.v = _copy(m), _copy(v)
    p_fused = _copy(p)
    for step in range(4, 8):
        g = _random_jet(rng, order, n_dirs, n, dtype)
        g.primal[0] = 0.0                           # v_hat + eps near eps for some entries
        opt.step(p_fused, _copy(g))
        p, m, v = reference.adam_reference_step(p, m, v, g, step, opt)
    _assert_jets_close(opt.m, m, "m")
    _assert_jets_close(opt.v, v, "v")
    _assert_jets_close(p_fused, p, "p")


def test_fused_kernel_from_zero_state():
    """The training case: ``m = v = 0`` created by the first call, series included."""
    rng = np.random.default_rng(7)
    opt = ts.Adam(total_steps=5)
    p = _random_jet(rng, 3, 2, 9, complex)
    p_fused = _copy(p)
    zero = ts.Jet(np.zeros(9), np.zeros((3, 2, 9), dtype=complex))
    m, v = zero, zero
    for step in range(5):
        g = _random_jet(rng, 3, 2, 9, complex)
        opt.step(p_fused, _copy(g))
        p, m, v = reference.adam_reference_step(p, m, v, g, step, opt)
    _assert_jets_close(p_fused, p, "p")
    assert opt.t == 5


def test_jet_primal_equals_plain_step():
    """The primal of a jet update is the plain update (to rounding: the kernel divides
    ``m_hat / s`` before multiplying by ``lr``, the numpy update after)."""
    rng = np.random.default_rng(8)
    p0 = rng.normal(size=10)
    plain, jet = ts.Adam(total_steps=6), ts.Adam(total_steps=6)
    p_plain = p0.copy()
    p_jet = ts.Jet(p0.copy(), np.zeros((2, 1, 10), dtype=complex))
    for _ in range(6):
        g = _random_jet(rng, 2, 1, 10, complex)
        plain.step(p_plain, g.primal.copy())
        jet.step(p_jet, g)
    np.testing.assert_allclose(p_jet.primal, p_plain, rtol=0, atol=1e-16)
