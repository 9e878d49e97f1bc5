"""conv2d and conv2d_backward on Dask arrays: lazy, chunk by chunk, for data past one machine's memory.

    import cyconv.dask                      # needs the optional extra: pip install "cyconv[dask]"
    y = cyconv.dask.conv2d(x, kernel, bias, strides, dilations, padding, layout=..., pad_value=...)
    grad_x, grad_kernel, grad_bias = cyconv.dask.conv2d_backward(grad_y, x, kernel, ...)

Same arguments, conventions and results as cyconv.conv2d / cyconv.conv2d_backward (NHWC or NCHW,
dilation as gaps between taps, TensorFlow's SAME), but x and grad_y are Dask arrays (a NumPy array
is wrapped, chunked over the batch by Dask's automatic chunk size) and every result is a lazy Dask
array. kernel and bias are small NumPy arrays sent whole to every task; a Dask kernel or bias is a
TypeError (call .compute() on it first: nothing here computes behind your back).

How x may be chunked:
  batch     any chunks; each block is one cyconv.conv2d call with your arguments unchanged.
  spatial   any chunks along H and W (one huge image): every block gets a halo from the next block
            (dask.array.overlap) and runs cyconv.conv2d with explicit padding, pad_value only at
            the true borders of the image. See _axis_plan for the rules and when x is rechunked.
  channels  one chunk (a ValueError otherwise, saying how to rechunk).
Output chunks: the batch chunks of x; along H and W the images of x's chunk boundaries under the
stride (output o belongs to the block whose rows hold the first row of its window).

conv2d_backward returns grad_x chunked like x (after any rechunking), grad_kernel and grad_bias
summed over the blocks by Dask's tree reduction, in float64, then cast to the computation's dtype.
Compute the three together (dask.compute(*grads)): each block's backward call then runs once.

Keyword arguments beyond these are passed to every block's cyconv call when the spatial axes are
one chunk each (the call is then the NumPy call on a batch slice) and refused, naming them, when
x is chunked spatially (a block only sees part of the image, and cyconv.dask cannot know that an
option it does not interpret acts the same on a part).
"""
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

try:
    import dask.array as da
    from dask import is_dask_collection
except ImportError as error:
    raise ImportError(
        "cyconv.dask needs Dask: install the optional extra with pip install 'cyconv[dask]' "
        "(or pip install 'dask[array]' distributed)"
    ) from error

import cyconv

__all__ = ["conv2d", "conv2d_backward"]

# Axis positions of (batch, height, width, channels) in each layout, for the data and the output.
_AXES = {"NHWC": (0, 1, 2, 3), "NCHW": (0, 2, 3, 1)}
_KERNEL_AXES = {"NHWC": "(F, kh, kw, C)", "NCHW": "(F, C, kh, kw)"}


def conv2d(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, layout="NHWC", pad_value=0.0,
           **options):
    """Lazy 2-D convolution of a Dask array: cyconv.conv2d block by block.

    x          Dask (or NumPy) array (N, H, W, C) for "NHWC", (N, C, H, W) for "NCHW"; the channel
               axis in one chunk; batch and spatial axes chunked any way (see the module docstring)
    kernel     NumPy (F, kh, kw, C) for "NHWC", (F, C, kh, kw) for "NCHW"
    bias       NumPy (F,) or None
    strides, dilations, padding, layout, pad_value: as cyconv.conv2d
    options    further keyword arguments of cyconv.conv2d, passed through when H and W are one chunk

    Returns y, a Dask array (N, OH, OW, F) or (N, F, OH, OW) equal to cyconv.conv2d on the computed
    x up to summation order; chunks: x's batch chunks, the images of x's spatial chunks, F whole.
    """
    call = _Call.check(x, kernel, bias, strides, dilations, padding, layout, pad_value, options)
    x_blocks, padding, borders = call.blocks()
    return da.map_blocks(
        _forward_block, x_blocks, call.kernel, call.bias, padding, call.arguments, call.options, borders,
        chunks=call.y_chunks, dtype=call.dtype, meta=call.meta,
    )


