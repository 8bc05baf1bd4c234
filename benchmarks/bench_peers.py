"""Jet training against a peer: the same training written in ``jax.experimental.jet``.

The paper's set-up (``ts.paper.setup()``, MicroGPT, the first 1,000 documents, one
document per step, loss weighted by ``1 - w_i``, the paper's Adam with eps inside the
square root and linear learning-rate decay) written in JAX for this benchmark: a
jit-compiled training step (forward pass, ``jax.grad`` for the backward, the paper's
Adam) differentiated in Taylor mode with ``jax.experimental.jet.jet`` along the loss
weights ``w = t psi``, the directions vmapped over one shared primal.  JAX's jet has no
rule for loops (``scan``, ``while``), so the training is a Python loop of jitted jet
steps, as taylorsketch's is; the state (parameters, Adam's ``m`` and ``v``) is carried
as jets from step to step.  A document's length is a shape to XLA, and one compile per
length takes 10-30 s at order 3 on this machine, so every document is padded (zero
one-hot rows, no targets: exact zeros in the loss and the gradient) to the longest of
the steps run and one step is compiled, ahead of time and timed separately.  JAX thus
computes more positions per step than the document has (the table gives both).

First a correctness check: a small case (20 steps, order 3, 2 real directions) in
both, float64, the largest difference of the trained parameters' Taylor coefficients
relative to their size.  Then, for each (order, directions), one child process per
side (so that a compile that does not finish can be stopped), ``--rounds`` times in
turn: time per training step (every step timed on its own, the median over a run's
steps, then over the runs of every round) on both sides, and their ratio.  Directions
are real unit vectors on both sides (see ``complex_check``: JAX's jet does not take
complex tangents on real primals).

Optional: skipped with a message when jax is not installed (``pip install jax jaxlib``;
jax is not a dependency of taylorsketch).  Each side's process pins itself to one core
(the first one it may use; ``taskset`` chooses which):

    python benchmarks/bench_peers.py
    python benchmarks/bench_peers.py --write docs/performance.md
    python benchmarks/bench_peers.py --only 3-64 --rounds 3   # one configuration (not for --write)
"""

import argparse
import datetime
import json
import math
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from _common import format_seconds, load_text, machine, publish

SECTION = "## Peers: JAX's jet (benchmarks/bench_peers.py)"
N_DOCS = 1000
COMPILE_TIMEOUT = 180.0            # seconds for JAX to compile one configuration's steps
RUN_TIMEOUT = 300.0                # seconds for a side's timed runs after compiling
ONE_CORE = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}


@dataclass(frozen=True)
class Config:
    order: int
    n_directions: int
    steps: int                     # steps timed, the same on both sides
    repeats: int
    prefix: int = 0                # steps run before the timed ones (taylorsketch's side)

    @property
    def name(self):
        return f"{self.order}-{self.n_directions}"


# the prefix puts taylorsketch's timed steps after the first step of each document length,
# which runs eagerly and is recorded (taylorsketch.plan): the steps timed are replayed ones, as
# nearly all of a 1,000-step run are.  The 100-step rows are replayed already from step 30 on.
CONFIGS = [Config(3, 1, 100, 5), Config(3, 64, 30, 5, prefix=30), Config(3, 500, 10, 3, prefix=30),
           Config(6, 1, 100, 5), Config(20, 4, 20, 3)]


def have_jax():
    try:
        import jax  # noqa: F401
        import jax.experimental.jet  # noqa: F401
    except ImportError:
        return False
    return True


def directions(n_directions, n_docs, seed=0):
    """Real unit directions (M, n)."""
    import numpy as np
    psi = np.random.default_rng(seed).normal(size=(n_directions, n_docs))
    return psi / np.linalg.norm(psi, axis=1, keepdims=True)


# -- the training in JAX ------------------------------------------------------------------------


