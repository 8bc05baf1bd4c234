"""Scaling out: precompute on executors and a Dask cluster, and sketch folders.

On the paper's MicroGPT (P = 4,192 parameters), order 3:

(a) directions per second of ``precompute`` against the number of workers
    (1 and 2 here): this process, the local pool (``workers=2``), and a Dask
    ``LocalCluster`` of 1 and 2 worker processes (``executor=client``), all on
    the same batches; the executor's overhead against the local pool at the
    same worker count.  The Dask cluster is started and warmed up (its workers
    import taylorsketch and load the compiled kernels) before the timed run;
    the local pool starts its processes inside the call, as it does for a user.
(b) a sketch folder of 5,000 directions (10 times the paper's figure 3)
    written by the cluster's workers (``out=FOLDER``): wall time, the size of
    the series on disk, and the client's peak resident memory (goal: bounded
    by one batch, not by M).  Few documents and steps keep it short: the
    parameters' jets have the paper's full shape, only the training is shorter.
(c) the coefficients of a new measurement on that folder: shard by shard in
    the client, and mapped over the shards on the cluster.

Each configuration is run once (the runs take seconds to a minute): on the
shared 2-core machine the numbers are a guide, not a law.

    python benchmarks/bench_scale.py                     # about 3 minutes
    python benchmarks/bench_scale.py --write docs/performance.md
"""

import argparse
import datetime
import os
import shutil
import tempfile
import time

import numpy as np

import taylorsketch as ts

from _common import format_mib, format_seconds, load_text, machine, peak_rss_bytes, publish, rss_bytes

SECTION = "## Scaling out (benchmarks/bench_scale.py)"
WORKER_ENVIRON = {"MALLOC_MMAP_THRESHOLD_": 33554432, "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1,
                  "OPENBLAS_NUM_THREADS": 1}