def conv2d_backward(grad_y, x, kernel, strides=1, dilations=0, padding="VALID", *, layout="NHWC",
                    pad_value=0.0, **options):
    """Lazy gradients of conv2d with respect to x, kernel and bias, given grad_y = dL/dy.

    grad_y     Dask (or NumPy) array shaped like conv2d's output; rechunked to conv2d's output
               chunks for this x when its chunks differ
    x, kernel, strides, dilations, padding, layout, pad_value, options: as conv2d

    Returns (grad_x, grad_kernel, grad_bias), Dask arrays shaped like x, kernel and (F,): grad_x
    chunked like x (after any rechunking), grad_kernel and grad_bias one chunk each, summed over
    the blocks with a tree reduction.
    """
    call = _Call.check(x, kernel, None, strides, dilations, padding, layout, pad_value, options)
    grad_y = _grad_output(grad_y, call)
    cyconv.conv2d_backward(np.empty(call.probe_y.shape, dtype=grad_y.dtype), call.probe_x, call.kernel,
                           padding=call.padding, **call.arguments, **call.options)
    x_blocks, padding, borders = call.blocks()
    parts = da.map_blocks(
        _backward_block, grad_y, x_blocks, call.kernel, padding, call.arguments, call.options, borders,
        chunks=x_blocks.chunks, dtype=object, meta=np.empty((0,) * 4, dtype=object),
    )
    grad_x_parts = da.map_blocks(_part, parts, 0, chunks=x_blocks.chunks, dtype=call.dtype, meta=call.meta)
    grad_x = grad_x_parts if call.plan is None else call.plan.fold_halos(grad_x_parts, call.x.chunks)
    kernel_shape, filters = call.kernel.shape, call.kernel.shape[0]
    return grad_x, _block_sum(parts, 1, call, kernel_shape), _block_sum(parts, 2, call, (filters,))


@dataclass(frozen=True)
class _Call:
    """A checked call: x as a Dask array with its channels in one chunk (rechunked along H and W
    when spatially chunked, see _axis_plan), the NumPy kernel and bias, the arguments for the
    blocks, the output's chunks and dtype, the spatial plan (None when H and W are one chunk), and
    the empty probe (x, y) that cyconv checked the arguments on (see _probe_input)."""

    x: object
    kernel: np.ndarray
    bias: object
    padding: object
    arguments: dict
    options: dict
    layout: str
    y_chunks: tuple
    plan: object
    probe_x: np.ndarray
    probe_y: np.ndarray

    @property
    def dtype(self):
        return self.probe_y.dtype

    @property
    def meta(self):
        return np.empty((0,) * 4, dtype=self.dtype)

    def blocks(self):
        """(x's blocks, the padding for each block's call, the image's borders): x with the user's
        padding when H and W are one chunk; else x with each block's halo, and the padding left
        to each block (_Borders.padding)."""
        if self.plan is None:
            return self.x, self.padding, None
        return self.plan.with_halo(self.x), None, self.plan.borders

    @classmethod
    def check(cls, x, kernel, bias, strides, dilations, padding, layout, pad_value, options):
        """Every argument checked now, before any graph is built: by cyconv itself (conv_geometry
        for the geometry, conv2d on an empty batch of small images for dtypes, bias, pad_value and
        options), with the checks that need x's real shape or chunks here."""
        layout = _layout_name(layout)
        x = _dask_input("x", x)
        kernel = _numpy_parameter("kernel", kernel)
        bias = None if bias is None else _numpy_parameter("bias", bias)
        n_axis, h_axis, w_axis, c_axis = _AXES[layout]
        if kernel.ndim != 4:
            raise ValueError(f"kernel must be 4-D {_KERNEL_AXES[layout]} in layout {layout}, got shape {kernel.shape}")
        arguments = dict(strides=strides, dilations=dilations, layout=layout, pad_value=pad_value)
        geometry = cyconv.conv_geometry((x.shape[h_axis], x.shape[w_axis]),
                                        (kernel.shape[h_axis], kernel.shape[w_axis]), strides, dilations, padding)
        probe_x = _probe_input(x, geometry, layout)
        probe_y = cyconv.conv2d(probe_x, kernel, bias, padding=padding, **arguments, **options)
        if len(x.chunks[c_axis]) > 1:
            raise ValueError(
                f"x is chunked along its channel axis (axis {c_axis} in layout {layout}, chunks "
                f"{x.chunks[c_axis]}); cyconv.dask needs every channel in each chunk: pass "
                f"x.rechunk({{{c_axis}: -1}})"
            )
        spatial = len(x.chunks[h_axis]) > 1 or len(x.chunks[w_axis]) > 1
        plan = _SpatialPlan.make(x.chunks, geometry, layout) if spatial else None
        unsupported = {name: value for name, value in options.items() if not _spatial_option(name, value)}
        if plan is not None and unsupported:
            raise ValueError(
                f"{', '.join(f'{name}={value!r}' for name, value in unsupported.items())}: not supported by "
                f"cyconv.dask when x is chunked along its height or width (chunks {x.chunks}); pass x "
                f"with H and W in one chunk each, x.rechunk({{{h_axis}: -1, {w_axis}: -1}})"
            )
        if plan is not None and plan.x_chunks != x.chunks:
            x = x.rechunk(plan.x_chunks)
        y_chunks = [None] * 4
        y_chunks[n_axis], y_chunks[c_axis] = x.chunks[n_axis], (kernel.shape[0],)
        y_chunks[h_axis] = plan.y_chunks[0] if plan else (geometry.out_h,)
        y_chunks[w_axis] = plan.y_chunks[1] if plan else (geometry.out_w,)
        return cls(x, kernel, bias, padding, arguments, dict(options), layout, tuple(y_chunks), plan, probe_x, probe_y)


