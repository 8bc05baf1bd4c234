"""What the interactions between deleted documents look like (docs/validation.md).

The paper's MicroGPT on its first 200 names, 200 steps; 30 random documents and
all 435 pairs of them.  For every pair ``(i, j)`` the exact mixed second-order
coefficient ``H_ij`` of ``g`` (the coefficient of ``w_i w_j``) comes from
order-2 jets along ``e_i + e_j`` minus the two documents' own series; its
measurement-curvature part ``A_ij`` from the parameter-additive model; the rest,
``H_ij - A_ij``, is the interaction through the training dynamics.  Printed, per
measurement: their sizes, correlations, how they fall with the distance
``|i - j|`` in training steps, and how much of each 30 x 30 matrix its top
eigenvalues hold (a low-rank structure would let an estimator learn it).

    python benchmarks/study_interactions.py           # about 2 minutes
"""

import itertools

import numpy as np

import taylorsketch as ts
from taylorsketch import documents

N, GROUP = 200, 30


def main():
    s = ts.paper.setup()
    model = ts.MicroGPT(s.vocab)
    docs = s.docs[:N]
    rng = np.random.default_rng(5)
    group = np.sort(rng.choice(N, GROUP, replace=False))
    pairs = np.array(list(itertools.combinations(range(GROUP), 2)))
    ii, jj = group[pairs[:, 0]], group[pairs[:, 1]]
    both = np.zeros((len(pairs), N))
    both[np.arange(len(pairs)), ii] = 1.0
    both[np.arange(len(pairs)), jj] = 1.0
    per = ts.precompute(model, s.init, docs, order=2, directions="documents", progress=False)
    joint = ts.precompute(model, s.init, docs, order=2, directions=both, batch_size=128, progress=False)
    held = s.docs[5000]
    measures = [ts.measure.doc_loss(model, docs[17]), ts.measure.doc_loss(model, "max"),
                ts.measure.logprob(model, held[:2], held[2:] + "$")]
    gap = jj - ii
    print(f"{GROUP} documents of {N}, {len(pairs)} pairs; mean |.| of the order-2 mixed coefficients\n")
    print("| measurement | H (all) | A (curvature) | H - A (dynamics) | corr(H - A, A) | "
          "H - A at gap < 20 / 20-60 / >= 60 | top-5 eigenvalues' share: H, H - A, A |")
    print("|---|---|---|---|---|---|---|")
    for phi in measures:
        own = per.coefficients(phi).real[:, 2]
        h = joint.coefficients(phi).real[:, 2] - own[ii] - own[jj]
        a = documents.additive_coefficients(per, phi, both).real[:, 2] - own[ii] - own[jj]
        dyn = h - a
        by_gap = [np.abs(dyn[m]).mean() for m in (gap < 20, (gap >= 20) & (gap < 60), gap >= 60)]
        shares = []
        for values in (h, dyn, a):
            matrix = np.zeros((GROUP, GROUP))
            matrix[pairs[:, 0], pairs[:, 1]] = values
            matrix += matrix.T
            eig = np.sort(np.abs(np.linalg.eigvalsh(matrix)))[::-1]
            shares.append((eig[:5] ** 2).sum() / (eig ** 2).sum())
        name = phi.name.replace("|", "\\|")      # a pipe would end the table cell
        print(f"| {name} | {np.abs(h).mean():.2e} | {np.abs(a).mean():.2e} | {np.abs(dyn).mean():.2e} | "
              f"{np.corrcoef(dyn, a)[0, 1]:+.2f} | " + " / ".join(f"{x:.1e}" for x in by_gap) + " | "
              + ", ".join(f"{x:.2f}" for x in shares) + " |")
    print(f"\n(a 30 x 30 matrix of independent entries puts about {_random_share(rng):.2f} of its energy "
          "in its top 5 eigenvalues)")


def _random_share(rng):
    x = rng.standard_normal((GROUP, GROUP))
    x = np.triu(x, 1) + np.triu(x, 1).T
    eig = np.sort(np.abs(np.linalg.eigvalsh(x)))[::-1]
    return (eig[:5] ** 2).sum() / (eig ** 2).sum()


if __name__ == "__main__":
    main()
