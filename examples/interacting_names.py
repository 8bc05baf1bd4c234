"""Which pairs of training names interact: their joint deletion matters more than the sum.

1. Screen: one jet training of order 1 along every name's indicator at once
   gives each name's first-order effect on the loss of 'max'.
2. Interact: the names with the largest effects form a group; one MultiJet
   training run gives every mixed partial over the group (ts.interactions).
   The mixed partial c_ij of names i and j is how much their joint deletion
   changes the loss beyond the sum of deleting each, in the part of the
   change that is multilinear in the deletions.
3. Check: retrain without i, without j and without both, for the strongest
   pairs, and compare the interaction joint - (alone_i + alone_j) with c_ij.

    python examples/interacting_names.py                 # a few seconds
    python examples/interacting_names.py --docs 200 --group 8
"""

import argparse
import time

import numpy as np

import taylorsketch as ts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=40, help="train on the first N names (N steps)")
    parser.add_argument("--group", type=int, default=5, help="names in the group (d)")
    parser.add_argument("--check", type=int, default=2, help="pairs to check by retraining")
    parser.add_argument("--measure", default="max", help="measure the loss on this name")
    args = parser.parse_args()

    s = ts.paper.setup(seed=42)
    docs = s.docs[: args.docs]
    model = ts.MicroGPT(s.vocab)
    phi = ts.measure.doc_loss(model, args.measure)
    n = len(docs)

    start = time.perf_counter()
    screen = ts.Jet.from_directions(np.zeros(n), np.eye(n), order=1)
    first = phi(ts.train(model, s.init, docs, weights=screen)).coefficients()[1]      # (n,)
    group = [int(i) for i in np.argsort(-np.abs(first))[: args.group]]
    print(f"screened {n} names (one order-1 jet run, {n} directions) in "
          f"{time.perf_counter() - start:.1f} s; group: {[docs[i] for i in group]}")

    start = time.perf_counter()
    res = ts.interactions(model, s.init, docs, group, phi, labels=[docs[i] for i in group])
    print(f"every mixed partial over the {len(group)} names (one MultiJet run, "
          f"{2 ** len(group) - 1} series) in {time.perf_counter() - start:.1f} s\n")
    print(res.format(top=5))

    def loss_without(*members):
        return phi(ts.retrain(model, s.init, docs, [group[m] for m in members]))

    print(f"\n{'pair':28s} {'c_ij':>10s} {'retrained: joint - sum of singles':>34s}")
    base = res.base
    for row in res.table(top=args.check):
        i, j = row["members"]
        joint = loss_without(i, j) - base
        alone = (loss_without(i) - base) + (loss_without(j) - base)
        pair = f"{docs[group[i]]!r} + {docs[group[j]]!r}"
        print(f"{pair:28s} {row['value']:+10.5f} {joint - alone:+34.5f}")


if __name__ == "__main__":
    main()