ORDER = 3


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="FILE", help="replace this script's section of FILE")
    parser.add_argument("--directions", type=int, default=64, help="directions of part (a)")
    parser.add_argument("--steps", type=int, default=100, help="training steps of part (a)")
    parser.add_argument("--big", type=int, default=5000, help="directions of the folder of (b) and (c)")
    args = parser.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")          # inherited by the workers
    import logging
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from distributed import Client, LocalCluster
    logging.getLogger("distributed").setLevel(logging.ERROR)
    import dask
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which fixes glibc's mmap
    # threshold at 128 KiB: every large temporary of a jet step is then a fresh mmap, and
    # training ran 2-3 times slower than in this process (docs/scaling.md).  Workers started
    # with a 32 MiB mmap threshold instead run at this process's speed.
    dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRON})

    load_before, begun = os.getloadavg()[0], time.perf_counter()
    s = ts.paper.setup()
    model = ts.MicroGPT(s.vocab)
    n_params = sum(int(np.prod(v)) for v in model.param_shapes().values())
    scratch = tempfile.mkdtemp(prefix="bench_scale_")
    clusters = {w: LocalCluster(n_workers=w, processes=True, threads_per_worker=1, dashboard_address=None,
                                silence_logs=40) for w in (1, 2)}
    clients = {w: Client(c) for w, c in clusters.items()}
    try:
        # (b) first, so that the client's peak memory is that of this part alone
        big_docs, big_steps = s.docs[:5], 5
        for client in clients.values():      # warm-up: imports and compiled kernels on every worker
            ts.precompute(model, s.init, big_docs, order=ORDER, directions=4, steps=2, batch_size=2,
                          progress=False, executor=client)
        rss_before = rss_bytes()
        out = os.path.join(scratch, "big")
        t_big, big = timed(lambda: ts.precompute(model, s.init, big_docs, order=ORDER, directions=args.big,
                                                 steps=big_steps, batch_size=128, progress=False,
                                                 executor=clients[2], out=out))
        peak_big = peak_rss_bytes()
        series_bytes = ORDER * args.big * n_params * 16
        disk_bytes = folder_bytes(out)
        assert isinstance(big.series.pieces[0], np.memmap)

        # (c) a new measurement's coefficients on the folder
        phi = ts.measure.doc_loss(model, "max")
        t_coef_local, coeffs = timed(lambda: ts.Sketch.load(out).coefficients(phi))
        t_coef_dask, coeffs2 = timed(lambda: ts.Sketch.load(out).coefficients(phi, executor=clients[2]))
        assert np.array_equal(coeffs, coeffs2) and coeffs.shape == (args.big, ORDER + 1)
        peak_after_coef = peak_rss_bytes()
        t_predict, _ = timed(lambda: big.predict(phi, [1, 2]) and None)
        t_predict2, _ = timed(lambda: big.predict(phi, [3, 4]) and None)

        # (a) throughput against workers
        docs, m = s.docs[:args.steps], args.directions
        run = dict(order=ORDER, directions=m, steps=args.steps, batch_size=m // 4, progress=False)
        reference = None
        rows = []
        pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
        ts.precompute(model, s.init, big_docs, order=ORDER, directions=4, steps=2, batch_size=2,
                      progress=False, executor=pool)          # warm-up: both processes started
        for name, where in (("this process", {}), ("local pool, `workers=2` (started in the call)", {"workers": 2}),
                            ("`ProcessPoolExecutor(2)`, warm (`executor=`)", {"executor": pool}),
                            ("Dask LocalCluster, 1 worker", {"executor": clients[1]}),
                            ("Dask LocalCluster, 2 workers", {"executor": clients[2]})):
            seconds, sketch = timed(lambda: ts.precompute(model, s.init, docs, **run, **where))
            if reference is None:
                reference = sketch
            same = np.array_equal(sketch.series, reference.series)
            rows.append((name, seconds, m / seconds, same))
        pool.shutdown()
    finally:
        for client in clients.values():
            client.close()
        for cluster in clusters.values():
            cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)

    elapsed = time.perf_counter() - begun
    by = {name: seconds for name, seconds, _, _ in rows}
    overhead = by["Dask LocalCluster, 2 workers"] / by["`ProcessPoolExecutor(2)`, warm (`executor=`)"] - 1
    lines = [
        SECTION, "",
        f"Run on {datetime.date.today().isoformat()} on {machine()}; numba on "
        f"{os.environ['NUMBA_NUM_THREADS']} thread(s) per process, one BLAS thread.",
        load_text(load_before, os.getloadavg()[0], elapsed), "",
        f"(a) `precompute` of the paper's MicroGPT (P = {n_params:,}), order {ORDER}, {m} random "
        f"directions in 4 batches of {m // 4}, {args.steps} documents and steps; one run each. The Dask "
        "cluster is warm, its workers started with `MALLOC_MMAP_THRESHOLD_=33554432` (see scaling.md); "
        "the local pool's time includes starting its processes.", "",
        "| where the batches run | wall time | directions per second | equal to one process (`np.array_equal`) |",
        "|---|---|---|---|",
        *[f"| {name} | {format_seconds(sec)} | {rate:.1f} | {'yes' if same else 'NO'} |"
          for name, sec, rate, same in rows],
        "",
        f"Dask at 2 workers against a warm local pool of 2 processes: {overhead:+.0%} wall time "
        "(goal: within 10 %). The local pool of `workers=2` pays for starting two processes "
        "(spawn, imports, loading the compiled kernels) in every call.", "",
        f"(b) A sketch folder of {args.big:,} directions (10 times the paper's figure 3), order {ORDER}, "
        f"P = {n_params:,}, written by the 2 Dask workers in batches of 128 ({len(big.shard_files)} shards); "
        f"{len(big_docs)} documents and {big_steps} steps, so that it takes a minute (the jets have the "
        "paper's full shape; the training is shorter).", "",
        "| quantity | value |", "|---|---|",
        f"| wall time | {format_seconds(t_big)} |",
        f"| series (K x M x P complex) | {format_mib(series_bytes)} |",
        f"| folder on disk | {format_mib(disk_bytes)} |",
        f"| client resident memory before the run | {format_mib(rss_before)} |",
        f"| client peak resident memory to the end of the run | {format_mib(peak_big)} |",
        "",
        f"(c) The coefficients of a new measurement (the loss on 'max') on that folder, "
        f"M = {args.big:,}, gathered as an `({args.big}, {ORDER + 1})` array:", "",
        "| how | wall time |", "|---|---|",
        f"| shard by shard in the client (`Sketch.load(folder).coefficients(phi)`) | {format_seconds(t_coef_local)} |",
        f"| mapped over the shards on 2 Dask workers (`coefficients(phi, executor=client)`) | {format_seconds(t_coef_dask)} |",
        f"| then `predict` of a new deletion set (coefficients known) | {format_seconds(min(t_predict, t_predict2))} |",
        "",
        f"The client's peak resident memory after (c): {format_mib(peak_after_coef)}.",
    ]
    publish("\n".join(lines), args.write, SECTION)


if __name__ == "__main__":
    main()
