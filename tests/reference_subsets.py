"""Readable twins of ``taylorsketch/subset_kernels.py``: subset convolution and the
ranked zeta/Moebius transforms as plain sums over submasks (O(3^d)), and the exact
subset Taylor series that the MultiJet tests compare against.  Split from
``reference.py`` so that each file stays readable in one sitting.
"""

import numpy as np


# ----------------------------------------------------------------------------
# functions on subsets (twins of ``subset_kernels.py``): sums over submasks
#
# Arrays are ``(2^d, L)``, row ``S`` a bitmask; ranked arrays ``(d+1, 2^d, L)``.


def submasks(mask):
    """Every ``T subset mask``, by the ``T = (T - 1) & mask`` walk."""
    out, sub = [], mask
    while True:
        out.append(sub)
        if sub == 0:
            return out
        sub = (sub - 1) & mask


def subset_convolution(f, g):
    """``(f * g)(S) = sum_{T subset S} f(T) g(S \\ T)``, summed directly: O(3^d)."""
    out = np.zeros(f.shape, dtype=np.result_type(f, g))
    for mask in range(f.shape[0]):
        for sub in submasks(mask):
            out[mask] += f[sub] * g[mask ^ sub]
    return out


def ranked_zeta(f):
    """``fhat[k, X] = sum_{T subset X, |T| = k} f(T)``."""
    n_masks = f.shape[0]
    n_ranks = n_masks.bit_length()
    out = np.zeros((n_ranks, n_masks) + f.shape[1:], dtype=f.dtype)
    for mask in range(n_masks):
        for sub in submasks(mask):
            out[bin(sub).count("1"), mask] += f[sub]
    return out


def ranked_moebius(fhat):
    """``h(S) = sum_{T subset S} (-1)^{|S \\ T|} fhat[|S|, T]``."""
    n_masks = fhat.shape[1]
    out = np.zeros(fhat.shape[1:], dtype=fhat.dtype)
    for mask in range(n_masks):
        rank = bin(mask).count("1")
        for sub in submasks(mask):
            out[mask] += (-1) ** (rank - bin(sub).count("1")) * fhat[rank, sub]
    return out


def ranked_moebius_abs(fhat):
    """``sum_{T subset S} fhat[|S|, T]``: ``ranked_moebius`` without its signs (for error bounds)."""
    out = np.zeros(fhat.shape[1:], dtype=fhat.dtype)
    for mask in range(fhat.shape[1]):
        rank = bin(mask).count("1")
        for sub in submasks(mask):
            out[mask] += fhat[rank, sub]
    return out


def subset_taylor_series(h, x):
    """``sum_k h_k u^k`` with ``u = x - x(empty set)`` and ``u^k`` subset-convolution powers.

    ``h`` has shape ``(d+1, L)``: the normalised derivatives ``h^(k)(x_0) / k!``.
    With ``z_i^2 = 0``, ``u^k`` vanishes for ``k > d``: the sum is exact.
    """
    u = x.copy()
    u[0] = 0.0
    out = np.zeros(x.shape, dtype=np.result_type(x, h))
    u_power = np.zeros_like(out)
    u_power[0] = 1.0
    for k in range(h.shape[0]):
        out += h[k] * u_power
        u_power = subset_convolution(u_power, u)
    return out
