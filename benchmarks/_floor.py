"""The floor of a training step: its useful arithmetic at the machine's measured rates.

The training benchmarks report how long 1,000 steps of the paper's MicroGPT
take; this module says how long they *would* take if the step did nothing but
its useful floating-point operations at the rates this machine reaches on one
core, so every figure can also be read as a fraction of that limit
(``floor / measured``; 1 means at the limit).

How the count is made
---------------------
1. **A recording of the step.**  One jet training step is recorded with
   :class:`taylorsketch.plan.Recorder` (every rule application it makes), and
   for each one the primal shapes of the operands and the result, which
   operands are jets, and whether the result's series is a view of an
   operand's (no bytes written).  None of this depends on the order K, the
   number of directions M or whether they are real, so one cheap recording
   (K = 2, M = 1) per document shape serves every (K, M) (``bench_floor.py``
   checks it against K = 5, M = 3): the counts below are formulas in K and M.  The
   step's cost depends on the document's length; a step is the average over
   the first ``n_docs`` training documents (one recording per length,
   weighted by how many documents have it).
2. **The flop model**, in real floating-point operations.  The primal is
   real and computed once per step (training's parameters are real; the
   directions carry the complex part); the series is complex (or real with
   ``real=True``: per-document and exact-direction jets).  Unit costs per
   series coefficient and direction:

   =====================================  =======  ====
   operation                              complex  real
   =====================================  =======  ====
   ``ss``: series x series multiply-add      8       2
   ``ps``: primal x series multiply-add      4       2
   ``scale``: real number x series           2       1
   ``add``: series + series                  2       1
   =====================================  =======  ====

   Every term of a sum of products counts as a multiply-add (the first
   term's add too: at most one add per output coefficient too many).  Per
   element of the result and per direction (``T = K(K-1)/2``, the number of
   series x series terms of a Cauchy product of order K), read from the
   loops of :mod:`taylorsketch.kernels`:

   ==============================  ======  =====  ================  ===  =============
   rule                            ps      ss     scale             add  primal flops
   ==============================  ======  =====  ================  ===  =============
   mul, two jets                   2K      T      -                 -    1
   mul, jet x constant             -       -      K                 -    1
   div (divisor a jet)             K       T      K (x 1/b_0)       -    2
   div (divisor a constant)        -       -      K                 -    1
   exp                             K       T      2K (j x_j, 1/k)   -    1
   log                             -       T      3K                -    1
   pow (real exponent a)           K       T      K(K+1)/2 + K      -    1
   tanh (y and z = 1 - y^2)        3K      2T     2K                -    2
   erf (x^2, exp(-x^2), the ODE)   4K      3T     5K                K    4
   add, sub, two jets              -       -      -                 K    1
   add, sub, jet +- constant       -       -      -                 -    1
   neg, constant - jet             -       -      -                 K    1
   ==============================  ======  =====  ================  ===  =============

   ``sum`` and ``scatter_add``: K adds per direction for every input element
   that is added into an output (``in - out`` elements, and all ``in``
   elements, respectively), and as many primal adds.  ``matmul`` of ``(..., n,
   k) @ (..., k, p)`` with ``B`` the batch (``B n p`` = the result's
   elements): the primal 2Bnkp once; per direction K GEMMs of each jet operand
   against the other's primal (``ps``: 4Bnkp each for a complex series, a
   real GEMM on interleaved columns as :func:`taylorsketch.rules._gemm` runs
   it) and, when both are jets, T series x series GEMMs (``ss``: 8Bnkp each).
   The structural rules (reshape, transpose, getitem, expand, ...) do no
   arithmetic.  Adam (:func:`taylorsketch.kernels.adam_update`, outside the
   recording), per parameter and direction: g^2 (K scalings by ``2 g_0``
   and T ``ss``), the two moments (4K scalings, 2K adds), ``s = sqrt(v_hat + eps)`` (K ``ps``, T ``ss``, K(K+1)/2 + K
   scalings), ``q = m_hat / s`` (K ``ps``, T ``ss``, 2K scalings) and the
   update (K scalings, K adds): 2K ``ps``, 3T ``ss``, 9K + K(K+1)/2
   scalings, 3K adds; its primal, 17 flops per parameter.  A transcendental
   function of a primal (exp, erf, sqrt) counts as one flop: the primal is
   shared by every direction and never dominates a jet step.
3. **Bytes moved**: every rule reads its operands' series and primals and
   writes its result's (nothing for a result that is a view), and Adam reads
   four (K, M, P) series and writes three.  Rules' internal temporaries and
   today's copy of the gradients into the flat buffer are not counted: the
   floor is what a step must move, not what it moves today.  The step's
   *footprint* (every result written once, plus Adam's four series) decides
   which bandwidth applies: a step whose data fit in cache moves them at the
   cache's rate.
4. **Rates**, measured in this process on one thread, each the best of a
   few runs (other processes only slow a run down; even so, on the shared
   2-core machine the elementwise rate moved by up to 30 % between runs of
   the script, so compare a floor only with a time measured in the same run): GEMM rates of a 512 x 512 ``a @ b`` in complex128 and float64; the
   elementwise rate of the package's own Cauchy-product kernel
   (:func:`taylorsketch.kernels.mul` on a contiguous ``(K+1, L)`` array at the
   step's own order, the better of L = 1e5 and L = 4,096); memory
   bandwidth of ``np.copyto`` (bytes read + written) of an array the size of
   the step's footprint (at least 1 MB, at most 200 MB; ``rates()`` reports
   the 200 MB one, main memory).  The
   elementwise rate is the package kernel's, not the core's peak: a step at
   this floor is as fast as its arithmetic can be with kernels of today's
   quality.  ``peak_seconds`` puts every flop at the float64 GEMM rate
   instead: the core's own limit, several times lower.
5. **The floor**: ``compute = GEMM flops / GEMM rate + (elementwise + Adam)
   flops / elementwise rate`` (primal-times-series GEMMs at the float64 rate,
   series-times-series ones at the complex rate) and ``memory = bytes /
   bandwidth at the footprint``; the machine's limit for a step is the
   larger of the two.  Both are floors of *this algorithm* (schoolbook Cauchy
   products, O(K^2) per coefficient): a product by evaluation at 2K + 1
   points would need far fewer GEMMs at large K.

>>> counts = matmul_counts((7, 16), (16, 16), (7, 16), (True, True), order=3)
>>> counts["primal"], counts["ps"], counts["ss"]      # 2*7*16*16; 2 jets x K GEMMs; T = 3
(3584, 6, 3)
>>> flops = op_flops(Op("matmul", (((7, 16), True), ((16, 16), True)), (7, 16), False), 3, 1)
>>> flops["gemm_real"] == 3584 + 6 * 4 * 1792 and flops["gemm_complex"] == 3 * 8 * 1792
True

Shape legend: K = order, M = n_directions, P = parameters (4,192 for the
paper's MicroGPT), T = K(K-1)/2.
"""

