"""Hypothesis strategies shared by the tests: bounded, finite and small.

Every value is drawn from a range where the function under test is analytic and
its coefficients stay far from overflow up to order 12: series coefficients lie
in [-1, 1] (real and imaginary parts), primals in a domain chosen per function
(``"any"``, ``"positive"`` for log and real powers, ``"nonzero"`` for divisors)
and kept at distance >= 0.5 from every singularity.  Shapes have at most 3 axes
of at most 4 entries (3 for broadcast pairs).

Shape legend: K = order (0..12), M = number of directions (1..4),
L = number of independent scalar series (1..6), S = primal shape.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_ORDER = 12

orders = st.integers(0, MAX_ORDER)
n_directions = st.integers(1, 4)
sizes = st.integers(1, 6)
dtypes = st.sampled_from([np.float64, np.complex128])

# ``x ** a`` with a non-integer ``a`` goes through the power rule, an integer
# one through products (and a division when negative).
real_exponents = st.floats(-3.0, 3.0, allow_nan=False).filter(lambda a: not float(a).is_integer())
integer_exponents = st.integers(-4, 6)


def reals(low, high):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def real_arrays(shape, low=-1.0, high=1.0):
    return hnp.arrays(np.float64, shape, elements=reals(low, high))


def arrays(shape, dtype, low=-1.0, high=1.0):
    """Entries with real (and, for complex dtypes, imaginary) parts in [low, high]."""
    if dtype is np.float64:
        return real_arrays(shape, low, high)
    parts = st.tuples(real_arrays(shape, low, high), real_arrays(shape, low, high))
    return parts.map(lambda p: p[0] + 1j * p[1])


@st.composite
def primals(draw, shape, dtype, domain="any"):
    """A primal ``c_0`` of ``shape`` in ``domain``: ``"any"`` (real part in [-2, 2]),
    ``"positive"`` ([0.5, 2]) or ``"nonzero"`` (+-[0.5, 2]).  For a complex primal the
    imaginary part stays in [-0.5, 0.5]: well away from log's branch cut and from
    tanh's poles at +-i pi/2."""
    if domain == "any":
        real = draw(real_arrays(shape, -2.0, 2.0))
    elif domain == "positive":
        real = draw(real_arrays(shape, 0.5, 2.0))
    elif domain == "nonzero":
        magnitude = draw(real_arrays(shape, 0.5, 2.0))
        sign = draw(hnp.arrays(np.bool_, shape))
        real = np.where(sign, -magnitude, magnitude)
    else:
        raise ValueError(f"unknown primal domain {domain!r}")
    if dtype is np.float64:
        return real
    return real + 1j * draw(real_arrays(shape, -0.5, 0.5))


@st.composite
def coefficient_arrays(draw, order, size, dtype, domain="any"):
    """A full coefficient array ``(K+1, L)``: row 0 a primal in ``domain``, rows 1..K in [-1, 1]."""
    full = np.empty((order + 1, size), dtype=dtype)
    full[0] = draw(primals((size,), dtype, domain))
    full[1:] = draw(arrays((order, size), dtype))
    return full


@st.composite
def jets(draw, shape, order, n_dirs, series_dtype, domain="any", series_scale=1.0):
    """A Jet with a real primal of ``shape`` in ``domain`` and a random series ``(K, M, *S)``
    with parts in ``[-series_scale, series_scale]``.

    The series is arbitrary, not only ``c_1 = v``: identities must hold for any
    jet, not just for the jet of a straight line.  A small ``series_scale``
    keeps ``|c_k / c_0|`` small, so that intermediate coefficients of a
    composition (log before exp, ...) stay O(1) and rounding stays ~eps.
    """
    from taylorsketch import Jet
    primal = draw(primals(shape, np.float64, domain))
    series = draw(arrays((order, n_dirs) + tuple(shape), series_dtype))
    return Jet(primal, series_scale * series)


