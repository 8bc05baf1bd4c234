"""Jet rules: how each primitive maps input coefficients to output coefficients.

Every rule has one signature (as in JAX's ``jet``)::

    rule(primals, series, **params) -> (primal, series)

``primals`` is a tuple of arrays ``c_0`` (one per operand), ``series`` the
matching tuple of ``(K, M, *shape)`` arrays holding ``c_1..c_K`` for ``M``
directions, or ``None`` for an operand that is a constant.  Rules see plain
arrays only; :mod:`taylorsketch.jet` wraps them for the ``Jet`` type.  Every
rule is registered in :data:`RULES` right after its definition.  Operations
that are compositions of these (``sqrt``, ``sigmoid``, ``gelu``, ``softmax``,
...) have no rule of their own: see :mod:`taylorsketch.functions`.  The
structural primitives (``sum``, ``reshape``, indexing, ...) are registered
here too, from :mod:`taylorsketch.shape_rules`.

Operands of elementwise rules arrive with equal ``ndim`` (the caller inserts
length-1 axes after the two leading series axes), so numpy broadcasting lines
up ``c_r`` of every operand.
"""

import math

import numpy as np
import scipy.special

from . import kernels
from ._config import COMPILED_MATMUL_MAX_ORDER

RULES = {}

# name -> ``plan(layouts, params)``: keyword arguments that let the rule skip the
# work that depends only on its operands' layouts, or None (see :func:`specialization`)
SPECIALIZED = {}


def register(name):
    def decorate(rule):
        RULES[name] = rule
        return rule
    return decorate


def specialization(*names):
    """Register ``plan(layouts, params) -> dict or None`` for the rules ``names``.

    A recorded step (:mod:`taylorsketch.plan`) knows every operand's *layout*,
    ``(primal shape, primal dtype, series shape, series dtype)`` (``None`` for the
    series of a constant), and the result's, last.  ``plan`` returns the keyword
    arguments (beside ``params``) with which the rule skips what follows from the
    layouts alone, such as shapes, dtypes and resolved axes, or None; the rule
    computes the same values either way, to the bit.  A ``_plan`` keyword on its
    own is the rule's whole work for those layouts and ``params``, a callable
    ``_plan(primals, series)``: a plan calls it in the rule's place, and the rule
    given it calls it.
    """
    def decorate(plan):
        for name in names:
            SPECIALIZED[name] = plan
        return plan
    return decorate


# ----------------------------------------------------------------------------
# helpers: full coefficient arrays for the kernels


def _out_dtype(*arrays):
    return np.result_type(np.float64, *[a for a in arrays if a is not None])


def check_domain(name, x0, real_condition, complex_condition, what):
    if np.iscomplexobj(x0):
        bad = ~complex_condition(x0)
    else:
        bad = ~real_condition(x0)
    if np.any(bad):
        example = np.asarray(x0)[bad].flat[0]
        raise ValueError(
            f"{name}: the primal has {int(np.count_nonzero(bad))} entries where {name} is "
            f"not analytic ({what}), e.g. {example!r}; a jet cannot be expanded there")


def positive(x):
    return x > 0


def off_branch_cut(x):
    return ~((x.imag == 0) & (x.real <= 0))


def nonzero(x):
    return x != 0


def _series_layout(series_shape, shape, dtype):
    """What a series kernel's full arrays look like: ``((K+1, M, *shape), (K+1, M*N), dtype)``."""
    order, n_dirs = series_shape[:2]
    return (order + 1, n_dirs) + tuple(shape), (order + 1, n_dirs * math.prod(shape)), dtype


def _filled(x0, xs, layout):
    """The full coefficient array of a :func:`_series_layout`: ``c_0`` (repeated for
    every direction) over ``c_1..c_K``, contiguous, ``(K+1, M, *shape)``."""
    full = np.empty(layout[0], layout[2])
    full[0] = x0
    full[1:] = xs
    return full


def _unary_series(x0, xs, y0, kernel, layout=None):
    """The series of ``y = f(x)``, given ``y_0``, from a kernel that fills rows 1..K in place."""
    if layout is None:
        layout = _series_layout(xs.shape, np.shape(x0), _out_dtype(x0, xs, y0))
    x = _filled(x0, xs, layout)
    y = np.empty(layout[0], layout[2])
    y[0] = y0
    kernel(x.reshape(layout[1]), y.reshape(layout[1]))
    return y[1:]


