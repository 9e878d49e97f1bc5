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
from dataclasses import replace

import numpy as np

from . import _config, _engine, _im2col
from ._problems import conv1d_problem, conv_problem, grad_output, patch_geometry, transpose_problem
from ._validation import compute_dtype, in_layout, layout_name, real_array, real_scalar


# Below this many cols elements im2col / col2im run on one thread: starting and joining an OpenMP
# team costs more than the copy.
PARALLEL_MIN_ELEMENTS = 1 << 16


def _threads_for(cols):
    return _config.get_num_threads() if cols.size >= PARALLEL_MIN_ELEMENTS else 1


def _cols_shape(n, c, geometry, layout):
    taps = geometry.patch_size * c
    pixels = geometry.out_h * geometry.out_w
    return (n * pixels, taps) if layout == "NHWC" else (n, taps, pixels)


def conv2d(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, layout="NHWC", pad_value=0.0,
           groups=1, padding_mode="constant", algorithm="auto"):
    """2-D convolution (cross-correlation, as in every deep-learning framework).

    x             (N, H, W, C) for layout "NHWC", (N, C, H, W) for "NCHW"
    kernel        (F, kh, kw, C / groups) for "NHWC", (F, C / groups, kh, kw) for "NCHW"
    bias          (F,) or None
    strides       int or (sh, sw), >= 1
    dilations     int or (dh, dw), >= 0: gaps between taps, 0 = ordinary kernel (PyTorch's d + 1)
    padding       "SAME" | "VALID" | int | (ph, pw) | ((top, bottom), (left, right)); SAME is
                  TensorFlow's rule (the odd pixel of padding goes bottom / right)
    pad_value     the value of the padded border with padding_mode "constant" (default 0)
    groups        G dividing C and F: filter f sees only the C / G channels of its group f // (F / G)
                  (PyTorch's groups; depthwise: G = C)
    padding_mode  "constant" | "reflect" | "replicate" | "circular" (PyTorch's names; NumPy's
                  "edge" and "wrap" are accepted for the last two)
    algorithm     "auto" | "gemm" (im2col + GEMM) | "winograd" (F(2x2, 3x3): 3x3 kernels at stride 1,
                  no groups; about as exact as "gemm") | "winograd_4x4" (F(4x4, 3x3): faster, 15-25x
                  less exact, never chosen by "auto"). Results agree within their rounding bounds.

    Returns y, (N, OH, OW, F) for "NHWC" or (N, F, OH, OW) for "NCHW", float32 when the inputs are
    float32, float64 otherwise. With g = f // (F / G) the group of filter f, C_g = C / G:
        y[n, oh, ow, f] = bias[f] + sum_{i, j, c < C_g} xpad[n, oh*sh + i*(dh+1), ow*sw + j*(dw+1), g*C_g + c]
                                                        * kernel[f, i, j, c]
    """
    problem = conv_problem(x, kernel, bias, strides, dilations, padding, layout, pad_value, groups=groups,
                           padding_mode=padding_mode, algorithm=algorithm)
    return _engine.forward(problem)


def conv2d_backward(grad_y, x, kernel, strides=1, dilations=0, padding="VALID", *, layout="NHWC",
                    pad_value=0.0, groups=1, padding_mode="constant", algorithm="auto"):
    """Gradients of conv2d with respect to x, kernel and bias, given grad_y = dL/dy.

    Arguments as for conv2d; grad_y has the shape of conv2d's output. Returns
    (grad_x, grad_kernel, grad_bias) shaped like x, kernel and (F,). With a padding mode other
    than "constant", the gradient of each padded pixel flows back to the pixel it copied.
    `algorithm` computes grad_x (at stride 1 a convolution of grad_y); grad_kernel is im2col-GEMM,
    but Winograd F(2x2, 3x3) under either Winograd algorithm and direct for depthwise ones.
    """
    problem = conv_problem(x, kernel, None, strides, dilations, padding, layout, pad_value, groups=groups,
                           padding_mode=padding_mode, algorithm=algorithm)
    return _engine.backward(problem, grad_output(grad_y, problem.output_shape, problem.dtype, problem.layout))


def depthwise_conv2d(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, layout="NHWC",
                     pad_value=0.0, padding_mode="constant"):
    """Depthwise convolution: conv2d with groups = C, each channel convolved with its own filters.

    kernel is (C * M, kh, kw, 1) for "NHWC", (C * M, 1, kh, kw) for "NCHW", M the channel
    multiplier: output channel c * M + m is channel c convolved with kernel[c * M + m]. (TensorFlow's
    depthwise filter (kh, kw, C, M) is this kernel transposed: filter.transpose(2, 3, 0, 1)
    reshaped to (C * M, kh, kw, 1).) Gradients: conv2d_backward(..., groups=C).
    """
    x = real_array("x", x, 4)
    channels = x.shape[3] if layout_name(layout) == "NHWC" else x.shape[1]
    return conv2d(x, kernel, bias, strides, dilations, padding, layout=layout, pad_value=pad_value,
                  groups=max(channels, 1), padding_mode=padding_mode)


