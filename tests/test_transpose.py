"""Transposed convolution: against a reference that scatters each input pixel through the kernel,
the adjoint identity with conv2d, finite differences, the output-size rule, and PyTorch's
conv_transpose2d when it is installed."""
import numpy as np
import pytest
from hypothesis import given

import cyconv
from helpers import FD_TOL, assert_within_bound, from_layout, gamma, to_layout
from reference import conv2d_transpose_reference, finite_difference_grad
from strategies import transpose_cases


def options(case):
    return dict(strides=case["strides"], dilations=case["dilations"], padding=case["padding"],
                output_padding=case["output_padding"], layout=case["layout"], groups=case["groups"])


def reference(case, x=None, kernel=None, bias="case", absolute=False):
    x = case["x"] if x is None else x
    kernel = case["kernel"] if kernel is None else kernel
    bias = case["bias"] if isinstance(bias, str) else bias
    if absolute:
        x, kernel, bias = np.abs(x), np.abs(kernel), None if bias is None else np.abs(bias)
    return conv2d_transpose_reference(x, kernel, bias, case["strides"], case["dilations"], case["pads"],
                                      case["out_hw"], case["groups"])


def most_terms(case):
    """An upper bound on the terms of one output element: every (filter of its group, tap) pair,
    and the bias (a gamma bound for more terms than are summed still holds)."""
    f, kh, kw, _ = case["kernel"].shape
    return f // case["groups"] * kh * kw + 1


@given(transpose_cases())
def test_forward_matches_the_scattering_reference(case):
    layout = case["layout"]
    y = cyconv.conv2d_transpose(to_layout(case["x"], layout), to_layout(case["kernel"], layout), case["bias"],
                                **options(case))
    assert y.dtype == case["dtype"]
    assert from_layout(y, layout).shape[1:3] == case["out_hw"]  # the output-size rule, from the formula
    assert_within_bound(from_layout(y, layout), reference(case), reference(case, absolute=True), most_terms(case))


@given(transpose_cases(dtypes=(np.float64,)))
def test_it_is_the_adjoint_of_conv2d(case):
    # <conv2d(y, kernel), x> == <y, conv2d_transpose(x, kernel)> for every y of the output's shape;
    # both sides sum the same triple products y * kernel * x (two roundings each).
    layout = case["layout"]
    x, kernel = to_layout(case["x"], layout), to_layout(case["kernel"], layout)
    transposed = cyconv.conv2d_transpose(x, kernel, **options(case))
    y = np.random.default_rng(5).standard_normal(transposed.shape)
    forward = cyconv.conv2d(y, kernel, strides=case["strides"], dilations=case["dilations"],
                            padding=case["padding"], layout=layout, groups=case["groups"])
    triple_products = float(np.sum(reference(case, absolute=True) * np.abs(from_layout(y, layout))))
    bound = 2 * gamma(y.size * most_terms(case) + 2) * triple_products
    assert abs(np.vdot(forward, x) - np.vdot(y, transposed)) <= bound


@given(transpose_cases(dtypes=(np.float64,)))
def test_gradients_match_finite_differences(case):
    layout = case["layout"]
    bias = np.zeros(case["kernel"].shape[3] * case["groups"]) if case["bias"] is None else case["bias"]
    probe = np.random.default_rng(6).standard_normal(reference(case).shape)
    grads = cyconv.conv2d_transpose_backward(to_layout(probe, layout), to_layout(case["x"], layout),
                                             to_layout(case["kernel"], layout), **options(case))

    def loss(x=case["x"], kernel=case["kernel"], b=bias):
        return float(np.sum(reference(case, x=x, kernel=kernel, bias=b) * probe))

    tol = FD_TOL * max(1.0, float(np.sum((reference(case, absolute=True) + np.abs(bias)) * np.abs(probe))))
    expected = (finite_difference_grad(lambda v: loss(x=v), case["x"]),
                finite_difference_grad(lambda v: loss(kernel=v), case["kernel"]),
                finite_difference_grad(lambda v: loss(b=v), bias))
    for got, want in zip((from_layout(grads[0], layout), from_layout(grads[1], layout), grads[2]), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@pytest.mark.parametrize("padding, output_padding, expected", [
    ("SAME", 0, (64, 64)),            # in * stride
    ("VALID", 0, (65, 65)),           # (32 - 1) * 2 + 3
    ("VALID", 1, (66, 66)),
    (1, 1, (64, 64)),                 # (32 - 1) * 2 - 2 + 3 + 1: PyTorch's usual upsampling by 2
    (((0, 1), (2, 0)), (1, 0), (65, 63)),  # 62 - 1 + 3 + 1, 62 - 2 + 3 + 0
])
def test_output_size(padding, output_padding, expected):
    x = np.zeros((1, 32, 32, 2))
    y = cyconv.conv2d_transpose(x, np.zeros((2, 3, 3, 5)), strides=2, padding=padding, output_padding=output_padding)
    assert y.shape == (1,) + expected + (5,)


@pytest.mark.parametrize("groups", [1, 2])
def test_matches_pytorch(groups):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 5, 6))  # NCHW, F = 4 channels in
    kernel = rng.standard_normal((4, 6 // groups, 3, 2))  # PyTorch's ConvTranspose2d weight (C_in, C_out/G, kh, kw)
    bias = rng.standard_normal(6)
    args = dict(strides=(2, 3), dilations=(1, 0), padding=(1, 1), output_padding=(1, 2), groups=groups)
    xt = torch.tensor(x, requires_grad=True)
    kt = torch.tensor(kernel, requires_grad=True)
    yt = torch.nn.functional.conv_transpose2d(xt, kt, torch.tensor(bias), stride=(2, 3), padding=(1, 1),
                                              output_padding=(1, 2), groups=groups, dilation=(2, 1))
    gy = rng.standard_normal(yt.shape)
    yt.backward(torch.tensor(gy))
    y = cyconv.conv2d_transpose(x, kernel, bias, layout="NCHW", **args)
    grads = cyconv.conv2d_transpose_backward(gy, x, kernel, layout="NCHW", **args)
    assert y.shape == tuple(yt.shape)
    # Every element of y, grad_x, grad_kernel or grad_bias is a sum of at most gy.size * K terms
    # products of x, kernel, gy (and the bias): sum |terms| <= the largest such sum below.
    k = 4 * 3 * 2 + 1
    scale = max(1.0, np.abs(x).sum(), np.abs(gy).sum()) * max(1.0, np.abs(x).max(), np.abs(kernel).max(),
                                                                 np.abs(bias).max())
    for got, want in zip((y,) + grads, (yt, xt.grad, kt.grad, torch.tensor(gy).sum(dim=(0, 2, 3)))):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=0, atol=2 * gamma(gy.size * k) * scale)
