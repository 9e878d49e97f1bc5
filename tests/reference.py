"""Independent references for the tests: a direct-loop convolution written from the formula, the
padding rules re-derived from TensorFlow's documentation, and central finite differences.

Nothing here calls cyconv, so what the tests compare against does not share its bugs.
"""
import math

import numpy as np


def reference_padding(mode, size, kernel, stride, dilation):
    """(before, after) padding on one axis for 'SAME' / 'VALID', dilation as gaps between taps."""
    extent = dilation * (kernel - 1) + kernel
    if mode == "VALID":
        return 0, 0
    out = math.ceil(size / stride)
    total = max(0, stride * (out - 1) + extent - size)
    return total // 2, total - total // 2


def conv2d_reference(x, kernel, bias, strides, dilations, pads, pad_value=0.0):
    """Direct convolution in float64, NHWC.

    x (N, H, W, C), kernel (F, kh, kw, C), bias (F,) or None, strides (sh, sw),
    dilations (dh, dw) as gaps between taps, pads ((top, bottom), (left, right)).
    y[n, oh, ow, f] = bias[f] + sum_{i, j, c} xpad[n, oh*sh + i*(dh+1), ow*sw + j*(dw+1), c] k[f, i, j, c]
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    n, h, w, c = x.shape
    f, kh, kw, _ = kernel.shape
    (top, bottom), (left, right) = pads
    xpad = np.full((n, h + top + bottom, w + left + right, c), pad_value, dtype=np.float64)
    xpad[:, top:top + h, left:left + w, :] = x
    sh, sw = strides
    dh, dw = dilations
    rows = [o for o in range(xpad.shape[1]) if o * sh + (kh - 1) * (dh + 1) < xpad.shape[1]]
    cols = [o for o in range(xpad.shape[2]) if o * sw + (kw - 1) * (dw + 1) < xpad.shape[2]]
    y = np.zeros((n, len(rows), len(cols), f))
    for oh in rows:
        for ow in cols:
            for i in range(kh):
                for j in range(kw):
                    pixel = xpad[:, oh * sh + i * (dh + 1), ow * sw + j * (dw + 1), :]
                    y[:, oh, ow, :] += pixel @ kernel[:, i, j, :].T
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)
    return y


def finite_difference_grad(f, x, h=1e-3):
    """Central differences of the scalar function f at every element of x (float64)."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat, grad_flat = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + h
        plus = f(x)
        flat[k] = saved - h
        minus = f(x)
        flat[k] = saved
        grad_flat[k] = (plus - minus) / (2 * h)
    return grad


def nchw(a):
    """NHWC array -> NCHW array (also (F, kh, kw, C) -> (F, C, kh, kw))."""
    return np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)))


def nhwc(a):
    """NCHW array -> NHWC array (also (F, C, kh, kw) -> (F, kh, kw, C))."""
    return np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1)))
