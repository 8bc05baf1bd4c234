r"""The ``Jet`` type: a truncated power series with tensor coefficients.

Convention, fixed here once for the whole package
-------------------------------------------------
For a smooth map ``f`` and a point ``x`` moved along a direction ``v``, the
jet of order ``K`` of ``t -> f(x + t v)`` at ``t = 0`` is the polynomial

    c_0 + c_1 t + c_2 t^2 + ... + c_K t^K,      c_r = f^(r)(0) / r!,

that is, the *normalised* Taylor coefficients.  With this convention the
coefficients of a product are the Cauchy product ``(ab)_r = sum_{i+j=r} a_i
b_j`` (no binomials), and derivatives are recovered as ``r! c_r`` only at the
API boundary (:func:`taylorsketch.derivatives`, :meth:`Jet.derivatives`).
Arithmetic on jets is arithmetic modulo ``t^(K+1)``.

Storage
-------
Every direction of a batch expands around the same point, so the primal is
stored once::

    primal   c_0         shape S              real or complex
    series   c_1 .. c_K  shape (K, M, *S)     M directions side by side

``M`` directions cost one primal plus ``M`` series.  The series may be complex
while the primal is real: the sketch moves a real training run along complex
directions.

Operations
----------
Operators (``+ - * / ** @``, unary ``-``), indexing, ``sum``/``mean``,
``reshape``/``transpose``/``.T`` behave as for numpy arrays, with numpy's
broadcasting, on the primal shape ``S``.  A numpy array on either side of an
operator gives a ``Jet``.  Each primitive's rule lives in
:mod:`taylorsketch.rules`; the elementwise functions (``ts.exp``, ...) are in
:mod:`taylorsketch.functions`.

>>> import numpy as np, taylorsketch as ts
>>> x = ts.Jet.from_directions(np.array(2.0), np.array([1.0]), order=3)
>>> y = x * x                  # t -> (2 + t)^2 = 4 + 4t + t^2
>>> y.coefficients()[:, 0]
array([4., 4., 1., 0.])
"""

import math
import numbers
import threading

import numpy as np

from .rules import RULES, check_domain, nonzero, positive
from .shape_rules import normalise_axes

# numpy ufuncs and array functions -> their handlers for Jets; filled by
# :mod:`taylorsketch.functions`, where the handlers are defined.
UFUNCS = {}
ARRAY_FUNCTIONS = {}
# ``RECORDING.active``: this thread's recording (:mod:`taylorsketch.plan`), or None.
RECORDING = threading.local()
RECORDING.active = None


def as_array(value):
    """An operand as a float64 or complex128 array (ints and bools promoted)."""
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"cannot use an object array (or {type(value).__name__}) in jet arithmetic")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"cannot use an array of dtype {array.dtype} in jet arithmetic")
    return array.astype(np.result_type(array.dtype, np.float64), copy=False)


