"""``ts.taylor`` and ``ts.derivatives``: the API boundary where c_r = f^(r)/r! becomes f^(r).

Shape legend: K = order, S = shape of x, O = shape of f's output.
"""

import functools
import math

import numpy as np
import pytest

import reference
import taylorsketch as ts

FACTORIALS = np.array([math.factorial(r) for r in range(13)], dtype=float)


@pytest.mark.parametrize("v", [1.0, -0.5, 0.6 + 0.8j])
def test_taylor_of_exp_and_log_is_exact(v):
    r = np.arange(13)
    np.testing.assert_allclose(ts.taylor(ts.exp, 0.0, v, order=12), v ** r / FACTORIALS, rtol=1e-14)
    want_log = np.where(r == 0, 0.0, -(-v) ** r / np.maximum(r, 1))          # log(1 + v t)
    np.testing.assert_allclose(ts.taylor(ts.log, 1.0, v, order=12), want_log, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(ts.taylor(lambda x: 1 / (1 - x), 0.0, v, order=12), v ** r, rtol=1e-13)


def test_derivatives_are_factorials_times_coefficients():
    np.testing.assert_array_equal(ts.derivatives(lambda x: x ** 3, 2.0, 1.0, order=4), [8, 12, 12, 6, 0])
    f = lambda x: ts.sin(x) * ts.exp(0.5 * x)                                 # noqa: E731
    coefficients = ts.taylor(f, 0.3, 0.7 - 0.2j, order=12)
    np.testing.assert_allclose(ts.derivatives(f, 0.3, 0.7 - 0.2j, order=12),
                               coefficients * FACTORIALS, rtol=1e-15)
    # d^r/dt^r e^(at) = a^r
    np.testing.assert_allclose(ts.derivatives(lambda x: ts.exp(x), 0.0, 1.5, order=12),
                               1.5 ** np.arange(13), rtol=1e-13)


def test_output_shape_is_order_plus_one_by_output_shape():
    x = np.arange(6.0).reshape(2, 3) / 6
    v = np.ones((2, 3))
    assert ts.taylor(lambda x: x @ x.T, x, v, order=4).shape == (5, 2, 2)
    assert ts.taylor(lambda x: ts.sum(x), x, v, order=4).shape == (5,)
    assert ts.taylor(lambda x: x[0], x, v, order=0).shape == (1, 3)
    assert ts.derivatives(ts.tanh, x, v, order=2).shape == (3, 2, 3)


def test_python_scalars_and_integer_points_are_accepted():
    np.testing.assert_allclose(ts.taylor(ts.exp, 0, 1, order=3), [1, 1, 1 / 2, 1 / 6], rtol=1e-15)


def test_constant_function_has_zero_series():
    out = ts.taylor(lambda x: np.ones(3), np.zeros(2), np.ones(2), order=3)
    np.testing.assert_array_equal(out, np.r_[np.ones((1, 3)), np.zeros((3, 3))])


def _model(x):
    """A one-hidden-layer network with softmax output, written with ts functions only."""
    w = np.linspace(-1, 1, 12).reshape(4, 3)
    hidden = ts.gelu(x @ w) * ts.sigmoid(x @ w)
    return ts.softmax(hidden, axis=-1)


@pytest.mark.parametrize("v_imag", [0.0, 0.5])
def test_taylor_of_a_model_matches_finite_differences(v_imag):
    x = np.array([[0.3, -0.8, 1.1, 0.2], [-0.5, 0.9, 0.4, -1.3]])
    # |(v @ w)_j| <= 0.5 keeps sigmoid's poles (x @ w = +-i pi) at |t| > 3: radius 0.7 is safe
    v = 0.25 * np.cos(np.arange(8.0)).reshape(2, 4) * (1 + 1j * v_imag)
    got = ts.taylor(_model, x, v, order=12)
    g = lambda t: _model(x + t * v)                                           # noqa: E731  (numpy path)
    want, tolerance = reference.circle_coefficients(g, 12, radius=0.7)
    reference.assert_matches_oracle(got, want, tolerance)
    want, tolerance = reference.richardson_coefficients(g, 4)
    reference.assert_matches_oracle(got[:5], want, tolerance)


# ----------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused(bad):
    with pytest.raises(ValueError, match=r"x contains non-finite values \(NaN or inf\)"):
        ts.taylor(ts.exp, np.array([1.0, bad]), np.ones(2), order=2)
    with pytest.raises(ValueError, match=r"v contains non-finite values \(NaN or inf\)"):
        ts.taylor(ts.exp, np.ones(2), np.array([bad, 1.0]), order=2)
    with pytest.raises(ValueError, match="non-finite"):
        ts.derivatives(ts.exp, np.ones(2), np.array([1.0, complex(0, bad)]), order=2)


@pytest.mark.parametrize("v_shape", [(3,), (1, 2), (2, 1), ()])
def test_wrong_direction_shape_is_refused(v_shape):
    with pytest.raises(ValueError, match=r"direction v must have the shape of x \(2,\)"):
        ts.taylor(ts.exp, np.ones(2), np.ones(v_shape), order=2)


@pytest.mark.parametrize("order", [-1, 2.5, "3", True, None])
def test_bad_order_is_refused(order):
    with pytest.raises(ValueError, match="order must be a non-negative integer"):
        ts.taylor(ts.exp, 1.0, 1.0, order=order)
    with pytest.raises(ValueError, match="order must be a non-negative integer"):
        ts.derivatives(ts.exp, 1.0, 1.0, order=order)


def test_domain_errors_reach_the_caller():
    with pytest.raises(ValueError, match=r"log needs x_0 > 0"):
        ts.taylor(ts.log, -1.0, 1.0, order=3)
    with pytest.raises(ValueError, match=r"divisor's primal is 0"):
        ts.taylor(functools.partial(np.divide, 1.0), 0.0, 1.0, order=3)
