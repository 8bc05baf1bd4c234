"""Reproduction of the paper's three MicroGPT experiments (method.md section 5).

``run("all", preset="full")`` is the paper's scale; ``preset="quick"`` runs
the same pipeline on the same data (figure 2 is identical) with order 32 and
2 directions for figure 1 and 64 directions for figure 3, in about two
minutes on 2 cores.  Each figure
writes ``figN.json`` (every number, the configuration, the package version,
timings) and ``figN.png``; ``all`` also writes ``report.md``, which sets each
claim of the paper beside what was measured.
"""

import json
import os
import sys
import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import __version__, measure, paper
from ._io import write_json, write_text
from .presets import DELETE_CONTAINS, FIGURES, MEASURE_DOC, PAPER_LOSS_MAX, PRESETS, T_GRID
from .report import plot, report, summary
from .deletion import deletion_indicator
from .precomputation import precompute
from .progress import Bar, format_duration, shown
from .training import retrain

class ReproductionError(ValueError):
    """A reproduction that cannot start: unknown figure or preset, an unwritable folder."""


@dataclass
class Context:
    """What the figures share within one run: data, model, and the retrained truth."""

    preset: str
    config: dict
    workers: int
    docs: list
    model: object
    init: dict
    progress: object
    truth: dict = None
    figure: str = ""        # "fig2 (2/3)": where the run is, shown before each bar

    def bar(self):
        """A bar for one long call of the current figure (its summary is the figure's line)."""
        return Bar(self.progress, prefix=f"{self.figure}: " if self.figure else "", summary=False)

    @cached_property
    def indicator(self):
        """``1_D`` for the documents containing 'x' (computed once)."""
        return deletion_indicator(self.docs, lambda d: DELETE_CONTAINS in d)

    def measure(self):
        return measure.doc_loss(self.model, MEASURE_DOC)

    def retrain(self, t, progress=False):
        return retrain(self.model, self.init, self.docs, self.indicator.astype(bool), t,
                       steps=self.config["steps"], progress=progress)

    def true_curve(self):
        """Ordinary retraining with weights ``t 1_D`` for every t of the grid."""
        if self.truth is None:
            phi = self.measure()
            start = time.perf_counter()
            with self.bar() as bar:
                bar.start(len(T_GRID) * self.config["steps"], f"retraining, {len(T_GRID)} weights t", "step")
                values = [float(phi(self.retrain(t, bar))) for t in T_GRID]
            self.truth = {"t": T_GRID, "loss": values, "seconds": time.perf_counter() - start}
        return self.truth


def _is_paper_training(config):
    return config["n_docs"] == 1000 and config["steps"] == 1000


def _context(preset, progress, workers):
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    config = PRESETS[preset]
    s = paper.setup(seed=42)
    docs = s.docs[: config["n_docs"]]
    return Context(preset, config, workers, docs, s.model(), s.init, progress)


# ----------------------------------------------------------------------------
# the experiments


def fig1(ctx):
    """Stability: ``log2(sqrt(C(n+r-1, r)) |c_r|)`` for r = 1..K along random directions."""
    cfg = ctx.config["fig1"]
    doc = ctx.docs[cfg["doc_index"]]
    start = time.perf_counter()
    with ctx.bar() as bar:
        sketch = precompute(ctx.model, ctx.init, ctx.docs, order=cfg["order"], directions=cfg["directions"],
                            seed=cfg["seed"], steps=ctx.config["steps"], batch_size=cfg["batch_size"],
                            workers=ctx.workers, progress=bar)
    seconds = time.perf_counter() - start
    phi = measure.doc_loss(ctx.model, doc)
    with ctx.bar() as bar:
        sketch.coefficients(phi, progress=bar)
    st = sketch.stability(phi)
    curvatures = [float(np.polyfit(st.orders, row, 2)[0]) if np.all(np.isfinite(row)) else float("nan")
                  for row in st.per_direction]
    return {"figure": "fig1", "document": doc, "order": cfg["order"], "directions": cfg["directions"],
            "seed": cfg["seed"], "orders": st.orders.tolist(), "log2_norm": st.per_direction.tolist(),
            "log2_norm_combined": st.combined.tolist(), "curvature_combined": st.curvature,
            "curvature_per_direction": curvatures, "timings": {"precompute_seconds": seconds}}


