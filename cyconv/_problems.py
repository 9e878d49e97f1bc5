"""Every argument of a convolution call checked, and gathered into the problem the engine runs.

    conv_problem(...)       conv2d / conv2d_backward (and the documents' functions)
    transpose_problem(...)  conv2d_transpose / conv2d_transpose_backward
    grad_output(...)        a gradient of the output, checked against a problem
    patch_geometry(...)     im2col / col2im

Nothing here computes an output size (cyconv._geometry does) or touches a pixel; everything that
can be wrong with an argument is found here, before any compiled code runs, and reported as a
ValueError / TypeError that names the argument, what it got and what was expected.
"""
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import _config
from ._geometry import Geometry, conv_geometry, integer, show, transposed_geometry
from ._validation import (
    DATA_AXES,
    check_memory,
    compute_dtype,
    dimension,
    in_layout,
    layout_name,
    nhwc_order,
    real_array,
    real_scalar,
    shape_tuple,
)

KERNEL_AXES = {"NHWC": "(F, kh, kw, C)", "NCHW": "(F, C, kh, kw)", "NWC": "(F, k, C)", "NCW": "(F, C, k)"}
GROUPED_KERNEL_AXES = {"NHWC": "(F, kh, kw, C / groups)", "NCHW": "(F, C / groups, kh, kw)",
                       "NWC": "(F, k, C / groups)", "NCW": "(F, C / groups, k)"}

# padding_mode: PyTorch's names, and NumPy's np.pad names for the same modes.
PADDING_MODES = {
    "constant": "constant", "zeros": "constant",
    "reflect": "reflect",
    "replicate": "replicate", "edge": "replicate",
    "circular": "circular", "wrap": "circular",
}


# algorithm: how the forward pass and the input gradient are computed (the kernel gradient is
# im2col-GEMM but for 'direct' depthwise convolutions, and Winograd F(2x2, 3x3) for both Winograd
# algorithms). 'winograd' is F(2x2, 3x3), about as exact as im2col-GEMM; 'winograd_4x4' is
# F(4x4, 3x3), faster and 15-25x less exact, used only when asked for; 'direct' loops over the
# taps without forming patches (no groups, or depthwise).
ALGORITHMS = ("auto", "gemm", "winograd", "winograd_4x4", "direct")


def winograd_applies(geometry, groups):
    """Winograd F(m x m, 3x3) computes 3x3 kernels at stride 1 (any dilation), without groups."""
    g = geometry
    return (g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, groups) == (3, 3, 1, 1, 1)


def is_depthwise(groups, channels):
    """One group per channel of several: each output channel reads one input channel."""
    return groups == channels > 1


def direct_applies(groups, channels):
    """The direct kernels compute convolutions without groups and depthwise ones."""
    return groups == 1 or is_depthwise(groups, channels)


def _algorithm(algorithm, geometry, groups, channels):
    """The algorithm's name, after checking it applies to this convolution."""
    if not isinstance(algorithm, str) or algorithm.lower() not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, got {algorithm!r}")
    algorithm = algorithm.lower()
    g = geometry
    if algorithm.startswith("winograd") and not winograd_applies(geometry, groups):
        raise ValueError(
            f"algorithm {algorithm!r} computes 3x3 kernels at stride 1 without groups, got a "
            f"{g.kernel_h}x{g.kernel_w} kernel, strides ({g.stride_h}, {g.stride_w}), groups={groups}"
        )
    if algorithm == "direct" and not direct_applies(groups, channels):
        raise ValueError(
            f"algorithm 'direct' computes convolutions without groups (groups=1) or depthwise ones (groups equal "
            f"to the {channels} channels), got groups={groups}"
        )
    return algorithm