def _binary_series(a0, as_, b0, bs, y0, kernel, layout=None):
    """The series of ``y = f(a, b)``, given ``y_0``, from a kernel filling rows 1..K in place."""
    if layout is None:
        layout = _series_layout(bs.shape, np.shape(y0), _out_dtype(a0, as_, b0, bs))
    a, b = _filled(a0, as_, layout), _filled(b0, bs, layout)
    y = np.empty(layout[0], layout[2])
    y[0] = y0
    kernel(a.reshape(layout[1]), b.reshape(layout[1]), y.reshape(layout[1]))
    return y[1:]


def _dtype(*layouts):
    """The dtype :func:`_out_dtype` gives the primals and series of these layouts."""
    return np.result_type(np.float64, *[layout[1] for layout in layouts],
                          *[layout[3] for layout in layouts if layout[3] is not None])


def _unary_plan(layouts, params):
    """Layout of the full arrays of a unary series rule (operand, result)."""
    x, y = layouts
    return {"_layout": _series_layout(x[2], x[0], np.result_type(_dtype(x), y[1]))}


def _unary_kernel_rule(name, primal_fn, kernel, domain=None):
    """Register the rule of ``y = f(x)`` whose series a kernel fills."""
    def rule(primals, series, _layout=None):
        (x0,), (xs,) = primals, series
        if domain is not None:
            check_domain(name, x0, *domain)
        y0 = primal_fn(x0)
        return y0, _unary_series(x0, xs, y0, kernel, _layout)
    specialization(name)(_unary_plan)
    return register(name)(rule)


# ----------------------------------------------------------------------------
# linear and bilinear primitives


@register("add")
def add_rule(primals, series):
    (a0, b0), (as_, bs) = primals, series
    y0 = a0 + b0
    if as_ is None:
        return y0, np.broadcast_to(bs, bs.shape[:2] + y0.shape)
    if bs is None:
        return y0, np.broadcast_to(as_, as_.shape[:2] + y0.shape)
    return y0, as_ + bs


@register("sub")
def sub_rule(primals, series):
    """``a - b``: to the bit ``a + (-b)``, in one operation."""
    (a0, b0), (as_, bs) = primals, series
    y0 = a0 - b0
    if bs is None:
        return y0, np.broadcast_to(as_, as_.shape[:2] + y0.shape)
    if as_ is None:
        return y0, np.broadcast_to(-bs, bs.shape[:2] + y0.shape)
    return y0, as_ - bs


@register("expand")
def expand_rule(primals, series, ndim):
    """Length-1 axes in front of the primal's, to ``ndim`` axes: for broadcasting, the
    primal as it is (numpy broadcasts it), the series reshaped (:func:`expand_series`)."""
    return primals[0], expand_series(series[0], ndim)


@register("neg")
def neg_rule(primals, series):
    return -primals[0], -series[0]


@register("mul")
def mul_rule(primals, series, _layout=None, _plan=None):
    if _plan is not None:
        return _plan(primals, series)
    (a0, b0), (as_, bs) = primals, series
    y0 = a0 * b0
    if bs is None:
        return y0, as_ * b0
    if as_ is None:
        return y0, a0 * bs
    if _same_layout(a0, as_, b0, bs):
        out = np.empty_like(as_)
        kernels.cauchy(*_flat(as_, a0, as_, b0, bs, out))
        return y0, out
    return y0, _binary_series(a0, as_, b0, bs, y0, kernels.mul, _layout)


@register("div")
def div_rule(primals, series, _layout=None, _plan=None):
    if _plan is not None:
        return _plan(primals, series)
    (a0, b0), (as_, bs) = primals, series
    if bs is None:
        return a0 / b0, as_ / b0
    check_domain("division", b0, nonzero, nonzero, "the divisor's primal is 0")
    y0 = a0 / b0
    if as_ is not None and _same_layout(a0, as_, b0, bs):
        out = np.empty_like(as_)
        kernels.quotient(*_flat(as_, as_, b0, bs, y0, out))
        return y0, out
    if as_ is None:
        as_ = np.zeros(bs.shape[:2] + (1,) * np.ndim(y0))
    return y0, _binary_series(a0, as_, b0, bs, y0, kernels.div, _layout)