def _spatial_option(name, value):
    """Whether a chunk of the image can take this keyword argument as the whole image does: groups
    can, a padding mode other than a constant cannot (it reads the image's far side)."""
    return name == "groups" or (name == "padding_mode" and str(value).lower() in ("constant", "zeros"))


def _layout_name(layout):
    if not isinstance(layout, str) or layout.upper() not in _AXES:
        raise ValueError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")
    return layout.upper()


def _dask_input(name, value):
    """`value` as a 4-D Dask array; a NumPy array (or array-like) is wrapped, chunked over the
    batch only (Dask's automatic chunk size)."""
    if not isinstance(value, da.Array):
        if is_dask_collection(value):
            raise TypeError(f"{name} must be a Dask array or a NumPy array, got {type(value).__name__}")
        value = np.asarray(value)
        if value.ndim == 4:
            value = da.from_array(value, chunks=("auto", -1, -1, -1))
    if value.ndim != 4:
        raise ValueError(f"{name} must be 4-D, got shape {value.shape} ({value.ndim}-D)")
    if any(np.isnan(size) for sizes in value.chunks for size in sizes):
        raise ValueError(f"{name} has unknown chunk sizes {value.chunks}; call {name}.compute_chunk_sizes() first")
    return value


def _numpy_parameter(name, value):
    """kernel or bias as a NumPy array; a Dask collection is refused rather than computed here."""
    if is_dask_collection(value):
        raise TypeError(
            f"{name} must be a NumPy array (it is small and sent whole to every task), got a Dask "
            f"{type(value).__name__}; call {name}.compute() first"
        )
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__} ({error})") from None


def _probe_input(x, geometry, layout):
    """An empty batch of x's dtype and channels, of images no larger than the dilated kernel (so
    the geometry stays valid), for cyconv to check the dtypes, bias, pad_value and options on, as
    the blocks' calls will, and to give the output dtype. Not x's real size: cyconv plans one
    image's workspace, and the image may not fit in memory."""
    _, h_axis, w_axis, c_axis = _AXES[layout]
    shape = [0] * 4
    shape[h_axis] = min(geometry.in_h, _extent(geometry, 0))
    shape[w_axis] = min(geometry.in_w, _extent(geometry, 1))
    shape[c_axis] = x.shape[c_axis]
    return np.empty(shape, dtype=x.dtype)


def _extent(geometry, axis):
    """The span in input pixels of the dilated kernel along axis 0 (height) or 1 (width)."""
    k, d = (geometry.kernel_h, geometry.dilation_h) if axis == 0 else (geometry.kernel_w, geometry.dilation_w)
    return (k - 1) * (d + 1) + 1


