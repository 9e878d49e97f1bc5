"""Random NCHW convolutions in the shape of documents 000 and 002 (int stride, int padding, exact
output size), the direct-loop reference in NCHW and finite-difference gradients, for
test_compat.py and test_conv_layer.py."""
import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from reference import conv2d_reference, finite_difference_grad, nchw, nhwc


def reference_nchw(X, W, b, stride, padding):
    """conv2d_reference on NCHW arrays: X (N, C, H, W), W (F, C, fh, fw), b (F, 1), (F,) or None."""
    bias = None if b is None else np.ravel(b)
    pads = ((padding, padding), (padding, padding))
    return nchw(conv2d_reference(nhwc(X), nhwc(W), bias, (stride, stride), (0, 0), pads))


def finite_difference_grads(forward, X, W, b, stride, padding, probe):
    """dL/dX, dL/dW, dL/db of L = <forward(X, W, b, stride, padding), probe>, by central
    differences."""
    def loss(X_, W_, b_):
        return float(np.sum(forward(X_, W_, b_, stride, padding) * probe))

    return (
        finite_difference_grad(lambda v: loss(v, W, b), X),
        finite_difference_grad(lambda v: loss(X, v, b), W),
        finite_difference_grad(lambda v: loss(X, W, v), b),
    )


@st.composite
def document_cases(draw, max_out=4, max_batch=2, max_channels=3, max_filters=3):
    """X, W, b (F, 1), stride, padding and the output size (OH, OW), all float64.

    The input size is built from the output size, H = (OH - 1) * stride + fh - 2 * padding, so that
    (H - fh + 2 * padding) / stride + 1 is an integer as the documents require.
    """
    fh, fw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    out_h, out_w = draw(st.integers(1, max_out)), draw(st.integers(1, max_out))
    h = (out_h - 1) * stride + fh - 2 * padding
    w = (out_w - 1) * stride + fw - 2 * padding
    assume(h >= 1 and w >= 1)
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    f = draw(st.integers(1, max_filters))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return dict(
        X=rng.standard_normal((n, c, h, w)),
        W=rng.standard_normal((f, c, fh, fw)),
        b=rng.standard_normal((f, 1)),
        stride=stride,
        padding=padding,
        out_hw=(out_h, out_w),
    )