def _same_layout(a0, as_, b0, bs):
    """Whether a product or quotient can run on its operands as they are (the primal
    once beside contiguous series of one shape and dtype, :func:`kernels.cauchy`),
    without the full coefficient arrays: no broadcasting, no casting."""
    return (as_.shape == bs.shape and as_.shape[2:] == np.shape(a0) == np.shape(b0)
            and as_.dtype == bs.dtype == np.result_type(np.float64, a0, b0, as_)
            and as_.flags.c_contiguous and bs.flags.c_contiguous)


def _flat(like, *arrays):
    """Primals ``(N,)`` and series ``(K, M, N)`` of ``like``'s shape, in its dtype (a real
    primal becomes complex as in a full coefficient array, so the values are those of
    :func:`kernels.mul` and :func:`kernels.div` to the bit)."""
    order, n_dirs = like.shape[:2]
    size = math.prod(like.shape[2:])
    return [np.asarray(x, dtype=like.dtype).reshape(size) if np.ndim(x) == like.ndim - 2
            else x.reshape(order, n_dirs, size) for x in arrays]


@specialization("mul", "div")
def _binary_plan(layouts, params):
    """Layout of the full arrays of a product or quotient with a series on the right
    (on the left only, the rule is a single numpy operation)."""
    a, b, y = layouts
    if b[2] is None:
        return None
    return {"_layout": _series_layout(b[2], y[0], _dtype(a, b))}


class _PlannedProduct:
    """A recorded product of two series of one shape and dtype beside their primals
    (the layouts for which :func:`_same_layout` holds): :func:`kernels.cauchy` on the
    operands as they are, its flat shapes and the primals' casts worked out once.
    The values of :func:`mul_rule` to the bit; a series that is not contiguous at a
    replay takes the rule's full arrays, as in the rule."""

    def __init__(self, layouts):
        (a_shape, a_dtype, series_shape, dtype), (_, b_dtype, _, _), _ = layouts
        self.shape, self.dtype, self.layout = series_shape, dtype, _series_layout(series_shape, a_shape, dtype)
        self.size = math.prod(a_shape)
        self.flat = series_shape[:2] + (self.size,)
        self.plain = a_dtype == dtype and b_dtype == dtype and len(a_shape) > 0

    def primal(self, x0):
        return x0.reshape(self.size) if self.plain else np.asarray(x0, dtype=self.dtype).reshape(self.size)

    def __call__(self, primals, series):
        (a0, b0), (as_, bs) = primals, series
        y0 = a0 * b0
        if not (as_.flags.c_contiguous and bs.flags.c_contiguous):
            return y0, _binary_series(a0, as_, b0, bs, y0, kernels.mul, self.layout)
        out = np.empty(self.shape, self.dtype)
        kernels.cauchy(self.primal(a0), as_.reshape(self.flat), self.primal(b0), bs.reshape(self.flat),
                       out.reshape(self.flat))
        return y0, out


class _PlannedRows:
    """A recorded product or quotient of two series whose operands broadcast along
    their last axis only (a ``(T, 1)`` factor against a ``(T, C)`` one):
    :func:`kernels.cauchy_rows` or :func:`kernels.quotient_rows` on the operands as
    they are, in the result's dtype, without the full arrays of the rule.  The
    values of :func:`mul_rule` and :func:`div_rule` to the bit."""

    def __init__(self, name, layouts):
        (a_shape, a_dtype, a_series, a_sdtype), (b_shape, b_dtype, _, b_sdtype), (y_shape, *_) = layouts
        self.quotient, self.dtype = name == "div", _dtype(*layouts[:2])
        self.casts = [dtype != self.dtype for dtype in (a_dtype, a_sdtype, b_dtype, b_sdtype)]
        lead, rows = a_series[:2], math.prod(y_shape[:-1])
        self.a_rows, self.b_rows = (rows, a_shape[-1]), (rows, b_shape[-1])
        self.a_flat, self.b_flat = lead + self.a_rows, lead + self.b_rows
        self.shape, self.flat, self.y_rows = lead + y_shape, lead + (rows, y_shape[-1]), (rows, y_shape[-1])

    def _as(self, x, k):
        return x.astype(self.dtype) if self.casts[k] else x

    def __call__(self, primals, series):
        (a0, b0), (as_, bs) = primals, series
        out = np.empty(self.shape, self.dtype)
        a_series = self._as(as_, 1).reshape(self.a_flat)
        b_primal, b_series = self._as(b0, 2).reshape(self.b_rows), self._as(bs, 3).reshape(self.b_flat)
        if self.quotient:
            if not np.all(b0):
                check_domain("division", b0, nonzero, nonzero, "the divisor's primal is 0")
            y0 = a0 / b0
            kernels.quotient_rows(a_series, b_primal, b_series, np.asarray(y0, self.dtype).reshape(self.y_rows),
                                  out.reshape(self.flat))
        else:
            y0 = a0 * b0
            kernels.cauchy_rows(self._as(a0, 0).reshape(self.a_rows), a_series, b_primal, b_series,
                                out.reshape(self.flat))
        return y0, out


