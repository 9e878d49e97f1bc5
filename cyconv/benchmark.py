"""The cyconv benchmark suite: ``python -m cyconv bench`` or ``python benchmarks/run.py``.

For each layer of a fixed list, in float32 and in both layouts (NHWC, NCHW), it times cyconv's
forward pass (``conv2d``) and forward + backward pass (``conv2d`` then ``conv2d_backward``: grad x,
grad kernel, grad bias) against baselines timed in the same run, interleaved repeat by repeat
(round robin, the order rotated each repeat) so that machine noise hits every contender alike:

  documents   the NumPy method of documents 000 / 002 (cs231n's ``im2col_indices`` with fancy
              indexing, ``col2im_indices`` with ``np.add.at``, ``conv_forward`` / ``conv_backward``),
              written out below. It knows only NCHW, symmetric integer padding and no dilation;
              other cases are run on an equivalent formulation, and the output says which.
  PyTorch     ``torch.nn.functional.conv2d`` on the CPU, NCHW-contiguous and channels_last; the
              faster of the two is "PyTorch best". Only when ``import torch`` works (torch is never
              a dependency of cyconv); ``--no-torch`` skips it.
  bare GEMM   the matrix products cyconv's im2col + GEMM performs (forward one, backward two more)
              on preallocated arrays with ``out=``: what im2col + GEMM can at best reach.

Reported per layer and layout: median times (ms), cyconv's GFLOP/s (forward FLOPs =
2 * N * F * OH * OW * C * kh * kw, forward + backward = 3x that), the ratios baseline time /
cyconv time (> 1: cyconv is faster; against the bare GEMM it is the fraction of GEMM-only speed
cyconv reaches), and the peak memory traced by tracemalloc during one call. Before timing, each
layer's cyconv results are checked against the documents' method (and PyTorch): a benchmark of a
wrong result is worthless, so a failed check is reported, the layer is not timed and the exit
status is 1.

Output: a table on stdout as it goes (progress on stderr), and results.json, results.md and (when
matplotlib is importable) results.png in the output directory.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

import cyconv

# --------------------------------------------------------------------------------------------
# The documents' NumPy method (documents 000 and 002; cs231n assignment 2's im2col helpers).
# NCHW only, symmetric integer padding, no dilation. Kept as the documents have it.
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpec:
    """One benchmarked convolution; dilation is cyconv's (gaps between taps, PyTorch's d - 1)."""

    n: int
    c: int
    h: int
    w: int
    f: int
    k: int
    stride: int
    padding: str
    dilation: int = 0

    def label(self):
        text = f"N{self.n} {self.c}x{self.h}x{self.w}->{self.f} k{self.k} s{self.stride} {self.padding}"
        return text + (f" d{self.dilation}" if self.dilation else "")

    def quick(self):
        """The same layer with a batch 8 times smaller (at least 1), for a smoke run."""
        return LayerSpec(max(1, self.n // 8), self.c, self.h, self.w, self.f, self.k, self.stride,
                         self.padding, self.dilation)

    def geometry(self):
        return cyconv.conv_geometry((self.h, self.w), (self.k, self.k), self.stride, self.dilation,
                                    self.padding)

    def forward_flops(self):
        g = self.geometry()
        return 2 * self.n * self.f * g.out_h * g.out_w * self.c * self.k * self.k


LAYERS = (
    LayerSpec(32, 3, 32, 32, 32, 3, 1, "SAME"),
    LayerSpec(32, 64, 32, 32, 64, 3, 1, "SAME"),
    LayerSpec(16, 128, 16, 16, 128, 3, 1, "SAME"),
    LayerSpec(8, 256, 14, 14, 256, 3, 1, "SAME"),
    LayerSpec(8, 64, 56, 56, 64, 1, 1, "VALID"),
    LayerSpec(8, 64, 56, 56, 128, 3, 2, "SAME"),
    LayerSpec(1, 3, 224, 224, 64, 7, 2, "SAME"),
    LayerSpec(64, 1, 28, 28, 32, 5, 1, "SAME"),
    LayerSpec(16, 64, 32, 32, 64, 3, 1, "SAME", dilation=1),
)

LAYOUTS = ("NHWC", "NCHW")


# --------------------------------------------------------------------------------------------
# The contenders. Data is made once per layer in NCHW; NHWC arrays are contiguous transposes.
# --------------------------------------------------------------------------------------------


class Problem:
    """Inputs of one layer in both layouts (float32), plus the geometry."""

    def __init__(self, spec, seed=0):
        rng = np.random.default_rng(seed)
        self.spec = spec
        self.geometry = g = spec.geometry()
        taps = spec.c * spec.k * spec.k
        self.x_nchw = rng.standard_normal((spec.n, spec.c, spec.h, spec.w), dtype=np.float32)
        self.w_nchw = (rng.standard_normal((spec.f, spec.c, spec.k, spec.k), dtype=np.float32)
                       / np.float32(math.sqrt(taps)))
        self.bias = (np.float32(0.1) * rng.standard_normal(spec.f, dtype=np.float32))
        self.gy_nchw = rng.standard_normal((spec.n, spec.f, g.out_h, g.out_w), dtype=np.float32)
        self.x_nhwc = np.ascontiguousarray(self.x_nchw.transpose(0, 2, 3, 1))
        self.w_nhwc = np.ascontiguousarray(self.w_nchw.transpose(0, 2, 3, 1))
        self.gy_nhwc = np.ascontiguousarray(self.gy_nchw.transpose(0, 2, 3, 1))

    def arrays(self, layout):
        if layout == "NHWC":
            return self.x_nhwc, self.w_nhwc, self.gy_nhwc
        return self.x_nchw, self.w_nchw, self.gy_nchw


def cyconv_forward(problem, layout):
    s = problem.spec
    x, w, _ = problem.arrays(layout)
    return cyconv.conv2d(x, w, problem.bias, s.stride, s.dilation, s.padding, layout=layout)


def cyconv_forward_backward(problem, layout):
    s = problem.spec
    x, w, gy = problem.arrays(layout)
    y = cyconv.conv2d(x, w, problem.bias, s.stride, s.dilation, s.padding, layout=layout)
    grads = cyconv.conv2d_backward(gy, x, w, s.stride, s.dilation, s.padding, layout=layout)
    return y, grads


NHWC_NOTE = "documents' method on NHWC data: NCHW transposed views in, NHWC view out"


def documents_notes(spec, layout):
    """How the documents' method is applied to this layer (empty: exactly as the documents)."""
    g = spec.geometry()
    notes = []
    if layout == "NHWC":
        notes.append(NHWC_NOTE)
    pads = (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)
    extent = (spec.k - 1) * (spec.dilation + 1) + 1
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


