"""Training: one document per step, the paper's Adam, plain or in jet arithmetic.

All parameters live in one flat vector (plain: ``(P,)``; jet: primal ``(P,)``
beside series ``(K, M, P)``), and the model sees views of it, so the optimiser
updates every parameter's every coefficient in one fused pass.
"""

import math
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from . import _check, _config, kernels
from ._config import BLAS_THREADS
from .deletion import deletion_indicator
from .functions import primal as _primal
from .jet import Jet, as_array
from .multijet import MultiJet
from .optim import Adam
from .plan import StepPlans
from .progress import task


class TrainingError(ValueError):
    """Training produced a non-finite loss or gradient (named by step and document)."""


def check_params(model, params):
    """``params`` must hold exactly the model's parameters, with its shapes, finite."""
    if not isinstance(params, dict):
        raise TypeError(f"parameters must be a dict name -> array; got {type(params).__name__}")
    shapes = model.param_shapes()
    missing = [n for n in shapes if n not in params]
    extra = [n for n in params if n not in shapes]
    if missing or extra:
        raise ValueError(f"parameters do not match the model: missing {missing}, unexpected {extra}")
    for name, shape in shapes.items():
        value = params[name]
        got = value.shape if isinstance(value, Jet) else np.shape(value)
        if tuple(got) != tuple(shape):
            raise ValueError(f"parameter {name!r} has shape {tuple(got)}; the model needs {tuple(shape)}")
        p0 = value.primal if isinstance(value, Jet) else np.asarray(value)
        if np.iscomplexobj(p0):
            raise TypeError(f"parameter {name!r} is complex; parameters must be real "
                            f"(complex numbers belong in the directions)")
        if not (np.issubdtype(p0.dtype, np.number) or p0.dtype == bool):
            raise TypeError(f"parameter {name!r} has dtype {p0.dtype}; parameters must be real numbers")
        if not np.all(np.isfinite(p0)):
            raise ValueError(f"parameter {name!r} has non-finite values")


class FlatParams:
    """Every parameter as a view into one flat buffer (array or Jet)."""

    def __init__(self, shapes, flat):
        self.shapes = shapes
        self.flat = flat
        self.offsets = _offsets(shapes)

    @classmethod
    def from_dict(cls, shapes, params, like=None):
        """Copy ``params`` into a fresh flat buffer; with a jet ``like``, as constant jets
        of its kind, series rows, directions and dtype (or keeping their series, when
        they are already such jets)."""
        size = sum(math.prod(s) for s in shapes.values())
        primal = np.empty(size)
        if like is None:
            flat = primal
        else:
            order, n_directions = like.series.shape[:2]
            flat = type(like).wrap(primal, np.zeros((order, n_directions, size), dtype=like.series.dtype))
        out = cls(shapes, flat)
        for name in shapes:
            a, b = out.offsets[name]
            value = params[name]
            if isinstance(value, Jet):
                primal[a:b] = value.primal.ravel()
                if like is not None:
                    flat.series[:, :, a:b] = value.series.reshape(order, n_directions, -1)
            else:
                primal[a:b] = np.asarray(value, dtype=float).ravel()
        return out

    def views(self):
        """Dict name -> view (array or Jet) sharing memory with the flat buffer."""
        out = {}
        for name, shape in self.shapes.items():
            a, b = self.offsets[name]
            if isinstance(self.flat, Jet):
                series = self.flat.series[:, :, a:b]
                out[name] = type(self.flat).wrap(self.flat.primal[a:b].reshape(shape),
                                                 series.reshape(series.shape[:2] + tuple(shape)))
            else:
                out[name] = self.flat[a:b].reshape(shape)
        return out

    def flatten(self, grads, out=None):
        """Gradients dict -> flat array/Jet in this layout (a jet's series written into
        ``out``, an array like the flat series, when given: a step's buffer reused)."""
        return self.flatten_checked(grads, out)[0]

    def flatten_checked(self, grads, out=None):
        """:meth:`flatten`, and whether the series are finite (True for arrays): the
        series are checked as they are copied, not in another pass over them."""
        if not isinstance(self.flat, Jet):
            return np.concatenate([np.ravel(grads[n]) for n in self.shapes]), True
        order, n_dirs = self.flat.series.shape[:2]
        primal = np.concatenate([np.ravel(_primal(grads[n])) for n in self.shapes])
        series = np.empty_like(self.flat.series) if out is None else out
        finite = True
        for name in self.shapes:
            a, b = self.offsets[name]
            g = grads[name]
            if isinstance(g, Jet) and g.series.dtype == series.dtype:
                finite &= kernels.copy_finite(g.series.reshape(order, n_dirs, b - a), series, a)
            elif isinstance(g, Jet):                   # another dtype: cast as numpy casts
                series[:, :, a:b] = g.series.reshape(order, n_dirs, -1)
                finite &= bool(np.all(np.isfinite(series[:, :, a:b])))
            else:
                series[:, :, a:b] = 0.0
        return type(self.flat).wrap(primal, series), finite