def _rows_broadcast(layouts):
    """Whether two operands with series of one kind broadcast along their last axis only."""
    a, b, y = layouts
    if a[2] is None or b[2] is None or a[2][:2] != b[2][:2] or a[2][2:] != a[0] or b[2][2:] != b[0]:
        return False
    if len(a[0]) != len(b[0]) or not a[0] or a[0][:-1] != b[0][:-1] or y[0] != a[0][:-1] + (y[0][-1],):
        return False
    return {a[0][-1], b[0][-1]} == {1, y[0][-1]} and y[0][-1] > 1


@specialization("mul")
def _mul_plan(layouts, params):
    """A product of series of one layout as a :class:`_PlannedProduct`, of series that
    broadcast along their last axis as a :class:`_PlannedRows`, otherwise the layout
    of the full arrays (:func:`_binary_plan`)."""
    a, b, y = layouts
    if (a[2] is not None and a[2] == b[2] and a[2][2:] == a[0] == b[0] and a[3] == b[3]
            and a[3] == np.result_type(np.float64, a[1], b[1], a[3])):
        return {"_plan": _PlannedProduct(layouts)}
    if _rows_broadcast(layouts):
        return {"_plan": _PlannedRows("mul", layouts)}
    return _binary_plan(layouts, params)


@specialization("div")
def _div_plan(layouts, params):
    """A quotient of series that broadcast along their last axis as a :class:`_PlannedRows`,
    otherwise the layout of the full arrays (:func:`_binary_plan`)."""
    if _rows_broadcast(layouts):
        return {"_plan": _PlannedRows("div", layouts)}
    return _binary_plan(layouts, params)


def matmul_stack(a, b):
    """``np.matmul`` that turns a stack times a matrix into a single GEMM.

    ``(..., n, k) @ (k, p)`` folds the stack into the rows; ``(n, k) @ (..., k, p)``
    folds it into the rows of the transposed product when the stack is stored
    transposed (as ``W.T`` of a contiguous weight is), and into the columns
    otherwise.  Both are what a jet produces when one operand is a primal
    shared by every order and direction.
    """
    if b.ndim == 2 and a.ndim > 2 and a.flags.c_contiguous:
        rows = a.reshape(-1, a.shape[-1])
        return _gemm(rows, b).reshape(a.shape[:-1] + (b.shape[-1],))
    if a.ndim == 2 and b.ndim > 2:
        bt = np.swapaxes(b, -1, -2)                      # (..., p, k)
        if bt.flags.c_contiguous:
            out = _gemm(bt.reshape(-1, bt.shape[-1]), a.T)   # (... * p, n)
            return np.swapaxes(out.reshape(bt.shape[:-1] + (a.shape[0],)), -1, -2)
        cols = np.ascontiguousarray(np.moveaxis(b, -2, 0))   # (k, ..., p)
        out = _gemm(a, cols.reshape(cols.shape[0], -1))      # (n, ... * p)
        return np.moveaxis(out.reshape((a.shape[0],) + cols.shape[1:]), 0, -2)
    return np.matmul(a, b)


def _gemm(a, b):
    """2-D product; a real matrix times a contiguous complex one runs as one real GEMM
    on the interleaved (re, im) columns, half the work of a complex GEMM."""
    if not np.iscomplexobj(a) and np.iscomplexobj(b) and b.flags.c_contiguous:
        return (a @ b.view(np.float64)).view(np.complex128)
    return a @ b


