"""1-D convolution: against a direct 1-D loop, finite differences, both layouts, and the 1-D forms of
its arguments."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import cyconv
from helpers import DTYPES, FD_TOL, assert_within_bound
from reference import conv1d_reference, finite_difference_grad, reference_padding

PADDINGS_1D = st.one_of(st.sampled_from(["SAME", "VALID"]), st.integers(0, 2),
                        st.tuples(st.integers(0, 2), st.integers(0, 2)))


@st.composite
def conv1d_cases(draw, dtypes=DTYPES):
    groups, cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n, width, k = draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 4))
    stride, dilation, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(PADDINGS_1D)
    if isinstance(padding, str):
        pads = reference_padding(padding, width, k, stride, dilation)
    else:
        pads = (padding, padding) if isinstance(padding, int) else padding
    assume(width + sum(pads) >= (k - 1) * (dilation + 1) + 1)
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return dict(
        x=rng.standard_normal((n, width, groups * cg)).astype(dtype),
        kernel=rng.standard_normal((groups * fg, k, cg)).astype(dtype),
        bias=rng.standard_normal(groups * fg).astype(dtype) if draw(st.booleans()) else None,
        stride=stride, dilation=dilation, padding=padding, pads=pads, groups=groups,
        pad_value=draw(st.sampled_from([0.0, 1.5])), layout=draw(st.sampled_from(["NWC", "NCW"])),
    )


def in_layout(a, layout):
    """An NWC array (or an (F, k, C) kernel) in `layout`, and back (the transpose is its own inverse)."""
    return a if layout == "NWC" else np.ascontiguousarray(np.transpose(a, (0, 2, 1)))


def options(case):
    return dict(strides=case["stride"], dilations=case["dilation"], padding=case["padding"], layout=case["layout"],
                pad_value=case["pad_value"], groups=case["groups"])


def reference(case, x=None, kernel=None, bias="case", absolute=False):
    x = case["x"] if x is None else x
    kernel = case["kernel"] if kernel is None else kernel
    bias, pad_value = case["bias"] if isinstance(bias, str) else bias, case["pad_value"]
    if absolute:
        x, kernel, bias, pad_value = np.abs(x), np.abs(kernel), None if bias is None else np.abs(bias), abs(pad_value)
    return conv1d_reference(x, kernel, bias, case["stride"], case["dilation"], case["pads"], pad_value, case["groups"])


@given(conv1d_cases())
def test_forward_matches_a_direct_loop(case):
    layout = case["layout"]
    y = cyconv.conv1d(in_layout(case["x"], layout), in_layout(case["kernel"], layout), case["bias"], **options(case))
    terms = case["kernel"][0].size + (case["bias"] is not None)
    assert_within_bound(in_layout(y, layout), reference(case), reference(case, absolute=True), terms)


@given(conv1d_cases(dtypes=(np.float64,)))
def test_gradients_match_finite_differences(case):
    layout = case["layout"]
    bias = np.zeros(case["kernel"].shape[0]) if case["bias"] is None else case["bias"]
    probe = np.random.default_rng(8).standard_normal(reference(case).shape)
    grads = cyconv.conv1d_backward(in_layout(probe, layout), in_layout(case["x"], layout),
                                   in_layout(case["kernel"], layout), **options(case))

    def loss(x=case["x"], kernel=case["kernel"], b=bias):
        return float(np.sum(reference(case, x=x, kernel=kernel, bias=b) * probe))

    tol = FD_TOL * max(1.0, float(np.sum(reference(case, bias=np.abs(bias), absolute=True) * np.abs(probe))))
    expected = (finite_difference_grad(lambda v: loss(x=v), case["x"]),
                finite_difference_grad(lambda v: loss(kernel=v), case["kernel"]),
                finite_difference_grad(lambda v: loss(b=v), bias))
    for got, want in zip((in_layout(grads[0], layout), in_layout(grads[1], layout), grads[2]), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)


def test_one_element_sequences_are_accepted_for_stride_and_dilation():
    x, kernel = np.arange(20.0).reshape(1, 10, 2), np.ones((3, 2, 2))
    np.testing.assert_array_equal(cyconv.conv1d(x, kernel, strides=(2,), dilations=(1,)),
                                  cyconv.conv1d(x, kernel, strides=2, dilations=1))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: cyconv.conv1d(np.ones((2, 5, 3, 1)), np.ones((1, 2, 3))), ValueError, r"x must be 3-D, got shape"),
    (lambda: cyconv.conv1d(np.ones((2, 5, 3)), np.ones((1, 2, 2))), ValueError,
     r"kernel has 2 input channels but x has 3: kernel shape \(1, 2, 2\) is \(F, k, C\) in layout NWC"),
    (lambda: cyconv.conv1d(np.ones((2, 5, 3)), np.ones((1, 2, 3)), layout="NHWC"), ValueError,
     r"layout must be 'NWC' or 'NCW', got 'NHWC'"),
    (lambda: cyconv.conv1d(np.ones((2, 5, 3)), np.ones((1, 2, 3)), padding=(1, 2, 3)), ValueError,
     r"padding must be 'SAME', 'VALID', an int or \(left, right\), got \(1, 2, 3\)"),
    (lambda: cyconv.conv1d(np.ones((2, 5, 3)), np.ones((1, 2, 3)), strides=(1, 2)), TypeError,
     r"strides must be an integer, got \(1, 2\)"),
    (lambda: cyconv.conv1d(np.ones((2, 5, 4)), np.ones((3, 2, 2)), groups=2), ValueError,
     r"groups must divide both the channels of x \(4\) and the filters of kernel \(3\), got groups=2"),
    (lambda: cyconv.conv1d_backward(np.ones((2, 3, 1)), np.ones((2, 5, 3)), np.ones((1, 2, 3))), ValueError,
     r"grad_y must have the output's shape \(2, 4, 1\) \(NWC\), got \(2, 3, 1\)"),
])
def test_bad_arguments_are_named(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
