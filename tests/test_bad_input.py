"""Hostile arguments to every public entry point: each is refused with a ValueError / TypeError
whose message names the argument, what it got and what was expected, before any kernel runs.
Astronomically large geometries are refused (MemoryError / ValueError) before anything is allocated.

The compiled kernels have no bounds checks: a case missing here is a potential memory corruption.
"""
import tracemalloc

import numpy as np
import pytest

import cyconv
from cyconv import _validation as validation
from reference import conv2d_reference, nchw

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 5, 6, 3))  # NHWC
K = RNG.standard_normal((4, 3, 3, 3))  # (F, kh, kw, C)
B = RNG.standard_normal(4)
GY = RNG.standard_normal((2, 3, 4, 4))  # conv2d(X, K) output, VALID


def structured(shape):
    return np.zeros(shape, dtype=[("a", "f8"), ("b", "i4")])


# (id, keyword overrides of a valid conv2d call, exception, message pattern)
CONV2D_CASES = [
    # x
    ("x-None", dict(x=None), TypeError, r"x must be a 4-D array of real numbers, got None"),
    ("x-str", dict(x="abc"), TypeError, r"x must hold real numbers .*got dtype <U3"),
    ("x-3d", dict(x=X[0]), ValueError, r"x must be 4-D, got shape \(5, 6, 3\) \(3-D\)"),
    ("x-5d", dict(x=X[None]), ValueError, r"x must be 4-D, got shape \(1, 2, 5, 6, 3\) \(5-D\)"),
    ("x-scalar", dict(x=1.0), ValueError, r"x must be 4-D, got shape \(\) \(0-D\)"),
    ("x-mixed-list", dict(x=[[[[1.0, "a", 2]]]]), TypeError, r"x must hold real numbers .*got dtype <U"),
    ("x-ragged", dict(x=[[[[1.0], [1.0, 2.0]]]]), TypeError, r"x must be a 4-D array of real numbers, got \[\[\[\[1\.0\]"),
    ("x-complex", dict(x=X.astype(complex)), TypeError, r"x must hold real numbers \(float32, float64 or integers\), got dtype complex128"),
    ("x-object", dict(x=X.astype(object)), TypeError, r"x must hold real numbers .*got dtype object"),
    ("x-bool", dict(x=X > 0), TypeError, r"x must hold real numbers .*got dtype bool"),
    ("x-structured", dict(x=structured((2, 5, 6, 3))), TypeError, r"x must hold real numbers .*got dtype \[\('a'"),
    ("x-datetime", dict(x=np.zeros((2, 5, 6, 3), "datetime64[s]")), TypeError, r"x must hold real numbers .*datetime64"),
    ("x-bytes", dict(x=np.zeros((2, 5, 6, 3), "S2")), TypeError, r"x must hold real numbers .*got dtype \|S2"),
    ("x-zero-height", dict(x=np.zeros((2, 0, 6, 3))), ValueError, r"the height of x \(N, H, W, C\) must be in \[1, 2147483647\], got 0 \(shape \(2, 0, 6, 3\)\)"),
    ("x-zero-width", dict(x=np.zeros((2, 5, 0, 3))), ValueError, r"the width of x .*got 0"),
    ("x-zero-channels", dict(x=np.zeros((2, 5, 6, 0)), kernel=np.zeros((4, 3, 3, 0))), ValueError, r"x must have at least one channel, got x shape \(2, 5, 6, 0\)"),
    # kernel
    ("kernel-None", dict(kernel=None), TypeError, r"kernel must be a 4-D array of real numbers, got None"),
    ("kernel-3d", dict(kernel=K[0]), ValueError, r"kernel must be 4-D, got shape \(3, 3, 3\)"),
    ("kernel-complex", dict(kernel=K * 1j), TypeError, r"kernel must hold real numbers .*complex128"),
    ("kernel-channels", dict(kernel=K[..., :2]), ValueError, r"kernel has 2 input channels but x has 3: kernel shape \(4, 3, 3, 2\) is \(F, kh, kw, C\)"),
    ("kernel-no-filters", dict(kernel=K[:0], bias=None), ValueError, r"kernel must have at least one filter, got kernel shape \(0, 3, 3, 3\)"),
    ("kernel-zero-height", dict(kernel=np.zeros((4, 0, 3, 3))), ValueError, r"the height of kernel \(F, kh, kw, C\) must be in \[1, .*got 0"),
    ("kernel-too-large-valid", dict(kernel=np.zeros((4, 6, 3, 3))), ValueError, r"input height 5 with padding \(0, 0\) is smaller than the dilated kernel height 6; expected an input height of at least 6"),
    ("kernel-dilated-too-large", dict(dilations=(0, 2)), ValueError, r"input width 6 with padding \(0, 0\) is smaller than the dilated kernel width 7"),
    # bias
    ("bias-short", dict(bias=B[:3]), ValueError, r"bias must have shape \(4,\) \(one value per filter\), got \(3,\)"),
    ("bias-2d", dict(bias=B[:, None]), ValueError, r"bias must be 1-D, got shape \(4, 1\)"),
    ("bias-complex", dict(bias=B + 0j), TypeError, r"bias must hold real numbers .*complex128"),
    ("bias-str", dict(bias="bias"), TypeError, r"bias must hold real numbers .*<U4"),
    # strides
    ("strides-0", dict(strides=0), ValueError, r"strides must be an integer in \[1, 2147483647\], got 0"),
    ("strides-negative", dict(strides=-2), ValueError, r"strides must be an integer in \[1, 2147483647\], got -2"),
    ("strides-float", dict(strides=1.5), TypeError, r"strides must be an int or a pair of ints \(height, width\), each >= 1, got 1\.5 of type float"),
    ("strides-integral-float", dict(strides=2.0), TypeError, r"strides must be an int or a pair .*got 2\.0 of type float"),
    ("strides-numpy-float", dict(strides=np.float64(2)), TypeError, r"strides must be an int or a pair .*got np\.float64\(2\.0\)"),
    ("strides-str", dict(strides="2"), TypeError, r"strides must be an int or a pair .*got '2' of type str"),
    ("strides-None", dict(strides=None), TypeError, r"strides must be an int or a pair .*got None of type NoneType"),
    ("strides-bool", dict(strides=True), TypeError, r"strides must be an integer, got True of type bool"),
    ("strides-set", dict(strides={1, 2}), TypeError, r"strides must be an int or a pair .*got \{1, 2\} of type set"),
    ("strides-1-tuple", dict(strides=(1,)), ValueError, r"strides must be an int or a pair .*got \(1,\) of length 1"),
    ("strides-3-tuple", dict(strides=(1, 1, 1)), ValueError, r"strides must be an int or a pair .*got \(1, 1, 1\) of length 3"),
    ("strides-pair-zero", dict(strides=(1, 0)), ValueError, r"strides\[1\] must be an integer in \[1, 2147483647\], got 0"),
    ("strides-pair-float", dict(strides=(1, 1.0)), TypeError, r"strides\[1\] must be an integer, got 1\.0 of type float"),
    ("strides-pair-nested", dict(strides=((1, 1), 1)), TypeError, r"strides\[0\] must be an integer, got \(1, 1\) of type tuple"),
    ("strides-too-large", dict(strides=2**31), ValueError, r"strides must be an integer in \[1, 2147483647\], got 2147483648"),
    ("strides-int64-too-large", dict(strides=np.int64(2**62)), ValueError, r"strides must be an integer in \[1, 2147483647\], got 4611686018427387904"),
    # dilations
    ("dilations-negative", dict(dilations=-1), ValueError, r"dilations must be an integer in \[0, 2147483647\], got -1"),
    ("dilations-pair-negative", dict(dilations=(0, -3)), ValueError, r"dilations\[1\] must be an integer in \[0, 2147483647\], got -3"),
    ("dilations-float", dict(dilations=0.5), TypeError, r"dilations must be an int or a pair .*got 0\.5 of type float"),
    ("dilations-None", dict(dilations=None), TypeError, r"dilations must be an int or a pair .*got None"),
    # padding
    ("padding-unknown-str", dict(padding="FULL"), ValueError, r"padding must be 'SAME', 'VALID', an int, \(ph, pw\) or \(\(top, bottom\), \(left, right\)\) of ints >= 0, got 'FULL'"),
    ("padding-empty-str", dict(padding=""), ValueError, r"padding must be 'SAME', 'VALID'.*got ''"),
    ("padding-padded-str", dict(padding="SAME "), ValueError, r"padding must be 'SAME', 'VALID'.*got 'SAME '"),
    ("padding-bytes", dict(padding=b"SAME"), TypeError, r"padding must be 'SAME', 'VALID'.*got b'SAME' of type bytes"),
    ("padding-negative", dict(padding=-1), ValueError, r"padding must be an integer in \[0, 2147483647\], got -1"),
    ("padding-pair-negative", dict(padding=(1, -1)), ValueError, r"padding\[1\] must be an integer in \[0, .*got -1"),
    ("padding-3-tuple", dict(padding=(1, 1, 1)), ValueError, r"padding must be 'SAME', 'VALID'.*got \(1, 1, 1\) of length 3"),
    ("padding-nested-3", dict(padding=((1, 1), (1, 1), (1, 1))), ValueError, r"padding must be 'SAME'.*of length 3"),
    ("padding-nested-short", dict(padding=((1, 2), (3,))), ValueError, r"padding\[1\] must be an int or a pair of ints \(height, width\), each >= 0, got \(3,\) of length 1"),
    ("padding-nested-long", dict(padding=((1, 2, 3), (1, 2))), ValueError, r"padding\[0\] must be an int or a pair .*got \(1, 2, 3\) of length 3"),
    ("padding-nested-mixed", dict(padding=((1, 2), 3)), ValueError, r"padding must be 'SAME'.*got \(\(1, 2\), 3\), a mix of both forms"),
    ("padding-nested-negative", dict(padding=((1, 2), (3, -4))), ValueError, r"padding\[1\]\[1\] must be an integer in \[0, .*got -4"),
    ("padding-nested-float", dict(padding=((1, 2.5), (3, 4))), TypeError, r"padding\[0\]\[1\] must be an integer, got 2\.5 of type float"),
    ("padding-float", dict(padding=1.5), TypeError, r"padding must be 'SAME', 'VALID'.*got 1\.5 of type float"),
    ("padding-pair-float", dict(padding=(1.0, 1)), TypeError, r"padding\[0\] must be an integer, got 1\.0 of type float"),
    ("padding-None", dict(padding=None), TypeError, r"padding must be 'SAME', 'VALID'.*got None of type NoneType"),
    ("padding-bool", dict(padding=False), TypeError, r"padding must be an integer, got False of type bool"),
    ("padding-set", dict(padding={1, 2}), TypeError, r"padding must be 'SAME'.*got \{1, 2\} of type set"),
    ("padding-dict", dict(padding={0: 1, 1: 1}), TypeError, r"padding must be 'SAME'.*of type dict"),
    ("padding-too-large", dict(padding=2**31), ValueError, r"padding must be an integer in \[0, 2147483647\], got 2147483648"),
    # layout, pad_value
    ("layout-unknown", dict(layout="NWHC"), ValueError, r"layout must be 'NHWC' or 'NCHW', got 'NWHC'"),
    ("layout-None", dict(layout=None), ValueError, r"layout must be 'NHWC' or 'NCHW', got None"),
    ("layout-int", dict(layout=1), ValueError, r"layout must be 'NHWC' or 'NCHW', got 1"),
    ("pad_value-str", dict(pad_value="0"), TypeError, r"pad_value must be a real number \(int or float\), got '0' of type str"),
    ("pad_value-None", dict(pad_value=None), TypeError, r"pad_value must be a real number .*got None"),
    ("pad_value-complex", dict(pad_value=1j), TypeError, r"pad_value must be a real number .*got 1j of type complex"),
    ("pad_value-list", dict(pad_value=[0.0]), TypeError, r"pad_value must be a real number .*got \[0\.0\] of type list"),
    ("pad_value-bool", dict(pad_value=True), TypeError, r"pad_value must be a real number .*got True of type bool"),
]


