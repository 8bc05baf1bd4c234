"""Audit the sketch's first-order term against the exact gradient dg/dw.

The first jet coefficient along a direction psi is linear in psi:
c_1(psi) = psi . grad, where grad_i = dg/dw_i (an influence vector).  This
script computes grad exactly (one jet direction per training document), checks
that the sketch's random-direction coefficients equal psi_j . grad, and then,
since c_1 is known for any psi, draws the first-order sketch estimate for many
seeds at no training cost, to show it is centred on the exact value
grad . 1_D and how often a deviation as large as seed 0's occurs.

    python examples/check_first_order.py                    # the paper's set-up, ~2 minutes
    python examples/check_first_order.py --docs 60 --directions 64 --seeds 20   # seconds
"""

import argparse

import numpy as np

import taylorsketch as ts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000, help="train on the first N names (N steps)")
    parser.add_argument("--directions", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=200, help="fresh direction sets to draw")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    s = ts.paper.setup(seed=42)
    docs = s.docs[: args.docs]
    n = len(docs)
    model = ts.MicroGPT(s.vocab)
    phi = ts.measure.doc_loss(model, "max")
    batch = -(-n // args.workers)

    basis = ts.precompute(model, s.init, docs, order=1, directions=np.eye(n), batch_size=batch,
                          workers=args.workers)
    grad = np.real(basis.coefficients(phi)[:, 1])
    sketch = ts.precompute(model, s.init, docs, order=1, directions=args.directions, seed=0,
                           batch_size=-(-args.directions // args.workers), workers=args.workers)
    c1 = sketch.coefficients(phi)[:, 1]
    linear_error = np.max(np.abs(c1 - sketch.directions @ grad)) / np.max(np.abs(c1))
    print(f"c_1(psi_j) against psi_j . grad over {args.directions} directions: "
          f"max relative difference {linear_error:.1e}")

    deleted = [i for i, d in enumerate(docs) if "x" in d] or [0]
    indicator = np.zeros(n)
    indicator[deleted] = 1.0
    exact = grad @ indicator
    p = sketch.predict(phi, deleted, degree=1)
    z0 = (p.terms[0] - exact) / p.term_stderr[0]
    print(f"exact first-order term grad . 1_D = {exact:.6f} ({len(deleted)} documents deleted)")
    print(f"sketch estimate, seed 0: {p.terms[0]:.6f} +- {p.term_stderr[0]:.6f} (z = {z0:+.2f})")

    zs = []
    for seed in range(1, args.seeds + 1):
        psi = ts.estimator.random_directions(n, np.arange(args.directions), seed)
        samples = np.real(n * (np.conj(psi) @ indicator) * (psi @ grad))
        zs.append((samples.mean() - exact) / (samples.std(ddof=1) / np.sqrt(len(samples))))
    zs = np.array(zs)
    print(f"z over {args.seeds} further seeds: median {np.median(zs):+.2f}, "
          f"5%..95% {np.quantile(zs, 0.05):+.2f}..{np.quantile(zs, 0.95):+.2f}; "
          f"|z| >= {abs(z0):.2f} in {100 * np.mean(np.abs(zs) >= abs(z0)):.1f}% of them")


if __name__ == "__main__":
    main()