import functools
import math
import statistics
import time
from dataclasses import dataclass

import numpy as np

STEPS = 1000

# Unit costs in real flops per series coefficient and direction (see the module docstring).
COSTS = {False: {"ss": 8, "ps": 4, "scale": 2, "add": 2},     # complex series
         True: {"ss": 2, "ps": 2, "scale": 1, "add": 1}}      # real series


# -- 1. the recording ------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One rule application of a recorded step, as far as its cost depends on it."""

    name: str
    operands: tuple    # per operand: (primal shape, is a jet)
    shape: tuple       # the result's primal shape
    view: bool         # the result's series is a view of an operand's


def _shape_recorder():
    from taylorsketch import plan
    from taylorsketch.jet import Jet

    class ShapeRecorder(plan.Recorder):
        """A :class:`~taylorsketch.plan.Recorder` that also keeps every operation's shapes."""

        def __init__(self, leaves, inputs):
            super().__init__(leaves, inputs)
            self.ops = []

        def operation(self, name, operands, params, result):
            super().operation(name, operands, params, result)
            jets = [o for o in operands if isinstance(o, Jet)]
            view = any(np.may_share_memory(result.series, j.series) for j in jets)
            shapes = tuple((np.shape(o.primal if isinstance(o, Jet) else o), isinstance(o, Jet)) for o in operands)
            self.ops.append(Op(name, shapes, np.shape(result.primal), view))

    return ShapeRecorder