def _conv2d_args(overrides):
    args = dict(x=X, kernel=K, bias=B, strides=1, dilations=0, padding="VALID", layout="NHWC", pad_value=0.0)
    args.update(overrides)
    return args


def _ids(cases):
    return [case[0] for case in cases]


@pytest.mark.parametrize("name, overrides, error, pattern", CONV2D_CASES, ids=_ids(CONV2D_CASES))
def test_conv2d_rejects(name, overrides, error, pattern):
    args = _conv2d_args(overrides)
    with pytest.raises(error, match=pattern):
        cyconv.conv2d(args.pop("x"), args.pop("kernel"), args.pop("bias"), **args)


BACKWARD_CASES = [case for case in CONV2D_CASES if not case[0].startswith("bias")]  # no bias argument


@pytest.mark.parametrize("name, overrides, error, pattern", BACKWARD_CASES, ids=_ids(BACKWARD_CASES))
def test_conv2d_backward_rejects(name, overrides, error, pattern):
    args = _conv2d_args(overrides)
    del args["bias"]
    with pytest.raises(error, match=pattern):
        cyconv.conv2d_backward(GY, args.pop("x"), args.pop("kernel"), **args)


def test_nchw_names_its_own_layout():
    with pytest.raises(ValueError, match=r"kernel has 3 input channels but x has 5: kernel shape \(4, 3, 3, 3\) is \(F, C, kh, kw\) in layout NCHW"):
        cyconv.conv2d(X, K, layout="NCHW")  # X read as (N=2, C=5, H=6, W=3)
    with pytest.raises(ValueError, match=r"the height of x \(N, C, H, W\) must be in \[1, .*got 0"):
        cyconv.conv2d(np.zeros((1, 3, 0, 4)), nchw(K), layout="nchw")