def expand_series(xs, ndim):
    """Insert length-1 axes after (K, M) so the series has ``ndim`` trailing axes."""
    missing = ndim - (xs.ndim - 2)
    if missing <= 0:
        return xs
    return xs.reshape(xs.shape[:2] + (1,) * missing + xs.shape[2:])


@register("matmul")
def matmul_rule(primals, series, _plan=None):
    """``(A B)_r = sum_{i+j=r} A_i B_j``.  Up to ``_config.COMPILED_MATMUL_MAX_ORDER``
    one compiled kernel (:func:`kernels.matmul_series`) computes every product of real
    matrices, stacks and constants included, in a fixed order of operations, so that
    a direction's series is the same to the bit whatever directions share its run;
    above that order, numpy's GEMMs (:func:`matmul_series_numpy`).  ``_plan`` is the
    kernel call worked out from the operands' layouts (:func:`_matmul_plan`)."""
    if _plan is not None:
        return _plan(primals, series)
    (a0, b0), (as_, bs) = primals, series
    a_vector, b_vector = a0.ndim == 1, b0.ndim == 1
    if a_vector:
        a0 = a0[None, :]
        as_ = None if as_ is None else as_[..., None, :]
    if b_vector:
        b0 = b0[:, None]
        bs = None if bs is None else bs[..., :, None]
    y0 = np.matmul(a0, b0)
    if _fused_matmul(a0, as_, b0, bs):
        ys = _kernel_matmul(a0, as_, b0, bs)
    else:
        ys = matmul_series_numpy(a0, as_, b0, bs, y0.ndim)
    return _unvector(y0, ys, a_vector, b_vector)


def matmul_series_numpy(a0, as_, b0, bs, ndim):
    """The series of ``A B`` (operands of at least 2 axes) by numpy calls: for every
    layout, broadcast batch axes and constants (``None`` series) included."""
    ys = None
    if as_ is not None:
        ys = matmul_stack(expand_series(as_, ndim), b0)
    if bs is not None:
        term = matmul_stack(a0, expand_series(bs, ndim))
        ys = term if ys is None else ys + term
    if as_ is not None and bs is not None and as_.shape[0] >= 2:
        ys = _matmul_cross(expand_series(as_, ndim), expand_series(bs, ndim), ys)
    return ys


def _fused_matmul(a0, as_, b0, bs):
    """Whether :func:`kernels.matmul_series` computes the product: orders up to
    ``_config.COMPILED_MATMUL_MAX_ORDER`` (whatever the directions), non-empty real
    primals, non-empty float64 or complex128 series with their primals' shapes and, where both
    operands have series, the same orders and directions."""
    first = as_ if as_ is not None else bs
    if (first.shape[0] > COMPILED_MATMUL_MAX_ORDER or a0.dtype.char != "d" or b0.dtype.char != "d"
            or a0.size == 0 or b0.size == 0):
        return False
    if as_ is not None and (as_.shape[2:] != a0.shape or as_.dtype.char not in "dD" or as_.size == 0):
        return False
    if bs is not None and (bs.shape[2:] != b0.shape or bs.dtype.char not in "dD" or bs.size == 0):
        return False
    return as_ is None or bs is None or as_.shape[:2] == bs.shape[:2]


_ONE_MATRIX = np.zeros(1, dtype=np.int64)      # the stack index of a lone matrix
_ONE_MATRIX.flags.writeable = False


