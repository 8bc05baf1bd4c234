"""Delete training names from a trained MicroGPT, without retraining.

One jet training along random complex directions (the sketch) answers
"what would the loss on 'max' be had these names been left out?" for any
set of names, in well under a millisecond each; retraining checks it.

    python examples/delete_names.py              # ~1 minute
    python examples/delete_names.py --docs 40 --directions 16   # seconds
"""

import argparse
import os
import tempfile
import time

import taylorsketch as ts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200, help="train on the first N names (N steps)")
    parser.add_argument("--directions", type=int, default=64)
    parser.add_argument("--order", type=int, default=3)
    args = parser.parse_args()

    s = ts.paper.setup(seed=42)
    docs = s.docs[: args.docs]
    model = ts.MicroGPT(s.vocab)
    phi = ts.measure.doc_loss(model, "max")

    start = time.perf_counter()
    sketch = ts.precompute(model, s.init, docs, order=args.order, directions=args.directions, seed=0)
    print(f"precomputed {sketch} in {time.perf_counter() - start:.1f} s")

    # a sketch is a file: save it, load it back (npz + JSON, no pickle)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "names.npz")
        sketch.save(path)
        sketch = ts.Sketch.load(path)

    deletions = {
        "names containing 'x'": lambda d: "x" in d,
        "names starting with 'm'": lambda d: d.startswith("m"),
        "the first 5 names": list(range(5)),
    }
    print(f"\nloss on 'max' after training on all {len(docs)} names: {phi(sketch.primal_params()):.5f}")
    print(f"{'deleted':26s} {'|D|':>4s} {'predicted':>18s} {'linear only':>12s} {'retrained':>10s}")
    for label, deleted in deletions.items():
        start = time.perf_counter()
        p = sketch.predict(phi, deleted, docs=docs)
        ms = 1e3 * (time.perf_counter() - start)
        linear = sketch.predict(phi, deleted, degree=1, docs=docs).value
        truth = float(phi(ts.retrain(model, s.init, docs, deleted)))
        print(f"{label:26s} {p.n_deleted:4d} {p.value:9.5f} +- {p.stderr:.5f} {linear:12.5f} {truth:10.5f}"
              f"   ({ms:.2f} ms)")


if __name__ == "__main__":
    main()
