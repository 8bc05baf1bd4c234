"""Every layer of ``taylorsketch/nn.py``: backward against forward, on arrays and on Jets.

Three independent oracles:

* the adjoint (dot-product) test: for random ``dx`` and output cotangent ``u``,
  ``<u, J dx>`` (with ``J dx`` by Richardson-extrapolated central differences of
  the forward) equals ``<J^T u, dx>`` (the backward);
* per-entry central differences of ``x -> <u, forward(x)>``, compared with the
  backward entry by entry (small sizes);
* the Taylor coefficients of ``t -> layer(x + t v)`` from values of the *plain*
  layer alone (``reference.circle_coefficients`` on complex ``t``, orders 0..5,
  and ``reference.richardson_coefficients`` on real ``t``, orders 0..2),
  compared with the layer run on Jets, for forwards and for backwards (whose
  inputs, cotangent included, all move along ``t``: that is how training
  differentiates a backward pass).

Shape legend: n = positions, C = width, H = heads, V = vocabulary, M = directions.
"""

import functools
from dataclasses import dataclass

import numpy as np
import pytest

import reference
import taylorsketch as ts
from taylorsketch import nn

N_HEAD = 2
TOKENS = np.array([2, 0, 2, 2, 1])          # repeated tokens: their embedding gradients accumulate
TARGETS = np.array([1, 3, 0, 3])            # repeated targets


@dataclass
class Layer:
    """A layer as two functions of its moving inputs (integer inputs are fixed in closures).

    ``forward(*inputs) -> output`` and ``backward(u, *inputs) -> gradients``, one
    gradient per input, for the output cotangent ``u``.
    """

    forward: object
    backward: object
    inputs: tuple


def _attention_backward(u, q, k, v):
    return nn.attention_backward(u, nn.attention_forward(q, k, v, N_HEAD)[1])


def layers():
    """Every layer at a random point; moderate sizes so that the Jacobians are dense."""
    rng = np.random.default_rng(1)

    def normal(*shape, scale=1.0):
        return scale * rng.normal(size=shape)

    return {
        "linear": Layer(lambda x, w: nn.linear_forward(x, w)[0],
                        lambda u, x, w: nn.linear_backward(u, nn.linear_forward(x, w)[1]),
                        (normal(3, 4), normal(5, 4))),
        "embedding": Layer(lambda wte, wpe: nn.embedding_forward(wte, wpe, TOKENS)[0],
                           lambda u, wte, wpe: nn.embedding_backward(u, nn.embedding_forward(wte, wpe, TOKENS)[1]),
                           (normal(4, 3), normal(7, 3))),     # wpe has rows past n: zero gradient
        "rmsnorm": Layer(lambda x: nn.rmsnorm_forward(x)[0],
                         lambda u, x: (nn.rmsnorm_backward(u, nn.rmsnorm_forward(x)[1]),),
                         (normal(3, 5),)),
        "gelu": Layer(lambda x: nn.gelu_forward(x)[0],
                      lambda u, x: (nn.gelu_backward(u, nn.gelu_forward(x)[1]),),
                      (normal(3, 4, scale=1.5),)),
        "attention_n1": Layer(lambda q, k, v: nn.attention_forward(q, k, v, N_HEAD)[0],
                              _attention_backward,
                              (normal(1, 6), normal(1, 6), normal(1, 6))),
        "attention_n4": Layer(lambda q, k, v: nn.attention_forward(q, k, v, N_HEAD)[0],
                              _attention_backward,
                              (normal(4, 6), normal(4, 6), normal(4, 6))),
        "cross_entropy": Layer(lambda logits: nn.cross_entropy_forward(logits, TARGETS)[0],
                               lambda u, logits: (nn.cross_entropy_backward(
                                   u, nn.cross_entropy_forward(logits, TARGETS)[1]),),
                               (normal(4, 5),)),
        "mse": Layer(lambda pred: nn.mse_forward(pred, TARGETS[:3, None] * 0.5)[0],
                     lambda u, pred: (nn.mse_backward(u, nn.mse_forward(pred, TARGETS[:3, None] * 0.5)[1]),),
                     (normal(3, 2),)),
    }


LAYERS = layers()


def _moved(inputs, i, value):
    return inputs[:i] + (value,) + inputs[i + 1:]


def _derivative(g):
    """``g'(0)`` by Richardson-extrapolated central differences (reference oracle)."""
    coefficients, _ = reference.richardson_coefficients(g, 1)
    return coefficients[1]


