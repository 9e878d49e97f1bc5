"""How a validated convolution is computed: which compiled algorithm, how its work is cut.

Everything above this module (functional, layers, compat) hands it a ConvProblem that
cyconv._validation has checked; everything below it (the compiled modules) trusts what it passes.

    forward(problem)                       -> y
    backward(problem, grad_y, need_x=True) -> (grad_x or None, grad_kernel, grad_bias)

Algorithms:
  "gemm"  im2col + GEMM, fused per core (cyconv._gemm): any geometry.

How the work is cut (sizes depend on the problem only, never on the thread count, so that
results are identical for any number of threads):
  - Products run on blocks of the patch matrix of about BLOCK_BYTES, one block per thread at a time.
  - The kernel gradient is summed as partial sums over (groups of blocks) x (parts of the columns):
    at least PARTIAL_UNITS units of work, the groups' partial sums added in a fixed order.
  - The input gradient of a stride-1 convolution is itself a convolution of grad_y with the
    flipped kernel (so every forward algorithm serves it); with strides, grad_y @ kernel is
    formed a round of images at a time and added back into grad_x (col2im).
  - The scratch memory of a call stays within cyconv.get_max_workspace() (but never less than
    one block per thread and one image's round).
"""
import threading
from dataclasses import replace

import numpy as np

from . import _config, _gemm
from ._blas_threads import one_blas_thread
from ._geometry import Geometry
from ._validation import nhwc_order

# A block of the patch matrix this size stays in a core's L2 cache while it is multiplied.
BLOCK_BYTES = 256 * 2**10
# The kernel gradient is cut into at least this many units of work (partial sums).
PARTIAL_UNITS = 8
# Partial sums of the kernel gradient may take this much memory beyond the gradient itself.
PARTIAL_BYTES = 16 * 2**20
# Below this many multiply-adds a call runs on one thread: starting a team costs more.
PARALLEL_MIN_MACS = 1 << 18


def _macs(problem):
    """Multiply-adds of the forward pass."""
    g = problem.geometry
    return problem.batch * g.out_h * g.out_w * problem.filters * problem.kernel[0].size


def _threads(problem):
    return _config.get_num_threads() if _macs(problem) >= PARALLEL_MIN_MACS else 1


_thread_buffers = threading.local()


def _scratch(role, size, dtype):
    """An uninitialised 1-D array of `size` elements for the temporary `role`, reused across calls
    from this Python thread while it fits in the workspace limit."""
    dtype = np.dtype(dtype)
    if size * dtype.itemsize > _config.get_max_workspace():
        return np.empty(size, dtype=dtype)
    key = (role, dtype)
    buffers = _thread_buffers.__dict__
    if key not in buffers or buffers[key].size < size:
        buffers[key] = np.empty(size, dtype=dtype)
    return buffers[key][:size]


