"""How a validated convolution is computed: which compiled algorithm, how its work is cut.

Everything above this module (functional, layers, compat) hands it a ConvProblem that
cyconv._problems has checked; everything below it (the compiled modules) trusts what it passes.

    forward(problem)                      -> y
    kernel_grad(problem, grad_y)          -> (grad_kernel, grad_bias)
    input_grad(problem, grad_y, bias)     -> grad_x (+ bias): also a transposed convolution's output
    backward(problem, grad_y)             -> (grad_x, grad_kernel, grad_bias)

Algorithms (the forward pass and the input gradient; the kernel gradient is "gemm" but for
"direct" depthwise convolutions and "winograd" / "winograd_4x4" ones, whose kernel gradient is
Winograd F(2x2, 3x3)):
  "gemm"          im2col + GEMM, fused per core (cyconv._gemm): any geometry, any groups.
  "winograd"      Winograd F(2x2, 3x3) (cyconv._winograd): 3x3 kernels at stride 1, no groups.
  "winograd_4x4"  Winograd F(4x4, 3x3): fewer products, 15-25x less exact; only when asked for.
  "direct"        loops over the taps, no patch matrix: register-tiled for convolutions without
                  groups (cyconv._direct), per channel for depthwise ones (cyconv._depthwise).
  "auto"          _choose's rule.

How the work is cut (sizes depend on the problem only, never on the thread count, so that
results are identical for any number of threads):
  - Products run on blocks of the patch matrix of about BLOCK_BYTES, one block per thread at a time.
  - The kernel gradient is summed as partial sums over (parts of the rows) x (groups) x (parts of
    a group's columns): at least PARTIAL_UNITS units of work, added in a fixed order (Winograd's:
    over parts of the tiles).
  - The input gradient of a stride-1 convolution is itself a convolution of grad_y with the
    flipped kernel (so every forward algorithm serves it); with strides, or few channels,
    grad_y @ kernel is formed a round of images at a time and added back into grad_x (col2im).
  - Padding modes other than a constant pad x first (cyconv._padding) and fold the gradient back.
  - The blocks of the patch matrix and the rounds of a strided input gradient stay within
    cyconv.get_max_workspace() (but never less than one block per thread and one image's round).
    Beside them a call holds Winograd's transformed kernel and the kernel gradient's partial sums
    (kept for the next call up to KEPT_BYTES), and the direct kernels' padded rows ("auto" takes
    those kernels only up to DIRECT_WORK_BYTES).
"""
import threading
from dataclasses import replace

import numpy as np

from . import _config, _cpu, _gemm, _padding, _winograd
from ._blas_threads import one_blas_thread
from ._geometry import Geometry
from ._problems import is_depthwise, winograd_applies
from ._validation import check_memory

# The modules compiled in CPU variants: the best this CPU runs (cyconv._cpu).
_direct = _cpu.load("_direct")
_depthwise = _cpu.load("_depthwise")

# A block of the patch matrix this size stays in a core's L2 cache while it is multiplied.
BLOCK_BYTES = 256 * 2**10
# The kernel gradient is cut into at least this many units of work (partial sums).
PARTIAL_UNITS = 8
# Partial sums of the kernel gradient may take this much memory beyond the gradient itself.
PARTIAL_BYTES = 16 * 2**20
# Temporaries beyond the workspace (Winograd's transformed kernel, the kernel gradient's partial
# sums) are kept for the next call from the same Python thread up to this size: allocated afresh,
# their pages are faulted in again on every call (measured on the 256-channel 3x3 layer of the
# benchmarks, alternating two runs each: a kernel gradient right after a forward pass took 25-28 ms
# with fresh temporaries, 17-23 ms with kept ones; forward then backward 38-41 ms, 32 ms).
KEPT_BYTES = 64 * 2**20
# Below this many multiply-adds a call runs on one thread: starting a team costs more.
PARALLEL_MIN_MACS = 1 << 18


def _macs(problem):
    """Multiply-adds of the forward pass."""
    g = problem.geometry
    return problem.batch * g.out_h * g.out_w * problem.filters * problem.kernel[0].size


def _threads(problem):
    return _config.get_num_threads() if _macs(problem) >= PARALLEL_MIN_MACS else 1


_thread_buffers = threading.local()


