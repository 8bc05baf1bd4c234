"""The sketch: one jet training along M directions of the loss weights, kept.

:func:`taylorsketch.precomputation.precompute` trains once in jet arithmetic;
a :class:`Sketch` holds the trained parameters' jets and answers measurements
and deletions through the pure estimators of :mod:`taylorsketch.estimator`;
it is saved as ``.npz`` arrays plus JSON metadata, and shards of one
precomputation merge into one sketch.

Shape legend: n = training documents, M = directions, K = order, P = number
of parameters.
"""

import hashlib
import json
import math
import os
import zipfile

import numpy as np
from threadpoolctl import threadpool_limits

from . import deletion
from ._config import BLAS_THREADS
from ._io import atomic_write
from .data import Vocab
from .estimator import estimate, estimate_exact, fit_stability
from .jet import Jet
from .measure import as_measure
from .models import MLP, MicroGPT
from .training import FlatParams

FORMAT_VERSION = 1


class SketchFileError(ValueError):
    """A sketch file that cannot be read: truncated, corrupt, or of another format version."""


# ----------------------------------------------------------------------------
# fingerprints and model descriptions


def fingerprint(docs):
    """SHA-256 of the training documents, in order."""
    h = hashlib.sha256()
    for doc in docs:
        if isinstance(doc, str):
            piece = doc.encode("utf-8")
        else:
            piece = b"|".join(np.ascontiguousarray(np.asarray(part, dtype=float)).tobytes() for part in doc)
        h.update(len(piece).to_bytes(8, "little"))
        h.update(piece)
    return h.hexdigest()


def model_from_description(d):
    """Rebuild a model from ``model.describe()``."""
    d = dict(d)
    kind = d.pop("model", None)
    if kind == "MicroGPT":
        return MicroGPT(Vocab(d["chars"]), n_layer=d["n_layer"], n_embd=d["n_embd"],
                        n_head=d["n_head"], block_size=d["block_size"], init_std=d["init_std"])
    if kind == "MLP":
        return MLP(d["n_in"], d["n_hidden"], d["n_out"], d["task"])
    raise SketchFileError(f"unknown model description {kind!r}")


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
        self.directions = directions          # (M, n)
        self.direction_ids = direction_ids    # (M,) global ids; -1 for explicit directions
        self.meta = meta
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

    def coefficients(self, measure, batch_size=None):
        """Taylor coefficients of ``t -> phi(A_{t psi_j})`` for every direction: ``(M, order+1)``.

        Column 0 is the unperturbed value (the same for every direction).
        Computed once per measurement and kept.
        """
        measure = as_measure(measure)
        cached = self._coefficients.get(measure.cache_key)
        if cached is not None:
            return cached
        batch = self.n_directions if batch_size is None else int(batch_size)
        out = np.empty((self.n_directions, self.order + 1), dtype=np.result_type(self.series, float))
        for start in range(0, self.n_directions, batch):
            stop = min(start + batch, self.n_directions)
            with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
                value = measure(self.params(start, stop))
            if not isinstance(value, Jet) or value.shape != ():
                raise ValueError(f"measurement {measure.name} must return a scalar computed from the "
                                 f"parameters; got {value!r}")
            out[start:stop, 0] = value.primal
            out[start:stop, 1:] = value.series.T
        if not np.all(np.isfinite(out)):
            raise ValueError(f"measurement {measure.name} gave non-finite coefficients")
        self._coefficients[measure.cache_key] = out
        return out

    # -- prediction ----------------------------------------------------------

    def predict(self, measure, deleted, degree=None, groups=None, t=1.0, docs=None):
        """Predict ``phi`` after training with weights ``t * 1_D``.

        Parameters
        ----------
        measure : Measure or callable ``params -> scalar``
        deleted : indices, boolean mask, or predicate ``doc -> bool`` (then pass ``docs``)
        degree : int, default the sketch's order
        groups : int, optional; median of means over this many groups of directions
        t : float or 1-D array; ``1`` deletes, ``0 < t < 1`` down-weights
        docs : the training documents (checked against the sketch's fingerprint)

        Returns
        -------
        Prediction
        """
        if docs is not None:
            self.check_docs(docs)
        indicator = deletion.indicator(self.n_docs, deleted, docs)
        degree = self.order if degree is None else int(degree)
        if not 0 <= degree <= self.order:
            raise ValueError(f"degree must be in 0..{self.order}; got {degree}")
        coeffs = self.coefficients(measure)
        if self.kind == "explicit":
            return estimate_exact(coeffs, self.directions, indicator, degree, t)
        return estimate(coeffs, self.directions, indicator, degree, t, groups)

    def stability(self, measure):
        """Per-order ``log2 ||T_r||_F`` estimates; see :class:`Stability`."""
        if self.kind != "random":
            raise ValueError("stability needs random directions; this sketch holds explicit ones")
        return fit_stability(self.coefficients(measure), self.n_docs)

    # -- persistence ---------------------------------------------------------

    def save(self, path):
        """Write the sketch to ``path`` (``.npz`` arrays plus JSON metadata; no pickle).

        Written to a temporary file in the same folder and renamed into place,
        so an interrupted save never leaves a corrupt sketch at ``path``.
        """
        path = os.fspath(path)
        meta = dict(self.meta, format_version=FORMAT_VERSION)
        arrays = {"primal": self.primal, "series": self.series, "directions": self.directions,
                  "direction_ids": self.direction_ids,
                  "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path):
        """Read a sketch written by :meth:`save`; a damaged file is a :class:`SketchFileError`."""
        path = os.fspath(path)
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an .npz archive")
            with data:
                arrays = {k: data[k] for k in ("primal", "series", "directions", "direction_ids", "meta")}
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as err:
            raise SketchFileError(f"{path}: not a readable taylorsketch sketch ({err})") from None
        try:
            meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SketchFileError(f"{path}: corrupt metadata ({err})") from None
        if not isinstance(meta, dict):
            raise SketchFileError(f"{path}: corrupt metadata (not a JSON object)")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise SketchFileError(f"{path}: sketch format version {version}; this taylorsketch "
                                  f"reads version {FORMAT_VERSION}")
        try:
            model = model_from_description(meta["model"])
            order = meta["order"]
        except KeyError as err:
            raise SketchFileError(f"{path}: metadata lacks {err}") from None
        except (TypeError, ValueError) as err:
            raise SketchFileError(f"{path}: unusable metadata ({err})") from None
        n_params = sum(math.prod(s) for s in model.param_shapes().values())
        primal, series, directions, ids = (arrays[k] for k in ("primal", "series", "directions", "direction_ids"))
        if (primal.shape != (n_params,) or series.ndim != 3 or series.shape[2] != n_params
                or directions.shape[0] != series.shape[1] or ids.shape != (series.shape[1],)
                or series.shape[0] != order):
            raise SketchFileError(f"{path}: array shapes do not match the metadata")
        return cls(model, primal, series, directions, ids, meta)

    @classmethod
    def merge(cls, sketches):
        """Join shards of one precomputation (same seed, data, model and training)."""
        sketches = list(sketches)
        if not sketches:
            raise ValueError("merge: no sketches")
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
        order = np.argsort(ids, kind="stable")
        meta = dict(first.meta, shard=None, num_shards=None)
        return cls(first.model, first.primal,
                   np.concatenate([s.series for s in sketches], axis=1)[:, order],
                   np.concatenate([s.directions for s in sketches])[order], ids[order], meta)
