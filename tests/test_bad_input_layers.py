"""Hostile arguments to document 001's Convolution layer (constructor, kernel assignment, forward,
backward), refused with a ValueError / TypeError that leaves the layer as it was.

Every message names the argument, what it got and what was expected, and the error comes before
any kernel runs: the compiled kernels have no bounds checks, so a case missing here is a potential
memory corruption. helpers.py holds the valid problem (X, K, B, GY) whose arguments are corrupted.
"""
import numpy as np
import pytest

import cyconv
from helpers import GY, K, X, case_ids

LAYER_CASES = [
    ("input_shape-None", dict(input_shape=None), ValueError,
     r"input_shape must be a 4-D shape \(N, H, W, C\) in layout NHWC, got None"),
    ("input_shape-3d", dict(input_shape=(5, 6, 3)), ValueError,
     r"input_shape must be a 4-D shape .*got \(5, 6, 3\)"),
    ("input_shape-zero-height", dict(input_shape=(1, 0, 6, 3)), ValueError,
     r"input_shape\[1\] must be an integer in \[1, .*got 0"),
    ("input_shape-float", dict(input_shape=(1, 5, 6, 3.0)), TypeError,
     r"input_shape\[3\] must be an integer, got 3\.0"),
    ("filters-0", dict(filters=0), ValueError,
     r"filters must be an integer in \[1, 2147483647\], got 0"),
    ("filters-negative", dict(filters=-4), ValueError,
     r"filters must be an integer in \[1, .*got -4"),
    ("filters-float", dict(filters=4.0), TypeError,
     r"filters must be an integer, got 4\.0 of type float"),
    ("filters-None", dict(filters=None), TypeError, r"filters must be an integer, got None"),
    ("filters-str", dict(filters="4"), TypeError,
     r"filters must be an integer, got '4' of type str"),
    ("kernel_size-0", dict(kernel_size=0), ValueError,
     r"kernel_size must be an integer in \[1, .*got 0"),
    ("kernel_size-3-tuple", dict(kernel_size=(3, 3, 3)), ValueError,
     r"kernel_size must be an int or a pair .*of length 3"),
    ("kernel_size-too-large", dict(kernel_size=7), ValueError,
     r"smaller than the dilated kernel height 7"),
    ("strides-0", dict(strides=(0, 1)), ValueError,
     r"strides\[0\] must be an integer in \[1, .*got 0"),
    ("strides-float", dict(strides=(1.5, 1)), TypeError,
     r"strides\[0\] must be an integer, got 1\.5"),
    ("dilations-negative", dict(dilations=(-1, 0)), ValueError,
     r"dilations\[0\] must be an integer in \[0, .*got -1"),
    ("padding-unknown", dict(padding="Full"), ValueError,
     r"padding must be 'SAME', 'VALID'.*got 'Full'"),
    ("padding-negative", dict(padding=-2), ValueError,
     r"padding must be an integer in \[0, .*got -2"),
    ("padding-nested", dict(padding=((1,), (1, 1))), ValueError,
     r"padding\[0\] must be an int or a pair .*got \(1,\) of length 1"),
    ("dtype-complex", dict(dtype=np.complex128), TypeError,
     r"dtype must be float32 or float64, got complex128"),
    ("dtype-int", dict(dtype=np.int32), TypeError, r"dtype must be float32 or float64, got int32"),
    ("dtype-float16", dict(dtype=np.float16), TypeError,
     r"dtype must be float32 or float64, got float16"),
]


def _layer(**overrides):
    args = dict(input_shape=(2, 5, 6, 3), filters=4, kernel_size=3)
    args.update(overrides)
    return cyconv.Convolution(args.pop("input_shape"), args.pop("filters"), args.pop("kernel_size"),
                              seed=0, **args)


@pytest.mark.parametrize("name, overrides, error, pattern", LAYER_CASES, ids=case_ids(LAYER_CASES))
def test_convolution_constructor_rejects(name, overrides, error, pattern):
    with pytest.raises(error, match=pattern):
        _layer(**overrides)


def test_convolution_bad_pad_value_is_refused_by_construction_or_forward():
    # The constructor does not check pad_value today (layers.py); forward must, before any kernel.
    with pytest.raises(TypeError,
                       match=r"pad_value must be a real number .*got 'zero' of type str"):
        _layer(pad_value="zero", padding=1).forward(X)


@pytest.mark.parametrize(
    "value, error, pattern",
    [
        (None, TypeError, r"kernel must be a 4-D array of real numbers, got None"),
        (K[:, :, :, :2], ValueError,
         r"kernel must have shape \(4, 3, 3, 3\) \(filters, kh, kw, channels\), "
         r"got \(4, 3, 3, 2\)"),
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
        (X[:, :4], ValueError,
         r"x must have shape \(N, 5, 6, 3\) \(N, H, W, C\) for this layer, got \(2, 4, 6, 3\)"),
        (np.transpose(X, (0, 3, 1, 2)), ValueError,
         r"x must have shape \(N, 5, 6, 3\) .*got \(2, 3, 5, 6\)"),
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
    with pytest.raises(ValueError,
                       match=r"backward\(\) needs the input of a forward\(\) call first"):
        _layer().backward(GY)


@pytest.mark.parametrize(
    "grad_y, error, pattern",
    [
        (None, TypeError, r"grad_y must be a 4-D array of real numbers, got None"),
        (GY[:, :, :3], ValueError,
         r"grad_y must have the output's shape \(2, 3, 4, 4\) \(NHWC\), got \(2, 3, 3, 4\)"),
        (GY[:1], ValueError,
         r"grad_y must have the output's shape \(2, 3, 4, 4\) \(NHWC\), got \(1, 3, 4, 4\)"),
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