def documents_forward(problem, layout):
    x, w, _ = problem.arrays(layout)
    return documents_conv(x, w, problem.bias, problem.geometry, layout)


def documents_forward_backward(problem, layout):
    x, w, gy = problem.arrays(layout)
    return documents_conv(x, w, problem.bias, problem.geometry, layout, grad_y=gy)


class BareGemm:
    """The products of cyconv's im2col + GEMM on preallocated arrays (random data, out=).

    NHWC: y(NP, F) = cols(NP, K) @ Wm.T;  dW(F, K) = gy.T @ cols;  dcols(NP, K) = gy @ Wm.
    NCHW: y(N, F, P) = Wm @ cols(N, K, P) (batched);  dcols(N, K, P) = Wm.T @ gy(N, F, P)
          (batched);  dW(F, K) = one (F, N*P) x (N*P, K) product (cyconv sums it over images).
    """

    def __init__(self, spec, layout, seed=1):
        g = spec.geometry()
        n, f, k, p = spec.n, spec.f, spec.c * spec.k * spec.k, g.out_h * g.out_w
        rng = np.random.default_rng(seed)
        rand = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
        self.layout = layout
        self.wm, self.dw = rand(f, k), np.empty((f, k), np.float32)
        if layout == "NHWC":
            self.cols, self.gy = rand(n * p, k), rand(n * p, f)
            self.y, self.dcols = np.empty((n * p, f), np.float32), np.empty((n * p, k), np.float32)
        else:
            self.cols, self.gy = rand(n, k, p), rand(n, f, p)
            self.y, self.dcols = np.empty((n, f, p), np.float32), np.empty((n, k, p), np.float32)
            # the same memory seen as the 2-D operands of the grad-kernel product (timing only)
            self.gy2, self.cols2 = self.gy.reshape(f, n * p), self.cols.reshape(n * p, k)

    def forward(self):
        if self.layout == "NHWC":
            np.matmul(self.cols, self.wm.T, out=self.y)
        else:
            np.matmul(self.wm, self.cols, out=self.y)

    def forward_backward(self):
        self.forward()
        if self.layout == "NHWC":
            np.matmul(self.gy.T, self.cols, out=self.dw)
            np.matmul(self.gy, self.wm, out=self.dcols)
        else:
            np.matmul(self.gy2, self.cols2, out=self.dw)
            np.matmul(self.wm.T, self.gy, out=self.dcols)