def record_step(model, init, doc, order=2, n_directions=1):
    """The operations of one jet training step on ``doc`` (a list of :class:`Op`)."""
    import taylorsketch as ts
    from taylorsketch import plan
    from taylorsketch.training import FlatParams

    rng = np.random.default_rng(0)
    directions = rng.normal(size=(n_directions, 2)) + 1j * rng.normal(size=(n_directions, 2))
    w = ts.Jet.from_directions(np.zeros(2), directions, order)
    flat = FlatParams.from_dict(model.param_shapes(), init, like=w)
    params = flat.views()
    dloss = 1.0 - w[0]
    encoded = model.encode(doc)
    with _shape_recorder()(list(params.values()) + [dloss], plan.inputs_of(encoded)) as recorder:
        model.loss_and_grads(params, encoded, dloss)
    return recorder.ops


@functools.lru_cache(maxsize=None)
def paper_steps(n_docs=100):
    """``(weight, ops)`` for each document shape among the first ``n_docs`` paper documents
    (weights sum to 1), and the number of parameters P."""
    import taylorsketch as ts
    from taylorsketch import plan

    setup = ts.paper.setup(seed=42)
    model = setup.model()
    groups = {}
    for doc in setup.docs[:n_docs]:
        key = plan.shape_key(plan.inputs_of(model.encode(doc)))
        count, first = groups.get(key, (0, doc))
        groups[key] = (count + 1, first)
    steps = tuple((count / n_docs, tuple(record_step(model, setup.init, doc)))
                  for count, doc in groups.values())
    n_params = sum(math.prod(shape) for shape in model.param_shapes().values())
    return steps, n_params


# -- 2. the flop model -----------------------------------------------------------------------


