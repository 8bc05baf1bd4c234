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

Each transform is ``d`` butterfly passes over the masks per rank.  For a fixed
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
def ranked_zeta(f, out):
    """``out[k, X] = sum_{T subset X, |T| = k} f[T]``: f (2^d, L) -> out (d+1, 2^d, L).

    Rank ``k`` starts as ``f`` restricted to the masks with ``k`` bits, then one
    pass per bit ``i`` adds ``out[k, X without i]`` into every ``X`` containing ``i``.
    """
    n_ranks, n_masks, n = out.shape
    ranks = popcounts(n_masks)
    out[:] = 0.0
    for mask in range(n_masks):
        for l in range(n):
            out[ranks[mask], mask, l] = f[mask, l]
    bit = 1
    while bit < n_masks:
        for k in range(n_ranks):
            for mask in range(n_masks):
                if mask & bit and ranks[mask] >= k:
                    for l in range(n):
                        out[k, mask, l] += out[k, mask ^ bit, l]
        bit <<= 1


@njit
def ranked_moebius(fhat, out):
    """``out[S] = sum_{T subset S} (-1)^{|S \\ T|} fhat[|S|, T]``: fhat (d+1, 2^d, L) -> out (2^d, L).

    Every rank is Moebius-inverted in place (``fhat`` is overwritten), one pass
    per bit subtracting ``fhat[k, X without i]`` from every ``X`` containing ``i``;
    then each mask keeps the rank equal to its own size.  Rank ``k`` is only
    needed on masks of at most ``k`` bits, which halves the passes.
    """
    n_ranks, n_masks, n = fhat.shape
    ranks = popcounts(n_masks)
    bit = 1
    while bit < n_masks:
        for k in range(n_ranks):
            for mask in range(n_masks):
                if mask & bit and ranks[mask] <= k:
                    for l in range(n):
                        fhat[k, mask, l] -= fhat[k, mask ^ bit, l]
        bit <<= 1
    for mask in range(n_masks):
        for l in range(n):
            out[mask, l] = fhat[ranks[mask], mask, l]


@njit
def ranked_product(fhat, ghat, out):
    """``out[k, X] = sum_{j=0..k} fhat[j, X] ghat[k-j, X]``: the Cauchy product in the rank."""
    n_ranks, n_masks, n = fhat.shape
    for k in range(n_ranks):
        for mask in range(n_masks):
            for l in range(n):
                out[k, mask, l] = 0.0
            for j in range(k + 1):
                for l in range(n):
                    out[k, mask, l] += fhat[j, mask, l] * ghat[k - j, mask, l]


@njit
def subset_convolution(f, g, out):
    """``out[S] = sum_{T subset S} f[T] g[S \\ T]`` in O(2^d d^2): f, g, out (2^d, L)."""
    n_masks, n = f.shape
    n_ranks = 1
    while (1 << (n_ranks - 1)) < n_masks:
        n_ranks += 1
    fhat = np.empty((n_ranks, n_masks, n), dtype=out.dtype)
    ghat = np.empty((n_ranks, n_masks, n), dtype=out.dtype)
    hhat = np.empty((n_ranks, n_masks, n), dtype=out.dtype)
    ranked_zeta(f, fhat)
    ranked_zeta(g, ghat)
    ranked_product(fhat, ghat, hhat)
    ranked_moebius(hhat, out)
