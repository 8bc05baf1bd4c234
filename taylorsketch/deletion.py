"""Deletion sets: the indicator ``1_D`` of the documents to delete (method.md section 1).

A deletion set is given as document indices, a boolean mask, or a predicate
``doc -> bool``; training with weights ``t 1_D`` deletes it (``t = 1``) or
down-weights it (``0 < t < 1``).  Below training and the estimators, which
both need it.
"""

import numpy as np


def deletion_indicator(docs, deleted):
    """The indicator ``1_D`` (float array, one entry per document) of a deletion set.

    ``deleted`` is a collection of indices, a boolean mask or a predicate ``doc -> bool``.
    """
    return indicator(len(docs), deleted, docs)


def indicator(n, deleted, docs=None):
    """``1_D`` for ``n`` documents; a predicate needs ``docs``."""
    if callable(deleted):
        if docs is None:
            raise ValueError("a predicate deletion set needs the documents (pass docs=...)")
        return np.array([1.0 if deleted(doc) else 0.0 for doc in docs])
    indices = np.asarray(list(deleted) if not isinstance(deleted, np.ndarray) else deleted)
    if indices.dtype == bool:
        if indices.shape != (n,):
            raise ValueError(f"a boolean deletion mask needs {n} entries; got {indices.shape}")
        return indices.astype(float)
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise ValueError("deleted must be document indices (integers), a boolean mask or a predicate")
    indices = indices.astype(int).ravel()
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"deleted indices must be in 0..{n - 1}; got {indices.min()}..{indices.max()}")
    if len(np.unique(indices)) != indices.size:
        raise ValueError("deleted indices contain duplicates")
    out = np.zeros(n)
    out[indices] = 1.0
    return out
