"""The validation study of the deletion estimators against retraining (docs/validation.md).

The paper's MicroGPT on its first ``n`` shuffled names (default 1,000), ``n``
training steps.  A panel of deletion sets: random sets of 1, 2, 5, 10, 20 and 50
documents (``--reps`` of each), and every set defined by a letter ("contains
x", "starts with b", "ends with l") that has at most 60 documents.  Four
measurements: the losses of two training documents, the loss on ``max`` (the
paper's) and a held-out name's log-probability.

Truth by retraining; the exact Taylor polynomials along each ``1_D`` from one
exact-direction jet training (order 6, all sets at once).  The estimators:

* exact linear: ``c_0 + c_1`` along ``1_D`` (the best any first-order method does);
* exact degree 3 and 6 (the best a degree-K method does);
* sketch: the paper's estimator, M random complex directions, order 3;
* sum: the documents' own leave-one-out series, summed (order 6);
* additive 3 / additive 6: the parameter-additive model;
* residual: additive 6 plus the random sketch of what it leaves out (orders <= 3),
  and "residual 2": the same with the residual's order 2 only.

For each, per set-size bucket: mean |error|, mean stated standard error and
2-s.e. coverage (also with the truncation estimate added to the residual's
standard error); over the whole panel: Spearman's rank correlation of predicted
against retrained changes; and the costs.  Unbiasedness of the residual
estimator: the M directions split into groups, z-scores against the exact
polynomial it estimates.

Expensive pieces (the three jet trainings, the retrainings) are kept in
``--cache`` (default ``results/validation``) and reused when present.

    python benchmarks/bench_validation.py                         # paper scale: ~30-40 min on 2 cores
    python benchmarks/bench_validation.py --n 200 --reps 6        # a few minutes
    python benchmarks/bench_validation.py --write docs/validation.md --plot docs/validation/scatter.png
"""

import argparse
import json
import math
import os
import string
import time

import numpy as np
from scipy.stats import spearmanr

import taylorsketch as ts

from _common import format_seconds, median_seconds

BUCKETS = [(1, 2), (3, 7), (8, 25), (26, 60)]
ESTIMATORS = ["exact linear", "exact 3", "exact 6", "sketch", "sum", "additive 3", "additive 6",
              "residual", "residual 2"]
SAMPLED = ["sketch", "residual", "residual 2", "residual + truncation"]


def panel(docs, reps, seed=1):
    """(name, indices) of every deletion set of the study."""
    rng = np.random.default_rng(seed)
    sets = [(f"random {size} #{k}", np.sort(rng.choice(len(docs), size, replace=False)))
            for size in (1, 2, 5, 10, 20, 50) for k in range(reps)]
    tests = {"contains": lambda d, c: c in d, "starts with": str.startswith, "ends with": str.endswith}
    for how, test in tests.items():
        for c in string.ascii_lowercase:
            ids = np.array([i for i, d in enumerate(docs) if test(d, c)], dtype=int)
            if 1 <= len(ids) <= 60:
                sets.append((f"{how} {c}", ids))
    return sets


def cached(path, build):
    """A Sketch kept at ``path`` (and its build time beside it, in ``path.json``),
    built and saved when absent; returns ``(sketch, seconds)``."""
    if os.path.exists(path) and os.path.exists(path + ".json"):
        with open(path + ".json") as f:
            return ts.Sketch.load(path), json.load(f)["seconds"]
    start = time.perf_counter()
    sketch = build()
    seconds = time.perf_counter() - start
    sketch.save(path)
    with open(path + ".json", "w") as f:
        json.dump({"seconds": seconds}, f)
    return sketch, seconds


def retrained(cache, tag, model, s, docs, sets, measures):
    """The measurements after retraining with each set deleted, ``(sets, measures)``,
    kept in ``cache`` and reused when present."""
    path = f"{cache}/{tag}_truth{len(sets)}.json"
    if os.path.exists(path):
        with open(path) as f:
            return np.array(json.load(f))
    start = time.perf_counter()
    trained = [ts.retrain(model, s.init, docs, ids) for _, ids in sets]
    truth = np.array([[float(phi(p)) for phi in measures] for p in trained])
    print(f"retraining {len(sets)} sets: {format_seconds(time.perf_counter() - start)}")
    with open(path, "w") as f:
        json.dump(truth.tolist(), f)
    return truth


