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


def pad_reference(x, pads, mode, pad_value=0.0):
    """x (N, H, W, C) padded by pads ((top, bottom), (left, right)), every padded pixel chosen by
    its index alone: 'constant' pad_value, 'reflect' mirrored about the edge pixel (not repeated),
    'replicate' the nearest edge pixel, 'circular' the input repeated."""
    x = np.asarray(x, dtype=np.float64)

    def source(i, size):
        """The input index padded index i (counted from the input's first pixel) copies."""
        if mode == "replicate":
            return min(max(i, 0), size - 1)
        if mode == "circular":
            return i % size
        while not 0 <= i < size:  # reflect
            i = -i if i < 0 else 2 * (size - 1) - i
        return i

    (top, bottom), (left, right) = pads
    n, h, w, c = x.shape
    if mode == "constant":
        out = np.full((n, h + top + bottom, w + left + right, c), pad_value, dtype=np.float64)
        out[:, top:top + h, left:left + w] = x
        return out
    rows = [source(i - top, h) for i in range(h + top + bottom)]
    cols = [source(j - left, w) for j in range(w + left + right)]
    return x[:, rows][:, :, cols]


def grouped_conv2d_reference(x, kernel, bias, strides, dilations, pads, pad_value=0.0, groups=1):
    """conv2d_reference of each group: channels [g*C/G, (g+1)*C/G) of x (N, H, W, C) convolved with
    filters [g*F/G, (g+1)*F/G) of kernel (F, kh, kw, C/G), the groups' outputs side by side."""
    cg, fg = x.shape[3] // groups, kernel.shape[0] // groups
    y = np.concatenate([
        conv2d_reference(x[..., g * cg:(g + 1) * cg], kernel[g * fg:(g + 1) * fg], None, strides, dilations, pads,
                         pad_value)
        for g in range(groups)
    ], axis=3)
    return y if bias is None else y + np.asarray(bias, dtype=np.float64)


def conv2d_transpose_reference(x, kernel, bias, strides, dilations, pads, out_hw, groups=1):
    """Transposed convolution by scattering, in float64, NHWC: x (N, H, W, F), kernel (F, kh, kw, C/G),
    output (N, OH, OW, C) with (OH, OW) = out_hw. Input pixel (h, w) of filter f (group g = f // (F/G))
    adds x[n, h, w, f] * kernel[f, i, j, :] to channels [g*C/G, (g+1)*C/G) of output pixel
    (h*sh - top + i*(dh+1), w*sw - left + j*(dw+1)) when that pixel exists."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    n, h, w, f = x.shape
    _, kh, kw, cg = kernel.shape
    fg = f // groups
    (sh, sw), (dh, dw), ((top, _), (left, _)) = strides, dilations, pads
    y = np.zeros((n, out_hw[0], out_hw[1], groups * cg))
    for g in range(groups):
        for oh in range(h):
            for ow in range(w):
                for i in range(kh):
                    for j in range(kw):
                        row, col = oh * sh - top + i * (dh + 1), ow * sw - left + j * (dw + 1)
                        if 0 <= row < out_hw[0] and 0 <= col < out_hw[1]:
                            y[:, row, col, g * cg:(g + 1) * cg] += (
                                x[:, oh, ow, g * fg:(g + 1) * fg] @ kernel[g * fg:(g + 1) * fg, i, j, :])
    return y if bias is None else y + np.asarray(bias, dtype=np.float64)


def conv1d_reference(x, kernel, bias, stride, dilation, pads, pad_value=0.0, groups=1):
    """Direct 1-D convolution in float64, NWC: x (N, W, C), kernel (F, k, C/G), pads (left, right):
    y[n, o, f] = bias[f] + sum_{j, c} xpad[n, o*stride + j*(dilation+1), g*C/G + c] * kernel[f, j, c]."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    n, width, c = x.shape
    f, k, cg = kernel.shape
    fg = f // groups
    left, right = pads
    xpad = np.full((n, width + left + right, c), pad_value, dtype=np.float64)
    xpad[:, left:left + width] = x
    out = (width + left + right - (k - 1) * (dilation + 1) - 1) // stride + 1
    y = np.zeros((n, out, f))
    for o in range(out):
        for j in range(k):
            pixel = xpad[:, o * stride + j * (dilation + 1)]
            for g in range(groups):
                y[:, o, g * fg:(g + 1) * fg] += pixel[:, g * cg:(g + 1) * cg] @ kernel[g * fg:(g + 1) * fg, j].T
    return y if bias is None else y + np.asarray(bias, dtype=np.float64)


# Winograd F(m x m, 3x3): the matrices of Lavin & Gray (arXiv 1509.09308, sections 4.1 and 4.2),
# written out independently of cyconv/_winograd.pyx, by tile m.
BT = {
    2: np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),
    4: np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float),
}
G = {
    2: np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]),
    4: np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                 [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
}
AT = {
    2: np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float),
    4: np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float),
}