def _kernel_matmul(a0, as_, b0, bs):
    """The series of ``A B`` by :func:`kernels.matmul_series`: the batch axes of each
    operand merged into one stack, broadcast matrices paired by index rather than copied."""
    if as_ is not None and bs is not None and as_.dtype != bs.dtype:
        as_, bs = as_.astype(np.complex128), bs.astype(np.complex128)
    if a0.ndim == 2 and b0.ndim == 2:                  # two matrices: stacks of one
        ys = kernels.matmul_series(a0[None], None if as_ is None else as_[:, :, None],
                                   b0[None], None if bs is None else bs[:, :, None], _ONE_MATRIX, _ONE_MATRIX)
        return ys[:, :, 0]
    batch = np.broadcast_shapes(a0.shape[:-2], b0.shape[:-2])

    def stack(x0, xs):
        shape, rows, cols = x0.shape[:-2], x0.shape[-2], x0.shape[-1]
        index = np.arange(math.prod(shape)).reshape((1,) * (len(batch) - len(shape)) + shape)
        x0 = x0.reshape((-1, rows, cols))
        xs = None if xs is None else xs.reshape(xs.shape[:2] + (-1, rows, cols))
        return x0, xs, np.broadcast_to(index, batch).ravel()
    (a0, as_, a_index), (b0, bs, b_index) = stack(a0, as_), stack(b0, bs)
    ys = kernels.matmul_series(a0, as_, b0, bs, a_index, b_index)
    return ys.reshape(ys.shape[:2] + batch + ys.shape[-2:])


class _PlannedMatmul:
    """A recorded product's kernel call, its operands' reshapes and stack indices
    worked out once from their layouts: the steps of :func:`matmul_rule` on the
    kernel's path, in the same order, so the same values to the bit."""

    def __init__(self, a, b):
        (a_shape, _, a_series, dtype), (b_shape, _, b_series, b_dtype) = a, b
        self.a_vector, self.b_vector = len(a_shape) == 1, len(b_shape) == 1
        a_shape = (1,) + a_shape if self.a_vector else a_shape
        b_shape = b_shape + (1,) if self.b_vector else b_shape
        dtype = dtype if dtype is not None else b_dtype
        self.order, self.n_dirs = (a_series if a_series is not None else b_series)[:2]
        lead = (self.order, self.n_dirs)
        batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
        self.batch_shape = lead + batch + (a_shape[-2], b_shape[-1])
        stacks = []
        for shape, has_series in ((a_shape, a_series is not None), (b_shape, b_series is not None)):
            if len(a_shape) == len(b_shape) == 2:         # two matrices: stacks of one
                index = _ONE_MATRIX
            else:
                index = np.arange(math.prod(shape[:-2])).reshape((1,) * (len(batch) + 2 - len(shape)) + shape[:-2])
                index = np.ascontiguousarray(np.broadcast_to(index, batch).ravel())
            matrices = (-1,) + shape[-2:]
            stacks.append((matrices, lead + matrices if has_series else None, index))
        (self.a_stack, self.as_stack, self.a_index), (self.b_stack, self.bs_stack, self.b_index) = stacks
        self.kernel = kernels.matmul_series_kernel(dtype, b_shape[-1])
        self.empty = np.empty((0,) * 5, dtype)

    def __call__(self, primals, series):
        (a0, b0), (as_, bs) = primals, series
        if self.a_vector:
            a0 = a0[None, :]
            as_ = None if as_ is None else as_[..., None, :]
        if self.b_vector:
            b0 = b0[:, None]
            bs = None if bs is None else bs[..., :, None]
        y0 = np.matmul(a0, b0)
        ys = self.kernel(a0.reshape(self.a_stack), self.empty if as_ is None else as_.reshape(self.as_stack),
                         as_ is not None, b0.reshape(self.b_stack),
                         self.empty if bs is None else bs.reshape(self.bs_stack), bs is not None,
                         self.a_index, self.b_index, self.order, self.n_dirs)
        return _unvector(y0, ys.reshape(self.batch_shape), self.a_vector, self.b_vector)


@specialization("matmul")
def _matmul_plan(layouts, params):
    """A recorded product on the kernel's path (the conditions of :func:`_fused_matmul`,
    read from the layouts) as a :class:`_PlannedMatmul`; None where the rule takes
    numpy's GEMMs or casts one operand's series."""
    a, b = layouts[:2]
    order = (a[2] if a[2] is not None else b[2])[0]
    if order > COMPILED_MATMUL_MAX_ORDER or a[1].char != "d" or b[1].char != "d" or 0 in a[0] or 0 in b[0]:
        return None
    for shape, dtype, series_shape, series_dtype in (a, b):
        if series_shape is not None and (series_shape[2:] != shape or series_dtype.char not in "dD"
                                         or 0 in series_shape):
            return None
    if a[2] is not None and b[2] is not None and (a[2][:2] != b[2][:2] or a[3] != b[3]):
        return None
    return {"_plan": _PlannedMatmul(a, b)}


