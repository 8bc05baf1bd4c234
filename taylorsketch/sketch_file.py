"""The sketch file: ``.npz`` arrays plus JSON metadata, written atomically, read
without unpickling, every field and array checked against the metadata.

A file holds ``primal`` (P,), ``series`` (K, M, P), ``directions`` (M, n) (``(0, n)``
for a documents sketch), ``direction_ids`` (M,) and ``meta`` (UTF-8 JSON as uint8
bytes).  :func:`read` raises :class:`SketchFileError` for anything wrong inside a
file and ``FileNotFoundError`` for a missing one (docs/errors.md).

Shape legend: n = training documents, M = directions, K = order, P = parameters.
"""

import hashlib
import json
import math
import os

import numpy as np

from ._io import atomic_write
from .data import Vocab
from .models import MLP, MicroGPT

FORMAT_VERSION = 1


class SketchFileError(ValueError):
    """A sketch file that cannot be read: truncated, corrupt, inconsistent with its
    own metadata, or of another format version."""


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
    if not isinstance(d, dict):
        raise SketchFileError(f"a model description must be a JSON object; got {type(d).__name__}")
    d = dict(d)
    kind = d.pop("model", None)
    if kind == "MicroGPT":
        return MicroGPT(Vocab(d["chars"]), n_layer=d["n_layer"], n_embd=d["n_embd"],
                        n_head=d["n_head"], block_size=d["block_size"], init_std=d["init_std"])
    if kind == "MLP":
        return MLP(d["n_in"], d["n_hidden"], d["n_out"], d["task"])
    raise SketchFileError(f"unknown model description {kind!r}")


# ----------------------------------------------------------------------------
# writing and reading


