"""precompute on a real Dask cluster: a ``distributed.LocalCluster`` of two worker
processes, one thread each.  The sketch must equal the one-process sketch to the
bit, for random, explicit and per-document directions, through ``client.submit``
and through ``client.get_executor()``.

Skipped only when dask is not installed; ``.ci/run`` installs it (the ``test``
extra), so CI runs these.
"""

import os
import signal
import threading
import time

import numpy as np
import pytest

import taylorsketch as ts

distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed "
                                  "(pip install -e '.[dask]'); these tests need a Dask cluster")

from test_parallel import STEPS, _directions, assert_same_sketch, one_process  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    docs = [d for d in ts.load_names() if set(d) <= set("abcdefgh") and len(d) <= 7][:12]
    model = ts.MicroGPT(ts.Vocab("abcdefgh"), n_embd=8, n_head=2, block_size=8)
    return model, model.init_params(seed=0), docs


# Dask's default MALLOC_TRIM_THRESHOLD_ makes jet training 2-3 times slower (docs/scaling.md)
WORKER_ENVIRON = {"MALLOC_MMAP_THRESHOLD_": 33554432, "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1,
                  "OPENBLAS_NUM_THREADS": 1}


@pytest.fixture(scope="module")
def client():
    import dask
    with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRON}):
        with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                      dashboard_address=None, silence_logs=40) as cluster:
            with distributed.Client(cluster) as c:
                yield c


@pytest.mark.parametrize("kind", ["random", "explicit", "documents"])
def test_a_dask_cluster_gives_the_one_process_sketch(tiny, client, kind):
    model, init, docs = tiny
    directions, batch = _directions(docs)[kind]
    on_cluster = ts.precompute(model, init, docs, order=2, directions=directions, steps=STEPS,
                               batch_size=batch, progress=False, executor=client)
    assert_same_sketch(on_cluster, one_process(tiny, kind))


def test_the_clients_executor_interface_gives_the_same_sketch(tiny, client):
    model, init, docs = tiny
    with client.get_executor() as pool:
        on_cluster = ts.precompute(model, init, docs, order=2, directions=6, steps=STEPS,
                                   batch_size=2, progress=False, executor=pool)
    assert_same_sketch(on_cluster, one_process(tiny, "random"))


def test_the_batches_ran_on_the_cluster(tiny, client):
    """Four batches, each a task on one of the cluster's workers."""
    model, init, docs = tiny
    with distributed.get_task_stream(client) as stream:
        ts.precompute(model, init, docs, order=2, directions=8, steps=STEPS, batch_size=2,
                      progress=False, executor=client)
    tasks = stream.data
    assert len(tasks) == 4
    assert {t["worker"] for t in tasks} <= set(client.scheduler_info()["workers"])


def test_workers_write_a_folder_and_map_a_measurement_over_it(tiny, client, tmp_path):
    model, init, docs = tiny
    on_cluster = ts.precompute(model, init, docs, order=2, directions=6, steps=STEPS, batch_size=2,
                               progress=False, executor=client, out=tmp_path / "s")
    here = one_process(tiny, "random")
    assert np.array_equal(np.asarray(on_cluster.series), here.series)
    phi = ts.measure.doc_loss(model, "bad")
    assert np.array_equal(ts.Sketch.load(tmp_path / "s").coefficients(phi, executor=client),
                          here.coefficients(phi))


def test_killing_a_worker_mid_run_loses_nothing_finished(client, tmp_path):
    """A worker process killed while batches run: Dask reruns its batch elsewhere, the
    shards already written stay as they are, and the folder is the one-process sketch."""
    docs = [d for d in ts.load_names() if set(d) <= set("abcdefgh") and len(d) <= 7][:40]
    model = ts.MicroGPT(ts.Vocab("abcdefgh"), n_embd=8, n_head=2, block_size=8)
    init = model.init_params(seed=0)
    args = dict(order=2, directions=24, steps=40, batch_size=2, progress=False)
    out, result = tmp_path / "s", {}

    def run():
        try:
            result["sketch"] = ts.precompute(model, init, docs, executor=client, out=out, **args)
        except BaseException as err:       # reported below
            result["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not (out.exists() and any(f.startswith("shard-") for f in os.listdir(out))):
        assert time.monotonic() < deadline, "no shard was written in 120 s"
        time.sleep(0.05)
    finished = {f: os.stat(out / f).st_ino for f in os.listdir(out) if f.startswith("shard-")}
    busy = [w for w, keys in client.processing().items() if keys]
    pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
    os.kill(pid, signal.SIGKILL)                            # its nanny starts a new one
    thread.join(300)
    assert "error" not in result, result.get("error")
    assert len(finished) < 12                               # killed mid-run
    for f, inode in finished.items():
        assert os.stat(out / f).st_ino == inode
    here = ts.precompute(model, init, docs, **args)
    assert np.array_equal(np.asarray(result["sketch"].series), here.series)