class TorchConv:
    """torch.nn.functional.conv2d on the CPU in one memory format (NCHW-contiguous or channels_last)."""

    def __init__(self, torch, problem, memory_format):
        self.torch = torch
        self.F = torch.nn.functional
        g, s = problem.geometry, problem.spec
        fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
        self.x = torch.from_numpy(problem.x_nchw).contiguous(memory_format=fmt)
        self.w = torch.from_numpy(problem.w_nchw).contiguous(memory_format=fmt)
        self.b = torch.from_numpy(problem.bias).clone()
        self.gy = torch.from_numpy(problem.gy_nchw).contiguous(memory_format=fmt)
        self.xg = self.x.detach().clone(memory_format=fmt).requires_grad_(True)
        self.wg = self.w.detach().clone(memory_format=fmt).requires_grad_(True)
        self.bg = self.b.detach().clone().requires_grad_(True)
        self.stride, self.dilation = s.stride, s.dilation + 1
        pads = (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)
        self.symmetric = len(set(pads)) == 1
        self.padding = g.pad_top if self.symmetric else 0
        self.explicit = (g.pad_left, g.pad_right, g.pad_top, g.pad_bottom)

    def _conv(self, x, w, b):
        if not self.symmetric:
            x = self.F.pad(x, self.explicit)
        return self.F.conv2d(x, w, b, stride=self.stride, padding=self.padding, dilation=self.dilation)

    def forward(self):
        with self.torch.no_grad():
            return self._conv(self.x, self.w, self.b)

    def forward_backward(self):
        self.xg.grad = self.wg.grad = self.bg.grad = None
        y = self._conv(self.xg, self.wg, self.bg)
        y.backward(self.gy)
        return y.detach(), (self.xg.grad, self.wg.grad, self.bg.grad)


def torch_notes(spec):
    g = spec.geometry()
    notes = []
    pads = (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)
    if len(set(pads)) > 1:
        notes.append(f"PyTorch: asymmetric SAME padding {pads} applied with F.pad, then padding=0")
    if spec.dilation:
        notes.append(f"PyTorch: dilation={spec.dilation + 1} (cyconv's dilation {spec.dilation} + 1)")
    return notes


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


