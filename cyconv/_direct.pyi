# Type stubs for the compiled module cyconv/_direct.pyx (checked against it by tests/test_stubs.py),
# and for its CPU variants cyconv._direct_avx2 / cyconv._direct_avx512 (same functions, see cyconv._cpu).
# Every kernel is fused over float32 and float64: all array arguments share one of the two dtypes.
# The kernels trust their caller: shapes, contiguity and geometry are not checked.
import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64

def direct_nhwc(
    x: npt.NDArray[_Float],
    kernel: npt.NDArray[_Float],
    bias: npt.NDArray[_Float],
    y: npt.NDArray[_Float],
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pad_top: int,
    pad_left: int,
    pad_value: float,
    num_threads: int,
) -> None: ...
def direct_nchw(
    x: npt.NDArray[_Float],
    kernel: npt.NDArray[_Float],
    bias: npt.NDArray[_Float],
    y: npt.NDArray[_Float],
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pad_top: int,
    pad_left: int,
    pad_value: float,
    num_threads: int,
) -> None: ...
def work_bytes(
    nchw: bool, channels: int, filters: int, out_h: int, out_w: int, kh: int, kw: int,
    sh: int, sw: int, dh: int, dw: int, itemsize: int, num_threads: int,
) -> int: ...