def _scratch(role, size, dtype, limit=None):
    """An uninitialised 1-D array of `size` elements for the temporary `role`, reused across calls
    from this Python thread while it fits in `limit` bytes (default: the workspace limit). Never
    returned to the caller: the next call from this thread overwrites it."""
    dtype = np.dtype(dtype)
    if size * dtype.itemsize > (_config.get_max_workspace() if limit is None else limit):
        return np.empty(size, dtype=dtype)
    key = (role, dtype)
    buffers = _thread_buffers.__dict__
    if key not in buffers or buffers[key].size < size:
        buffers[key] = np.empty(size, dtype=dtype)
    return buffers[key][:size]


def _per_thread_scratch(role, threads, size, dtype):
    return _scratch(role, threads * size, dtype).reshape(threads, size)


def _block(per_unit_bytes, units, threads):
    """Units (rows or pixels) per block: about BLOCK_BYTES, and all threads' blocks within the
    workspace limit; at least one, at most `units`."""
    budget = min(BLOCK_BYTES, _config.get_max_workspace() // threads)
    return int(max(1, min(units, budget // max(per_unit_bytes, 1))))


def _matrix_shape(problem, channels_of_rows):
    """How the engine views an NHWC (N * P, channels) / NCHW (N, channels, P) output-sized array."""
    g = problem.geometry
    pixels = g.out_h * g.out_w
    if problem.layout == "NHWC":
        return (problem.batch * pixels, channels_of_rows)
    return (problem.batch, channels_of_rows, pixels)


def _unpadded(problem):
    """The problem itself, or for a padding mode other than a constant the VALID convolution of
    the padded input."""
    g = problem.geometry
    if problem.padding_mode == "constant" or not any((g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)):
        return problem
    return replace(problem, x=_padding.pad(problem.x, g, problem.layout, problem.padding_mode),
                   geometry=_padding.padded_geometry(g), padding_mode="constant")


# "auto"'s thresholds (see _choose).
WINOGRAD_MIN_CHANNELS = 32
WINOGRAD_MIN_PRODUCT = 64 * 64
DIRECT_MAX_NCHW_CHANNELS = 32
# grad_x of a stride-1 convolution is the convolution of grad_y with the flipped kernel, whose
# filters are x's channels: with this few channels per group that convolution has too few filters
# for its kernels to be efficient, and "auto" forms grad_y @ kernel and adds it back (col2im)
# instead, as at strides above 1 (measured 1.2-5x faster for 1 to 16 channels, 2.2x slower at 32).
GRAD_X_PRODUCT_MAX_CHANNELS = 16
# The direct kernels copy the input rows a band of outputs reads, padded, per thread: "auto" takes
# them only while that stays this small (huge strides or dilations make those rows huge).
DIRECT_WORK_BYTES = 64 * 2**20


def _choose(problem):
    """The algorithm that computes the problem's forward pass and input gradient.

    "auto", from measurements on 2 cores (AVX-512, float32; benchmarks/ and the README): a
    depthwise convolution runs on its direct kernels; other grouped ones on GEMM. Without groups,
    Winograd F(2x2, 3x3) where it applies and the layer is wide (at least WINOGRAD_MIN_CHANNELS
    channels and filters, and WINOGRAD_MIN_PRODUCT their product: below, its transforms cost more
    than they save); else the register-tiled direct kernels, which beat im2col-GEMM on every NHWC
    layer measured (1x1 to 7x7, 1 to 256 channels) and on NCHW layers of up to
    DIRECT_MAX_NCHW_CHANNELS channels; else im2col-GEMM."""
    if problem.algorithm != "auto":
        return problem.algorithm
    channels, filters = problem.channels, problem.filters
    if is_depthwise(problem.groups, channels):
        return "direct"
    if problem.groups > 1:
        return "gemm"
    if (winograd_applies(problem.geometry, problem.groups) and min(channels, filters) >= WINOGRAD_MIN_CHANNELS
            and channels * filters >= WINOGRAD_MIN_PRODUCT):
        return "winograd"
    if (problem.layout == "NHWC" or channels <= DIRECT_MAX_NCHW_CHANNELS) and _direct_work(problem) <= DIRECT_WORK_BYTES:
        return "direct"
    return "gemm"


def _direct_work(problem):
    """Bytes of the direct kernels' work buffers for the problem (without groups)."""
    g = problem.geometry
    return _direct.work_bytes(problem.layout == "NCHW", problem.channels, problem.filters, g.out_h, g.out_w,
                              g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w,
                              problem.dtype.itemsize, _threads(problem))


def forward(problem):
    """y of the problem, in its layout and dtype."""
    problem = _unpadded(problem)
    if problem.batch == 0:
        return np.empty(problem.output_shape, dtype=problem.dtype)
    algorithm = _choose(problem)
    if algorithm.startswith("winograd"):
        return _winograd_forward(problem, 4 if algorithm == "winograd_4x4" else 2)
    if algorithm == "direct":
        return _direct_forward(problem)
    return _gemm_forward(problem)


def _strides_dilations_pads(geometry):
    g = geometry
    return g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_top, g.pad_left


def _direct_forward(problem):
    nhwc = problem.layout == "NHWC"
    if is_depthwise(problem.groups, problem.channels):
        kernel = _depthwise.forward_nhwc if nhwc else _depthwise.forward_nchw
        bias = np.zeros(problem.filters, dtype=problem.dtype) if problem.bias is None else problem.bias
    else:
        check_memory(f"the direct kernels' work buffers for {problem.geometry}", _direct_work(problem))
        kernel = _direct.direct_nhwc if nhwc else _direct.direct_nchw
        bias = np.zeros(problem.filters, dtype=problem.dtype) if problem.bias is None else problem.bias
    y = np.empty(problem.output_shape, dtype=problem.dtype)
    kernel(problem.x, problem.kernel, bias, y, *_strides_dilations_pads(problem.geometry), problem.pad_value,
           _threads(problem))
    return y


def _winograd_forward(problem, tile):
    g = problem.geometry
    alpha = tile + 2
    nchw = problem.layout == "NCHW"
    u = _scratch("winograd_u", alpha * alpha * problem.channels * problem.filters, problem.dtype, KEPT_BYTES)
    u = u.reshape(alpha * alpha, problem.channels, problem.filters)
    _winograd.transform_kernel(problem.kernel, u, nchw, tile)
    bias = np.zeros(problem.filters, dtype=problem.dtype) if problem.bias is None else problem.bias
    y = np.empty(problem.output_shape, dtype=problem.dtype)
    threads = _threads(problem)
    kernel = _winograd.winograd_nchw if nchw else _winograd.winograd_nhwc
    with one_blas_thread(threads):
        kernel(problem.x, u, bias, y, g.pad_top, g.pad_left, g.dilation_h, g.dilation_w, problem.pad_value, tile,
               threads)
    return y


# The Winograd kernel gradient takes tiles this many at a time (the K of its products), fewer when
# the per-thread transforms of a block, 16 (C + F) values a tile, would exceed WINOGRAD_GRAD_BYTES.
WINOGRAD_GRAD_BLOCK = 128
WINOGRAD_GRAD_BYTES = 2 * 2**20
# Its partial sums (2 at least, for 2 threads) take at most this much: larger ones cost more to
# zero, add and keep in cache than the threads' balance gains (measured on 2 cores: 2 parts of
# 16 F C values beat 4 and 8 by 10-40% at C = F = 128 and 256, tied at 64).
WINOGRAD_GRAD_PARTIAL_BYTES = 2 * 2**20


def _winograd_kernel_grad(problem, grad_y):
    """(grad_kernel, grad_bias) by Winograd F(2x2, 3x3). The tiles are cut into PARTIAL_UNITS parts
    (partial sums), fewer when they would exceed WINOGRAD_GRAD_PARTIAL_BYTES (but 2 at least) or
    there are fewer blocks: sizes that depend on the problem and the workspace limit only, never
    on the thread count."""
    g = problem.geometry
    if problem.batch == 0:
        return np.zeros_like(problem.kernel), np.zeros(problem.filters, dtype=problem.dtype)
    c, f, item = problem.channels, problem.filters, problem.dtype.itemsize
    tiles = problem.batch * _winograd.tile_count(g.out_h, g.out_w, g.dilation_h, g.dilation_w, 2)
    budget = min(WINOGRAD_GRAD_BYTES, _config.get_max_workspace())
    block = int(max(1, min(WINOGRAD_GRAD_BLOCK, tiles, budget // (16 * (c + f) * item))))
    parts = max(2, min(PARTIAL_UNITS, WINOGRAD_GRAD_PARTIAL_BYTES // (16 * f * c * item)))
    parts = int(min(parts, -(-tiles // block)))
    grad_kernel = np.empty_like(problem.kernel)
    grad_bias = np.empty(f)
    partials = _scratch("winograd_partials", parts * 16 * f * c, problem.dtype, KEPT_BYTES).reshape(parts, 16, f, c)
    threads = _threads(problem)
    kernel = _winograd.kernel_grad_nchw if problem.layout == "NCHW" else _winograd.kernel_grad_nhwc
    with one_blas_thread(threads):
        kernel(problem.x, grad_y, grad_kernel, grad_bias, partials, g.pad_top, g.pad_left, g.dilation_h,
               g.dilation_w, problem.pad_value, block, parts, threads)
    return grad_kernel, grad_bias.astype(problem.dtype)


def _gemm_forward(problem):
    g = problem.geometry
    wm = problem.kernel.reshape(problem.filters, -1)
    taps = problem.groups * wm.shape[1]
    bias = np.empty(0, dtype=problem.dtype) if problem.bias is None else problem.bias
    threads = _threads(problem)
    nhwc = problem.layout == "NHWC"
    y = np.empty(_matrix_shape(problem, problem.filters), dtype=problem.dtype)
    block = _block(taps * problem.dtype.itemsize, y.shape[0] if nhwc else y.shape[2], threads)
    work = _per_thread_scratch("cols", threads, block * taps, problem.dtype)
    kernel = _gemm.forward_nhwc if nhwc else _gemm.forward_nchw
    with one_blas_thread(threads):
        kernel(problem.x, wm, bias, y, *g.kernel_args(), problem.pad_value, problem.groups, block, work, threads)
    return y.reshape(problem.output_shape)


def backward(problem, grad_y):
    """(grad_x, grad_kernel, grad_bias) for grad_y = dL/dy (the output's shape and dtype,
    C-contiguous)."""
    unpadded = _unpadded(problem)
    grad_kernel, grad_bias = kernel_grad(unpadded, grad_y)
    grad_x = input_grad(unpadded, grad_y)
    if unpadded is not problem:
        grad_x = _padding.fold(grad_x, problem.geometry, problem.layout, problem.padding_mode)
    return grad_x, grad_kernel, grad_bias


def kernel_grad(problem, grad_y):
    """(grad_kernel, grad_bias): dL/dkernel for grad_y = dL/dy, and grad_y summed per filter."""
    problem = _unpadded(problem)
    if _choose(problem) == "direct" and is_depthwise(problem.groups, problem.channels):
        grad_kernel = np.empty_like(problem.kernel)
        grad_bias = np.empty(problem.filters)
        kernel = _depthwise.kernel_grad_nhwc if problem.layout == "NHWC" else _depthwise.kernel_grad_nchw
        kernel(problem.x, grad_y, grad_kernel, grad_bias, *_strides_dilations_pads(problem.geometry),
               problem.pad_value, _threads(problem))
        return grad_kernel, grad_bias.astype(problem.dtype)
    if _choose(problem).startswith("winograd"):
        return _winograd_kernel_grad(problem, grad_y)
    g = problem.geometry
    f, groups = problem.filters, problem.groups
    group_taps = problem.kernel[0].size
    item = problem.dtype.itemsize
    threads = _threads(problem)
    nhwc = problem.layout == "NHWC"
    gy = grad_y.reshape(_matrix_shape(problem, f))
    # Cut each group's columns into parts of at least 128, the rows into parts, for PARTIAL_UNITS
    # units; fewer row parts when their partial sums would not fit in PARTIAL_BYTES.
    column_parts = max(1, min(PARTIAL_UNITS, group_taps // 128))
    part_taps = -(-group_taps // column_parts)
    units = gy.shape[0] if nhwc else g.out_h * g.out_w
    block = _block(part_taps * item, units, threads)
    blocks = -(-gy.shape[0] // block) if nhwc else problem.batch * -(-units // block)
    row_parts = max(1, min(-(-PARTIAL_UNITS // (groups * column_parts)), blocks,
                           PARTIAL_BYTES // (f * group_taps * item)))
    if row_parts == 1:  # the one partial sum is the result
        partials = np.empty((1, f, group_taps), dtype=problem.dtype)
    else:
        partials = _scratch("partials", row_parts * f * group_taps, problem.dtype, KEPT_BYTES)
        partials = partials.reshape(row_parts, f, group_taps)
    bias_partials = np.zeros((row_parts, f))
    work = _per_thread_scratch("cols", threads, block * part_taps, problem.dtype)
    kernel = _gemm.kernel_grad_nhwc if nhwc else _gemm.kernel_grad_nchw
    with one_blas_thread(threads):
        kernel(problem.x, gy, partials, bias_partials, *g.kernel_args(), problem.pad_value, groups, block,
               column_parts, work, threads)
    grad_kernel = partials[0] if row_parts == 1 else partials.sum(axis=0)
    return grad_kernel.reshape(problem.kernel.shape), bias_partials.sum(axis=0).astype(problem.dtype)


def input_grad(problem, grad_y, bias=None):
    """dL/dx for grad_y = dL/dy, plus `bias` (C,) per channel when given: the output of the
    transposed convolution of grad_y. Only the problem's geometry, kernel and shapes are used."""
    g = problem.geometry
    if _choose(problem) == "direct" and is_depthwise(problem.groups, problem.channels):
        grad_x = np.empty(problem.input_shape, dtype=problem.dtype)
        kernel = _depthwise.input_grad_nhwc if problem.layout == "NHWC" else _depthwise.input_grad_nchw
        kernel(grad_y, problem.kernel, grad_x, *_strides_dilations_pads(g), _threads(problem))
        if bias is not None:
            grad_x += bias if problem.layout == "NHWC" else bias[:, None, None]
        return grad_x
    few_channels = problem.channels // problem.groups <= GRAD_X_PRODUCT_MAX_CHANNELS
    if (g.stride_h, g.stride_w) == (1, 1) and not (problem.algorithm == "auto" and few_channels):
        return forward(_flipped_problem(problem, grad_y, bias))
    f, groups = problem.filters, problem.groups
    wm = problem.kernel.reshape(f, -1)
    taps = groups * wm.shape[1]
    pixels = g.out_h * g.out_w
    item = problem.dtype.itemsize
    threads = _threads(problem)
    nhwc = problem.layout == "NHWC"
    grad_x = np.zeros(problem.input_shape, dtype=problem.dtype)
    gy = grad_y.reshape(_matrix_shape(problem, f))
    block = _block(f * item, gy.shape[0] if nhwc else pixels, threads)
    chunk = max(1, min(problem.batch, _config.get_max_workspace() // (taps * pixels * item)))
    dcols = _scratch("dcols", chunk * taps * pixels, problem.dtype)
    kernel = _gemm.input_grad_nhwc if nhwc else _gemm.input_grad_nchw
    with one_blas_thread(threads):
        kernel(gy, wm, grad_x, *g.kernel_args(), groups, block, chunk, dcols, threads)
    if bias is not None:
        grad_x += bias if nhwc else bias[:, None, None]
    return grad_x


def _flipped_kernel(problem):
    """The kernel flipped in space with its channel axes swapped, group by group: the kernel that
    maps grad_y (F channels) back onto x's C channels."""
    groups, layout = problem.groups, problem.layout
    k = problem.kernel.reshape((groups, -1) + problem.kernel.shape[1:])
    if layout == "NHWC":  # (G, F/G, kh, kw, C/G) -> (G, C/G, kh, kw, F/G)
        flipped = k[:, :, ::-1, ::-1, :].transpose(0, 4, 2, 3, 1)
    else:  # (G, F/G, C/G, kh, kw) -> (G, C/G, F/G, kh, kw)
        flipped = k[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(flipped).reshape((-1,) + flipped.shape[2:])


def _flipped_problem(problem, grad_y, bias):
    """The stride-1 convolution whose output is grad_x: grad_y convolved with the flipped kernel,
    padded so that tap (i, j) of the flipped kernel meets what tap (kh-1-i, kw-1-j) read
    (paddings extent - 1 - pad; negative ones crop)."""
    g = problem.geometry
    extent_h = (g.kernel_h - 1) * (g.dilation_h + 1) + 1
    extent_w = (g.kernel_w - 1) * (g.dilation_w + 1) + 1
    geometry = Geometry(
        in_h=g.out_h, in_w=g.out_w, kernel_h=g.kernel_h, kernel_w=g.kernel_w, stride_h=1, stride_w=1,
        dilation_h=g.dilation_h, dilation_w=g.dilation_w,
        pad_top=extent_h - 1 - g.pad_top, pad_bottom=extent_h - 1 - g.pad_bottom,
        pad_left=extent_w - 1 - g.pad_left, pad_right=extent_w - 1 - g.pad_right, out_h=g.in_h, out_w=g.in_w,
    )
    return replace(problem, x=grad_y, kernel=_flipped_kernel(problem), bias=bias, geometry=geometry,
                   pad_value=0.0, padding_mode="constant")
