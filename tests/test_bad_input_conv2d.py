"""Hostile arguments to conv2d and conv2d_backward, refused with a ValueError / TypeError; and
inf / nan in the data, which are not errors but propagate.

Every message names the argument, what it got and what was expected, and the error comes before
any kernel runs: the compiled kernels have no bounds checks, so a case missing here is a potential
memory corruption. helpers.py holds the valid problem (X, K, B, GY) whose arguments are corrupted.
"""
import numpy as np
import pytest

import cyconv
from helpers import B, GY, LAYOUTS, K, X, case_ids, from_layout, structured, to_layout
from reference import conv2d_reference, nchw

# (id, keyword overrides of a valid conv2d call, exception, message pattern)

# (id, keyword overrides of a valid conv2d call, exception, message pattern)
CONV2D_CASES = [
    # x
    ("x-None", dict(x=None), TypeError, r"x must be a 4-D array of real numbers, got None"),
    ("x-str", dict(x="abc"), TypeError, r"x must hold real numbers .*got dtype <U3"),
    ("x-3d", dict(x=X[0]), ValueError, r"x must be 4-D, got shape \(5, 6, 3\) \(3-D\)"),
    ("x-5d", dict(x=X[None]), ValueError, r"x must be 4-D, got shape \(1, 2, 5, 6, 3\) \(5-D\)"),
    ("x-scalar", dict(x=1.0), ValueError, r"x must be 4-D, got shape \(\) \(0-D\)"),
    ("x-mixed-list", dict(x=[[[[1.0, "a", 2]]]]), TypeError,
     r"x must hold real numbers .*got dtype <U"),
    ("x-ragged", dict(x=[[[[1.0], [1.0, 2.0]]]]), TypeError,
     r"x must be a 4-D array of real numbers, got \[\[\[\[1\.0\]"),
    ("x-complex", dict(x=X.astype(complex)), TypeError,
     r"x must hold real numbers \(float32, float64 or integers\), got dtype complex128"),
    ("x-object", dict(x=X.astype(object)), TypeError,
     r"x must hold real numbers .*got dtype object"),
    ("x-bool", dict(x=X > 0), TypeError, r"x must hold real numbers .*got dtype bool"),
    ("x-structured", dict(x=structured((2, 5, 6, 3))), TypeError,
     r"x must hold real numbers .*got dtype \[\('a'"),
    ("x-datetime", dict(x=np.zeros((2, 5, 6, 3), "datetime64[s]")), TypeError,
     r"x must hold real numbers .*datetime64"),
    ("x-bytes", dict(x=np.zeros((2, 5, 6, 3), "S2")), TypeError,
     r"x must hold real numbers .*got dtype \|S2"),
    ("x-zero-height", dict(x=np.zeros((2, 0, 6, 3))), ValueError,
     r"the height of x \(N, H, W, C\) must be in \[1, 2147483647\], got 0 "
     r"\(shape \(2, 0, 6, 3\)\)"),
    ("x-zero-width", dict(x=np.zeros((2, 5, 0, 3))), ValueError, r"the width of x .*got 0"),
    ("x-zero-channels", dict(x=np.zeros((2, 5, 6, 0)), kernel=np.zeros((4, 3, 3, 0))), ValueError,
     r"x must have at least one channel, got x shape \(2, 5, 6, 0\)"),
    # kernel
    ("kernel-None", dict(kernel=None), TypeError,
     r"kernel must be a 4-D array of real numbers, got None"),
    ("kernel-3d", dict(kernel=K[0]), ValueError, r"kernel must be 4-D, got shape \(3, 3, 3\)"),
    ("kernel-complex", dict(kernel=K * 1j), TypeError,
     r"kernel must hold real numbers .*complex128"),
    ("kernel-channels", dict(kernel=K[..., :2]), ValueError,
     r"kernel has 2 input channels but x has 3: kernel shape \(4, 3, 3, 2\) is \(F, kh, kw, C\)"),
    ("kernel-no-filters", dict(kernel=K[:0], bias=None), ValueError,
     r"kernel must have at least one filter, got kernel shape \(0, 3, 3, 3\)"),
    ("kernel-zero-height", dict(kernel=np.zeros((4, 0, 3, 3))), ValueError,
     r"the height of kernel \(F, kh, kw, C\) must be in \[1, .*got 0"),
    ("kernel-too-large-valid", dict(kernel=np.zeros((4, 6, 3, 3))), ValueError,
     r"input height 5 with padding \(0, 0\) is smaller than the dilated kernel height 6; expected "
     r"an input height of at least 6"),
    ("kernel-dilated-too-large", dict(dilations=(0, 2)), ValueError,
     r"input width 6 with padding \(0, 0\) is smaller than the dilated kernel width 7"),
    # bias
    ("bias-short", dict(bias=B[:3]), ValueError,
     r"bias must have shape \(4,\) \(one value per filter\), got \(3,\)"),
    ("bias-2d", dict(bias=B[:, None]), ValueError, r"bias must be 1-D, got shape \(4, 1\)"),
    ("bias-complex", dict(bias=B + 0j), TypeError, r"bias must hold real numbers .*complex128"),
    ("bias-str", dict(bias="bias"), TypeError, r"bias must hold real numbers .*<U4"),
    # strides
    ("strides-0", dict(strides=0), ValueError,
     r"strides must be an integer in \[1, 2147483647\], got 0"),
    ("strides-negative", dict(strides=-2), ValueError,
     r"strides must be an integer in \[1, 2147483647\], got -2"),
    ("strides-float", dict(strides=1.5), TypeError,
     r"strides must be an int or a pair of ints \(height, width\), each >= 1, got 1\.5 of type "
     r"float"),
    ("strides-integral-float", dict(strides=2.0), TypeError,
     r"strides must be an int or a pair .*got 2\.0 of type float"),
    ("strides-numpy-float", dict(strides=np.float64(2)), TypeError,
     r"strides must be an int or a pair .*got np\.float64\(2\.0\)"),
    ("strides-str", dict(strides="2"), TypeError,
     r"strides must be an int or a pair .*got '2' of type str"),
    ("strides-None", dict(strides=None), TypeError,
     r"strides must be an int or a pair .*got None of type NoneType"),
    ("strides-bool", dict(strides=True), TypeError,
     r"strides must be an integer, got True of type bool"),
    ("strides-set", dict(strides={1, 2}), TypeError,
     r"strides must be an int or a pair .*got \{1, 2\} of type set"),
    ("strides-1-tuple", dict(strides=(1,)), ValueError,
     r"strides must be an int or a pair .*got \(1,\) of length 1"),
    ("strides-3-tuple", dict(strides=(1, 1, 1)), ValueError,
     r"strides must be an int or a pair .*got \(1, 1, 1\) of length 3"),
    ("strides-pair-zero", dict(strides=(1, 0)), ValueError,
     r"strides\[1\] must be an integer in \[1, 2147483647\], got 0"),
    ("strides-pair-float", dict(strides=(1, 1.0)), TypeError,
     r"strides\[1\] must be an integer, got 1\.0 of type float"),
    ("strides-pair-nested", dict(strides=((1, 1), 1)), TypeError,
     r"strides\[0\] must be an integer, got \(1, 1\) of type tuple"),
    ("strides-too-large", dict(strides=2**31), ValueError,
     r"strides must be an integer in \[1, 2147483647\], got 2147483648"),
    ("strides-int64-too-large", dict(strides=np.int64(2**62)), ValueError,
     r"strides must be an integer in \[1, 2147483647\], got 4611686018427387904"),
    # dilations
    ("dilations-negative", dict(dilations=-1), ValueError,
     r"dilations must be an integer in \[0, 2147483647\], got -1"),
    ("dilations-pair-negative", dict(dilations=(0, -3)), ValueError,
     r"dilations\[1\] must be an integer in \[0, 2147483647\], got -3"),
    ("dilations-float", dict(dilations=0.5), TypeError,
     r"dilations must be an int or a pair .*got 0\.5 of type float"),
    ("dilations-None", dict(dilations=None), TypeError,
     r"dilations must be an int or a pair .*got None"),
    # padding
    ("padding-unknown-str", dict(padding="FULL"), ValueError,
     r"padding must be 'SAME', 'VALID', an int, \(ph, pw\) or \(\(top, bottom\), \(left, right\)\) "
     r"of ints >= 0, got 'FULL'"),
    ("padding-empty-str", dict(padding=""), ValueError, r"padding must be 'SAME', 'VALID'.*got ''"),
    ("padding-padded-str", dict(padding="SAME "), ValueError,
     r"padding must be 'SAME', 'VALID'.*got 'SAME '"),
    ("padding-bytes", dict(padding=b"SAME"), TypeError,
     r"padding must be 'SAME', 'VALID'.*got b'SAME' of type bytes"),
    ("padding-negative", dict(padding=-1), ValueError,
     r"padding must be an integer in \[0, 2147483647\], got -1"),
    ("padding-pair-negative", dict(padding=(1, -1)), ValueError,
     r"padding\[1\] must be an integer in \[0, .*got -1"),
    ("padding-3-tuple", dict(padding=(1, 1, 1)), ValueError,
     r"padding must be 'SAME', 'VALID'.*got \(1, 1, 1\) of length 3"),
    ("padding-nested-3", dict(padding=((1, 1), (1, 1), (1, 1))), ValueError,
     r"padding must be 'SAME'.*of length 3"),
    ("padding-nested-short", dict(padding=((1, 2), (3,))), ValueError,
     r"padding\[1\] must be an int or a pair of ints \(height, width\), each >= 0, got \(3,\) of "
     r"length 1"),
    ("padding-nested-long", dict(padding=((1, 2, 3), (1, 2))), ValueError,
     r"padding\[0\] must be an int or a pair .*got \(1, 2, 3\) of length 3"),
    ("padding-nested-mixed", dict(padding=((1, 2), 3)), ValueError,
     r"padding must be 'SAME'.*got \(\(1, 2\), 3\), a mix of both forms"),
    ("padding-nested-negative", dict(padding=((1, 2), (3, -4))), ValueError,
     r"padding\[1\]\[1\] must be an integer in \[0, .*got -4"),
    ("padding-nested-float", dict(padding=((1, 2.5), (3, 4))), TypeError,
     r"padding\[0\]\[1\] must be an integer, got 2\.5 of type float"),
    ("padding-float", dict(padding=1.5), TypeError,
     r"padding must be 'SAME', 'VALID'.*got 1\.5 of type float"),
    ("padding-pair-float", dict(padding=(1.0, 1)), TypeError,
     r"padding\[0\] must be an integer, got 1\.0 of type float"),
    ("padding-None", dict(padding=None), TypeError,
     r"padding must be 'SAME', 'VALID'.*got None of type NoneType"),
    ("padding-bool", dict(padding=False), TypeError,
     r"padding must be an integer, got False of type bool"),
    ("padding-set", dict(padding={1, 2}), TypeError,
     r"padding must be 'SAME'.*got \{1, 2\} of type set"),
    ("padding-dict", dict(padding={0: 1, 1: 1}), TypeError,
     r"padding must be 'SAME'.*of type dict"),
    ("padding-too-large", dict(padding=2**31), ValueError,
     r"padding must be an integer in \[0, 2147483647\], got 2147483648"),
    # layout, pad_value
    ("layout-unknown", dict(layout="NWHC"), ValueError,
     r"layout must be 'NHWC' or 'NCHW', got 'NWHC'"),
    ("layout-None", dict(layout=None), ValueError, r"layout must be 'NHWC' or 'NCHW', got None"),
    ("layout-int", dict(layout=1), ValueError, r"layout must be 'NHWC' or 'NCHW', got 1"),
    ("pad_value-str", dict(pad_value="0"), TypeError,
     r"pad_value must be a real number \(int or float\), got '0' of type str"),
    ("pad_value-None", dict(pad_value=None), TypeError,
     r"pad_value must be a real number .*got None"),
    ("pad_value-complex", dict(pad_value=1j), TypeError,
     r"pad_value must be a real number .*got 1j of type complex"),
    ("pad_value-list", dict(pad_value=[0.0]), TypeError,
     r"pad_value must be a real number .*got \[0\.0\] of type list"),
    ("pad_value-bool", dict(pad_value=True), TypeError,
     r"pad_value must be a real number .*got True of type bool"),
]



