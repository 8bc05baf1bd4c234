"""The sketch: one jet training along M directions of the loss weights, kept.

:func:`taylorsketch.precomputation.precompute` trains once in jet arithmetic;
a :class:`Sketch` holds the trained parameters' jets and answers measurements
and deletions through the pure estimators of :mod:`taylorsketch.estimator`;
it is saved as ``.npz`` arrays plus JSON metadata (the file format and its
checks are in :mod:`taylorsketch.sketch_file`), and shards of one
precomputation merge into one sketch.

Shape legend: n = training documents, M = directions, K = order, P = number
of parameters.
"""

import json
import math
import os

import numpy as np

from . import _check, deletion, documents as per_document, parallel, sketch_file
from .estimator import estimate, estimate_exact, fit_stability
from .jet import Jet
from .measure import as_measure, evaluate
from .sketch_file import fingerprint
from .training import FlatParams

# ----------------------------------------------------------------------------
# the sketch


class Sketch:
    """The trained parameters' jets along ``M`` directions of the loss weights.

    Build one with :func:`precompute`; query it with :meth:`coefficients`,
    :meth:`predict` and :meth:`stability`; keep it with :meth:`save` /
    :meth:`load`; combine shards with :meth:`merge`.
    """

    def __init__(self, model, primal, series, directions, direction_ids, meta):
        self.model = model
        self.primal = primal                  # (P,)
        self.series = series                  # (K, M, P)
        self.directions = directions          # (M, n); (0, n) for kind "documents", whose direction j is e_j
        self.direction_ids = direction_ids    # (M,) global ids; -1 for explicit directions
        self.meta = meta
        self.shard_files = None               # a sketch folder's shards (Sketch.load(folder)), else None
        self._coefficients = {}

    def __repr__(self):
        return (f"Sketch(order={self.order}, n_directions={self.n_directions}, n_docs={self.n_docs}, "
                f"kind={self.kind!r}, model={self.meta['model']['model']})")

    @property
    def order(self):
        return self.series.shape[0]

    @property
    def n_directions(self):
        return self.series.shape[1]

    @property
    def n_docs(self):
        return self.directions.shape[1]

    @property
    def kind(self):
        return self.meta["kind"]

    def params(self, start=0, stop=None):
        """Parameter Jets for directions ``start:stop`` (views, no copy)."""
        flat = Jet.wrap(self.primal, self.series[:, start:stop])
        return FlatParams(self.model.param_shapes(), flat).views()

    def primal_params(self):
        """The ordinary trained parameters (``w = 0``)."""
        return FlatParams(self.model.param_shapes(), self.primal).views()

    def check_docs(self, docs):
        """Raise unless ``docs`` are the documents this sketch was trained on."""
        if len(docs) != self.n_docs or fingerprint(docs) != self.meta["fingerprint"]:
            raise ValueError("these documents are not the ones the sketch was trained on "
                             "(fingerprint differs): predictions would be meaningless")

    # -- coefficients --------------------------------------------------------

    def coefficients(self, measure, batch_size=None, progress=None, executor=None):
        """Taylor coefficients of ``t -> phi(A_{t psi_j})`` for every direction: ``(M, order+1)``.

        Column 0 is the unperturbed value (the same for every direction).
        Computed once per measurement and kept, ``batch_size`` directions at a
        time (default: all up to 128); ``progress`` (as for
        :func:`taylorsketch.train`) counts directions.  On a sketch folder the
        measurement is evaluated shard by shard (each read in full and checked),
        on ``executor`` when given (a ``concurrent.futures``-like executor or a
        Dask client whose workers see the folder): ``measure`` is pickled to
        the workers.
        """
        measure = as_measure(measure)
        key = (measure.cache_key, self._model_key(measure))
        cached = self._coefficients.get(key)
        if cached is not None:
            return cached
        batch = (min(self.n_directions, 128) if batch_size is None
                 else _check.integer(batch_size, "batch_size", low=1))
        if self.shard_files is not None:
            jobs = [(path, measure, batch) for path in self.shard_files]
            out = np.concatenate(list(parallel.run(shard_coefficients, jobs, executor=executor)))
        elif executor is not None:
            raise ValueError("coefficients(executor=...) maps over the shards of a sketch folder; "
                             "this sketch is in memory")
        else:
            out = evaluate(measure, self.model, self.primal, self.series, batch, progress=progress)
        self._coefficients[key] = out
        return out

    def _model_key(self, measure):
        """The identity and parameter layout of the model ``measure`` was built for
        (``None`` for a plain callable); a measurement of another model is an error,
        not a number computed with this sketch's parameters in the wrong places."""
        if measure.model is None:
            return None
        describe = getattr(measure.model, "describe", None)
        mine = self.model.describe()
        theirs = describe() if describe is not None else None
        if theirs != mine:
            raise ValueError(f"measurement {measure.name} was built for another model "
                             f"({theirs}); this sketch's model is {mine}")
        return json.dumps(mine, sort_keys=True), tuple(self.model.param_shapes().items())

    # -- prediction ----------------------------------------------------------

    def predict(self, measure, deleted, degree=None, groups=None, t=1.0, docs=None, documents=None,
                method=None):
        """Predict ``phi`` after training with weights ``t * 1_D``.

        Parameters
        ----------
        measure : Measure or callable ``params -> scalar``
        deleted : indices, boolean mask, or predicate ``doc -> bool`` (then pass ``docs``)
        degree : int, default the sketch's order
        groups : int, optional; median of means over this many groups of directions
        t : float or 1-D array; ``1`` deletes, ``0 < t < 1`` down-weights
        docs : the training documents (checked against the sketch's fingerprint)
        documents : a sketch of kind ``"documents"`` of the same training run (for a
            random sketch: the residual estimator)
        method : the estimator; by default the best one for what was precomputed:

            * random sketch: ``"residual"`` when ``documents`` is given (the additive
              model plus the sketch of what it leaves out: unbiased, with a true
              standard error), else ``"sketch"`` (the paper's estimator);
            * documents sketch: ``"sum"`` (the documents' own leave-one-out series,
              summed: the most accurate of the two on the paper's set-up, see
              docs/validation.md), or ``"additive"`` (the parameter-additive model);
            * explicit sketch: ``"exact"``.

        Returns
        -------
        Prediction
        """
        if docs is not None:
            self.check_docs(docs)
        indicator = deletion.indicator(self.n_docs, deleted, docs)
        degree = self.order if degree is None else _check.integer(degree, "degree", 0, self.order)
        groups = _check.optional_integer(groups, "groups", 1, self.n_directions)
        if np.ndim(t) == 0:
            t = _check.real(t, "t")
        else:
            t = np.asarray(t)
            if t.ndim != 1 or not np.issubdtype(t.dtype, np.number) or np.iscomplexobj(t) \
                    or not np.all(np.isfinite(t)):
                raise ValueError(f"t must be a finite real number or a 1-D array of them; got {t!r:.80}")
        method = self._method(method, documents)
        self._model_key(as_measure(measure))     # a measurement of another model is refused
        if method in ("additive", "sum"):
            return per_document.predict_additive(self, measure, indicator, degree, t, method)
        coeffs = self.coefficients(measure)
        if method == "exact":
            return estimate_exact(coeffs, self.directions, indicator, degree, t)
        if method == "residual":
            along = self._residual_base(measure, documents)
            return per_document.predict_residual(self, documents, measure, indicator, degree, groups, t, along)
        return estimate(coeffs, self.directions, indicator, degree, t, groups)

    METHODS = {"random": ("sketch", "residual"), "documents": ("sum", "additive"), "explicit": ("exact",)}

    def _method(self, method, documents):
        if documents is not None and self.kind != "random":
            raise ValueError("documents= combines a documents sketch with a random one; "
                             f"this sketch is {self.kind!r}")
        if method is None:
            return {"random": "residual" if documents is not None else "sketch",
                    "documents": "sum", "explicit": "exact"}[self.kind]
        if method not in self.METHODS[self.kind]:
            raise ValueError(f"method must be one of {self.METHODS[self.kind]} for a sketch of kind "
                             f"{self.kind!r}; got {method!r}")
        if method == "residual" and documents is None:
            raise ValueError("method='residual' needs the documents sketch: pass documents=...")
        return method

    def _residual_base(self, measure, documents):
        """The additive model's coefficients along this sketch's directions, kept per
        (documents sketch, measurement)."""
        per_document.check_companion(self, documents)
        measure = as_measure(measure)
        key = ("additive along", id(documents), measure.cache_key, self._model_key(measure))
        if key not in self._coefficients:      # the entry holds documents, so its id is not reused
            self._coefficients[key] = (documents, per_document.residual_base(self, documents, measure))
        return self._coefficients[key][1]

    def leave_one_out(self, measure, docs=None):
        """The measurement after deleting each document alone, exact to the sketch's order
        (kind ``"documents"``): a :class:`~taylorsketch.documents.LeaveOneOut`, with
        ``ranked(top)`` and ``format()``; ``docs`` (checked) labels the rows."""
        self._require_kind("documents", "leave_one_out")
        if docs is not None:
            self.check_docs(docs)
        measure = as_measure(measure)
        return per_document.LeaveOneOut(measure.name, self.coefficients(measure).real,
                                        None if docs is None else list(docs))

    def required_directions(self, measure, deleted, target_stderr, degree=None, t=1.0, docs=None,
                            documents=None, method=None, groups=None):
        """Directions a sketch needs for a standard error of ``target_stderr`` on this
        prediction, with this random sketch as the pilot.

        The estimate is a mean over directions: its variance is the per-direction
        variance, measured here, over ``M``; a median of ``groups`` group means costs a
        factor ``pi/2`` more.  Returns an int (at least 2).

        >>> import taylorsketch as ts
        >>> s = ts.paper.setup()
        >>> model = ts.MicroGPT(s.vocab)
        >>> pilot = ts.precompute(model, s.init, s.docs[:50], order=2, directions=16, steps=20,
        ...                       progress=False)
        >>> phi = ts.measure.doc_loss(model, "max")
        >>> pilot.required_directions(phi, [3, 4], target_stderr=1e-3) > pilot.n_directions
        True
        """
        target = float(target_stderr)
        if not np.isfinite(target) or target <= 0:
            raise ValueError(f"target_stderr must be a finite number > 0; got {target_stderr!r}")
        self._require_kind("random", "required_directions")
        if self.n_directions < 2:
            raise ValueError("a pilot sketch needs at least 2 directions to measure the variance per direction")
        p = self.predict(measure, deleted, degree=degree, t=t, docs=docs, documents=documents, method=method)
        per_direction = float(np.max(p.stderr)) ** 2 * self.n_directions
        factor = math.pi / 2 if groups is not None and groups > 1 else 1.0
        return max(2, math.ceil(factor * per_direction / target ** 2))

    def _require_kind(self, kind, what):
        if self.kind != kind:
            hint = " (precompute(..., directions='documents'))" if kind == "documents" else ""
            raise ValueError(f"{what} needs a sketch of kind {kind!r}{hint}; this one is {self.kind!r}")

    def stability(self, measure):
        """Per-order ``log2 ||T_r||_F`` estimates; see :class:`Stability`."""
        if self.kind != "random":
            raise ValueError("stability needs random directions; this sketch holds explicit ones")
        return fit_stability(self.coefficients(measure), self.n_docs)

    # -- persistence ---------------------------------------------------------

    def save(self, path, overwrite=True):
        """Write the sketch to ``path`` (``.npz`` arrays plus JSON metadata; no pickle).

        Written to a temporary file in the same folder and renamed into place,
        so an interrupted save never leaves a corrupt sketch at ``path``.
        ``overwrite=False`` refuses (``FileExistsError``) to replace a file.
        """
        sketch_file.write(path, self.primal, self.series, self.directions, self.direction_ids, self.meta,
                          overwrite)

    @classmethod
    def load(cls, path):
        """Read a sketch written by :meth:`save`, or a sketch folder (``precompute(out=...)``:
        the series memory-mapped, see :mod:`taylorsketch.folder`).

        Anything wrong inside the file (truncated, corrupt, metadata missing or
        malformed, an array whose dtype or shape disagrees with the metadata,
        non-finite numbers) is a :class:`~taylorsketch.SketchFileError`; a missing file is a
        ``FileNotFoundError``.  Nothing is unpickled.
        """
        if os.path.isdir(path):
            from .folder import load_folder      # a sketch folder (its module builds on this one)
            return load_folder(path)
        return cls(*sketch_file.read(path))

    @classmethod
    def merge(cls, sketches, complete=False):
        """Join shards of one precomputation (same seed, data, model and training).

        Fewer than two shards is refused (a forgotten output name makes one
        shard look like a merge) unless ``complete=True`` says that the given
        shards are the whole set; then they must hold every direction.
        """
        sketches = list(sketches)
        if not all(isinstance(s, Sketch) for s in sketches):
            raise TypeError("merge: every shard must be a Sketch")
        if len(sketches) < 2 and not complete:
            raise ValueError(f"merge: needs at least two shards; got {len(sketches)} "
                             f"(say complete=True, or --complete, if this is the whole set)")
        first = sketches[0]
        keys = ("kind", "order", "seed", "fingerprint", "model", "training", "total_directions")
        for other in sketches[1:]:
            for key in keys:
                if other.meta.get(key) != first.meta.get(key):
                    raise ValueError(f"merge: sketches differ in {key!r}: "
                                     f"{first.meta.get(key)!r} vs {other.meta.get(key)!r}")
            if not np.array_equal(other.primal, first.primal):
                raise ValueError("merge: sketches have different trained parameters (primal)")
        if first.kind != "random":
            raise ValueError("merge: only sketches of random directions can be merged")
        ids = np.concatenate([s.direction_ids for s in sketches])
        if len(np.unique(ids)) != len(ids):
            raise ValueError("merge: shards repeat directions (same shard given twice?)")
        if complete and len(ids) != first.meta["total_directions"]:
            raise ValueError(f"merge: the shards hold {len(ids)} of the "
                             f"{first.meta['total_directions']} directions; the set is not complete")
        order = np.argsort(ids, kind="stable")
        meta = dict(first.meta, shard=None, num_shards=None)
        return cls(first.model, first.primal,
                   np.concatenate([s.series for s in sketches], axis=1)[:, order],
                   np.concatenate([s.directions for s in sketches])[order], ids[order], meta)


def shard_coefficients(job):
    """The coefficients of one shard of a sketch folder (a job for an executor):
    the shard read in full, with every check of :meth:`Sketch.load`."""
    path, measure, batch = job
    return Sketch.load(path).coefficients(measure, batch)
