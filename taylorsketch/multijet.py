r"""The ``MultiJet`` type: jets in ``d`` nilpotent variables, coefficients indexed by subsets.

Convention
----------
For a smooth map ``f`` and a point ``x`` moved along ``d`` directions
``v_1..v_d`` at once, the MultiJet of ``f(x + z_1 v_1 + ... + z_d v_d)`` is
its expansion in variables with ``z_i^2 = 0``:

    sum_{S subset {1..d}} c_S z_S,       z_S = prod_{i in S} z_i,
    c_S = d^|S| f / prod_{i in S} dz_i   at z = 0,

the mixed partial derivatives, each variable at most once.  (This is
:mod:`taylorsketch.jet`'s convention ``c = f^(alpha) / alpha!`` restricted to
multi-indices ``alpha`` in ``{0, 1}^d``, where ``alpha! = 1``: coefficients and
derivatives coincide.)  Products are subset convolutions,
``(ab)_S = sum_{T subset S} a_T b_{S \ T}``, computed with the ranked
zeta/Moebius transforms in O(2^d d^2) (:mod:`taylorsketch.subset_kernels`);
every other rule is a univariate rule lifted the same way
(:mod:`taylorsketch.multijet_rules`).  A MultiJet has total degree ``d``:
its ``order`` is ``d``.

Storage
-------
As for ``Jet``, the primal (the empty set's coefficient) is stored once::

    primal   c_{}          shape S
    series   c_S, S != {}  shape (2^d - 1, M, *S)   subsets in bitmask order

row ``S - 1`` holds the subset with bitmask ``S`` (bit ``i - 1`` for ``z_i``).
``M`` independent groups of ``d`` variables share one primal.  A MultiJet
is a :class:`~taylorsketch.Jet` (every layer, model and the training loop take
it unchanged), but it never combines with a univariate Jet.

>>> import numpy as np, taylorsketch as ts
>>> x = ts.MultiJet.from_directions(np.array(2.0), np.array([1.0, 1.0]))   # 2 + z1 + z2
>>> (x * x).coefficients()[:, 0]        # 4 + 4 z1 + 4 z2 + 2 z1 z2
array([4., 4., 4., 2.])
"""

import numbers

import numpy as np

from . import subset_kernels
from .jet import Jet, as_array
from .multijet_rules import MULTI_RULES, n_variables

# 2^d coefficients per scalar; at d = 20 a single float64 series of 4,192
# parameters is already 35 GB.  Groups of documents are meant to be ~12.
MAX_VARIABLES = 20


def check_n_variables(d):
    """``d`` must be an integer in 1..MAX_VARIABLES."""
    if not isinstance(d, numbers.Integral) or isinstance(d, bool) or not 1 <= d <= MAX_VARIABLES:
        raise ValueError(f"the number of variables d must be an integer in 1..{MAX_VARIABLES}; got {d!r}")
    return int(d)


def subset_mask(subset, d):
    """The bitmask of ``subset`` (indices in ``0..d-1``; an int is taken as a mask)."""
    if isinstance(subset, numbers.Integral) and not isinstance(subset, bool):
        mask = int(subset)
        if not 0 <= mask < (1 << d):
            raise ValueError(f"mask {mask} out of range for d = {d}")
        return mask
    mask = 0
    for i in subset:
        if not isinstance(i, numbers.Integral) or not 0 <= i < d:
            raise ValueError(f"subset member {i!r} is not a variable index in 0..{d - 1}")
        mask |= 1 << int(i)
    return mask