broadcastable_shape_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                               max_side=3)


# ----------------------------------------------------------------------------
# functions on subsets and MultiJets (d nilpotent variables, 2^d coefficients)

MAX_SUBSET_VARIABLES = 10          # the naive O(3^d) twin takes ~0.1 s at d = 10
subset_variables = st.integers(0, MAX_SUBSET_VARIABLES)
multijet_variables = st.integers(1, 4)


@st.composite
def subset_functions(draw, d, size, dtype):
    """A function on the subsets of ``{0..d-1}``: ``(2^d, L)`` with parts in [-1, 1]."""
    return draw(arrays((1 << d, size), dtype))


@st.composite
def multijets(draw, shape, d, n_dirs, series_dtype, domain="any", series_scale=1.0):
    """A MultiJet with a real primal of ``shape`` in ``domain`` and an arbitrary series
    ``(2^d - 1, M, *S)`` with parts in ``[-series_scale, series_scale]``
    (arbitrary, not only ``x + sum_i z_i v_i``)."""
    from taylorsketch import MultiJet
    primal = draw(primals(shape, np.float64, domain))
    series = draw(arrays(((1 << d) - 1, n_dirs) + tuple(shape), series_dtype))
    return MultiJet(primal, series_scale * series)


# ----------------------------------------------------------------------------
# bad input on purpose (tests/test_fuzz.py): unlike the strategies above, these
# draw what a careless user or a damaged disk gives, not what a function accepts

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


@st.composite
def byte_damage(draw, data):
    """``data`` (bytes) truncated, or with 1..4 bytes overwritten, or both."""
    damaged = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        damaged[draw(st.integers(0, len(damaged) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        damaged = damaged[:draw(st.integers(0, len(damaged) - 1))]
    if bytes(damaged) == data:      # always some damage
        damaged = damaged[:-1]
    return bytes(damaged)


@st.composite
def metadata_edits(draw, meta):
    """A copy of ``meta`` (a JSON object) with one key deleted or given a random value,
    at the top level or one level down."""
    meta = json_roundtrip(meta)
    target = meta
    nested = [k for k, v in meta.items() if isinstance(v, dict) and v]
    if nested and draw(st.booleans()):
        target = meta[draw(st.sampled_from(sorted(nested)))]
    key = draw(st.sampled_from(sorted(target)))
    if draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(json_values)
    return meta


def json_roundtrip(value):
    import json
    return json.loads(json.dumps(value))


@st.composite
def array_edits(draw, array):
    """``array`` with another dtype, another shape, or a non-finite entry."""
    how = draw(st.sampled_from(["dtype", "shape", "non-finite", "empty"]))
    if how == "dtype":
        dtype = draw(st.sampled_from([np.float32, np.complex64, np.int64, np.int8, np.bool_, np.float16,
                                      np.uint8, np.complex128, np.float64, "U3"]))
        return array.astype(dtype) if dtype != "U3" else np.full(array.shape, "abc")
    if how == "shape":
        return array.reshape(-1)[: max(array.size - 1, 0)] if draw(st.booleans()) else array[None]
    if how == "empty":
        return np.zeros((0,) * array.ndim, dtype=array.dtype)
    out = array.astype(np.result_type(array, np.float64)).copy()
    if out.size:
        out.reshape(-1)[draw(st.integers(0, out.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return out


# argument values for the command line: out of range, not numbers, empty, huge
bad_numbers = st.sampled_from(["-1", "0", "-32000", "nan", "inf", "-inf", "1.5", "", "x", "1e3", " 1"])
small_numbers = st.sampled_from(["1", "2", "3"])
any_numbers = bad_numbers | small_numbers | st.sampled_from(["99999999999", "7"])
texts = st.sampled_from(["", "x", "max", "a$", "zzz", "Max!", " ", "\n", "é", "--", "0,1", "1,1", "a,b",
                         "anna", "max", "a", "1", "0", "1,2"])