@dataclass(frozen=True)
class ConvProblem:
    """A validated convolution: arrays in one float dtype, C-contiguous, in `layout`.

    x             (N, H, W, C) or (N, C, H, W); None in the problem a transposed convolution
                  transposes (its input is what the transposed convolution outputs)
    kernel        (F, kh, kw, C / groups) or (F, C / groups, kh, kw)
    bias          (F,) or None
    geometry      sizes, strides, dilations, the four paddings (cyconv._geometry)
    batch         N
    groups        G: filter f reads the channels of group f // (F / G) only
    padding_mode  'constant' (pad_value), 'reflect', 'replicate' or 'circular'
    algorithm     one of ALGORITHMS, checked to apply to the problem (cyconv._engine chooses for
                  'auto')
    """

    x: object
    kernel: np.ndarray
    bias: object
    geometry: Geometry
    layout: str
    pad_value: float
    batch: int
    groups: int = 1
    padding_mode: str = "constant"
    algorithm: str = "auto"

    @property
    def dtype(self):
        return self.kernel.dtype

    @property
    def filters(self):
        return self.kernel.shape[0]

    @property
    def channels(self):
        return self.groups * nhwc_order(self.kernel.shape, self.layout)[3]

    @property
    def input_shape(self):
        g = self.geometry
        return in_layout(self.batch, g.in_h, g.in_w, self.channels, self.layout)

    @property
    def output_shape(self):
        g = self.geometry
        return in_layout(self.batch, g.out_h, g.out_w, self.filters, self.layout)


class TransposeProblem(NamedTuple):
    """A validated transposed convolution: its input x (N, H, W, F) / (N, F, H, W), its bias
    (C,) or None, and `conv`, the convolution it transposes (whose output has x's shape)."""

    x: np.ndarray
    bias: object
    conv: ConvProblem


def _kernel_sizes(shape, name, layout):
    """(F, kh, kw, C / groups) of a kernel shape, each checked."""
    f, kh, kw, kc = nhwc_order(shape, layout)
    axes = KERNEL_AXES[layout]
    if f < 1:
        raise ValueError(f"{name} must have at least one filter, got {name} shape {tuple(shape)}")
    dimension(f"the filters of {name} {axes}", f, 1, shape)
    dimension(f"the height of {name} {axes}", kh, 1, shape)
    dimension(f"the width of {name} {axes}", kw, 1, shape)
    return f, kh, kw, kc


def _data_sizes(shape, name, layout):
    """(N, H, W, C) of a data shape: a batch >= 0, a height, width and channels >= 1."""
    n, h, w, c = nhwc_order(shape, layout)
    axes = DATA_AXES[layout]
    dimension(f"the batch size of {name} {axes}", n, 0, shape)
    dimension(f"the height of {name} {axes}", h, 1, shape)
    dimension(f"the width of {name} {axes}", w, 1, shape)
    if c < 1:
        raise ValueError(f"{name} must have at least one channel, got {name} shape {tuple(shape)} in layout {layout}")
    dimension(f"the channels of {name} {axes}", c, 1, shape)
    return n, h, w, c


def _groups(groups, channels, filters, kernel_channels, names, shapes, layout):
    """groups checked against the channels C, the filters F and the kernel's C / groups axis."""
    x_name, kernel_name = names
    x_shape, kernel_shape = shapes
    groups = integer("groups", groups, 1)
    if groups == 1:
        if kernel_channels != channels:
            raise ValueError(
                f"{kernel_name} has {kernel_channels} input channels but {x_name} has {channels}: {kernel_name} "
                f"shape {kernel_shape} is {KERNEL_AXES[layout]} in layout {layout}, {x_name} shape {x_shape}"
            )
        return groups
    if channels % groups or filters % groups:
        raise ValueError(
            f"groups must divide both the channels of {x_name} ({channels}) and the filters of {kernel_name} "
            f"({filters}), got groups={groups}"
        )
    if kernel_channels != channels // groups:
        raise ValueError(
            f"{kernel_name} must have {channels // groups} input channels (C / groups = {channels} / {groups}), "
            f"got {kernel_channels}: {kernel_name} shape {kernel_shape} is {GROUPED_KERNEL_AXES[layout]} in "
            f"layout {layout}, {x_name} shape {x_shape}"
        )
    return groups


def _bias_array(bias, name, size, what):
    if bias is None:
        return None
    bias = real_array(name, bias, 1)
    if bias.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},) ({what}), got {bias.shape}")
    return bias


def _padding_mode(padding_mode, pad_value, geometry):
    """The mode's canonical name, after checking it can pad this geometry."""
    if not isinstance(padding_mode, str) or padding_mode.lower() not in PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of 'constant', 'reflect', 'replicate', 'circular' (or NumPy's "
            f"'edge', 'wrap'), got {padding_mode!r}"
        )
    mode = PADDING_MODES[padding_mode.lower()]
    if mode == "constant":
        return mode
    if pad_value != 0:
        raise ValueError(f"pad_value applies to padding_mode 'constant' only, got pad_value={pad_value} "
                         f"with padding_mode {padding_mode!r}")
    g = geometry
    for axis, size, pads in (("height", g.in_h, (g.pad_top, g.pad_bottom)),
                             ("width", g.in_w, (g.pad_left, g.pad_right))):
        # reflect mirrors without repeating the edge: a pad needs that many pixels beyond it
        limit = size - 1 if mode == "reflect" else size if mode == "circular" else None
        if limit is not None and max(pads) > limit:
            raise ValueError(
                f"padding_mode {padding_mode!r} pads the {axis} by {pads} but the input {axis} is {size}: "
                f"expected a padding of at most {limit} on each side"
            )
    return mode


