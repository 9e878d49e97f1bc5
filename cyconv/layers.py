"""Stateful convolution layers: they hold a kernel and a bias, keep the last input for backward and
expose the gradients as kernel_grad / bias_grad (the protocol cyconv.check_layer understands).

    Convolution           document 001's layer (NHWC by default; NCHW, groups, padding modes too)
    ConvolutionTranspose  the transposed convolution (PyTorch's ConvTranspose2d, Keras' Conv2DTranspose)
    Conv1D                1-D convolution (NWC or NCW)

Every argument is checked at construction by the same checks as the functional API (a problem with
an empty batch is validated once), so a layer that exists can run.
"""
import numpy as np

from ._geometry import integer, pair
from ._problems import conv1d_shapes, conv_spec, transpose_spec
from ._validation import DATA_AXES, layout_name, real_array, real_scalar, shape_tuple
from .functional import (
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv2d_transpose,
    conv2d_transpose_backward,
)


def _layer_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class _KernelLayer:
    """What the layers share: the kernel and bias, forward / backward with the input kept between
    them, and the gradients. A subclass sets self._problem (its validated convolution, empty batch)
    and self._options (its functional call's keyword arguments) and defines _forward / _backward."""

    _KERNEL_AXES = "(filters, kh, kw, channels)"

    def _init_weights(self, kernel_shape, fan_in, bias_size, use_bias, dtype, seed):
        """He initialisation: normal, std sqrt(2 / fan_in), drawn from `seed`; a zero bias."""
        self.dtype = _layer_dtype(dtype)
        rng = np.random.default_rng(seed)
        self._kernel = (rng.standard_normal(kernel_shape) * np.sqrt(2.0 / fan_in)).astype(self.dtype)
        self.bias = np.zeros(bias_size, dtype=self.dtype) if use_bias else None
        self.kernel_grad = None
        self.bias_grad = None
        self._x = None

    @property
    def kernel(self):
        """The weights, of the shape the layer was built with; assignable."""
        return self._kernel

    @kernel.setter
    def kernel(self, value):
        value = real_array("kernel", value, self._kernel.ndim)
        if value.shape != self._kernel.shape:
            raise ValueError(f"kernel must have shape {self._kernel.shape} {self._KERNEL_AXES}, got {value.shape}")
        self._kernel = np.array(value, dtype=self.dtype, order="C")

    def _input(self, x, name="x"):
        """x checked to have this layer's shape, but for the batch size."""
        x = real_array(name, x, len(self.input_shape))
        if x.shape[1:] != self.input_shape[1:]:
            raise ValueError(
                f"{name} must have shape (N, {', '.join(map(str, self.input_shape[1:]))}) {DATA_AXES[self.layout]} "
                f"for this layer, got {x.shape}"
            )
        return x

    def output_shape(self):
        """The output shape for the input_shape given at construction."""
        return self.output_size

    def execute(self, x):
        """y = layer(x), for x of input_shape but for the batch size."""
        x = self._input(x)
        y = self._forward(x)
        self._x = x
        return y

    forward = execute

    def __call__(self, x):
        return self.execute(x)

    def backward(self, grad_y):
        """grad_x = dL/dx from grad_y = dL/dy of the last forward; sets kernel_grad and bias_grad."""
        if self._x is None:
            raise ValueError("backward() needs the input of a forward() call first; call the layer on x before")
        grad_x, self.kernel_grad, grad_bias = self._backward(grad_y, self._x)
        self.bias_grad = grad_bias if self.bias is not None else None
        return grad_x


