"""How much of the gap to the exact polynomial the interactions of each degree close.

On the validation study's panel (bench_validation.py: the paper's MicroGPT, 1,000
names, 116 deletion sets, 4 measurements, truth by retraining), the documents'
own order-6 series summed ("sum") is completed with the *exact* interaction
terms of the deletion set up to a degree ``r`` (the exact polynomial's
coefficient of degree ``r`` along ``1_D`` minus the documents' own ones).
These are oracles: they say what an exact pairwise (degree-2) interaction
model, which an adjoint sweep of training could give for arbitrary sets, or a
triple (degree-3) one would reach, before anyone builds it.

    python benchmarks/study_interaction_degree.py     # reuses bench_validation.py's cache
"""

import argparse

import numpy as np
from scipy.stats import spearmanr

import taylorsketch as ts

from bench_validation import BUCKETS, cached, retrained, study, write_section


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=12)
    ap.add_argument("--cache", default="results/validation")
    ap.add_argument("--write", help="write the tables into this markdown file (between its markers)")
    args = ap.parse_args()

    s, model, docs, measures, sets, indicators = study(args.n, args.reps)
    tag = f"n{args.n}"
    per, _ = cached(f"{args.cache}/{tag}_documents6.npz", lambda: ts.precompute(
        model, s.init, docs, order=6, directions="documents"))
    exact, _ = cached(f"{args.cache}/{tag}_exact{len(sets)}.npz", lambda: ts.precompute(
        model, s.init, docs, order=6, directions=indicators))
    truth = retrained(args.cache, tag, model, s, docs, sets, measures)

    names = ["exact linear", "exact 2", "exact 3", "exact 6", "sum 6", "sum 6 + I2", "sum 6 + I2..3",
             "sum 6 + I2..4"]
    pred = {key: [] for key in names}
    sizes, truths, bases, last = [], [], [], []
    for m, phi in enumerate(measures):
        ex = exact.coefficients(phi).real                                   # (sets, 7)
        for k, (_, ids) in enumerate(sets):
            own = np.concatenate([[ex[k, 0]], per.predict(phi, ids, method="sum").terms])
            pred["exact linear"].append(ex[k, :2].sum())
            pred["exact 2"].append(ex[k, :3].sum())
            pred["exact 3"].append(ex[k, :4].sum())
            pred["exact 6"].append(ex[k].sum())
            pred["sum 6"].append(own.sum())
            for top, key in ((2, "sum 6 + I2"), (3, "sum 6 + I2..3"), (4, "sum 6 + I2..4")):
                c = own.copy()
                c[2:top + 1] = ex[k, 2:top + 1]
                pred[key].append(c.sum())
            sizes.append(len(ids))
            truths.append(truth[k, m])
            bases.append(ex[k, 0])
            last.append(abs(ex[k, 6]))
    sizes, truths, bases, last = map(np.array, (sizes, truths, bases, last))
    errors = {key: np.abs(np.array(v) - truths) for key, v in pred.items()}
    lines = ["Mean |prediction - retrained| (and its ratio to the exact linear surrogate's); \"I2..r\": "
             "the exact interactions of degrees 2 to r added to *sum 6*", ""]
    lines.append("| set size (cases) | " + " | ".join(names) + " |")
    lines.append("|---" * (len(names) + 1) + "|")
    for lo, hi in BUCKETS:
        sel = (sizes >= lo) & (sizes <= hi)
        lin = errors["exact linear"][sel].mean()
        cells = [f"{errors[key][sel].mean():.1e} ({errors[key][sel].mean() / lin:.2f})" for key in names]
        lines.append(f"| {lo}-{hi} ({sel.sum()}) | " + " | ".join(cells) + " |")
    rho = [spearmanr(np.array(pred[key]) - bases, truths - bases)[0] for key in names]
    lines.append("| Spearman, whole panel | " + " | ".join(f"{r:.4f}" for r in rho) + " |")
    lines += ["", "The exact degree-6 polynomial with a band of twice its last term, `|c_6|` "
              "(`Prediction.truncation`):", "",
              "| set size | mean \\|c_6\\| | mean \\|error\\| | truth within 2 \\|c_6\\| |", "|---|---|---|---|"]
    for lo, hi in BUCKETS:
        sel = (sizes >= lo) & (sizes <= hi)
        covered = (errors["exact 6"][sel] <= 2 * last[sel]).mean()
        lines.append(f"| {lo}-{hi} | {last[sel].mean():.1e} | {errors['exact 6'][sel].mean():.1e} | "
                     f"{100 * covered:.0f} % |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, text, "study_interaction_degree.py")


if __name__ == "__main__":
    main()
