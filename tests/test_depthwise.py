"""cyconv._depthwise (depthwise convolution: groups = C, output channel f = c * M + m reads input
channel c) against independent references.

The forward reference below is written from the formula (a gather of every tap's input position,
with pad_value outside the input) in float64 NumPy and shares no code with the compiled kernels; one
test ties it to tests/reference.py's direct loop. The gradients' references are tests/reference.py's
transposed convolution and kernel-gradient loops with one group per channel; the gradients are also
checked with central differences and the adjoint identity.

Tolerances are derived, not measured: tests/helpers.py's error_bound, (gamma_K(u) + 2 gamma_K(2^-53))
* sum |terms| for a sum of K terms (any order, with or without fused multiply-adds) compared with a
float64 reference. sum |terms| is the reference applied to |x|, |kernel|, |bias|, |pad_value|,
|grad_y|. A test builds deliberately broken results (a dropped tap, a wrong channel, a shifted
border) and shows the bound rejects each.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cyconv import _depthwise
from helpers import LAYOUTS, UNIT_ROUNDOFF, assert_within_bound, error_bound, gamma
from reference import (conv2d_reference, conv2d_transpose_reference, finite_difference_grad, kernel_grad_reference,
                       nchw, nhwc)


# ----------------------------------------------------------------------------------------------
# References, NHWC, float64. kernel is (C * M, kh, kw): output channel f = c * M + m.


def _taps(in_size, out_size, taps, stride, dilation, pad):
    """Input positions (out_size, taps) read by each output position and tap, and whether they lie
    inside [0, in_size)."""
    pos = np.arange(out_size)[:, None] * stride - pad + np.arange(taps)[None, :] * (dilation + 1)
    inside = (pos >= 0) & (pos < in_size)
    return np.clip(pos, 0, max(in_size - 1, 0)), inside


def gather(x, kernel_hw, strides, dilations, pad_top, pad_left, out_hw, pad_value):
    """(N, OH, kh, OW, kw, C): the input value each tap of each output pixel reads (pad_value
    outside the input), and the positions (rows, cols) with their masks."""
    x = np.asarray(x, dtype=np.float64)
    n, h, w, c = x.shape
    rows, row_in = _taps(h, out_hw[0], kernel_hw[0], strides[0], dilations[0], pad_top)
    cols, col_in = _taps(w, out_hw[1], kernel_hw[1], strides[1], dilations[1], pad_left)
    inside = row_in[:, :, None, None] & col_in[None, None, :, :]
    values = x[:, rows[:, :, None, None], cols[None, None, :, :], :]
    return np.where(inside[None, ..., None], values, pad_value), (rows, cols, inside)


def forward_reference(x, kernel, bias, strides, dilations, pad_top, pad_left, out_hw, pad_value):
    """y[n, oh, ow, c * M + m] = bias + sum over taps of xp(tap) [c] * kernel[c * M + m, i, j]."""
    c = x.shape[3]
    f, kh, kw = kernel.shape
    taps, _ = gather(x, (kh, kw), strides, dilations, pad_top, pad_left, out_hw, pad_value)
    k = np.asarray(kernel, dtype=np.float64).reshape(c, f // c, kh, kw)
    y = np.einsum("nhiwjc,cmij->nhwcm", taps, k).reshape(*taps.shape[:2], taps.shape[3], f)
    return y if bias is None else y + np.asarray(bias, dtype=np.float64)


def input_grad_reference(grad_y, kernel, strides, dilations, pad_top, pad_left, x_shape):
    """d <y, grad_y> / dx, (N, H, W, C): reference.py's transposed convolution, one group per channel."""
    n, h, w, c = x_shape
    return conv2d_transpose_reference(grad_y, kernel[..., None], None, strides, dilations,
                                      ((pad_top, 0), (pad_left, 0)), (h, w), groups=c)


