"""Where precompute's batches run (``taylorsketch/parallel.py``): the local default,
any ``concurrent.futures`` executor, and the refusals.  A Dask cluster is in
``test_dask.py``.

Every run trains the same batches, so every sketch must equal the one-process
sketch to the bit (``np.array_equal``, not a tolerance).
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch import parallel

STEPS = 12


@pytest.fixture(scope="module")
def tiny():
    docs = [d for d in ts.load_names() if set(d) <= set("abcdefgh") and len(d) <= 7][:12]
    model = ts.MicroGPT(ts.Vocab("abcdefgh"), n_embd=8, n_head=2, block_size=8)
    return model, model.init_params(seed=0), docs


def _directions(docs):
    """The three kinds of directions, and a batch size giving several batches of each."""
    explicit = np.zeros((3, len(docs)))
    explicit[0, [1, 4]], explicit[1, 2], explicit[2] = 1.0, 1.0, 0.5
    return {"random": (6, 2), "explicit": (explicit, 2), "documents": ("documents", 4)}


def assert_same_sketch(a, b):
    assert a.kind == b.kind and a.meta == b.meta
    for name in ("primal", "series", "directions", "direction_ids"):
        assert getattr(a, name).dtype == getattr(b, name).dtype
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def one_process(tiny, kind):
    model, init, docs = tiny
    directions, batch = _directions(docs)[kind]
    return ts.precompute(model, init, docs, order=2, directions=directions, steps=STEPS,
                         batch_size=batch, progress=False)


@pytest.mark.parametrize("kind", ["random", "explicit", "documents"])
def test_a_thread_pool_gives_the_one_process_sketch(tiny, kind):
    model, init, docs = tiny
    directions, batch = _directions(docs)[kind]
    with ThreadPoolExecutor(max_workers=2) as pool:
        on_pool = ts.precompute(model, init, docs, order=2, directions=directions, steps=STEPS,
                                batch_size=batch, progress=False, executor=pool)
    assert_same_sketch(on_pool, one_process(tiny, kind))


def test_a_process_pool_gives_the_one_process_sketch(tiny):
    """Jobs pickled to a spawned process (one, to keep to one core)."""
    model, init, docs = tiny
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        for kind in ("random", "documents"):
            directions, batch = _directions(docs)[kind]
            on_pool = ts.precompute(model, init, docs, order=2, directions=directions, steps=STEPS,
                                    batch_size=batch, progress=False, executor=pool)
            assert_same_sketch(on_pool, one_process(tiny, kind))


def test_results_come_back_in_the_order_of_the_jobs():
    """Even when later jobs finish first."""
    import time

    def slow_first(job):
        time.sleep(0.05 * (3 - job))
        return job * 10

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(parallel.run(slow_first, range(4), executor=pool)) == [0, 10, 20, 30]
    assert list(parallel.run(slow_first, range(4))) == [0, 10, 20, 30]


def test_a_failed_job_raises_and_cancels_the_rest():
    import time
    started = []

    def fail_second(job):
        started.append(job)
        time.sleep(0.02)
        if job == 1:
            raise ArithmeticError("job 1")
        return job

    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(ArithmeticError, match="job 1"):
            list(parallel.run(fail_second, range(50), executor=pool))
    assert len(started) < 50


def test_workers_and_executor_together_are_refused(tiny):
    model, init, docs = tiny
    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(ValueError, match="not both"):
            ts.precompute(model, init, docs, order=2, directions=4, steps=STEPS, progress=False,
                          workers=2, executor=pool)
    for bad in ("dask", 4, object()):
        with pytest.raises(TypeError, match="executor must be"):
            ts.precompute(model, init, docs, order=2, directions=4, steps=STEPS, progress=False,
                          executor=bad)


def test_progress_on_an_executor_counts_finished_batches(tiny):
    """The bar gets each batch's direction-steps when the batch is finished, and reaches
    the same total as in one process."""
    from taylorsketch.progress import Bar
    model, init, docs = tiny
    with ThreadPoolExecutor(max_workers=2) as pool:
        bar = Bar(False)
        ts.precompute(model, init, docs, order=2, directions=6, steps=STEPS, batch_size=2,
                      progress=bar, executor=pool)
        assert (bar.n, bar.total, bar.unit) == (STEPS * 6, STEPS * 6, "direction-step")
        bar = Bar(False)
        ts.precompute(model, init, docs, order=1, directions="documents", steps=STEPS, batch_size=5,
                      progress=bar, executor=pool)
        expected = STEPS * 5 + (STEPS - 5) * 5 + (STEPS - 10) * 2
        assert (bar.n, bar.total) == (expected, expected)
