"""conv2d and conv2d_backward against the direct-loop reference and central finite differences."""
import numpy as np
import pytest
from hypothesis import given

import cyconv
from helpers import FD_TOL, LAYOUTS, assert_close, assert_within_bound, from_layout, to_layout
from reference import conv2d_reference, finite_difference_grad, nchw, nhwc
from strategies import conv_cases


def to_case_layout(case, name):
    """case[name] (stored NHWC / (F, kh, kw, C)) in the case's layout."""
    return to_layout(case[name], case["layout"])


def call_args(case):
    return dict(strides=case["strides"], dilations=case["dilations"], padding=case["padding"],
                layout=case["layout"], pad_value=case["pad_value"])


@given(conv_cases())
def test_forward_matches_direct_loop(case):
    """Every element within the rounding bound of its sum (helpers.py), in float32 and float64."""
    x, kernel, bias = case["x"], case["kernel"], case["bias"]
    x_in, kernel_in = to_case_layout(case, "x"), to_case_layout(case, "kernel")
    y = cyconv.conv2d(x_in, kernel_in, bias, **call_args(case))
    geometry = case["strides"], case["dilations"], case["pads"]
    expected = conv2d_reference(x, kernel, bias, *geometry, case["pad_value"])
    abs_sum = conv2d_reference(np.abs(x), np.abs(kernel), None if bias is None else np.abs(bias),
                               *geometry, abs(case["pad_value"]))
    _, kh, kw, c = kernel.shape
    assert y.dtype == case["dtype"]
    y = from_layout(y, case["layout"])
    assert y.shape == expected.shape
    assert_within_bound(y, expected, abs_sum, terms=kh * kw * c + (bias is not None))


@given(conv_cases(max_size=6, dtypes=(np.float64,)))
def test_gradients_match_finite_differences(case):
    x, kernel, bias = to_case_layout(case, "x"), to_case_layout(case, "kernel"), case["bias"]
    args = call_args(case)
    y = cyconv.conv2d(x, kernel, bias, **args)
    probe = np.random.default_rng(0).standard_normal(y.shape)  # L = <y, probe>, so dL/dy = probe

    grad_x, grad_kernel, grad_bias = cyconv.conv2d_backward(probe, x, kernel, **args)

    def loss(x_, kernel_, bias_):
        return float(np.sum(cyconv.conv2d(x_, kernel_, bias_, **args) * probe))

    # The loss is linear in each argument, so central differences are exact up to rounding.
    scale = max(1.0, float(np.abs(y * probe).sum()))
    fd_grad_x = finite_difference_grad(lambda v: loss(v, kernel, bias), x)
    fd_grad_kernel = finite_difference_grad(lambda v: loss(x, v, bias), kernel)
    fd_grad_bias = finite_difference_grad(lambda v: loss(x, kernel, v), np.zeros(kernel.shape[0]))
    assert_close(grad_x, fd_grad_x, np.float64, FD_TOL * scale)
    assert_close(grad_kernel, fd_grad_kernel, np.float64, FD_TOL * scale)
    assert_close(grad_bias, fd_grad_bias, np.float64, FD_TOL * scale)


@given(conv_cases())
def test_layouts_agree_after_transposing(case):
    args = dict(call_args(case))
    args.pop("layout")
    y_nhwc = cyconv.conv2d(case["x"], case["kernel"], case["bias"], layout="NHWC", **args)
    y_nchw = cyconv.conv2d(nchw(case["x"]), nchw(case["kernel"]), case["bias"], layout="NCHW", **args)
    assert_close(nhwc(y_nchw), y_nhwc, case["dtype"])

    grads_nhwc = cyconv.conv2d_backward(y_nhwc, case["x"], case["kernel"], layout="NHWC", **args)
    grads_nchw = cyconv.conv2d_backward(nchw(y_nhwc), nchw(case["x"]), nchw(case["kernel"]), layout="NCHW", **args)
    assert_close(nhwc(grads_nchw[0]), grads_nhwc[0], case["dtype"])
    assert_close(nhwc(grads_nchw[1]), grads_nhwc[1], case["dtype"])
    assert_close(grads_nchw[2], grads_nhwc[2], case["dtype"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pointwise_convolution_is_a_matrix_product(layout):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5, 3))
    kernel = rng.standard_normal((6, 1, 1, 3))
    expected = np.einsum("nhwc,fc->nhwf", x, kernel[:, 0, 0, :])
    if layout == "NHWC":
        y = cyconv.conv2d(x, kernel, layout="NHWC")
    else:
        y = nhwc(cyconv.conv2d(nchw(x), nchw(kernel), layout="NCHW"))
    assert_close(y, expected, np.float64)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_small_workspace_gives_the_same_result(layout, restore_settings):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 6, 7, 2))
    kernel = rng.standard_normal((3, 3, 2, 2))
    if layout == "NCHW":
        x, kernel = nchw(x), nchw(kernel)
    y = cyconv.conv2d(x, kernel, padding="SAME", layout=layout)
    grads = cyconv.conv2d_backward(y, x, kernel, padding="SAME", layout=layout)
    cyconv.set_max_workspace(1)  # one image per chunk
    y_chunked = cyconv.conv2d(x, kernel, padding="SAME", layout=layout)
    grads_chunked = cyconv.conv2d_backward(y, x, kernel, padding="SAME", layout=layout)
    assert_close(y_chunked, y, np.float64)
    for chunked, whole in zip(grads_chunked, grads):
        assert_close(chunked, whole, np.float64)
