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
from functools import partial

import numpy as np

from . import _check, folder, parallel
from .estimator import random_directions
from .jet import Jet
from .optim import Adam
from .progress import Counter, SharedCounter, task
from .sketch import Sketch
from .sketch_file import fingerprint
from .training import FlatParams, check_params, encode_documents, train_flat, train_steps


def precompute(model, init_params, docs, order, directions, seed=0, steps=None, batch_size=None,
               shard=0, num_shards=1, workers=None, progress=None, data=None, executor=None,
               out=None, resume=False):
    """Train once in jet arithmetic along ``directions`` of the loss weights.

    Parameters
    ----------
    model, init_params, docs, steps : as for :func:`taylorsketch.train`
    order : int, the jet order K
    directions : int M (random complex directions, unit sphere of C^n, seeded), an
        explicit ``(M, n)`` array (e.g. ``indicator[None, :]``: the exact-direction mode),
        or ``"documents"``: every unit vector ``e_i`` in real arithmetic, each batch of
        documents starting at the step its first document is trained on (a sketch of
        kind ``"documents"``: leave-one-out, the additive models, the residual estimator)
    seed : int, seeds the random directions (direction j depends on (seed, j) only)
    batch_size : directions trained together in one pass (bounds memory; default
        all at once up to 128, and 64 documents for ``"documents"``)
    shard, num_shards : compute only shard ``shard`` of ``num_shards`` equal blocks of
        the M random directions; join the shards with :meth:`Sketch.merge`
    workers : processes to train batches in parallel (started with ``spawn``: a script
        that uses them needs the ``if __name__ == "__main__":`` guard); default 1
    executor : optional ``concurrent.futures.Executor``-like object (anything with
        ``submit(fn, arg)``: a ``ProcessPoolExecutor``, a Dask ``distributed.Client``)
        that trains the batches instead; the same batches, the same numbers as one
        process; progress then counts finished batches.  Not together with ``workers``
    out : optional folder: the batches' workers write the sketch there, one shard file
        per batch plus ``manifest.json`` (random or explicit directions); the
        result is then loaded lazily from it (:mod:`taylorsketch.folder`).  The
        folder must be new or empty unless ``resume``
    resume : with ``out``: continue an interrupted run in that folder (the same
        arguments; only the missing shards are trained)
    progress : as for :func:`taylorsketch.train`: one bar for the whole run, in
        direction-steps (``steps x`` this shard's directions; for ``"documents"``,
        the steps each document's batch trains), summed over the workers
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
    parallel.check_executor(executor, workers)
    where = {"workers": workers, "executor": executor}
    if data is not None and not isinstance(data, dict):
        raise TypeError(f"data must be a dict describing the documents' source, or None; got {type(data).__name__}")
    # every batch trains with a fresh copy of this optimizer; the metadata records it
    optimizer = Adam(total_steps=max(steps, 1))
    if isinstance(directions, str) and directions == "documents":
        if out is not None:
            raise ValueError("out= writes random or explicit directions; a documents sketch is kept "
                             "in memory (save it with Sketch.save)")
        if shard != 0 or num_shards != 1:
            raise ValueError("a documents sketch is not sharded; use workers= or executor= to parallelise it")
        kind, total, ids = "documents", len(docs), np.arange(len(docs))
        psi = np.zeros((0, len(docs)))
        primal, series = _train_documents(model, init_params, docs, steps, order, optimizer,
                                          batch_size, where, progress)
    else:
        psi, ids, total, kind = draw_directions(directions, len(docs), seed, shard, num_shards)
        if out is not None:
            meta = _metadata(kind, order, seed, docs, total, shard, num_shards, model, steps, optimizer, data)
            run = (model, init_params, docs, steps, order, psi, ids, optimizer, meta)
            label = _label(order, len(psi), kind, shard, num_shards)
            return _train_to_folder(out, resume, run, _chunks(len(psi), batch_size), where, progress, label)
        with task(progress, steps * len(psi), _label(order, len(psi), kind, shard, num_shards),
                  "direction-step") as counter:
            primal, series = _train_all(model, init_params, docs, steps, order, psi, optimizer,
                                        batch_size, where, counter)
    meta = _metadata(kind, order, seed, docs, total, shard, num_shards, model, steps, optimizer, data)
    return Sketch(model, primal, series, psi, ids, meta)


def _label(order, m, kind, shard, num_shards):
    """``jet training, order 3, 500 directions`` (``1 exact direction``; ``, shard 2 of 4``)."""
    directions = f"{m} {'exact ' if kind == 'explicit' else ''}direction{'s' * (m != 1)}"
    where = f", shard {shard + 1} of {num_shards}" if num_shards > 1 else ""
    return f"jet training, order {order}, {directions}{where}"


def _check_arguments(model, init_params, order):
    _check.integer(order, "order", low=1)
    check_params(model, init_params)


def draw_directions(directions, n, seed=0, shard=0, num_shards=1):
    """The directions of one precomputation: ``(psi (M, n), ids (M,), total, kind)``.

    ``directions`` is a count (random directions; this shard's block of them,
    ``kind = "random"``) or an explicit ``(M, n)`` array (ids ``-1``,
    ``kind = "explicit"``).
    """
    if isinstance(directions, str):
        raise ValueError(f"directions must be a count, an (M, n) array or 'documents'; got {directions!r}")
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


def _train_all(model, init_params, docs, steps, order, psi, optimizer, batch_size, where, counter):
    """Jet training along every direction, batch by batch: ``(primal (P,), series (K, M, P))``;
    every step's directions are added to ``counter``."""
    chunks = _chunks(len(psi), batch_size)
    n_params = sum(math.prod(s) for s in model.param_shapes().values())
    series = np.empty((order, len(psi), n_params), dtype=np.result_type(psi, np.float64))
    primal = None
    jobs = [(model, init_params, docs, steps, order, psi[a:b], optimizer) for a, b in chunks]
    works = [steps * (b - a) for a, b in chunks]
    for (a, b), (p0, ps) in zip(chunks, _batches(_train_batch, jobs, works, where, counter)):
        primal = p0
        series[:, a:b] = ps
    return primal, series