class Jet:
    """A batch of truncated power series sharing one primal.

    Parameters
    ----------
    primal : array_like, shape ``S``
        ``c_0``, the value at ``t = 0``.
    series : array_like, shape ``(K, M, *S)``
        ``c_1..c_K`` for each of ``M`` directions, normalised (``c_r = f^(r)/r!``).

    Examples
    --------
    >>> import numpy as np, taylorsketch as ts
    >>> x = ts.Jet(np.zeros(2), np.ones((3, 1, 2)))      # t + t^2 + t^3, twice
    >>> x.order, x.n_directions, x.shape
    (3, 1, (2,))
    >>> ts.exp(x).derivatives()[:, 0, 0]                 # d^r/dt^r e^(t+t^2+t^3)
    array([ 1.,  1.,  3., 13.])
    """

    __slots__ = ("primal", "series", "__weakref__")

    # The rules of this algebra (a MultiJet has its own, under the same names).
    RULES = RULES

    # numpy hands every ufunc and array function involving a Jet to the
    # methods below, so ``array * jet`` and ``np.exp(jet)`` give Jets.
    __array_priority__ = 1000

    def __init__(self, primal, series):
        primal = as_array(primal)
        series = as_array(series)
        if series.ndim != primal.ndim + 2 or series.shape[2:] != primal.shape:
            raise ValueError(
                f"series must have shape (order, n_directions, *primal.shape) = "
                f"(K, M, {', '.join(map(str, primal.shape))}{',' if primal.ndim == 1 else ''}); "
                f"got series {series.shape} for primal {primal.shape}")
        if np.iscomplexobj(primal) and not np.iscomplexobj(series):
            series = series.astype(np.complex128)
        for name, value in (("primal", primal), ("series", series)):
            if not np.all(np.isfinite(value)):
                raise ValueError(f"Jet {name} contains non-finite values (NaN or inf)")
        self.primal = primal
        self.series = series

    @classmethod
    def wrap(cls, primal, series):
        """Trusted constructor (no checks, no copies): for rule outputs and views of buffers."""
        jet = object.__new__(cls)
        jet.primal = np.asarray(primal)
        jet.series = series
        return jet

    @classmethod
    def constant(cls, value, order, n_directions=1):
        """A jet whose series is zero: ``value`` does not move with ``t``."""
        check_order(order)
        value = as_array(value)
        return cls(value, np.zeros((order, n_directions) + value.shape, dtype=value.dtype))

    @classmethod
    def from_directions(cls, x, directions, order):
        """The jet of ``t -> x + t v`` for each direction ``v`` in ``directions``.

        ``directions`` has shape ``(M, *x.shape)``; the result has order ``order``
        and ``M`` directions, ``c_1 = v`` and ``c_r = 0`` for ``r >= 2``.
        """
        check_order(order)
        x = as_array(x)
        directions = as_array(directions)
        if directions.shape[1:] != x.shape:
            raise ValueError(f"directions must have shape (M, *x.shape) = (M, {x.shape}); "
                             f"got {directions.shape}")
        series = np.zeros((order,) + directions.shape, dtype=np.result_type(x, directions))
        if order >= 1:
            series[0] = directions
        return cls(x, series)

    # -- description ---------------------------------------------------------

    @property
    def order(self):
        return self.series.shape[0]

    @property
    def n_directions(self):
        return self.series.shape[1]

    @property
    def shape(self):
        return self.primal.shape

    @property
    def ndim(self):
        return self.primal.ndim

    @property
    def size(self):
        return self.primal.size

    @property
    def dtype(self):
        return np.result_type(self.primal, self.series)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d Jet")
        return self.shape[0]

    def __repr__(self):
        return (f"Jet(order={self.order}, n_directions={self.n_directions}, "
                f"shape={self.shape}, dtype={self.dtype})")

    def coefficients(self):
        """All coefficients ``c_0..c_K``, shape ``(K+1, M, *S)`` (``c_0`` repeated per direction)."""
        full = np.empty((self.order + 1, self.n_directions) + self.shape, dtype=self.dtype)
        full[0] = self.primal
        full[1:] = self.series
        return full

    def derivatives(self):
        """Derivatives ``d^r/dt^r f(x + t v)`` at 0, ``r! c_r``, shape ``(K+1, M, *S)``."""
        return to_derivatives(self.coefficients())

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a Jet is not an array: use .primal for c_0, .series for c_1..c_K "
                        "or .coefficients() for all of them")

    # -- numpy interoperability ---------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        handler = UFUNCS.get(ufunc)
        if method != "__call__" or handler is None or kwargs:
            return NotImplemented
        return handler(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        handler = ARRAY_FUNCTIONS.get(func)
        if handler is None:
            return NotImplemented
        return handler(*args, **kwargs)

    # -- arithmetic ----------------------------------------------------------

    def __add__(self, other):
        return elementwise("add", self, other)

    def __radd__(self, other):
        return elementwise("add", other, self)

    def __sub__(self, other):
        return elementwise("sub", self, other)

    def __rsub__(self, other):
        return elementwise("sub", other, self)

    def __mul__(self, other):
        return elementwise("mul", self, other)

    def __rmul__(self, other):
        return elementwise("mul", other, self)

    def __truediv__(self, other):
        return elementwise("div", self, other)

    def __rtruediv__(self, other):
        return elementwise("div", other, self)

    def __neg__(self):
        return apply("neg", self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        return power(self, exponent)

    def __rpow__(self, base):
        base = as_array(base)
        check_domain("base ** jet", base, positive, nonzero,
                     "it is exp(jet * log(base)) and needs a positive base")
        return apply("exp", self * np.log(base))

    def __matmul__(self, other):
        return apply("matmul", self, operand(other))

    def __rmatmul__(self, other):
        return apply("matmul", operand(other), self)

    # -- shape and reductions ------------------------------------------------

    def __getitem__(self, index):
        if isinstance(index, Jet) or (isinstance(index, tuple) and any(isinstance(i, Jet) for i in index)):
            raise TypeError("a Jet cannot be used as an index")
        return apply("getitem", self, index=index)

    def sum(self, axis=None, keepdims=False):
        return apply("sum", self, axis=normalise_axes(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        axes = normalise_axes(axis, self.ndim)
        count = math.prod(self.shape[a] for a in axes)
        if count == 0:
            raise ValueError(f"mean over no elements (axes {axes} of shape {self.shape})")
        return self.sum(axes, keepdims) * (1.0 / count)

    def reshape(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
            shape = shape[0]
        shape = tuple(int(s) for s in np.ravel(np.asarray(shape, dtype=int)))
        return apply("reshape", self, shape=self.primal.reshape(shape).shape)   # -1 resolved

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and not isinstance(axes[0], numbers.Integral) else axes
        return apply("transpose", self, axes=tuple(axes) if axes else None)

    @property
    def T(self):
        return self.transpose()


def to_derivatives(coeffs):
    """Derivatives ``r! c_r`` from normalised coefficients, ``(K+1, ...)`` along axis 0.

    The one conversion from this module's convention, at the API boundary.
    """
    if coeffs.shape[0] > 171:
        raise ValueError(f"derivatives need order <= 170 (171! overflows a float); got order "
                         f"{coeffs.shape[0] - 1}: use the normalised coefficients (ts.taylor) instead")
    factorials = np.array([math.factorial(r) for r in range(coeffs.shape[0])], dtype=float)
    return coeffs * factorials.reshape((-1,) + (1,) * (coeffs.ndim - 1))


def check_order(order):
    if not isinstance(order, numbers.Integral) or isinstance(order, bool) or order < 0:
        raise ValueError(f"order must be a non-negative integer; got {order!r}")


def operand(value):
    return value if isinstance(value, Jet) else as_array(value)


def constant_like(jet, value):
    """``value`` as a jet of the kind and signature of ``jet``, with a zero series."""
    value = as_array(value)
    return type(jet).wrap(value, np.zeros(jet.series.shape[:2] + value.shape, dtype=value.dtype))


def signature(jets):
    """The common (order, n_directions) of ``jets``; mixing them (or Jets with MultiJets) is an error."""
    kinds = {type(j) for j in jets}
    if len(kinds) > 1:
        raise ValueError(f"cannot combine operands of types {sorted(k.__name__ for k in kinds)}")
    first = jets[0].series.shape[:2]
    if all(j.series.shape[:2] == first for j in jets):
        return first
    orders = {j.order for j in jets}
    if len(orders) > 1:
        raise ValueError(f"cannot combine jets of different orders {sorted(orders)}")
    n_dirs = {j.n_directions for j in jets}
    if len(n_dirs) > 1:
        raise ValueError(f"cannot combine jets with different numbers of directions {sorted(n_dirs)}")
    return orders.pop(), n_dirs.pop()


def apply(name, *operands, **params):
    """Run the rule ``name`` on ``operands`` (Jets or arrays, at least one Jet)."""
    operands = [operand(o) for o in operands]
    jets = [o for o in operands if isinstance(o, Jet)]
    signature(jets)
    primals = tuple(o.primal if isinstance(o, Jet) else o for o in operands)
    series = tuple(o.series if isinstance(o, Jet) else None for o in operands)
    kind = type(jets[0])
    primal, series = kind.RULES[name](primals, series, **params)
    result = kind.wrap(primal, series)
    recorder = getattr(RECORDING, "active", None)
    if recorder is not None:
        recorder.operation(name, operands, params, result)
    return result


def elementwise(name, a, b):
    """A binary elementwise rule with numpy broadcasting of the primal shapes."""
    a, b = operand(a), operand(b)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"operands could not be broadcast together with shapes {a.shape} {b.shape}") from None
    a, b = _align(a, len(shape)), _align(b, len(shape))
    return apply(name, a, b)


def _align(x, ndim):
    if isinstance(x, Jet) and x.ndim < ndim:
        return apply("expand", x, ndim=ndim)
    return x


def power(x, exponent):
    """``x ** exponent`` for a Jet ``x``: integers by products, reals by the power rule."""
    if isinstance(exponent, np.ndarray) and exponent.ndim == 0:
        exponent = exponent.item()
    if isinstance(exponent, Jet) or np.ndim(exponent) > 0:
        return apply("exp", exponent * apply("log", x))
    if isinstance(exponent, complex) and exponent.imag == 0:
        exponent = exponent.real
    if not isinstance(exponent, numbers.Real):
        raise TypeError(f"unsupported exponent {exponent!r}")
    if float(exponent).is_integer():
        return _integer_power(x, int(exponent))
    return apply("pow", x, exponent=float(exponent))


def _integer_power(x, n):
    if n < 0:
        return 1.0 / _integer_power(x, -n)
    result = None
    square = x
    while n:
        if n & 1:
            result = square if result is None else result * square
        n >>= 1
        if n:
            square = square * square
    if result is None:   # x ** 0
        return type(x).wrap(np.ones(x.shape, dtype=x.primal.dtype), np.zeros_like(x.series))
    return result