def fig2(ctx):
    """Exact direction ``psi = 1_D``: truncations of degree 1..K against retraining."""
    cfg = ctx.config["fig2"]
    phi = ctx.measure()
    truth = ctx.true_curve()
    start = time.perf_counter()
    with ctx.bar() as bar:
        sketch = precompute(ctx.model, ctx.init, ctx.docs, order=cfg["order"], directions=ctx.indicator[None, :],
                            steps=ctx.config["steps"], progress=bar)
    coeffs = np.real(sketch.coefficients(phi, progress=False)[0])
    seconds = time.perf_counter() - start
    t = np.array(T_GRID)
    truncations = np.cumsum(coeffs[:, None] * t[None, :] ** np.arange(cfg["order"] + 1)[:, None], axis=0)
    errors = np.abs(truncations[1:, -1] - truth["loss"][-1])
    # fidelity: independent oracles for the jets, and the paper's check value
    h = cfg["fd_step"]
    g_plus, g_minus = float(phi(ctx.retrain(h))), float(phi(ctx.retrain(-h)))
    fd_c1 = (g_plus - g_minus) / (2 * h)
    fd_c2 = (g_plus - 2 * truth["loss"][0] + g_minus) / (2 * h * h)
    return {"figure": "fig2", "deleted": [i for i, d in enumerate(ctx.docs) if DELETE_CONTAINS in d],
            "measure": phi.name, "order": cfg["order"], "coefficients": coeffs.tolist(),
            "t": T_GRID, "true_loss": truth["loss"], "truncations": truncations.tolist(),
            "error_at_t1": errors.tolist(),
            "checks": {"paper_loss_max": PAPER_LOSS_MAX if _is_paper_training(ctx.config) else None,
                       "loss_max_t0": truth["loss"][0],
                       "primal_equals_plain_training": abs(coeffs[0] - truth["loss"][0]),
                       "fd_step": h, "fd_c1": fd_c1, "fd_c2": fd_c2,
                       "c1_rel_diff": abs(coeffs[1] - fd_c1) / abs(fd_c1),
                       "c2_rel_diff": abs(coeffs[2] - fd_c2) / abs(fd_c2)},
            "timings": {"retrain_seconds": truth["seconds"], "jets_seconds": seconds}}


def fig3(ctx):
    """The sketch: degree-1..K predictions over t with one-standard-error bands."""
    cfg = ctx.config["fig3"]
    phi = ctx.measure()
    truth = ctx.true_curve()
    start = time.perf_counter()
    with ctx.bar() as bar:
        sketch = precompute(ctx.model, ctx.init, ctx.docs, order=cfg["order"], directions=cfg["directions"],
                            seed=cfg["seed"], steps=ctx.config["steps"], batch_size=cfg["batch_size"],
                            workers=ctx.workers, progress=bar)
    seconds = time.perf_counter() - start
    with ctx.bar() as bar:
        exact = precompute(ctx.model, ctx.init, ctx.docs, order=cfg["order"], directions=ctx.indicator[None, :],
                           steps=ctx.config["steps"], progress=bar)
    exact_coeffs = np.real(exact.coefficients(phi, progress=False)[0])
    t = np.array(T_GRID)
    deleted = np.flatnonzero(ctx.indicator)
    start = time.perf_counter()
    with ctx.bar() as bar:
        sketch.coefficients(phi, progress=bar)
    curves = {}
    for degree in range(1, cfg["order"] + 1):
        p = sketch.predict(phi, deleted, degree=degree, t=t)
        curves[degree] = {"value": np.asarray(p.value).tolist(), "stderr": np.asarray(p.stderr).tolist()}
    predict_seconds = time.perf_counter() - start
    final = curves[cfg["order"]]
    exact_poly = np.polyval(exact_coeffs[::-1], t)
    # at t = 0 the prediction is c_0 itself, exact to rounding, with zero standard error
    rounding = 1e-12 * np.abs(truth["loss"])
    within_band = np.abs(np.array(final["value"]) - truth["loss"]) <= np.array(final["stderr"]) + rounding
    z_exact = (np.array(final["value"]) - exact_poly)[1:] / np.array(final["stderr"])[1:]
    z_truth = (np.array(final["value"]) - truth["loss"])[1:] / np.array(final["stderr"])[1:]
    return {"figure": "fig3", "measure": phi.name, "order": cfg["order"], "directions": cfg["directions"],
            "seed": cfg["seed"], "t": T_GRID, "true_loss": truth["loss"],
            "predicted": {str(k): v for k, v in curves.items()},
            "exact_coefficients": exact_coeffs.tolist(), "exact_polynomial": exact_poly.tolist(),
            "truth_within_one_stderr": within_band.tolist(),
            "z_vs_exact_polynomial": z_exact.tolist(), "z_vs_truth": z_truth.tolist(),
            "timings": {"precompute_seconds": seconds, "predict_seconds": predict_seconds}}