def _chunks(m, batch_size):
    """The batches ``(a, b)`` of ``m`` directions: ``batch_size`` each (default all, up to 128)."""
    batch = min(m, 128) if batch_size is None else int(batch_size)
    return [(a, min(a + batch, m)) for a in range(0, m, batch)]


def _batches(train_batch, jobs, works, where, counter):
    """``train_batch(job, counter)`` for every job, in order: here or in the local pool
    (:func:`_run`, counting every step), or on ``where["executor"]``, where a job runs
    without a counter and ``counter`` gets each batch's ``works`` when it is finished."""
    if where["executor"] is None:
        yield from _run(train_batch, jobs, where["workers"], counter)
        return
    for work, result in zip(works, parallel.run(partial(_uncounted, train_batch), jobs,
                                                executor=where["executor"])):
        counter.add(work)
        yield result


def _uncounted(train_batch, job):
    return train_batch(job, Counter())


def _train_to_folder(out, resume, run, chunks, where, progress, label):
    """Every batch trained and written to its shard file by whoever trains it; the
    shards already in ``out`` (``resume``) are kept.  Returns ``Sketch.load(out)``."""
    model, init_params, docs, steps, order, psi, ids, optimizer, meta = run
    manifest = folder.plan(meta, chunks, ids, psi)
    done = folder.prepare(out, manifest, resume)
    todo = [i for i in range(len(chunks)) if i not in done]
    jobs = [((model, init_params, docs, steps, order, psi[a:b], optimizer), model, ids[a:b], meta,
             folder.shard_path(out, manifest, i)) for i, (a, b) in enumerate(chunks) if i in todo]
    works = [steps * (chunks[i][1] - chunks[i][0]) for i in todo]
    with task(progress, sum(works), label, "direction-step") as counter:
        for _ in _batches(_train_batch_to_shard, jobs, works, where, counter):
            pass
    return Sketch.load(out)


def _train_batch_to_shard(job, counter):
    """Train one batch and write it as a shard file (atomically); returns the path.

    A shard already there was written by an earlier attempt of this job in this run
    (the folder was checked before any job started, and writes are atomic): an
    executor that reruns a finished job (Dask, after losing the worker that held
    its result) keeps it instead of training again."""
    batch, model, ids, meta, path = job
    if os.path.exists(path):
        return path
    primal, series = _train_batch(batch, counter)
    Sketch(model, primal, series, batch[5], ids, meta).save(path)
    return path


def _train_documents(model, init_params, docs, steps, order, optimizer, batch_size, where, progress):
    """Jet training along every unit vector ``e_i``: ``(primal (P,), series (K, n, P))``, real.

    Along ``e_i`` every series is zero until step ``i``, when document ``i`` is first
    trained on (one document per step).  So each batch of documents starts at its
    first document's step, from the ordinary run's state then (parameters and
    Adam's moments) with zero series: about half the direction-steps of a full run,
    the same numbers.  Documents never trained on (``i >= steps``) keep zero series.
    """
    encoded = encode_documents(model, docs)
    batch = 64 if batch_size is None else int(batch_size)
    used = np.arange(min(len(docs), steps))
    batches = [used[a:a + batch] for a in range(0, len(used), batch)]
    states = _plain_states(model, init_params, docs, encoded, optimizer, [int(ids[0]) for ids in batches])
    n_params = sum(math.prod(s) for s in model.param_shapes().values())
    series = np.zeros((order, len(docs), n_params))
    primal = states[0][0] if not batches else None
    jobs = [(model, states[int(ids[0])], encoded, docs, steps, order, ids, optimizer) for ids in batches]
    works = [(steps - int(ids[0])) * len(ids) for ids in batches]      # direction-steps
    label = f"per-document jet training, order {order}, {len(used)} documents"
    with task(progress, sum(works), label, "direction-step") as counter:
        for ids, (p0, ps) in zip(batches, _batches(_train_documents_batch, jobs, works, where, counter)):
            primal = p0 if primal is None else primal      # the first batch starts at step 0
            series[:, ids] = ps
    return primal, series


