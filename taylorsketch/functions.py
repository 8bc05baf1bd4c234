"""Functions that work on numpy arrays and on Jets alike.

``ts.exp(x)`` is ``np.exp(x)`` for an array and the jet rule for a Jet, so one
model code path serves ordinary training and jet training.  Primitives call a
rule from :mod:`taylorsketch.rules`; everything else here is *derived*: written
with primitives and operators, it has no rule of its own and needs none.
"""

import math

import numpy as np
import scipy.special

from .jet import (ARRAY_FUNCTIONS, UFUNCS, Jet, apply, as_array, constant_like, elementwise, operand, power,
                  signature)
from .plan import array_operation
from .shape_rules import normalise_axes

__all__ = [
    "primal", "exp", "log", "sqrt", "reciprocal", "tanh", "sigmoid", "erf", "gelu", "sin", "cos",
    "softmax", "log_softmax", "logsumexp", "matmul", "sum", "mean", "reshape", "transpose",
    "concatenate", "stack", "scatter_add", "compose",
]


def primal(x):
    """``c_0`` of a Jet, or ``x`` itself for anything else."""
    return x.primal if isinstance(x, Jet) else x


def _primitive(name, numpy_fn, doc):
    def fn(x):
        return apply(name, x) if isinstance(x, Jet) else numpy_fn(x)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


exp = _primitive("exp", np.exp, "Exponential, elementwise.")
log = _primitive("log", np.log, "Natural logarithm, elementwise (a Jet needs a primal > 0).")
tanh = _primitive("tanh", np.tanh, "Hyperbolic tangent, elementwise.")
erf = _primitive("erf", scipy.special.erf, "Error function, elementwise.")
sin = _primitive("sin", np.sin, "Sine, elementwise.")
cos = _primitive("cos", np.cos, "Cosine, elementwise.")


def sqrt(x):
    """Square root, elementwise: ``x ** 0.5`` (a Jet needs a primal > 0)."""
    return power(x, 0.5) if isinstance(x, Jet) else np.sqrt(x)


def reciprocal(x):
    """``1 / x``, elementwise."""
    return 1.0 / x


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x)) = (1 + tanh(x/2)) / 2``."""
    return 0.5 * (1.0 + tanh(0.5 * x))


def gelu(x):
    """Exact (erf-based) GELU: ``x * (1 + erf(x / sqrt(2))) / 2``."""
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


def logsumexp(x, axis=-1, keepdims=False):
    """``log(sum(exp(x), axis))``, shifted by the primal maximum for stability.

    The shift is a constant (it does not move with ``t``), so it changes no
    coefficient of a Jet.
    """
    shift = _max_shift(x, axis)
    out = log(exp(x - shift).sum(axis=axis, keepdims=True)) + shift
    return out if keepdims else _squeeze(out, axis)


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x), axis)``, shifted by the primal maximum."""
    e = exp(x - _max_shift(x, axis))
    return e / e.sum(axis=axis, keepdims=True)


def _max_shift(x, axis):
    """The primal maximum along ``axis`` (0 where it is not finite, e.g. a fully masked row);
    computed from a jet's primal, so a recorded step (:mod:`taylorsketch.plan`) computes it again."""
    return array_operation(_primal_max, x, axis=axis)


def _primal_max(x, axis):
    shift = np.max(x, axis=axis, keepdims=True)
    return np.where(np.isfinite(shift), shift, 0.0)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x, axis)``."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def _squeeze(x, axis):
    if isinstance(x, Jet):
        axes = normalise_axes(axis, x.ndim)
        return x.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
    return np.squeeze(x, axis=axis)


def matmul(a, b):
    """``a @ b`` with numpy's rules, for arrays and Jets."""
    return a @ b