def _offsets(shapes):
    """name -> (start, stop) of each parameter in the flat buffer, in order."""
    offsets, start = {}, 0
    for name, shape in shapes.items():
        offsets[name] = (start, start + math.prod(shape))
        start = offsets[name][1]
    return offsets


def _weights(weights, n_docs):
    """Validated per-document weights: None -> zeros; array (n,); or a Jet of shape (n,)."""
    if weights is None:
        return np.zeros(n_docs)
    if not isinstance(weights, Jet):
        weights = as_array(weights)
    if weights.shape != (n_docs,):
        raise ValueError(f"weights must have one entry per document ({n_docs}); got shape {weights.shape}")
    values = [weights.primal, weights.series] if isinstance(weights, Jet) else [weights]
    if not all(np.all(np.isfinite(v)) for v in values):
        raise ValueError("weights contain non-finite values")
    return weights


def train(model, init_params, docs, steps=None, weights=None, optimizer=None, progress=None):
    """Train ``model`` from ``init_params`` on ``docs``, one document per step.

    Step ``s`` uses document ``s mod N`` and scales its loss by ``1 - w_i``.
    ``weights`` is ``None`` (ordinary training), a float array of length N, or
    a Jet of shape ``(N,)``: then the whole run is carried out in jet
    arithmetic and the returned parameters are Jets along the weights'
    directions (MultiJets for MultiJet weights: see :func:`taylorsketch.interactions`).

    Parameters
    ----------
    model : MicroGPT or MLP
    init_params : dict name -> array
    docs : sequence of documents (strings for MicroGPT)
    steps : int, default ``len(docs)``
    weights : None, array_like (N,), or Jet / MultiJet (N,)
    optimizer : Adam, default the paper's (``total_steps = steps``)
    progress : bool, None (default: a bar when stderr is a terminal or in Jupyter),
        or a counter of an enclosing call to report into (:mod:`taylorsketch.progress`);
        counted in direction-steps (steps x directions; plain training: steps)

    Returns
    -------
    dict name -> array (or Jet)

    Examples
    --------
    >>> import taylorsketch as ts
    >>> s = ts.paper.setup(seed=42)
    >>> model = ts.MicroGPT(s.vocab)
    >>> params = ts.train(model, s.init, s.docs[:20], progress=False)
    >>> sorted(params) == sorted(s.init)
    True
    """
    flat = train_flat(model, init_params, docs, steps, weights, optimizer, progress)
    return {name: (value if isinstance(value, Jet) else value.copy()) for name, value in flat.views().items()}


def train_flat(model, init_params, docs, steps=None, weights=None, optimizer=None, progress=None):
    """:func:`train`, returning the trained parameters as one :class:`FlatParams` buffer
    (what a sketch stores) instead of a dict of copies."""
    docs = _check.documents(docs)
    if not docs:
        raise ValueError("train: no documents")
    steps = len(docs) if steps is None else _check.integer(steps, "steps", low=0)
    if optimizer is not None and not isinstance(optimizer, Adam):
        raise TypeError(f"optimizer must be an Adam; got {type(optimizer).__name__}")
    check_params(model, init_params)
    encoded = encode_documents(model, docs)
    weights = _weights(weights, len(docs))
    shapes = model.param_shapes()
    flat = FlatParams.from_dict(shapes, init_params, like=weights if isinstance(weights, Jet) else None)
    optimizer = Adam(total_steps=max(steps, 1)) if optimizer is None else optimizer
    n_directions, label, unit = _work(weights, steps)
    with task(progress, steps * n_directions, label, unit) as counter:
        train_steps(model, flat, encoded, docs, weights, optimizer, 0, steps,
                    on_step=partial(counter.add, n_directions))
    return flat