def _block(per_unit_bytes, units, threads):
    """Units (rows or pixels) per block: about BLOCK_BYTES, and all threads' blocks within the
    workspace limit; at least one, at most `units`."""
    budget = min(BLOCK_BYTES, _config.get_max_workspace() // threads)
    return int(max(1, min(units, budget // max(per_unit_bytes, 1))))


def _per_thread_scratch(role, threads, size, dtype):
    return _scratch(role, threads * size, dtype).reshape(threads, size)


def _no_bias(problem):
    return np.empty(0, dtype=problem.dtype)


def forward(problem):
    """y of the problem, in its layout and dtype."""
    g = problem.geometry
    n, f, pixels = problem.batch, problem.filters, g.out_h * g.out_w
    wm = problem.kernel.reshape(f, -1)
    taps = wm.shape[1]
    bias = _no_bias(problem) if problem.bias is None else problem.bias
    threads = _threads(problem)
    item = problem.dtype.itemsize
    nhwc = problem.layout == "NHWC"
    y = np.empty((n * pixels, f) if nhwc else (n, f, pixels), dtype=problem.dtype)
    block = _block(taps * item, n * pixels if nhwc else pixels, threads)
    work = _per_thread_scratch("cols", threads, block * taps, problem.dtype)
    kernel = _gemm.forward_nhwc if nhwc else _gemm.forward_nchw
    with one_blas_thread():
        kernel(problem.x, wm, bias, y, *g.kernel_args(), problem.pad_value, block, work, threads)
    return y.reshape(problem.output_shape)


def backward(problem, grad_y, need_x=True):
    """(grad_x, grad_kernel, grad_bias) of the problem for grad_y = dL/dy (its output's shape,
    dtype, C-contiguous); grad_x is None when need_x is false."""
    grad_kernel, grad_bias = _kernel_grad(problem, grad_y)
    grad_x = _input_grad(problem, grad_y) if need_x else None
    return grad_x, grad_kernel, grad_bias


def _kernel_grad(problem, grad_y):
    g = problem.geometry
    n, f, pixels = problem.batch, problem.filters, g.out_h * g.out_w
    taps = problem.kernel[0].size
    item = problem.dtype.itemsize
    threads = _threads(problem)
    nhwc = problem.layout == "NHWC"
    # Cut the columns into parts of at least 128, the blocks into groups, for PARTIAL_UNITS units;
    # fewer groups when their partial sums would not fit in PARTIAL_BYTES.
    column_parts = max(1, min(PARTIAL_UNITS, taps // 128))
    block = _block(-(-taps // column_parts) * item, n * pixels if nhwc else pixels, threads)
    blocks = -(-(n * pixels) // block) if nhwc else n * -(-pixels // block)
    groups = max(1, min(-(-PARTIAL_UNITS // column_parts), blocks, PARTIAL_BYTES // (f * taps * item)))
    partials = np.empty((groups, f, taps), dtype=problem.dtype)
    bias_partials = np.zeros((groups, f))
    work = _per_thread_scratch("cols", threads, block * -(-taps // column_parts), problem.dtype)
    gy = grad_y.reshape(n * pixels, f) if nhwc else grad_y.reshape(n, f, pixels)
    kernel = _gemm.kernel_grad_nhwc if nhwc else _gemm.kernel_grad_nchw
    with one_blas_thread():
        kernel(problem.x, gy, partials, bias_partials, *g.kernel_args(), problem.pad_value, block,
               column_parts, work, threads)
    grad_kernel = partials[0] if groups == 1 else partials.sum(axis=0)
    return grad_kernel.reshape(problem.kernel.shape), bias_partials.sum(axis=0).astype(problem.dtype)


def _input_grad(problem, grad_y):
    g = problem.geometry
    if (g.stride_h, g.stride_w) == (1, 1):
        return forward(_transposed_problem(problem, grad_y))
    n, f, pixels = problem.batch, problem.filters, g.out_h * g.out_w
    wm = problem.kernel.reshape(f, -1)
    taps = wm.shape[1]
    item = problem.dtype.itemsize
    threads = _threads(problem)
    nhwc = problem.layout == "NHWC"
    grad_x = np.zeros_like(problem.x)
    block = _block(f * item, n * pixels if nhwc else pixels, threads)
    chunk = max(1, min(n, _config.get_max_workspace() // (taps * pixels * item)))
    dcols = _scratch("dcols", chunk * taps * pixels, problem.dtype)
    gy = grad_y.reshape(n * pixels, f) if nhwc else grad_y.reshape(n, f, pixels)
    kernel = _gemm.input_grad_nhwc if nhwc else _gemm.input_grad_nchw
    with one_blas_thread():
        kernel(gy, wm, grad_x, *g.kernel_args(), block, chunk, dcols, threads)
    return grad_x


def _transposed_problem(problem, grad_y):
    """The stride-1 convolution whose output is grad_x: grad_y convolved with the kernel flipped
    in space and with its channel axes swapped, padded so that tap (i, j) of the flipped kernel
    meets what tap (kh-1-i, kw-1-j) read (paddings extent - 1 - pad, negative ones crop)."""
    g = problem.geometry
    if problem.layout == "NHWC":
        flipped = problem.kernel[:, ::-1, ::-1, :].transpose(3, 1, 2, 0)
    else:
        flipped = problem.kernel[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    extent_h = (g.kernel_h - 1) * (g.dilation_h + 1) + 1
    extent_w = (g.kernel_w - 1) * (g.dilation_w + 1) + 1
    _, h, w, _ = nhwc_order(problem.x.shape, problem.layout)
    geometry = Geometry(
        in_h=g.out_h, in_w=g.out_w, kernel_h=g.kernel_h, kernel_w=g.kernel_w, stride_h=1, stride_w=1,
        dilation_h=g.dilation_h, dilation_w=g.dilation_w,
        pad_top=extent_h - 1 - g.pad_top, pad_bottom=extent_h - 1 - g.pad_bottom,
        pad_left=extent_w - 1 - g.pad_left, pad_right=extent_w - 1 - g.pad_right, out_h=h, out_w=w,
    )
    return replace(problem, x=grad_y, kernel=np.ascontiguousarray(flipped), bias=None, geometry=geometry,
                   pad_value=0.0)