def write(path, primal, series, directions, direction_ids, meta, overwrite=True):
    """Write one sketch's arrays and metadata to ``path``, atomically (see ``Sketch.save``)."""
    meta = dict(meta, format_version=FORMAT_VERSION)
    arrays = {"primal": primal, "series": series, "directions": directions, "direction_ids": direction_ids,
              "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    atomic_write(os.fspath(path), lambda f: np.savez(f, **arrays), overwrite=overwrite)


def read(path):
    """``(model, primal, series, directions, direction_ids, meta)`` from a file written by
    :func:`write`, every part checked (see ``Sketch.load``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise SketchFileError(f"{path}: is a folder, not a sketch file")
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise SketchFileError(f"{path}: not a taylorsketch sketch (not an .npz archive)")
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with data:
            arrays = {k: data[k] for k in ("primal", "series", "directions", "direction_ids", "meta")}
    except (FileNotFoundError, SketchFileError):
        raise
    except Exception as err:   # an untrusted file: whatever numpy or zipfile trips on is damage
        raise SketchFileError(f"{path}: not a readable taylorsketch sketch ({err})") from None
    try:
        meta = json.loads(_array(arrays, "meta", (np.uint8,), 1).tobytes().decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise SketchFileError(f"sketch format version {version!r}; this taylorsketch "
                                  f"reads version {FORMAT_VERSION}")
        model = model_from_description(_field(meta, "model", dict))
        return (model, *checked_arrays(meta, arrays, model), meta)
    except SketchFileError as err:
        raise SketchFileError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, ArithmeticError) as err:
        raise SketchFileError(f"{path}: unusable metadata or arrays ({err})") from None


# ----------------------------------------------------------------------------
# what Sketch.load checks in a file


def _field(meta, key, types, check=None):
    """``meta[key]``, of one of ``types`` and passing ``check``, or a SketchFileError."""
    if key not in meta:
        raise SketchFileError(f"metadata lacks {key!r}")
    value = meta[key]
    types = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok or (check is not None and value is not None and not check(value)):
        raise SketchFileError(f"metadata {key!r} is unusable: {value!r:.80}")
    return value


def _array(arrays, name, dtypes, ndim):
    value = arrays[name]
    if not any(value.dtype == d for d in dtypes) or value.ndim != ndim:
        raise SketchFileError(f"array {name!r} has dtype {value.dtype} and {value.ndim} axes; "
                              f"expected {'/'.join(np.dtype(d).name for d in dtypes)} with {ndim}")
    return value


def checked_arrays(meta, arrays, model, values=True):
    """``(primal, series, directions, direction_ids)``, each checked against the metadata
    (``values=False``: all but the series' values, which are then not read)."""
    kind = _field(meta, "kind", str, lambda v: v in ("random", "explicit", "documents"))
    order = _field(meta, "order", int, lambda v: v >= 1)
    n_docs = _field(meta, "n_docs", int, lambda v: v >= 1)
    total = _field(meta, "total_directions", int, lambda v: v >= 1)
    _field(meta, "seed", int)
    _field(meta, "fingerprint", str, lambda v: len(v) == 64 and all(c in "0123456789abcdef" for c in v))
    training = _field(meta, "training", dict)
    _field(training, "steps", int, lambda v: v >= 0)
    data = _field(meta, "data", (dict, type(None))) if "data" in meta else None
    if data is not None:
        source = _field(data, "source", str, lambda v: v in ("paper", "file"))
        _field(data, "seed", int)
        _field(data, "n_docs", int, lambda v: v >= 1)
        if source == "file":
            _field(data, "path", str, lambda v: v != "")
    n_params = sum(math.prod(s) for s in model.param_shapes().values())
    floats = (np.float64, np.complex128)
    primal = _array(arrays, "primal", (np.float64,), 1)
    series = _array(arrays, "series", floats, 3)
    directions = _array(arrays, "directions", floats, 2)
    ids = _array(arrays, "direction_ids", (np.int64, np.int32), 1)
    if kind == "random" and directions.dtype != np.complex128:
        raise SketchFileError(f"random directions must be complex128; got {directions.dtype}")
    if kind == "documents":      # direction j is e_j: no direction matrix, real series, ids 0..n-1
        if (series.dtype != np.float64 or directions.shape != (0, n_docs) or series.shape[1:] != (n_docs, n_params)
                or series.shape[0] != order or primal.shape != (n_params,) or total != n_docs
                or not np.array_equal(ids, np.arange(n_docs))):
            raise SketchFileError(
                f"a documents sketch needs real series (order, n_docs, P) = ({order}, {n_docs}, {n_params}), "
                f"no direction matrix and ids 0..{n_docs - 1}; got series {series.shape} {series.dtype}, "
                f"directions {directions.shape}, ids {ids.shape}")
        if not (np.all(np.isfinite(primal)) and (not values or np.all(np.isfinite(series)))):
            raise SketchFileError("a documents sketch has non-finite values")
        return primal, series, directions, ids
    if series.dtype != np.result_type(directions.dtype, np.float64):
        raise SketchFileError(f"array 'series' has dtype {series.dtype}; directions of dtype "
                              f"{directions.dtype} give {np.result_type(directions.dtype, np.float64)}")
    m = series.shape[1]
    if (primal.shape != (n_params,) or series.shape != (order, m, n_params) or m < 1
            or directions.shape != (m, n_docs) or ids.shape != (m,) or m > total):
        raise SketchFileError(
            f"array shapes do not match the metadata: primal {primal.shape}, series {series.shape}, "
            f"directions {directions.shape}, ids {ids.shape}; the metadata says order {order}, "
            f"{n_docs} documents, {n_params} parameters, at most {total} directions")
    if kind == "random" and (ids.min() < 0 or ids.max() >= total or len(np.unique(ids)) != m):
        raise SketchFileError(f"direction ids must be distinct and in 0..{total - 1}")
    if kind == "explicit" and np.any(ids != -1):
        raise SketchFileError("explicit directions must have ids -1")
    for name, value in (("primal", primal), ("series", series), ("directions", directions)):
        if (values or name != "series") and not np.all(np.isfinite(value)):
            raise SketchFileError(f"array {name!r} has non-finite values")
    return primal, series, directions, ids
