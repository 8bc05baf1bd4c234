r"""Numba kernels for functions on subsets: ranked zeta and Moebius transforms and
the fast subset convolution (tier 1: plain arrays, no classes).

A function ``f`` on the subsets of ``{0..d-1}`` is an array of shape ``(2^d, L)``:
row ``S`` (a bitmask, bit ``i`` set when ``i`` is in the set) holds ``f(S)`` for
``L`` independent scalar functions.  The subset convolution

    (f * g)(S) = sum_{T subset S} f(T) g(S \ T)

is the product of the algebra of :class:`taylorsketch.MultiJet` (nilpotent
variables: ``z_T z_U = z_{T u U}`` when ``T`` and ``U`` are disjoint, 0
otherwise).  The naive sum costs O(3^d) per scalar; ranking the transforms
(Bjorklund, Husfeldt, Kaski and Koivisto, "Fourier meets Moebius", STOC 2007)
brings it to O(2^d d^2):

    ranked zeta      fhat[k, X] = sum_{T subset X, |T| = k} f(T)
    product          hhat[k, X] = sum_{j=0..k} fhat[j, X] ghat[k-j, X]
    ranked Moebius   h(S)       = sum_{T subset S} (-1)^{|S \ T|} hhat[|S|, T]

Each transform is ``d`` butterfly passes over the masks per rank.  The
transforms take the layout of a MultiJet's series: the nonempty subsets only
(row ``S - 1`` for mask ``S``) and ranks 1..d, since the empty set is the
primal, whose ranks are ``(x_0, 0, ..., 0)`` for every ``X``.  For a fixed
``X`` the ranks ``fhat[., X]`` are the coefficients of a polynomial in one
variable ``t`` and the middle step is their Cauchy product: that is why every
univariate jet kernel of :mod:`taylorsketch.kernels` also works here (see
:mod:`taylorsketch.multijet_rules`).

Shape legend: d = number of variables, L = number of scalar functions.
"""

import numba
import numpy as np

from ._config import NUMBA_OPTIONS

njit = numba.njit(**NUMBA_OPTIONS)


@njit
def popcounts(n_masks):
    """``|S|`` for every mask ``S < n_masks``."""
    out = np.zeros(n_masks, dtype=np.int64)
    for mask in range(1, n_masks):
        out[mask] = out[mask >> 1] + (mask & 1)
    return out


@njit
def ranked_zeta(xs, out):
    """``out[k-1, X-1] = sum_{T subset X, |T| = k} x[T]`` for ranks ``k = 1..d``, masks ``X >= 1``.

    ``xs`` (2^d - 1, L) holds the nonempty subsets (row ``S - 1`` for mask ``S``),
    ``out`` is (d, 2^d - 1, L); the empty set (rank 0) is left out, as in a
    MultiJet's series.  Rank ``k`` starts as ``x`` on the masks of ``k`` bits,
    then one pass per bit ``i`` adds ``out[k, X without i]`` into every ``X``
    containing ``i``.  ``out[k, Y]`` is 0 while ``k > |Y|``, so only ranks
    ``k < |X|`` are added: d^2 2^(d-2) additions per scalar.
    """
    n_ranks, n_subsets, n = out.shape
    ranks = popcounts(n_subsets + 1)
    out[:] = 0.0
    for mask in range(1, n_subsets + 1):
        for l in range(n):
            out[ranks[mask] - 1, mask - 1, l] = xs[mask - 1, l]
    bit = 1
    while bit <= n_subsets:
        for high in range(0, n_subsets + 1, 2 * bit):
            for low in range(bit):
                mask = high + bit + low            # every mask containing the bit, once
                below = mask - bit
                if below == 0:
                    continue
                for k in range(1, ranks[mask]):
                    for l in range(n):
                        out[k - 1, mask - 1, l] += out[k - 1, below - 1, l]
        bit <<= 1


@njit
def ranked_moebius(xhat, out):
    """``out[S-1] = sum_{T subset S} (-1)^{|S \\ T|} xhat[|S|-1, T-1]`` for masks ``S >= 1``.

    ``xhat`` (d, 2^d - 1, L), ranks 1..d of the nonempty masks (the empty
    set's are 0: a constant has no series), is overwritten: every rank is
    Moebius-inverted in place, one pass per bit subtracting ``xhat[k, X
    without i]`` from every ``X`` containing ``i``; then each mask keeps the
    rank equal to its own size.  Rank ``k`` is only read on masks of at most
    ``k`` bits, so only those are updated (and only those need to be right on
    input).
    """
    n_ranks, n_subsets, n = xhat.shape
    ranks = popcounts(n_subsets + 1)
    bit = 1
    while bit <= n_subsets:
        for high in range(0, n_subsets + 1, 2 * bit):
            for low in range(bit):
                mask = high + bit + low
                below = mask - bit
                if below == 0:
                    continue
                for k in range(ranks[mask], n_ranks + 1):
                    for l in range(n):
                        xhat[k - 1, mask - 1, l] -= xhat[k - 1, below - 1, l]
        bit <<= 1
    for mask in range(1, n_subsets + 1):
        for l in range(n):
            out[mask - 1, l] = xhat[ranks[mask] - 1, mask - 1, l]


@njit
def subset_convolution(f, g, out):
    """``out[S] = sum_{T subset S} f[T] g[S \\ T]`` in O(2^d d^2): f, g, out (2^d, L).

    With ``f = f_0 + u`` and ``g = g_0 + v`` (``u``, ``v`` without empty set):
    ``f g = f_0 g_0 + f_0 v + g_0 u + u v``, and ``u v`` is the Cauchy product of
    the ranks, ``sum_{j=1..k-1} uhat_j vhat_{k-j}``, Moebius-inverted.  At a mask
    of ``p`` bits only ranks ``k >= p`` are read by the Moebius transform, and
    ``uhat_j = 0`` for ``j > p``.
    """
    n_masks, n = f.shape
    n_subsets = n_masks - 1
    n_ranks = 0
    while (1 << n_ranks) < n_masks:
        n_ranks += 1
    ranks = popcounts(n_masks)
    uhat = np.empty((n_ranks, n_subsets, n), dtype=out.dtype)
    vhat = np.empty((n_ranks, n_subsets, n), dtype=out.dtype)
    ranked_zeta(f[1:], uhat)
    ranked_zeta(g[1:], vhat)
    for mask in range(1, n_masks):
        p = ranks[mask]
        for k in range(n_ranks, p - 1, -1):        # in place, from the top rank down
            for l in range(n):
                uhat[k - 1, mask - 1, l] = g[0, l] * uhat[k - 1, mask - 1, l] + f[0, l] * vhat[k - 1, mask - 1, l]
            for j in range(max(1, k - p), min(p, k - 1) + 1):   # ranks j < k: not yet overwritten
                for l in range(n):
                    uhat[k - 1, mask - 1, l] += uhat[j - 1, mask - 1, l] * vhat[k - j - 1, mask - 1, l]
    for l in range(n):
        out[0, l] = f[0, l] * g[0, l]
    ranked_moebius(uhat, out[1:])