def padded(x, pad_top, pad_left, rows, cols, pad_value):
    """xp[n, r, s] = x[n, r - pad_top, s - pad_left] inside the input, pad_value outside, for
    r < rows, s < cols (pads may be negative or larger than the input)."""
    n, h, w, c = x.shape
    xp = np.full((n, rows, cols, c), pad_value, dtype=np.float64)
    r0, r1 = max(0, pad_top), min(rows, pad_top + h)
    s0, s1 = max(0, pad_left), min(cols, pad_left + w)
    if r0 < r1 and s0 < s1:
        xp[:, r0:r1, s0:s1] = x[:, r0 - pad_top:r1 - pad_top, s0 - pad_left:s1 - pad_left]
    return xp


def kernel_grad_reference(x, grad_y, kernel_hw, strides=(1, 1), dilations=(0, 0), pads=(0, 0), pad_value=0.0,
                          groups=1):
    """dL/dkernel from its definition, NHWC, float64: grad_kernel[f, i, j, c] = the sum over n, oh, ow
    of grad_y[n, oh, ow, f] * xp[n, oh sh + i (dh + 1), ow sw + j (dw + 1), g C/G + c], g = f's group,
    xp = x padded by the signed pads (top, left) with pad_value (see padded)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_hw, strides, dilations
    n, oh, ow, f = grad_y.shape
    xp = padded(np.asarray(x, np.float64), pads[0], pads[1], (oh - 1) * sh + (kh - 1) * (dh + 1) + 1,
                (ow - 1) * sw + (kw - 1) * (dw + 1) + 1, pad_value)
    cg, fg = x.shape[3] // groups, f // groups
    grad_y = np.asarray(grad_y, np.float64)
    grad_kernel = np.zeros((f, kh, kw, cg))
    for i in range(kh):
        for j in range(kw):
            window = xp[:, i * (dh + 1):i * (dh + 1) + (oh - 1) * sh + 1:sh,
                        j * (dw + 1):j * (dw + 1) + (ow - 1) * sw + 1:sw]
            for g in range(groups):
                grad_kernel[g * fg:(g + 1) * fg, i, j] = np.einsum(
                    "nhwf,nhwc->fc", grad_y[..., g * fg:(g + 1) * fg], window[..., g * cg:(g + 1) * cg])
    return grad_kernel


def direct_reference(x, kernel, bias, pads, out_hw, dilations, pad_value, strides=(1, 1)):
    """A convolution with signed pads (pad_top, pad_left) and output size out_hw (the padding after
    is what out_hw needs), by conv2d_reference on the explicitly padded (or cropped) input: x
    (N, H, W, C), kernel (F, kh, kw, C), result (N, out_h, out_w, F)."""
    (sh, sw), (dh, dw), (oh, ow), (kh, kw) = strides, dilations, out_hw, kernel.shape[1:3]
    xp = padded(x, pads[0], pads[1], (oh - 1) * sh + (kh - 1) * (dh + 1) + 1, (ow - 1) * sw + (kw - 1) * (dw + 1) + 1,
                pad_value)
    return conv2d_reference(xp, kernel, bias, strides, dilations, ((0, 0), (0, 0)))


def winograd_reference(x, kernel, bias, pads, out_hw, dilations, pad_value, m, absolute=False):
    """F(m x m, 3x3) in float64 with the paper's matrices, tiled as the kernel tiles (sub-grid by
    sub-grid; window positions that no written output reads are 0). absolute=True runs it on the
    absolute values of everything: Y_abs of tests/test_winograd.py's bound."""
    f = np.abs if absolute else (lambda a: a)
    bt, g, at = f(BT[m]), f(G[m]), f(AT[m])
    x, kernel, bias = (f(np.asarray(a, float)) for a in (x, kernel, bias))
    pad_value = f(pad_value)
    (dh, dw), (out_h, out_w) = dilations, out_hw
    alpha = m + 2
    u = np.einsum("ai,fijc,bj->abcf", g, kernel, g)
    y = np.zeros((x.shape[0], out_h, out_w, kernel.shape[0]))
    for ph in range(min(dh + 1, out_h)):
        for pw in range(min(dw + 1, out_w)):
            rows, cols = len(range(ph, out_h, dh + 1)), len(range(pw, out_w, dw + 1))
            th, tw = -(-rows // m), -(-cols // m)
            # the sub-grid's input, window position q reading row ph - pad_top + (dh + 1) q
            xp = padded(x, pads[0], pads[1], ph + (dh + 1) * (th * m + 2), pw + (dw + 1) * (tw * m + 2), pad_value)
            z = xp[:, ph::dh + 1, pw::dw + 1][:, :th * m + 2, :tw * m + 2].copy()
            z[:, rows + 2:] = 0
            z[:, :, cols + 2:] = 0
            tiles = np.lib.stride_tricks.sliding_window_view(z, (alpha, alpha), axis=(1, 2))[:, ::m, ::m]
            v = np.einsum("ak,nijckl,bl->nijabc", bt, tiles, bt, optimize=True)
            a2, c = alpha * alpha, u.shape[2]  # M[a] = V[a] @ U[a] as one batched BLAS product
            mm = np.matmul(v.reshape(-1, a2, c).transpose(1, 0, 2), u.reshape(a2, c, -1)).transpose(1, 0, 2)
            mm = mm.reshape(v.shape[:5] + (-1,))
            out = np.einsum("ra,nijabf,sb->nirjsf", at, mm, at, optimize=True).reshape(x.shape[0], th * m, tw * m, -1)
            y[:, ph::dh + 1, pw::dw + 1] = out[:, :rows, :cols]
    return y + bias
