"""Every algorithm, reached on purpose through the public API (algorithm="gemm" | "winograd" |
"winograd_4x4" | "direct"), against the direct-loop reference within that algorithm's own derived bound
(tests/helpers.py: the K-term bound for im2col-GEMM, winograd_error_bound for Winograd); its
gradients against finite differences; the adjoint identity; which algorithm "auto" takes; and the
error for an algorithm that does not apply."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import cyconv
from cyconv import _engine
from cyconv._problems import conv_problem
from helpers import (DTYPES, FD_TOL, LAYOUTS, assert_within_bound, error_bound, from_layout, gamma, to_layout,
                     winograd_error_bound)
from reference import (conv2d_reference, conv2d_transpose_reference, direct_reference, finite_difference_grad,
                       grouped_conv2d_reference, kernel_grad_reference)
from strategies import paddings, resolved_pads

ALGORITHMS = ("gemm", "winograd", "winograd_4x4")
TILE = {"winograd": 2, "winograd_4x4": 4}


@st.composite
def stride1_3x3_cases(draw, dtypes=DTYPES, channels=(1, 3, 17), filters=(1, 2, 19), max_size=9):
    """A 3x3 stride-1 convolution (where every algorithm applies): NHWC arrays and arguments."""
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    c, f = draw(st.sampled_from(channels)), draw(st.sampled_from(filters))
    dilations = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    padding = draw(paddings())
    pads = resolved_pads(padding, (h, w), (3, 3), (1, 1), dilations)
    out_hw = tuple(size + sum(p) - 2 * (d + 1) for size, p, d in zip((h, w), pads, dilations))
    assume(min(out_hw) >= 1)
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return dict(
        x=rng.standard_normal((n, h, w, c)).astype(dtype), kernel=rng.standard_normal((f, 3, 3, c)).astype(dtype),
        bias=rng.standard_normal(f).astype(dtype), dilations=dilations, padding=padding, pads=pads, out_hw=out_hw,
        pad_value=draw(st.sampled_from([0.0, 1.5])), layout=draw(st.sampled_from(LAYOUTS)), dtype=dtype,
    )


def reference_and_bound(algorithm, x, kernel, bias, pads, out_hw, dilations, pad_value, dtype):
    """(the direct loop's result, the elementwise bound on `algorithm`'s error in `dtype`), NHWC."""
    top_left = (pads[0][0], pads[1][0])
    expected = direct_reference(x, kernel, bias, top_left, out_hw, dilations, pad_value)
    if algorithm == "gemm":
        abs_sum = direct_reference(np.abs(x), np.abs(kernel), np.abs(bias), top_left, out_hw, dilations,
                                   abs(pad_value))
        return expected, error_bound(abs_sum, kernel[0].size + 1, dtype)
    return expected, winograd_error_bound(x, kernel, bias, top_left, out_hw, dilations, pad_value, TILE[algorithm],
                                          dtype)


def assert_within_algorithm_bound(algorithm, got, *problem):
    """got (NHWC, float32 or float64) against the direct loop within `algorithm`'s bound."""
    expected, bound = reference_and_bound(algorithm, *problem, got.dtype)
    assert got.shape == expected.shape
    assert np.all(np.abs(got.astype(np.float64) - expected) <= bound)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(case=stride1_3x3_cases())