def depthwise_kernel_grad(x, grad_y, kernel_hw, strides, dilations, pad_top, pad_left, pad_value):
    """d <y, grad_y> / dkernel, (C * M, kh, kw): reference.py's loop with one group per channel."""
    return kernel_grad_reference(x, grad_y, kernel_hw, strides, dilations, (pad_top, pad_left), pad_value,
                                 groups=x.shape[3])[..., 0]


# ----------------------------------------------------------------------------------------------
# Calling the compiled kernels with NHWC arrays in either layout


def run_forward(p, x, kernel, bias, layout, num_threads=2):
    """y (N, OH, OW, C * M) as NHWC, computed in `layout`. Every element must be written."""
    n, (out_h, out_w), f = x.shape[0], p["out_hw"], kernel.shape[0]
    b = np.zeros(kernel.shape[0], dtype=x.dtype) if bias is None else bias
    args = (*p["strides"], *p["dilations"], p["pad_top"], p["pad_left"], p["pad_value"], num_threads)
    if layout == "NHWC":
        y = np.full((n, out_h, out_w, f), np.nan, dtype=x.dtype)
        _depthwise.forward_nhwc(x, np.ascontiguousarray(kernel[..., None]), b, y, *args)
        return y
    y = np.full((n, f, out_h, out_w), np.nan, dtype=x.dtype)
    _depthwise.forward_nchw(nchw(x), np.ascontiguousarray(kernel[:, None]), b, y, *args)
    return nhwc(y)


def run_input_grad(p, grad_y, kernel, x_shape, layout, num_threads=2):
    args = (*p["strides"], *p["dilations"], p["pad_top"], p["pad_left"], num_threads)
    if layout == "NHWC":
        grad_x = np.full(x_shape, np.nan, dtype=grad_y.dtype)
        _depthwise.input_grad_nhwc(grad_y, np.ascontiguousarray(kernel[..., None]), grad_x, *args)
        return grad_x
    n, h, w, c = x_shape
    grad_x = np.full((n, c, h, w), np.nan, dtype=grad_y.dtype)
    _depthwise.input_grad_nchw(nchw(grad_y), np.ascontiguousarray(kernel[:, None]), grad_x, *args)
    return nhwc(grad_x)


def run_kernel_grad(p, x, grad_y, kernel_hw, layout, num_threads=2):
    """(grad_kernel (C * M, kh, kw), grad_bias (C * M,) float64)."""
    f = grad_y.shape[3]
    grad_bias = np.full(f, np.nan)
    args = (*p["strides"], *p["dilations"], p["pad_top"], p["pad_left"], p["pad_value"], num_threads)
    if layout == "NHWC":
        grad_kernel = np.full((f, *kernel_hw, 1), np.nan, dtype=x.dtype)
        _depthwise.kernel_grad_nhwc(x, grad_y, grad_kernel, grad_bias, *args)
    else:
        grad_kernel = np.full((f, 1, *kernel_hw), np.nan, dtype=x.dtype)
        _depthwise.kernel_grad_nchw(nchw(x), nchw(grad_y), grad_kernel, grad_bias, *args)
    return grad_kernel.reshape(f, *kernel_hw), grad_bias


def out_size(size, kernel, stride, dilation, before, after):
    return (size + before + after - (kernel - 1) * (dilation + 1) - 1) // stride + 1


def make_problem(rng, n, h, w, c, m, kh, kw, strides, dilations, pads, pad_value, dtype, bias=True):
    """A problem as a dict; pads ((top, bottom), (left, right)) signed."""
    (top, bottom), (left, right) = pads
    out_hw = (out_size(h, kh, strides[0], dilations[0], top, bottom),
              out_size(w, kw, strides[1], dilations[1], left, right))
    return dict(
        x=rng.standard_normal((n, h, w, c)).astype(dtype),
        kernel=rng.standard_normal((c * m, kh, kw)).astype(dtype),
        bias=rng.standard_normal(c * m).astype(dtype) if bias else None,
        grad_y=rng.standard_normal((n, *out_hw, c * m)).astype(dtype) if min(out_hw) > 0 else None,
        strides=strides, dilations=dilations, pad_top=top, pad_left=left, out_hw=out_hw,
        pad_value=pad_value, dtype=dtype,
    )