class Convolution(_KernelLayer):
    """Document 001's convolution layer (NHWC), with what PyTorch and Keras layers also offer.

    conv = Convolution(input_shape, filters, kernel_size, strides=(1, 1), dilations=(0, 0),
                       padding="VALID", *, groups=1, padding_mode="constant", layout="NHWC",
                       algorithm="auto", use_bias=True, pad_value=0.0, dtype=np.float64, seed=None)
    input_shape   (batch, H, W, C) for NHWC, (batch, C, H, W) for NCHW; forward accepts any batch size
    filters       F, the number of output channels
    kernel_size   int or (kh, kw)
    strides       int or (sh, sw)
    dilations     int or (dh, dw): gaps between taps, (0, 0) is the ordinary kernel
    padding       "SAME" | "VALID" | int | (ph, pw) | ((top, bottom), (left, right))
    groups, padding_mode, pad_value, algorithm  as for cyconv.conv2d

    conv.kernel         (F, kh, kw, C / groups) NHWC, (F, C / groups, kh, kw) NCHW, He-initialised
                        (std sqrt(2 / (kh * kw * C / groups))) from `seed`; assignable
    conv.bias           (F,) zeros, or None with use_bias=False
    conv.output_shape() (batch, OH, OW, F) (in the layout), also conv.output_size
    y = conv(x)         forward; also conv.execute(x), conv.forward(x)
    conv.backward(grad_y) -> grad_x; sets conv.kernel_grad and conv.bias_grad (F,)

    As in document 001's code: conv.batch, conv.height, conv.width, conv.channel (from input_shape),
    conv.filters, conv.kernel_size (kh, kw), conv.strides (sh, sw), conv.dilations (dh, dw),
    conv.padding (as given). cyconv.ConvGrad(conv) gives the Jacobian with respect to the kernel.
    """

    def __init__(self, input_shape, filters, kernel_size, strides=(1, 1), dilations=(0, 0), padding="VALID",
                 *, groups=1, padding_mode="constant", layout="NHWC", algorithm="auto", use_bias=True,
                 pad_value=0.0, dtype=np.float64, seed=None):
        self.layout = layout_name(layout)
        axes = DATA_AXES[self.layout]
        shape = shape_tuple("input_shape", input_shape, f"a 4-D shape {axes} in layout {self.layout}", (0, 1, 1, 1))
        self.input_shape = shape
        nhwc = self.layout == "NHWC"
        self.batch, self.height, self.width, self.channel = shape if nhwc else (shape[0], shape[2], shape[3], shape[1])
        self.filters = integer("filters", filters, 1)
        groups = integer("groups", groups, 1)
        self.padding = padding
        self.pad_value = real_scalar("pad_value", pad_value)
        self._KERNEL_AXES = "(filters, kh, kw, channels)" if nhwc else "(filters, channels, kh, kw)"
        if groups > 1:
            self._KERNEL_AXES = self._KERNEL_AXES.replace("channels", "channels / groups")
        kh, kw = _kernel_hw(kernel_size)
        cg = self.channel // groups if self.channel % groups == 0 else self.channel
        kernel_shape = (self.filters, kh, kw, cg) if nhwc else (self.filters, cg, kh, kw)
        # Every argument is checked (sizes, groups, padding mode, memory) before a kernel is drawn.
        spec = conv_spec(shape, kernel_shape, strides, dilations, padding, self.layout, self.pad_value,
                         groups=groups, padding_mode=padding_mode, algorithm=algorithm, dtype=_layer_dtype(dtype))
        g = self.geometry = spec.geometry
        self.groups, self.padding_mode = groups, spec.padding_mode
        self.kernel_size = (g.kernel_h, g.kernel_w)
        self.strides = (g.stride_h, g.stride_w)
        self.dilations = (g.dilation_h, g.dilation_w)
        n = self.batch
        self.output_size = (n, g.out_h, g.out_w, self.filters) if nhwc else (n, self.filters, g.out_h, g.out_w)
        self._options = dict(strides=self.strides, dilations=self.dilations, padding=padding, layout=self.layout,
                             pad_value=self.pad_value, groups=groups, padding_mode=self.padding_mode,
                             algorithm=spec.algorithm)
        self._init_weights(kernel_shape, kh * kw * cg, self.filters, use_bias, dtype, seed)

    def _forward(self, x):
        return conv2d(x, self._kernel, self.bias, **self._options)

    def _backward(self, grad_y, x):
        return conv2d_backward(grad_y, x, self._kernel, **self._options)