def study(n, reps):
    """The study's set-up: ``(setup, model, docs, measures, sets, indicators)`` for the
    first ``n`` names and ``reps`` random sets of each size."""
    s = ts.paper.setup()
    model = ts.MicroGPT(s.vocab)
    docs = s.docs[:n]
    held_out = s.docs[5000]
    measures = [ts.measure.doc_loss(model, docs[17]), ts.measure.doc_loss(model, docs[n // 2]),
                ts.measure.doc_loss(model, "max"), ts.measure.logprob(model, held_out[:2], held_out[2:] + "$")]
    sets = panel(docs, reps)
    indicators = np.zeros((len(sets), len(docs)))
    for k, (_, ids) in enumerate(sets):
        indicators[k, ids] = 1.0
    return s, model, docs, measures, sets, indicators


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="training documents (and steps)")
    ap.add_argument("--reps", type=int, default=12, help="random sets of each size")
    ap.add_argument("--directions", type=int, default=500, help="random directions of the sketch")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cache", default="results/validation")
    ap.add_argument("--write", help="write the report's tables into this markdown file (between its markers)")
    ap.add_argument("--plot", help="write the scatter plot of predicted against retrained changes here")
    ap.add_argument("--json", help="write every number here")
    args = ap.parse_args()

    s, model, docs, measures, sets, indicators = study(args.n, args.reps)
    print(f"{len(sets)} deletion sets, {len(measures)} measurements, n = {len(docs)}")

    os.makedirs(args.cache, exist_ok=True)
    tag = f"n{args.n}"
    per, t_per = cached(f"{args.cache}/{tag}_documents6.npz", lambda: ts.precompute(
        model, s.init, docs, order=6, directions="documents", workers=args.workers))
    print(f"per-document jets, order 6: {format_seconds(t_per)}")
    sketch, t_sketch = cached(f"{args.cache}/{tag}_random{args.directions}.npz", lambda: ts.precompute(
        model, s.init, docs, order=3, directions=args.directions, seed=0, workers=args.workers))
    print(f"random sketch, order 3, M = {args.directions}: {format_seconds(t_sketch)}")
    exact, t_exact = cached(f"{args.cache}/{tag}_exact{len(sets)}.npz", lambda: ts.precompute(
        model, s.init, docs, order=6, directions=indicators, workers=args.workers))
    print(f"exact directions, order 6, {len(sets)} sets: {format_seconds(t_exact)}")
    truth = retrained(args.cache, tag, model, s, docs, sets, measures)

    rows = []
    for m, phi in enumerate(measures):
        ex = exact.coefficients(phi).real                                             # (sets, 7)
        for k, (name, ids) in enumerate(sets):
            p = {"sketch": sketch.predict(phi, ids, method="sketch"),
                 "sum": per.predict(phi, ids, method="sum"),
                 "additive 3": per.predict(phi, ids, degree=3),
                 "additive 6": per.predict(phi, ids),
                 "residual": sketch.predict(phi, ids, documents=per),
                 "residual 2": sketch.predict(phi, ids, documents=per, degree=2)}
            row = {"set": name, "size": len(ids), "measure": phi.name, "truth": truth[k, m], "base": ex[k, 0],
                   "exact linear": (ex[k, :2].sum(), 0.0), "exact 3": (ex[k, :4].sum(), 0.0),
                   "exact 6": (ex[k].sum(), 0.0)}
            row.update({key: (pred.value, pred.stderr) for key, pred in p.items()})
            row["residual + truncation"] = (p["residual"].value,
                                            math.hypot(p["residual"].stderr, p["residual"].truncation))
            # what the residual estimator is unbiased for: the exact degree-3 polynomial plus
            # the additive model's orders 4..6
            row["residual expected"] = ex[k, :4].sum() + p["additive 6"].terms[3:].sum()
            rows.append(row)
    report = summarise(rows)
    report["unbiasedness"] = unbiasedness(sketch, per, measures, sets, rows)
    report["costs"] = costs(per, sketch, measures, sets, t_per, t_sketch, t_exact)
    report["panel"] = {"sets": len(sets), "measures": [phi.name for phi in measures], "n_docs": len(docs),
                       "directions": args.directions}
    text = format_report(report)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"report": report, "rows": rows}, f, indent=1, default=float)
    if args.write:
        write_section(args.write, text)
    if args.plot:
        plot(rows, args.plot)


