r"""Per-document series and the deletion predictions built on them (docs/method.md,
"Per-document jets").

A sketch of kind ``"documents"`` holds, for every training document ``i``, the
trained parameters along the unit vector ``e_i`` of the loss weights as exact
real series,

    theta(t e_i) = theta_0 + sum_{r=1..K} t^r theta_r^(i)      (series (K, n, P)).

From them:

* **leave-one-out**, exact to degree ``K``: ``phi`` on ``theta(t e_i)``;
* the **parameter-additive model** of a deletion ``D``,
  ``theta_add(t 1_D) = theta_0 + sum_{i in D} (theta(t e_i) - theta_0)`` with ``phi``
  on it in jet arithmetic: exact for one document and at first order for every
  set, with the cross terms of the measurement's own curvature, without the
  interactions of deleted documents through the training dynamics;
* the **scalar-additive model** ``g_0 + sum_{i in D} (g(t e_i) - g_0)``, no cross terms;
* the additive model **along any direction** ``psi``: parameter series
  ``sum_i psi_i^r theta_r^(i)``, no training; a random sketch minus it is the
  **residual**, estimated without bias from the random directions with the
  single-document moments left out (``estimate(..., interactions_only=True)``).

The functions take sketches as arguments (anything with ``primal``, ``series``,
``model``, ``order``, ``coefficients``); :class:`taylorsketch.Sketch` calls them.

Shape legend: n = documents, K = order, P = parameters, M = directions, Q = weight
vectors evaluated together.
"""

from dataclasses import dataclass

import numpy as np

from .estimator import Prediction, estimate, estimate_known
from .measure import as_measure, evaluate


# ----------------------------------------------------------------------------
# the additive models


def additive_series(series, weights):
    """Series ``(K, Q, P)`` of ``theta_add(t w) - theta_0 = sum_r t^r sum_i w_i^r theta_r^(i)``
    for each row ``w`` of ``weights`` (Q, n), real or complex; ``series`` (K, n, P).

    For an indicator ``w_i^r = w_i``: the sum of the deleted documents' series.
    """
    weights = np.asarray(weights)
    dtype = np.result_type(series, weights)
    out = np.empty((series.shape[0], weights.shape[0], series.shape[2]), dtype=dtype)
    power = np.ones(weights.shape, dtype=dtype)
    for r in range(series.shape[0]):
        power = power * weights
        out[r] = power @ series[r]
    return out


def scalar_additive(loo_coeffs, weights):
    """Coefficients ``(Q, K+1)`` of ``g_0 + sum_r t^r sum_i w_i^r a_r^(i)``, the
    scalar-additive model along each row ``w`` of ``weights`` (Q, n), from the
    leave-one-out coefficients ``a`` (n, K+1): :func:`additive_series` of the
    scalar series ``a_r^(i)``."""
    series = additive_series(loo_coeffs[:, 1:].T[:, :, None], weights)[:, :, 0]     # (K, Q)
    return np.concatenate([np.full((series.shape[1], 1), loo_coeffs[0, 0], dtype=series.dtype), series.T], axis=1)


def additive_coefficients(documents, measure, weights):
    """``phi`` on the parameter-additive model along each row of ``weights`` (Q, n):
    coefficients ``(Q, K+1)``."""
    return evaluate(measure, documents.model, documents.primal, additive_series(documents.series, weights), 128)


def predict_additive(documents, measure, indicator, degree, t, method):
    """The ``"additive"`` or ``"sum"`` prediction of a deletion from a documents sketch."""
    if method == "sum":
        coeffs = scalar_additive(documents.coefficients(measure), indicator[None])[0]
    else:
        coeffs = additive_coefficients(documents, measure, indicator[None])[0]
    return estimate_known(np.real(coeffs), degree, t, int(indicator.sum()), method)


def predict_residual(sketch, documents, measure, indicator, degree, groups, t, along):
    """The residual estimator: the additive model (to the documents sketch's order)
    plus the random sketch's estimate of what it leaves out (to ``degree``).

    ``along`` is the additive model's coefficients along the sketch's directions (M, K_s+1).
    """
    base = predict_additive(documents, measure, indicator, documents.order, t, "additive")
    residual = estimate(sketch.coefficients(measure) - along, sketch.directions, indicator, degree, t,
                        groups, interactions_only=True)
    width = max(base.terms.shape[0], residual.terms.shape[0])
    terms = np.zeros((width,) + base.terms.shape[1:])
    term_stderr = np.zeros_like(terms)
    terms[:base.terms.shape[0]] += base.terms
    terms[:residual.terms.shape[0]] += residual.terms
    term_stderr[:residual.terms.shape[0]] = residual.term_stderr
    value = base.value + (residual.value - residual.base)
    return Prediction(value, residual.stderr, terms, term_stderr, base.base, width, base.t,
                      base.n_deleted, sketch.n_directions, groups, method="residual")


