"""2-D convolution on arrays: forward, backward, im2col and col2im, in NHWC or NCHW.

Every function validates its arguments (cyconv._validation, cyconv._geometry), moves data with the
compiled kernels (cyconv._kernels) and multiplies with NumPy's BLAS. The only state is a per-thread
workspace of reusable temporaries (see _workspace).

Shapes, with K = kh * kw * C taps per output pixel and P = OH * OW output pixels per image:

  layout  x             kernel          y               cols
  NHWC    (N, H, W, C)  (F, kh, kw, C)  (N, OH, OW, F)  (N * P, K), columns ordered (kh, kw, C)
  NCHW    (N, C, H, W)  (F, C, kh, kw)  (N, F, OH, OW)  (N, K, P),  rows ordered (C, kh, kw)

so that the kernel reshaped to (F, K) multiplies cols directly: y = cols @ Wm.T (NHWC, already the
NHWC output) or y[n] = Wm @ cols[n] (NCHW, already the NCHW output). Large batches are processed
in chunks of images whose cols fit in cyconv._config.get_max_workspace() bytes; the chunk buffers
are kept per thread and reused across calls (fresh large temporaries cost page faults that made a
small layer's forward 4x slower).

Dilation d is document 001's: d gaps between taps, 0 is the ordinary kernel (PyTorch's d + 1).
"""
import threading

import numpy as np

from . import _config, _kernels
from ._validation import (
    compute_dtype,
    conv_problem,
    grad_output,
    images_per_chunk,
    in_layout,
    layout_name,
    nhwc_order,
    patch_geometry,
    real_array,
    real_scalar,
)


# Below this many cols elements a kernel runs on one thread: starting and joining an OpenMP team
# costs more than the copy, and on a busy machine spinning threads make it far worse.
PARALLEL_MIN_ELEMENTS = 1 << 16


def _threads_for(cols):
    return _config.get_num_threads() if cols.size >= PARALLEL_MIN_ELEMENTS else 1


def _cols_shape(n, c, geometry, layout):
    taps = geometry.patch_size * c
    pixels = geometry.out_h * geometry.out_w
    return (n * pixels, taps) if layout == "NHWC" else (n, taps, pixels)


_thread_buffers = threading.local()


def _workspace(role, shape, dtype):
    """An uninitialised C-contiguous array of `shape` for a temporary named `role` ("cols",
    "dcols"), reused from earlier calls in this thread while it fits in the workspace limit;
    a larger one (a single image above the limit) is allocated for this call only."""
    size = int(np.prod(shape))
    if size * np.dtype(dtype).itemsize > _config.get_max_workspace():
        return np.empty(shape, dtype=dtype)
    buffers = _thread_buffers.__dict__
    key = (role, np.dtype(dtype))
    if key not in buffers or buffers[key].size < size:
        buffers[key] = np.empty(size, dtype=dtype)
    return buffers[key][:size].reshape(shape)


def _im2col(x, geometry, layout, pad_value, ones=False, role=None):
    """cols of x (C-contiguous, float32/float64, validated); a view of x for a pointwise geometry.

    ones=True appends a column (NHWC) or row (NCHW) of ones, so that the kernel matrix with the
    bias appended adds the bias inside the product (not for a pointwise geometry). With a `role`
    cols lives in the reusable workspace (valid until the next call); without, it is a new array."""
    n, _, _, c = nhwc_order(x.shape, layout)
    shape = _cols_shape(n, c, geometry, layout)
    if geometry.is_pointwise:
        return x.reshape(shape)
    buffer_shape = list(shape)
    buffer_shape[1] += int(ones)  # axis 1 holds the taps in both layouts
    cols = _workspace(role, buffer_shape, x.dtype) if role else np.empty(buffer_shape, dtype=x.dtype)
    if ones:
        cols[:, shape[1]] = 1  # the kernels fill taps [0, K) and leave the rest alone
    im2col_kernel = _kernels.im2col_nhwc if layout == "NHWC" else _kernels.im2col_nchw
    im2col_kernel(x, cols, *geometry.kernel_args(), pad_value, _threads_for(cols))
    return cols


