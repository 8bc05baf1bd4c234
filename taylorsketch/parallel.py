"""Where jobs run when the caller brings an executor: any ``concurrent.futures``-like object.

A job is a module-level function and one picklable argument; the results come
back in the order of the jobs, whoever ran them, so nothing about a result
depends on the worker that computed it.  Two places can run jobs:

* this process (no executor);
* any ``concurrent.futures.Executor``-like object passed as ``executor``: one
  whose ``submit(fn, arg)`` returns a future with ``result()``.  That covers the
  standard library's executors, a Dask ``distributed.Client`` (its ``submit``)
  and ``client.get_executor()``.  Nothing here imports Dask.

(The local pool of ``precompute(workers=...)``, with its shared progress
counter, is :mod:`taylorsketch.precomputation`'s own.)  The caller chooses one
of ``workers`` and ``executor``, not both.
"""


def check_executor(executor, workers):
    """Raise unless ``executor`` is None or has ``submit``, and not both it and ``workers`` are given."""
    if executor is None:
        return
    if not callable(getattr(executor, "submit", None)):
        raise TypeError("executor must be a concurrent.futures.Executor-like object with "
                        f"submit(fn, arg) (a ProcessPoolExecutor, a dask distributed.Client, ...); "
                        f"got {type(executor).__name__}")
    if workers is not None:
        raise ValueError("give workers= (a local pool) or executor= (your own executor or cluster), not both")


def run(fn, jobs, executor=None):
    """``fn(job)`` for every job, yielded in the order of ``jobs``: in this process, or
    on ``executor``.

    Every job is submitted at once to an executor (it schedules them); a failed
    job raises its error here, and the jobs not yet started are cancelled.
    """
    jobs = list(jobs)
    if executor is None:
        yield from map(fn, jobs)
        return
    futures = [executor.submit(fn, job) for job in jobs]
    try:
        for i in range(len(futures)):
            result = futures[i].result()
            futures[i] = None          # a Dask future holds its result on the cluster until released
            yield result
    finally:
        for future in futures:
            if future is not None:
                future.cancel()
