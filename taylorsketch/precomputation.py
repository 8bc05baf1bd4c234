"""Precomputation: one jet training along M directions of the loss weights (method.md section 3).

:func:`precompute` checks its arguments, draws the directions (this shard's
block of random ones, or explicit ones), trains them batch by batch (in
worker processes when asked), and records how the sketch was made.

Shape legend: n = training documents, M = directions, K = order, P = number
of parameters.
"""

import dataclasses
import math
import os

import numpy as np

from . import _check
from .estimator import random_directions
from .jet import Jet
from .optim import Adam
from .progress import progress_bar
from .sketch import Sketch, fingerprint
from .training import check_params, train_flat


def precompute(model, init_params, docs, order, directions, seed=0, steps=None, batch_size=None,
               shard=0, num_shards=1, workers=1, progress=None, data=None):
    """Train once in jet arithmetic along ``directions`` of the loss weights.

    Parameters
    ----------
    model, init_params, docs, steps : as for :func:`taylorsketch.train`
    order : int, the jet order K
    directions : int M (random complex directions, unit sphere of C^n, seeded) or an
        explicit ``(M, n)`` array (e.g. ``indicator[None, :]``: the exact-direction mode)
    seed : int, seeds the random directions (direction j depends on (seed, j) only)
    batch_size : directions trained together in one pass (bounds memory; default
        all at once up to 128)
    shard, num_shards : compute only shard ``shard`` of ``num_shards`` equal blocks of
        the M random directions; join the shards with :meth:`Sketch.merge`
    workers : processes to train batches in parallel (started with ``spawn``: a script
        that uses them needs the ``if __name__ == "__main__":`` guard)
    progress : bool or None (a bar when stderr is a terminal)
    data : optional JSON-able description of where ``docs`` came from (kept in the file)

    Returns
    -------
    Sketch
    """
    docs = _check.documents(docs)
    _check_arguments(model, init_params, order)
    steps = len(docs) if steps is None else _check.integer(steps, "steps", low=0)
    seed = _check.integer(seed, "seed", low=0)
    batch_size = _check.optional_integer(batch_size, "batch_size", low=1)
    workers = _check.optional_integer(workers, "workers", low=1)
    if data is not None and not isinstance(data, dict):
        raise TypeError(f"data must be a dict describing the documents' source, or None; got {type(data).__name__}")
    psi, ids, total, kind = draw_directions(directions, len(docs), seed, shard, num_shards)
    # every batch trains with a fresh copy of this optimizer; the metadata records it
    optimizer = Adam(total_steps=max(steps, 1))
    primal, series = _train_all(model, init_params, docs, steps, order, psi, optimizer,
                                batch_size, workers, progress)
    meta = _metadata(kind, order, seed, docs, total, shard, num_shards, model, steps, optimizer, data)
    return Sketch(model, primal, series, psi, ids, meta)


def _check_arguments(model, init_params, order):
    _check.integer(order, "order", low=1)
    check_params(model, init_params)


def draw_directions(directions, n, seed=0, shard=0, num_shards=1):
    """The directions of one precomputation: ``(psi (M, n), ids (M,), total, kind)``.

    ``directions`` is a count (random directions; this shard's block of them,
    ``kind = "random"``) or an explicit ``(M, n)`` array (ids ``-1``,
    ``kind = "explicit"``).
    """
    if isinstance(directions, (int, np.integer)) and not isinstance(directions, bool):
        total = _check.integer(directions, "directions", low=1)
        shard = _check.integer(shard, "shard", low=0)
        num_shards = _check.integer(num_shards, "num_shards", low=1)
        if not 0 <= shard < num_shards or num_shards > total:
            raise ValueError(f"need 0 <= shard < num_shards <= directions; got shard={shard}, "
                             f"num_shards={num_shards}, directions={total}")
        bounds = np.linspace(0, total, num_shards + 1).astype(int)
        ids = np.arange(bounds[shard], bounds[shard + 1])
        return random_directions(n, ids, seed), ids, total, "random"
    psi = np.asarray(directions)
    if not (np.issubdtype(psi.dtype, np.number) or psi.dtype == bool):
        raise TypeError(f"directions must be a count or a numeric (M, n_docs) array; got {directions!r:.80}")
    if psi.ndim != 2 or psi.shape[1] != n:
        raise ValueError(f"explicit directions must have shape (M, n_docs) = (M, {n}); got {psi.shape}")
    if not np.all(np.isfinite(psi)):
        raise ValueError("directions contain non-finite values")
    psi = psi.astype(np.result_type(psi, np.float64))
    return psi, np.full(len(psi), -1), len(psi), "explicit"


def _train_all(model, init_params, docs, steps, order, psi, optimizer, batch_size, workers, progress):
    """Jet training along every direction, batch by batch: ``(primal (P,), series (K, M, P))``."""
    batch = min(len(psi), 128) if batch_size is None else int(batch_size)
    chunks = [(a, min(a + batch, len(psi))) for a in range(0, len(psi), batch)]
    n_params = sum(math.prod(s) for s in model.param_shapes().values())
    series = np.empty((order, len(psi), n_params), dtype=np.result_type(psi, np.float64))
    primal = None
    jobs = [(model, init_params, docs, steps, order, psi[a:b], optimizer) for a, b in chunks]
    bar = progress_bar(len(chunks), progress, "precompute")
    for (a, b), (p0, ps) in zip(chunks, _run(jobs, workers)):
        primal = p0
        series[:, a:b] = ps
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return primal, series


def _metadata(kind, order, seed, docs, total, shard, num_shards, model, steps, optimizer, data):
    """What a sketch records about how it was made (JSON-ready)."""
    return {"kind": kind, "order": int(order), "seed": int(seed), "n_docs": len(docs),
            "total_directions": int(total), "shard": int(shard), "num_shards": int(num_shards),
            "fingerprint": fingerprint(docs), "model": model.describe(),
            "training": {"steps": steps, **optimizer.describe()},
            "data": data}


def _train_batch(job):
    model, init_params, docs, steps, order, psi, optimizer = job
    weights = Jet.from_directions(np.zeros(len(docs)), psi, order)
    trained = train_flat(model, init_params, docs, steps=steps, weights=weights,
                         optimizer=dataclasses.replace(optimizer), progress=False).flat   # fresh state
    return trained.primal, trained.series


def _run(jobs, workers):
    """Train the batches, in ``workers`` fresh processes when asked (spawned, not
    forked: numba's thread pool does not survive a fork)."""
    if workers is None or workers <= 1 or len(jobs) <= 1:
        yield from map(_train_batch, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    workers = min(int(workers), len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init, initargs=(threads,)) as pool:
        try:
            yield from pool.map(_train_batch, jobs)
        except BrokenProcessPool:
            raise RuntimeError(
                "precompute: a worker process died. Workers are started afresh and import the "
                "calling script: in a script, call precompute(workers=...) from under "
                "`if __name__ == '__main__':`; otherwise check memory (each worker holds its "
                "batch of directions)") from None


def _worker_init(threads):
    import numba
    numba.set_num_threads(threads)
