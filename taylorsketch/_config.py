"""Numerical settings shared by the whole package, in one place.

Numba flags and the tolerances that decide what counts as a valid input live
here rather than in the functions that use them, so that changing how the
kernels are compiled, or how strict an input check is, is a one-line edit.
"""

# ``cache``: compiled kernels are written next to the source, so a second run
# does not recompile.  ``fastmath`` stays off: it allows the compiler to
# reassociate sums, and the package promises results that match a plain
# reference to rounding.
NUMBA_OPTIONS = {"cache": True, "fastmath": False, "nogil": True}

# The fused optimiser kernel touches every coefficient of every parameter in
# one pass; it is the only kernel large enough to gain from threads.
NUMBA_PARALLEL_OPTIONS = {**NUMBA_OPTIONS, "parallel": True}

# BLAS threads while training and while evaluating a measurement on parameter
# jets.  A training step is hundreds of small GEMMs (a document has at most 16
# positions); OpenBLAS's threads spin between them and, on a loaded 2-core
# machine, one batched product of a jet matmul took 96 ms with 2 threads
# against 0.13 ms with 1.  Parallelism comes from training batches of
# directions in separate processes instead (``precompute(..., workers=2)``).
BLAS_THREADS = 1
