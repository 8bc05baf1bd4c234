"""The floor of 1,000 training steps of the paper's MicroGPT at this machine's rates.

For each configuration of the training benchmark: the useful flops of one step
by kind, the bytes it must move, and the time 1,000 steps would take at the
measured one-core rates (:mod:`_floor` states the model); the last column puts
every flop at the GEMM rate, the core's own limit rather than that of today's
elementwise kernels.  A measured time
``t`` for the same configuration is at ``floor / t`` of the machine's limit.

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_floor.py
    python benchmarks/bench_floor.py --real        # real directions (per-document jets)
    python benchmarks/bench_floor.py --write docs/performance.md
"""

import argparse

import datetime

from _common import format_seconds, machine, publish

import _floor

CONFIGURATIONS = [(0, 0), (3, 1), (3, 64), (3, 500), (6, 1), (20, 4), (100, 12)]


def check_model():
    """Two checks of the count that a reader can redo by hand."""
    # (7, 16) @ (16, 16), both jets, K = 3, one complex direction: the primal 2*7*16*16 = 3,584;
    # 2 x K = 6 real-times-complex GEMMs of 4*7*16*16 = 7,168 flops; T = 3 complex GEMMs of 14,336.
    op = _floor.Op("matmul", (((7, 16), True), ((16, 16), True)), (7, 16), False)
    flops = _floor.op_flops(op, order=3, n_directions=1)
    assert flops["gemm_real"] == 3_584 + 6 * 7_168 and flops["gemm_complex"] == 3 * 14_336, flops
    # The recording's shapes do not depend on (K, M): one recording serves every row.
    import taylorsketch as ts
    setup = ts.paper.setup(seed=42)
    model = setup.model()
    doc = setup.docs[0]
    assert (_floor.record_step(model, setup.init, doc, order=2, n_directions=1)
            == _floor.record_step(model, setup.init, doc, order=5, n_directions=3))


def label(order, n_directions):
    if order == 0:
        return "plain"
    return f"order {order}, {n_directions} direction{'s' * (n_directions > 1)}"


def table(real=False, n_docs=100):
    lines = ["| configuration | GFLOP per step: GEMM / elementwise / Adam | MB moved per step (footprint) "
             "| compute floor, 1,000 steps | memory floor | the machine's limit | all flops at the GEMM rate |",
             "|---|---|---|---|---|---|---|"]
    for order, n_directions in CONFIGURATIONS:
        floor = _floor.step_floor(order, n_directions, real=real, n_docs=n_docs)
        flops = floor["flops"]
        gemm = flops["gemm_real"] + flops["gemm_complex"]
        parts = " / ".join(f"{value / 1e9:.4g}" for value in (gemm, flops["elementwise"], flops["adam"]))
        lines.append(f"| {label(order, n_directions)} | {parts} | {sum(floor['bytes'].values()) / 1e6:.3g} "
                     f"({floor['footprint'] / 1e6:.3g}) "
                     f"| {format_seconds(floor['compute_seconds'])} | {format_seconds(floor['memory_seconds'])} "
                     f"| {format_seconds(floor['floor_seconds'])} ({floor['bound']}) "
                     f"| {format_seconds(floor['peak_seconds'])} |")
    return "\n".join(lines)


def describe_rates(real=False):
    r = _floor.rates()
    orders = sorted({max(order, 1) for order, _ in CONFIGURATIONS})
    elementwise = ", ".join(f"K={k}: {_floor.elementwise_rate(k, real) / 1e9:.2f}" for k in orders)
    return (f"One thread: GEMM 512x512 {r['gemm_complex128'] / 1e9:.1f} GFLOP/s (complex128), "
            f"{r['gemm_float64'] / 1e9:.1f} GFLOP/s (float64); `kernels.mul` on "
            f"{'float64' if real else 'complex128'} (K+1, L), GFLOP/s: {elementwise}; "
            f"copy bandwidth {r['bandwidth'] / 1e9:.1f} GB/s (200 MB), {_floor.bandwidth(2e6) / 1e9:.1f} GB/s (2 MB).")


SECTION = "## The machine's limit (benchmarks/bench_floor.py)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="real directions (per-document jets)")
    parser.add_argument("--docs", type=int, default=100, help="average over the first DOCS documents")
    parser.add_argument("--write", metavar="PATH", help="add or replace this section in a markdown file")
    args = parser.parse_args()
    check_model()
    kind = "real" if args.real else "complex"
    text = "\n".join([
        SECTION, "",
        f"Run on {datetime.date.today().isoformat()} on {machine()}; {kind} directions, steps averaged "
        f"over the first {args.docs} paper documents. The model is `benchmarks/_floor.py`'s docstring.",
        "", table(args.real, args.docs), "", describe_rates(args.real), ""])
    publish(text, args.write, SECTION)


if __name__ == "__main__":
    main()
