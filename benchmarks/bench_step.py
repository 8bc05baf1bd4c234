"""Time per replayed training step, this package against another checkout, interleaved.

``bench_train.py`` extrapolates its many-direction rows from differences of whole
runs, which this host's noise moves by tens of percent.  Here every step is timed
on its own (the training loop's ``on_step`` callback), from step ``p`` on (the
first steps of each document length run eagerly and are recorded: 13 of a run's
21 eager steps come before step 30), and the median over the steps is taken: the
median of one run is robust to a burst of noise that would spoil a difference of
two runs.  Each configuration runs in a child process per version, alternately
this checkout and the baseline, ``--repeats`` times, on the paper's set-up
(MicroGPT, the first 1,000 documents, the 1,000-step schedule), with random unit
directions, real or complex.

    python benchmarks/bench_step.py --baseline /tmp/base          # git worktree add /tmp/base <commit>
    python benchmarks/bench_step.py --baseline /tmp/base --only 3-64-real,6-1-complex
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = {"3-64-real": (3, 64, "real", 60), "3-64-complex": (3, 64, "complex", 60),
           "3-500-complex": (3, 500, "complex", 20),
           "6-1-complex": (6, 1, "complex", 300), "6-1-real": (6, 1, "real", 300), "3-1-real": (3, 1, "real", 300)}
PREFIX = 30


def run(order, n_dirs, kind, steps):
    """Seconds of each step after the prefix (in this process)."""
    import numpy as np
    import taylorsketch as ts
    from taylorsketch import training
    setup = ts.paper.setup(seed=42)
    rng = np.random.default_rng(0)
    psi = rng.normal(size=(n_dirs, 1000)) + (1j * rng.normal(size=(n_dirs, 1000)) if kind == "complex" else 0)
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    weights = ts.Jet.from_directions(np.zeros(1000), psi, order)
    ticks = []
    train_steps = training.train_steps

    def timed_steps(*args, **kwargs):
        kwargs["on_step"] = lambda: ticks.append(time.perf_counter())
        return train_steps(*args, **kwargs)
    training.train_steps = timed_steps
    ts.train(setup.model(), setup.init, setup.docs[:1000], steps=PREFIX + steps, weights=weights,
             optimizer=ts.Adam(total_steps=1000), progress=False)
    return [b - a for a, b in zip(ticks[PREFIX - 1:], ticks[PREFIX:])]


def child(name, package_dir):
    env = dict(os.environ, PYTHONPATH=package_dir, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--child", name], env=env, capture_output=True, text=True,
                         check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="DIR", help="the other checkout (required unless --child)")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated configurations: " + ", ".join(CONFIGS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(*CONFIGS[args.child])))
        return
    if not args.baseline:
        parser.error("--baseline DIR is required")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    names = args.only.split(",") if args.only else list(CONFIGS)
    print("| configuration | steps timed | this checkout, median per step (each repeat) | baseline (each repeat) "
          "| speed-up (median of medians) |")
    print("|---|---|---|---|---|")
    for name in names:
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(statistics.median(child(name, here)))
            theirs.append(statistics.median(child(name, args.baseline)))
        mine, base = statistics.median(ours), statistics.median(theirs)
        order, n_dirs, kind, steps = CONFIGS[name]
        print(f"| order {order}, {n_dirs} {kind} direction{'s' * (n_dirs > 1)} | {steps} after {PREFIX} "
              f"| {mine * 1e3:.2f} ms ({', '.join(f'{t * 1e3:.1f}' for t in ours)}) "
              f"| {base * 1e3:.2f} ms ({', '.join(f'{t * 1e3:.1f}' for t in theirs)}) | {base / mine:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