@st.composite
def problems(draw, dtypes=(np.float32, np.float64), max_size=6):
    """Any depthwise problem: sizes and channels 1-6, M 1-3, kernels 1-5, strides 1-3, dilations
    0-2, signed paddings from cropping to wider than the kernel, any pad_value."""
    n = draw(st.integers(1, 3))
    h, w, c = (draw(st.integers(1, max_size)) for _ in range(3))
    m = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilations = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    pads = tuple((draw(st.integers(-2, 6)), draw(st.integers(-2, 6))) for _ in range(2))
    assume(out_size(h, kh, strides[0], dilations[0], *pads[0]) >= 1)
    assume(out_size(w, kw, strides[1], dilations[1], *pads[1]) >= 1)
    pad_value = draw(st.sampled_from([0.0, 1.5, -2.0]))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return make_problem(rng, n, h, w, c, m, kh, kw, strides, dilations, pads, pad_value, dtype,
                        bias=draw(st.booleans()))


def geometry(p):
    return p["strides"], p["dilations"], p["pad_top"], p["pad_left"]


def expected_forward(p, absolute=False):
    f = np.abs if absolute else (lambda a: a)
    bias = None if p["bias"] is None else f(p["bias"])
    return forward_reference(f(p["x"]), f(p["kernel"]), bias, *geometry(p), p["out_hw"], f(p["pad_value"]))


def forward_terms(p):
    """K of the forward's sums: kh * kw products and the bias."""
    kh, kw = p["kernel"].shape[1:]
    return kh * kw + 1


def check_forward(p, y):
    assert_within_bound(y, expected_forward(p), expected_forward(p, absolute=True), forward_terms(p))


def assert_within_tolerance(actual, expected, tol):
    """|actual - expected| <= tol element by element: for bounds not of error_bound's form."""
    assert actual.shape == expected.shape
    excess = np.abs(actual - expected) - tol
    assert np.all(excess <= 0), f"largest excess over the bound: {excess.max()}"


# ----------------------------------------------------------------------------------------------
# Forward


@pytest.mark.parametrize("layout", LAYOUTS)
@given(p=problems())
def test_forward_matches_the_formula(layout, p):
    y = run_forward(p, p["x"], p["kernel"], p["bias"], layout)
    assert y.dtype == p["dtype"]
    check_forward(p, y)


def test_the_forward_reference_agrees_with_the_direct_loop():
    """Per channel, depthwise convolution is conv2d_reference (tests/reference.py) on that channel."""
    rng = np.random.default_rng(0)
    p = make_problem(rng, 2, 6, 5, 3, 2, 3, 2, (2, 1), (1, 0), ((1, 2), (0, 1)), 0.5, np.float64)
    y, terms = expected_forward(p), expected_forward(p, absolute=True)
    for c in range(3):
        k = p["kernel"][2 * c:2 * c + 2, :, :, None]
        loop = conv2d_reference(p["x"][..., c:c + 1], k, p["bias"][2 * c:2 * c + 2], p["strides"], p["dilations"],
                                ((1, 2), (0, 1)), pad_value=0.5)
        # Two float64 sums of the same K terms, each within gamma_K(2^-53) * sum |terms| of the exact
        # one (and sum |terms| itself rounded): error_bound in float64.
        assert_within_bound(y[..., 2 * c:2 * c + 2], loop, terms[..., 2 * c:2 * c + 2], forward_terms(p))