def _check_memory(what, geometry, x_shape, kernel_size, channels, filters, batch, dtype, padded):
    """MemoryError, before anything is allocated, when forward + backward would not fit: x and the
    kernel (converted), the output, grad_y, grad_x, the kernel gradient and its partial sums,
    scratch, and with a padding mode the padded copy of x and its gradient."""
    g, item = geometry, dtype.itemsize
    x_bytes = math.prod(x_shape) * item
    out_bytes = batch * g.out_h * g.out_w * filters * item
    one_image = g.patch_size * channels * g.out_h * g.out_w * item
    scratch = max(_config.get_max_workspace(), one_image)
    padding = batch * (g.in_h + g.pad_top + g.pad_bottom) * (g.in_w + g.pad_left + g.pad_right) * channels * item
    check_memory(
        f"{what} (output {g.out_h} x {g.out_w}, padding {(g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)})",
        2 * x_bytes + 4 * kernel_size * item + 2 * out_bytes + scratch + (2 * padding if padded else 0),
    )


class ConvSpec(NamedTuple):
    """The checked scalar arguments of a convolution (what a layer validates at construction)."""

    geometry: Geometry
    groups: int
    padding_mode: str
    pad_value: float
    algorithm: str


def conv_spec(x_shape, kernel_shape, strides=1, dilations=0, padding="VALID", layout="NHWC", pad_value=0.0, *,
              groups=1, padding_mode="constant", algorithm="auto", dtype=np.float64, require_exact=False,
              names=("x", "kernel")):
    """Check a convolution of an input of x_shape with a kernel of kernel_shape, in `layout` (already
    a checked name), computed in `dtype`; MemoryError when its arrays would not fit."""
    x_name, kernel_name = names
    n, h, w, c = _data_sizes(x_shape, x_name, layout)
    f, kh, kw, kc = _kernel_sizes(kernel_shape, kernel_name, layout)
    groups = _groups(groups, c, f, kc, names, (tuple(x_shape), tuple(kernel_shape)), layout)
    geometry = conv_geometry((h, w), (kh, kw), strides, dilations, padding, require_exact=require_exact)
    pad_value = real_scalar("pad_value", pad_value)
    mode = _padding_mode(padding_mode, pad_value, geometry)
    _check_memory(f"conv2d of {x_name} {tuple(x_shape)} with {kernel_name} {tuple(kernel_shape)}", geometry,
                  x_shape, math.prod(kernel_shape), c, f, n, np.dtype(dtype), mode != "constant")
    return ConvSpec(geometry, groups, mode, pad_value, _algorithm(algorithm, geometry, groups, c))


def conv_problem(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", layout="NHWC",
                 pad_value=0.0, *, groups=1, padding_mode="constant", algorithm="auto", require_exact=False,
                 names=("x", "kernel", "bias")):
    """Check every argument of a conv2d call; return the ConvProblem the engine can trust.

    `names` are what the caller calls x, kernel and bias (document 002 says X, W, b)."""
    x_name, kernel_name, bias_name = names
    layout = layout_name(layout)
    x = real_array(x_name, x, 4)
    kernel = real_array(kernel_name, kernel, 4)
    dtype = compute_dtype(x, kernel)  # the bias follows, so backward (which has none) agrees
    spec = conv_spec(x.shape, kernel.shape, strides, dilations, padding, layout, pad_value, groups=groups,
                     padding_mode=padding_mode, algorithm=algorithm, dtype=dtype, require_exact=require_exact,
                     names=names[:2])
    bias = _bias_array(bias, bias_name, kernel.shape[0], "one value per filter")
    return ConvProblem(
        x=np.ascontiguousarray(x, dtype=dtype),
        kernel=np.ascontiguousarray(kernel, dtype=dtype),
        bias=None if bias is None else np.ascontiguousarray(bias, dtype=dtype),
        geometry=spec.geometry, layout=layout, pad_value=spec.pad_value, batch=x.shape[0], groups=spec.groups,
        padding_mode=spec.padding_mode, algorithm=spec.algorithm,
    )