class ConvolutionTranspose(_KernelLayer):
    """Transposed convolution layer (PyTorch's ConvTranspose2d, Keras' Conv2DTranspose): the
    adjoint of a Convolution, its output as large as that convolution's input.

    layer = ConvolutionTranspose(input_shape, filters, kernel_size, strides=(1, 1), dilations=(0, 0),
                                 padding="VALID", *, output_padding=0, groups=1, layout="NHWC",
                                 algorithm="auto", use_bias=True, dtype=np.float64, seed=None)
    input_shape   (batch, H, W, C_in) for NHWC, (batch, C_in, H, W) for NCHW
    filters       C_out, the number of output channels
    padding, output_padding  as for cyconv.conv2d_transpose: "SAME" gives H * stride, otherwise
                  (H - 1) * stride - pads + extent + output_padding

    layer.kernel  the kernel of the convolution it transposes: (C_in, kh, kw, C_out / groups) NHWC,
                  (C_in, C_out / groups, kh, kw) NCHW (PyTorch's ConvTranspose2d weight), He-initialised
                  (std sqrt(2 / (kh * kw * C_in / groups)))
    layer.bias    (C_out,)
    forward / backward / kernel_grad / bias_grad / output_shape() as for Convolution.
    """

    def __init__(self, input_shape, filters, kernel_size, strides=(1, 1), dilations=(0, 0), padding="VALID",
                 *, output_padding=0, groups=1, layout="NHWC", algorithm="auto", use_bias=True, dtype=np.float64,
                 seed=None):
        self.layout = layout_name(layout)
        axes = DATA_AXES[self.layout]
        shape = shape_tuple("input_shape", input_shape, f"a 4-D shape {axes} in layout {self.layout}", (0, 1, 1, 1))
        self.input_shape = shape
        nhwc = self.layout == "NHWC"
        c_in = shape[3] if nhwc else shape[1]
        self.filters = integer("filters", filters, 1)
        groups = integer("groups", groups, 1)
        if self.filters % groups:
            raise ValueError(f"groups must divide filters ({self.filters}), got groups={groups}")
        kh, kw = _kernel_hw(kernel_size)
        cg = self.filters // groups
        kernel_shape = (c_in, kh, kw, cg) if nhwc else (c_in, cg, kh, kw)
        self._KERNEL_AXES = ("(C_in, kh, kw, filters / groups)" if nhwc else "(C_in, filters / groups, kh, kw)")
        g, _, algorithm = transpose_spec(shape, kernel_shape, strides, dilations, padding, output_padding,
                                         self.layout, groups, algorithm, _layer_dtype(dtype))
        self.geometry = g
        self.groups, self.padding, self.output_padding = groups, padding, output_padding
        self.kernel_size = (g.kernel_h, g.kernel_w)
        self.strides = (g.stride_h, g.stride_w)
        self.dilations = (g.dilation_h, g.dilation_w)
        n = shape[0]
        self.output_size = (n, g.in_h, g.in_w, self.filters) if nhwc else (n, self.filters, g.in_h, g.in_w)
        self._options = dict(strides=self.strides, dilations=self.dilations, padding=padding,
                             output_padding=output_padding, layout=self.layout, groups=groups, algorithm=algorithm)
        self._init_weights(kernel_shape, kh * kw * max(c_in // groups, 1), self.filters, use_bias, dtype, seed)

    def _forward(self, x):
        return conv2d_transpose(x, self._kernel, self.bias, **self._options)

    def _backward(self, grad_y, x):
        return conv2d_transpose_backward(grad_y, x, self._kernel, **self._options)


class Conv1D(_KernelLayer):
    """1-D convolution layer (PyTorch's Conv1d, Keras' Conv1D).

    layer = Conv1D(input_shape, filters, kernel_size, strides=1, dilations=0, padding="VALID", *,
                   groups=1, padding_mode="constant", layout="NWC", algorithm="auto", use_bias=True,
                   pad_value=0.0, dtype=np.float64, seed=None)
    input_shape   (batch, W, C) for NWC, (batch, C, W) for NCW
    kernel_size, strides, dilations  ints; padding "SAME" | "VALID" | int | (left, right)

    layer.kernel  (F, k, C / groups) NWC, (F, C / groups, k) NCW, He-initialised
    forward / backward / kernel_grad / bias_grad / output_shape() as for Convolution.
    """

    def __init__(self, input_shape, filters, kernel_size, strides=1, dilations=0, padding="VALID", *, groups=1,
                 padding_mode="constant", layout="NWC", algorithm="auto", use_bias=True, pad_value=0.0,
                 dtype=np.float64, seed=None):
        if not isinstance(layout, str) or layout.upper() not in ("NWC", "NCW"):
            raise ValueError(f"layout must be 'NWC' or 'NCW', got {layout!r}")
        self.layout = layout.upper()
        shape = shape_tuple("input_shape", input_shape, f"a 3-D shape {DATA_AXES[self.layout]}", (0, 1, 1))
        self.input_shape = shape
        nwc = self.layout == "NWC"
        c = shape[2] if nwc else shape[1]
        self.filters = integer("filters", filters, 1)
        groups = integer("groups", groups, 1)
        k = integer("kernel_size", kernel_size, 1)
        cg = c // groups if c % groups == 0 else c
        kernel_shape = (self.filters, k, cg) if nwc else (self.filters, cg, k)
        self._KERNEL_AXES = "(filters, k, channels / groups)" if nwc else "(filters, channels / groups, k)"
        self.pad_value = real_scalar("pad_value", pad_value)
        layout_2d, x_2d, kernel_2d, strides_2d, dilations_2d, padding_2d = conv1d_shapes(
            shape, kernel_shape, strides, dilations, padding, self.layout, groups)
        spec = conv_spec(x_2d, kernel_2d, strides_2d, dilations_2d, padding_2d, layout_2d, self.pad_value,
                         groups=groups, padding_mode=padding_mode, algorithm=algorithm, dtype=_layer_dtype(dtype))
        g = spec.geometry
        self.groups, self.padding, self.padding_mode = groups, padding, spec.padding_mode
        self.kernel_size, self.strides, self.dilations = k, g.stride_w, g.dilation_w
        n = shape[0]
        self.output_size = (n, g.out_w, self.filters) if nwc else (n, self.filters, g.out_w)
        self._options = dict(strides=self.strides, dilations=self.dilations, padding=padding, layout=self.layout,
                             pad_value=self.pad_value, groups=groups, padding_mode=self.padding_mode,
                             algorithm=spec.algorithm)
        self._init_weights(kernel_shape, k * cg, self.filters, use_bias, dtype, seed)

    def _forward(self, x):
        return conv1d(x, self._kernel, self.bias, **self._options)

    def _backward(self, grad_y, x):
        return conv1d_backward(grad_y, x, self._kernel, **self._options)


def _kernel_hw(kernel_size):
    """(kh, kw) from an int or a pair, each >= 1."""
    return pair("kernel_size", kernel_size, 1)