class JaxTraining:
    """The paper's MicroGPT training step in JAX, and its jet along the loss weights."""

    def __init__(self, model, init, order, total_steps):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import numpy as np
        self.jax, self.jnp, self.np = jax, jnp, np
        c = model.config
        self.vocab, self.n_embd, self.n_head = c.vocab_size, c.n_embd, c.n_head
        self.shapes = model.param_shapes()
        self.offsets, start = {}, 0
        for name, shape in self.shapes.items():
            self.offsets[name] = (start, start + math.prod(shape))
            start += math.prod(shape)
        self.init = np.concatenate([np.ravel(init[name]) for name in self.shapes])
        self.order, self.total_steps = order, total_steps
        self.model = model
        self._compiled = {}

    def unflatten(self, flat):
        return {name: flat[a:b].reshape(self.shapes[name]) for name, (a, b) in self.offsets.items()}

    def loss(self, flat, onehot_in, onehot_target, inv_n):
        """Mean cross-entropy of one document under flat parameters: onehots (n, V) padded
        with zero rows to the compiled length, ``inv_n`` one over the document's positions.
        Padded positions come after the document's (causal attention: they do not change
        it) and have no target, so they add exact zeros to the loss and the gradient."""
        jnp, lax = self.jnp, self.jax.lax
        p = self.unflatten(flat)
        n = onehot_in.shape[0]
        H, d = self.n_head, self.n_embd // self.n_head

        def rmsnorm(x):
            return x * lax.rsqrt((x * x).mean(axis=-1, keepdims=True) + 1e-5)

        def softmax(x):
            e = jnp.exp(x - lax.stop_gradient(x.max(axis=-1, keepdims=True)))
            return e / e.sum(axis=-1, keepdims=True)

        x = rmsnorm(onehot_in @ p["wte"] + p["wpe"][:n])
        causal = jnp.tril(jnp.ones((n, n), dtype=bool))
        for i in range(self.model.config.n_layer):
            w = {k[len(f"layer{i}."):]: v for k, v in p.items() if k.startswith(f"layer{i}.")}
            h = rmsnorm(x)
            q, k, v = (h @ w[f"attn_w{s}"].T for s in "qkv")
            qh, kh, vh = (a.reshape(n, H, d).transpose(1, 0, 2) for a in (q, k, v))
            logits = jnp.where(causal, (qh @ kh.transpose(0, 2, 1)) * (1.0 / math.sqrt(d)), -jnp.inf)
            a = (softmax(logits) @ vh).transpose(1, 0, 2).reshape(n, H * d)
            x = x + a @ w["attn_wo"].T
            f = rmsnorm(x) @ w["mlp_fc1"].T
            g = f * 0.5 * (1.0 + lax.erf(f * (1.0 / math.sqrt(2.0))))
            x = x + g @ w["mlp_fc2"].T
        logits = x @ p["lm_head"].T
        shifted = logits - lax.stop_gradient(logits.max(axis=-1, keepdims=True))
        logp = shifted - jnp.log(jnp.exp(shifted).sum(axis=-1, keepdims=True))
        return -(logp * onehot_target).sum() * inv_n

    def step(self, params, m, v, weight, lr, bias1, bias2, onehot_in, onehot_target, inv_n):
        """One training step: gradient of ``(1 - w) loss``, the paper's Adam (eps in the sqrt)."""
        jnp = self.jnp
        g = self.jax.grad(lambda p: self.loss(p, onehot_in, onehot_target, inv_n) * (1.0 - weight))(params)
        beta1, beta2, eps = 0.85, 0.99, 1e-3
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * (g * g)
        params = params - lr * (m / bias1) / jnp.sqrt(v / bias2 + eps)
        return params, m, v

    def jet_step(self, primals, series, lr, bias1, bias2, onehot_in, onehot_target, inv_n):
        """The step's jet: primals (params, m, v, weight); series the same, each (K, M, ...)
        in JAX's convention (derivatives), directions vmapped around the shared primal."""
        from jax.experimental.jet import jet

        def step(p, m, v, w):
            return self.step(p, m, v, w, lr, bias1, bias2, onehot_in, onehot_target, inv_n)

        def one_direction(*terms):
            out, out_series = jet(step, primals, tuple(list(t) for t in terms))
            return out, tuple(self.jnp.stack(s) for s in out_series)

        return self.jax.vmap(one_direction, in_axes=1, out_axes=(None, 1))(*series)

    def compiled(self, n, n_directions):
        """The jitted jet step for documents padded to ``n`` positions (compiled once, ahead of time)."""
        key = (n, n_directions)
        if key not in self._compiled:
            np, K, P, V = self.np, self.order, len(self.init), self.vocab
            state = (np.zeros(P),) * 3 + (np.zeros(()),)
            series = (np.zeros((K, n_directions, P)),) * 3 + (np.zeros((K, n_directions)),)
            args = (state, series, 0.0, 1.0, 1.0, np.zeros((n, V)), np.zeros((n, V)), 1.0)
            self._compiled[key] = self.jax.jit(self.jet_step).lower(*args).compile()
        return self._compiled[key]

    def encode(self, docs, steps):
        """Per step: (onehot inputs, onehot targets, 1 / n), padded with zero rows to the
        longest document of the steps (one compiled step: a step per document length
        compiles for 10-30 s each at order 3)."""
        np = self.np
        tokens = [self.model.encode(docs[s % len(docs)]) for s in range(steps)]
        lengths = [min(self.model.config.block_size, len(t) - 1) for t in tokens]
        pad = max(lengths)
        out = []
        for t, n in zip(tokens, lengths):
            onehot_in, onehot_target = np.zeros((pad, self.vocab)), np.zeros((pad, self.vocab))
            onehot_in[np.arange(n), t[:n]] = 1.0
            onehot_target[np.arange(n), t[1:n + 1]] = 1.0
            out.append((onehot_in, onehot_target, 1.0 / n))
        return out

    def train(self, encoded, psi, on_step=None):
        """The jet training: trained parameters' primal (P,) and normalised series (K, M, P);
        ``on_step()`` after every step, once its result is computed (``block_until_ready``)."""
        np, jnp, K, M = self.np, self.jnp, self.order, len(psi)
        P = len(self.init)
        primals = (jnp.asarray(self.init), jnp.zeros(P), jnp.zeros(P))
        series = tuple(jnp.zeros((K, M, P)) for _ in range(3))
        weight_series = np.zeros((len(encoded), K, M))
        weight_series[:, 0, :] = psi[:, np.arange(len(encoded)) % psi.shape[1]].T      # w = t psi
        pad = encoded[0][0].shape[0]
        for s, (onehot_in, onehot_target, inv_n) in enumerate(encoded):
            lr = 0.01 * (1.0 - s / self.total_steps)
            bias1, bias2 = 1.0 - 0.85 ** (s + 1), 1.0 - 0.99 ** (s + 1)
            primals, series = self.compiled(pad, M)((*primals, np.zeros(())), (*series, weight_series[s]),
                                                    lr, bias1, bias2, onehot_in, onehot_target, inv_n)
            if on_step is not None:
                self.jax.block_until_ready((primals, series))
                on_step()
        factorials = np.array([math.factorial(k) for k in range(1, K + 1)])[:, None, None]
        primals[0].block_until_ready()
        return np.asarray(primals[0]), np.asarray(series[0]) / factorials


