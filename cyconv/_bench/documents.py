"""The documents' NumPy method: documents 000 / 002's convolution, the baseline cyconv is timed against.

get_im2col_indices, im2col_indices, col2im_indices, conv_forward and conv_backward are kept as the
documents have them (cs231n assignment 2's helpers: fancy indexing, np.add.at; NCHW, X
(N, C, H, W), W (F, C, HF, WF), b (F, 1), symmetric integer padding, no dilation).

documents_conv applies them to any layer of the suite through an equivalent formulation when the
documents cannot express it directly (asymmetric SAME padding, dilation, NHWC data);
documents_notes says which. tests/test_benchmark.py checks every formulation against cyconv.
"""
import numpy as np


def get_im2col_indices(x_shape, field_height, field_width, padding=1, stride=1):
    """The (channel, row, column) index arrays that gather every patch of the padded input."""
    N, C, H, W = x_shape
    assert (H + 2 * padding - field_height) % stride == 0
    assert (W + 2 * padding - field_width) % stride == 0
    out_height = (H + 2 * padding - field_height) // stride + 1
    out_width = (W + 2 * padding - field_width) // stride + 1

    i0 = np.repeat(np.arange(field_height), field_width)
    i0 = np.tile(i0, C)
    i1 = stride * np.repeat(np.arange(out_height), out_width)
    j0 = np.tile(np.arange(field_width), field_height * C)
    j1 = stride * np.tile(np.arange(out_width), out_height)
    i = i0.reshape(-1, 1) + i1.reshape(1, -1)
    j = j0.reshape(-1, 1) + j1.reshape(1, -1)
    k = np.repeat(np.arange(C), field_height * field_width).reshape(-1, 1)
    return k, i, j


def im2col_indices(x, field_height, field_width, padding=1, stride=1):
    """(C * kh * kw, OH * OW * N) patches of x (N, C, H, W) by fancy indexing."""
    p = padding
    x_padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="constant")
    k, i, j = get_im2col_indices(x.shape, field_height, field_width, padding, stride)
    cols = x_padded[:, k, i, j]
    C = x.shape[1]
    cols = cols.transpose(1, 2, 0).reshape(field_height * field_width * C, -1)
    return cols


def col2im_indices(cols, x_shape, field_height=3, field_width=3, padding=1, stride=1):
    """The adjoint of im2col_indices, with np.add.at."""
    N, C, H, W = x_shape
    H_padded, W_padded = H + 2 * padding, W + 2 * padding
    x_padded = np.zeros((N, C, H_padded, W_padded), dtype=cols.dtype)
    k, i, j = get_im2col_indices(x_shape, field_height, field_width, padding, stride)
    cols_reshaped = cols.reshape(C * field_height * field_width, -1, N)
    cols_reshaped = cols_reshaped.transpose(2, 0, 1)
    np.add.at(x_padded, (slice(None), k, i, j), cols_reshaped)
    if padding == 0:
        return x_padded
    return x_padded[:, :, padding:-padding, padding:-padding]


def conv_forward(X, W, b, stride=1, padding=1):
    """Document 002's conv_forward: X (N, C, H, W), W (F, C, HF, WF), b (F, 1)."""
    cache = W, b, stride, padding
    n_filters, d_filter, h_filter, w_filter = W.shape
    n_x, d_x, h_x, w_x = X.shape
    h_out = (h_x - h_filter + 2 * padding) / stride + 1
    w_out = (w_x - w_filter + 2 * padding) / stride + 1

    if not h_out.is_integer() or not w_out.is_integer():
        raise Exception("Invalid output dimension!")

    h_out, w_out = int(h_out), int(w_out)

    X_col = im2col_indices(X, h_filter, w_filter, padding=padding, stride=stride)
    W_col = W.reshape(n_filters, -1)

    out = W_col @ X_col + b
    out = out.reshape(n_filters, h_out, w_out, n_x)
    out = out.transpose(3, 0, 1, 2)

    cache = (X, W, b, stride, padding, X_col)

    return out, cache


def conv_backward(dout, cache):
    """Document 002's conv_backward: returns dX, dW, db (db shaped (F, 1))."""
    X, W, b, stride, padding, X_col = cache
    n_filter, d_filter, h_filter, w_filter = W.shape

    db = np.sum(dout, axis=(0, 2, 3))
    db = db.reshape(n_filter, -1)

    dout_reshaped = dout.transpose(1, 2, 3, 0).reshape(n_filter, -1)
    dW = dout_reshaped @ X_col.T
    dW = dW.reshape(W.shape)

    W_reshape = W.reshape(n_filter, -1)
    dX_col = W_reshape.T @ dout_reshaped
    dX = col2im_indices(dX_col, X.shape, h_filter, w_filter, padding=padding, stride=stride)

    return dX, dW, db