def _plain_states(model, init_params, docs, encoded, optimizer, at):
    """The ordinary run's state before each step in ``at`` (and step 0): ``{step:
    (params, m, v)}``, flat arrays of ``P``."""
    flat = FlatParams.from_dict(model.param_shapes(), init_params)
    opt = dataclasses.replace(optimizer)
    opt.m, opt.v = np.zeros(flat.flat.shape), np.zeros(flat.flat.shape)
    weights = np.zeros(len(encoded))
    states, done = {}, 0
    for step in sorted(set(at) | {0}):
        train_steps(model, flat, encoded, docs, weights, opt, done, step)
        states[step], done = (flat.flat.copy(), opt.m.copy(), opt.v.copy()), step
    return states


def _train_documents_batch(job, counter):
    """Jet training along ``e_i`` for the batch's documents, from its first document's
    step on, starting from the ordinary run's state there with zero series."""
    model, (p0, m0, v0), encoded, docs, steps, order, ids, optimizer = job
    start, n, size = int(ids[0]), len(encoded), p0.shape[0]
    units = np.zeros((len(ids), n))
    units[np.arange(len(ids)), ids] = 1.0
    weights = Jet.from_directions(np.zeros(n), units, order)
    zeros = np.zeros((order, len(ids), size))
    flat = FlatParams(model.param_shapes(), Jet.wrap(p0.copy(), zeros.copy()))
    opt = dataclasses.replace(optimizer)
    opt.m, opt.v, opt.t = Jet.wrap(m0.copy(), zeros.copy()), Jet.wrap(v0.copy(), zeros), start
    train_steps(model, flat, encoded, docs, weights, opt, start, steps, on_step=partial(counter.add, len(ids)))
    return flat.flat.primal, flat.flat.series


def _metadata(kind, order, seed, docs, total, shard, num_shards, model, steps, optimizer, data):
    """What a sketch records about how it was made (JSON-ready)."""
    return {"kind": kind, "order": int(order), "seed": int(seed), "n_docs": len(docs),
            "total_directions": int(total), "shard": int(shard), "num_shards": int(num_shards),
            "fingerprint": fingerprint(docs), "model": model.describe(),
            "training": {"steps": steps, **optimizer.describe()},
            "data": data}


def _train_batch(job, counter):
    model, init_params, docs, steps, order, psi, optimizer = job
    weights = Jet.from_directions(np.zeros(len(docs)), psi, order)
    trained = train_flat(model, init_params, docs, steps=steps, weights=weights,
                         optimizer=dataclasses.replace(optimizer), progress=counter).flat   # fresh state
    return trained.primal, trained.series


POLL_SECONDS = 0.2   # how often the parent reads the workers' shared count

# a worker process's counter, set by _worker_init: it publishes into the parent's shared Value
_worker_counter = None


def _in_worker(train_batch, job):
    result = train_batch(job, _worker_counter)
    _worker_counter.flush()      # the parent sees every step of a batch before its result
    return result


def _run(train_batch, jobs, workers, counter):
    """``train_batch(job, counter)`` for every job, in ``workers`` fresh processes when
    asked (spawned, not forked: numba's thread pool does not survive a fork), yielding
    the results in order.  ``train_batch`` adds its direction-steps to the counter it
    is given: ``counter`` itself in this process; in a worker, a :class:`SharedCounter`
    that publishes into one shared ``Value`` every ``POLL_SECONDS`` at most, which
    the parent reads while it waits and adds to ``counter``.
    """
    if workers is None or workers <= 1 or len(jobs) <= 1:
        yield from (train_batch(job, counter) for job in jobs)
        return
    import multiprocessing
    from concurrent import futures
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    workers = min(int(workers), len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    done = context.Value("q", 0)      # direction-steps finished in all workers
    reported = 0

    def poll():
        nonlocal reported
        now = done.value
        counter.add(now - reported)
        reported = now

    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_worker_init, initargs=(threads, done)) as pool:
        try:
            for future in [pool.submit(_in_worker, train_batch, job) for job in jobs]:
                while True:
                    try:
                        result = future.result(timeout=POLL_SECONDS)
                        break
                    except futures.TimeoutError:
                        poll()
                poll()
                yield result
        except BrokenProcessPool:
            raise RuntimeError(
                "precompute: a worker process died. Workers are started afresh and import the "
                "calling script: in a script, call precompute(workers=...) from under "
                "`if __name__ == '__main__':`; otherwise check memory (each worker holds its "
                "batch of directions)") from None


def _worker_init(threads, done):
    global _worker_counter
    import numba
    numba.set_num_threads(threads)
    _worker_counter = SharedCounter(done, interval=POLL_SECONDS)
