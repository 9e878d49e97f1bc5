# Type stubs for the compiled module cyconv/_im2col.pyx (checked against it by tests/test_stubs.py).
# Every kernel is fused over float32 and float64: all array arguments share one of the two dtypes.
# The kernels trust their caller (cyconv.functional, cyconv._engine): shapes and contiguity are not checked.
import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64

def im2col_nhwc(
    x: npt.NDArray[_Float],
    cols: npt.NDArray[_Float],
    out_h: int,
    out_w: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pad_top: int,
    pad_left: int,
    pad_value: float,
    num_threads: int,
) -> None: ...
def col2im_nhwc(
    cols: npt.NDArray[_Float],
    x: npt.NDArray[_Float],
    out_h: int,
    out_w: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pad_top: int,
    pad_left: int,
    num_threads: int,
) -> None: ...
def im2col_nchw(
    x: npt.NDArray[_Float],
    cols: npt.NDArray[_Float],
    out_h: int,
    out_w: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pad_top: int,
    pad_left: int,
    pad_value: float,
    num_threads: int,
) -> None: ...
def col2im_nchw(
    cols: npt.NDArray[_Float],
    x: npt.NDArray[_Float],
    out_h: int,
    out_w: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pad_top: int,
    pad_left: int,
    num_threads: int,
) -> None: ...
