"""What the tests share: layouts and dtypes, layout conversions, the error bound results are held
to, the comparisons that apply it, and the valid problem the argument-checking tests corrupt.

Two comparisons:

- assert_within_bound(got, expected, abs_sum, terms): element by element, against the worst-case
  rounding error of a sum of `terms` terms in got's precision (derived below). It holds for any
  summation order, so for any BLAS kernel. Use it wherever the test can compute sum |terms| (the
  same reference computation on absolute values).
- assert_close(actual, expected, dtype=None, tol=None): relative to max(1, max |expected|), for
  comparisons whose sum |terms| the test does not compute (small problems, cyconv against itself,
  finite differences). Its TOL is a scale-relative tolerance, not a bound.

The bound (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., section 3.1, (3.4) to
(3.5) and Lemma 3.1). Model: every operation (a product, a sum, a conversion to a narrower type)
returns the exact result times (1 + d), |d| <= u, u = 2**-24 in float32 and 2**-53 in float64 (round
to nearest, no underflow: the tests' data are of order one). A fused multiply-add rounds once for a
product and a sum; an operation in a wider type rounds with a smaller d. Then a sum

    y = sum_{k=1..K} t_k,   t_k = a_k * b_k (or t_k = a_k alone, as in grad_bias)

computed by forming each product once and adding the terms in ANY order and grouping -- one
sum or several stages (blocks of rows, a product then col2im's adds), partial sums rounded to the
result's type or a wider one -- satisfies

    |y_computed - y| <= gamma_K * sum_k |t_k|,   gamma_K = K u / (1 - K u).

Why: the additions form a binary tree with K leaves, so on its way to the root a term meets at
most K - 1 rounded additions and one more rounding -- its product or, for a term without one, the
final conversion to the result's type: y_computed = sum_k t_k (1 + theta_k) with
|theta_k| <= (1 + u)**K - 1 <= gamma_K. (Roundings in a wider type only shrink theta_k: a float64
computation rounded once to float32 is within the bound too, which is why
assert_float32_arithmetic exists.) K counts every term of the sum, zero or not: a tap in the
padding is a term; the bias is one more term (cyconv adds it inside the product, or after it).

The tests compare with r, the same sum in float64 by tests/reference.py from the same inputs
(float32 data convert to float64 exactly), |r - y| <= gamma_K(2**-53) S, S = sum |t_k|; and S is
itself computed in float64 from non-negative terms, S <= S_computed / (1 - gamma_K(2**-53)). So

    |y_computed - r| <= (gamma_K(u) + 2 gamma_K(2**-53)) * S_computed          (error_bound)

For K = 4609 in float32 that is 2.75e-4 of S: a worst case, reached only if every rounding went
the same way. Real errors are far smaller (on five OpenBLAS kernels, at most 2.3e-6 of S and 8 %
of the bound in tests/test_precision.py), and they do not matter: the bound holds for every
kernel and summation order. A defect is caught when it moves some element by more than the bound:
a wrong tap or a lost channel always, a single lost term of K when that term exceeds gamma_K S,
i.e. in sums of up to a few hundred terms (tests/test_precision.py shows both).
"""
import numpy as np

from reference import direct_reference, nchw, nhwc, winograd_reference

LAYOUTS = ("NHWC", "NCHW")
DTYPES = (np.float32, np.float64)


def to_layout(a, layout):
    """An NHWC array (or an (F, kh, kw, C) kernel) in `layout`."""
    return a if layout.upper() == "NHWC" else nchw(a)


def from_layout(a, layout):
    """An array in `layout` back to NHWC (or a kernel back to (F, kh, kw, C))."""
    return a if layout.upper() == "NHWC" else nhwc(a)


# ----------------------------------------------------------------------------- the bound

UNIT_ROUNDOFF = {np.dtype(np.float32): 2.0**-24, np.dtype(np.float64): 2.0**-53}


def gamma(terms, dtype=np.float64):
    """gamma_K = K u / (1 - K u) for K = `terms` in `dtype`'s unit roundoff u: a sum of K products
    computed in any order is within gamma_K * sum |products| of the exact sum."""
    ku = terms * UNIT_ROUNDOFF[np.dtype(dtype)]
    assert ku < 0.5, f"{terms} terms are too many for a bound in {np.dtype(dtype)}"
    return ku / (1 - ku)


def error_bound(abs_sum, terms, dtype):
    """Largest |computed - reference| of a sum of `terms` terms whose absolute values add up to
    `abs_sum` (computed in float64), computed in `dtype` and compared with a float64 reference."""
    return (gamma(terms, dtype) + 2 * gamma(terms, np.float64)) * np.asarray(abs_sum, np.float64)


def assert_within(got, expected, bound, what=""):
    """Every element of got (float32 or float64) is within `bound` (float64, elementwise) of
    expected (float64); a NaN anywhere fails."""
    assert got.dtype in UNIT_ROUNDOFF, f"dtype {got.dtype}, expected float32 or float64"
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    error = np.abs(got.astype(np.float64) - expected)
    bound = np.broadcast_to(np.asarray(bound, np.float64), error.shape)
    outside = ~(error <= bound)
    if outside.any():
        worst = np.unravel_index(np.argmax(np.where(outside, error - bound, -np.inf)), got.shape)
        raise AssertionError(f"{outside.sum()} of {got.size} elements outside the bound {what}; at "
                             f"{tuple(map(int, worst))}: error {error[worst]:.3g}, bound {bound[worst]:.3g}")