def test_forward_within_its_bound(algorithm, case):
    layout = case["layout"]
    y = cyconv.conv2d(to_layout(case["x"], layout), to_layout(case["kernel"], layout), case["bias"],
                      dilations=case["dilations"], padding=case["padding"], layout=layout,
                      pad_value=case["pad_value"], algorithm=algorithm)
    assert y.dtype == case["dtype"]
    assert_within_algorithm_bound(algorithm, from_layout(y, layout), case["x"], case["kernel"], case["bias"],
                                  case["pads"], case["out_hw"], case["dilations"], case["pad_value"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(case=stride1_3x3_cases())
def test_input_gradient_within_its_bound(algorithm, case):
    # At stride 1, grad_x is the convolution of grad_y with the kernel flipped in space and with its
    # channel axes swapped, padded by extent - 1 - pad: the same algorithm computes it.
    layout, (dh, dw) = case["layout"], case["dilations"]
    gy = np.random.default_rng(1).standard_normal((case["x"].shape[0],) + case["out_hw"] + (case["kernel"].shape[0],))
    gy = gy.astype(case["dtype"])
    grad_x = cyconv.conv2d_backward(to_layout(gy, layout), to_layout(case["x"], layout),
                                    to_layout(case["kernel"], layout), dilations=case["dilations"],
                                    padding=case["padding"], layout=layout, pad_value=case["pad_value"],
                                    algorithm=algorithm)[0]
    flipped = np.ascontiguousarray(np.transpose(case["kernel"][:, ::-1, ::-1, :], (3, 1, 2, 0)))
    (top, bottom), (left, right) = case["pads"]
    pads = ((2 * (dh + 1) - top, 0), (2 * (dw + 1) - left, 0))
    assert_within_algorithm_bound(algorithm, from_layout(grad_x, layout), gy, flipped,
                                  np.zeros(flipped.shape[0], case["dtype"]), pads, case["x"].shape[1:3],
                                  case["dilations"], 0.0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(case=stride1_3x3_cases(dtypes=(np.float64,), channels=(1, 2), filters=(1, 2), max_size=6))
def test_gradients_match_finite_differences(algorithm, case):
    layout = case["layout"]
    x, kernel, bias = case["x"], case["kernel"], case["bias"]
    options = dict(dilations=case["dilations"], padding=case["padding"], layout=layout, pad_value=case["pad_value"],
                   algorithm=algorithm)
    probe = np.random.default_rng(2).standard_normal((x.shape[0],) + case["out_hw"] + (kernel.shape[0],))
    grads = cyconv.conv2d_backward(to_layout(probe, layout), to_layout(x, layout), to_layout(kernel, layout),
                                   **options)

    def loss(x_=x, kernel_=kernel, bias_=bias):
        y = conv2d_reference(x_, kernel_, bias_, (1, 1), case["dilations"], case["pads"], case["pad_value"])
        return float(np.sum(y * probe))

    abs_loss = np.sum(conv2d_reference(np.abs(x), np.abs(kernel), np.abs(bias), (1, 1), case["dilations"],
                                       case["pads"], abs(case["pad_value"])) * np.abs(probe))
    tol = FD_TOL * max(1.0, float(abs_loss))
    expected = (finite_difference_grad(lambda v: loss(x_=v), x),
                finite_difference_grad(lambda v: loss(kernel_=v), kernel),
                finite_difference_grad(lambda v: loss(bias_=v), bias))
    for got, want in zip((from_layout(grads[0], layout), from_layout(grads[1], layout), grads[2]), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(case=stride1_3x3_cases(dtypes=(np.float64,)))
def test_input_gradient_is_the_adjoint(algorithm, case):
    layout = case["layout"]
    options = dict(dilations=case["dilations"], padding=case["padding"], layout=layout, algorithm=algorithm)
    x, kernel = to_layout(case["x"], layout), to_layout(case["kernel"], layout)
    y = cyconv.conv2d(x, kernel, **options)
    gy = np.random.default_rng(3).standard_normal(y.shape)
    grad_x = cyconv.conv2d_backward(gy, x, kernel, **options)[0]
    # y and grad_x are each within their algorithm's elementwise bound of the exact values, so
    # <y, gy> and <x, grad_x> are within sum |gy| bound_y and sum |x| bound_grad_x of the exact
    # (equal) inner products, plus the rounding of the two float64 inner products themselves.
    (dh, dw), ((top, _), (left, _)) = case["dilations"], case["pads"]
    zeros = np.zeros(case["kernel"].shape[0])
    _, bound_y = reference_and_bound(algorithm, case["x"], case["kernel"], zeros, case["pads"], case["out_hw"],
                                     case["dilations"], 0.0, np.float64)
    flipped = np.ascontiguousarray(np.transpose(case["kernel"][:, ::-1, ::-1, :], (3, 1, 2, 0)))
    flipped_pads = ((2 * (dh + 1) - top, 0), (2 * (dw + 1) - left, 0))
    _, bound_x = reference_and_bound(algorithm, from_layout(gy, layout), flipped, np.zeros(flipped.shape[0]),
                                     flipped_pads, case["x"].shape[1:3], case["dilations"], 0.0, np.float64)
    products = gamma(y.size) * np.abs(np.vdot(np.abs(y), np.abs(gy))) + gamma(x.size) * np.vdot(np.abs(x),
                                                                                                    np.abs(grad_x))
    tolerance = (np.sum(np.abs(from_layout(gy, layout)) * bound_y) + np.sum(np.abs(case["x"]) * bound_x)
                 + products)
    assert abs(np.vdot(y, gy) - np.vdot(x, grad_x)) <= tolerance


@pytest.mark.parametrize("layout", LAYOUTS)
def test_what_auto_takes(layout):
    rng = np.random.default_rng(4)
    cases = [  # (channels, filters, kernel size, stride, groups, the algorithm "auto" takes)
        (64, 64, 3, 1, 1, "winograd"),     # wide 3x3 stride-1 layers
        (16, 64, 3, 1, 1, "direct"),       # narrow ones
        (3, 32, 7, 2, 1, "direct"),        # few channels
        (4, 8, 3, 1, 2, "gemm"),           # groups that are not depthwise
        (64, 32, 3, 2, 1, "direct" if layout == "NHWC" else "gemm"),  # NCHW with many channels
    ]
    for channels, filters, k, stride, groups, expected in cases:
        x = to_layout(rng.standard_normal((2, 9, 8, channels)).astype(np.float32), layout)
        kernel = to_layout(rng.standard_normal((filters, k, k, channels // groups)).astype(np.float32), layout)
        problem = conv_problem(x, kernel, None, stride, 0, "SAME", layout, groups=groups)
        assert _engine._choose(problem) == expected, (channels, filters, k, stride, groups)
        # and "auto" computes what the chosen algorithm computes (each is deterministic)
        args = dict(strides=stride, padding="SAME", layout=layout, groups=groups)
        assert np.array_equal(cyconv.conv2d(x, kernel, **args), cyconv.conv2d(x, kernel, algorithm=expected, **args))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_by_direct_loops_and_by_gemm(layout, dtype):
    # "auto" takes the direct kernels for a depthwise convolution; "gemm" still computes it. Both
    # are held to the K-term bound of the reference, forward and the three gradients.
    rng = np.random.default_rng(6)
    x, kernel, bias = rng.standard_normal((2, 9, 8, 5)), rng.standard_normal((10, 3, 2, 1)), rng.standard_normal(10)
    gy = rng.standard_normal((2, 5, 8, 10))
    args = dict(strides=(2, 1), dilations=(0, 1), padding="SAME", layout=layout, groups=5, pad_value=0.5)
    pads = resolved_pads("SAME", (9, 8), (3, 2), (2, 1), (0, 1))
    expected = grouped_conv2d_reference(x, kernel, bias, (2, 1), (0, 1), pads, 0.5, groups=5)
    abs_sum = grouped_conv2d_reference(np.abs(x), np.abs(kernel), np.abs(bias), (2, 1), (0, 1), pads, 0.5, groups=5)
    results = {}
    for algorithm in ("auto", "direct", "gemm"):
        xl, kl, gl = (to_layout(a, layout).astype(dtype) for a in (x, kernel, gy))
        y = cyconv.conv2d(xl, kl, bias.astype(dtype), algorithm=algorithm, **args)
        assert_within_bound(from_layout(y, layout), expected, abs_sum, 3 * 2 + 1)
        results[algorithm] = (y,) + cyconv.conv2d_backward(gl, xl, kl, algorithm=algorithm, **args)
    assert all(np.array_equal(a, b) for a, b in zip(results["auto"], results["direct"]))
    # the gradients: grad_x sums at most M * kh * kw = 12 terms per pixel; grad_kernel and grad_bias
    # N * OH * OW = 80, as partial sums added once more (81 roundings)
    top_left = (pads[0][0], pads[1][0])
    gradients = (
        (conv2d_transpose_reference(gy, kernel, None, (2, 1), (0, 1), pads, (9, 8), groups=5),
         conv2d_transpose_reference(np.abs(gy), np.abs(kernel), None, (2, 1), (0, 1), pads, (9, 8), groups=5), 12),
        (kernel_grad_reference(x, gy, (3, 2), (2, 1), (0, 1), top_left, 0.5, groups=5),
         kernel_grad_reference(np.abs(x), np.abs(gy), (3, 2), (2, 1), (0, 1), top_left, 0.5, groups=5), 81),
        (gy.sum(axis=(0, 1, 2)), np.abs(gy).sum(axis=(0, 1, 2)), 81),
    )
    for algorithm in ("direct", "gemm"):
        for got, (want, abs_sum, terms) in zip(results[algorithm][1:], gradients):
            assert_within_bound(from_layout(got, layout) if got.ndim == 4 else got, want, abs_sum, terms)


def test_layers_and_the_transposed_convolution_take_the_algorithm():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 6, 4))
    layer = cyconv.Convolution(x.shape, 5, 3, padding="SAME", algorithm="winograd_4x4", seed=0)
    assert np.array_equal(layer(x), cyconv.conv2d(x, layer.kernel, layer.bias, padding="SAME",
                                                  algorithm="winograd_4x4"))
    y = rng.standard_normal((2, 7, 6, 5))
    kernel = rng.standard_normal((5, 3, 3, 4))
    transposed = cyconv.conv2d_transpose(y, kernel, padding="SAME", algorithm="winograd")
    gemm = cyconv.conv2d_transpose(y, kernel, padding="SAME", algorithm="gemm")
    # each within its own bound of the direct loop's result (the flipped kernel's convolution)
    flipped = np.ascontiguousarray(np.transpose(kernel[:, ::-1, ::-1, :], (3, 1, 2, 0)))
    problem = (y, flipped, np.zeros(4), ((1, 0), (1, 0)), (7, 6), (0, 0), 0.0, np.float64)
    _, bound_winograd = reference_and_bound("winograd", *problem)
    _, bound_gemm = reference_and_bound("gemm", *problem)
    assert np.all(np.abs(transposed - gemm) <= bound_winograd + bound_gemm)
    assert cyconv.ConvolutionTranspose(y.shape, 4, 3, padding="SAME", algorithm="winograd", seed=0)(y).shape == x.shape


@pytest.mark.parametrize("call, pattern", [
    (lambda x, k: cyconv.conv2d(x, k, algorithm="fft"),
     r"algorithm must be one of 'auto', 'gemm', 'winograd', 'winograd_4x4', 'direct', got 'fft'"),
    (lambda x, k: cyconv.conv2d(x, k, algorithm=None), r"algorithm must be one of .*got None"),
    (lambda x, k: cyconv.conv2d(x, k, strides=2, algorithm="winograd"),
     r"algorithm 'winograd' computes 3x3 kernels at stride 1 without groups, got a 3x3 kernel, strides \(2, 2\)"),
    (lambda x, k: cyconv.conv2d(x, k[:, :2], algorithm="winograd_4x4"), r"got a 2x3 kernel"),
    (lambda x, k: cyconv.conv2d(x, k[:, :, :, :2], groups=2, algorithm="winograd"), r"groups=2"),
    (lambda x, k: cyconv.conv2d_backward(np.ones((2, 5, 4, 6)), x, k, algorithm="Winograd", strides=2),
     r"algorithm 'winograd' computes 3x3 kernels at stride 1"),
    (lambda x, k: cyconv.conv1d(x[:, 0], k[:, 0], algorithm="winograd"), r"got a 1x3 kernel"),
    (lambda x, k: cyconv.Convolution(x.shape, 6, 5, algorithm="winograd"), r"got a 5x5 kernel"),
    (lambda x, k: cyconv.conv2d(x, k[:, :, :, :2], groups=2, algorithm="direct"),
     r"algorithm 'direct' computes convolutions without groups \(groups=1\) or depthwise ones \(groups equal "
     r"to the 4 channels\), got groups=2"),
])
def test_an_algorithm_that_does_not_apply_is_refused(call, pattern):
    x, kernel = np.ones((2, 7, 6, 4)), np.ones((6, 3, 3, 4))
    with pytest.raises(ValueError, match=pattern):
        call(x, kernel)