def residual_base(sketch, documents, measure):
    """The additive model's coefficients along a random sketch's directions, up to the
    sketch's order (and zero beyond the documents sketch's): ``(M, K_s+1)``, column 0 zero."""
    measure = as_measure(measure)
    coeffs = additive_coefficients(documents, measure, sketch.directions)
    out = np.zeros((sketch.n_directions, sketch.order + 1), dtype=coeffs.dtype)
    width = min(sketch.order, documents.order) + 1
    out[:, 1:width] = coeffs[:, 1:width]
    return out


def check_companion(sketch, documents):
    """Raise unless ``documents`` is a documents sketch of the same training run as ``sketch``."""
    if getattr(documents, "kind", None) != "documents":
        raise ValueError("documents= must be a sketch of kind 'documents' "
                         "(precompute(..., directions='documents'))")
    for key in ("fingerprint", "model", "training"):
        if documents.meta.get(key) != sketch.meta.get(key):
            raise ValueError(f"the documents sketch differs from this one in {key!r}: "
                             "it belongs to another training run")
    if not np.allclose(documents.primal, sketch.primal, rtol=0, atol=1e-12):
        raise ValueError("the documents sketch has other trained parameters (primal): another training run")


# ----------------------------------------------------------------------------
# leave-one-out


@dataclass
class LeaveOneOut:
    """The measurement after deleting each training document alone, exact to degree K.

    ``coefficients[i, r]`` is ``c_r`` of ``t -> phi(theta(t e_i))`` (column 0 is
    the trained model's value, ``base``).

    >>> import numpy as np, taylorsketch as ts
    >>> loo = LeaveOneOut("phi", np.array([[1.0, 0.2, 0.01], [1.0, -0.5, 0.1]]), ["ann", "bo"])
    >>> [(row["doc"], round(row["change"], 2)) for row in loo.ranked()]
    [('bo', -0.4), ('ann', 0.21)]
    """

    measure: str
    coefficients: np.ndarray     # (n, K+1)
    docs: list = None

    @property
    def base(self):
        return float(self.coefficients[0, 0])

    @property
    def degree(self):
        return self.coefficients.shape[1] - 1

    def values(self, degree=None, t=1.0):
        """``phi`` after deleting each document alone (or down-weighting it by ``t``): (n,)."""
        degree = self.degree if degree is None else check_degree(degree, self.degree)
        return self.coefficients[:, :degree + 1] @ float(t) ** np.arange(degree + 1)

    def changes(self, degree=None, t=1.0):
        """``values - base``: (n,)."""
        return self.values(degree, t) - self.base

    def ranked(self, top=None, degree=None):
        """Documents by ``|change|``, largest first: dicts ``{"index", "doc", "change",
        "value"}`` (``doc`` is None when the documents were not given)."""
        change = self.changes(degree)
        order = np.argsort(-np.abs(change), kind="stable")[:None if top is None else int(top)]
        return [{"index": int(i), "doc": None if self.docs is None else self.docs[i],
                 "change": float(change[i]), "value": float(change[i] + self.base)} for i in order]

    def as_dict(self, top=None):
        return {"measure": self.measure, "base": self.base, "degree": self.degree, "ranked": self.ranked(top)}

    def format(self, top=10):
        """A table of the ``top`` documents that move the measurement most."""
        lines = [f"{self.measure} = {self.base:.6f} as trained; deleting one document "
                 f"(exact to degree {self.degree}):",
                 f"{'rank':>4}  {'doc':>6}  {'change':>12}  {'value':>10}  text"]
        for rank, row in enumerate(self.ranked(top), 1):
            text = "" if row["doc"] is None else repr(row["doc"])
            lines.append(f"{rank:>4}  {row['index']:>6}  {row['change']:>+12.4e}  {row['value']:>10.6f}  {text}")
        return "\n".join(lines)


def check_degree(degree, highest):
    """``degree`` as an int in ``0..highest``, or a ValueError naming it."""
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or not 0 <= degree <= highest:
        raise ValueError(f"degree must be in 0..{highest}; got {degree!r}")
    return int(degree)