# -- the two sides --------------------------------------------------------------------------------


def taylorsketch_coefficients(setup, order, psi, steps):
    import taylorsketch as ts
    sketch = ts.precompute(setup.model(), setup.init, setup.docs[:N_DOCS], order=order, directions=psi,
                           steps=steps, progress=False)
    return sketch.primal, sketch.series


def correctness(steps=20, order=3, n_directions=2):
    """Largest difference of the coefficients, relative to the largest coefficient of each order."""
    import numpy as np
    import taylorsketch as ts
    setup = ts.paper.setup()
    psi = directions(n_directions, N_DOCS)
    p_ts, s_ts = taylorsketch_coefficients(setup, order, psi, steps)
    jax_side = JaxTraining(setup.model(), setup.init, order, steps)
    p_jax, s_jax = jax_side.train(jax_side.encode(setup.docs[:N_DOCS], steps), psi)
    rel = [float(np.abs(p_jax - p_ts).max() / np.abs(p_ts).max())]
    rel += [float(np.abs(s_jax[k] - s_ts[k]).max() / np.abs(s_ts[k]).max()) for k in range(order)]
    return rel


def complex_check():
    """Does JAX's jet take complex tangents around a real primal? (``None`` if yes, else the error.)"""
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.experimental.jet import jet
    try:
        _, (s,) = jet(lambda x: jnp.sin(x) * x, (jnp.ones(3),), ((jnp.ones(3) * (1 + 1j),),))
        return None if jnp.iscomplexobj(s[0]) else "the complex tangent came back real"
    except Exception as err:                   # noqa: BLE001 -- report whatever JAX raises
        return f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"


