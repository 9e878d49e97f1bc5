"""Stateful convolution layers: they hold weights, cache what backward needs, expose gradients."""
import numpy as np

from .functional import conv2d, conv2d_backward
from .geometry import integer
from .validation import patch_geometry, real_array


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
    conv.output_shape() (batch, OH, OW, F)
    y = conv(x)         forward, x (N, H, W, C) -> y (N, OH, OW, F)
    conv.backward(grad_y) -> grad_x; sets conv.kernel_grad (F, kh, kw, C) and conv.bias_grad (F,)
    """

    def __init__(self, input_shape, filters, kernel_size, strides=(1, 1), dilations=(0, 0), padding="VALID",
                 *, use_bias=True, pad_value=0.0, dtype=np.float64, seed=None):
        (batch, h, w, c), self.geometry = patch_geometry(
            input_shape, kernel_size, strides, dilations, padding, "NHWC"
        )
        self.input_shape = (batch, h, w, c)
        self.filters = integer("filters", filters, 1)
        self.strides, self.dilations, self.padding = strides, dilations, padding
        self.pad_value = pad_value
        self.dtype = _layer_dtype(dtype)
        kh, kw = self.geometry.kernel_h, self.geometry.kernel_w
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
        return (self.input_shape[0], self.geometry.out_h, self.geometry.out_w, self.filters)

    def _conv_args(self):
        return dict(strides=self.strides, dilations=self.dilations, padding=self.padding,
                    layout="NHWC", pad_value=self.pad_value)

    def forward(self, x):
        """y = conv(x): x (N, H, W, C) with this layer's H, W, C -> (N, OH, OW, filters)."""
        x = real_array("x", x, 4)
        if x.shape[1:] != self.input_shape[1:]:
            raise ValueError(
                f"x must have shape (N, {', '.join(map(str, self.input_shape[1:]))}) (N, H, W, C) for this "
                f"layer, got {x.shape}"
            )
        y = conv2d(x, self._kernel, self.bias, **self._conv_args())
        self._x = x
        return y

    __call__ = forward

    def backward(self, grad_y):
        """grad_x = dL/dx from grad_y = dL/dy of the last forward; sets kernel_grad and bias_grad."""
        if self._x is None:
            raise ValueError("backward() needs the input of a forward() call first; call conv(x) before")
        grad_x, self.kernel_grad, grad_bias = conv2d_backward(grad_y, self._x, self._kernel, **self._conv_args())
        self.bias_grad = grad_bias if self.bias is not None else None
        return grad_x