class MultiJet(Jet):
    """A batch of truncated expansions in ``d`` nilpotent variables sharing one primal.

    Parameters
    ----------
    primal : array_like, shape ``S``
        ``c_{}``, the value at ``z = 0``.
    series : array_like, shape ``(2^d - 1, M, *S)``
        ``c_S`` for every nonempty subset ``S`` (bitmask order) of each of ``M`` groups.

    Examples
    --------
    >>> import numpy as np, taylorsketch as ts
    >>> x = ts.MultiJet.from_directions(np.array(0.5), np.array([1.0, 2.0]))
    >>> y = ts.exp(x)                          # exp(0.5 + z1 + 2 z2)
    >>> np.allclose(y.coefficient([0, 1]), 2 * np.exp(0.5))
    True
    """

    __slots__ = ()
    RULES = MULTI_RULES

    def __init__(self, primal, series):
        super().__init__(primal, series)
        check_n_variables(n_variables(self.series.shape[0]))

    @classmethod
    def constant(cls, value, n_variables, n_directions=1):
        """A MultiJet of ``value`` that does not move with any ``z_i``."""
        d = check_n_variables(n_variables)
        value = as_array(value)
        return cls(value, np.zeros(((1 << d) - 1, n_directions) + value.shape, dtype=value.dtype))

    @classmethod
    def from_directions(cls, x, directions):
        """The MultiJet of ``x + sum_i z_i v_i``: ``directions`` ``(d, *x.shape)`` holds ``v_1..v_d``.

        ``c_{i} = v_i`` and every coefficient of two or more variables is 0.
        """
        x = as_array(x)
        directions = as_array(directions)
        if directions.ndim != x.ndim + 1 or directions.shape[1:] != x.shape:
            raise ValueError(f"directions must have shape (d, *x.shape) = (d, {x.shape}); "
                             f"got {directions.shape}")
        d = check_n_variables(directions.shape[0])
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(directions))):
            raise ValueError("MultiJet.from_directions: x and directions must be finite")
        series = np.zeros(((1 << d) - 1, 1) + x.shape, dtype=np.result_type(x, directions))
        for i in range(d):
            series[(1 << i) - 1, 0] = directions[i]
        return cls(x, series)

    # -- description ---------------------------------------------------------

    @property
    def n_variables(self):
        """``d``, the number of nilpotent variables."""
        return n_variables(self.series.shape[0])

    @property
    def order(self):
        """The total degree ``d``: the largest ``|S|`` with a coefficient."""
        return self.n_variables

    def __repr__(self):
        return (f"MultiJet(n_variables={self.n_variables}, n_directions={self.n_directions}, "
                f"shape={self.shape}, dtype={self.dtype})")

    def coefficients(self):
        """All ``c_S``, shape ``(2^d, M, *S)``, row = bitmask (``c_{}`` repeated per group)."""
        full = np.empty((self.series.shape[0] + 1, self.n_directions) + self.shape, dtype=self.dtype)
        full[0] = self.primal
        full[1:] = self.series
        return full

    def derivatives(self):
        """The mixed partials ``d^|S| f / prod_{i in S} dz_i``: the coefficients themselves."""
        return self.coefficients()

    def coefficient(self, subset):
        """``c_S`` of every group, shape ``(M, *S)``; ``subset`` is indices in ``0..d-1`` or a mask."""
        mask = subset_mask(subset, self.n_variables)
        if mask == 0:
            return np.broadcast_to(self.primal, (self.n_directions,) + self.shape).copy()
        return self.series[mask - 1].copy()


def subset_convolution(f, g):
    """``h(S) = sum_{T subset S} f(T) g(S \\ T)`` for functions on the subsets of ``{0..d-1}``.

    ``f`` and ``g`` have shape ``(2^d, *S)`` (row = bitmask, trailing axes
    broadcast); O(2^d d^2) per entry by the ranked transforms.  It is the
    product of two MultiJets' coefficient arrays.

    >>> import numpy as np, taylorsketch as ts
    >>> ts.subset_convolution(np.array([1.0, 1, 0, 0]), np.array([2.0, 0, 3, 0]))   # (1 + z1)(2 + 3 z2)
    array([2., 2., 3., 3.])
    """
    f, g = as_array(f), as_array(g)
    if f.ndim == 0 or g.ndim == 0 or f.shape[0] != g.shape[0]:
        raise ValueError(f"subset_convolution: f and g need the same leading length 2^d; "
                         f"got shapes {f.shape} and {g.shape}")
    d = f.shape[0].bit_length() - 1
    if f.shape[0] != 1 << d or d > MAX_VARIABLES:
        raise ValueError(f"subset_convolution: the leading length must be 2^d with d in "
                         f"0..{MAX_VARIABLES} (one entry per subset); got {f.shape[0]}")
    try:
        shape = np.broadcast_shapes(f.shape, g.shape)
    except ValueError:
        raise ValueError(f"subset_convolution: shapes {f.shape} and {g.shape} do not broadcast") from None
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(g))):
        raise ValueError("subset_convolution: f and g must be finite")
    dtype = np.result_type(f, g)
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape).reshape(shape[0], -1), dtype=dtype)
            for a in (f, g)]
    out = np.empty_like(flat[0])
    subset_kernels.subset_convolution(flat[0], flat[1], out)
    return out.reshape(shape)
