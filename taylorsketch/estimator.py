r"""The estimators (method.md section 3), as pure functions on coefficient arrays:
random directions, the unbiased sketch estimate of a measurement after a
deletion, the exact-direction estimate, and the stability fit.

One jet training along ``M`` random complex directions ``psi_j`` of the loss
weights stores the trained parameters' jets.  For a measurement ``phi`` with
coefficients ``c_r(psi_j)`` along each direction and a deletion set ``D``
(``s_j = sum_{i in D} conj(psi_ji)``),

    g_hat(t 1_D) = c_0 + sum_{r=1..K} t^r Re mean_j [ C(n+r-1, r) s_j^r c_r(psi_j) ],

unbiased for the degree-K Taylor polynomial of ``g`` at ``0`` evaluated at
``t 1_D``, because for ``psi`` uniform on the unit sphere of ``C^n``
``E[psi^alpha conj(psi)^beta] = delta_{alpha beta} alpha! (n-1)! / (n-1+r)!``.

Shape legend: n = training documents, M = directions, K = order.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln


# ----------------------------------------------------------------------------
# directions


def random_directions(n, ids, seed):
    """Directions uniform on the unit sphere of ``C^n``; direction ``j`` depends only
    on ``(seed, j)``, so shards of one sketch never repeat a direction."""
    out = np.empty((len(ids), n), dtype=np.complex128)
    for row, j in enumerate(ids):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(j)]))
        z = rng.standard_normal(n) + 1j * rng.standard_normal(n)
        out[row] = z / np.linalg.norm(z)
    return out


def log_binom(n, r):
    """log C(n + r - 1, r)."""
    return gammaln(n + r) - gammaln(r + 1) - gammaln(n)


# ----------------------------------------------------------------------------
# results


@dataclass
class Prediction:
    """A predicted measurement after a deletion.

    ``value`` and ``stderr`` (arrays when ``t`` is an array); ``terms[r-1]``
    is the order-``r`` contribution ``t^r est_r`` and ``term_stderr[r-1]`` its
    standard error; ``exact`` is True for the exact-direction mode (no sampling error).
    ``method`` names the estimator: ``"sketch"`` (the paper's), ``"exact"``,
    ``"additive"`` or ``"sum"`` (the per-document models: no sampling error, and
    their model error is not estimated, so ``stderr`` is NaN), or ``"residual"``
    (the additive model plus a random sketch of what it leaves out).
    """

    value: object
    stderr: object
    terms: np.ndarray
    term_stderr: np.ndarray
    base: float
    degree: int
    t: object
    n_deleted: int
    n_directions: int
    groups: int = None
    exact: bool = False
    method: str = "sketch"

    @property
    def truncation(self):
        """A rough size of the truncation error: ``|terms[-1]|``, the last term kept (the
        first one left out is about as large where the terms have stopped falling, and
        smaller where they still fall).  Not part of ``stderr``, which is sampling error only."""
        if self.degree == 0:
            return np.zeros_like(np.asarray(self.value, dtype=float))[()]
        return np.abs(self.terms[-1])[()]

    def truncations(self):
        """Values of the degree-0..K truncations ``c_0 + sum_{r<=k} terms``."""
        return self.base + np.concatenate([np.zeros((1,) + np.shape(self.terms[0])),
                                           np.cumsum(self.terms, axis=0)])

    def as_dict(self):
        def plain(x):
            return np.asarray(x).tolist()
        return {"value": plain(self.value), "stderr": plain(self.stderr), "base": self.base,
                "terms": plain(self.terms), "term_stderr": plain(self.term_stderr),
                "degree": self.degree, "t": plain(self.t), "n_deleted": self.n_deleted,
                "n_directions": self.n_directions, "groups": self.groups, "exact": self.exact,
                "method": self.method, "truncation": plain(self.truncation)}


@dataclass
class Stability:
    """Per-order estimates of ``log2 ||T_r||_F`` (method.md section 3).

    ``per_direction[j, r-1] = log2(sqrt(C(n+r-1, r)) |c_r(psi_j)|)``;
    ``combined[r-1]`` uses the mean of ``|c_r|^2`` over directions.
    ``curvature`` is the quadratic coefficient of a least-squares fit of
    ``combined`` against ``r``: negative means faster-than-linear decay.
    """

    orders: np.ndarray
    per_direction: np.ndarray
    combined: np.ndarray
    curvature: float
    slope: float

    def as_dict(self):
        return {"orders": self.orders.tolist(), "per_direction": self.per_direction.tolist(),
                "combined": self.combined.tolist(), "curvature": self.curvature, "slope": self.slope}


def estimate(coeffs, directions, indicator, degree, t=1.0, groups=None, interactions_only=False):
    """The unbiased sketch estimator of method.md section 3 (see the module docstring).

    ``coeffs`` (M, K+1) along ``directions`` (M, n); ``indicator`` (n,) is ``1_D``.
    Costs O(M |D| + M K) for a small set, one matrix-vector product O(M n) for a large one.

    ``interactions_only``: the coefficients are those of a function with no
    single-document monomials ``w_i^r`` (the residual after the documents' own
    series).  Then ``s^r`` becomes ``s^r - sum_{i in D} conj(psi_i)^r``: the moments of
    those monomials, whose expectation is known to be zero, leave the estimate, and
    with them their noise; the estimate stays unbiased (and is exactly zero for one
    document).
    """
    n = directions.shape[1]
    support = np.flatnonzero(indicator)
    if 16 * len(support) < n:      # a small set: touch only its columns, O(M |D|)
        s = np.conj(directions[:, support] @ indicator[support])               # (M,)
    else:                          # a large one: one matrix-vector product
        s = np.conj(directions @ indicator)
    t = np.asarray(t, dtype=float)
    orders = np.arange(1, degree + 1)
    c = coeffs[:, 1:degree + 1]                                                  # (M, degree)
    with np.errstate(divide="ignore"):
        if interactions_only:
            columns = np.conj(directions[:, support])[:, :, None]               # (M, |D|, 1)
            moments = s[:, None] ** orders - (columns ** orders).sum(axis=1)      # (M, degree)
            log_moment, moment_phase = np.log(np.abs(moments)), np.angle(moments)
        else:
            log_moment = orders[None, :] * np.log(np.abs(s))[:, None]
            moment_phase = orders[None, :] * np.angle(s)[:, None]
        # C(n+r-1, r) |s|^r |c_r| in logs: the first two factors overflow alone at high order
        log_magnitude = log_binom(n, orders)[None, :] + log_moment + np.log(np.abs(c))
    samples = np.real(np.exp(log_magnitude) * np.exp(1j * (moment_phase + np.angle(c))))   # (M, degree)
    if not np.all(np.isfinite(samples)):
        raise ValueError("the sketch estimate overflows: a Taylor term exceeds the float range (is t or the deletion set too large?)")
    t_powers = t[None] ** orders.reshape((-1,) + (1,) * t.ndim)                  # (degree, *t)
    base = float(np.real(coeffs[0, 0]))
    m = len(s)
    per_direction = np.tensordot(samples, t_powers, axes=(1, 0))                  # (M, *t)
    terms = samples.mean(axis=0).reshape((-1,) + (1,) * t.ndim) * t_powers
    ddof = 1 if m > 1 else 0
    term_stderr = (samples.std(axis=0, ddof=ddof) / math.sqrt(m)).reshape((-1,) + (1,) * t.ndim) * np.abs(t_powers)
    if groups is None or groups <= 1:
        value = base + per_direction.mean(axis=0)
        stderr = per_direction.std(axis=0, ddof=ddof) / math.sqrt(m)
    else:
        groups = int(groups)
        if groups > m:
            raise ValueError(f"groups={groups} exceeds the number of directions {m}")
        means = np.stack([g.mean(axis=0) for g in np.array_split(per_direction, groups)])
        value = base + np.median(means, axis=0)
        # the median of b near-normal group means has variance ~ (pi/2) var(mean)/b
        stderr = math.sqrt(math.pi / 2) * means.std(axis=0, ddof=1) / math.sqrt(groups)
    value = float(value) if np.ndim(value) == 0 else value
    stderr = float(stderr) if np.ndim(stderr) == 0 else stderr
    return Prediction(value, stderr, terms, term_stderr, base, degree,
                      float(t) if t.ndim == 0 else t, int(len(support)), m, groups)


def scale_along(psi, indicator):
    """``a`` with ``indicator = a psi`` (a real), or None when ``indicator`` is not along ``psi``."""
    support = indicator != 0
    if not np.any(support) or np.any(psi[~support] != 0):
        return None
    ratios = indicator[support] / psi[support]
    if not np.allclose(ratios, ratios[0], rtol=1e-12, atol=0):
        return None
    if abs(np.imag(ratios[0])) > 1e-12 * abs(ratios[0]):
        return None
    return float(np.real(ratios[0]))


def estimate_exact(coeffs, directions, indicator, degree, t=1.0):
    """Exact-direction mode (method.md section 3): ``c_0 + sum_r c_r (a t)^r`` when
    ``indicator = a psi_j`` for a stored direction ``psi_j``; no sampling error.

    ``coeffs`` (M, K+1) along ``directions`` (M, n); ``indicator`` (n,).
    """
    for j, psi in enumerate(directions):
        scale = scale_along(psi, indicator)
        if scale is not None:
            t = np.asarray(t, dtype=float)
            powers = (scale * t)[None] ** np.arange(1, degree + 1).reshape((-1,) + (1,) * t.ndim)
            terms = np.real(coeffs[j, 1:degree + 1].reshape((-1,) + (1,) * t.ndim) * powers)
            base = float(np.real(coeffs[j, 0]))
            value = base + terms.sum(axis=0)
            zeros = np.zeros_like(terms)
            return Prediction(value, np.zeros_like(value), terms, zeros, base, degree,
                              t, int(indicator.sum()), len(directions), exact=True, method="exact")
    raise ValueError("this sketch holds explicit directions; it predicts only deletions along "
                     "one of them (e.g. the indicator it was computed for)")


def estimate_known(coeffs, degree, t=1.0, n_deleted=0, method="additive"):
    """A prediction from known coefficients ``c_0..c_K`` of ``t -> g(t 1_D)`` (a
    per-document model): ``c_0 + sum_{r<=degree} c_r t^r``, no sampling error, and a
    model error that is not estimated (``stderr`` NaN)."""
    t = np.asarray(t, dtype=float)
    powers = t[None] ** np.arange(1, degree + 1).reshape((-1,) + (1,) * t.ndim)
    terms = coeffs[1:degree + 1].reshape((-1,) + (1,) * t.ndim) * powers
    value = float(coeffs[0]) + terms.sum(axis=0)
    nan = np.full_like(value, np.nan)
    return Prediction(value[()], nan[()], terms, np.zeros_like(terms), float(coeffs[0]), degree,
                      t[()], int(n_deleted), 0, method=method)


def fit_stability(coeffs, n):
    """Per-order ``log2 ||T_r||_F`` estimates and their quadratic fit; see :class:`Stability`.

    ``coeffs`` (M, K+1) along random directions on the sphere of ``C^n``.
    """
    coeffs = coeffs[:, 1:]
    orders = np.arange(1, coeffs.shape[1] + 1)
    log_c = 0.5 * log_binom(n, orders) / math.log(2)
    with np.errstate(divide="ignore"):
        per_direction = log_c + np.log2(np.abs(coeffs))
        combined = log_c + 0.5 * np.log2(np.mean(np.abs(coeffs) ** 2, axis=0))
    finite = np.isfinite(combined)
    curvature, slope = float("nan"), float("nan")
    if finite.sum() >= 3:
        curvature, slope, _ = np.polyfit(orders[finite], combined[finite], 2)
    return Stability(orders, per_direction, combined, float(curvature), float(slope))
