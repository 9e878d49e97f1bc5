"""The NCHW APIs of documents 000 and 002: document 002's conv_forward / conv_backward and the
im2col_indices / col2im_indices helpers, and document 000's Conv layer built on them, as thin
shims over cyconv's validation, geometry and compiled code.

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
from ._geometry import conv_geometry, integer
from ._problems import ConvProblem, conv_problem, grad_output, patch_geometry
from ._validation import check_memory, real_array, shape_tuple


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
    dout = grad_output(dout, problem.output_shape, problem.dtype, problem.layout, name="dout",
                       expected="the shape of conv_forward's out", axes="N, F, OH, OW")
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


class Conv:
    """Document 000's convolution layer, NCHW.

    conv = Conv(X_dim, n_filter, h_filter, w_filter, stride, padding, *, seed=None)
    X_dim     (C, H, W) of one input image; forward accepts any batch size N
    n_filter  F, the number of output channels
    h_filter, w_filter  the kernel size
    stride    int or (sh, sw), >= 1
    padding   zeros on every border: int (as in the document), (ph, pw) or ((top, bottom), (left, right))

    The output size h_out = (H - h_filter + 2 * padding) / stride + 1 (likewise w_out) must be an
    integer: anything else is a ValueError, as in the document.

    conv.W        (F, C, h_filter, w_filter) float64, randn / sqrt(F / 2) drawn from `seed`
    conv.b        (F, 1) float64 zeros
    conv.params   [conv.W, conv.b], the same arrays the layer computes with: in-place updates
                  (conv.W -= lr * dW) and assignments (conv.W = new) are both seen by forward
    conv.out_dim  (F, h_out, w_out); also conv.h_out, conv.w_out
    out = conv.forward(X)              X (N, C, H, W) -> out (N, F, h_out, w_out)
    dX, [dW, db] = conv.backward(dout) dout (N, F, h_out, w_out) of the last forward; dX shaped
                                       like X, dW like W, db (F, 1)
    """

    def __init__(self, X_dim, n_filter, h_filter, w_filter, stride, padding, *, seed=None):
        self.d_X, self.h_X, self.w_X = shape_tuple("X_dim", X_dim, "(C, H, W), the shape of one input image",
                                                     (1, 1, 1))
        self.n_filter = integer("n_filter", n_filter, 1)
        self.h_filter = integer("h_filter", h_filter, 1)
        self.w_filter = integer("w_filter", w_filter, 1)
        self.stride, self.padding = stride, padding
        geometry = conv_geometry((self.h_X, self.w_X), (self.h_filter, self.w_filter), stride, 0, padding,
                                 require_exact=True)
        self.h_out, self.w_out = geometry.out_h, geometry.out_w
        self.out_dim = (self.n_filter, self.h_out, self.w_out)
        W_shape = (self.n_filter, self.d_X, self.h_filter, self.w_filter)
        check_memory(f"W of shape {W_shape}", 2 * 8 * np.prod(W_shape, dtype=object))
        W = np.random.default_rng(seed).standard_normal(W_shape) / np.sqrt(self.n_filter / 2.0)
        self.params = [W, np.zeros((self.n_filter, 1))]
        self._cache = None

    @property
    def W(self):
        """The filters, (n_filter, C, h_filter, w_filter); the same array as params[0]."""
        return self.params[0]

    @W.setter
    def W(self, value):
        self.params[0] = self._parameter("W", value, (self.n_filter, self.d_X, self.h_filter, self.w_filter))

    @property
    def b(self):
        """The bias, (n_filter, 1); the same array as params[1]."""
        return self.params[1]

    @b.setter
    def b(self, value):
        self.params[1] = self._parameter("b", value, (self.n_filter, 1))

    @staticmethod
    def _parameter(name, value, shape):
        value = real_array(name, value)
        if value.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
        return value

    def forward(self, X):
        """out = conv(X): X (N, C, H, W) with this layer's C, H, W -> (N, n_filter, h_out, w_out)."""
        X = real_array("X", X, 4)
        if X.shape[1:] != (self.d_X, self.h_X, self.w_X):
            raise ValueError(
                f"X must have shape (N, {self.d_X}, {self.h_X}, {self.w_X}) (N, C, H, W) for this layer, "
                f"got {X.shape}"
            )
        out, self._cache = conv_forward(X, self.W, self.b, self.stride, self.padding)
        return out

    def backward(self, dout):
        """dX, [dW, db] from dout = dL/dout of the last forward; db is (n_filter, 1) like b."""
        if self._cache is None:
            raise ValueError("backward() needs the input of a forward() call first; "
                             "call conv.forward(X) before")
        dX, dW, db = conv_backward(dout, self._cache)
        return dX, [dW, db]
