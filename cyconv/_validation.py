"""Validation of the arrays handed to cyconv, and the dtype policy.

Every public entry point calls these before any compiled kernel runs; the kernels trust what they
produce (contiguous arrays of one float dtype, shapes that agree with a `Geometry`).

Memory: a call whose arrays would not fit in this machine's memory is a MemoryError raised here,
before anything is allocated (see memory_limit).

dtype policy: float32 (and float16) inputs are computed in float32; anything else that is real
(float64, integers) in float64. x and the kernel decide; a bias is converted to their dtype.
bool, complex, object, string and structured data, and long double, are TypeErrors.
"""
import functools
import os
from dataclasses import dataclass
from numbers import Real

import numpy as np

from . import _config
from ._geometry import MAX_INDEX, Geometry, conv_geometry, integer, is_sequence, show

LAYOUTS = ("NHWC", "NCHW")
# How each layout orders the axes of the data and of the kernel, for messages.
DATA_AXES = {"NHWC": "(N, H, W, C)", "NCHW": "(N, C, H, W)"}
KERNEL_AXES = {"NHWC": "(F, kh, kw, C)", "NCHW": "(F, C, kh, kw)"}


def layout_name(layout):
    """'NHWC' or 'NCHW' (any case accepted)."""
    if not isinstance(layout, str) or layout.upper() not in LAYOUTS:
        raise ValueError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")
    return layout.upper()


def real_array(name, value, ndim=None):
    """`value` as an ndarray of real numbers with `ndim` dimensions (an int, a tuple of the
    accepted ones, or None for any); its dtype unchanged."""
    ndims = ndim if isinstance(ndim, tuple) else (ndim,)
    dims = " or ".join(f"{d}-D" for d in ndims)
    what = "an array of real numbers" if ndim is None else f"a {dims} array of real numbers"
    if value is None:
        raise TypeError(f"{name} must be {what}, got None")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{name} must be {what}, got {show(value)} ({error})") from None
    if array.dtype.kind not in "iuf" or array.dtype.itemsize > 8:
        raise TypeError(
            f"{name} must hold real numbers (float32, float64 or integers), got dtype {array.dtype}"
        )
    if ndim is not None and array.ndim not in ndims:
        raise ValueError(f"{name} must be {dims}, got shape {array.shape} ({array.ndim}-D)")
    return array


def shape_tuple(name, value, expected, minimums):
    """A shape given as a sequence of len(minimums) ints, each >= its minimum, as a tuple.

    `expected` describes it for the message, e.g. "(C, H, W), the shape of one input image"."""
    if not is_sequence(value) or len(value) != len(minimums):
        raise ValueError(f"{name} must be {expected}, got {show(value)}")
    return tuple(integer(f"{name}[{i}]", size, low) for i, (size, low) in enumerate(zip(value, minimums)))


@functools.lru_cache(maxsize=None)
def memory_limit():
    """Bytes one call may plan to allocate: this machine's physical memory (2**48 if unknown).

    A geometry whose arrays would not fit is refused with a MemoryError before anything is
    allocated, instead of letting the allocation succeed lazily and the OS kill the process
    while the kernels fill it."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 2**48
    return pages * page_size if pages > 0 and page_size > 0 else 2**48


def check_memory(what, nbytes):
    """MemoryError when a call would need `nbytes` (> memory_limit()) for `what`."""
    limit = memory_limit()
    if nbytes > limit:
        raise MemoryError(
            f"{what} would need {nbytes} bytes ({nbytes / 2**30:.4g} GiB), more than the "
            f"{limit} bytes ({limit / 2**30:.4g} GiB) of memory of this machine; expected a smaller "
            f"input, kernel, padding or batch"
        )


def _scratch_bytes(channels, geometry, itemsize):
    """An upper bound of the scratch memory cyconv._engine may hold in one call: the workspace
    limit, or one image's patch matrix when that is larger."""
    one_image = geometry.patch_size * channels * geometry.out_h * geometry.out_w * itemsize
    return max(_config.get_max_workspace(), one_image)


def _dimension(name, value, minimum, shape):
    """One axis of an array's shape, checked to be in [minimum, MAX_INDEX]; names the shape."""
    if not minimum <= value <= MAX_INDEX:
        raise ValueError(f"{name} must be in [{minimum}, {MAX_INDEX}], got {value} (shape {shape})")
    return value