def assert_within_bound(got, expected, abs_sum, terms):
    """Every element of got (float32 or float64) is within error_bound of expected (float64)."""
    assert_within(got, expected, error_bound(abs_sum, terms, got.dtype),
                  f"(gamma_K(u) + 2 gamma_K(2**-53)) * sum|terms| with K = {terms} terms in {got.dtype}")


def assert_float32_arithmetic(got, expected, abs_sum, terms):
    """Some element of float32 `got` is further from `expected` than a float64 computation rounded
    once to float32 could be: |got - expected| > u |expected| + 3 gamma_K(2**-53) sum|terms|.

    A float64 result rounded to float32 is within u |y| of its float64 value, itself within
    2 gamma_K(2**-53) S of expected. A float32 accumulation of thousands of same-signed terms
    misses by many units u (its rounding errors add up), so this holds for it on large sums."""
    assert got.dtype == np.float32, f"dtype {got.dtype}, expected float32"
    u = UNIT_ROUNDOFF[np.dtype(np.float32)]
    error = np.abs(got.astype(np.float64) - expected)
    single_rounding = u * np.abs(expected) + 3 * gamma(terms, np.float64) * abs_sum
    assert (error > single_rounding).any(), (
        f"every element is within one float32 rounding of the float64 result (largest error "
        f"{(error / single_rounding).max():.2f} roundings): computed in float64, not float32?"
    )


# Rounded operations on each path through Winograd F(m x m, 3x3) besides the C-term products (the
# transforms and the bias), by tile m: n - C in tests/test_winograd.py's bound gamma_n * Y_abs.
WINOGRAD_ROUNDINGS = {2: 12, 4: 18}


def winograd_error_bound(x, kernel, bias, pads, out_hw, dilations, pad_value, m, dtype):
    """The bound on |y_computed - y_reference| of Winograd F(m x m, 3x3), elementwise (float64),
    for a computation in `dtype` against the direct loop in float64 (derived in
    tests/test_winograd.py's docstring): gamma_{C + p}(u) Y_abs + gamma_{C + 10}(2**-53) S."""
    c = kernel.shape[3]
    y_abs = winograd_reference(x, kernel, bias, pads, out_hw, dilations, pad_value, m, absolute=True)
    direct_abs = direct_reference(np.abs(x), np.abs(kernel), np.abs(bias), pads, out_hw, dilations, abs(pad_value))
    return (gamma(c + WINOGRAD_ROUNDINGS[m], dtype) * y_abs + gamma(c + 10) * direct_abs) * (1 + 1e-12)


# ----------------------------------------------------------------------------- tolerances

# Relative to max(1, max |expected|), for comparisons without sum |terms|. float32: 2e-5 is
# gamma_K for K = 333; the suite's other float32 sums have at most a few hundred terms of order one.
# float64: 1e-12, about 4500 u. Tolerances, not bounds: where a claim rests on float accuracy the
# test uses assert_within_bound.
TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}
# Central differences of a linear loss L with step h carry a rounding error of about
# 1e-16 * |L| / h; callers multiply FD_TOL by a bound on |L| (h = 1e-3 in reference.py's default).
FD_TOL = 1e-9


def assert_close(actual, expected, dtype=None, tol=None):
    """|actual - expected| <= tol * max(1, max |expected|) everywhere, with equal shapes; actual has
    `dtype` when one is given; tol defaults to TOL of actual's dtype."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if dtype is not None:
        assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    tol = TOL[actual.dtype] if tol is None else tol
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * scale)


# ----------------------------------------------------------------------------- fixed problems

_rng = np.random.default_rng(0)
# A valid conv2d problem in NHWC; the argument-checking tests (test_bad_input_*.py) corrupt one
# argument at a time. conv2d(X, K) with VALID padding has shape GY.shape = (2, 3, 4, 4).
X = _rng.standard_normal((2, 5, 6, 3))
K = _rng.standard_normal((4, 3, 3, 3))
B = _rng.standard_normal(4)
GY = _rng.standard_normal((2, 3, 4, 4))


def document_input():
    """Document 001's worked example: x (1, 3, 3, 2); with a (1, 2, 2, 2) kernel of ones and SAME
    padding the output's one channel is DOCUMENT_OUTPUT."""
    x = np.zeros((1, 3, 3, 2))
    x[0, :, :, 0] = [[2, 1, 1.5], [3, 2.2, 5], [5, 3, 2]]
    x[0, :, :, 1] = [[7.3, 4, 2], [4, 3, 2], [0.8, 2.7, 3.9]]
    return x


DOCUMENT_OUTPUT = np.array([[26.5, 20.7, 10.5], [23.7, 23.8, 12.9], [11.5, 11.6, 5.9]])


def structured(shape):
    """A zero array of a structured dtype: not a number type."""
    return np.zeros(shape, dtype=[("a", "f8"), ("b", "i4")])


def case_ids(cases):
    """pytest ids of a table of cases whose first entry is the id."""
    return [case[0] for case in cases]