EXPERIMENTS = {"fig1": fig1, "fig2": fig2, "fig3": fig3}


# ----------------------------------------------------------------------------
# orchestration


def _completed(path, preset, config):
    """A figure's earlier result, if it is complete and from the same preset and configuration."""
    try:
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    if result.get("preset") != preset or result.get("config") != config or result.get("version") != __version__:
        return None
    return result


def run(figure, preset="quick", out="results", progress=None, workers=2, resume=False, force=True):
    """Run one figure or ``"all"``; returns ``(json_data, text)`` for the CLI.

    ``workers`` processes train batches of directions in parallel; with
    ``resume``, a figure whose ``figN.json`` in ``out`` is complete and from the
    same preset, configuration and version is read instead of recomputed.
    ``force=False`` (the CLI without ``--force``) refuses to start when ``out``
    already holds files of an earlier run that would be overwritten.
    ``progress`` (as for :func:`taylorsketch.train`): each long call of a figure
    has its bar, prefixed with the figure (``fig3 (3/3): jet training, ...``);
    the figure's ``[figN done ...]`` line is its summary, and the run ends with
    one line naming the figures, the time and the folder.  With ``progress=False``
    only an interruption is reported on stderr.
    """
    if figure not in FIGURES + ("all",):
        raise ReproductionError(f"unknown figure {figure!r}; choose fig1, fig2, fig3 or all")
    if preset not in PRESETS:
        raise ReproductionError(f"unknown preset {preset!r}; choose quick or full")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise ReproductionError(f"cannot create output folder {out}: {err.strerror}") from None
    if not os.access(out, os.W_OK):
        raise ReproductionError(f"output folder {out} is not writable")
    names = FIGURES if figure == "all" else (figure,)
    if not force and not resume:
        written = [f"{name}.{ext}" for name in names for ext in ("json", "png")]
        written += ["report.md"] if figure == "all" else []
        existing = [name for name in written if os.path.lexists(os.path.join(out, name))]
        if existing:
            raise ReproductionError(f"{out} already holds {', '.join(existing)} of an earlier run; "
                                    f"--resume to continue it, or --force to overwrite")
    ctx = _context(preset, progress, workers)
    results, done = {}, []
    lines = [f"{'figure':6s}  {'time':>10s}  result", f"{'-' * 6}  {'-' * 10}  {'-' * 60}"]
    no_plots = False
    current = None
    started = time.perf_counter()
    try:
        for number, name in enumerate(names, 1):
            current = name
            ctx.figure = f"{name} ({number}/{len(names)})"
            path = os.path.join(out, f"{name}.json")
            result = _completed(path, preset, ctx.config) if resume else None
            if result is None:
                start = time.perf_counter()
                result = EXPERIMENTS[name](ctx)
                result["timings"]["total_seconds"] = time.perf_counter() - start
                result.update(preset=preset, config=ctx.config, version=__version__)
                write_json(path, result)
            else:
                _say(progress, f"[{name}] reusing the completed {path}")
            if not plot(result, os.path.join(out, f"{name}.png")):
                no_plots = True
            results[name] = result
            done.append(name)
            seconds = result["timings"]["total_seconds"]
            lines.append(f"{name:6s}  {seconds:8.1f} s  {summary(result).split(': ', 1)[1]}")
            _say(progress, f"[{name} done in {seconds:.1f} s] {summary(result)}")
        if figure == "all":
            write_text(os.path.join(out, "report.md"), report(results, preset))
    except KeyboardInterrupt:
        missing = [n for n in names if n not in done]
        print(f"interrupted during {current}: finished {done or 'none'} (their files in {out} are "
              f"complete); not finished: {missing}", file=sys.stderr)
        raise
    if no_plots:
        lines.append("matplotlib is not installed: numbers were written, plots were not "
                     "(pip install 'taylorsketch[plot]' or pip install matplotlib)")
    lines.append(f"results in {os.path.abspath(out)}")
    if shown(progress):
        print(f"reproduce {figure} ({preset} preset): {', '.join(done)} in "
              f"{format_duration(time.perf_counter() - started)}; wrote {os.path.abspath(out)}",
              file=sys.stderr, flush=True)
    return {"out": out, "figures": done, "results": results}, "\n".join(lines)


def _say(progress, line):
    """A line on stderr about the run's progress (none with ``progress=False``)."""
    if progress is not False:
        print(line, file=sys.stderr, flush=True)