def compute_dtype(*arrays):
    """float32 when every array is float16/float32, float64 otherwise."""
    if all(a.dtype.kind == "f" and a.dtype.itemsize <= 4 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def real_scalar(name, value):
    """A real number (int or float, not bool) as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a real number (int or float), got {show(value)} of type {type(value).__name__}"
        )
    return float(value)


def nhwc_order(shape, layout):
    """(N, H, W, C) from the shape of a 4-D array in `layout`."""
    if layout == "NHWC":
        return tuple(shape)
    n, c, h, w = shape
    return (n, h, w, c)


def in_layout(n, h, w, c, layout):
    """The 4-D shape (n, h, w, c) written in `layout`."""
    return (n, h, w, c) if layout == "NHWC" else (n, c, h, w)


@dataclass(frozen=True)
class ConvProblem:
    """A validated conv2d call: arrays converted to one float dtype, C-contiguous in `layout`.

    x       (N, H, W, C) or (N, C, H, W)
    kernel  (F, kh, kw, C) or (F, C, kh, kw)
    bias    (F,) or None
    """

    x: np.ndarray
    kernel: np.ndarray
    bias: object
    geometry: Geometry
    layout: str
    pad_value: float

    @property
    def dtype(self):
        return self.x.dtype

    @property
    def batch(self):
        return self.x.shape[0]

    @property
    def filters(self):
        return self.kernel.shape[0]

    @property
    def channels(self):
        return nhwc_order(self.x.shape, self.layout)[3]

    @property
    def output_shape(self):
        g = self.geometry
        return in_layout(self.batch, g.out_h, g.out_w, self.filters, self.layout)


def conv_problem(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", layout="NHWC",
                 pad_value=0.0, *, require_exact=False, names=("x", "kernel", "bias")):
    """Check every argument of a conv2d call; return the ConvProblem the kernels can trust.

    `names` are what the caller calls x, kernel and bias (document 002 says X, W, b)."""
    x_name, kernel_name, bias_name = names
    layout = layout_name(layout)
    x = real_array(x_name, x, 4)
    kernel = real_array(kernel_name, kernel, 4)
    n, h, w, c = nhwc_order(x.shape, layout)
    f, kh, kw, kc = nhwc_order(kernel.shape, layout)
    x_axes, kernel_axes = DATA_AXES[layout], KERNEL_AXES[layout]
    _dimension(f"the batch size of {x_name} {x_axes}", n, 0, x.shape)
    _dimension(f"the height of {x_name} {x_axes}", h, 1, x.shape)
    _dimension(f"the width of {x_name} {x_axes}", w, 1, x.shape)
    if c < 1:
        raise ValueError(f"{x_name} must have at least one channel, got {x_name} shape {x.shape} in layout {layout}")
    _dimension(f"the channels of {x_name} {x_axes}", c, 1, x.shape)
    if f < 1:
        raise ValueError(f"{kernel_name} must have at least one filter, got {kernel_name} shape {kernel.shape}")
    _dimension(f"the filters of {kernel_name} {kernel_axes}", f, 1, kernel.shape)
    _dimension(f"the height of {kernel_name} {kernel_axes}", kh, 1, kernel.shape)
    _dimension(f"the width of {kernel_name} {kernel_axes}", kw, 1, kernel.shape)
    if kc != c:
        raise ValueError(
            f"{kernel_name} has {kc} input channels but {x_name} has {c}: {kernel_name} shape {kernel.shape} "
            f"is {kernel_axes} in layout {layout}, {x_name} shape {x.shape}"
        )
    if bias is not None:
        bias = real_array(bias_name, bias, 1)
        if bias.shape != (f,):
            raise ValueError(f"{bias_name} must have shape ({f},) (one value per filter), got {bias.shape}")
    geometry = conv_geometry((h, w), (kh, kw), strides, dilations, padding, require_exact=require_exact)
    pad_value = real_scalar("pad_value", pad_value)
    dtype = compute_dtype(x, kernel)  # the bias follows, so backward (which has none) agrees
    # Forward holds x and kernel (converted), the output and scratch; backward also grad_y, grad_x
    # and the kernel gradient's partial sums: count backward's peak for both.
    item = dtype.itemsize
    x_bytes, out_bytes = n * h * w * c * item, n * geometry.out_h * geometry.out_w * f * item
    check_memory(
        f"conv2d of {x_name} {x.shape} with {kernel_name} {kernel.shape} (output {geometry.out_h} x {geometry.out_w}, "
        f"padding {(geometry.pad_top, geometry.pad_bottom, geometry.pad_left, geometry.pad_right)})",
        2 * x_bytes + 4 * kernel.size * item + 2 * out_bytes + _scratch_bytes(c, geometry, item),
    )
    return ConvProblem(
        x=np.ascontiguousarray(x, dtype=dtype),
        kernel=np.ascontiguousarray(kernel, dtype=dtype),
        bias=None if bias is None else np.ascontiguousarray(bias, dtype=dtype),
        geometry=geometry,
        layout=layout,
        pad_value=pad_value,
    )


def grad_output(grad_y, problem, name="grad_y", expected="the output's shape", axes=None):
    """`grad_y` checked against the output shape of `problem`, in its dtype, C-contiguous.

    `name`, `expected` and `axes` (default: the layout's name) word the error for the caller;
    document 002 says dout, conv_forward's out, N, F, OH, OW."""
    grad_y = real_array(name, grad_y, 4)
    if grad_y.shape != problem.output_shape:
        raise ValueError(
            f"{name} must have {expected} {problem.output_shape} ({axes or problem.layout}), got {grad_y.shape}"
        )
    return np.ascontiguousarray(grad_y, dtype=problem.dtype)


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
