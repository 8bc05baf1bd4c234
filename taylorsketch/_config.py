"""Numerical settings shared by the whole package, in one place.

Numba flags and thread settings live here rather than in the functions that
use them, so that changing how the kernels are compiled or parallelised is a
one-line edit.
"""

import ctypes
import ctypes.util
import os

# ``cache``: compiled kernels are written next to the source, so a second run
# does not recompile.  ``fastmath`` stays off: it allows the compiler to
# reassociate sums, and the package promises results that match a plain
# reference to rounding.
NUMBA_OPTIONS = {"cache": True, "fastmath": False, "nogil": True}

# The matrix product's real kernel keeps a block of 2 x 8 outputs in registers as
# scalars, which LLVM's SLP vectoriser packs into vector operations.  Numba leaves
# that pass off by default (``NUMBA_SLP_VECTORIZE``); the kernels that are written
# for it (``kernels._vectorized``) are compiled with it on.  Each vector lane is
# the scalar operation it replaces, so the results are the same to the bit.
NUMBA_SLP_VECTORIZE = 1

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

# The jet matrix product runs in one compiled kernel (``kernels.matmul_series``,
# loops in a fixed order, no BLAS) up to this order, for any number of
# directions and every layout (matrices, the attention's stacks, broadcast
# batches, constants): the choice depends on the order alone and the kernel's
# rounding on nothing else, so a direction's series never depends on how many
# directions share its run or on how its operands are laid out.  Above it the
# numpy formulation (``rules.matmul_series_numpy``), whose cross terms are BLAS
# GEMMs.  Measured on the paper's product shapes (complex series): at order 20
# with 4 directions the loops were 1.05-1.8 times as fast as the numpy
# formulation, at order 100 with 12 directions 0.78-1.1 times; the bound stays at
# the orders the tests check the kernel at (1..12).
COMPILED_MATMUL_MAX_ORDER = 12

# Complex matrix products of at most this many columns (the attention's) run in
# the kernel of register blocks (``kernels._matmul_series_complex_blocks``), wider
# ones in the row kernel; both form the same sums in the same order.  On the step's
# shapes the blocks were 1.3-2.4 times as fast up to 9 columns, 0.9-1.25 at 12
# and 0.64-0.87 at 16 (one core; orders 3 and 6; 1 and 125 directions).
COMPLEX_BLOCK_COLUMNS = 8

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


# glibc's malloc returns a freed block above its mmap threshold (128 KiB at first)
# to the system at once, and a jet step at many directions allocates and frees
# dozens of arrays of 1-100 MB, so every one comes back as fresh pages that fault
# on first touch: at order 3 with 500 directions, 9,100 page faults and 88 ms of
# system time per 700 ms step.  Jet training therefore asks malloc, once per
# process, to keep freed memory for reuse (blocks up to 32 MiB, glibc's largest
# threshold, from the heap; up to 1 GiB of free heap kept): 3,400 faults, 14 ms,
# the same peak memory (docs/performance.md).  ``TAYLORSKETCH_KEEP_FREED_MEMORY=0``
# leaves malloc as it is.  Elsewhere than glibc this does nothing.
MALLOC_MMAP_THRESHOLD = 32 << 20
MALLOC_TRIM_THRESHOLD = 1 << 30
_malloc_tuned = []


def keep_freed_memory():
    """Tune glibc's malloc as above (once per process); True if it is tuned."""
    if _malloc_tuned or os.environ.get("TAYLORSKETCH_KEEP_FREED_MEMORY", "1") == "0":
        return bool(_malloc_tuned) and _malloc_tuned[0]
    tuned = False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3            # glibc's malloc.h
        tuned = bool(libc.mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)) and bool(
            libc.mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD))
    except (OSError, AttributeError):                          # not glibc: nothing to tune
        pass
    _malloc_tuned.append(tuned)
    return tuned