def _col2im_add(cols, out, geometry, layout):
    """Add cols into out (C-contiguous, validated), the adjoint of _im2col."""
    if geometry.is_pointwise:
        out += cols.reshape(out.shape)
        return
    col2im_kernel = _kernels.col2im_nhwc if layout == "NHWC" else _kernels.col2im_nchw
    col2im_kernel(cols, out, *geometry.kernel_args(), _threads_for(cols))


def _image_chunks(problem):
    """(start, stop) ranges of images processed together (_validation.images_per_chunk)."""
    step = images_per_chunk(problem.batch, problem.channels, problem.geometry, problem.dtype.itemsize)
    return [(start, min(start + step, problem.batch)) for start in range(0, problem.batch, step)]


def _forward(problem):
    g = problem.geometry
    f, pixels = problem.filters, g.out_h * g.out_w
    wm = problem.kernel.reshape(f, -1)
    # The bias rides in the product as one more column of the kernel matrix against a column of
    # ones in cols: a separate y += bias pass cost 30 % of a small layer's forward.
    fold_bias = problem.bias is not None and not g.is_pointwise
    if fold_bias:
        wm = np.concatenate([wm, problem.bias[:, None]], axis=1)
    nhwc = problem.layout == "NHWC"
    y = np.empty((problem.batch * pixels, f) if nhwc else (problem.batch, f, pixels), dtype=problem.dtype)
    for lo, hi in _image_chunks(problem):
        cols = _im2col(problem.x[lo:hi], g, problem.layout, problem.pad_value, ones=fold_bias, role="cols")
        if nhwc:
            y_chunk = np.matmul(cols, wm.T, out=y[lo * pixels:hi * pixels])
        else:
            y_chunk = np.matmul(wm, cols, out=y[lo:hi])
        if problem.bias is not None and not fold_bias:  # pointwise: added while still in cache
            y_chunk += problem.bias if nhwc else problem.bias[:, None]
    return y.reshape(problem.output_shape)


def _column_sums(a, block=1024):
    """a.sum(axis=0) of a 2-D array: blocks of rows summed in a's dtype, the blocks in float64.

    NumPy sums axis 0 of a C-contiguous array row after row, whose rounding error grows with the
    row count; a float64 sum of the whole array costs a buffered cast (measured 1 ms of a 6 ms
    backward). Blocks keep the float32 error at that of `block` terms for a fraction of the cost."""
    total = np.zeros(a.shape[1], dtype=np.float64)
    for start in range(0, a.shape[0], block):
        total += a[start:start + block].sum(axis=0)
    return total


def _backward(problem, grad_y):
    g = problem.geometry
    f, pixels = problem.filters, g.out_h * g.out_w
    wm = problem.kernel.reshape(f, -1)
    grad_x = np.zeros_like(problem.x)
    grad_wm = np.zeros_like(wm)
    nhwc = problem.layout == "NHWC"
    gy = grad_y.reshape(problem.batch * pixels, f) if nhwc else grad_y.reshape(problem.batch, f, pixels)
    grad_bias = _column_sums(gy) if nhwc else gy.sum(axis=2).sum(axis=0, dtype=np.float64)
    for lo, hi in _image_chunks(problem):
        cols = _im2col(problem.x[lo:hi], g, problem.layout, problem.pad_value, role="cols")
        if nhwc:
            gy_chunk = gy[lo * pixels:hi * pixels]
            grad_wm += gy_chunk.T @ cols
            dcols_operands = (gy_chunk, wm)
        else:
            gy_chunk = gy[lo:hi]
            grad_wm += np.matmul(gy_chunk, cols.transpose(0, 2, 1)).sum(axis=0)
            dcols_operands = (wm.T, gy_chunk)
        if g.is_pointwise:  # dcols is grad_x itself: multiply straight into it
            np.matmul(*dcols_operands, out=grad_x[lo:hi].reshape(cols.shape))
        else:
            dcols = np.matmul(*dcols_operands, out=_workspace("dcols", cols.shape, problem.dtype))
            _col2im_add(dcols, grad_x[lo:hi], g, problem.layout)
    return grad_x, grad_wm.reshape(problem.kernel.shape), grad_bias.astype(problem.dtype)