def _conv2d_args(overrides):
    args = dict(x=X, kernel=K, bias=B, strides=1, dilations=0, padding="VALID", layout="NHWC",
                pad_value=0.0)
    args.update(overrides)
    return args


@pytest.mark.parametrize("name, overrides, error, pattern", CONV2D_CASES,
                        ids=case_ids(CONV2D_CASES))
def test_conv2d_rejects(name, overrides, error, pattern):
    args = _conv2d_args(overrides)
    with pytest.raises(error, match=pattern):
        cyconv.conv2d(args.pop("x"), args.pop("kernel"), args.pop("bias"), **args)


# conv2d_backward has no bias argument
BACKWARD_CASES = [case for case in CONV2D_CASES if not case[0].startswith("bias")]


@pytest.mark.parametrize("name, overrides, error, pattern", BACKWARD_CASES,
                        ids=case_ids(BACKWARD_CASES))
def test_conv2d_backward_rejects(name, overrides, error, pattern):
    args = _conv2d_args(overrides)
    del args["bias"]
    with pytest.raises(error, match=pattern):
        cyconv.conv2d_backward(GY, args.pop("x"), args.pop("kernel"), **args)


def test_nchw_names_its_own_layout():
    with pytest.raises(ValueError, match=r"kernel has 3 input channels but x has 5: kernel shape "
                                         r"\(4, 3, 3, 3\) is \(F, C, kh, kw\) in layout NCHW"):
        cyconv.conv2d(X, K, layout="NCHW")  # X read as (N=2, C=5, H=6, W=3)
    with pytest.raises(ValueError, match=r"the height of x \(N, C, H, W\) must be in \[1, .*got 0"):
        cyconv.conv2d(np.zeros((1, 3, 0, 4)), nchw(K), layout="nchw")


