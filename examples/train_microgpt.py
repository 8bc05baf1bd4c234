"""Train the paper's MicroGPT and look at it: the loss on "max" and a few sampled names.

The set-up of "How to sketch a learning algorithm" (method.md section 4): the
names dataset shuffled by ``random.Random(42)``, parameters drawn from the same
stream, 1,000 steps of the paper's Adam on the first 1,000 documents.  With the
defaults the loss on "max" is the paper's 3.0913238794422027.

    python examples/train_microgpt.py              # the paper's run (~0.3 s)
    python examples/train_microgpt.py --steps 20   # a smoke test
"""

import argparse
import time

import taylorsketch as ts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    parser.add_argument("--docs", type=int, default=1000, help="training documents (default 1000)")
    parser.add_argument("--seed", type=int, default=42, help="shuffle and initialisation seed")
    parser.add_argument("--samples", type=int, default=10, help="names to sample")
    args = parser.parse_args()

    s = ts.paper.setup(seed=args.seed)
    model = s.model()
    docs = s.docs[:args.docs]
    start = time.perf_counter()
    params = ts.train(model, s.init, docs, steps=args.steps)
    elapsed = time.perf_counter() - start

    print(f"trained {model} for {args.steps} steps on {len(docs)} documents in {elapsed:.2f} s")
    print(f"loss on 'max': {model.loss(params, 'max')!r}")
    print("samples:")
    for name in model.sample(params, n=args.samples, seed=0):
        print(f"  {name}")


if __name__ == "__main__":
    main()
