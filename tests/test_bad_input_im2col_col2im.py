"""Hostile arguments to im2col and col2im, refused with a ValueError / TypeError.

Every message names the argument, what it got and what was expected, and the error comes before
any kernel runs: the compiled kernels have no bounds checks, so a case missing here is a potential
memory corruption. helpers.py holds the valid problem (X, K, B, GY) whose arguments are corrupted.
"""
import numpy as np
import pytest

import cyconv
from helpers import X, case_ids, structured

IM2COL_CASES = [
    ("x-None", dict(x=None), TypeError, r"x must be a 4-D array of real numbers, got None"),
    ("x-3d", dict(x=X[0]), ValueError, r"x must be 4-D, got shape \(5, 6, 3\)"),
    ("x-complex", dict(x=X + 0j), TypeError, r"x must hold real numbers .*complex128"),
    ("x-bool", dict(x=X > 0), TypeError, r"x must hold real numbers .*bool"),
    ("x-zero-height", dict(x=np.zeros((1, 0, 4, 2))), ValueError,
     r"input_shape\[1\] must be an integer in \[1, 2147483647\], got 0"),
    ("kernel_size-0", dict(kernel_size=0), ValueError,
     r"kernel_size must be an integer in \[1, 2147483647\], got 0"),
    ("kernel_size-negative", dict(kernel_size=(3, -1)), ValueError,
     r"kernel_size\[1\] must be an integer in \[1, .*got -1"),
    ("kernel_size-1-tuple", dict(kernel_size=(3,)), ValueError,
     r"kernel_size must be an int or a pair of ints \(height, width\), each >= 1, got \(3,\) of "
     r"length 1"),
    ("kernel_size-None", dict(kernel_size=None), TypeError,
     r"kernel_size must be an int or a pair .*got None"),
    ("kernel_size-float", dict(kernel_size=3.0), TypeError,
     r"kernel_size must be an int or a pair .*got 3\.0 of type float"),
    ("kernel_size-str", dict(kernel_size="3"), TypeError,
     r"kernel_size must be an int or a pair .*got '3' of type str"),
    ("kernel_size-too-large", dict(kernel_size=6), ValueError,
     r"input height 5 .*smaller than the dilated kernel height 6"),
    ("strides-0", dict(strides=0), ValueError, r"strides must be an integer in \[1, "),
    ("strides-float", dict(strides=0.5), TypeError, r"strides must be an int or a pair .*0\.5"),
    ("dilations-negative", dict(dilations=-1), ValueError,
     r"dilations must be an integer in \[0, .*got -1"),
    ("padding-unknown", dict(padding="full"), ValueError,
     r"padding must be 'SAME', 'VALID'.*got 'full'"),
    ("padding-3-tuple", dict(padding=(0, 0, 0)), ValueError,
     r"padding must be 'SAME'.*of length 3"),
    ("padding-None", dict(padding=None), TypeError, r"padding must be 'SAME'.*None"),
    ("layout", dict(layout="CHWN"), ValueError, r"layout must be 'NHWC' or 'NCHW', got 'CHWN'"),
    ("pad_value", dict(pad_value="nan"), TypeError,
     r"pad_value must be a real number .*'nan' of type str"),
]


@pytest.mark.parametrize("name, overrides, error, pattern", IM2COL_CASES,
                        ids=case_ids(IM2COL_CASES))
def test_im2col_rejects(name, overrides, error, pattern):
    args = dict(x=X, kernel_size=3, strides=1, dilations=0, padding="VALID", layout="NHWC",
                pad_value=0.0)
    args.update(overrides)
    with pytest.raises(error, match=pattern):
        cyconv.im2col(args.pop("x"), args.pop("kernel_size"), **args)


COLS = np.zeros((2 * 3 * 4, 27))  # im2col(X, 3) in NHWC