def _unvector(y0, ys, a_vector, b_vector):
    """The product's primal and series with the axes of 1-D operands taken out again."""
    if a_vector and b_vector:
        return y0[..., 0, 0], ys[..., 0, 0]
    if b_vector:
        return y0[..., 0], ys[..., 0]
    if a_vector:
        return y0[..., 0, :], ys[..., 0, :]
    return y0, ys


def _matmul_cross(as_, bs, ys):
    order, k = as_.shape[0], as_.shape[-1]
    ys = ys.astype(np.result_type(ys, as_, bs), copy=False)     # the sum of two fresh GEMMs
    # A_cat[m, ..., n, (i-1)*k + c] = A_i[m, ..., n, c]           for i = 1..K
    nd = as_.ndim
    a_cat = as_.transpose(tuple(range(1, nd - 1)) + (0, nd - 1))
    a_cat = a_cat.reshape(a_cat.shape[:-2] + (order * k,))
    # B_flip[m, ..., (K-j)*k + c, p] = B_j[m, ..., c, p]           for j = K..1
    b_flip = bs[::-1].transpose(tuple(range(1, nd - 2)) + (0, nd - 2, nd - 1))
    b_flip = b_flip.reshape(b_flip.shape[:-3] + (order * k, b_flip.shape[-1]))
    for r in range(2, order + 1):
        ys[r - 1] += np.matmul(a_cat[..., : (r - 1) * k], b_flip[..., (order - r + 1) * k:, :])
    return ys


# ----------------------------------------------------------------------------
# nonlinear elementwise primitives (recurrences in kernels.py)

_unary_kernel_rule("exp", np.exp, kernels.exp)
_unary_kernel_rule("log", np.log, kernels.log,
                   domain=(positive, off_branch_cut, "log needs x_0 > 0"))


@register("pow")
def pow_rule(primals, series, exponent, _layout=None):
    """``x^a`` for a real, non-integer ``a`` (integer powers are products)."""
    (x0,), (xs,) = primals, series
    check_domain(f"x**{exponent}", x0, positive, off_branch_cut,
                  "a real power needs x_0 > 0")
    y0 = np.power(x0, exponent)
    return y0, _unary_series(x0, xs, y0, lambda x, y: kernels.power(x, float(exponent), y), _layout)


specialization("pow")(_unary_plan)


def _tanh_kernel(x, y):
    kernels.tanh(x, y, np.empty_like(x))


_unary_kernel_rule("tanh", np.tanh, _tanh_kernel)


def _erf_kernel(x, y):
    """``erf' = (2/sqrt(pi)) exp(-x^2)``: that jet (its primal by numpy's ``exp``), then
    the ODE recurrence, block by block (:func:`kernels.erf`)."""
    kernels.erf(x, np.exp(-(x[0] * x[0])), y)


_unary_kernel_rule("erf", scipy.special.erf, _erf_kernel)


def _sin_kernel(x, y):
    cos = np.empty_like(x)
    cos[0] = np.cos(x[0])
    kernels.sincos(x, y, cos)


def _cos_kernel(x, y):
    sin = np.empty_like(x)
    sin[0] = np.sin(x[0])
    kernels.sincos(x, sin, y)


_unary_kernel_rule("sin", np.sin, _sin_kernel)
_unary_kernel_rule("cos", np.cos, _cos_kernel)


@register("compose")
def compose_rule(primals, series, derivatives):
    """``h(x)`` from ``derivatives`` = ``[h(x_0), h'(x_0), ..., h^(K)(x_0)]``, shape ``(K+1, *shape)``."""
    (x0,), (xs,) = primals, series
    order, n_dirs = xs.shape[:2]
    shape = np.shape(x0)
    derivatives = np.broadcast_to(np.asarray(derivatives), (order + 1,) + shape)
    layout = _series_layout(xs.shape, shape, _out_dtype(x0, xs, derivatives))
    x = _filled(x0, xs, layout)
    d = np.empty(layout[0], layout[2])
    d[:] = derivatives[:, None]
    y = np.empty(layout[0], layout[2])
    kernels.compose(x.reshape(layout[1]), d.reshape(layout[1]), y.reshape(layout[1]))
    return derivatives[0].copy(), y[1:]