def pin_to_one_core():
    """Pin this process (and the threads it starts) to one CPU of those it may use.

    The thread settings of ``ONE_CORE`` leave XLA's own thread pools alone: unpinned,
    JAX's side ran up to twice as fast when the second core was idle as when it was busy.
    """
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def run_side(side, config, report):
    """One side of one configuration, in a child process; ``report(dict)`` prints a JSON line."""
    pin_to_one_core()
    import taylorsketch as ts
    setup = ts.paper.setup()
    psi = directions(config.n_directions, N_DOCS)
    docs = setup.docs[:N_DOCS]
    prefix = config.prefix
    if side == "taylorsketch":
        from taylorsketch import training
        train_steps = training.train_steps

        def run(steps, on_step):
            # precompute trains the directions in batches (of 128), each batch every step:
            # a step of all the directions is the sum of the batches' steps
            def timed_steps(*args, **kwargs):
                ticks = []
                kwargs["on_step"] = lambda: ticks.append(time.perf_counter())
                try:
                    return train_steps(*args, **kwargs)
                finally:
                    on_step(ticks)
            training.train_steps = timed_steps
            try:
                taylorsketch_coefficients(setup, config.order, psi, prefix + steps)
            finally:
                training.train_steps = train_steps
    else:
        # the same documents as taylorsketch's timed steps; JAX's cost per step does not depend
        # on the state it starts from, so its runs start at the prefix's end from the initial one
        jax_side = JaxTraining(setup.model(), setup.init, config.order, config.steps)
        encoded = jax_side.encode(docs[prefix:], config.steps)
        prefix = 0
        start = time.perf_counter()
        pad = encoded[0][0].shape[0]
        jax_side.compiled(pad, config.n_directions)
        mean_n = statistics.mean(1.0 / inv_n for _, _, inv_n in encoded)
        report({"compile": time.perf_counter() - start, "pad": pad, "mean_n": mean_n})

        def run(steps, on_step):
            ticks = []
            jax_side.train(encoded[:steps], psi, lambda: ticks.append(time.perf_counter()))
            on_step(ticks)
    run(2, lambda ticks: None)                      # warm-up (numba kernels, caches)
    per_step = []
    for _ in range(config.repeats):                 # every step timed on its own, after the prefix
        runs = []                                   # the ticks of each training loop (batch)
        run(config.steps, runs.append)
        per_step.append(sum(statistics.median([b - a for a, b in zip(ticks, ticks[1:])][max(prefix - 1, 0):])
                            for ticks in runs))
    report({"per_step": per_step})


def _merged(results):
    """One side's results of several rounds: every round's per-step medians together, the
    first round's other entries (a round that failed gives its error, if none timed)."""
    timed = [r for r in results if "per_step" in r]
    if not timed:
        return results[0]
    return {**timed[0], "per_step": [t for r in timed for t in r["per_step"]]}


def child(side, config):
    """Run one side in a child process; its result, or ``{"error": ...}`` on a timeout or failure."""
    env = dict(os.environ, **ONE_CORE)
    proc = subprocess.Popen([sys.executable, __file__, "--side", side, "--config", config.name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)],
                     daemon=True).start()
    result, deadline = {}, time.monotonic() + (COMPILE_TIMEOUT if side == "jax" else RUN_TIMEOUT)
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            proc.kill()
            proc.wait()
            phase = "compile" not in result and side == "jax"
            result["error"] = (f"did not compile in {COMPILE_TIMEOUT:.0f} s" if phase
                               else f"did not finish in {RUN_TIMEOUT:.0f} s")
            return result
        if line is None:
            break
        if line.startswith("{"):
            result.update(json.loads(line))
            if "compile" in result and "per_step" not in result:
                deadline = time.monotonic() + RUN_TIMEOUT
    if proc.wait() != 0:
        result["error"] = "failed: " + proc.stderr.read().strip().splitlines()[-1][:200]
    return result


# -- the report ------------------------------------------------------------------------------------


def table(results):
    lines = ["| order, directions | steps timed | taylorsketch per step | JAX jet per step | "
             "JAX / taylorsketch | JAX compile | JAX positions (documents' mean) |",
             "|---|---|---|---|---|---|---|"]
    for config in CONFIGS:
        ours, theirs = results[config.name]
        ts_step = statistics.median(ours["per_step"]) if "per_step" in ours else None
        jax_step = statistics.median(theirs["per_step"]) if "per_step" in theirs else None
        ratio = f"{jax_step / ts_step:.2f}" if ts_step and jax_step else "-"
        compile_ = format_seconds(theirs["compile"]) if "compile" in theirs else theirs.get("error", "-")
        positions = f"{theirs['pad']} ({theirs['mean_n']:.1f})" if "pad" in theirs else "-"
        after = f" after {config.prefix}" if config.prefix else ""
        repeats = len(ours.get("per_step", ())) or config.repeats
        lines.append(f"| {config.order}, {config.n_directions} | {config.steps}{after} x {repeats} | "
                     f"{format_seconds(ts_step) if ts_step else ours.get('error', '-')} | "
                     f"{format_seconds(jax_step) if jax_step else theirs.get('error', '-')} | "
                     f"{ratio} | {compile_} | {positions} |")
    return "\n".join(lines)