def interleaved_times(contenders, repeats, warmup):
    """{name: [seconds, ...]}: `warmup` untimed rounds, then `repeats` timed rounds, each round
    calling every contender twice, untimed then timed, the order rotated from round to round.

    The untimed call lets the previous contender's thread pool (BLAS, PyTorch's OpenMP) go quiet
    and this one's wake up: without it, a call timed right after another library's was slowed by
    that library's still-spinning threads (a bare GEMM measured 0.7 ms or 4.7 ms by its neighbour)."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times = {name: [] for name in names}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                contenders[name]()
                start = time.perf_counter()
                contenders[name]()
                times[name].append(time.perf_counter() - start)
    finally:
        if was_enabled:
            gc.enable()
    return times


def traced_peak(fn):
    """Peak bytes NumPy / Python allocated (tracemalloc) during fn(), above what was live before."""
    gc.collect()
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if not already:
            tracemalloc.stop()
    return max(peak - before, 0)


def max_abs_error(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def close(actual, expected):
    """np.allclose with float32 tolerances, absolute ones scaled by the size of `expected`."""
    expected = np.asarray(expected)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    return bool(np.allclose(actual, expected, rtol=1e-3, atol=1e-4 * scale))


def check_layer(problem, layout, torch_convs):
    """Compare cyconv's forward (and gradients) with the documents' method and PyTorch."""
    report = {"ok": True, "max_abs_error": {}}
    y, (dx, dw, db) = cyconv_forward_backward(problem, layout)
    y_fwd = cyconv_forward(problem, layout)
    y_doc, (dx_doc, dw_doc, db_doc) = documents_forward_backward(problem, layout)
    pairs = {
        "forward_vs_documents": (y_fwd, y_doc),
        "forward_in_fwd_bwd_vs_documents": (y, y_doc),
        "grad_x_vs_documents": (dx, dx_doc),
        "grad_kernel_vs_documents": (dw, dw_doc),
        "grad_bias_vs_documents": (db, db_doc),
    }
    to_layout = (lambda t: t.detach().numpy().transpose(0, 2, 3, 1)) if layout == "NHWC" else (
        lambda t: t.detach().numpy())
    for fmt, tc in torch_convs.items():
        pairs[f"forward_vs_torch_{fmt}"] = (y_fwd, to_layout(tc.forward()))
    for name, (a, b) in pairs.items():
        if np.shape(a) != np.shape(b):
            report["ok"] = False
            report["max_abs_error"][name] = f"shape {np.shape(a)} != {np.shape(b)}"
            continue
        report["max_abs_error"][name] = max_abs_error(a, b)
        if not close(a, b):
            report["ok"] = False
    return report


# --------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def blas_info():
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: show_config has no mode
        return "unknown"


def blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{"api": p.get("internal_api"), "threads": p.get("num_threads")} for p in threadpool_info()]


def environment(torch, args):
    try:
        load = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cyconv_version": getattr(cyconv, "__version__", "unknown"),
        "numpy_version": np.__version__,
        "blas": blas_info(),
        "blas_threads": blas_threads(),
        "torch_version": getattr(torch, "__version__", None) if torch is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cyconv_threads": cyconv.get_num_threads(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "cyconv_max_workspace_bytes": cyconv.get_max_workspace(),
        "thread_environment": {name: os.environ.get(name) for name in (
            "CYCONV_NUM_THREADS", "CYCONV_MAX_WORKSPACE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
            "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if os.environ.get(name) is not None},
        "load_average_at_start": load,
        "dtype": "float32",
        "repeats": args.repeats,
        "warmup": args.warmup,
        "quick": args.quick,
        "statistic": "median over repeats, contenders interleaved (round robin, rotated)",
        "ratio_definition": "baseline time / cyconv time: > 1 means cyconv is faster; against the bare "
                            "GEMM it is the fraction of the GEMM-only speed that cyconv reaches",
    }


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


class Progress:
    """A text progress bar on stderr (redrawn in place on a terminal, one line per step otherwise)."""

    def __init__(self, total, stream=None, width=24):
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.shown = False

    def show(self, what):
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        text = f"[{bar}] {self.done}/{self.total} {elapsed:6.1f}s {what}"
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.shown = True

    def step(self, what=""):
        self.done += 1
        self.show(what)

    def clear(self):
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def fmt_ratio(value):
    if value is None:
        return "-"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.3f}x"


def fmt_pair(first, second):
    return f"{fmt_ratio(first)} / {fmt_ratio(second)}"


TABLE_HEADER = ("#", "layer", "layout", "fwd ms", "fwd GFLOP/s", "fwd+bwd ms", "f+b GFLOP/s",
                "vs documents (fwd / f+b)", "vs PyTorch best (fwd / f+b)", "vs bare GEMM (fwd / f+b)",
                "peak MiB (fwd / f+b)")
TEXT_WIDTHS = (2, 38, 6, 9, 11, 10, 11, 24, 27, 24, 19)


def row_cells(row):
    if not row["check"]["ok"]:
        return (str(row["layer_index"]), row["layer"], row["layout"], "CHECK FAILED", "", "", "", "",
                "", "", "")
    fw, fb, mem = row["forward"], row["forward_backward"], row["memory"]
    mib = lambda b: f"{b / 2**20:.1f}"  # noqa: E731
    return (
        str(row["layer_index"]), row["layer"], row["layout"],
        f"{fw['cyconv_ms']:.2f}", f"{fw['cyconv_gflops']:.1f}",
        f"{fb['cyconv_ms']:.2f}", f"{fb['cyconv_gflops']:.1f}",
        fmt_pair(fw["ratio_documents"], fb["ratio_documents"]),
        fmt_pair(fw.get("ratio_torch_best"), fb.get("ratio_torch_best")),
        fmt_pair(fw["ratio_gemm"], fb["ratio_gemm"]),
        f"{mib(mem['cyconv_forward_peak_bytes'])} / {mib(mem['cyconv_forward_backward_peak_bytes'])}",
    )


def text_line(cells):
    return "  ".join(str(c).rjust(w) if i not in (1,) else str(c).ljust(w)
                     for i, (c, w) in enumerate(zip(cells, TEXT_WIDTHS)))


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(rows):
    good = [r for r in rows if r["check"]["ok"]]
    summary = {}
    for scope in ("all",) + LAYOUTS:
        chosen = [r for r in good if scope == "all" or r["layout"] == scope]
        summary[scope] = {
            f"{mode}_{ratio}": median_or_none([r[mode].get(ratio) for r in chosen])
            for mode in ("forward", "forward_backward")
            for ratio in ("ratio_documents", "ratio_torch_best", "ratio_gemm")
        }
        summary[scope]["rows"] = len(chosen)
    return summary


def summary_lines(summary):
    lines = []
    for scope, s in summary.items():
        if not s["rows"]:
            continue
        name = "all layers and layouts" if scope == "all" else f"{scope} layers"
        lines.append(
            f"Median ratios over {name} ({s['rows']} rows), fwd / fwd+bwd: "
            f"vs documents {fmt_pair(s['forward_ratio_documents'], s['forward_backward_ratio_documents'])}, "
            f"vs PyTorch best {fmt_pair(s['forward_ratio_torch_best'], s['forward_backward_ratio_torch_best'])}, "
            f"vs bare GEMM {fmt_pair(s['forward_ratio_gemm'], s['forward_backward_ratio_gemm'])}"
        )
    return lines


def write_markdown(path, meta, rows, summary, notes):
    lines = ["# cyconv benchmark", ""]
    lines.append(f"{meta['date']} - CPU: {meta['cpu_model']} ({meta['cpu_count']} logical CPUs) - "
                 f"cyconv {meta['cyconv_version']} ({meta['cyconv_threads']} threads) - NumPy "
                 f"{meta['numpy_version']} (BLAS: {meta['blas']}) - PyTorch "
                 f"{meta['torch_version'] or 'not run'}"
                 + (f" ({meta['torch_threads']} threads)" if meta["torch_threads"] else "")
                 + f" - float32 - median of {meta['repeats']} interleaved repeats after "
                 f"{meta['warmup']} warm-up" + (" - QUICK (batches / 8)" if meta["quick"] else "")
                 + (f" - load average at start {meta['load_average_at_start'][0]:.2f}"
                    if meta.get("load_average_at_start") else ""))
    lines.append("")
    lines.append("Ratios are baseline time / cyconv time (> 1: cyconv is faster). Against the bare "
                 "GEMM the ratio is the fraction of GEMM-only speed cyconv reaches. Peak MiB: "
                 "tracemalloc peak during one cyconv call (outputs included).")
    lines.append("")
    lines.append("| " + " | ".join(TABLE_HEADER) + " |")
    lines.append("|" + "|".join("---:" if i not in (1, 2) else "---" for i in range(len(TABLE_HEADER))) + "|")
    for row in rows:
        lines.append("| " + " | ".join(row_cells(row)) + " |")
    lines.append("")
    for line in summary_lines(summary):
        lines.append(f"**{line}**")
        lines.append("")
    if notes:
        lines.append("Notes:")
        lines.append("")
        lines.extend(f"- {note}" for note in notes)
        lines.append("")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def write_chart(path, rows):
    """A bar chart of the ratios (log scale); returns a note when matplotlib is unavailable."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as error:  # ImportError, or a broken backend
        return f"no chart: matplotlib is not importable ({type(error).__name__}: {error})"
    good = [r for r in rows if r["check"]["ok"]]
    if not good:
        return "no chart: no layer passed its check"
    labels = [f"{r['layer_index']} {r['layout']}" for r in good]
    series = (("ratio_documents", "vs documents' method"), ("ratio_torch_best", "vs PyTorch best"),
              ("ratio_gemm", "vs bare GEMM"))
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.7 * len(good) + 3), 8), sharex=True)
    x = np.arange(len(good))
    width = 0.27
    for ax, (mode, title) in zip(axes, (("forward", "forward"), ("forward_backward", "forward + backward"))):
        for i, (key, name) in enumerate(series):
            values = [r[mode].get(key) for r in good]
            if all(v is None for v in values):
                continue
            ax.bar(x + (i - 1) * width, [v if v is not None else np.nan for v in values], width, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylabel("baseline time / cyconv time")
        ax.set_title(f"cyconv {title}, float32 (> 1: cyconv faster)")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1].set_xticks(x)
    axes[-1].set_xticklabels(labels, rotation=45, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def parse_layers(values):
    indices = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            if ".." in part or "-" in part[1:]:
                lo, hi = part.replace("..", "-").split("-", 1)
                indices.extend(range(int(lo), int(hi) + 1))
            else:
                indices.append(int(part))
    for index in indices:
        if not 0 <= index < len(LAYERS):
            raise ValueError(f"layer index {index} is out of range 0..{len(LAYERS) - 1}")
    return sorted(set(indices))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m cyconv bench",
        description="Time cyconv's conv2d forward and forward+backward against the documents' NumPy "
                    "method, PyTorch (if installed) and the bare GEMM, interleaved in one run.",
    )
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed repeats per contender; the median is reported (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed warm-up rounds (default 1)")
    parser.add_argument("--layers", nargs="+", metavar="I",
                        help="subset of layers by index, e.g. '--layers 0 3', '0,3' or '2-5' "
                             f"(default: all {len(LAYERS)}; see --list)")
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS),
                        help="layouts to run (default: both)")
    parser.add_argument("--quick", action="store_true", help="batches 8x smaller, for a smoke run")
    parser.add_argument("--out", default="cyconv-benchmark",
                        help="directory for results.json / results.md / results.png "
                             "(default ./cyconv-benchmark; benchmarks/run.py: benchmarks/results)")
    parser.add_argument("--no-torch", action="store_true", help="do not import or time PyTorch")
    parser.add_argument("--list", action="store_true", help="list the layers and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0, 1 when a correctness check failed, 2 on bad arguments."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.list:
        for i, spec in enumerate(LAYERS):
            print(f"{i}: {spec.label()}")
        return 0
    if args.repeats < 1 or args.warmup < 0:
        print("error: --repeats must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    try:
        indices = parse_layers(args.layers) if args.layers else list(range(len(LAYERS)))
    except ValueError as error:
        print(f"error: --layers: {error}", file=sys.stderr)
        return 2
    layouts = [l for l in LAYOUTS if l in args.layouts]

    notes = []
    torch = None
    if args.no_torch:
        notes.append("PyTorch skipped (--no-torch)")
    else:
        # PyTorch's OpenMP threads spin after each call and steal the cores from whichever
        # contender runs next (measured: every contender's times doubled and scattered, PyTorch's
        # own included). A passive wait policy, read when torch loads its OpenMP runtime, keeps
        # the interleaved contenders from disturbing each other; it made PyTorch faster here.
        if "OMP_WAIT_POLICY" not in os.environ:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            notes.append("OMP_WAIT_POLICY=PASSIVE set before importing torch (its spinning threads "
                         "otherwise slow down the contender timed after it)")
        try:
            import torch  # noqa: F811 - optional, never a dependency of cyconv
        except Exception as error:
            torch = None
            notes.append(f"PyTorch skipped: import torch failed ({type(error).__name__}: {error})")
    if args.repeats < 5:
        notes.append(f"only {args.repeats} repeat(s): medians are not meaningful (use >= 5)")

    meta = environment(torch, args)
    print(f"cyconv {meta['cyconv_version']} benchmark - {meta['cpu_model']} ({meta['cpu_count']} CPUs) - "
          f"NumPy {meta['numpy_version']} ({meta['blas']}) - cyconv threads {meta['cyconv_threads']}"
          + (f" - PyTorch {meta['torch_version']} ({meta['torch_threads']} threads)" if torch else " - no PyTorch"))
    print(f"float32, median of {args.repeats} interleaved repeats after {args.warmup} warm-up; "
          "ratios = baseline time / cyconv time (> 1: cyconv faster)")
    print(text_line(TABLE_HEADER))
    sys.stdout.flush()

    if "NHWC" in layouts:
        notes.append(f"every layer: {NHWC_NOTE}")
    rows = []
    failed = False
    progress = Progress(len(indices) * len(layouts) * 2)
    for index in indices:
        spec = LAYERS[index].quick() if args.quick else LAYERS[index]
        problem = Problem(spec)
        flops = spec.forward_flops()
        layer_notes = []
        for layout in layouts:
            progress.show(f"layer {index} {layout}: checking")
            torch_convs = {}
            if torch is not None:
                torch_convs = {fmt: TorchConv(torch, problem, fmt) for fmt in ("nchw", "channels_last")}
            row_notes = documents_notes(spec, layout) + (torch_notes(spec) if torch is not None else [])
            row = {
                "layer_index": index, "layer": spec.label(), "layout": layout,
                "shape": {"N": spec.n, "C": spec.c, "H": spec.h, "W": spec.w, "F": spec.f, "k": spec.k,
                          "stride": spec.stride, "padding": spec.padding, "dilation": spec.dilation,
                          "OH": problem.geometry.out_h, "OW": problem.geometry.out_w},
                "forward_flops": flops, "notes": row_notes,
            }
            try:
                row["check"] = check_layer(problem, layout, torch_convs)
            except Exception as error:  # a crash in a contender is a failed check, not a crash
                row["check"] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            if not row["check"]["ok"]:
                failed = True
                progress.step(f"layer {index} {layout}: CHECK FAILED")
                progress.step(f"layer {index} {layout}: skipped")
                progress.clear()
                print(text_line(row_cells(row)))
                print(f"   check failed: {json.dumps(row['check'])}")
                rows.append(row)
                continue
            gemm = BareGemm(spec, layout)
            for mode, label, multiplier in (("forward", "fwd", 1), ("forward_backward", "fwd+bwd", 3)):
                progress.show(f"layer {index} {layout}: timing {label}")
                contenders = {
                    "cyconv": (lambda m=mode: (cyconv_forward if m == "forward" else cyconv_forward_backward)(problem, layout)),
                    "documents": (lambda m=mode: (documents_forward if m == "forward" else documents_forward_backward)(problem, layout)),
                    "gemm": getattr(gemm, mode),
                }
                for fmt, tc in torch_convs.items():
                    contenders[f"torch_{fmt}"] = getattr(tc, mode)
                times = interleaved_times(contenders, args.repeats, args.warmup)
                med = {name: statistics.median(ts) for name, ts in times.items()}
                result = {f"{name}_ms": 1e3 * t for name, t in med.items()}
                result["times_ms"] = {name: [1e3 * t for t in ts] for name, ts in times.items()}
                result["flops"] = multiplier * flops
                result["cyconv_gflops"] = multiplier * flops / med["cyconv"] / 1e9
                result["gemm_gflops"] = multiplier * flops / med["gemm"] / 1e9
                result["ratio_documents"] = med["documents"] / med["cyconv"]
                result["ratio_gemm"] = med["gemm"] / med["cyconv"]
                if torch_convs:
                    best = min(("torch_nchw", "torch_channels_last"), key=lambda n: med[n])
                    result["torch_best_ms"] = 1e3 * med[best]
                    result["torch_best"] = best
                    result["ratio_torch_best"] = med[best] / med["cyconv"]
                else:
                    result["ratio_torch_best"] = None
                row[mode] = result
                progress.step(f"layer {index} {layout}: {label} done")
            del gemm
            row["memory"] = {
                "input_bytes": problem.x_nchw.nbytes,
                "cyconv_forward_peak_bytes": traced_peak(lambda: cyconv_forward(problem, layout)),
                "cyconv_forward_backward_peak_bytes": traced_peak(lambda: cyconv_forward_backward(problem, layout)),
                "documents_forward_backward_peak_bytes": traced_peak(lambda: documents_forward_backward(problem, layout)),
            }
            progress.clear()
            print(text_line(row_cells(row)))
            sys.stdout.flush()
            rows.append(row)
            for note in row_notes:
                if note not in layer_notes:
                    layer_notes.append(note)
        notes.extend(f"layer {index}: {note}" for note in layer_notes if note != NHWC_NOTE)
        del problem
    progress.clear()

    summary = summarize(rows)
    try:
        meta["load_average_at_end"] = list(os.getloadavg())
    except (AttributeError, OSError):
        meta["load_average_at_end"] = None
    meta["elapsed_seconds"] = time.perf_counter() - progress.start

    os.makedirs(args.out, exist_ok=True)
    chart_note = write_chart(os.path.join(args.out, "results.png"), rows)
    if chart_note:
        notes.append(chart_note)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump({"meta": meta, "results": rows, "summary": summary, "notes": notes}, handle, indent=1)
    write_markdown(os.path.join(args.out, "results.md"), meta, rows, summary, notes)

    print()
    for line in summary_lines(summary):
        print(line)
    for note in notes:
        print(f"note: {note}")
    if failed:
        print("error: at least one layer's cyconv result disagreed with the baseline; it was not timed",
              file=sys.stderr)
    print(f"wrote {os.path.join(args.out, 'results.json')}, results.md"
          + ("" if chart_note else ", results.png") + f" ({meta['elapsed_seconds']:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
