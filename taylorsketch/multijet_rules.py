r"""MultiJet rules: every univariate jet rule, lifted to subsets by the ranked transforms.

The rules keep the signature of :mod:`taylorsketch.rules`,
``rule(primals, series, **params) -> (primal, series)``, with a MultiJet's
series ``(2^d - 1, M, *S)`` (subsets in bitmask order, the empty set left out:
it is the primal).

Why one lifting serves every rule
---------------------------------
Lift a subset function ``u`` to ``U_X(t) = sum_{T subset X} u(T) t^|T|``, a
polynomial in one variable for each mask ``X`` (the ranked zeta transform).
Products of lifted functions are lifted subset convolutions once projected
back by ``u(S) = [t^|S|] sum_{T subset S} (-1)^{|S \ T|} U_T(t)`` (the ranked
Moebius transform): the terms of a union ``T u U = S`` with total degree
``|T| + |U| = |S|`` are exactly the disjoint pairs (Bjorklund et al. 2007).
Both are linear, the lifted functions are closed under products, and the
projection is multiplicative on them, so for any analytic ``f``

    f(u) = Moebius_rank( f(U_X(t)) mod t^(d+1) ),

where ``f(U_X(t))`` is an ordinary univariate jet of order ``d`` with primal
``u(empty)`` and one "direction" per nonempty mask ``X``.  So a MultiJet rule
is: ranked zeta of each operand, the univariate rule of :data:`RULES` on
``2^d - 1`` directions, ranked Moebius of the result.  Every univariate
recurrence (and ``matmul``'s batching of order pairs into GEMMs) is reused as
it is.  Cost per scalar: O(2^d d^2), against O(2^d d^3) for Faa di Bruno's
``sum_k f^(k) u^k / k!`` with ``u^k`` by ``d`` subset convolutions.  This is
the polarisation identity ``d^d f / dz_1..dz_d = sum_X (-1)^{d-|X|} [t^d]
f(x + t sum_{i in X} v_i)`` made exact for every subset at once.

Linear rules (``add``, structural ones, products with a constant) commute with
the transforms and run on the series directly.
"""

import numpy as np

from . import kernels, subset_kernels
from ._config import MULTIJET_ADAM_CHUNK
from . import shape_rules  # noqa: F401 - registers the structural rules in RULES
from .rules import RULES

MULTI_RULES = {}

# rules that are linear in the series: the same map on c_0 and on every c_S
LINEAR = ("add", "sub", "expand", "neg", "sum", "reshape", "transpose", "getitem", "scatter_add", "concatenate",
          "stack")
# rules lifted through the ranks; the argument says when the call is linear anyway
LIFTED = {
    "mul": lambda series: series[0] is None or series[1] is None,
    "div": lambda series: series[1] is None,
    "matmul": lambda series: series[0] is None or series[1] is None,
    "exp": None, "log": None, "pow": None, "tanh": None, "erf": None, "sin": None, "cos": None,
    "compose": None,
}


def n_variables(n_subsets):
    """``d`` from the number of nonempty subsets ``2^d - 1`` (ValueError otherwise)."""
    d = (n_subsets + 1).bit_length() - 1
    if n_subsets < 0 or (1 << d) != n_subsets + 1:
        raise ValueError(f"a MultiJet series needs 2^d - 1 rows (one per nonempty subset); "
                         f"got {n_subsets}")
    return d


def to_ranks(xs):
    """Ranked zeta of a series ``(2^d - 1, M, *S)``, as a univariate series ``(d, (2^d - 1) M, *S)``.

    Row ``k - 1`` holds ``sum_{T subset X, |T| = k} x_T`` for every nonempty ``X``;
    rank 0 (the primal) is shared and not stored.
    """
    n_subsets, n_dirs = xs.shape[:2]
    shape = xs.shape[2:]
    d = n_variables(n_subsets)
    dtype = np.result_type(np.float64, xs)
    flat = np.ascontiguousarray(xs, dtype=dtype).reshape(n_subsets, -1)
    ranked = np.empty((d,) + flat.shape, dtype=dtype)
    subset_kernels.ranked_zeta(flat, ranked)
    return ranked.reshape((d, n_subsets * n_dirs) + shape)


def from_ranks(ys, n_dirs):
    """Ranked Moebius of a univariate series ``(d, (2^d - 1) M, *S)``, back to ``(2^d - 1, M, *S)``.

    ``ys`` is overwritten when it is contiguous (the rules' outputs are fresh).
    """
    d = ys.shape[0]
    n_subsets = (1 << d) - 1
    shape = ys.shape[2:]
    ranked = np.ascontiguousarray(ys).reshape(d, n_subsets, -1)
    if not ranked.flags.writeable:       # a broadcast view
        ranked = ranked.copy()
    out = np.empty((n_subsets, n_dirs) + shape, dtype=ys.dtype)
    subset_kernels.ranked_moebius(ranked, out.reshape(n_subsets, -1))
    return out


def _lift(name, linear_when):
    univariate = RULES[name]

    def rule(primals, series, **params):
        if linear_when is not None and linear_when(series):
            return univariate(primals, series, **params)
        n_dirs = next(s for s in series if s is not None).shape[1]
        ranked = tuple(None if s is None else to_ranks(s) for s in series)
        y0, ys = univariate(primals, ranked, **params)
        return y0, from_ranks(ys, n_dirs)
    rule.__name__ = f"{name}_multi_rule"
    rule.__doc__ = f"``{name}`` on subsets: ranked zeta, the univariate rule, ranked Moebius."
    return rule


for _name in LINEAR:
    MULTI_RULES[_name] = RULES[_name]
for _name, _linear_when in LIFTED.items():
    MULTI_RULES[_name] = _lift(_name, _linear_when)


def adam_update(p0, m0, v0, g0, ps, ms, vs, gs, beta1, beta2, lr, bias1, bias2, eps):
    """:func:`taylorsketch.kernels.adam_update` for MultiJet series ``(2^d - 1, M, P)``, in place.

    The fused univariate kernel runs on the lifted (ranked zeta) series; the
    updated ``p``, ``m``, ``v`` are projected back by the ranked Moebius
    transform.  The primals are updated by the kernel itself.
    """
    n_subsets, n_dirs, n_params = ps.shape
    width = max(1, MULTIJET_ADAM_CHUNK // (n_variables(n_subsets) * n_subsets * n_dirs))
    for a in range(0, n_params, width):
        b = min(a + width, n_params)
        lifted = [to_ranks(x[:, :, a:b]) for x in (ps, ms, vs, gs)]
        primals = [x[a:b] for x in (p0, m0, v0)]
        kernels.adam_update(*primals, g0[a:b], *lifted, beta1, beta2, lr, bias1, bias2, eps)
        for x, y in zip((ps, ms, vs), lifted[:3]):
            x[:, :, a:b] = from_ranks(y, n_dirs)