def sum(x, axis=None, keepdims=False):  # noqa: A001 - numpy's name
    """Sum over ``axis``, as ``np.sum``."""
    return x.sum(axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis``, as ``np.mean``."""
    return x.mean(axis=axis, keepdims=keepdims)


def reshape(x, shape):
    """``x`` with a new shape, as ``np.reshape``."""
    return x.reshape(shape)


def transpose(x, axes=None):
    """``x`` with its axes permuted (reversed by default), as ``np.transpose``."""
    return x.transpose(axes) if axes is not None else x.transpose()


def _promote(values):
    """Arrays among Jets become constant Jets of the same order and direction count."""
    jets = [v for v in values if isinstance(v, Jet)]
    if not jets:
        return None
    signature(jets)
    return [v if isinstance(v, Jet) else constant_like(jets[0], v) for v in values]


def concatenate(values, axis=0):
    """Join a sequence of arrays/Jets along an existing axis, as ``np.concatenate``."""
    values = list(values)
    jets = _promote(values)
    if jets is None:
        return np.concatenate(values, axis=axis)
    _check_same_ndim(jets, "concatenate")
    return apply("concatenate", *jets, axis=axis)


def stack(values, axis=0):
    """Join a sequence of arrays/Jets along a new axis, as ``np.stack``."""
    values = list(values)
    jets = _promote(values)
    if jets is None:
        return np.stack(values, axis=axis)
    shapes = {j.shape for j in jets}
    if len(shapes) > 1:
        raise ValueError(f"stack: all inputs must have the same shape; got {sorted(shapes)}")
    return apply("stack", *jets, axis=axis)


def _check_same_ndim(jets, name):
    if len({j.ndim for j in jets}) > 1:
        raise ValueError(f"{name}: all inputs must have the same number of dimensions; "
                         f"got shapes {[j.shape for j in jets]}")


def scatter_add(values, index, shape):
    """The adjoint of ``x[index]``: zeros of ``shape`` with ``values`` added at ``index``.

    Repeated indices accumulate (as ``np.add.at``), which is what the backward
    pass of an embedding lookup needs.

    >>> import numpy as np, taylorsketch as ts
    >>> ts.scatter_add(np.ones((3, 2)), np.array([0, 2, 0]), (4, 2))[:, 0]
    array([2., 0., 1., 0.])
    """
    shape = tuple(int(n) for n in shape)
    if isinstance(values, Jet):
        return apply("scatter_add", values, index=index, shape=shape)
    return array_operation(_scatter_add_array, as_array(values), index=index, shape=shape)


def _scatter_add_array(values, index, shape):
    out = np.zeros(shape, dtype=values.dtype)
    np.add.at(out, index, values)
    return out


def compose(x, derivatives):
    """The jet of ``h(x)`` from the derivatives of a scalar function ``h`` (Faa di Bruno).

    ``derivatives`` is either an array of shape ``(K+1, *x.shape)`` holding
    ``h(x_0), h'(x_0), ..., h^(K)(x_0)``, or a callable ``(x_0, K) -> array``
    returning it.  For a plain array ``x`` the result is ``h(x)``.

    >>> import numpy as np, taylorsketch as ts
    >>> x = ts.Jet.from_directions(np.array(0.0), np.array([1.0]), order=4)
    >>> y = ts.compose(x, lambda x0, K: np.ones((K + 1,) + np.shape(x0)))   # all derivatives 1: exp
    >>> np.allclose(y.coefficients()[:, 0], ts.exp(x).coefficients()[:, 0])
    True
    """
    x = operand(x)
    order = x.order if isinstance(x, Jet) else 0
    if callable(derivatives):
        derivatives = derivatives(primal(x), order)
    derivatives = as_array(derivatives)
    if derivatives.ndim == 0 or derivatives.shape[0] < order + 1:
        raise ValueError(f"compose: need derivatives of orders 0..{order}, shape "
                         f"({order + 1}, *x.shape); got shape {derivatives.shape}")
    if not isinstance(x, Jet):
        return derivatives[0]
    return apply("compose", x, derivatives=derivatives[: order + 1])


def _binary_ufunc(name):
    return lambda a, b: elementwise(name, a, b)


def _true_power(a, b):
    if isinstance(a, Jet):
        return power(a, b)
    return exp(b * log(as_array(a)))


UFUNCS.update({
    np.add: _binary_ufunc("add"),
    np.subtract: _binary_ufunc("sub"),
    np.multiply: _binary_ufunc("mul"),
    np.true_divide: _binary_ufunc("div"),
    np.negative: lambda x: -x,
    np.positive: lambda x: x,
    np.matmul: lambda a, b: apply("matmul", operand(a), operand(b)),
    np.power: _true_power,
    np.exp: exp,
    np.log: log,
    np.sqrt: sqrt,
    np.reciprocal: reciprocal,
    np.tanh: tanh,
    np.sin: sin,
    np.cos: cos,
})

ARRAY_FUNCTIONS.update({
    np.sum: sum,
    np.mean: mean,
    np.reshape: reshape,
    np.transpose: transpose,
    np.concatenate: concatenate,
    np.stack: stack,
    np.matmul: matmul,
})


