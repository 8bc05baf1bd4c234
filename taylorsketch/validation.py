"""Checking a sketch against ground truth: retrain without each of several
random deletion sets and compare with every degree of the prediction."""

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from . import _check
from .measure import as_measure
from .progress import task
from .training import retrain


@dataclass
class Validation:
    """Per deletion set: the truth, the degree-0..K truncations and the standard error.

    ``errors[k]`` is the mean absolute error of the degree-``k`` prediction per
    set size (``k = 1`` is the linear, influence-style surrogate); ``rank_correlation``
    is Spearman's rho between predicted (full degree) and true values across all
    sets, and ``rank_correlation_linear`` the same for degree 1.
    """

    sizes: list
    sets: list
    truth: np.ndarray          # (n_sets,)
    truncations: np.ndarray    # (n_sets, K+1)
    stderr: np.ndarray         # (n_sets,)
    base: float

    @property
    def degree(self):
        return self.truncations.shape[1] - 1

    def errors(self):
        """Mean |prediction - truth| per (size, degree): array (len(sizes), K+1)."""
        sizes = np.array([len(s) for s in self.sets])
        err = np.abs(self.truncations - self.truth[:, None])
        return np.stack([err[sizes == size].mean(axis=0) for size in self.sizes])

    def rank_correlation(self, degree=None):
        degree = self.degree if degree is None else degree
        if len(self.truth) < 3 or np.ptp(self.truth) == 0:
            return float("nan")
        return float(spearmanr(self.truncations[:, degree], self.truth).statistic)

    def within(self, n_stderr=3.0):
        """Fraction of sets whose truth lies within ``n_stderr`` standard errors."""
        return float(np.mean(np.abs(self.truncations[:, -1] - self.truth) <= n_stderr * self.stderr))

    def as_dict(self):
        return {"sizes": self.sizes, "sets": [list(map(int, s)) for s in self.sets],
                "truth": self.truth.tolist(), "truncations": self.truncations.tolist(),
                "stderr": self.stderr.tolist(), "base": self.base,
                "mean_abs_error": {f"size {s}": row.tolist() for s, row in zip(self.sizes, self.errors())},
                "rank_correlation": self.rank_correlation(),
                "rank_correlation_linear": self.rank_correlation(1)}

    def format(self):
        """A readable table."""
        lines = ["set size | " + " | ".join(f"err deg {k}" for k in range(1, self.degree + 1))]
        for size, row in zip(self.sizes, self.errors()):
            lines.append(f"{size:8d} | " + " | ".join(f"{e:10.3e}" for e in row[1:]))
        lines.append(f"rank correlation (degree {self.degree}): {self.rank_correlation():.3f}; "
                     f"linear surrogate: {self.rank_correlation(1):.3f}; "
                     f"truth within 3 s.e.: {100 * self.within():.0f}%")
        return "\n".join(lines)


def validate(sketch, model, init_params, docs, measure, sizes=(1, 5, 20), sets_per_size=3,
             seed=0, groups=None, progress=None):
    """Draw random deletion sets of each size, retrain without each, and compare.

    Returns a :class:`Validation`.  Costs one ordinary training per set.
    ``progress`` (as for :func:`taylorsketch.train`): one bar over every
    retraining, in training steps, after the coefficients' own bar.
    """
    sketch.check_docs(docs)
    measure = as_measure(measure)
    rng = np.random.default_rng(seed)
    n = len(docs)
    sizes = [_check.integer(s, "sizes", 1, n) for s in sizes]
    if not sizes:
        raise ValueError("sizes must list at least one set size")
    sets_per_size = _check.integer(sets_per_size, "sets_per_size", low=1)
    steps = sketch.meta["training"]["steps"]
    # computed once here, with a bar of their own; every prediction below reuses them
    sketch.coefficients(measure, progress=False if hasattr(progress, "add") else progress)
    n_sets = len(sizes) * sets_per_size
    sets, truth, truncations, stderr = [], [], [], []
    label = f"validation, {n_sets} retraining{'s' * (n_sets != 1)} of {steps} steps"
    with task(progress, n_sets * steps, label, "step") as counter:
        for size in sizes:
            for _ in range(sets_per_size):
                deleted = np.sort(rng.choice(n, size=size, replace=False))
                prediction = sketch.predict(measure, deleted, groups=groups)
                params = retrain(model, init_params, docs, deleted, steps=steps, progress=counter)
                sets.append(deleted)
                truth.append(float(measure(params)))
                truncations.append(prediction.truncations())
                stderr.append(prediction.stderr)
    return Validation(sizes, sets, np.array(truth), np.array(truncations), np.array(stderr),
                      float(truncations[0][0]))
