"""Hostile arguments to the documents' API: document 002's conv_forward / conv_backward /
im2col_indices / col2im_indices and document 000's Conv layer, refused with a ValueError /
TypeError naming the documents' argument names (X, W, b, dout, x_shape, X_dim, ...).

Every message names the argument, what it got and what was expected, and the error comes before
any kernel runs: the compiled kernels have no bounds checks, so a case missing here is a potential
memory corruption. helpers.py holds the valid problem (X, K, B, GY) whose arguments are corrupted.
"""
import numpy as np
import pytest

import cyconv
from helpers import case_ids

_rng = np.random.default_rng(1)
XC = _rng.standard_normal((2, 3, 5, 5))  # NCHW
WC = _rng.standard_normal((4, 3, 3, 3))  # (F, C, fh, fw)
BC = np.zeros((4, 1))
HUGE = 2**31 - 1


def _virtual(shape):
    """An array of `shape` that takes no memory (a broadcast view of one zero)."""
    return np.broadcast_to(np.zeros((1,) * len(shape)), shape)


COMPAT_CASES = [
    ("conv_forward-X-None", lambda: cyconv.conv_forward(None, WC, BC), TypeError,
     r"X must be a 4-D array of real numbers, got None"),
    ("conv_forward-X-3d", lambda: cyconv.conv_forward(XC[0], WC, BC), ValueError,
     r"X must be 4-D, got shape \(3, 5, 5\)"),
    ("conv_forward-X-complex", lambda: cyconv.conv_forward(XC + 0j, WC, BC), TypeError,
     r"X must hold real numbers .*complex128"),
    ("conv_forward-W-None", lambda: cyconv.conv_forward(XC, None, BC), TypeError,
     r"W must be a 4-D array of real numbers, got None"),
    ("conv_forward-W-channels", lambda: cyconv.conv_forward(XC, WC[:, :2], BC), ValueError,
     r"W has 2 input channels but X has 3: W shape \(4, 2, 3, 3\) is \(F, C, kh, kw\)"),
    ("conv_forward-b-shape", lambda: cyconv.conv_forward(XC, WC, np.zeros(3)), ValueError,
     r"b must have shape \(4, 1\) or \(4,\), one value per filter of W, got \(3,\)"),
    ("conv_forward-b-transposed", lambda: cyconv.conv_forward(XC, WC, np.zeros((1, 4))), ValueError,
     r"b must have shape \(4, 1\) or \(4,\).*got \(1, 4\)"),
    ("conv_forward-b-complex", lambda: cyconv.conv_forward(XC, WC, BC + 0j), TypeError,
     r"b must hold real numbers .*complex128"),
    ("conv_forward-stride-0", lambda: cyconv.conv_forward(XC, WC, BC, stride=0), ValueError,
     r"stride.* must be an integer in \[1, .*got 0"),
    ("conv_forward-stride-float", lambda: cyconv.conv_forward(XC, WC, BC, stride=1.0), TypeError,
     r"stride.* must be an int or a pair .*got 1\.0 of type float"),
    ("conv_forward-padding-negative", lambda: cyconv.conv_forward(XC, WC, BC, padding=-1),
     ValueError, r"padding must be an integer in \[0, .*got -1"),
    ("conv_forward-padding-None", lambda: cyconv.conv_forward(XC, WC, BC, padding=None), TypeError,
     r"padding must be .*got None"),
    ("conv_forward-inexact",
     lambda: cyconv.conv_forward(XC[..., :4, :4], WC, BC, stride=2, padding=1), ValueError,
     r"output height \(4 - 3 \+ 2\) / 2 \+ 1 = 2\.5 is not an integer"),
    ("conv_forward-huge-padding", lambda: cyconv.conv_forward(XC, WC, BC, padding=2**31 - 1),
     MemoryError, r"would need \d+ bytes"),
    ("conv_backward-cache-None", lambda: cyconv.conv_backward(np.zeros((2, 4, 5, 5)), None),
     TypeError, r"cache must be the cache returned by conv_forward, got NoneType"),
    ("conv_backward-cache-tuple",
     lambda: cyconv.conv_backward(np.zeros((2, 4, 5, 5)), (XC, WC, BC)), TypeError,
     r"cache must be the cache returned by conv_forward, got tuple"),
    ("conv_backward-dout-shape",
     lambda: cyconv.conv_backward(np.zeros((2, 4, 5, 4)), cyconv.conv_forward(XC, WC, BC)[1]),
     ValueError,
     r"dout must have the shape of conv_forward's out \(2, 4, 5, 5\) \(N, F, OH, OW\), got \(2, 4, "
     r"5, 4\)"),
    ("conv_backward-dout-None",
     lambda: cyconv.conv_backward(None, cyconv.conv_forward(XC, WC, BC)[1]), TypeError,
     r"dout must be a 4-D array of real numbers, got None"),
    ("conv_backward-dout-object",
     lambda: cyconv.conv_backward(np.zeros((2, 4, 5, 5), object),
                                  cyconv.conv_forward(XC, WC, BC)[1]),
     TypeError, r"dout must hold real numbers .*object"),
    ("im2col_indices-x-None", lambda: cyconv.im2col_indices(None, 3, 3), TypeError,
     r"x must be a 4-D array of real numbers, got None"),
    ("im2col_indices-x-3d", lambda: cyconv.im2col_indices(XC[0], 3, 3), ValueError,
     r"x must be 4-D, got shape \(3, 5, 5\)"),
    ("im2col_indices-field-0", lambda: cyconv.im2col_indices(XC, 0, 3), ValueError,
     r"field_height must be an integer in \[1, .*got 0"),
    ("im2col_indices-field-float", lambda: cyconv.im2col_indices(XC, 3, 3.0), TypeError,
     r"field_width must be an integer, got 3\.0 of type float"),
    ("im2col_indices-field-too-large", lambda: cyconv.im2col_indices(XC, 8, 3), ValueError,
     r"input height 5 with padding \(1, 1\) is smaller than the dilated kernel height 8"),
    ("im2col_indices-padding", lambda: cyconv.im2col_indices(XC, 3, 3, padding=-1), ValueError,
     r"padding must be an integer in \[0, .*got -1"),
    ("im2col_indices-inexact", lambda: cyconv.im2col_indices(XC, 2, 2, padding=0, stride=2),
     ValueError, r"output height \(5 - 2 \+ 0\) / 2 \+ 1 = 2\.5 is not an integer"),
    ("im2col_indices-huge", lambda: cyconv.im2col_indices(_virtual((1, 1, 2**20, 2**20)), 3, 3),
     MemoryError, r"would need"),
    ("col2im_indices-cols-shape", lambda: cyconv.col2im_indices(np.zeros((27, 49)), XC.shape),
     ValueError,
     r"cols must have shape \(27, 50\) \(C \* fh \* fw, OH \* OW \* N\) for x_shape \(2, 3, 5, "
     r"5\), got \(27, 49\)"),
    ("col2im_indices-cols-None", lambda: cyconv.col2im_indices(None, XC.shape), TypeError,
     r"cols must be a 2-D array of real numbers, got None"),
    ("col2im_indices-cols-complex",
     lambda: cyconv.col2im_indices(np.zeros((27, 50), complex), XC.shape), TypeError,
     r"cols must hold real numbers .*complex128"),
    ("col2im_indices-x_shape-None", lambda: cyconv.col2im_indices(np.zeros((27, 50)), None),
     ValueError, r"x_shape must be .*\(N, C, H, W\).*got None"),
    ("col2im_indices-x_shape-3d", lambda: cyconv.col2im_indices(np.zeros((27, 50)), (3, 5, 5)),
     ValueError, r"x_shape must be .*\(N, C, H, W\).*got \(3, 5, 5\)"),
    ("col2im_indices-x_shape-zero", lambda: cyconv.col2im_indices(np.zeros((0, 50)), (2, 0, 5, 5)),
     ValueError, r"\[1\] must be an integer in \[1, .*got 0"),
    ("col2im_indices-x_shape-huge",
     lambda: cyconv.col2im_indices(np.zeros((27, 50)), (1, 1, HUGE, HUGE)),
     (ValueError, MemoryError), r"x_shape|would need"),
    ("Conv-X_dim-None", lambda: cyconv.Conv(None, 4, 3, 3, 1, 1), ValueError,
     r"X_dim must be \(C, H, W\), the shape of one input image, got None"),
    ("Conv-X_dim-2d", lambda: cyconv.Conv((3, 5), 4, 3, 3, 1, 1), ValueError,
     r"X_dim must be \(C, H, W\).*got \(3, 5\)"),
    ("Conv-X_dim-zero", lambda: cyconv.Conv((3, 0, 5), 4, 3, 3, 1, 1), ValueError,
     r"X_dim\[1\] must be an integer in \[1, .*got 0"),
    ("Conv-n_filter-0", lambda: cyconv.Conv((3, 5, 5), 0, 3, 3, 1, 1), ValueError,
     r"n_filter must be an integer in \[1, .*got 0"),
    ("Conv-h_filter-float", lambda: cyconv.Conv((3, 5, 5), 4, 3.0, 3, 1, 1), TypeError,
     r"h_filter must be an integer, got 3\.0 of type float"),
    ("Conv-w_filter-None", lambda: cyconv.Conv((3, 5, 5), 4, 3, None, 1, 1), TypeError,
     r"w_filter must be an integer, got None"),
    ("Conv-stride-0", lambda: cyconv.Conv((3, 5, 5), 4, 3, 3, 0, 1), ValueError,
     r"stride.* must be an integer in \[1, .*got 0"),
    ("Conv-padding-negative", lambda: cyconv.Conv((3, 5, 5), 4, 3, 3, 1, -1), ValueError,
     r"padding must be an integer in \[0, .*got -1"),
    ("Conv-inexact", lambda: cyconv.Conv((3, 5, 5), 4, 2, 2, 2, 0), ValueError,
     r"output height \(5 - 2 \+ 0\) / 2 \+ 1 = 2\.5 is not an integer"),
]


