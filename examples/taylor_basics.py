"""Taylor-mode AD in a few lines: series of scalar functions, a direction
through a small network, and many directions sharing one primal.

    python examples/taylor_basics.py
"""

import math

import numpy as np

import taylorsketch as ts


def main():
    # 1. A scalar series: exp(t) has coefficients 1/r!
    print("exp(t):        ", np.round(ts.taylor(ts.exp, 0.0, 1.0, order=6), 6))
    print("1/r!:          ", np.round([1 / math.factorial(r) for r in range(7)], 6))

    # 2. Derivatives of a composite along a direction: d^r/dt^r f(x + t v)
    def f(x):
        return ts.log(1.0 + ts.exp(x)).sum()      # softplus, summed

    x = np.array([0.5, -1.0, 2.0])
    v = np.array([1.0, 0.0, -1.0])
    print("softplus derivs:", np.round(ts.derivatives(f, x, v, order=4), 6))

    # 3. A small network, and a complex direction
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(8, 3)), rng.normal(size=(1, 8))

    def net(x):
        return (w2 @ ts.gelu(w1 @ x))[0]

    vc = rng.normal(size=3) + 1j * rng.normal(size=3)
    print("net along v:    ", np.round(ts.taylor(net, x, vc, order=3), 6))

    # 4. Many directions at once: one primal, M series
    directions = rng.normal(size=(100, 3))
    jet = ts.Jet.from_directions(x, directions, order=3)
    out = net(jet)
    print(f"batched jet:     {out!r}; c_0 computed once = {out.primal:.6f}")
    one = ts.taylor(net, x, directions[7], order=3)
    print("direction 7 agrees with a separate run:", np.allclose(out.coefficients()[:, 7], one))


if __name__ == "__main__":
    main()