def _fd_gradient(scalar_fn, x, h=1e-3):
    """Gradient of ``scalar_fn`` at ``x``, entry by entry: central differences at h and h/2,
    Richardson-combined, so the truncation error is O(h^4) ~ 1e-12 and the rounding
    error eps/h ~ 1e-13 for these O(1) functions."""
    grad = np.empty_like(x)
    for j in np.ndindex(x.shape):
        def g(t):
            moved = x.copy()
            moved[j] += t
            return scalar_fn(moved)

        coarse = (g(h) - g(-h)) / (2 * h)
        fine = (g(h / 2) - g(-h / 2)) / h
        grad[j] = (4 * fine - coarse) / 3
    return grad


# -- backward against forward, plain arrays --------------------------------------


@pytest.mark.parametrize("name", LAYERS)
def test_adjoint(name):
    """``<u, J dx> == <J^T u, dx>`` for each input separately."""
    layer = LAYERS[name]
    rng = np.random.default_rng(2)
    out = layer.forward(*layer.inputs)
    u = rng.normal(size=np.shape(out))
    grads = layer.backward(u, *layer.inputs)
    assert len(grads) == len(layer.inputs)
    for i, x in enumerate(layer.inputs):
        dx = rng.normal(size=x.shape)
        jvp = _derivative(lambda t: layer.forward(*_moved(layer.inputs, i, x + t * dx)))
        lhs = np.sum(u * jvp)
        rhs = np.sum(grads[i] * dx)
        scale = np.sum(np.abs(u * jvp)) + np.sum(np.abs(grads[i] * dx))
        assert grads[i].shape == x.shape
        assert abs(lhs - rhs) <= 1e-10 * scale, f"input {i}: <u, J dx> = {lhs!r}, <J^T u, dx> = {rhs!r}"


@pytest.mark.parametrize("name", LAYERS)
def test_backward_entrywise(name):
    """Every entry of the backward against a central difference of ``<u, forward>``."""
    layer = LAYERS[name]
    rng = np.random.default_rng(3)
    u = rng.normal(size=np.shape(layer.forward(*layer.inputs)))
    grads = layer.backward(u, *layer.inputs)
    for i, x in enumerate(layer.inputs):
        want = _fd_gradient(lambda moved: np.sum(u * layer.forward(*_moved(layer.inputs, i, moved))), x)
        np.testing.assert_allclose(grads[i], want, rtol=0, atol=1e-9 * max(1.0, np.max(np.abs(want))),
                                   err_msg=f"{name}, input {i}")


def test_embedding_repeated_tokens_accumulate():
    """Token 2 appears three times: its gradient row is the sum of those three positions."""
    dx = np.arange(15.0).reshape(5, 3)
    dwte, dwpe = nn.embedding_backward(dx, (TOKENS, (4, 3), (7, 3)))
    np.testing.assert_array_equal(dwte[2], dx[0] + dx[2] + dx[3])
    np.testing.assert_array_equal(dwte[3], 0.0)
    np.testing.assert_array_equal(dwpe[:5], dx)
    np.testing.assert_array_equal(dwpe[5:], 0.0)


def test_attention_is_causal():
    """Changing a later position's q, k or v does not change earlier outputs."""
    q, k, v = LAYERS["attention_n4"].inputs
    y = nn.attention_forward(q, k, v, N_HEAD)[0]
    later = [a.copy() for a in (q, k, v)]
    for a in later:
        a[2:] += 1.0
    y2 = nn.attention_forward(*later, N_HEAD)[0]
    np.testing.assert_array_equal(y[:2], y2[:2])
    assert not np.allclose(y[2:], y2[2:])


# -- the same layers on Jets ----------------------------------------------------


def _flat(out):
    """A tuple of outputs as one flat array or Jet (gradients of several inputs together)."""
    if not isinstance(out, tuple):
        return out
    return ts.concatenate([o.reshape(-1) for o in out])


def _backward_with_cotangent(layer):
    """``(u, *inputs) -> flat gradients``: the backward as a function of all it reads."""
    return lambda u, *inputs: _flat(layer.backward(u, *inputs))


def _jet_coefficients(fn, points, directions, order):
    """``(K+1, M, *out)`` coefficients of ``t -> fn(*(x + t v))``, computed on Jets."""
    jets = [ts.Jet.from_directions(x, v, order) for x, v in zip(points, directions)]
    out = fn(*jets)
    assert isinstance(out, ts.Jet)
    return out.coefficients()