GRAD_CASES = [
    ("grad-None", None, TypeError, r"grad_y must be a 4-D array of real numbers, got None"),
    ("grad-3d", GY[0], ValueError, r"grad_y must be 4-D, got shape \(3, 4, 4\)"),
    ("grad-shape", GY[:, :2], ValueError,
     r"grad_y must have the output's shape \(2, 3, 4, 4\) \(NHWC\), got \(2, 2, 4, 4\)"),
    ("grad-batch", GY[:1], ValueError,
     r"grad_y must have the output's shape \(2, 3, 4, 4\) \(NHWC\), got \(1, 3, 4, 4\)"),
    ("grad-transposed", np.transpose(GY, (0, 3, 1, 2)), ValueError,
     r"grad_y must have the output's shape \(2, 3, 4, 4\)"),
    ("grad-complex", GY + 0j, TypeError, r"grad_y must hold real numbers .*complex128"),
    ("grad-object", GY.astype(object), TypeError, r"grad_y must hold real numbers .*object"),
    ("grad-str", "grad", TypeError, r"grad_y must hold real numbers .*<U4"),
]


@pytest.mark.parametrize("name, grad_y, error, pattern", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_conv2d_backward_rejects_gradients(name, grad_y, error, pattern):
    with pytest.raises(error, match=pattern):
        cyconv.conv2d_backward(grad_y, X, K)


# ----------------------------------------------------------------------------- inf / nan are data


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nan_and_inf_in_data_propagate(layout):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 6, 6, 2))
    x[0, 1, 1, 0] = np.nan
    x[0, 4, 5, 1] = np.inf
    k = rng.standard_normal((2, 2, 2, 2))
    expected = conv2d_reference(x, k, None, (1, 1), (0, 0), ((0, 0), (0, 0)))
    assert np.isnan(expected).any() and np.isfinite(expected).any()
    xs, ks = to_layout(x, layout), to_layout(k, layout)
    y = from_layout(cyconv.conv2d(xs, ks, layout=layout), layout)
    # NaN exactly where the reference has NaN, finite values equal elsewhere
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(y[finite], expected[finite], rtol=1e-12, atol=1e-12)
    # grad_kernel[f, i, j, c] sums the pixels tap (i, j) saw: NaN / inf where it saw one
    gx, gk, gb = cyconv.conv2d_backward(np.ones(to_layout(y, layout).shape), xs, ks, layout=layout)
    gk = from_layout(gk, layout)
    seen = np.array([[[x[:, i:i + 5, j:j + 5, c].sum() for c in range(2)] for j in range(2)]
                     for i in range(2)])
    assert np.isnan(seen).any() and np.isinf(seen).any() and np.isfinite(seen).any()
    np.testing.assert_allclose(gk, np.broadcast_to(seen, gk.shape), rtol=1e-12)
    assert np.isfinite(gb).all() and np.isfinite(gx).all()  # neither depends on x


def test_nan_and_inf_pad_value_propagate():
    x = np.random.default_rng(2).standard_normal((1, 3, 3, 1))
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