def transpose_spec(x_shape, kernel_shape, strides=1, dilations=0, padding="VALID", output_padding=0,
                   layout="NHWC", groups=1, algorithm="auto", dtype=np.float64):
    """Check a transposed convolution of an input of x_shape (N, H, W, F) / (N, F, H, W) with the
    kernel of kernel_shape; return the geometry of the convolution it transposes and the groups."""
    n, h, w, f_in = _data_sizes(x_shape, "x", layout)
    f, kh, kw, kc = _kernel_sizes(kernel_shape, "kernel", layout)
    groups = integer("groups", groups, 1)
    if f_in != f:
        raise ValueError(
            f"x has {f_in} channels but kernel maps {f}: the kernel of conv2d_transpose is the forward "
            f"convolution's, {GROUPED_KERNEL_AXES[layout]} in layout {layout}, mapping its F = {f} filters back "
            f"to C channels; kernel shape {tuple(kernel_shape)}, x shape {tuple(x_shape)}"
        )
    if f % groups:
        raise ValueError(f"groups must divide the channels of x ({f}), got groups={groups}")
    geometry = transposed_geometry((h, w), (kh, kw), strides, dilations, padding, output_padding)
    output_shape = in_layout(n, geometry.in_h, geometry.in_w, groups * kc, layout)
    _check_memory(f"conv2d_transpose of x {tuple(x_shape)} with kernel {tuple(kernel_shape)} to {output_shape}",
                  geometry, output_shape, math.prod(kernel_shape), groups * kc, f, n,
                  np.dtype(dtype), False)
    return geometry, groups, _algorithm(algorithm, geometry, groups, groups * kc)


def transpose_problem(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", output_padding=0,
                      layout="NHWC", groups=1, algorithm="auto"):
    """Check every argument of a conv2d_transpose call; return its TransposeProblem.

    x is (N, H, W, F) / (N, F, H, W): the kernel (F, kh, kw, C / groups) / (F, C / groups, kh, kw)
    of the forward convolution maps F channels back to C = groups * its last / second axis."""
    layout = layout_name(layout)
    x = real_array("x", x, 4)
    kernel = real_array("kernel", kernel, 4)
    dtype = compute_dtype(x, kernel)
    geometry, groups, algorithm = transpose_spec(x.shape, kernel.shape, strides, dilations, padding, output_padding,
                                                 layout, groups, algorithm, dtype)
    channels = groups * nhwc_order(kernel.shape, layout)[3]
    bias = _bias_array(bias, "bias", channels, "one value per output channel")
    conv = ConvProblem(
        x=None, kernel=np.ascontiguousarray(kernel, dtype=dtype), bias=None, geometry=geometry, layout=layout,
        pad_value=0.0, batch=x.shape[0], groups=groups, algorithm=algorithm,
    )
    return TransposeProblem(
        x=np.ascontiguousarray(x, dtype=dtype),
        bias=None if bias is None else np.ascontiguousarray(bias, dtype=dtype),
        conv=conv,
    )


def grad_output(grad_y, shape, dtype, layout, name="grad_y", expected="the output's shape", axes=None):
    """`grad_y` checked to have `shape`, converted to `dtype`, C-contiguous.

    `name`, `expected` and `axes` (default: the layout's name) word the error for the caller;
    document 002 says dout, conv_forward's out, N, F, OH, OW."""
    grad_y = real_array(name, grad_y, len(shape))
    if grad_y.shape != tuple(shape):
        raise ValueError(f"{name} must have {expected} {tuple(shape)} ({axes or layout}), got {grad_y.shape}")
    return np.ascontiguousarray(grad_y, dtype=dtype)


