"""Layers as forward/backward pairs, on numpy arrays and on Jets alike.

Each ``*_forward`` returns ``(output, cache)``; the matching
``*_backward(dy, cache)`` takes the output gradient and that cache, and only
them, and returns the input (and weight) gradients.  No tape and no graph: the model's backward calls the layer
backwards in the literal reverse order of its forward, as in llm.c.  Every
function is written with ``ts`` operations only, so parameters, activations
and gradients may all be Jets (that is how a whole training run is
differentiated along the loss weights).

Shape legend: n = positions of one document, C = embedding width,
H = heads, d = head size (C = H d), V = vocabulary size, F = MLP hidden width.
"""

import math

import numpy as np

from .functions import erf, exp, log_softmax, scatter_add, softmax


def linear_forward(x, w):
    """``y = x W^T`` for a weight stored ``(n_out, n_in)``: x (n, n_in) -> y (n, n_out); cache ``(x, w)``."""
    return x @ w.T, (x, w)


def linear_backward(dy, cache):
    """Returns ``(dx, dW)``: ``dx = dy W`` and ``dW = dy^T x``."""
    x, w = cache
    return dy @ w, dy.T @ x


def embedding_forward(wte, wpe, tokens):
    """Token plus position embedding: tokens (n,) -> (n, C); cache ``(tokens, wte.shape, wpe.shape)``."""
    positions = np.arange(len(tokens))
    return wte[tokens] + wpe[positions], (tokens, wte.shape, wpe.shape)


def embedding_backward(dx, cache):
    """Returns ``(dwte, dwpe)``: rows scattered back, repeated tokens accumulating."""
    tokens, wte_shape, wpe_shape = cache
    return scatter_add(dx, tokens, wte_shape), scatter_add(dx, np.arange(len(tokens)), wpe_shape)


RMSNORM_EPS = 1e-5


def rmsnorm_forward(x):
    """``y = x (mean(x^2) + eps)^(-1/2)`` over the last axis, no gain."""
    scale = ((x * x).mean(axis=-1, keepdims=True) + RMSNORM_EPS) ** -0.5
    return x * scale, (x, scale)


def rmsnorm_backward(dy, cache):
    """``dx = s dy - s^3 x mean(dy x)``, with ``s = (mean(x^2) + eps)^(-1/2)``."""
    x, scale = cache
    return scale * dy - (scale * scale * scale) * x * (dy * x).mean(axis=-1, keepdims=True)


def gelu_forward(x):
    """Exact GELU, ``x Phi(x)``; the cache is ``x`` and ``Phi(x)``, which the backward
    pass needs again (:func:`taylorsketch.gelu` to the bit: halving is exact)."""
    cdf = 0.5 * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))
    return x * cdf, (x, cdf)


def gelu_backward(dy, cache):
    """``GELU'(x) = Phi(x) + x phi(x)``, with every order of it exact."""
    x, cdf = cache
    pdf = exp(-0.5 * (x * x)) * (1.0 / math.sqrt(2.0 * math.pi))
    return dy * (cdf + x * pdf)


def _causal_mask(n):
    """Additive mask: 0 on and below the diagonal, -inf above (future positions)."""
    return np.triu(np.full((n, n), -np.inf), k=1)


def attention_forward(q, k, v, n_head):
    """Causal multi-head self-attention over one document.

    q, k, v (n, C) -> y (n, C).  Position p attends to 0..p with weights
    ``softmax(q.k / sqrt(d))``.
    """
    n, width = q.shape
    d = width // n_head
    qh = q.reshape(n, n_head, d).transpose(1, 0, 2)      # (H, n, d)
    kh = k.reshape(n, n_head, d).transpose(1, 0, 2)      # (H, n, d)
    vh = v.reshape(n, n_head, d).transpose(1, 0, 2)      # (H, n, d)
    logits = (qh @ kh.transpose(0, 2, 1)) * (1.0 / math.sqrt(d)) + _causal_mask(n)   # (H, n, n)
    weights = softmax(logits, axis=-1)                   # (H, n, n)
    yh = weights @ vh                                    # (H, n, d)
    y = yh.transpose(1, 0, 2).reshape(n, width)          # (n, C)
    return y, (qh, kh, vh, weights)


def attention_backward(dy, cache):
    """Returns ``(dq, dk, dv)``, each (n, C)."""
    qh, kh, vh, weights = cache
    n_head, n, d = qh.shape
    dyh = dy.reshape(n, n_head, d).transpose(1, 0, 2)    # (H, n, d)
    # 1. y = W v
    dweights = dyh @ vh.transpose(0, 2, 1)               # (H, n, n)
    dvh = weights.transpose(0, 2, 1) @ dyh               # (H, n, d)
    # 2. W = softmax(L): dL = W * (dW - sum(dW * W))
    dlogits = weights * (dweights - (dweights * weights).sum(axis=-1, keepdims=True))
    dlogits = dlogits * (1.0 / math.sqrt(d))
    # 3. L = q k^T / sqrt(d)
    dqh = dlogits @ kh                                   # (H, n, d)
    dkh = dlogits.transpose(0, 2, 1) @ qh                # (H, n, d)

    def merge(g):
        return g.transpose(1, 0, 2).reshape(n, n_head * d)
    return merge(dqh), merge(dkh), merge(dvh)


def cross_entropy_forward(logits, targets):
    """Mean over positions of ``-log softmax(logits)[target]``: logits (n, V), targets (n,)."""
    n = len(targets)
    logp = log_softmax(logits, axis=-1)
    loss = -logp[np.arange(n), targets].sum() * (1.0 / n)
    return loss, (logits, targets)


def cross_entropy_backward(dloss, cache):
    """``dlogits = dloss (softmax(logits) - onehot(targets)) / n``."""
    logits, targets = cache
    n, vocab = logits.shape
    onehot = scatter_add(np.ones(n), (np.arange(n), targets), (n, vocab))
    return (softmax(logits, axis=-1) - onehot) * (dloss * (1.0 / n))


def mse_forward(pred, target):
    """Mean squared error ``mean((pred - target)^2)``; the cache is ``pred - target``."""
    diff = pred - target
    return (diff * diff).mean(), diff


def mse_backward(dloss, cache):
    """``dpred = dloss * 2 (pred - target) / size``."""
    diff = cache
    return diff * (dloss * (2.0 / diff.size))