def encode_documents(model, docs):
    """Every document encoded for ``model``; an error names the document."""
    encoded = []
    for i, doc in enumerate(docs):
        try:
            encoded.append(model.encode(doc))
        except (ValueError, TypeError) as err:
            raise type(err)(f"document {i}: {err}") from None
    return encoded


def train_steps(model, flat, encoded, docs, weights, optimizer, start, stop, on_step=None):
    """Training steps ``start .. stop-1`` in place: ``flat`` (a :class:`FlatParams`) and
    ``optimizer`` hold the state before step ``start``; ``encoded`` are the encoded
    ``docs``, ``weights`` the validated loss weights (array or Jet, one per document).
    ``on_step()`` is called after every step."""
    params = flat.views()
    # a jet run replays recorded steps (bit for bit the eager ones, without their Python)
    replay = _config.replay() and type(flat.flat) is Jet
    step = StepPlans(model, params).loss_and_grads if replay else partial(model.loss_and_grads, params)
    scale = loss_scales(weights)
    grad_series = None
    if isinstance(flat.flat, Jet):
        _config.keep_freed_memory()
        grad_series = np.empty_like(flat.flat.series)     # every step's flat gradient series
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        for step_no in range(start, stop):
            i = step_no % len(docs)
            loss, grads = step(encoded[i], scale(i))
            flat_grads, finite = flat.flatten_checked(grads, out=grad_series)
            _check_step_finite(loss, flat_grads, finite, step_no, i, docs[i])
            optimizer.step(flat.flat, flat_grads)
            if on_step is not None:
                on_step()


def loss_scales(weights):
    """``i -> 1 - w_i``, the scale of document ``i``'s loss.  A jet's are computed for
    every document at once and read out per step, the same values to the bit as
    ``1.0 - weights[i]`` (a subtraction from 1 and a negation, elementwise), each
    series contiguous, without two jet operations per step.

    >>> import numpy as np
    >>> w = Jet.from_directions(np.array([0.25, 0.0]), np.array([[1.0, 0.0]]), 1)
    >>> scale = loss_scales(w)
    >>> float(scale(0).primal), scale(0).series.tolist()
    (0.75, [[-1.0]])
    """
    if type(weights) is not Jet:
        return lambda i: 1.0 - weights[i]
    scales = 1.0 - weights
    series = np.ascontiguousarray(np.moveaxis(scales.series, 2, 0))       # (N, K, M)
    return lambda i: Jet.wrap(scales.primal[i], series[i])


def _work(weights, steps):
    """What a training run counts: ``(directions per step, label, unit)``."""
    if isinstance(weights, MultiJet):
        m, d = weights.n_directions, weights.n_variables
        groups = f", {m} groups" if m != 1 else ""
        return m, f"MultiJet training, {d} variable{'s' * (d != 1)}{groups}", "group-step" if groups else "step"
    if isinstance(weights, Jet):
        m = weights.n_directions
        return m, f"jet training, order {weights.order}, {m} direction{'s' * (m != 1)}", "direction-step"
    return 1, f"training, {steps} steps", "step"


def _check_step_finite(loss, grads, finite_series, step, index, doc):
    """A non-finite loss or gradient stops training, naming the step and the document
    (``finite_series``: the gradients' series were checked as they were flattened)."""
    values = [_primal(loss), _primal(grads)]
    if not (finite_series and all(np.all(np.isfinite(v)) for v in values)):
        raise TrainingError(f"non-finite loss or gradient at step {step} (document {index}: {doc!r})")


def retrain(model, init_params, docs, deleted, t=1.0, steps=None, progress=None):
    """Ordinary training with weights ``t * 1_D``: the ground truth for a deletion.

    ``deleted`` is a collection of document indices or a predicate
    ``doc -> bool``.  ``t = 1`` deletes the documents; ``0 < t < 1`` down-weights them.
    """
    t = _check.real(t, "t")
    indicator = deletion_indicator(docs, deleted)
    return train(model, init_params, docs, steps=steps, weights=t * indicator, progress=progress)
