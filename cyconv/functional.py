"""2-D convolution on arrays: forward, backward, im2col and col2im, in NHWC or NCHW.

Every function validates its arguments (cyconv._validation, cyconv._geometry) and hands the
checked problem to the compiled code: cyconv._engine for the convolution, cyconv._im2col for the
patches.

Shapes, with K = kh * kw * C taps per output pixel and P = OH * OW output pixels per image:

  layout  x             kernel          y               cols
  NHWC    (N, H, W, C)  (F, kh, kw, C)  (N, OH, OW, F)  (N * P, K), columns ordered (kh, kw, C)
  NCHW    (N, C, H, W)  (F, C, kh, kw)  (N, F, OH, OW)  (N, K, P),  rows ordered (C, kh, kw)

so that the kernel reshaped to (F, K) multiplies cols directly: y = cols @ Wm.T (NHWC, already the
NHWC output) or y[n] = Wm @ cols[n] (NCHW, already the NCHW output).

Dilation d is document 001's: d gaps between taps, 0 is the ordinary kernel (PyTorch's d + 1).
"""
import numpy as np

from . import _config, _engine, _im2col
from ._validation import (
    compute_dtype,
    conv_problem,
    grad_output,
    in_layout,
    layout_name,
    patch_geometry,
    real_array,
    real_scalar,
)


# Below this many cols elements im2col / col2im run on one thread: starting and joining an OpenMP
# team costs more than the copy.
PARALLEL_MIN_ELEMENTS = 1 << 16


def _threads_for(cols):
    return _config.get_num_threads() if cols.size >= PARALLEL_MIN_ELEMENTS else 1


def _cols_shape(n, c, geometry, layout):
    taps = geometry.patch_size * c
    pixels = geometry.out_h * geometry.out_w
    return (n * pixels, taps) if layout == "NHWC" else (n, taps, pixels)


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
    return _engine.forward(conv_problem(x, kernel, bias, strides, dilations, padding, layout, pad_value))


def conv2d_backward(grad_y, x, kernel, strides=1, dilations=0, padding="VALID", *, layout="NHWC",
                    pad_value=0.0):
    """Gradients of conv2d with respect to x, kernel and bias, given grad_y = dL/dy.

    Arguments as for conv2d; grad_y has the shape of conv2d's output. Returns
    (grad_x, grad_kernel, grad_bias) shaped like x, kernel and (F,).
    """
    problem = conv_problem(x, kernel, None, strides, dilations, padding, layout, pad_value)
    return _engine.backward(problem, grad_output(grad_y, problem))


def im2col(x, kernel_size, strides=1, dilations=0, padding="VALID", *, layout="NHWC", pad_value=0.0):
    """The patches of x under a kernel of kernel_size = (kh, kw) (or an int), as a new array.

    NHWC: x (N, H, W, C) -> cols (N * OH * OW, kh * kw * C), row (n, oh, ow), column (i, j, c).
    NCHW: x (N, C, H, W) -> cols (N, C * kh * kw, OH * OW), row (c, i, j), column (oh, ow).
    Positions in the padding read pad_value.
    """
    layout = layout_name(layout)
    x = real_array("x", x, 4)
    (_, _, _, c), geometry = patch_geometry(x.shape, kernel_size, strides, dilations, padding, layout)
    x = np.ascontiguousarray(x, dtype=compute_dtype(x))
    cols = np.empty(_cols_shape(x.shape[0], c, geometry, layout), dtype=x.dtype)
    kernel = _im2col.im2col_nhwc if layout == "NHWC" else _im2col.im2col_nchw
    kernel(x, cols, *geometry.kernel_args(), real_scalar("pad_value", pad_value), _threads_for(cols))
    return cols


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
    kernel = _im2col.col2im_nhwc if layout == "NHWC" else _im2col.col2im_nchw
    kernel(cols, out, *geometry.kernel_args(), _threads_for(cols))
    return out