def _points_and_directions(name, with_cotangent, n_dirs, dtype, seed):
    """The layer's inputs (and a cotangent, for a backward) with ``n_dirs`` small directions.

    Directions are 0.3 times standard normals; the nearest singularity in complex
    ``t`` (a zero of rmsnorm's ``mean(x^2) + eps``) is then at |t| ~ 1.3, so the
    circle oracle uses radius 0.5, where its aliasing error ~ (0.5/1.3)^64 is nil.
    """
    layer = LAYERS[name]
    rng = np.random.default_rng(seed)
    points = list(layer.inputs)
    if with_cotangent:
        out = layer.forward(*layer.inputs)
        points = [rng.normal(size=np.shape(out))] + points
    directions = []
    for x in points:
        v = rng.normal(size=(n_dirs,) + np.shape(x))
        if dtype is complex:
            v = v + 1j * rng.normal(size=v.shape)
        directions.append(0.3 * v)
    return points, directions


def _layer_fn(name, backward):
    layer = LAYERS[name]
    return _backward_with_cotangent(layer) if backward else layer.forward


ORACLES = {
    # complex t on a circle: every order from values of the plain layer; complex directions
    "circle": (functools.partial(reference.circle_coefficients, radius=0.5), 5, complex, 2),
    # real t, Richardson-extrapolated central differences: orders <= 2; real directions
    "richardson": (reference.richardson_coefficients, 2, float, 1),
}


@pytest.mark.parametrize("oracle", ORACLES)
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("name", LAYERS)
def test_jet_matches_oracle(name, backward, oracle):
    """The layer on Jets gives the Taylor coefficients of the plain layer along a line."""
    oracle_fn, order, dtype, n_dirs = ORACLES[oracle]
    fn = _layer_fn(name, backward)
    points, directions = _points_and_directions(name, backward, n_dirs, dtype, seed=4)
    with np.errstate(invalid="ignore"):      # exp(-inf + i y) at masked attention entries
        want, tolerance = reference.line_coefficients(fn, points, directions, order, oracle_fn)
    got = _jet_coefficients(fn, points, directions, order)
    reference.assert_matches_oracle(got, want, tolerance)


@pytest.mark.parametrize("name", LAYERS)
def test_jet_primal_is_plain_layer(name):
    """``c_0`` of a jet run is the plain run, bit for bit (same numpy operations)."""
    fn = _backward_with_cotangent(LAYERS[name])
    points, directions = _points_and_directions(name, True, 3, complex, seed=5)
    got = _jet_coefficients(fn, points, directions, order=3)
    plain = fn(*points)
    for m in range(3):
        np.testing.assert_array_equal(got[0, m], plain)


def test_backward_with_taylor():
    """``ts.taylor`` of the GELU backward (cotangent fixed) against central differences
    of the plain backward: first and second coefficients."""
    layer = LAYERS["gelu"]
    (x,) = layer.inputs
    u = np.random.default_rng(6).normal(size=x.shape)
    v = np.random.default_rng(7).normal(size=x.shape)

    def plain(t):
        return layer.backward(u, x + t * v)[0]

    got = ts.taylor(lambda xj: layer.backward(u, xj)[0], x, v, order=2)
    h = 1e-3
    first = (plain(h) - plain(-h)) / (2 * h)                       # error ~ h^2 |c_3| ~ 1e-6
    second = (plain(h) - 2 * plain(0.0) + plain(-h)) / (2 * h * h)  # error ~ h^2 |c_4|, rounding eps/h^2
    np.testing.assert_allclose(got[0], plain(0.0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(got[1], first, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[2], second, rtol=0, atol=1e-5)


def test_gelu_forward_is_the_public_gelu_to_the_bit():
    """The layer forms ``x * Phi(x)`` (keeping ``Phi(x)`` for the backward pass), the
    public :func:`taylorsketch.gelu` ``0.5 x (1 + erf(x / sqrt 2))``: halving is exact, so
    every product of the two is the same number, for arrays and real and complex jets."""
    rng = np.random.default_rng(3)
    x0 = 2.0 * rng.normal(size=(5, 7))
    for value in (x0, ts.Jet(x0, rng.normal(size=(6, 3, 5, 7))),
                  ts.Jet(x0, rng.normal(size=(4, 2, 5, 7)) + 1j * rng.normal(size=(4, 2, 5, 7)))):
        got, (x, cdf) = nn.gelu_forward(value)
        want = ts.gelu(value)
        if isinstance(value, ts.Jet):
            assert np.array_equal(got.primal, want.primal) and np.array_equal(got.series, want.series)
            phi = 0.5 * (1.0 + ts.erf(value * (1.0 / np.sqrt(2.0))))     # what the backward pass computed before
            assert x is value and np.array_equal(cdf.series, phi.series)
        else:
            assert np.array_equal(got, want)