@pytest.mark.parametrize("name, call, error, pattern", COMPAT_CASES, ids=case_ids(COMPAT_CASES))
def test_document_api_rejects(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_document_layer_rejects_bad_calls():
    layer = cyconv.Conv((3, 5, 5), 4, 3, 3, 1, 1, seed=0)
    with pytest.raises(ValueError,
                       match=r"backward\(\) needs the input of a forward\(\) call first"):
        layer.backward(np.zeros((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"X must have shape \(N, 3, 5, 5\) \(N, C, H, W\) "
                                         r"for this layer, got \(2, 2, 5, 5\)"):
        layer.forward(XC[:, :2])
    with pytest.raises(TypeError, match=r"X must be a 4-D array of real numbers, got None"):
        layer.forward(None)
    layer.forward(XC)
    with pytest.raises(ValueError,
                       match=r"dout must have the shape of conv_forward's out \(2, 4, 5, 5\)"):
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
    ("conv_forward-b-None", lambda: cyconv.conv_forward(XC, WC, None), TypeError,
     r"b must be .*got None"),
    ("conv_forward-b-str", lambda: cyconv.conv_forward(XC, WC, "abcd"), TypeError,
     r"b must .*real numbers"),
    ("conv_forward-b-ragged", lambda: cyconv.conv_forward(XC, WC, [[1], [2, 3], [4], [5]]),
     TypeError, r"\bb\b.*must"),
    ("col2im_indices-x_shape-0d", lambda: cyconv.col2im_indices(np.zeros((27, 50)), np.array(3)),
     ValueError, r"x_shape must be"),
    ("Conv-X_dim-0d", lambda: cyconv.Conv(np.array(3), 4, 3, 3, 1, 1), ValueError,
     r"X_dim must be"),
]


@pytest.mark.parametrize("name, call, error, pattern", COMPAT_DEFECTS, ids=case_ids(COMPAT_DEFECTS))
def test_document_api_names_bad_arguments(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