def summarise(rows):
    out = {"buckets": {}, "spearman": {}, "coverage": {}}
    keys = ESTIMATORS + ["residual + truncation"]
    for lo, hi in BUCKETS:
        sel = [r for r in rows if lo <= r["size"] <= hi]
        if not sel:
            continue
        out["buckets"][f"{lo}-{hi}"] = {
            "cases": len(sel),
            **{key: {"error": float(np.mean([abs(r[key][0] - r["truth"]) for r in sel])),
                     "stderr": float(np.mean([r[key][1] for r in sel])),
                     "coverage": float(np.mean([abs(r[key][0] - r["truth"]) <= 2 * r[key][1] for r in sel]))}
               for key in keys}}
    truth = np.array([r["truth"] - r["base"] for r in rows])
    for key in keys:
        out["spearman"][key] = float(spearmanr([r[key][0] - r["base"] for r in rows], truth).statistic)
        out["coverage"][key] = float(np.mean([abs(r[key][0] - r["truth"]) <= 2 * r[key][1] for r in rows]))
    return out


def unbiasedness(sketch, per, measures, sets, rows, groups=10):
    """z-scores of the residual estimate from independent groups of directions against
    the polynomial it estimates."""
    z = []
    for g in np.array_split(np.arange(sketch.n_directions), groups):
        sub = ts.Sketch(sketch.model, sketch.primal, sketch.series[:, g], sketch.directions[g],
                        sketch.direction_ids[g], sketch.meta)
        for m, phi in enumerate(measures):
            for k, (_, ids) in enumerate(sets):
                if len(ids) < 2:
                    continue               # exact: no sampling error at all
                p = sub.predict(phi, ids, documents=per)
                z.append((p.value - rows[m * len(sets) + k]["residual expected"]) / p.stderr)
    z = np.array(z)
    return {"groups": groups, "directions_per_group": sketch.n_directions // groups, "cases": len(z),
            "mean_z": float(z.mean()), "std_z": float(z.std(ddof=1)),
            "mean_z_stderr": float(z.std(ddof=1) / math.sqrt(len(z))),
            "within_2": float(np.mean(np.abs(z) <= 2))}


