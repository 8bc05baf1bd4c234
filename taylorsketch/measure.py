"""Measurements: scalar functions of a trained model's parameters.

A measurement ``phi`` maps a parameter dict to a scalar; evaluated on a
sketch's parameter *jets* it gives the Taylor coefficients of ``t -> g(t psi)``
for every stored direction at once.  Any callable ``params -> scalar``
written with ``ts`` operations is a measurement; the classes here add a name
(for reports and the CLI) and a key (so a sketch computes each measurement's
coefficients once).
"""

import functools
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from ._config import BLAS_THREADS
from .jet import Jet
from .progress import task
from .training import FlatParams


@dataclass(frozen=True)
class Measure:
    """A named measurement: ``measure(params)`` evaluates it."""

    name: str
    fn: object = field(compare=False, repr=False)
    key: tuple = field(default=None)
    model: object = field(default=None, compare=False, repr=False)   # the model it was built for

    def __call__(self, params):
        return self.fn(params)

    @property
    def cache_key(self):
        """What a sketch files this measurement's coefficients under: the key, or
        the function object itself (held, so its identity cannot be reused)."""
        return self.key if self.key is not None else ("fn", self.fn)


def doc_loss(model, doc):
    """The model's loss on one document (mean over its positions).

    >>> import taylorsketch as ts
    >>> s = ts.paper.setup()
    >>> model = ts.MicroGPT(s.vocab)
    >>> phi = ts.measure.doc_loss(model, "max")
    >>> bool(phi(s.init) == model.loss(s.init, "max"))
    True
    """
    fn = functools.partial(_loss_on, model, model.encode(doc))     # picklable: it can go to workers
    return Measure(f"loss({doc!r})", fn, ("doc_loss", repr(doc)), model)


def _loss_on(model, encoded, params):
    return model.forward(params, encoded)[0]


def logprob(model, prefix, continuation):
    """``log P(continuation | prefix)`` under a MicroGPT (``"$"`` at the end of
    ``continuation`` stands for the end-of-name token)."""
    model.logprob  # fail early for models without it
    fn = functools.partial(_logprob_of, model, prefix, continuation)   # picklable, like doc_loss
    fn(_probe_params(model))
    return Measure(f"logP({continuation!r}|{prefix!r})", fn, ("logprob", prefix, continuation), model)


def _logprob_of(model, prefix, continuation, params):
    return model.logprob(params, prefix, continuation)


def _probe_params(model):
    return {name: np.zeros(shape) for name, shape in model.param_shapes().items()}


def as_measure(measure):
    """Wrap a plain callable as a Measure (keyed by identity)."""
    if isinstance(measure, Measure):
        return measure
    if not callable(measure):
        raise TypeError(f"a measurement must be callable params -> scalar; got {type(measure).__name__}")
    name = getattr(measure, "__name__", "measure")
    return Measure(name, measure, ("fn", measure))


def evaluate(measure, model, primal, series, batch=None, progress=False):
    """``measure`` on parameter jets ``(primal (P,), series (K, M, P))`` of ``model``,
    ``batch`` directions at a time: the coefficients, shape ``(M, K+1)`` (column 0 the
    value at ``t = 0``).  ``progress`` (as for :func:`taylorsketch.train`; default
    silent) counts directions, with no summary line."""
    measure = as_measure(measure)
    order, m = series.shape[:2]
    batch = m if batch is None else int(batch)
    if batch < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch}")
    out = np.empty((m, order + 1), dtype=np.result_type(series, float))
    label = f"coefficients of {measure.name}, {m} directions"
    with task(progress, m, label, "direction", summary=False) as counter:
        for start in range(0, m, batch):
            flat = Jet.wrap(primal, series[:, start:start + batch])
            with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
                value = measure(FlatParams(model.param_shapes(), flat).views())
            if not isinstance(value, Jet) or value.shape != ():
                raise ValueError(f"measurement {measure.name} must return a scalar computed from the "
                                 f"parameters; got {value!r}")
            out[start:start + batch, 0] = value.primal
            out[start:start + batch, 1:] = value.series.T
            counter.add(value.series.shape[1])
    if not np.all(np.isfinite(out)):
        raise ValueError(f"measurement {measure.name} gave non-finite coefficients")
    return out