def conv2d(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, layout="NHWC", pad_value=0.0):
    """2-D convolution (cross-correlation, as in every deep-learning framework).

    x          (N, H, W, C) for layout "NHWC", (N, C, H, W) for "NCHW"
    kernel     (F, kh, kw, C) for "NHWC", (F, C, kh, kw) for "NCHW"
    bias       (F,) or None
    strides    int or (sh, sw), >= 1
    dilations  int or (dh, dw), >= 0: gaps between taps, 0 = ordinary kernel (PyTorch's d + 1)
    padding    "SAME" | "VALID" | int | (ph, pw) | ((top, bottom), (left, right)); SAME is
               TensorFlow's rule (the odd pixel of padding goes bottom / right)
    pad_value  the value of the padded border (default 0)

    Returns y, (N, OH, OW, F) for "NHWC" or (N, F, OH, OW) for "NCHW", float32 when the inputs are
    float32, float64 otherwise:
        y[n, oh, ow, f] = bias[f] + sum_{i, j, c} xpad[n, oh*sh + i*(dh+1), ow*sw + j*(dw+1), c]
                                                  * kernel[f, i, j, c]
    """
    return _forward(conv_problem(x, kernel, bias, strides, dilations, padding, layout, pad_value))


def conv2d_backward(grad_y, x, kernel, strides=1, dilations=0, padding="VALID", *, layout="NHWC",
                    pad_value=0.0):
    """Gradients of conv2d with respect to x, kernel and bias, given grad_y = dL/dy.

    Arguments as for conv2d; grad_y has the shape of conv2d's output. Returns
    (grad_x, grad_kernel, grad_bias) shaped like x, kernel and (F,).
    """
    problem = conv_problem(x, kernel, None, strides, dilations, padding, layout, pad_value)
    return _backward(problem, grad_output(grad_y, problem))


def im2col(x, kernel_size, strides=1, dilations=0, padding="VALID", *, layout="NHWC", pad_value=0.0):
    """The patches of x under a kernel of kernel_size = (kh, kw) (or an int), as a new array.

    NHWC: x (N, H, W, C) -> cols (N * OH * OW, kh * kw * C), row (n, oh, ow), column (i, j, c).
    NCHW: x (N, C, H, W) -> cols (N, C * kh * kw, OH * OW), row (c, i, j), column (oh, ow).
    Positions in the padding read pad_value.
    """
    layout = layout_name(layout)
    x = real_array("x", x, 4)
    _, geometry = patch_geometry(x.shape, kernel_size, strides, dilations, padding, layout)
    x = np.ascontiguousarray(x, dtype=compute_dtype(x))
    cols = _im2col(x, geometry, layout, real_scalar("pad_value", pad_value))
    return cols.copy() if cols.base is not None else cols


def col2im(cols, input_shape, kernel_size, strides=1, dilations=0, padding="VALID", *, layout="NHWC"):
    """The adjoint of im2col: sums every entry of cols into the input position it was read from.

    cols has the shape im2col gives for an input of input_shape ((N, H, W, C) for NHWC,
    (N, C, H, W) for NCHW); entries that im2col read from the padding are dropped.
    Returns an array of input_shape.
    """
    layout = layout_name(layout)
    (n, h, w, c), geometry = patch_geometry(input_shape, kernel_size, strides, dilations, padding, layout)
    expected = _cols_shape(n, c, geometry, layout)
    cols = real_array("cols", cols, len(expected))
    if cols.shape != expected:
        raise ValueError(
            f"cols must have shape {expected} for input_shape {tuple(input_shape)} in layout {layout}, "
            f"got {cols.shape}"
        )
    cols = np.ascontiguousarray(cols, dtype=compute_dtype(cols))
    out = np.zeros(in_layout(n, h, w, c, layout), dtype=cols.dtype)
    _col2im_add(cols, out, geometry, layout)
    return out
