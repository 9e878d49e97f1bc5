"""im2col / col2im: patch layout against slicing a padded array, and the adjoint identity."""
import numpy as np
import pytest
from hypothesis import given
from numpy.testing import assert_allclose

import cyconv
from helpers import LAYOUTS
from reference import nchw
from strategies import conv_cases


def patches_by_slicing(x, kernel_hw, strides, dilations, pads, pad_value):
    """(N, OH, OW, kh, kw, C) patches of NHWC x, taken from an explicitly padded copy."""
    (top, bottom), (left, right) = pads
    xpad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    (kh, kw), (sh, sw), (dh, dw) = kernel_hw, strides, dilations
    out_h = (xpad.shape[1] - (kh - 1) * (dh + 1) - 1) // sh + 1
    out_w = (xpad.shape[2] - (kw - 1) * (dw + 1) - 1) // sw + 1
    rows = np.arange(out_h)[:, None] * sh + np.arange(kh)[None, :] * (dh + 1)  # (OH, kh)
    cols = np.arange(out_w)[:, None] * sw + np.arange(kw)[None, :] * (dw + 1)  # (OW, kw)
    return xpad[:, rows[:, None, :, None], cols[None, :, None, :], :]


def geometry_args(case):
    return dict(strides=case["strides"], dilations=case["dilations"], padding=case["padding"])


@given(conv_cases())
def test_im2col_nhwc_rows_are_patches(case):
    kernel_hw = case["kernel"].shape[1:3]
    cols = cyconv.im2col(case["x"], kernel_hw, layout="NHWC", pad_value=case["pad_value"], **geometry_args(case))
    patches = patches_by_slicing(case["x"], kernel_hw, case["strides"], case["dilations"], case["pads"],
                                 case["pad_value"])
    n, oh, ow, kh, kw, c = patches.shape
    assert cols.dtype == case["dtype"]
    assert_allclose(cols, patches.reshape(n * oh * ow, kh * kw * c), rtol=0, atol=0)


@given(conv_cases())
def test_im2col_nchw_rows_are_taps(case):
    kernel_hw = case["kernel"].shape[1:3]
    cols = cyconv.im2col(nchw(case["x"]), kernel_hw, layout="NCHW", pad_value=case["pad_value"],
                         **geometry_args(case))
    patches = patches_by_slicing(case["x"], kernel_hw, case["strides"], case["dilations"], case["pads"],
                                 case["pad_value"])
    n, oh, ow, kh, kw, c = patches.shape
    expected = patches.transpose(0, 5, 3, 4, 1, 2).reshape(n, c * kh * kw, oh * ow)
    assert_allclose(cols, expected, rtol=0, atol=0)


@given(conv_cases(dtypes=(np.float64,)))
def test_col2im_is_the_adjoint_of_im2col(case):
    x = case["x"] if case["layout"] == "NHWC" else nchw(case["x"])
    kernel_hw = case["kernel"].shape[1:3]
    cols = cyconv.im2col(x, kernel_hw, layout=case["layout"], **geometry_args(case))
    c = np.random.default_rng(3).standard_normal(cols.shape)
    back = cyconv.col2im(c, x.shape, kernel_hw, layout=case["layout"], **geometry_args(case))
    assert back.shape == x.shape
    lhs, rhs = np.vdot(cols, c), np.vdot(x, back)
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, np.abs(cols).sum() * np.abs(c).max())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_col2im_counts_how_often_each_pixel_is_read(layout):
    # A 3x3 kernel, stride 1, SAME on a 4x4 image: corner pixels are read by 4 patches, edges by 6,
    # the inner 2x2 by 9.
    shape = (1, 4, 4, 1) if layout == "NHWC" else (1, 1, 4, 4)
    ones = np.ones(cyconv.im2col(np.zeros(shape), 3, padding="SAME", layout=layout).shape)
    counts = cyconv.col2im(ones, shape, 3, padding="SAME", layout=layout).reshape(4, 4)
    expected = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])
    assert_allclose(counts, expected)


def test_im2col_returns_a_new_array_for_pointwise_geometry():
    x = np.arange(12.0).reshape(1, 2, 2, 3)
    cols = cyconv.im2col(x, 1)
    cols[0, 0] = 100.0
    assert x[0, 0, 0, 0] == 0.0