def conv2d_transpose(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, output_padding=0,
                     layout="NHWC", groups=1, algorithm="auto"):
    """Transposed convolution (PyTorch's conv_transpose2d, TensorFlow's conv2d_transpose): the
    adjoint of x -> conv2d(x, kernel), its output as large as that convolution's input.

    x               (N, H, W, F) for "NHWC", (N, F, H, W) for "NCHW"
    kernel          the forward convolution's kernel: (F, kh, kw, C / groups) for "NHWC",
                    (F, C / groups, kh, kw) for "NCHW" — it maps F channels back to C
    bias            (C,) or None
    padding         the forward convolution's padding: "SAME" gives an output of H * stride (Keras'
                    rule), "VALID" / explicit paddings (H - 1) * stride - pads + extent + output_padding
    output_padding  int or pair in [0, stride): rows / columns added at the bottom / right
                    (0 with "SAME")
    algorithm       as for conv2d (at stride 1 the transposed convolution is a convolution)

    Returns (N, OH, OW, C) / (N, C, OH, OW), such that for every y of that shape
        <conv2d(y, kernel, strides=..., padding=...), x> == <y, conv2d_transpose(x, kernel, ...)>.
    PyTorch's ConvTranspose2d weight (F, C / groups, kh, kw) is this NCHW kernel as it is; TF's
    conv2d_transpose filter (kh, kw, C, F) is the NHWC kernel transposed (3, 0, 1, 2).
    """
    problem = transpose_problem(x, kernel, bias, strides, dilations, padding, output_padding, layout, groups,
                                algorithm)
    return _engine.input_grad(problem.conv, problem.x, problem.bias)


def conv2d_transpose_backward(grad_y, x, kernel, strides=1, dilations=0, padding="VALID", *, output_padding=0,
                              layout="NHWC", groups=1, algorithm="auto"):
    """Gradients of conv2d_transpose with respect to x, kernel and bias, given grad_y = dL/dy.

    Arguments as for conv2d_transpose; grad_y has the shape of its output. Returns
    (grad_x, grad_kernel, grad_bias) shaped like x, kernel and (C,): grad_x is the forward
    convolution of grad_y, grad_kernel that convolution's kernel gradient for the gradient x.
    """
    problem = transpose_problem(x, kernel, None, strides, dilations, padding, output_padding, layout, groups,
                                algorithm)
    conv = problem.conv
    grad_y = grad_output(grad_y, conv.input_shape, conv.dtype, conv.layout)
    forward = replace(conv, x=grad_y)
    grad_kernel, _ = _engine.kernel_grad(forward, problem.x)
    sum_axes = (0, 1, 2) if conv.layout == "NHWC" else (0, 2, 3)
    grad_bias = grad_y.sum(axis=sum_axes, dtype=np.float64).astype(conv.dtype)
    return _engine.forward(forward), grad_kernel, grad_bias


def conv1d(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, layout="NWC", pad_value=0.0,
           groups=1, padding_mode="constant", algorithm="auto"):
    """1-D convolution (sequences, audio): conv2d on images one pixel high.

    x        (N, W, C) for layout "NWC", (N, C, W) for "NCW"
    kernel   (F, k, C / groups) for "NWC", (F, C / groups, k) for "NCW"
    strides, dilations  an int (or a sequence of one)
    padding  "SAME" | "VALID" | int | (left, right)
    Other arguments as for conv2d (no Winograd: its kernels are 3x3).
    Returns y, (N, OW, F) for "NWC" or (N, F, OW) for "NCW".
    """
    problem = conv1d_problem(x, kernel, bias, strides, dilations, padding, layout, pad_value, groups=groups,
                             padding_mode=padding_mode, algorithm=algorithm)
    return _engine.forward(problem).reshape(_without_height(problem.output_shape, problem.layout))


def conv1d_backward(grad_y, x, kernel, strides=1, dilations=0, padding="VALID", *, layout="NWC", pad_value=0.0,
                    groups=1, padding_mode="constant", algorithm="auto"):
    """Gradients of conv1d with respect to x, kernel and bias, given grad_y = dL/dy of conv1d's
    output shape. Returns (grad_x, grad_kernel, grad_bias) shaped like x, kernel and (F,)."""
    problem = conv1d_problem(x, kernel, None, strides, dilations, padding, layout, pad_value, groups=groups,
                             padding_mode=padding_mode, algorithm=algorithm)
    shape = _without_height(problem.output_shape, problem.layout)
    layout_1d = "NWC" if problem.layout == "NHWC" else "NCW"
    grad_y = grad_output(grad_y, shape, problem.dtype, problem.layout, axes=layout_1d)
    grad_x, grad_kernel, grad_bias = _engine.backward(problem, grad_y.reshape(problem.output_shape))
    return (grad_x.reshape(_without_height(grad_x.shape, problem.layout)),
            grad_kernel.reshape(_without_height(grad_kernel.shape, problem.layout)), grad_bias)


def _without_height(shape, layout):
    """A 4-D shape of an image one pixel high, without its height axis."""
    axis = 1 if layout == "NHWC" else 2
    return shape[:axis] + shape[axis + 1:]


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