# Wide channels and rows, so that whole blocks of LANES (32) channels / columns, the overlapping
# last block and the narrow case all run; strides and dilations for the strided loads and stores.
WIDE = [
    # (n, h, w, c, m, kh, kw, strides, dilations, pads)
    (2, 4, 5, 33, 1, 3, 3, (1, 1), (0, 0), ((1, 1), (1, 1))),
    (1, 3, 4, 70, 2, 3, 3, (2, 2), (0, 0), ((1, 1), (0, 1))),
    (1, 5, 3, 64, 1, 5, 5, (1, 1), (0, 0), ((2, 2), (2, 2))),
    (2, 3, 75, 2, 1, 3, 3, (1, 1), (0, 0), ((1, 1), (1, 1))),
    (1, 3, 80, 3, 2, 3, 5, (1, 2), (0, 1), ((0, 2), (3, 2))),
    (1, 4, 41, 2, 1, 2, 3, (2, 3), (1, 0), ((-1, 1), (-2, 4))),
    (1, 2, 36, 40, 3, 1, 1, (1, 1), (0, 0), ((0, 0), (0, 0))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", WIDE)
def test_wide_problems_forward_and_gradients(shape, layout, dtype):
    n, h, w, c, m, kh, kw, strides, dilations, pads = shape
    p = make_problem(np.random.default_rng(1), n, h, w, c, m, kh, kw, strides, dilations, pads, 0.75, dtype)
    check_forward(p, run_forward(p, p["x"], p["kernel"], p["bias"], layout))
    check_input_grad(p, layout)
    check_kernel_grad(p, layout)


# ----------------------------------------------------------------------------------------------
# Gradients


def check_input_grad(p, layout):
    kernel, gy, shape = p["kernel"], p["grad_y"], p["x"].shape
    grad_x = run_input_grad(p, gy, kernel, shape, layout)
    assert grad_x.dtype == p["dtype"]
    expected = input_grad_reference(gy, kernel, *geometry(p), shape)
    terms = input_grad_reference(np.abs(gy), np.abs(kernel), *geometry(p), shape)
    # Each element sums at most M * kh * kw products.
    assert_within_bound(grad_x, expected, terms, kernel.size // shape[3])


def check_kernel_grad(p, layout):
    x, gy, kernel_hw = p["x"], p["grad_y"], p["kernel"].shape[1:]
    grad_kernel, grad_bias = run_kernel_grad(p, x, gy, kernel_hw, layout)
    assert grad_kernel.dtype == p["dtype"] and grad_bias.dtype == np.float64
    expected = depthwise_kernel_grad(x, gy, kernel_hw, *geometry(p), p["pad_value"])
    terms = depthwise_kernel_grad(np.abs(x), np.abs(gy), kernel_hw, *geometry(p), abs(p["pad_value"]))
    count = gy.shape[0] * gy.shape[1] * gy.shape[2]
    # Partial sums in the dtype, added in float64, rounded once more to the dtype: count + 1 roundings.
    assert_within_bound(grad_kernel, expected, terms, count + 1)
    assert_within_bound(grad_bias, gy.sum(axis=(0, 1, 2), dtype=np.float64),
                        np.abs(gy).sum(axis=(0, 1, 2), dtype=np.float64), count)


@pytest.mark.parametrize("layout", LAYOUTS)
@given(p=problems())
def test_input_grad_matches_the_formula(layout, p):
    check_input_grad(p, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
@given(p=problems())
def test_kernel_grad_matches_the_formula(layout, p):
    check_kernel_grad(p, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
@given(p=problems(dtypes=(np.float64,), max_size=3))
def test_gradients_match_central_differences(layout, p):
    """The gradients of L = <y, grad_y> with respect to x, kernel and bias, by central differences
    of the compiled forward. L is linear in each, so the differences are exact but for two roundings:
    of L, each evaluation within gamma_K * sum |terms| (K = every product and sum in L), and of the
    arguments a +- h, so the step taken is 2h within 2u(|a| + h): the slope g times u(|a| + h) / h,
    |g| at most the gradient's sum |terms|."""
    gy = p["grad_y"]
    bias = p["bias"] if p["bias"] is not None else np.zeros(gy.shape[3])
    h = 1e-3

    def loss(x, kernel, b):
        return np.sum(run_forward(p, x, kernel, b, layout, num_threads=1) * gy)

    kh, kw = p["kernel"].shape[1:]
    count = (kh * kw + 2) * gy.size
    # sum |terms| of L at any point within h of the arguments.
    terms = np.sum(np.abs(gy) * forward_reference(np.abs(p["x"]) + h, np.abs(p["kernel"]) + h, np.abs(bias) + h,
                                                  *geometry(p), p["out_hw"], abs(p["pad_value"])))
    tol = 2 * gamma(count) * terms / (2 * h)

    def step_rounding(a, abs_grad):
        return UNIT_ROUNDOFF[np.dtype(np.float64)] * (np.abs(a) + h) / h * abs_grad

    grad_x = run_input_grad(p, gy, p["kernel"], p["x"].shape, layout)
    numeric_x = finite_difference_grad(lambda x: loss(x, p["kernel"], bias), p["x"], h)
    abs_grad_x = input_grad_reference(np.abs(gy), np.abs(p["kernel"]), *geometry(p), p["x"].shape)
    assert_within_tolerance(grad_x, numeric_x, tol + step_rounding(p["x"], abs_grad_x))

    grad_kernel, grad_bias = run_kernel_grad(p, p["x"], gy, (kh, kw), layout)
    numeric_kernel = finite_difference_grad(lambda k: loss(p["x"], k, bias), p["kernel"], h)
    abs_grad_kernel = depthwise_kernel_grad(np.abs(p["x"]), np.abs(gy), (kh, kw), *geometry(p), abs(p["pad_value"]))
    assert_within_tolerance(grad_kernel, numeric_kernel, tol + step_rounding(p["kernel"], abs_grad_kernel))
    numeric_bias = finite_difference_grad(lambda b: loss(p["x"], p["kernel"], b), bias, h)
    abs_grad_bias = np.abs(gy).sum(axis=(0, 1, 2))
    assert_within_tolerance(grad_bias, numeric_bias, tol + step_rounding(bias, abs_grad_bias))


@pytest.mark.parametrize("layout", LAYOUTS)
@given(p=problems())
def test_input_grad_is_the_adjoint_of_the_forward(layout, p):
    """<forward(x), g> == <x, input_grad(g)> without padding value or bias: both sides sum the same
    products, each side's elements within gamma_K (K = M * kh * kw) in the dtype, then a float64 dot."""
    p = dict(p, pad_value=0.0)
    x, kernel, gy = p["x"], p["kernel"], p["grad_y"]
    lhs = np.vdot(run_forward(p, x, kernel, None, layout).astype(np.float64), gy.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), run_input_grad(p, gy, kernel, x.shape, layout).astype(np.float64))
    terms = np.vdot(np.abs(gy), forward_reference(np.abs(x), np.abs(kernel), None, *geometry(p), p["out_hw"], 0.0))
    k = kernel.size // x.shape[3]
    assert abs(lhs - rhs) <= 2 * (gamma(k, p["dtype"]) + gamma(gy.size + x.size)) * terms


# ----------------------------------------------------------------------------------------------
# The bound is tight enough to catch real bugs


def test_the_bound_rejects_broken_results():
    """Float32 results broken as a buggy kernel would break them fall outside the bound."""
    rng = np.random.default_rng(7)
    p = make_problem(rng, 2, 6, 7, 3, 2, 3, 3, (1, 1), (0, 0), ((1, 1), (1, 1)), 1.5, np.float32)
    exact = expected_forward(p)
    tol = error_bound(expected_forward(p, absolute=True), forward_terms(p), np.float32)
    assert np.all(np.abs(run_forward(p, p["x"], p["kernel"], p["bias"], "NHWC") - exact) <= tol)

    dropped = p["kernel"].copy()
    dropped[4, 2, 1] = 0  # one tap of one output channel left out
    wrong_channel = p["kernel"].reshape(3, 2, 3, 3)[[1, 2, 0]].reshape(6, 3, 3)  # f reads channel c + 1
    shifted = dict(p, pad_left=p["pad_left"] + 1)  # the border one column off
    broken = [
        forward_reference(p["x"], dropped, p["bias"], *geometry(p), p["out_hw"], 1.5),
        forward_reference(np.roll(p["x"], 1, axis=3), wrong_channel, p["bias"], *geometry(p), p["out_hw"], 1.5),
        expected_forward(shifted),
        expected_forward(dict(p, pad_value=0.0)),  # padding read as zeros
    ]
    for result in broken:
        assert np.any(np.abs(result.astype(np.float32) - exact) > tol)


# ----------------------------------------------------------------------------------------------
# Threads, edge cases


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_results_do_not_depend_on_the_thread_count(layout, dtype):
    """Bit for bit: every output element is summed by one thread in a fixed order, and the kernel
    gradient's partial sums are fixed by the problem."""
    rng = np.random.default_rng(11)
    p = make_problem(rng, 3, 13, 45, 37, 2, 3, 3, (2, 1), (1, 0), ((1, 2), (2, 1)), 0.25, dtype)
    results = []
    for threads in (1, 2, 3, 4):
        y = run_forward(p, p["x"], p["kernel"], p["bias"], layout, threads)
        grad_x = run_input_grad(p, p["grad_y"], p["kernel"], p["x"].shape, layout, threads)
        grad_kernel, grad_bias = run_kernel_grad(p, p["x"], p["grad_y"], p["kernel"].shape[1:], layout, threads)
        results.append((y, grad_x, grad_kernel, grad_bias))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_input_rows_and_columns_no_output_reads_get_zero(layout):
    """Stride 3 over a 1x1 kernel skips two of every three input rows and columns."""
    p = make_problem(np.random.default_rng(5), 1, 7, 8, 2, 1, 1, 1, (3, 3), (0, 0), ((0, 0), (0, 0)), 0.0,
                     np.float64)
    grad_x = run_input_grad(p, p["grad_y"], p["kernel"], p["x"].shape, layout)
    skipped = np.ones(grad_x.shape, dtype=bool)
    skipped[:, ::3, ::3, :] = False
    assert np.all(grad_x[skipped] == 0)
    assert np.all(grad_x[~skipped] != 0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_padding_only_outputs(layout):
    """Paddings wider than the kernel: the outer outputs read nothing but pad_value."""
    p = make_problem(np.random.default_rng(6), 1, 2, 2, 3, 2, 2, 2, (1, 1), (0, 0), ((4, 4), (5, 3)), -2.0,
                     np.float32)
    y = run_forward(p, p["x"], p["kernel"], p["bias"], layout)
    k, b = p["kernel"].astype(np.float64), p["bias"].astype(np.float64)
    corner = -2.0 * k.sum(axis=(1, 2)) + b  # a worked example: kh * kw products of pad_value, and the bias
    assert_within_bound(y[0, 0, 0], corner, 2.0 * np.abs(k).sum(axis=(1, 2)) + np.abs(b), forward_terms(p))
    check_forward(p, y)
    check_kernel_grad(p, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_empty_batch_has_zero_kernel_gradient(layout):
    """No images (N = 0 reaches the gradients: the engine returns early only in the forward):
    nothing reads the input, so the kernel gradient and grad_bias are zeros."""
    p = make_problem(np.random.default_rng(9), 0, 3, 4, 2, 2, 3, 3, (1, 1), (0, 0), ((0, 0), (1, 1)), 1.5,
                     np.float32)
    grad_kernel, grad_bias = run_kernel_grad(p, p["x"], p["grad_y"], (3, 3), layout)
    assert np.all(grad_kernel == 0) and np.all(grad_bias == 0)
    run_input_grad(p, p["grad_y"], p["kernel"], p["x"].shape, layout)
