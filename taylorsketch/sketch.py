"""Sketch-based data deletion (placeholder filled in below)."""

import numpy as np


def deletion_indicator(docs, deleted):
    """The indicator ``1_D`` (float array, one entry per document) of a deletion set.

    ``deleted`` is a collection of indices or a predicate ``doc -> bool``.
    """
    n = len(docs)
    if callable(deleted):
        return np.array([1.0 if deleted(doc) else 0.0 for doc in docs])
    indices = np.asarray(list(deleted), dtype=int) if not isinstance(deleted, np.ndarray) else deleted.astype(int)
    if indices.size and (indices.min() < -n or indices.max() >= n):
        raise ValueError(f"deleted indices must be in 0..{n - 1}")
    indicator = np.zeros(n)
    indicator[indices] = 1.0
    return indicator