def costs(per, sketch, measures, sets, t_per, t_sketch, t_exact):
    phi = measures[2]
    ids = sets[len(sets) // 2][1]
    per.coefficients(phi)
    sketch.predict(phi, ids, documents=per)
    return {"precompute_seconds": {"documents, order 6": t_per, "random, order 3": t_sketch,
                                   f"exact directions, order 6, {len(sets)} sets": t_exact},
            "storage_bytes": {"documents, order 6": per.series.nbytes, "random, order 3": sketch.series.nbytes},
            "predict_seconds": {
                "sketch": median_seconds(lambda: sketch.predict(phi, ids, method="sketch")),
                "additive": median_seconds(lambda: per.predict(phi, ids)),
                "sum": median_seconds(lambda: per.predict(phi, ids, method="sum")),
                "residual": median_seconds(lambda: sketch.predict(phi, ids, documents=per))},
            "set_size_timed": len(ids)}


def format_report(report):
    lines = ["### Mean |prediction - retrained| per set size", "",
             "| set size (cases) | " + " | ".join(ESTIMATORS) + " |",
             "|---|" + "---|" * len(ESTIMATORS)]
    for bucket, row in report["buckets"].items():
        lines.append(f"| {bucket} ({row['cases']}) | " + " | ".join(f"{row[k]['error']:.1e}" for k in ESTIMATORS) + " |")
    lines += ["", "### Ratio to the exact linear surrogate's error (the issue's target: at most 0.2)", "",
              "| set size | " + " | ".join(ESTIMATORS[1:]) + " |", "|---|" + "---|" * (len(ESTIMATORS) - 1)]
    for bucket, row in report["buckets"].items():
        base = row["exact linear"]["error"]
        lines.append(f"| {bucket} | " + " | ".join(f"{row[k]['error'] / base:.2f}" for k in ESTIMATORS[1:]) + " |")
    lines += ["", "### Stated standard error and 2-s.e. coverage (the estimators with sampling error)", "",
              "| set size | " + " | ".join(f"{k}: s.e. / coverage" for k in SAMPLED) + " |",
              "|---|" + "---|" * len(SAMPLED)]
    for bucket, row in report["buckets"].items():
        lines.append(f"| {bucket} | " + " | ".join(
            f"{row[k]['stderr']:.1e} / {100 * row[k]['coverage']:.0f} %" for k in SAMPLED) + " |")
    lines.append("| all | " + " | ".join(f"/ {100 * report['coverage'][k]:.0f} %" for k in SAMPLED) + " |")
    lines += ["", "### Spearman rank correlation of predicted against retrained changes (whole panel)", "",
              "| " + " | ".join(ESTIMATORS) + " |", "|" + "---|" * len(ESTIMATORS),
              "| " + " | ".join(f"{report['spearman'][k]:.3f}" for k in ESTIMATORS) + " |"]
    u = report["unbiasedness"]
    lines += ["", "### Unbiasedness of the residual estimator", "",
              f"{u['groups']} independent groups of {u['directions_per_group']} directions, {u['cases']} "
              f"(group, measurement, set) cases with at least two documents: z-scores against the polynomial "
              f"it estimates have mean {u['mean_z']:+.3f} (+- {u['mean_z_stderr']:.3f}), standard deviation "
              f"{u['std_z']:.3f}, and {100 * u['within_2']:.1f} % lie within +-2."]
    c = report["costs"]
    lines += ["", "### Costs", "", "| what | time | storage |", "|---|---|---|"]
    for key, seconds in c["precompute_seconds"].items():
        size = c["storage_bytes"].get(key)
        lines.append(f"| precompute: {key} | {format_seconds(seconds)} | "
                     f"{'' if size is None else f'{size / 2 ** 20:.0f} MiB'} |")
    for key, seconds in c["predict_seconds"].items():
        lines.append(f"| predict one set of {c['set_size_timed']} ({key}), coefficients known | "
                     f"{format_seconds(seconds)} | |")
    return "\n".join(lines)


def write_section(path, text, script="bench_validation.py"):
    """Replace what lies between the two ``<!-- script output -->`` lines of ``path``."""
    marker = f"<!-- {script} output -->"
    with open(path) as f:
        page = f.read()
    if page.count(marker) != 2:
        raise SystemExit(f"{path} needs two '{marker}' lines around the generated section")
    head, _, tail = page.split(marker)
    with open(path, "w") as f:
        f.write(head + marker + "\n" + text + "\n" + marker + tail)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown = ["exact linear", "sketch", "sum", "additive 6", "residual", "exact 6"]
    fig, axes = plt.subplots(2, 3, figsize=(12, 8), sharex=True, sharey=True)
    truth = np.array([r["truth"] - r["base"] for r in rows])
    sizes = np.array([r["size"] for r in rows])
    lim = 1.1 * np.abs(truth).max()
    for ax, key in zip(axes.ravel(), shown):
        pred = np.array([r[key][0] - r["base"] for r in rows])
        err = np.array([2 * r[key][1] for r in rows])
        sc = ax.scatter(truth, pred, c=np.log2(sizes), s=12, cmap="viridis")
        if np.any(err > 0):
            ax.errorbar(truth, pred, yerr=err, fmt="none", lw=0.4, alpha=0.3, color="gray")
        ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{key}  (Spearman {spearmanr(pred, truth).statistic:.3f})")
    for ax in axes[-1]:
        ax.set_xlabel("retrained change")
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted change (2 s.e. bars)")
    fig.colorbar(sc, ax=axes, label="log2 |D|")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
