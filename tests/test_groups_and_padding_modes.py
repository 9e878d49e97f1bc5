"""Grouped and depthwise convolution, and the padding modes: against references written from the
formula (each group convolved on its own; every padded pixel chosen by its index), finite
differences, the adjoint identity, and PyTorch when it is installed."""
import numpy as np
import pytest
from hypothesis import given

import cyconv
from helpers import FD_TOL, assert_within_bound, from_layout, gamma, to_layout
from reference import finite_difference_grad, grouped_conv2d_reference, pad_reference
from strategies import grouped_cases, resolved_pads

NO_PADS = ((0, 0), (0, 0))


def options(case):
    """The keyword arguments of conv2d / conv2d_backward for a case, but x, kernel and bias."""
    return dict(strides=case["strides"], dilations=case["dilations"], padding=case["padding"],
                layout=case["layout"], pad_value=case["pad_value"], groups=case["groups"],
                padding_mode=case["padding_mode"])


def reference(case, x=None, kernel=None, bias="case", absolute=False):
    """The case's convolution by grouped_conv2d_reference on pad_reference's padded input, NHWC;
    absolute=True gives the same sum of |terms| (its error scale)."""
    x = case["x"] if x is None else x
    kernel = case["kernel"] if kernel is None else kernel
    bias = case["bias"] if isinstance(bias, str) else bias
    pad_value = case["pad_value"]
    if absolute:
        x, kernel, pad_value = np.abs(x), np.abs(kernel), abs(pad_value)
        bias = None if bias is None else np.abs(bias)
    padded = pad_reference(x, case["pads"], case["padding_mode"], pad_value)
    return grouped_conv2d_reference(padded, kernel, bias, case["strides"], case["dilations"], NO_PADS,
                                    groups=case["groups"])


def terms(case):
    """Terms of one output element: kh * kw * C / groups products, and the bias."""
    return case["kernel"][0].size + (case["bias"] is not None)


@given(grouped_cases())
def test_forward_matches_the_reference(case):
    layout = case["layout"]
    y = cyconv.conv2d(to_layout(case["x"], layout), to_layout(case["kernel"], layout), case["bias"], **options(case))
    assert y.dtype == case["dtype"]
    assert_within_bound(from_layout(y, layout), reference(case), reference(case, absolute=True), terms(case))


