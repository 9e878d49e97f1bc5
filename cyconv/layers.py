"""Stateful convolution layers: they hold weights, cache what backward needs, expose gradients."""
import numpy as np

from .compat import conv_backward, conv_forward
from .functional import conv2d, conv2d_backward, im2col
from ._geometry import conv_geometry, integer
from ._validation import check_memory, patch_geometry, real_array, real_scalar, shape_tuple


def _layer_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class Convolution:
    """Document 001's convolution layer, NHWC.

    conv = Convolution(input_shape, filters, kernel_size, strides=(1, 1), dilations=(0, 0),
                       padding="VALID")
    input_shape  (batch, H, W, C); forward accepts any batch size with this H, W, C
    filters      F, the number of output channels
    kernel_size  int or (kh, kw)
    strides      int or (sh, sw)
    dilations    int or (dh, dw): gaps between taps, (0, 0) is the ordinary kernel
    padding      "SAME" | "VALID" | int | (ph, pw) | ((top, bottom), (left, right))

    conv.kernel         (F, kh, kw, C), He-initialised from `seed`; assignable
    conv.bias           (F,) zeros, or None with use_bias=False
    conv.output_shape() (batch, OH, OW, F), also conv.output_size
    y = conv(x)         forward, x (N, H, W, C) -> y (N, OH, OW, F); also conv.execute(x), conv.forward(x)
    conv.backward(grad_y) -> grad_x; sets conv.kernel_grad (F, kh, kw, C) and conv.bias_grad (F,)

    As in document 001's code: conv.batch, conv.height, conv.width, conv.channel (from input_shape),
    conv.filters, conv.kernel_size (kh, kw), conv.strides (sh, sw), conv.dilations (dh, dw),
    conv.padding (as given). ConvGrad(conv) gives the Jacobian with respect to the kernel.
    """

    def __init__(self, input_shape, filters, kernel_size, strides=(1, 1), dilations=(0, 0), padding="VALID",
                 *, use_bias=True, pad_value=0.0, dtype=np.float64, seed=None):
        (batch, h, w, c), self.geometry = patch_geometry(
            input_shape, kernel_size, strides, dilations, padding, "NHWC"
        )
        g = self.geometry
        self.input_shape = (batch, h, w, c)
        self.batch, self.height, self.width, self.channel = self.input_shape
        self.filters = integer("filters", filters, 1)
        self.kernel_size = (g.kernel_h, g.kernel_w)
        self.strides = (g.stride_h, g.stride_w)
        self.dilations = (g.dilation_h, g.dilation_w)
        self.padding = padding
        self.output_size = (batch, g.out_h, g.out_w, self.filters)
        self.pad_value = real_scalar("pad_value", pad_value)
        self.dtype = _layer_dtype(dtype)
        kh, kw = self.kernel_size
        check_memory(f"a kernel of {self.filters} filters of {kh} x {kw} x {c}", 2 * 8 * self.filters * kh * kw * c)
        rng = np.random.default_rng(seed)
        he_std = np.sqrt(2.0 / (kh * kw * c))
        self._kernel = (rng.standard_normal((self.filters, kh, kw, c)) * he_std).astype(self.dtype)
        self.bias = np.zeros(self.filters, dtype=self.dtype) if use_bias else None
        self.kernel_grad = None
        self.bias_grad = None
        self._x = None

    @property
    def kernel(self):
        """The weights, (filters, kh, kw, channels)."""
        return self._kernel

    @kernel.setter
    def kernel(self, value):
        value = real_array("kernel", value, 4)
        if value.shape != self._kernel.shape:
            raise ValueError(
                f"kernel must have shape {self._kernel.shape} (filters, kh, kw, channels), got {value.shape}"
            )
        self._kernel = np.array(value, dtype=self.dtype, order="C")

    def output_shape(self):
        """(batch, OH, OW, filters) for the input_shape given at construction."""
        return self.output_size

    def _conv_args(self):
        return dict(strides=self.strides, dilations=self.dilations, padding=self.padding,
                    layout="NHWC", pad_value=self.pad_value)

    def _input(self, x, name="x"):
        """x checked to be (N, H, W, C) with this layer's H, W, C."""
        x = real_array(name, x, 4)
        if x.shape[1:] != self.input_shape[1:]:
            raise ValueError(
                f"{name} must have shape (N, {', '.join(map(str, self.input_shape[1:]))}) (N, H, W, C) for "
                f"this layer, got {x.shape}"
            )
        return x

    def execute(self, x):
        """y = conv(x): x (N, H, W, C) with this layer's H, W, C -> (N, OH, OW, filters)."""
        x = self._input(x)
        y = conv2d(x, self._kernel, self.bias, **self._conv_args())
        self._x = x
        return y

    forward = __call__ = execute

    def backward(self, grad_y):
        """grad_x = dL/dx from grad_y = dL/dy of the last forward; sets kernel_grad and bias_grad."""
        if self._x is None:
            raise ValueError("backward() needs the input of a forward() call first; call conv(x) before")
        grad_x, self.kernel_grad, grad_bias = conv2d_backward(grad_y, self._x, self._kernel, **self._conv_args())
        self.bias_grad = grad_bias if self.bias is not None else None
        return grad_x


class ConvGrad:
    """Document 001's backward module: the gradient of a Convolution's output w.r.t. its kernel.

    grad = ConvGrad(conv)
    J = grad.gradient(x)          (N, OH, OW, F, kh, kw, C):
                                  J[n, h, w, f, i, j, c] = dy[n, h, w, f] / dkernel[f, i, j, c]
                                  = xpad[n, h*sh - top + i*(dh+1), w*sw - left + j*(dw+1), c]
                                  (pad_value outside x), for every padding, stride and dilation
    dW = grad.backprop(delta, x)  (F, kh, kw, C) = sum over n, h, w of delta[n, h, w, f] * J[n, h, w, f, ...],
                                  delta = dL/dy (N, OH, OW, F); also spelled backrop, as in the document

    J does not depend on f: it is the patches of x (im2col) repeated F times, returned as a read-only
    broadcast view of one copy of the patches (kh * kw times the size of x), not F copies.
    backprop never forms J: it is Convolution.backward's kernel gradient.
    """

    def __init__(self, cnn_layer):
        if not isinstance(cnn_layer, Convolution):
            raise TypeError(f"cnn_layer must be a cyconv.Convolution, got {type(cnn_layer).__name__}")
        self.cnn_layer = cnn_layer

    def gradient(self, x):
        """J (N, OH, OW, F, kh, kw, C), a read-only view; x is (N, H, W, C) for the layer."""
        layer = self.cnn_layer
        x = layer._input(x)
        args = layer._conv_args()
        patches = im2col(x, layer.kernel_size, args["strides"], args["dilations"], args["padding"],
                         pad_value=args["pad_value"])
        (_, oh, ow, f), (kh, kw), c = layer.output_size, layer.kernel_size, layer.channel
        n = x.shape[0]
        return np.broadcast_to(patches.reshape(n, oh, ow, 1, kh, kw, c), (n, oh, ow, f, kh, kw, c))

    def backprop(self, delta, x):
        """dL/dkernel (F, kh, kw, C) for delta = dL/dy (N, OH, OW, F) at input x (N, H, W, C)."""
        layer = self.cnn_layer
        return conv2d_backward(delta, layer._input(x), layer.kernel, **layer._conv_args())[1]

    backrop = backprop


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