NHWC_NOTE = "documents' method on NHWC data: NCHW transposed views in, NHWC view out"


def documents_notes(spec, layout):
    """How the documents' method is applied to this layer (empty: exactly as the documents)."""
    g = spec.geometry()
    notes = []
    if layout == "NHWC":
        notes.append(NHWC_NOTE)
    pads = (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)
    extent = spec.extent()
    used = ((g.out_h - 1) * spec.stride + extent, (g.out_w - 1) * spec.stride + extent)
    if len(set(pads)) > 1:
        notes.append(f"documents' method: asymmetric {spec.padding} padding (top, bottom, left, right) "
                     f"= {pads} applied with np.pad, then padding=0 (and dx cropped)")
    if used != (g.in_h + g.pad_top + g.pad_bottom, g.in_w + g.pad_left + g.pad_right):
        notes.append("documents' method: trailing rows / columns no output reads cropped from the "
                     "input, then padding=0")
    if spec.dilation:
        notes.append(f"documents' method: dilation {spec.dilation} as a {extent}x{extent} kernel with "
                     f"zeros between the taps ({extent * extent / (spec.k * spec.k):.2f}x the FLOPs), "
                     f"grad kernel read back from the taps")
    return notes


def documents_conv(x, kernel, bias, geometry, layout, grad_y=None):
    """cyconv's convolution computed by the documents' method (on an equivalent formulation when
    the geometry needs it): y, or (y, (grad_x, grad_kernel, grad_bias)) when grad_y is given.

    x, kernel, grad_y are in `layout` (kernel (F, kh, kw, C) for NHWC, (F, C, kh, kw) for NCHW);
    geometry is a cyconv.Geometry; dilation is cyconv's (gaps between taps)."""
    g = geometry
    if layout == "NHWC":
        x = x.transpose(0, 3, 1, 2)
        kernel = kernel.transpose(0, 3, 1, 2)
        if grad_y is not None:
            grad_y = grad_y.transpose(0, 3, 1, 2)
    if (g.stride_h != g.stride_w or g.dilation_h != g.dilation_w or g.kernel_h != g.kernel_w):
        raise ValueError("the documents' method here takes square kernels, strides and dilations")
    stride, dil = g.stride_h, g.dilation_h
    extent_h = (g.kernel_h - 1) * (dil + 1) + 1
    extent_w = (g.kernel_w - 1) * (dil + 1) + 1
    # the padded rows / columns the output actually reads; the documents need them to fit exactly
    used_h, used_w = (g.out_h - 1) * stride + extent_h, (g.out_w - 1) * stride + extent_w
    symmetric = (g.pad_top == g.pad_bottom == g.pad_left == g.pad_right
                 and used_h == g.in_h + 2 * g.pad_top and used_w == g.in_w + 2 * g.pad_left)
    if symmetric:
        padding, xp = g.pad_top, x
    else:
        # explicit padding, and trailing rows / columns no output reads dropped (a VALID layer
        # whose stride does not divide the span): then padding=0
        padding = 0
        xp = np.pad(x, ((0, 0), (0, 0), (g.pad_top, max(used_h - g.in_h - g.pad_top, 0)),
                        (g.pad_left, max(used_w - g.in_w - g.pad_left, 0))))[:, :, :used_h, :used_w]
    if dil:
        f, c, kh, kw = kernel.shape
        wd = np.zeros((f, c, (kh - 1) * (dil + 1) + 1, (kw - 1) * (dil + 1) + 1), dtype=kernel.dtype)
        wd[:, :, ::dil + 1, ::dil + 1] = kernel
    else:
        wd = kernel
    b = np.zeros((wd.shape[0], 1), dtype=x.dtype) if bias is None else bias.reshape(-1, 1)
    y, cache = conv_forward(xp, wd, b, stride=stride, padding=padding)
    to_layout = (lambda a: a.transpose(0, 2, 3, 1)) if layout == "NHWC" else (lambda a: a)
    if grad_y is None:
        return to_layout(y)
    dx, dw, db = conv_backward(grad_y, cache)
    if not symmetric:
        inner = dx[:, :, g.pad_top:g.pad_top + g.in_h, g.pad_left:g.pad_left + g.in_w]
        if inner.shape[2:] != (g.in_h, g.in_w):  # rows / columns dropped above get zero gradient
            full = np.zeros(inner.shape[:2] + (g.in_h, g.in_w), dtype=dx.dtype)
            full[:, :, :inner.shape[2], :inner.shape[3]] = inner
            inner = full
        dx = inner
    if dil:
        dw = dw[:, :, ::dil + 1, ::dil + 1]
    return to_layout(y), (to_layout(dx), to_layout(dw), db.reshape(-1))
