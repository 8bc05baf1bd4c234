"""Numerical settings shared by the whole package, in one place.

Numba flags and thread settings live here rather than in the functions that
use them, so that changing how the kernels are compiled or parallelised is a
one-line edit.
"""

import os

# ``cache``: compiled kernels are written next to the source, so a second run
# does not recompile.  ``fastmath`` stays off: it allows the compiler to
# reassociate sums, and the package promises results that match a plain
# reference to rounding.
NUMBA_OPTIONS = {"cache": True, "fastmath": False, "nogil": True}

# The fused optimiser kernel touches every coefficient of every parameter in
# one pass; it is the only kernel large enough to gain from threads, and only
# from this many series coefficients on.  Below it, threads cost more than
# they give: on a loaded 2-core machine one order-6 step of a single
# direction took 40-45 ms with 2 threads and 4.8 ms with one.
NUMBA_PARALLEL_OPTIONS = {**NUMBA_OPTIONS, "parallel": True}
PARALLEL_MIN_COEFFICIENTS = 1 << 21

# BLAS threads while training and while evaluating a measurement on parameter
# jets.  A training step is hundreds of small GEMMs (a document has at most 16
# positions); OpenBLAS's threads spin between them and, on a loaded 2-core
# machine, one batched product of a jet matmul took 96 ms with 2 threads
# against 0.13 ms with 1.  Parallelism comes from training batches of
# directions in separate processes instead (``precompute(..., workers=2)``).
BLAS_THREADS = 1

# Coefficients per lifted array in one slice of the MultiJet optimiser step
# (2^22 float64 = 32 MB): the lifted (ranked) state is d times the MultiJet's
# (at d = 12, 4.9 GB for MicroGPT's parameters and Adam's two moments), so it
# is built a slice of parameters at a time; Adam is elementwise in them.
MULTIJET_ADAM_CHUNK = 1 << 22



def replay():
    """Whether jet training replays recorded steps (:mod:`taylorsketch.plan`): bit for
    bit the eager steps, without their Python dispatch.  ``TAYLORSKETCH_REPLAY=0`` in
    the environment runs every step eagerly (to compare, or to debug a model); it is
    read when a training run starts."""
    return os.environ.get("TAYLORSKETCH_REPLAY", "1") != "0"