@given(grouped_cases(dtypes=(np.float64,)))
def test_gradients_match_finite_differences(case):
    layout = case["layout"]
    bias = np.zeros(case["kernel"].shape[0]) if case["bias"] is None else case["bias"]
    y = reference(case, bias=bias)
    probe = np.random.default_rng(1).standard_normal(y.shape)
    grads = cyconv.conv2d_backward(to_layout(probe, layout), to_layout(case["x"], layout),
                                   to_layout(case["kernel"], layout), **options(case))

    def loss(x=case["x"], kernel=case["kernel"], b=bias):
        return float(np.sum(reference(case, x=x, kernel=kernel, bias=b) * probe))

    tol = FD_TOL * max(1.0, float(np.sum(reference(case, bias=bias, absolute=True) * np.abs(probe))))
    expected = (finite_difference_grad(lambda v: loss(x=v), case["x"]),
                finite_difference_grad(lambda v: loss(kernel=v), case["kernel"]),
                finite_difference_grad(lambda v: loss(b=v), bias))
    for got, want in zip((from_layout(grads[0], layout), from_layout(grads[1], layout), grads[2]), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@given(grouped_cases(dtypes=(np.float64,)))
def test_input_gradient_is_the_adjoint_of_the_convolution(case):
    # With no bias and pad_value 0, x -> y is linear (a reflected, replicated or wrapped border too)
    # and grad_x(gy) must be its adjoint: <conv(x), gy> == <x, grad_x(gy)>. Both sides sum the same
    # y.size * K triple products x * kernel * gy (two roundings each) in different orders.
    case = dict(case, bias=None, pad_value=0.0)
    layout = case["layout"]
    x, kernel = to_layout(case["x"], layout), to_layout(case["kernel"], layout)
    y = cyconv.conv2d(x, kernel, **options(case))
    gy = np.random.default_rng(2).standard_normal(y.shape)
    grad_x = cyconv.conv2d_backward(gy, x, kernel, **options(case))[0]
    triple_products = float(np.sum(reference(case, absolute=True) * np.abs(from_layout(gy, layout))))
    bound = 2 * gamma(y.size * case["kernel"][0].size + 2) * triple_products
    assert abs(np.vdot(y, gy) - np.vdot(x, grad_x)) <= bound


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("multiplier", [1, 3])
def test_depthwise_conv2d_is_conv2d_with_one_group_per_channel(layout, multiplier):
    rng = np.random.default_rng(3)
    x, kernel = rng.standard_normal((2, 7, 6, 4)), rng.standard_normal((4 * multiplier, 3, 3, 1))
    bias = rng.standard_normal(4 * multiplier)
    args = dict(strides=2, dilations=1, padding="SAME", layout=layout)
    y = cyconv.depthwise_conv2d(to_layout(x, layout), to_layout(kernel, layout), bias, **args)
    np.testing.assert_array_equal(y, cyconv.conv2d(to_layout(x, layout), to_layout(kernel, layout), bias, groups=4,
                                                   **args))
    # output channel c * M + m is channel c convolved with its own filter: one group per channel
    pads = resolved_pads("SAME", (7, 6), (3, 3), (2, 2), (1, 1))
    expected = grouped_conv2d_reference(x, kernel, bias, (2, 2), (1, 1), pads, groups=4)
    abs_sum = grouped_conv2d_reference(np.abs(x), np.abs(kernel), np.abs(bias), (2, 2), (1, 1), pads, groups=4)
    assert_within_bound(from_layout(y, layout), expected, abs_sum, 3 * 3 + 1)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("groups", [1, 2])
def test_matches_pytorch(mode, groups):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 7, 6))  # NCHW
    kernel = rng.standard_normal((6, 4 // groups, 3, 2))
    bias = rng.standard_normal(6)
    conv = torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=groups,
                           padding_mode=mode).double()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(kernel))
        conv.bias.copy_(torch.tensor(bias))
    xt = torch.tensor(x, requires_grad=True)
    yt = conv(xt)
    gy = rng.standard_normal(yt.shape)
    yt.backward(torch.tensor(gy))
    args = dict(strides=(2, 1), dilations=(0, 1), padding=1, layout="NCHW", groups=groups, padding_mode=mode)
    y = cyconv.conv2d(x, kernel, bias, **args)
    grad_x, grad_kernel, grad_bias = cyconv.conv2d_backward(gy, x, kernel, **args)
    # Both libraries sum the same float64 products in their own orders: each is within
    # gamma_K * sum |terms| of the exact value, so within twice that of each other.
    nhwc_case = dict(x=np.transpose(x, (0, 2, 3, 1)), kernel=np.transpose(kernel, (0, 2, 3, 1)), bias=bias,
                     strides=(2, 1), dilations=(0, 1), pads=((1, 1), (1, 1)), padding_mode=mode, pad_value=0.0,
                     groups=groups)
    scale = from_layout(reference(nhwc_case, absolute=True), "NHWC")
    k = kernel[0].size + 1
    assert np.all(np.abs(y - yt.detach().numpy()) <= 2 * gamma(k) * np.transpose(scale, (0, 3, 1, 2)))
    # Each gradient element sums at most gy.size * K terms gy * kernel (grad_x), gy * x (grad_kernel)
    # or gy (grad_bias): sum |terms| <= sum |gy| * max(1, max |x|, max |kernel|).
    scale = np.abs(gy).sum() * max(1.0, np.abs(x).max(), np.abs(kernel).max())
    for got, want in ((grad_x, xt.grad), (grad_kernel, conv.weight.grad), (grad_bias, conv.bias.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=2 * gamma(gy.size * k) * scale)