def _grad_output(grad_y, call):
    """grad_y as a Dask array with the output's shape, rechunked to the output's chunks."""
    grad_y = _dask_input("grad_y", grad_y)
    expected = tuple(sum(sizes) for sizes in call.y_chunks)
    if grad_y.shape != expected:
        raise ValueError(f"grad_y must have the output's shape {expected} ({call.layout}), got {grad_y.shape}")
    return grad_y.rechunk(call.y_chunks) if grad_y.chunks != call.y_chunks else grad_y


# ----------------------------------------------------------------------------- spatial chunking


def _axis_plan(chunks, stride, extent, pad_before, out_size):
    """Input chunks, output chunks and halo for one spatial axis of x chunked as `chunks`.

    Output o reads input rows [o*stride - pad_before, o*stride - pad_before + extent) (negative
    rows and rows past the end are padding). A block of input rows [start, stop) computes the
    outputs whose windows start in it, o in [o_start, o_stop) with start = o_start*stride -
    pad_before: they read rows up to (o_stop - 1)*stride - pad_before + extent = stop + halo,
    halo = max(extent - stride, 0), which the next block lends (dask.array.overlap). Each block
    then holds exactly o_stop - o_start outputs of a VALID convolution, plus the padding of the
    image on the first and last blocks.

    x's chunk boundaries b are moved to the start of the window of the first output past them,
    ceil((b + pad_before) / stride) * stride - pad_before (x is rechunked: only when stride > 1
    and b + pad_before is not a multiple of it), and dropped (blocks merged) when that leaves a
    block shorter than the halo (Dask's overlap needs halo <= every chunk; this also keeps the
    windows of every block but the last inside the image) or with no output of its own.

    Returns (input chunks, output chunks, halo); sum(output chunks) == out_size; no halo when the
    axis is left in one block.
    """
    size = sum(chunks)
    halo = max(extent - stride, 0)
    bounds = []  # (first output, first input row) of every block after the first
    for b in accumulate(chunks[:-1]):
        first = -(-(b + pad_before) // stride)
        start = first * stride - pad_before
        if 0 < start < size and first < out_size and (not bounds or first > bounds[-1][0]):
            bounds.append((first, start))
    kept, stop = [], size
    for first, start in reversed(bounds):
        if stop - start >= max(halo, 1):
            kept.append((first, start))
            stop = start
    kept.reverse()
    if kept and kept[0][1] < halo:  # the first block too: Dask's overlap checks every chunk
        kept.pop(0)
    x_starts = [0] + [start for _, start in kept] + [size]
    y_starts = [0] + [first for first, _ in kept] + [out_size]
    return _sizes(x_starts), _sizes(y_starts), halo if kept else 0


def _sizes(starts):
    return tuple(b - a for a, b in zip(starts, starts[1:]))


@dataclass(frozen=True)
class _Borders:
    """The image's own padding ((top, bottom), (left, right)) and where H and W are in the block
    grid: a block pads only the sides of it that are borders of the image."""

    pads: tuple
    h_axis: int
    w_axis: int

    def padding(self, location, numblocks):
        """Explicit padding of the block at `location` in a grid of `numblocks` blocks."""
        sides = []
        for axis, (before, after) in zip((self.h_axis, self.w_axis), self.pads):
            sides.append((before if location[axis] == 0 else 0, after if location[axis] == numblocks[axis] - 1 else 0))
        return tuple(sides)


@dataclass(frozen=True)
class _SpatialPlan:
    """How a spatially chunked x is cut: its (re)chunks, the output's H and W chunks, the halo
    each block borrows from the next along H and W, and the borders that get padding."""

    x_chunks: tuple
    y_chunks: tuple
    halos: tuple
    borders: _Borders

    @classmethod
    def make(cls, chunks, geometry, layout):
        _, h_axis, w_axis, _ = _AXES[layout]
        h_in, h_out, h_halo = _axis_plan(chunks[h_axis], geometry.stride_h, _extent(geometry, 0),
                                         geometry.pad_top, geometry.out_h)
        w_in, w_out, w_halo = _axis_plan(chunks[w_axis], geometry.stride_w, _extent(geometry, 1),
                                         geometry.pad_left, geometry.out_w)
        x_chunks = list(chunks)
        x_chunks[h_axis], x_chunks[w_axis] = h_in, w_in
        pads = ((geometry.pad_top, geometry.pad_bottom), (geometry.pad_left, geometry.pad_right))
        return cls(tuple(x_chunks), (h_out, w_out), (h_halo, w_halo), _Borders(pads, h_axis, w_axis))

    def _depths(self, before):
        axes = (self.borders.h_axis, self.borders.w_axis)
        return {axis: (halo, 0) if before else (0, halo) for axis, halo in zip(axes, self.halos) if halo}

    def with_halo(self, x):
        """x (chunked as x_chunks) with every block extended by the first `halo` rows / columns of
        the next block (none past the image: the last blocks pad instead)."""
        depth = self._depths(before=False)
        return da.overlap.overlap(x, depth, {axis: "none" for axis in depth}, allow_rechunk=False) if depth else x

    def fold_halos(self, parts, chunks):
        """The adjoint of with_halo: `parts` has with_halo's chunks; each block's halo rows are added
        into the first rows of the next block, giving an array chunked as `chunks`."""
        depth = self._depths(before=True)
        if not depth:
            return parts
        borrowed = da.overlap.overlap(parts, depth, {axis: "none" for axis in depth}, allow_rechunk=False)
        return da.map_blocks(_fold_block, borrowed, depth, chunks=chunks, dtype=parts.dtype,
                             meta=np.empty((0,) * 4, dtype=parts.dtype))


def _fold_block(block, depth, block_info=None):
    """One block of fold_halos: along each axis in `depth`, the block is [the previous block's halo
    (not on the first block)] + [its own rows] + [its own halo, for the next block (not on the
    last)]; keep its own rows with the previous halo added to the first of them."""
    info = block_info[None]
    for axis, (halo, _) in depth.items():
        lead = halo if info["chunk-location"][axis] > 0 else 0
        own = info["chunk-shape"][axis]
        index = [slice(None)] * block.ndim
        index[axis] = slice(lead, lead + own)
        folded = block[tuple(index)].copy()
        index[axis] = slice(0, lead)
        folded[tuple(index)] += block[tuple(index)]
        block = folded
    return block


# ------------------------------------------------------------------------------- block functions


def _block_padding(padding, borders, block_info):
    """The user's padding (x not chunked spatially) or this block's share of the image's."""
    if borders is None:
        return padding
    info = block_info[None]
    return borders.padding(info["chunk-location"], info["num-chunks"])


def _forward_block(x, kernel, bias, padding, arguments, options, borders, block_info=None):
    return cyconv.conv2d(x, kernel, bias, padding=_block_padding(padding, borders, block_info), **arguments,
                         **options)


def _backward_block(grad_y, x, kernel, padding, arguments, options, borders, block_info=None):
    """(grad_x of this block's rows and halo, grad_kernel, grad_bias) from this block's outputs."""
    return cyconv.conv2d_backward(grad_y, x, kernel, padding=_block_padding(padding, borders, block_info),
                                  **arguments, **options)


def _part(parts, index):
    return parts[index]


def _partial_sum(parts, index, shape):
    """One block's partial grad_kernel or grad_bias in float64, shaped to sit in the block grid."""
    return np.asarray(parts[index], dtype=np.float64).reshape(shape)


def _block_sum(parts, index, call, shape):
    """The sum over all blocks of parts[index] (shaped `shape`): a tree reduction (Dask's sum over
    the block grid) in float64, cast to the computation's dtype."""
    c_axis = _AXES[call.layout][3]
    size = int(np.prod(shape))
    block_shape = [1] * 4
    block_shape[c_axis] = size
    chunks = [(1,) * blocks for blocks in parts.numblocks]
    chunks[c_axis] = (size,)
    partials = da.map_blocks(_partial_sum, parts, index, tuple(block_shape), chunks=tuple(chunks),
                             dtype=np.float64, meta=np.empty((0,) * 4, dtype=np.float64))
    others = tuple(axis for axis in range(4) if axis != c_axis)
    return partials.sum(axis=others).reshape(shape).astype(call.dtype)
