"""The benchmarked layers: a LayerSpec per convolution, the agreed list LAYERS, and their inputs.

A spec describes one problem completely: the shape of every array in either layout, the output
size (through cyconv's conv_geometry, the one output-size formula), the FLOP count and a label.
Contenders and checks take every shape from these methods.

Two kinds of layer besides the plain convolution:
  groups = G      a grouped convolution (PyTorch's groups): filter f sees the C / G channels of its
                  group; G = C is a depthwise layer. The kernel is (F, C / G, k, k).
  transposed      the timed operation is the transposed convolution (the adjoint) of the spec's
                  convolution, which the other fields describe as usual: N images of C x H x W,
                  F filters, stride s. The timed op maps N x F x OH x OW to N x C x H x W with the
                  same kernel (F, C / G, k, k) (PyTorch's conv_transpose2d weight (in, out / G, k, k)), and
                  its bias has C entries. geometry() stays that convolution's, the one formula;
                  label() and shapes() read as the timed op.

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
    """One benchmarked convolution: N images of C x H x W, F filters of k x k, in G groups; or, with
    transposed, the transposed convolution of that convolution (see the module docstring)."""

    n: int
    c: int
    h: int
    w: int
    f: int
    k: int
    stride: int
    padding: str
    dilation: int = 0
    groups: int = 1
    transposed: bool = False

    def label(self):
        """The timed op: "N8 64x56x56->128 k3 s2 SAME", plus " d1", " groups=128", " transposed"."""
        (n, c_in, h, w), _, y = self.shapes()
        text = f"N{n} {c_in}x{h}x{w}->{y[1]} k{self.k} s{self.stride} {self.padding}"
        extras = [f"d{self.dilation}" if self.dilation else "", f"groups={self.groups}" if self.groups > 1 else "",
                  "transposed" if self.transposed else ""]
        return " ".join([text] + [e for e in extras if e])

    def quick(self):
        """The same layer with a batch 8 times smaller (at least 1), for a smoke run."""
        return replace(self, n=max(1, self.n // 8))

    def geometry(self):
        return conv_geometry((self.h, self.w), (self.k, self.k), self.stride, self.dilation, self.padding)

    def extent(self):
        """Rows (and columns) of input one output pixel reads: (k - 1) * (dilation + 1) + 1."""
        return (self.k - 1) * (self.dilation + 1) + 1

    def shapes(self):
        """NCHW shapes of the timed op's x, kernel and y (see to_layout for NHWC): (N, C, H, W),
        (F, C / G, k, k), (N, F, OH, OW); transposed: (N, F, OH, OW), (F, C / G, k, k), (N, C, H, W)."""
        g = self.geometry()
        image, features = (self.n, self.c, self.h, self.w), (self.n, self.f, g.out_h, g.out_w)
        kernel = (self.f, self.c // self.groups, self.k, self.k)
        return (features, kernel, image) if self.transposed else (image, kernel, features)

    def forward_flops(self):
        """2 * N * F * OH * OW * (C / G) * k * k: one multiply and one add per kernel tap (the
        transposed convolution performs the same products as its convolution)."""
        g = self.geometry()
        return 2 * self.n * self.f * g.out_h * g.out_w * (self.c // self.groups) * self.k * self.k

    def describe(self):
        g = self.geometry()
        x, kernel, y = self.shapes()
        return dict(asdict(self), out_h=g.out_h, out_w=g.out_w,
                    pads=(g.pad_top, g.pad_bottom, g.pad_left, g.pad_right), x=x, kernel=kernel, y=y)


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
    LayerSpec(8, 128, 56, 56, 128, 3, 1, "SAME", groups=128),  # depthwise, channel multiplier 1
    # the transposed convolution 64 x 32 x 32 -> 32 x 64 x 64 (SAME: in * stride; PyTorch's padding=1)
    LayerSpec(8, 32, 64, 64, 64, 4, 2, "SAME", transposed=True),
)


class Inputs(NamedTuple):
    """A layer's float32 arrays in NCHW, shaped as spec.shapes(): x, kernel, bias (the timed op's
    output channels: F, or C when transposed), grad_y like y."""

    x: np.ndarray
    kernel: np.ndarray
    bias: np.ndarray
    grad_y: np.ndarray


def make_inputs(spec, seed=0):
    """The same arrays in every process for a given spec and seed (standard normal; the kernel
    scaled by 1 / sqrt(the timed op's input channels per group * k * k) so outputs stay of order 1)."""
    rng = np.random.default_rng(seed)
    x_shape, kernel_shape, y_shape = spec.shapes()
    x = rng.standard_normal(x_shape, dtype=np.float32)
    fan_in = x_shape[1] // spec.groups * spec.k**2
    kernel = rng.standard_normal(kernel_shape, dtype=np.float32) / np.float32(math.sqrt(fan_in))
    bias = np.float32(0.1) * rng.standard_normal(y_shape[1], dtype=np.float32)
    return Inputs(x, kernel, bias, rng.standard_normal(y_shape, dtype=np.float32))


def to_layout(array, layout):
    """A 4-D NCHW array (x, kernel or y) as a contiguous array in `layout`."""
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1)) if layout == "NHWC" else array


def to_nchw(array, layout):
    """The inverse of to_layout, as a view."""
    return array.transpose(0, 3, 1, 2) if layout == "NHWC" else array