GRAD_CASES = [
    ("grad-None", None, TypeError, r"grad_y must be a 4-D array of real numbers, got None"),
    ("grad-3d", GY[0], ValueError, r"grad_y must be 4-D, got shape \(3, 4, 4\)"),
    ("grad-shape", GY[:, :2], ValueError, r"grad_y must have the output's shape \(2, 3, 4, 4\) \(NHWC\), got \(2, 2, 4, 4\)"),
    ("grad-batch", GY[:1], ValueError, r"grad_y must have the output's shape \(2, 3, 4, 4\) \(NHWC\), got \(1, 3, 4, 4\)"),
    ("grad-transposed", np.transpose(GY, (0, 3, 1, 2)), ValueError, r"grad_y must have the output's shape \(2, 3, 4, 4\)"),
    ("grad-complex", GY + 0j, TypeError, r"grad_y must hold real numbers .*complex128"),
    ("grad-object", GY.astype(object), TypeError, r"grad_y must hold real numbers .*object"),
    ("grad-str", "grad", TypeError, r"grad_y must hold real numbers .*<U4"),
]


@pytest.mark.parametrize("name, grad_y, error, pattern", GRAD_CASES, ids=_ids(GRAD_CASES))
def test_conv2d_backward_rejects_gradients(name, grad_y, error, pattern):
    with pytest.raises(error, match=pattern):
        cyconv.conv2d_backward(grad_y, X, K)


IM2COL_CASES = [
    ("x-None", dict(x=None), TypeError, r"x must be a 4-D array of real numbers, got None"),
    ("x-3d", dict(x=X[0]), ValueError, r"x must be 4-D, got shape \(5, 6, 3\)"),
    ("x-complex", dict(x=X + 0j), TypeError, r"x must hold real numbers .*complex128"),
    ("x-bool", dict(x=X > 0), TypeError, r"x must hold real numbers .*bool"),
    ("x-zero-height", dict(x=np.zeros((1, 0, 4, 2))), ValueError, r"input_shape\[1\] must be an integer in \[1, 2147483647\], got 0"),
    ("kernel_size-0", dict(kernel_size=0), ValueError, r"kernel_size must be an integer in \[1, 2147483647\], got 0"),
    ("kernel_size-negative", dict(kernel_size=(3, -1)), ValueError, r"kernel_size\[1\] must be an integer in \[1, .*got -1"),
    ("kernel_size-1-tuple", dict(kernel_size=(3,)), ValueError, r"kernel_size must be an int or a pair of ints \(height, width\), each >= 1, got \(3,\) of length 1"),
    ("kernel_size-None", dict(kernel_size=None), TypeError, r"kernel_size must be an int or a pair .*got None"),
    ("kernel_size-float", dict(kernel_size=3.0), TypeError, r"kernel_size must be an int or a pair .*got 3\.0 of type float"),
    ("kernel_size-str", dict(kernel_size="3"), TypeError, r"kernel_size must be an int or a pair .*got '3' of type str"),
    ("kernel_size-too-large", dict(kernel_size=6), ValueError, r"input height 5 .*smaller than the dilated kernel height 6"),
    ("strides-0", dict(strides=0), ValueError, r"strides must be an integer in \[1, "),
    ("strides-float", dict(strides=0.5), TypeError, r"strides must be an int or a pair .*0\.5"),
    ("dilations-negative", dict(dilations=-1), ValueError, r"dilations must be an integer in \[0, .*got -1"),
    ("padding-unknown", dict(padding="full"), ValueError, r"padding must be 'SAME', 'VALID'.*got 'full'"),
    ("padding-3-tuple", dict(padding=(0, 0, 0)), ValueError, r"padding must be 'SAME'.*of length 3"),
    ("padding-None", dict(padding=None), TypeError, r"padding must be 'SAME'.*None"),
    ("layout", dict(layout="CHWN"), ValueError, r"layout must be 'NHWC' or 'NCHW', got 'CHWN'"),
    ("pad_value", dict(pad_value="nan"), TypeError, r"pad_value must be a real number .*'nan' of type str"),
]


@pytest.mark.parametrize("name, overrides, error, pattern", IM2COL_CASES, ids=_ids(IM2COL_CASES))
def test_im2col_rejects(name, overrides, error, pattern):
    args = dict(x=X, kernel_size=3, strides=1, dilations=0, padding="VALID", layout="NHWC", pad_value=0.0)
    args.update(overrides)
    with pytest.raises(error, match=pattern):
        cyconv.im2col(args.pop("x"), args.pop("kernel_size"), **args)


COLS = np.zeros((2 * 3 * 4, 27))  # im2col(X, 3) in NHWC