def patch_geometry(input_shape, kernel_size, strides, dilations, padding, layout, *, name="input_shape",
                   require_exact=False):
    """(N, H, W, C) and the Geometry of an im2col / col2im call on inputs of `input_shape`.

    `name` is what the caller calls the shape in messages; `require_exact` as in conv_geometry.
    Refuses (MemoryError) a geometry whose input and cols, counted in float64 for at least one
    image, would not fit in memory_limit(): im2col / col2im allocate both for the whole batch.
    """
    sizes = shape_tuple(name, input_shape, f"a 4-D shape {DATA_AXES[layout]} in layout {layout}", (0, 1, 1, 1))
    n, h, w, c = nhwc_order(sizes, layout)
    geometry = conv_geometry((h, w), kernel_size, strides, dilations, padding, require_exact=require_exact)
    images = max(n, 1)
    taps, pixels = geometry.patch_size * c, geometry.out_h * geometry.out_w
    check_memory(
        f"the patches of {name} {sizes} ({layout}) under a {geometry.kernel_h} x "
        f"{geometry.kernel_w} kernel (output {geometry.out_h} x {geometry.out_w})",
        2 * 8 * images * (h * w * c + taps * pixels),
    )
    return (n, h, w, c), geometry


def _one_axis(name, value, minimum):
    """An int, or a sequence of one int, for a 1-D convolution's stride or dilation."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return integer(f"{name}[0]", value[0], minimum)
    return integer(name, value, minimum)


def _padding_1d(padding):
    """A 1-D padding ('SAME', 'VALID', an int or (left, right)) as the 2-D padding of an image one
    pixel high."""
    if isinstance(padding, str):
        return padding
    if isinstance(padding, (list, tuple)):
        if len(padding) != 2:
            raise ValueError(f"padding must be 'SAME', 'VALID', an int or (left, right), got {show(padding)}")
        return ((0, 0), (integer("padding[0]", padding[0], 0), integer("padding[1]", padding[1], 0)))
    p = integer("padding", padding, 0)
    return ((0, 0), (p, p))


LAYOUTS_1D = {"NWC": "NHWC", "NCW": "NCHW"}


def conv1d_shapes(x_shape, kernel_shape, strides, dilations, padding, layout, groups):
    """Check what is particular to a 1-D convolution (x (N, W, C) / (N, C, W), kernel
    (F, k, C / groups) / (F, C / groups, k)); return the 2-D layout, the shapes of images one pixel
    high, and the 2-D strides, dilations and padding."""
    if not isinstance(layout, str) or layout.upper() not in LAYOUTS_1D:
        raise ValueError(f"layout must be 'NWC' or 'NCW', got {layout!r}")
    layout_1d = layout.upper()
    nwc = layout_1d == "NWC"
    n, width, c = x_shape if nwc else (x_shape[0], x_shape[2], x_shape[1])
    f, k, kc = kernel_shape if nwc else (kernel_shape[0], kernel_shape[2], kernel_shape[1])
    x_axes, kernel_axes = DATA_AXES[layout_1d], KERNEL_AXES[layout_1d]
    dimension(f"the batch size of x {x_axes}", n, 0, x_shape)
    dimension(f"the width of x {x_axes}", width, 1, x_shape)
    dimension(f"the channels of x {x_axes}", c, 1, x_shape)
    dimension(f"the filters of kernel {kernel_axes}", f, 1, kernel_shape)
    dimension(f"the width of kernel {kernel_axes}", k, 1, kernel_shape)
    _groups(groups, c, f, kc, ("x", "kernel"), (tuple(x_shape), tuple(kernel_shape)), layout_1d)
    height_axis = 1 if nwc else 2  # where the axis of height 1 goes
    x_2d = tuple(x_shape[:height_axis]) + (1,) + tuple(x_shape[height_axis:])
    kernel_2d = tuple(kernel_shape[:height_axis]) + (1,) + tuple(kernel_shape[height_axis:])
    return (LAYOUTS_1D[layout_1d], x_2d, kernel_2d, (1, _one_axis("strides", strides, 1)),
            (0, _one_axis("dilations", dilations, 0)), _padding_1d(padding))


def conv1d_problem(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", layout="NWC", pad_value=0.0,
                   *, groups=1, padding_mode="constant", algorithm="auto"):
    """Check a conv1d call; return the ConvProblem of the same convolution on images one pixel high."""
    x = real_array("x", x, 3)
    kernel = real_array("kernel", kernel, 3)
    layout_2d, x_2d, kernel_2d, strides_2d, dilations_2d, padding_2d = conv1d_shapes(
        x.shape, kernel.shape, strides, dilations, padding, layout, groups)
    return conv_problem(x.reshape(x_2d), kernel.reshape(kernel_2d), bias, strides_2d, dilations_2d, padding_2d,
                        layout_2d, pad_value, groups=groups, padding_mode=padding_mode, algorithm=algorithm)