def matmul_counts(a_shape, b_shape, out_shape, jets, order):
    """GEMMs of a jet matmul: ``primal`` flops, and per direction the number of
    primal-times-series (``ps``) and series-times-series (``ss``) GEMMs, each of
    ``macs`` multiply-adds."""
    macs = math.prod(out_shape) * a_shape[-1]
    n_jets = sum(jets)
    return {"primal": 2 * macs, "macs": macs, "ps": n_jets * order,
            "ss": order * (order - 1) // 2 if n_jets == 2 else 0}


def _elementwise_terms(op, order):
    """``(terms per element and direction, primal flops per element)`` of an elementwise rule."""
    K, T = order, order * (order - 1) // 2
    jets = [jet for _, jet in op.operands] + [False]        # a unary rule has no second operand
    a_jet, b_jet = jets[0], jets[1]
    name = op.name
    if name == "mul":
        return ({"ps": 2 * K, "ss": T} if a_jet and b_jet else {"scale": K}), 1
    if name == "div":
        return ({"ps": K, "ss": T, "scale": K}, 2) if b_jet else ({"scale": K}, 1)
    if name in ("add", "sub"):
        both_or_negated = (a_jet and b_jet) or (name == "sub" and b_jet and not a_jet)
        return ({"add": K} if both_or_negated else {}), 1
    table = {
        "neg": ({"add": K}, 1),
        "exp": ({"ps": K, "ss": T, "scale": 2 * K}, 1),
        "log": ({"ss": T, "scale": 3 * K}, 1),
        "pow": ({"ps": K, "ss": T, "scale": K * (K + 1) // 2 + K}, 1),
        "tanh": ({"ps": 3 * K, "ss": 2 * T, "scale": 2 * K}, 2),
        "erf": ({"ps": 4 * K, "ss": 3 * T, "scale": 5 * K, "add": K}, 4),
    }
    if name not in table:
        raise ValueError(f"no flop count for the rule {name!r}: add it to benchmarks/_floor.py")
    return table[name]


STRUCTURAL = {"reshape", "transpose", "getitem", "expand", "concatenate", "stack"}


def op_flops(op, order, n_directions, real=False):
    """Flops of one rule application: ``{"gemm_real", "gemm_complex", "elementwise"}``.

    ``gemm_real`` holds the primal GEMM and the primal-times-series ones (real
    GEMMs, also for a complex series); ``gemm_complex`` the series-times-series
    ones (complex GEMMs unless ``real``).
    """
    cost = COSTS[real]
    flops = {"gemm_real": 0, "gemm_complex": 0, "elementwise": 0}
    K, M = order, n_directions
    if op.name == "matmul":
        (a_shape, a_jet), (b_shape, b_jet) = op.operands
        c = matmul_counts(a_shape, b_shape, op.shape, (a_jet, b_jet), K)
        flops["gemm_real"] = c["primal"] + M * c["ps"] * c["macs"] * cost["ps"]
        flops["gemm_" + ("real" if real else "complex")] += M * c["ss"] * c["macs"] * cost["ss"]
    elif op.name in STRUCTURAL:
        pass
    elif op.name in ("sum", "scatter_add"):
        n_in, n_out = math.prod(op.operands[0][0]), math.prod(op.shape)
        added = n_in - n_out if op.name == "sum" else n_in
        flops["elementwise"] = added * (1 + M * K * cost["add"])
    else:
        terms, primal = _elementwise_terms(op, K)
        per_direction = sum(cost[kind] * count for kind, count in terms.items())
        flops["elementwise"] = math.prod(op.shape) * (primal + M * per_direction)
    return flops


def op_bytes(op, order, n_directions, real=False):
    """Bytes a rule must move: its operands' primals and series read, its result's written
    (nothing for a result that is a view of an operand)."""
    if op.view:
        return 0
    itemsize = 8 if real else 16
    jet_elements = sum(math.prod(shape) for shape, jet in op.operands if jet) + math.prod(op.shape)
    primal_elements = sum(math.prod(shape) for shape, _ in op.operands) + math.prod(op.shape)
    return 8 * primal_elements + itemsize * order * n_directions * jet_elements


def adam_flops(order, n_directions, n_params, real=False):
    """Flops of :func:`taylorsketch.kernels.adam_update` (see the module docstring)."""
    cost, K, T = COSTS[real], order, order * (order - 1) // 2
    per_direction = (2 * K * cost["ps"] + 3 * T * cost["ss"]
                     + (9 * K + K * (K + 1) // 2) * cost["scale"] + 3 * K * cost["add"])
    return n_params * (17 + n_directions * per_direction)


def adam_bytes(order, n_directions, n_params, real=False):
    """Adam reads p, m, v, g and writes p, m, v (primals and series)."""
    return 7 * (8 * n_params + order * n_directions * n_params * (8 if real else 16))


def step_counts(order, n_directions, real=False, n_docs=100):
    """Flops by kind and bytes of one training step, averaged over the first ``n_docs``
    paper documents.  ``order=0`` is plain training (the primal parts of the count)."""
    steps, n_params = paper_steps(n_docs)
    M = n_directions if order else 0
    flops = {"gemm_real": 0.0, "gemm_complex": 0.0, "elementwise": 0.0}
    bytes_by = {"arithmetic": 0.0, "structural": 0.0}
    footprint = 4 / 7 * adam_bytes(order, M, n_params, real)      # p, m, v, g
    for weight, ops in steps:
        for op in ops:
            for kind, value in op_flops(op, order, M, real).items():
                flops[kind] += weight * value
            part = "structural" if op.name in STRUCTURAL or op.name == "scatter_add" else "arithmetic"
            bytes_by[part] += weight * op_bytes(op, order, M, real)
            if not op.view:
                footprint += weight * _result_bytes(op, order, M, real)
    flops["adam"] = float(adam_flops(order, M, n_params, real))
    bytes_by["adam"] = float(adam_bytes(order, M, n_params, real))
    return {"flops": flops, "bytes": bytes_by, "footprint": footprint, "n_params": n_params,
            "n_ops": statistics.fmean(len(ops) for _, ops in steps)}


def _result_bytes(op, order, n_directions, real):
    return math.prod(op.shape) * (8 + order * n_directions * (8 if real else 16))


# -- 3. the machine's rates --------------------------------------------------------------------


def _best_seconds(fn, runs):
    """The fastest of ``runs`` timed calls after a warm-up: a limit is what the machine
    reaches when nothing else runs, and other processes only ever slow a run down."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@functools.lru_cache(maxsize=None)
def rates():
    """GEMM rates (flop/s) in complex128 and float64 and memory bandwidth (byte/s), one thread."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    n = 512
    out = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for dtype, per_mac in ((np.complex128, 8), (np.float64, 2)):
            a = rng.normal(size=(n, n)).astype(dtype)
            b = rng.normal(size=(n, n)).astype(dtype)
            out[f"gemm_{np.dtype(dtype).name}"] = per_mac * n ** 3 / _best_seconds(lambda: a @ b, 5)
    out["bandwidth"] = bandwidth(200e6)
    return out


def bandwidth(nbytes):
    """Bytes per second (read + written) of ``np.copyto`` touching about ``nbytes``
    (1 MB to 200 MB, rounded to a power of two so that nearby sizes share a measurement)."""
    return _bandwidth(int(2 ** round(math.log2(min(max(nbytes, 1e6), 200e6)))))


@functools.lru_cache(maxsize=None)
def _bandwidth(nbytes):
    src = np.ones(nbytes // 16)                   # a source and a destination of nbytes / 2 each
    dst = np.empty_like(src)
    copies = max(1, 50_000_000 // nbytes)         # at least ~50 MB per timing

    def run():
        for _ in range(copies):
            np.copyto(dst, src)

    return copies * 2 * src.nbytes / _best_seconds(run, 3)


@functools.lru_cache(maxsize=None)
def elementwise_rate(order, real=False):
    """Flop/s of :func:`taylorsketch.kernels.mul` on a contiguous ``(K+1, L)`` array, one thread.

    The kernel does, per column, one product and ``k`` multiply-adds for every row
    ``k = 0..K``, all in the array's dtype.  The better of two lengths: L = 1e5
    (fewer for large K, at most 2e6 coefficients per array) and L = 4,096, whose
    rows stay in cache as a step's small arrays do.
    """
    from taylorsketch import kernels

    dtype = np.float64 if real else np.complex128
    rows = order + 1
    product, mac = (1, 2) if real else (6, 8)
    rng = np.random.default_rng(0)
    best = 0.0
    for length in (min(100_000, 2_000_000 // rows), 4096):
        a = rng.normal(size=(rows, length)).astype(dtype)
        b = rng.normal(size=(rows, length)).astype(dtype)
        out = np.empty_like(a)
        flops = length * (rows * product + order * rows // 2 * mac)
        calls = max(1, 10_000_000 // flops)           # at least ~10 MFLOP per timing

        def run():
            for _ in range(calls):
                kernels.mul(a, b, out)

        best = max(best, calls * flops / _best_seconds(run, 5))
    return best


# -- 4. the floor ------------------------------------------------------------------------------


def step_floor(order, n_directions, real=False, n_docs=100, steps=STEPS):
    """The floor of ``steps`` training steps at (``order``, ``n_directions``); ``order=0``: plain.

    Returns the counts of :func:`step_counts`, the rates used (``bandwidth_step`` at the
    step's footprint), and for ``steps`` steps
    ``compute_seconds``, ``memory_seconds`` and ``floor_seconds`` (their maximum, the
    machine's limit), with ``bound`` naming the larger; and ``peak_seconds``, the same
    limit with every flop at the float64 GEMM rate (the core's arithmetic, not today's
    elementwise kernels).
    """
    counts = step_counts(order, n_directions, real, n_docs)
    machine = dict(rates())
    real_series = real or order == 0
    machine["elementwise"] = elementwise_rate(max(order, 1), real_series)
    flops = counts["flops"]
    complex_gemm = machine["gemm_float64" if real_series else "gemm_complex128"]
    compute = (flops["gemm_real"] / machine["gemm_float64"] + flops["gemm_complex"] / complex_gemm
               + (flops["elementwise"] + flops["adam"]) / machine["elementwise"])
    machine["bandwidth_step"] = bandwidth(counts["footprint"])
    memory = sum(counts["bytes"].values()) / machine["bandwidth_step"]
    peak = sum(flops.values()) / machine["gemm_float64"]
    return {**counts, "rates": machine, "steps": steps, "order": order, "n_directions": n_directions,
            "real": real, "compute_seconds": steps * compute, "memory_seconds": steps * memory,
            "floor_seconds": steps * max(compute, memory), "peak_seconds": steps * max(peak, memory),
            "bound": "compute" if compute >= memory else "memory"}


def fraction_of_limit(measured_seconds, order, n_directions, real=False, steps=STEPS):
    """``floor / measured`` for a run of ``steps`` steps that took ``measured_seconds`` (1 = at the limit)."""
    return step_floor(order, n_directions, real, steps=steps)["floor_seconds"] / measured_seconds