COL2IM_CASES = [
    ("cols-None", dict(cols=None), TypeError, r"cols must be a 2-D array of real numbers, got None"),
    ("cols-shape", dict(cols=COLS[:-1]), ValueError, r"cols must have shape \(24, 27\) for input_shape \(2, 5, 6, 3\) in layout NHWC, got \(23, 27\)"),
    ("cols-transposed", dict(cols=COLS.T), ValueError, r"cols must have shape \(24, 27\) .*got \(27, 24\)"),
    ("cols-3d", dict(cols=COLS[None]), ValueError, r"cols must be 2-D, got shape \(1, 24, 27\)"),
    ("cols-nchw-shape", dict(cols=COLS, layout="NCHW", input_shape=(2, 3, 5, 6)), ValueError, r"cols must be 3-D, got shape \(24, 27\)"),
    ("cols-nchw-wrong", dict(cols=np.zeros((2, 27, 11)), layout="NCHW", input_shape=(2, 3, 5, 6)), ValueError, r"cols must have shape \(2, 27, 12\) for input_shape \(2, 3, 5, 6\) in layout NCHW, got \(2, 27, 11\)"),
    ("cols-complex", dict(cols=COLS + 0j), TypeError, r"cols must hold real numbers .*complex128"),
    ("cols-object", dict(cols=COLS.astype(object)), TypeError, r"cols must hold real numbers .*object"),
    ("cols-structured", dict(cols=structured((24, 27))), TypeError, r"cols must hold real numbers"),
    ("input_shape-None", dict(input_shape=None), ValueError, r"input_shape must be a 4-D shape \(N, H, W, C\) in layout NHWC, got None"),
    ("input_shape-3d", dict(input_shape=(5, 6, 3)), ValueError, r"input_shape must be a 4-D shape \(N, H, W, C\) in layout NHWC, got \(5, 6, 3\)"),
    ("input_shape-str", dict(input_shape="2563"), ValueError, r"input_shape must be a 4-D shape .*got '2563'"),
    ("input_shape-int", dict(input_shape=5), ValueError, r"input_shape must be a 4-D shape .*got 5"),
    ("input_shape-0d-array", dict(input_shape=np.array(5)), ValueError, r"input_shape must be a 4-D shape .*got array\(5\)"),
    ("input_shape-zero-channels", dict(input_shape=(2, 5, 6, 0)), ValueError, r"input_shape\[3\] must be an integer in \[1, 2147483647\], got 0"),
    ("input_shape-negative-batch", dict(input_shape=(-1, 5, 6, 3)), ValueError, r"input_shape\[0\] must be an integer in \[0, 2147483647\], got -1"),
    ("input_shape-float", dict(input_shape=(2, 5.0, 6, 3)), TypeError, r"input_shape\[1\] must be an integer, got 5\.0 of type float"),
    ("input_shape-None-entry", dict(input_shape=(2, None, 6, 3)), TypeError, r"input_shape\[1\] must be an integer, got None"),
    ("input_shape-too-large", dict(input_shape=(2, 2**31, 6, 3)), ValueError, r"input_shape\[1\] must be an integer in \[1, 2147483647\], got 2147483648"),
    ("kernel_size-0", dict(kernel_size=(3, 0)), ValueError, r"kernel_size\[1\] must be an integer in \[1, .*got 0"),
    ("kernel_size-too-large", dict(kernel_size=(3, 7)), ValueError, r"input width 6 .*smaller than the dilated kernel width 7"),
    ("strides-negative", dict(strides=-1), ValueError, r"strides must be an integer in \[1, .*got -1"),
    ("dilations-float", dict(dilations=1.0), TypeError, r"dilations must be an int or a pair .*1\.0"),
    ("padding-negative", dict(padding=((0, 0), (0, -1))), ValueError, r"padding\[1\]\[1\] must be an integer in \[0, .*got -1"),
    ("layout", dict(layout="nhw"), ValueError, r"layout must be 'NHWC' or 'NCHW', got 'nhw'"),
]


@pytest.mark.parametrize("name, overrides, error, pattern", COL2IM_CASES, ids=_ids(COL2IM_CASES))
def test_col2im_rejects(name, overrides, error, pattern):
    args = dict(cols=COLS, input_shape=X.shape, kernel_size=3, strides=1, dilations=0, padding="VALID", layout="NHWC")
    args.update(overrides)
    with pytest.raises(error, match=pattern):
        cyconv.col2im(args.pop("cols"), args.pop("input_shape"), args.pop("kernel_size"), **args)


# ----------------------------------------------------------------------------- Convolution layer

LAYER_CASES = [
    ("input_shape-None", dict(input_shape=None), ValueError, r"input_shape must be a 4-D shape \(N, H, W, C\) in layout NHWC, got None"),
    ("input_shape-3d", dict(input_shape=(5, 6, 3)), ValueError, r"input_shape must be a 4-D shape .*got \(5, 6, 3\)"),
    ("input_shape-zero-height", dict(input_shape=(1, 0, 6, 3)), ValueError, r"input_shape\[1\] must be an integer in \[1, .*got 0"),
    ("input_shape-float", dict(input_shape=(1, 5, 6, 3.0)), TypeError, r"input_shape\[3\] must be an integer, got 3\.0"),
    ("filters-0", dict(filters=0), ValueError, r"filters must be an integer in \[1, 2147483647\], got 0"),
    ("filters-negative", dict(filters=-4), ValueError, r"filters must be an integer in \[1, .*got -4"),
    ("filters-float", dict(filters=4.0), TypeError, r"filters must be an integer, got 4\.0 of type float"),
    ("filters-None", dict(filters=None), TypeError, r"filters must be an integer, got None"),
    ("filters-str", dict(filters="4"), TypeError, r"filters must be an integer, got '4' of type str"),
    ("kernel_size-0", dict(kernel_size=0), ValueError, r"kernel_size must be an integer in \[1, .*got 0"),
    ("kernel_size-3-tuple", dict(kernel_size=(3, 3, 3)), ValueError, r"kernel_size must be an int or a pair .*of length 3"),
    ("kernel_size-too-large", dict(kernel_size=7), ValueError, r"smaller than the dilated kernel height 7"),
    ("strides-0", dict(strides=(0, 1)), ValueError, r"strides\[0\] must be an integer in \[1, .*got 0"),
    ("strides-float", dict(strides=(1.5, 1)), TypeError, r"strides\[0\] must be an integer, got 1\.5"),
    ("dilations-negative", dict(dilations=(-1, 0)), ValueError, r"dilations\[0\] must be an integer in \[0, .*got -1"),
    ("padding-unknown", dict(padding="Full"), ValueError, r"padding must be 'SAME', 'VALID'.*got 'Full'"),
    ("padding-negative", dict(padding=-2), ValueError, r"padding must be an integer in \[0, .*got -2"),
    ("padding-nested", dict(padding=((1,), (1, 1))), ValueError, r"padding\[0\] must be an int or a pair .*got \(1,\) of length 1"),
    ("dtype-complex", dict(dtype=np.complex128), TypeError, r"dtype must be float32 or float64, got complex128"),
    ("dtype-int", dict(dtype=np.int32), TypeError, r"dtype must be float32 or float64, got int32"),
    ("dtype-float16", dict(dtype=np.float16), TypeError, r"dtype must be float32 or float64, got float16"),
]


