# Type stubs for the compiled module cyconv/_depthwise.pyx (checked against it by tests/test_stubs.py).
# Every function is fused over float32 and float64: the float arrays share one of the two dtypes
# (grad_bias is always float64). Depthwise convolution: groups = C, output channel f = c * M + m
# reads input channel c. The functions trust their caller: shapes, dtypes and contiguity are not
# checked. grad_x is fully overwritten (it need not be zeroed).
import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64
_Array = npt.NDArray[_Float]

def forward_nhwc(
    x: _Array, kernel: _Array, bias: _Array, y: _Array,
    sh: int, sw: int, dh: int, dw: int, pad_top: int, pad_left: int, pad_value: float, num_threads: int,
) -> None: ...
def forward_nchw(
    x: _Array, kernel: _Array, bias: _Array, y: _Array,
    sh: int, sw: int, dh: int, dw: int, pad_top: int, pad_left: int, pad_value: float, num_threads: int,
) -> None: ...
def input_grad_nhwc(
    grad_y: _Array, kernel: _Array, grad_x: _Array,
    sh: int, sw: int, dh: int, dw: int, pad_top: int, pad_left: int, num_threads: int,
) -> None: ...
def input_grad_nchw(
    grad_y: _Array, kernel: _Array, grad_x: _Array,
    sh: int, sw: int, dh: int, dw: int, pad_top: int, pad_left: int, num_threads: int,
) -> None: ...
def kernel_grad_nhwc(
    x: _Array, grad_y: _Array, grad_kernel: _Array, grad_bias: npt.NDArray[np.float64],
    sh: int, sw: int, dh: int, dw: int, pad_top: int, pad_left: int, pad_value: float, num_threads: int,
) -> None: ...
def kernel_grad_nchw(
    x: _Array, grad_y: _Array, grad_kernel: _Array, grad_bias: npt.NDArray[np.float64],
    sh: int, sw: int, dh: int, dw: int, pad_top: int, pad_left: int, pad_value: float, num_threads: int,
) -> None: ...
