"""Document 002's function API, NCHW: conv_forward / conv_backward and the im2col_indices /
col2im_indices helpers, as thin shims over cyconv's validation, geometry and compiled kernels.

Shapes (document 002's names: N images, C channels, F filters, fh x fw kernel, OH x OW output):

  X     (N, C, H, W)        W     (F, C, fh, fw)       b, db  (F, 1) as in the documents, or (F,)
  out   (N, F, OH, OW)      cols  (C * fh * fw, OH * OW * N)

cols rows are ordered (c, i, j) and columns (oh, ow, n), the layout the documents' reshapes rely
on: `W.reshape(F, -1) @ cols` is (F, OH * OW * N), which reshapes to (F, OH, OW, N).

As in the documents, a geometry whose output size (H - fh + 2 * padding) / stride + 1 is not an
integer is a ValueError.
"""
from typing import NamedTuple

import numpy as np

from . import _engine
from .functional import col2im, im2col
from ._geometry import integer
from ._validation import ConvProblem, conv_problem, grad_output, patch_geometry, real_array


class ConvCache(NamedTuple):
    """What conv_backward needs from conv_forward: the validated problem and the bias shape.

    The documents cache X_col; cyconv recomputes the patches in backward instead of holding an
    array fh * fw times the size of X.
    """

    problem: ConvProblem
    bias_shape: tuple


def _bias_vector(b, n_filters):
    """b, shaped (F, 1) as in the documents or (F,), as an (F,) array of real numbers."""
    b = real_array("b", b, (1, 2))
    if b.shape not in ((n_filters, 1), (n_filters,)):
        raise ValueError(
            f"b must have shape ({n_filters}, 1) or ({n_filters},), one value per filter of W, got {b.shape}"
        )
    return b.reshape(n_filters)


def conv_forward(X, W, b, stride=1, padding=1):
    """Convolve (cross-correlate) a batch of NCHW images with F filters; returns (out, cache).

    X        (N, C, H, W) images
    W        (F, C, fh, fw) filters
    b        (F, 1) bias as in the documents, or (F,)
    stride   int or (sh, sw), >= 1
    padding  zeros on every border: int (as in the documents), (ph, pw) or
             ((top, bottom), (left, right))

    out is (N, F, OH, OW) with OH = (H - fh + 2 * padding) / stride + 1 (likewise OW), which must be
    an integer (ValueError otherwise):
        out[n, f, oh, ow] = b[f] + sum_{c, i, j} Xpad[n, c, oh * stride + i, ow * stride + j] * W[f, c, i, j]
    cache is opaque: pass it to conv_backward. float32 inputs give float32, anything else float64.
    """
    W = real_array("W", W, 4)  # its filter count shapes b
    problem = conv_problem(X, W, _bias_vector(b, W.shape[0]), strides=stride, padding=padding, layout="NCHW",
                           require_exact=True, names=("X", "W", "b"))
    return _engine.forward(problem), ConvCache(problem, np.shape(b))


def conv_backward(dout, cache):
    """Gradients of conv_forward, given dout = dL/dout; returns (dX, dW, db).

    dout   (N, F, OH, OW), the shape of conv_forward's out
    cache  the second value conv_forward returned

    dX is (N, C, H, W), dW is (F, C, fh, fw) and db has the shape of the b given to conv_forward:
    (F, 1) as in the documents, or (F,).
    """
    if not isinstance(cache, ConvCache):
        raise TypeError(f"cache must be the cache returned by conv_forward, got {type(cache).__name__}")
    problem = cache.problem
    dout = grad_output(dout, problem, name="dout", expected="the shape of conv_forward's out", axes="N, F, OH, OW")
    dX, dW, db = _engine.backward(problem, dout)
    return dX, dW, db.reshape(cache.bias_shape)


def _patch_geometry(shape_name, x_shape, field_height, field_width, padding, stride):
    """(N, C, H, W) and the Geometry of patches of an input of x_shape; the output size must be exact."""
    kernel_hw = (integer("field_height", field_height, 1), integer("field_width", field_width, 1))
    (n, h, w, c), geometry = patch_geometry(x_shape, kernel_hw, stride, 0, padding, "NCHW", name=shape_name,
                                            require_exact=True)
    return (n, c, h, w), geometry


def im2col_indices(x, field_height, field_width, padding=1, stride=1):
    """The fh x fw patches of NCHW images x as the columns of a matrix.

    x        (N, C, H, W)
    padding  zeros on every border: int, (ph, pw) or ((top, bottom), (left, right))
    stride   int or (sh, sw), >= 1

    Returns cols of shape (C * fh * fw, OH * OW * N), a new array:
        cols[(c * fh + i) * fw + j, (oh * OW + ow) * N + n] = xpad[n, c, oh * stride + i, ow * stride + j]
    i.e. rows ordered (c, i, j) and columns ordered (oh, ow, n). The output size
    OH = (H - fh + 2 * padding) / stride + 1 (likewise OW) must be an integer (ValueError otherwise).
    """
    x = real_array("x", x, 4)
    (n, c, _, _), geometry = _patch_geometry("x.shape", x.shape, field_height, field_width, padding, stride)
    cols = im2col(x, (geometry.kernel_h, geometry.kernel_w), strides=stride, padding=padding, layout="NCHW")
    return cols.transpose(1, 2, 0).reshape(c * geometry.patch_size, geometry.out_h * geometry.out_w * n)


def col2im_indices(cols, x_shape, field_height=3, field_width=3, padding=1, stride=1):
    """The adjoint of im2col_indices: sums each entry of cols into the pixel of x it was read from.

    cols     (C * fh * fw, OH * OW * N), rows ordered (c, i, j), columns ordered (oh, ow, n), as
             im2col_indices returns for an input of x_shape with the same fh, fw, padding, stride
    x_shape  (N, C, H, W)

    Returns an array of shape x_shape; entries of cols that came from the padding are dropped.
    """
    (n, c, h, w), geometry = _patch_geometry("x_shape", x_shape, field_height, field_width, padding, stride)
    taps, pixels = c * geometry.patch_size, geometry.out_h * geometry.out_w
    cols = real_array("cols", cols, 2)
    if cols.shape != (taps, pixels * n):
        raise ValueError(
            f"cols must have shape ({taps}, {pixels * n}) (C * fh * fw, OH * OW * N) for x_shape "
            f"{(n, c, h, w)}, got {cols.shape}"
        )
    per_image = cols.reshape(taps, pixels, n).transpose(2, 0, 1)
    return col2im(per_image, (n, c, h, w), (geometry.kernel_h, geometry.kernel_w), strides=stride,
                  padding=padding, layout="NCHW")