def _layer(**overrides):
    args = dict(input_shape=(2, 5, 6, 3), filters=4, kernel_size=3)
    args.update(overrides)
    return cyconv.Convolution(args.pop("input_shape"), args.pop("filters"), args.pop("kernel_size"), seed=0, **args)


@pytest.mark.parametrize("name, overrides, error, pattern", LAYER_CASES, ids=_ids(LAYER_CASES))
def test_convolution_constructor_rejects(name, overrides, error, pattern):
    with pytest.raises(error, match=pattern):
        _layer(**overrides)


def test_convolution_bad_pad_value_is_refused_by_construction_or_forward():
    # The constructor does not check pad_value today (layers.py); forward must, before any kernel.
    with pytest.raises(TypeError, match=r"pad_value must be a real number .*got 'zero' of type str"):
        _layer(pad_value="zero", padding=1).forward(X)


@pytest.mark.parametrize(
    "value, error, pattern",
    [
        (None, TypeError, r"kernel must be a 4-D array of real numbers, got None"),
        (K[:, :, :, :2], ValueError, r"kernel must have shape \(4, 3, 3, 3\) \(filters, kh, kw, channels\), got \(4, 3, 3, 2\)"),
        (K[0], ValueError, r"kernel must be 4-D, got shape \(3, 3, 3\)"),
        (K.astype(complex), TypeError, r"kernel must hold real numbers .*complex128"),
        (K > 0, TypeError, r"kernel must hold real numbers .*bool"),
        ("kernel", TypeError, r"kernel must hold real numbers .*<U6"),
        (np.zeros((4, 3, 3, 3, 1)), ValueError, r"kernel must be 4-D, got shape \(4, 3, 3, 3, 1\)"),
    ],
    ids=["None", "channels", "3d", "complex", "bool", "str", "5d"],
)
def test_convolution_kernel_setter_rejects(value, error, pattern):
    layer = _layer()
    before = layer.kernel.copy()
    with pytest.raises(error, match=pattern):
        layer.kernel = value
    np.testing.assert_array_equal(layer.kernel, before)  # a refused assignment changes nothing


@pytest.mark.parametrize(
    "x, error, pattern",
    [
        (None, TypeError, r"x must be a 4-D array of real numbers, got None"),
        (X[0], ValueError, r"x must be 4-D, got shape \(5, 6, 3\)"),
        (X[:, :4], ValueError, r"x must have shape \(N, 5, 6, 3\) \(N, H, W, C\) for this layer, got \(2, 4, 6, 3\)"),
        (np.transpose(X, (0, 3, 1, 2)), ValueError, r"x must have shape \(N, 5, 6, 3\) .*got \(2, 3, 5, 6\)"),
        (X + 0j, TypeError, r"x must hold real numbers .*complex128"),
        (X.astype(object), TypeError, r"x must hold real numbers .*object"),
        ([[[[1, "x"]]]], TypeError, r"x must hold real numbers .*<U"),
    ],
    ids=["None", "3d", "height", "nchw", "complex", "object", "mixed-list"],
)
def test_convolution_forward_rejects(x, error, pattern):
    with pytest.raises(error, match=pattern):
        _layer().forward(x)


def test_convolution_backward_before_forward():
    with pytest.raises(ValueError, match=r"backward\(\) needs the input of a forward\(\) call first"):
        _layer().backward(GY)


@pytest.mark.parametrize(
    "grad_y, error, pattern",
    [
        (None, TypeError, r"grad_y must be a 4-D array of real numbers, got None"),
        (GY[:, :, :3], ValueError, r"grad_y must have the output's shape \(2, 3, 4, 4\) \(NHWC\), got \(2, 3, 3, 4\)"),
        (GY[:1], ValueError, r"grad_y must have the output's shape \(2, 3, 4, 4\) \(NHWC\), got \(1, 3, 4, 4\)"),
        (GY + 1j, TypeError, r"grad_y must hold real numbers .*complex128"),
        ("grad", TypeError, r"grad_y must hold real numbers .*<U4"),
    ],
    ids=["None", "width", "batch", "complex", "str"],
)
def test_convolution_backward_rejects(grad_y, error, pattern):
    layer = _layer()
    layer.forward(X)
    with pytest.raises(error, match=pattern):
        layer.backward(grad_y)


def test_convolution_failed_forward_keeps_the_previous_cache():
    layer = _layer()
    layer.forward(X)
    expected = layer.backward(GY)
    with pytest.raises(ValueError):
        layer.forward(X[:, :4])
    np.testing.assert_array_equal(layer.backward(GY), expected)


# ----------------------------------------------------------------------------- inf / nan are data


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_nan_and_inf_in_data_propagate(layout):
    x = RNG.standard_normal((1, 6, 6, 2))
    x[0, 1, 1, 0] = np.nan
    x[0, 4, 5, 1] = np.inf
    k = RNG.standard_normal((2, 2, 2, 2))
    expected = conv2d_reference(x, k, None, (1, 1), (0, 0), ((0, 0), (0, 0)))
    assert np.isnan(expected).any() and np.isfinite(expected).any()
    xs, ks = (x, k) if layout == "NHWC" else (nchw(x), nchw(k))
    y = cyconv.conv2d(xs, ks, layout=layout)
    y = y if layout == "NHWC" else np.transpose(y, (0, 2, 3, 1))
    # NaN exactly where the reference has NaN, finite values equal elsewhere
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(y[finite], expected[finite], rtol=1e-12, atol=1e-12)
    # grad_kernel[f, i, j, c] sums the pixels tap (i, j) saw: NaN / inf where it saw one
    gx, gk, gb = cyconv.conv2d_backward(np.ones(y.shape if layout == "NHWC" else nchw(y).shape), xs, ks,
                                        layout=layout)
    gk = gk if layout == "NHWC" else np.transpose(gk, (0, 2, 3, 1))
    seen = np.array([[[x[:, i:i + 5, j:j + 5, c].sum() for c in range(2)] for j in range(2)] for i in range(2)])
    assert np.isnan(seen).any() and np.isinf(seen).any() and np.isfinite(seen).any()
    np.testing.assert_allclose(gk, np.broadcast_to(seen, gk.shape), rtol=1e-12)
    assert np.isfinite(gb).all() and np.isfinite(gx).all()  # neither depends on x


def test_nan_and_inf_pad_value_propagate():
    x = RNG.standard_normal((1, 3, 3, 1))
    k = np.ones((1, 3, 3, 1))
    y = cyconv.conv2d(x, k, padding=1, pad_value=np.inf)
    assert np.isposinf(y[0, [0, 0, 2], [0, 2, 1], 0]).all()  # borders touch the padding
    assert y[0, 1, 1, 0] == pytest.approx(x.sum())
    y = cyconv.conv2d(x, k, padding="SAME", pad_value=float("nan"))
    assert np.isnan(y[0, 0, 0, 0]) and np.isfinite(y[0, 1, 1, 0])


