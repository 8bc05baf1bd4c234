"""The user-facing entry points of Taylor-mode AD: ``taylor`` and ``derivatives``."""

import numpy as np

from .jet import Jet, as_array, check_order, to_derivatives


def taylor(f, x, v, order):
    """Normalised Taylor coefficients of ``t -> f(x + t v)`` at ``t = 0``.

    Parameters
    ----------
    f : callable
        Written with ``ts`` functions and operators (``ts.exp``, ``@``, ...).
    x : array_like
        The point (real or complex).
    v : array_like, same shape as ``x``
        The direction; may be complex.
    order : int
        Highest coefficient ``K``.

    Returns
    -------
    ndarray, shape ``(order + 1, *out_shape)``
        ``c_r = (d^r/dt^r) f(x + t v) / r!`` at ``t = 0``, for ``r = 0..K``.

    Examples
    --------
    >>> import numpy as np, taylorsketch as ts
    >>> ts.taylor(ts.exp, 0.0, 1.0, order=4)            # 1/r!
    array([1.        , 1.        , 0.5       , 0.16666667, 0.04166667])
    >>> ts.taylor(lambda x: 1 / (1 - x), 0.0, 1.0, order=3)
    array([1., 1., 1., 1.])
    """
    check_order(order)
    x = _finite_array("x", x)
    v = _finite_array("v", v)
    if v.shape != x.shape:
        raise ValueError(f"direction v must have the shape of x {x.shape}; got {v.shape}")
    out = f(Jet.from_directions(x, v[None], order))
    if not isinstance(out, Jet):
        out = as_array(out)
        return np.concatenate([out[None], np.zeros((order,) + out.shape, dtype=out.dtype)])
    return out.coefficients()[:, 0]


def derivatives(f, x, v, order):
    """Derivatives ``d^r/dt^r f(x + t v)`` at ``t = 0`` for ``r = 0..order``.

    The same as :func:`taylor` times ``r!``.

    >>> import numpy as np, taylorsketch as ts
    >>> ts.derivatives(lambda x: x ** 3, 2.0, 1.0, order=4)   # 8, 12, 12, 6, 0
    array([ 8., 12., 12.,  6.,  0.])
    """
    return to_derivatives(taylor(f, x, v, order))


def _finite_array(name, value):
    """``value`` as an array; non-finite entries are an error."""
    array = as_array(value)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return array