def report(check, complex_error, results, load_before, load_after, elapsed):
    import jax
    orders = ", ".join(f"{r:.1e}" for r in check)
    complex_text = ("JAX's jet does not take complex tangents around real primals "
                    f"(`{complex_error}`), so both sides run real unit directions "
                    "(taylorsketch's random sketch uses complex ones, at about twice the arithmetic)."
                    if complex_error else
                    "JAX's jet accepted complex tangents; both sides still run real unit directions.")
    return "\n".join([
        SECTION, "",
        f"Run on {datetime.date.today().isoformat()} on {machine()}, jax {jax.__version__}; "
        "every process pinned to one core (`sched_setaffinity`; NUMBA_NUM_THREADS=1, one BLAS thread, "
        "`--xla_cpu_multi_thread_eigen=false`).",
        load_text(load_before, load_after, elapsed),
        "The same training on both sides: the paper's set-up, the first 1,000 documents, the same "
        "steps (fewer than 1,000, for time; the learning rate decays over the steps run), "
        "float64. taylorsketch: `ts.precompute(model, init, docs, order=K, directions=psi, steps=s)`. "
        "JAX: a jitted step (forward, `jax.grad`, the paper's Adam) under "
        "`jax.experimental.jet.jet` along the loss weights, directions vmapped around one shared "
        "primal; JAX's jet has no rule for `scan`/`while`, so both trainings are Python loops of "
        "steps. One compile per document length would take 10-30 s each, so JAX's step is "
        "compiled once (ahead of time, timed apart, limit "
        f"{COMPILE_TIMEOUT:.0f} s per configuration) for documents padded to the longest of the "
        "steps (padded positions add exact zeros; JAX computes them all the same). Every step is "
        "timed on its own (JAX's until its result is ready), and the time of a step is the median "
        "over a run's steps (one-time costs such as encoding the documents and allocating the jets, "
        "and bursts of the host's load, left out; taylorsketch trains 128 directions at a time, and "
        "its step is the sum of the batches' medians), then the median of the repeats; \"after p\": "
        "taylorsketch runs p steps first and both sides time documents p+1 onwards, so that "
        "taylorsketch's timed steps are replayed ones (`taylorsketch.plan`), as nearly all of a full "
        "run are; \"JAX / taylorsketch\" above 1 means taylorsketch is faster.",
        "",
        f"Correctness (20 steps, order 3, 2 real directions): the largest difference between the "
        f"two sides' trained parameters, relative to the largest value of each coefficient "
        f"(primal, orders 1..3): {orders}.",
        complex_text, "",
        table(results), ""])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="PATH", help="add or replace this section in a markdown file")
    parser.add_argument("--side", choices=["taylorsketch", "jax"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--check-only", action="store_true", help="only the correctness check")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="run the two sides' child processes N times in turn (default 1)")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated configurations (order-directions): "
                        + ", ".join(c.name for c in CONFIGS))
    args = parser.parse_args()
    if args.only and args.write:
        parser.error("--write replaces the whole section: run every configuration")
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - {c.name for c in CONFIGS})
        if unknown:
            parser.error(f"unknown configurations {unknown}; known: {[c.name for c in CONFIGS]}")
        CONFIGS[:] = [c for c in CONFIGS if c.name in names]
    if not have_jax():
        print("bench_peers: jax is not installed (pip install jax jaxlib); skipped.")
        return
    if args.side:
        config = {c.name: c for c in CONFIGS}[args.config]
        run_side(args.side, config, lambda d: print(json.dumps(d), flush=True))
        return
    for key, value in ONE_CORE.items():
        os.environ.setdefault(key, value)
    load_before, start = os.getloadavg()[0], time.perf_counter()
    check = correctness()
    print(f"correctness: max relative difference (primal, orders 1..3): {check}", file=sys.stderr)
    if max(check) > 1e-7:
        raise SystemExit(f"bench_peers: the two sides disagree ({max(check):.1e}); no timings")
    if args.check_only:
        return
    complex_error = complex_check()
    results = {}
    for config in CONFIGS:
        print(f"running order {config.order}, {config.n_directions} directions ...", file=sys.stderr, flush=True)
        rounds = []
        for _ in range(args.rounds):
            ours = child("taylorsketch", config)
            # a compile that did not finish in time will not in the next round either
            failed = rounds and "did not compile" in rounds[0][1].get("error", "")
            rounds.append((ours, rounds[0][1] if failed else child("jax", config)))
        results[config.name] = tuple(_merged([r[side] for r in rounds]) for side in (0, 1))
        print(f"  {results[config.name]}", file=sys.stderr, flush=True)
    text = report(check, complex_error, results, load_before, os.getloadavg()[0], time.perf_counter() - start)
    publish(text, args.write, SECTION)


if __name__ == "__main__":
    main()