def test_nan_gradient_propagates():
    gy = np.zeros((1, 3, 3, 1))
    gy[0, 1, 1, 0] = np.nan
    gx, gk, gb = cyconv.conv2d_backward(gy, np.ones((1, 5, 5, 1)), np.ones((1, 3, 3, 1)))
    assert np.isnan(gx[0, 1:4, 1:4, 0]).all() and not np.isnan(gx[0, 0, :, 0]).any()
    assert np.isnan(gk).all() and np.isnan(gb).all()


# ----------------------------------------------------------------------------- astronomically large

HUGE = 2**31 - 1
ONE = np.ones((1, 1, 1, 1))


def _virtual(shape):
    """An array of `shape` that takes no memory (a broadcast view of one zero)."""
    return np.broadcast_to(np.zeros((1,) * len(shape)), shape)


HUGE_CASES = [
    ("conv2d-padding", lambda: cyconv.conv2d(ONE, ONE, padding=HUGE), MemoryError, r"conv2d of x \(1, 1, 1, 1\) .*output 4294967295 x 4294967295.*would need \d+ bytes"),
    ("conv2d-padding-mid", lambda: cyconv.conv2d(ONE, ONE, padding=10**7), MemoryError, r"output 20000001 x 20000001.*more than the \d+ bytes .* of memory"),
    ("conv2d-padding-pair", lambda: cyconv.conv2d(ONE, ONE, padding=((0, HUGE), (0, HUGE))), MemoryError, r"would need"),
    ("conv2d-padding-over", lambda: cyconv.conv2d(ONE, ONE, padding=2**63), ValueError, r"padding must be an integer in \[0, 2147483647\]"),
    ("conv2d-batch", lambda: cyconv.conv2d(_virtual((2**40, 1, 1, 1)), ONE), ValueError, r"the batch size of x \(N, H, W, C\) must be in \[0, 2147483647\], got 1099511627776"),
    ("conv2d-batch-memory", lambda: cyconv.conv2d(_virtual((HUGE, 64, 64, 1)), ONE), MemoryError, r"would need"),
    ("conv2d-channels", lambda: cyconv.conv2d(_virtual((1, 1, 1, 2**33)), _virtual((1, 1, 1, 2**33))), ValueError, r"the channels of x .*got 8589934592"),
    ("conv2d-image", lambda: cyconv.conv2d(_virtual((1, 2**20, 2**20, 1)), np.ones((1, 3, 3, 1)), padding="SAME"), MemoryError, r"would need"),
    ("conv2d-workspace", lambda: cyconv.conv2d(_virtual((1, 2**16, 2**16, 1)), _virtual((1, 2**15, 2**15, 1)), padding="SAME"), MemoryError, r"would need"),
    ("conv2d-filters", lambda: cyconv.conv2d(ONE, _virtual((2**31 - 1, 1, 1, 1))), MemoryError, r"would need"),
    ("backward-padding", lambda: cyconv.conv2d_backward(ONE, ONE, ONE, padding=HUGE), MemoryError, r"would need"),
    ("im2col-padding", lambda: cyconv.im2col(ONE, 1, padding=HUGE), MemoryError, r"the patches of input_shape \(1, 1, 1, 1\) .*would need"),
    ("im2col-kernel", lambda: cyconv.im2col(_virtual((1, 2**16, 2**16, 1)), 2**16, padding="SAME"), MemoryError, r"would need"),
    ("im2col-dilations", lambda: cyconv.im2col(ONE, 2, dilations=HUGE, padding=HUGE), MemoryError, r"output 2147483647 x 2147483647"),
    ("col2im-input", lambda: cyconv.col2im(np.zeros((1, 1)), (1, HUGE, HUGE, 1), 1), MemoryError, r"the patches of input_shape \(1, 2147483647, 2147483647, 1\)"),
    ("col2im-virtual-cols", lambda: cyconv.col2im(_virtual((HUGE * 2**20, 1)), (1, HUGE, 2**20, 1), 1), MemoryError, r"would need"),
    ("col2im-batch", lambda: cyconv.col2im(np.zeros((1, 1)), (HUGE, HUGE, 1, 1), 1, layout="NCHW"), MemoryError, r"would need"),
    ("col2im-over", lambda: cyconv.col2im(np.zeros((1, 1)), (1, 2**40, 1, 1), 1), ValueError, r"input_shape\[1\] must be an integer in \[1, 2147483647\], got 1099511627776"),
    ("layer-input", lambda: cyconv.Convolution((1, HUGE, HUGE, 1), 1, 3), MemoryError, r"would need"),
    ("layer-channels", lambda: cyconv.Convolution((1, 1, 1, HUGE), 1, 1, padding=HUGE), MemoryError, r"would need"),
]


@pytest.mark.parametrize("name, call, error, pattern", HUGE_CASES, ids=_ids(HUGE_CASES))
def test_astronomical_geometries_are_refused_before_allocating(name, call, error, pattern):
    tracemalloc.start()
    try:
        with pytest.raises(error, match=pattern):
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak} bytes were allocated before the refusal"


