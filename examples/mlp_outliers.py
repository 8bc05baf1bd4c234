"""Which training points does a small MLP's prediction depend on?

A regression MLP is trained on a synthetic dataset with a few corrupted
targets.  One jet training along random complex directions of the loss
weights (the sketch) then predicts, for each point, how the fit at a test
input would move if that point were deleted; retraining checks the largest.

    python examples/mlp_outliers.py            # a few seconds
"""

import argparse

import numpy as np

import taylorsketch as ts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=60)
    parser.add_argument("--directions", type=int, default=256)
    args = parser.parse_args()

    data = ts.MLP.synthetic_dataset(args.points, seed=0)
    corrupted = [3, 17, 29]
    for i in corrupted:
        x, y = data[i]
        data[i] = (x, y + 4.0)
    model = ts.MLP(n_in=2, n_hidden=16, n_out=1)
    init = model.init_params(seed=0)
    x_test = np.array([0.5, -0.5])

    def fit_at_test(params):
        return model.predict(params, x_test)[0]

    phi = ts.measure.Measure("f(x_test)", fit_at_test, ("fit", tuple(x_test)))
    sketch = ts.precompute(model, init, data, order=2, directions=args.directions, steps=3 * len(data))
    base = phi(sketch.primal_params())
    effects = np.array([sketch.predict(phi, [i]).value - base for i in range(len(data))])
    order = np.argsort(-np.abs(effects))
    print(f"fit at x_test = {x_test}: {base:.4f} (trained on {len(data)} points, {len(corrupted)} corrupted)")
    print(f"{'point':>5s} {'corrupted':>9s} {'predicted change':>17s} {'retrained change':>17s}")
    for i in order[:5]:
        truth = phi(ts.retrain(model, init, data, [i], steps=3 * len(data))) - base
        print(f"{i:5d} {'yes' if i in corrupted else 'no':>9s} {effects[i]:+17.4f} {truth:+17.4f}")


if __name__ == "__main__":
    main()
