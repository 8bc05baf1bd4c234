"""The subset kernels against their naive twins in ``reference.py`` (sums over submasks).

Random ``d`` in 0..10, float64 and complex128.  Tolerance: every output is a
signed sum of products of inputs, and its rounding error is at most a few
``eps`` per pass (``d + 1`` of them) times the same sum with every term
replaced by its absolute value (``_abs_bound``).  That bound is what the
all-ones input reaches: no cancellation in the zeta transform, all of it in
the Moebius one.  Random inputs stay far below it (measured: ``0.73 eps 2^d``
for uniform [-1, 1] parts), and a wrong index or sign gives an O(1) error.

Shape legend: d = number of variables, L = number of scalar functions.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference_subsets
import strategies
import taylorsketch as ts
from taylorsketch import subset_kernels

EPS = np.finfo(np.float64).eps
SAFETY = 16.0


@st.composite
def subset_cases(draw, n_functions):
    d = draw(strategies.subset_variables)
    size = draw(st.integers(1, 3))
    dtype = draw(strategies.dtypes)
    return (d, *[draw(strategies.subset_functions(d, size, dtype)) for _ in range(n_functions)])


def _abs_moebius(fhat):
    """``sum_{T subset S} |fhat[|S|, T]|``: the ranked Moebius transform without its signs."""
    return reference_subsets.ranked_moebius_abs(np.abs(fhat))


def _tolerance(d, bound):
    # relative rounding, plus an absolute floor for products that underflow into the
    # subnormals (hypothesis found 3.9e-112 * 2.1e-205): there every product is off by up
    # to half the smallest subnormal, and the fast transforms add at most (d+1) 4^d of them
    return SAFETY * (EPS * (d + 1) * bound + (d + 1) * 4.0 ** d * np.finfo(float).smallest_subnormal)


@given(subset_cases(2))
def test_subset_convolution_matches_naive_sum(case):
    d, f, g = case
    out = np.empty(f.shape, dtype=np.result_type(f, g))
    subset_kernels.subset_convolution(f, g, out)
    want = reference_subsets.subset_convolution(f, g)
    fz, gz = reference_subsets.ranked_zeta(np.abs(f)), reference_subsets.ranked_zeta(np.abs(g))
    hz = np.stack([sum(fz[j] * gz[k - j] for j in range(k + 1)) for k in range(d + 1)])
    assert np.all(np.abs(out - want) <= _tolerance(d, _abs_moebius(hz)))


def _without_empty_set(f):
    """A subset function with ``f(empty) = 0``: what the series layout holds."""
    f = f.copy()
    f[0] = 0.0
    return f


@given(subset_cases(1))
def test_ranked_zeta_matches_naive_sum(case):
    d, f = case
    f = _without_empty_set(f)
    out = np.empty((d,) + f[1:].shape, dtype=f.dtype)
    subset_kernels.ranked_zeta(f[1:], out)
    want = reference_subsets.ranked_zeta(f)
    assert np.all(want[0] == 0.0) and np.all(want[:, 0] == 0.0)     # rank 0 and the empty mask
    assert np.all(np.abs(out - want[1:, 1:]) <= _tolerance(d, reference_subsets.ranked_zeta(np.abs(f))[1:, 1:]))


@given(subset_cases(1))
def test_ranked_moebius_matches_naive_sum(case):
    d, f = case
    fhat = np.stack([np.roll(f, k, axis=0) * (k + 1) for k in range(d + 1)])   # any ranked array
    fhat[0] = 0.0
    fhat[:, 0] = 0.0
    out = np.empty_like(f[1:])
    subset_kernels.ranked_moebius(fhat[1:, 1:].copy(), out)
    want = reference_subsets.ranked_moebius(fhat)
    assert np.all(np.abs(out - want[1:]) <= _tolerance(d, _abs_moebius(fhat)[1:]))


@given(subset_cases(1))
def test_zeta_then_moebius_is_the_identity(case):
    d, f = case
    f = _without_empty_set(f)
    fhat = np.empty((d,) + f[1:].shape, dtype=f.dtype)
    subset_kernels.ranked_zeta(f[1:], fhat)
    out = np.empty_like(f[1:])
    bound = _abs_moebius(reference_subsets.ranked_zeta(np.abs(f)))[1:]
    subset_kernels.ranked_moebius(fhat, out)
    assert np.all(np.abs(out - f[1:]) <= _tolerance(d, bound))


def test_convolution_of_disjoint_monomials():
    """``z_{0,2} * z_{1} = z_{0,1,2}``, ``z_{0} * z_{0} = 0``: the defining products."""
    def monomial(mask, d=3):
        f = np.zeros((1 << d, 1))
        f[mask] = 1.0
        return f
    out = np.empty((8, 1))
    subset_kernels.subset_convolution(monomial(0b101), monomial(0b010), out)
    np.testing.assert_array_equal(out[:, 0], monomial(0b111)[:, 0])
    subset_kernels.subset_convolution(monomial(0b001), monomial(0b001), out)
    np.testing.assert_array_equal(out[:, 0], np.zeros(8))


def test_popcounts():
    assert subset_kernels.popcounts(8).tolist() == [0, 1, 1, 2, 1, 2, 2, 3]


# ----------------------------------------------------------------------------
# the numpy-facing function


def test_public_subset_convolution_broadcasts_trailing_axes():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(8, 2, 3))
    g = rng.normal(size=(8, 1, 3)) + 1j * rng.normal(size=(8, 1, 3))
    got = ts.subset_convolution(f, g)
    want = reference_subsets.subset_convolution(f, np.broadcast_to(g, f.shape))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("f, g, message", [
    (np.ones(3), np.ones(3), "must be 2\\^d"),
    (np.ones(4), np.ones(8), "same leading length"),
    (np.ones((4, 2)), np.ones((4, 3)), "do not broadcast"),
    (np.array([1.0, np.nan]), np.ones(2), "finite"),
    (np.ones(1 << 21), np.ones(1 << 21), "0..20"),
])
def test_public_subset_convolution_rejects_bad_input(f, g, message):
    with pytest.raises(ValueError, match=message):
        ts.subset_convolution(f, g)