def test_extreme_but_valid_strides_and_dilations_compute():
    """Sizes near the int limit that give a small output run and agree with the reference."""
    x, k = RNG.standard_normal((1, 3, 3, 1)), RNG.standard_normal((1, 3, 3, 1))
    # SAME with a dilation of 2**31 - 1 gaps: only the centre tap lands inside the image
    y = cyconv.conv2d(x, k, dilations=HUGE, padding="SAME")
    np.testing.assert_allclose(y, x * k[0, 1, 1, 0], rtol=1e-12)
    # a stride as large as the int limit: one output pixel, the top-left window
    y = cyconv.conv2d(x, k[:, :2, :2], strides=HUGE)
    np.testing.assert_allclose(y.ravel(), [np.sum(x[0, :2, :2, 0] * k[0, :2, :2, 0])], rtol=1e-12)
    # a huge one-sided padding at a huge stride: two outputs per axis, the second all padding
    y = cyconv.conv2d(x, k, strides=HUGE, padding=((0, HUGE), (0, HUGE)), pad_value=2.0)
    expected = conv2d_reference(x, k, None, (1, 1), (0, 0), ((0, 0), (0, 0)))[0, 0, 0, 0]
    assert y.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(y[0, 0, 0, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(y[0, 1, 1, 0], 2.0 * k.sum(), rtol=1e-12)
    for layout in ("NCHW",):
        y = cyconv.conv2d(nchw(x), nchw(k), dilations=HUGE, padding="SAME", layout=layout)
        np.testing.assert_allclose(y[:, 0], nchw(x * k[0, 1, 1, 0])[:, 0], rtol=1e-12)


def test_memory_limit_is_checked_before_allocation(monkeypatch):
    """With the limit lowered to 1 MiB, a 10 MiB problem is refused and nothing large is allocated."""
    monkeypatch.setattr(validation, "memory_limit", lambda: 2**20)
    x = np.ones((1, 64, 64, 8))  # 256 KiB input; cols 64*64*72*8 = 2.3 MiB
    cols = np.zeros((4096, 72))
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match=r"more than the 1048576 bytes"):
            cyconv.conv2d(x, np.ones((8, 3, 3, 8)), padding="SAME")
        with pytest.raises(MemoryError, match=r"the patches of input_shape \(1, 64, 64, 8\)"):
            cyconv.im2col(x, 3, padding="SAME")
        with pytest.raises(MemoryError, match=r"would need"):
            cyconv.col2im(cols, x.shape, 3, padding="SAME")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**19
    monkeypatch.undo()
    assert cyconv.conv2d(x, np.ones((8, 3, 3, 8)), padding="SAME").shape == (1, 64, 64, 8)


# ----------------------------------------------------------------------------- documents 000 / 002 API

compat = cyconv if hasattr(cyconv, "conv_forward") and hasattr(cyconv, "Conv") else None
XC = RNG.standard_normal((2, 3, 5, 5))  # NCHW
WC = RNG.standard_normal((4, 3, 3, 3))  # (F, C, fh, fw)
BC = np.zeros((4, 1))

COMPAT_CASES = [
    ("conv_forward-X-None", lambda: compat.conv_forward(None, WC, BC), TypeError, r"X must be a 4-D array of real numbers, got None"),
    ("conv_forward-X-3d", lambda: compat.conv_forward(XC[0], WC, BC), ValueError, r"X must be 4-D, got shape \(3, 5, 5\)"),
    ("conv_forward-X-complex", lambda: compat.conv_forward(XC + 0j, WC, BC), TypeError, r"X must hold real numbers .*complex128"),
    ("conv_forward-W-None", lambda: compat.conv_forward(XC, None, BC), TypeError, r"W must be a 4-D array of real numbers, got None"),
    ("conv_forward-W-channels", lambda: compat.conv_forward(XC, WC[:, :2], BC), ValueError, r"W has 2 input channels but X has 3: W shape \(4, 2, 3, 3\) is \(F, C, kh, kw\)"),
    ("conv_forward-b-shape", lambda: compat.conv_forward(XC, WC, np.zeros(3)), ValueError, r"b must have shape \(4, 1\) or \(4,\), one value per filter of W, got \(3,\)"),
    ("conv_forward-b-transposed", lambda: compat.conv_forward(XC, WC, np.zeros((1, 4))), ValueError, r"b must have shape \(4, 1\) or \(4,\).*got \(1, 4\)"),
    ("conv_forward-b-complex", lambda: compat.conv_forward(XC, WC, BC + 0j), TypeError, r"b must hold real numbers .*complex128"),
    ("conv_forward-stride-0", lambda: compat.conv_forward(XC, WC, BC, stride=0), ValueError, r"stride.* must be an integer in \[1, .*got 0"),
    ("conv_forward-stride-float", lambda: compat.conv_forward(XC, WC, BC, stride=1.0), TypeError, r"stride.* must be an int or a pair .*got 1\.0 of type float"),
    ("conv_forward-padding-negative", lambda: compat.conv_forward(XC, WC, BC, padding=-1), ValueError, r"padding must be an integer in \[0, .*got -1"),
    ("conv_forward-padding-None", lambda: compat.conv_forward(XC, WC, BC, padding=None), TypeError, r"padding must be .*got None"),
    ("conv_forward-inexact", lambda: compat.conv_forward(XC[..., :4, :4], WC, BC, stride=2, padding=1), ValueError, r"output height \(4 - 3 \+ 2\) / 2 \+ 1 = 2\.5 is not an integer"),
    ("conv_forward-huge-padding", lambda: compat.conv_forward(XC, WC, BC, padding=2**31 - 1), MemoryError, r"would need \d+ bytes"),
    ("conv_backward-cache-None", lambda: compat.conv_backward(np.zeros((2, 4, 5, 5)), None), TypeError, r"cache must be the cache returned by conv_forward, got NoneType"),
    ("conv_backward-cache-tuple", lambda: compat.conv_backward(np.zeros((2, 4, 5, 5)), (XC, WC, BC)), TypeError, r"cache must be the cache returned by conv_forward, got tuple"),
    ("conv_backward-dout-shape", lambda: compat.conv_backward(np.zeros((2, 4, 5, 4)), compat.conv_forward(XC, WC, BC)[1]), ValueError, r"dout must have the shape of conv_forward's out \(2, 4, 5, 5\) \(N, F, OH, OW\), got \(2, 4, 5, 4\)"),
    ("conv_backward-dout-None", lambda: compat.conv_backward(None, compat.conv_forward(XC, WC, BC)[1]), TypeError, r"dout must be a 4-D array of real numbers, got None"),
    ("conv_backward-dout-object", lambda: compat.conv_backward(np.zeros((2, 4, 5, 5), object), compat.conv_forward(XC, WC, BC)[1]), TypeError, r"dout must hold real numbers .*object"),
    ("im2col_indices-x-None", lambda: compat.im2col_indices(None, 3, 3), TypeError, r"x must be a 4-D array of real numbers, got None"),
    ("im2col_indices-x-3d", lambda: compat.im2col_indices(XC[0], 3, 3), ValueError, r"x must be 4-D, got shape \(3, 5, 5\)"),
    ("im2col_indices-field-0", lambda: compat.im2col_indices(XC, 0, 3), ValueError, r"field_height must be an integer in \[1, .*got 0"),
    ("im2col_indices-field-float", lambda: compat.im2col_indices(XC, 3, 3.0), TypeError, r"field_width must be an integer, got 3\.0 of type float"),
    ("im2col_indices-field-too-large", lambda: compat.im2col_indices(XC, 8, 3), ValueError, r"input height 5 with padding \(1, 1\) is smaller than the dilated kernel height 8"),
    ("im2col_indices-padding", lambda: compat.im2col_indices(XC, 3, 3, padding=-1), ValueError, r"padding must be an integer in \[0, .*got -1"),
    ("im2col_indices-inexact", lambda: compat.im2col_indices(XC, 2, 2, padding=0, stride=2), ValueError, r"output height \(5 - 2 \+ 0\) / 2 \+ 1 = 2\.5 is not an integer"),
    ("im2col_indices-huge", lambda: compat.im2col_indices(_virtual((1, 1, 2**20, 2**20)), 3, 3), MemoryError, r"would need"),
    ("col2im_indices-cols-shape", lambda: compat.col2im_indices(np.zeros((27, 49)), XC.shape), ValueError, r"cols must have shape \(27, 50\) \(C \* fh \* fw, OH \* OW \* N\) for x_shape \(2, 3, 5, 5\), got \(27, 49\)"),
    ("col2im_indices-cols-None", lambda: compat.col2im_indices(None, XC.shape), TypeError, r"cols must be a 2-D array of real numbers, got None"),
    ("col2im_indices-cols-complex", lambda: compat.col2im_indices(np.zeros((27, 50), complex), XC.shape), TypeError, r"cols must hold real numbers .*complex128"),
    ("col2im_indices-x_shape-None", lambda: compat.col2im_indices(np.zeros((27, 50)), None), ValueError, r"x_shape must be .*\(N, C, H, W\).*got None"),
    ("col2im_indices-x_shape-3d", lambda: compat.col2im_indices(np.zeros((27, 50)), (3, 5, 5)), ValueError, r"x_shape must be .*\(N, C, H, W\).*got \(3, 5, 5\)"),
    ("col2im_indices-x_shape-zero", lambda: compat.col2im_indices(np.zeros((0, 50)), (2, 0, 5, 5)), ValueError, r"\[1\] must be an integer in \[1, .*got 0"),
    ("col2im_indices-x_shape-huge", lambda: compat.col2im_indices(np.zeros((27, 50)), (1, 1, HUGE, HUGE)), (ValueError, MemoryError), r"x_shape|would need"),
    ("Conv-X_dim-None", lambda: compat.Conv(None, 4, 3, 3, 1, 1), ValueError, r"X_dim must be \(C, H, W\), the shape of one input image, got None"),
    ("Conv-X_dim-2d", lambda: compat.Conv((3, 5), 4, 3, 3, 1, 1), ValueError, r"X_dim must be \(C, H, W\).*got \(3, 5\)"),
    ("Conv-X_dim-zero", lambda: compat.Conv((3, 0, 5), 4, 3, 3, 1, 1), ValueError, r"X_dim\[1\] must be an integer in \[1, .*got 0"),
    ("Conv-n_filter-0", lambda: compat.Conv((3, 5, 5), 0, 3, 3, 1, 1), ValueError, r"n_filter must be an integer in \[1, .*got 0"),
    ("Conv-h_filter-float", lambda: compat.Conv((3, 5, 5), 4, 3.0, 3, 1, 1), TypeError, r"h_filter must be an integer, got 3\.0 of type float"),
    ("Conv-w_filter-None", lambda: compat.Conv((3, 5, 5), 4, 3, None, 1, 1), TypeError, r"w_filter must be an integer, got None"),
    ("Conv-stride-0", lambda: compat.Conv((3, 5, 5), 4, 3, 3, 0, 1), ValueError, r"stride.* must be an integer in \[1, .*got 0"),
    ("Conv-padding-negative", lambda: compat.Conv((3, 5, 5), 4, 3, 3, 1, -1), ValueError, r"padding must be an integer in \[0, .*got -1"),
    ("Conv-inexact", lambda: compat.Conv((3, 5, 5), 4, 2, 2, 2, 0), ValueError, r"output height \(5 - 2 \+ 0\) / 2 \+ 1 = 2\.5 is not an integer"),
]


needs_compat = pytest.mark.skipif(compat is None, reason="the documents' API is not in cyconv yet")


@needs_compat
@pytest.mark.parametrize("name, call, error, pattern", COMPAT_CASES, ids=_ids(COMPAT_CASES))
def test_document_api_rejects(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@needs_compat
def test_document_layer_rejects_bad_calls():
    layer = compat.Conv((3, 5, 5), 4, 3, 3, 1, 1, seed=0)
    with pytest.raises(ValueError, match=r"backward\(\) needs the input of a forward\(\) call first"):
        layer.backward(np.zeros((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"X must have shape \(N, 3, 5, 5\) \(N, C, H, W\) for this layer, got \(2, 2, 5, 5\)"):
        layer.forward(XC[:, :2])
    with pytest.raises(TypeError, match=r"X must be a 4-D array of real numbers, got None"):
        layer.forward(None)
    layer.forward(XC)
    with pytest.raises(ValueError, match=r"dout must have the shape of conv_forward's out \(2, 4, 5, 5\)"):
        layer.backward(np.zeros((2, 4, 5, 4)))
    with pytest.raises(ValueError, match=r"W must have shape \(4, 3, 3, 3\), got \(4, 3, 3\)"):
        layer.W = np.zeros((4, 3, 3))
    with pytest.raises(TypeError, match=r"W must hold real numbers .*complex128"):
        layer.W = np.zeros((4, 3, 3, 3), complex)
    with pytest.raises(ValueError, match=r"b must have shape \(4, 1\), got \(4,\)"):
        layer.b = np.zeros(4)


# Once defects of the document API (found by this file, since fixed): bias and shape arguments of
# the wrong kind are named in the error.
COMPAT_DEFECTS = [
    ("conv_forward-b-None", lambda: compat.conv_forward(XC, WC, None), TypeError, r"b must be .*got None"),
    ("conv_forward-b-str", lambda: compat.conv_forward(XC, WC, "abcd"), TypeError, r"b must .*real numbers"),
    ("conv_forward-b-ragged", lambda: compat.conv_forward(XC, WC, [[1], [2, 3], [4], [5]]), TypeError, r"\bb\b.*must"),
    ("col2im_indices-x_shape-0d", lambda: compat.col2im_indices(np.zeros((27, 50)), np.array(3)), ValueError, r"x_shape must be"),
    ("Conv-X_dim-0d", lambda: compat.Conv(np.array(3), 4, 3, 3, 1, 1), ValueError, r"X_dim must be"),
]


@needs_compat
@pytest.mark.parametrize("name, call, error, pattern", COMPAT_DEFECTS, ids=_ids(COMPAT_DEFECTS))
def test_document_api_names_bad_arguments(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
