# Type stubs for the compiled module cyconv/_winograd.pyx (checked against it by tests/test_stubs.py).
# Winograd convolution for 3x3 kernels at stride 1, F(tile x tile, 3x3) with tile 2 or 4.
# Every function is fused over float32 and float64: all array arguments share one of the two dtypes
# (but grad_bias, always float64).
# The functions trust their caller: shapes and contiguity are not checked.
import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64

def tile_count(out_h: int, out_w: int, dh: int, dw: int, tile: int) -> int: ...
def transform_kernel(
    kernel: npt.NDArray[_Float],
    u: npt.NDArray[_Float],
    nchw: bool,
    tile: int,
) -> None: ...
def winograd_nhwc(
    x: npt.NDArray[_Float],
    u: npt.NDArray[_Float],
    bias: npt.NDArray[_Float],
    y: npt.NDArray[_Float],
    pad_top: int,
    pad_left: int,
    dh: int,
    dw: int,
    pad_value: float,
    tile: int,
    num_threads: int,
) -> None: ...
def winograd_nchw(
    x: npt.NDArray[_Float],
    u: npt.NDArray[_Float],
    bias: npt.NDArray[_Float],
    y: npt.NDArray[_Float],
    pad_top: int,
    pad_left: int,
    dh: int,
    dw: int,
    pad_value: float,
    tile: int,
    num_threads: int,
) -> None: ...
def kernel_grad_nhwc(
    x: npt.NDArray[_Float],
    grad_y: npt.NDArray[_Float],
    grad_kernel: npt.NDArray[_Float],
    grad_bias: npt.NDArray[np.float64],
    partials: npt.NDArray[_Float],
    pad_top: int,
    pad_left: int,
    dh: int,
    dw: int,
    pad_value: float,
    block: int,
    parts: int,
    num_threads: int,
) -> None: ...
def kernel_grad_nchw(
    x: npt.NDArray[_Float],
    grad_y: npt.NDArray[_Float],
    grad_kernel: npt.NDArray[_Float],
    grad_bias: npt.NDArray[np.float64],
    partials: npt.NDArray[_Float],
    pad_top: int,
    pad_left: int,
    dh: int,
    dw: int,
    pad_value: float,
    block: int,
    parts: int,
    num_threads: int,
) -> None: ...
