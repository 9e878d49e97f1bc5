"""The benchmarked layers: a LayerSpec per convolution, the agreed list LAYERS, and their inputs.

A spec describes one problem completely: the shape of every array in either layout, the output
size (through cyconv's conv_geometry, the one output-size formula), the FLOP count and a label.
Contenders and checks take every shape from these methods, so a new kind of layer (a `groups`
field for depthwise layers, a flag for transposed ones) changes this module, not each contender.

Conventions: float32; dilation is cyconv's (gaps between taps, PyTorch's dilation - 1); padding is
"SAME" (TensorFlow's rule) or "VALID". Layouts: NHWC x (N, H, W, C), kernel (F, kh, kw, C),
y (N, OH, OW, F); NCHW x (N, C, H, W), kernel (F, C, kh, kw), y (N, F, OH, OW).
"""
import math
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import numpy as np

from .._geometry import conv_geometry

LAYOUTS = ("NHWC", "NCHW")
MODES = ("forward", "forward_backward")
# A forward + backward step costs three products of the forward's size (y, grad x, grad kernel).
FLOP_MULTIPLIER = {"forward": 1, "forward_backward": 3}


@dataclass(frozen=True)
class LayerSpec:
    """One benchmarked convolution: N images of C x H x W, F filters of k x k."""

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
        return replace(self, n=max(1, self.n // 8))

    def geometry(self):
        return conv_geometry((self.h, self.w), (self.k, self.k), self.stride, self.dilation, self.padding)

    def extent(self):
        """Rows (and columns) of input one output pixel reads: (k - 1) * (dilation + 1) + 1."""
        return (self.k - 1) * (self.dilation + 1) + 1

    def shapes(self):
        """NCHW shapes of x, kernel and y (see to_layout for NHWC)."""
        g = self.geometry()
        return (self.n, self.c, self.h, self.w), (self.f, self.c, self.k, self.k), (self.n, self.f, g.out_h, g.out_w)

    def forward_flops(self):
        """2 * N * F * OH * OW * C * k * k: one multiply and one add per kernel tap."""
        g = self.geometry()
        return 2 * self.n * self.f * g.out_h * g.out_w * self.c * self.k * self.k

    def describe(self):
        g = self.geometry()
        return dict(asdict(self), out_h=g.out_h, out_w=g.out_w,
                    pads=(g.pad_top, g.pad_bottom, g.pad_left, g.pad_right))


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


class Inputs(NamedTuple):
    """A layer's float32 arrays in NCHW: x, kernel (F, C, k, k), bias (F,), grad_y like y."""

    x: np.ndarray
    kernel: np.ndarray
    bias: np.ndarray
    grad_y: np.ndarray


def make_inputs(spec, seed=0):
    """The same arrays in every process for a given spec and seed (standard normal; the kernel
    scaled by 1 / sqrt(C * k * k) so outputs stay of order 1)."""
    rng = np.random.default_rng(seed)
    x_shape, kernel_shape, y_shape = spec.shapes()
    x = rng.standard_normal(x_shape, dtype=np.float32)
    kernel = rng.standard_normal(kernel_shape, dtype=np.float32) / np.float32(math.sqrt(spec.c * spec.k**2))
    bias = np.float32(0.1) * rng.standard_normal(spec.f, dtype=np.float32)
    return Inputs(x, kernel, bias, rng.standard_normal(y_shape, dtype=np.float32))


def to_layout(array, layout):
    """A 4-D NCHW array (x, kernel or y) as a contiguous array in `layout`."""
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1)) if layout == "NHWC" else array


def to_nchw(array, layout):
    """The inverse of to_layout, as a view."""
    return array.transpose(0, 3, 1, 2) if layout == "NHWC" else array