COL2IM_CASES = [
    ("cols-None", dict(cols=None), TypeError,
     r"cols must be a 2-D array of real numbers, got None"),
    ("cols-shape", dict(cols=COLS[:-1]), ValueError,
     r"cols must have shape \(24, 27\) for input_shape \(2, 5, 6, 3\) in layout NHWC, got \(23, "
     r"27\)"),
    ("cols-transposed", dict(cols=COLS.T), ValueError,
     r"cols must have shape \(24, 27\) .*got \(27, 24\)"),
    ("cols-3d", dict(cols=COLS[None]), ValueError, r"cols must be 2-D, got shape \(1, 24, 27\)"),
    ("cols-nchw-shape", dict(cols=COLS, layout="NCHW", input_shape=(2, 3, 5, 6)), ValueError,
     r"cols must be 3-D, got shape \(24, 27\)"),
    ("cols-nchw-wrong", dict(cols=np.zeros((2, 27, 11)), layout="NCHW", input_shape=(2, 3, 5, 6)),
     ValueError,
     r"cols must have shape \(2, 27, 12\) for input_shape \(2, 3, 5, 6\) in layout NCHW, got \(2, "
     r"27, 11\)"),
    ("cols-complex", dict(cols=COLS + 0j), TypeError, r"cols must hold real numbers .*complex128"),
    ("cols-object", dict(cols=COLS.astype(object)), TypeError,
     r"cols must hold real numbers .*object"),
    ("cols-structured", dict(cols=structured((24, 27))), TypeError, r"cols must hold real numbers"),
    ("input_shape-None", dict(input_shape=None), ValueError,
     r"input_shape must be a 4-D shape \(N, H, W, C\) in layout NHWC, got None"),
    ("input_shape-3d", dict(input_shape=(5, 6, 3)), ValueError,
     r"input_shape must be a 4-D shape \(N, H, W, C\) in layout NHWC, got \(5, 6, 3\)"),
    ("input_shape-str", dict(input_shape="2563"), ValueError,
     r"input_shape must be a 4-D shape .*got '2563'"),
    ("input_shape-int", dict(input_shape=5), ValueError,
     r"input_shape must be a 4-D shape .*got 5"),
    ("input_shape-0d-array", dict(input_shape=np.array(5)), ValueError,
     r"input_shape must be a 4-D shape .*got array\(5\)"),
    ("input_shape-zero-channels", dict(input_shape=(2, 5, 6, 0)), ValueError,
     r"input_shape\[3\] must be an integer in \[1, 2147483647\], got 0"),
    ("input_shape-negative-batch", dict(input_shape=(-1, 5, 6, 3)), ValueError,
     r"input_shape\[0\] must be an integer in \[0, 2147483647\], got -1"),
    ("input_shape-float", dict(input_shape=(2, 5.0, 6, 3)), TypeError,
     r"input_shape\[1\] must be an integer, got 5\.0 of type float"),
    ("input_shape-None-entry", dict(input_shape=(2, None, 6, 3)), TypeError,
     r"input_shape\[1\] must be an integer, got None"),
    ("input_shape-too-large", dict(input_shape=(2, 2**31, 6, 3)), ValueError,
     r"input_shape\[1\] must be an integer in \[1, 2147483647\], got 2147483648"),
    ("kernel_size-0", dict(kernel_size=(3, 0)), ValueError,
     r"kernel_size\[1\] must be an integer in \[1, .*got 0"),
    ("kernel_size-too-large", dict(kernel_size=(3, 7)), ValueError,
     r"input width 6 .*smaller than the dilated kernel width 7"),
    ("strides-negative", dict(strides=-1), ValueError,
     r"strides must be an integer in \[1, .*got -1"),
    ("dilations-float", dict(dilations=1.0), TypeError,
     r"dilations must be an int or a pair .*1\.0"),
    ("padding-negative", dict(padding=((0, 0), (0, -1))), ValueError,
     r"padding\[1\]\[1\] must be an integer in \[0, .*got -1"),
    ("layout", dict(layout="nhw"), ValueError, r"layout must be 'NHWC' or 'NCHW', got 'nhw'"),
]


@pytest.mark.parametrize("name, overrides, error, pattern", COL2IM_CASES,
                        ids=case_ids(COL2IM_CASES))
def test_col2im_rejects(name, overrides, error, pattern):
    args = dict(cols=COLS, input_shape=X.shape, kernel_size=3, strides=1, dilations=0,
                padding="VALID", layout="NHWC")
    args.update(overrides)
    with pytest.raises(error, match=pattern):
        cyconv.col2im(args.pop("cols"), args.pop("input_shape"), args.pop("kernel_size"), **args)
