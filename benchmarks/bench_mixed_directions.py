"""Do mixed derivatives along independent random directions lower the sketch's variance?

Issue 9, part 3.  The order-2 Taylor term of a deletion is ``T[1_D, 1_D]`` for the
symmetric coefficient matrix ``T`` of ``g``'s quadratic part.  Two unbiased estimates
from random directions on the unit sphere:

* univariate (the package's sketch): one complex direction ``psi`` per sample,
  ``C(n+1, 2) s^2 c_2(psi)`` with ``c_2 = T[psi, psi]``, ``s = sum_{i in D} conj(psi_i)``;
* bivariate (a MultiJet in two nilpotent variables along independent ``psi_1,
  psi_2``): ``n^2 s_1 s_2 T[psi_1, psi_2]`` (the mixed partial is ``2 T[psi_1,
  psi_2]``), with complex or with real directions (real ones are unbiased here, since
  the two directions are independent).

Printed: the standard deviation per sample on exact quadratic forms (no training:
``T`` is drawn, so the numbers are exact up to Monte Carlo error), for a dense ``T``,
one with a zero diagonal (like the residual after per-document series), and a low-rank
one; deletion sets of 2, 10 and 40 of n = 200.  A bivariate sample costs a MultiJet
training in two variables, at least as much as one univariate order-2 jet (helper
measurements in docs/performance.md: 1.1-2x), so equal or larger spread per sample
means no gain.

    python benchmarks/bench_mixed_directions.py            # seconds
"""

import numpy as np

N, SAMPLES = 200, 4000


def sphere(rng, m, complex_=True):
    z = rng.standard_normal((m, N)) + (1j * rng.standard_normal((m, N)) if complex_ else 0)
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def quadratic(a, t, b):
    return np.einsum("mi,ij,mj->m", a, t, b)


def main():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((N, N))
    zero_diagonal = (a + a.T) / 2
    np.fill_diagonal(zero_diagonal, 0.0)
    u = rng.standard_normal((N, 3))
    cases = {"dense": (a + a.T) / 2, "zero diagonal": zero_diagonal, "rank 3": u @ u.T}
    print(f"n = {N}, {SAMPLES} samples each; standard deviation per sample (and |mean - target| / "
          "standard error, a check of unbiasedness)\n")
    print("| T | set size | univariate complex | bivariate complex | bivariate real | bivariate / univariate |")
    print("|---|---|---|---|---|---|")
    for d in (2, 10, 40):
        indicator = np.zeros(N)
        indicator[rng.choice(N, d, replace=False)] = 1.0
        for name, t in cases.items():
            target = indicator @ t @ indicator
            p = sphere(rng, SAMPLES)
            uni = np.real(N * (N + 1) / 2 * np.conj(p @ indicator) ** 2 * quadratic(p, t, p))
            p1, p2 = sphere(rng, SAMPLES), sphere(rng, SAMPLES)
            bi = np.real(N * N * np.conj(p1 @ indicator) * np.conj(p2 @ indicator) * quadratic(p1, t, p2))
            q1, q2 = sphere(rng, SAMPLES, False), sphere(rng, SAMPLES, False)
            bi_real = N * N * (q1 @ indicator) * (q2 @ indicator) * quadratic(q1, t, q2)

            def cell(x):
                z = abs(x.mean() - target) / (x.std() / np.sqrt(SAMPLES))
                return f"{x.std():.0f} ({z:.1f})"
            print(f"| {name} | {d} | {cell(uni)} | {cell(bi)} | {cell(bi_real)} | {bi.std() / uni.std():.2f} |")


if __name__ == "__main__":
    main()
