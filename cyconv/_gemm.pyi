# Type stubs for the compiled module cyconv/_gemm.pyx (checked against it by tests/test_stubs.py).
# Every function is fused over float32 and float64: the float arrays share one of the two dtypes
# (bias_partials is always float64). The functions trust their caller (cyconv._engine): shapes,
# contiguity and scratch sizes are not checked.
import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64
_Array = npt.NDArray[_Float]

def forward_nhwc(
    x: _Array, wm: _Array, bias: _Array, y: _Array,
    out_h: int, out_w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
    pad_top: int, pad_left: int, pad_value: float, groups: int, block: int, work: _Array, num_threads: int,
) -> None: ...
def forward_nchw(
    x: _Array, wm: _Array, bias: _Array, y: _Array,
    out_h: int, out_w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
    pad_top: int, pad_left: int, pad_value: float, groups: int, block: int, work: _Array, num_threads: int,
) -> None: ...
def kernel_grad_nhwc(
    x: _Array, grad_y: _Array, partials: _Array, bias_partials: npt.NDArray[np.float64],
    out_h: int, out_w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
    pad_top: int, pad_left: int, pad_value: float, groups: int, block: int, column_parts: int, work: _Array,
    num_threads: int,
) -> None: ...
def kernel_grad_nchw(
    x: _Array, grad_y: _Array, partials: _Array, bias_partials: npt.NDArray[np.float64],
    out_h: int, out_w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
    pad_top: int, pad_left: int, pad_value: float, groups: int, block: int, column_parts: int, work: _Array,
    num_threads: int,
) -> None: ...
def input_grad_nhwc(
    grad_y: _Array, wm: _Array, grad_x: _Array,
    out_h: int, out_w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
    pad_top: int, pad_left: int, groups: int, block: int, chunk: int, dcols: _Array, num_threads: int,
) -> None: ...
def input_grad_nchw(
    grad_y: _Array, wm: _Array, grad_x: _Array,
    out_h: int, out_w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
    pad_top: int, pad_left: int, groups: int, block: int, chunk: int, dcols: _Array, num_threads: int,
) -> None: ...
