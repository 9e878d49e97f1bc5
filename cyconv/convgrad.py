"""Document 001's backward module (its cnn.cnn_backward): ConvGrad, the gradient of a
Convolution's output with respect to its kernel."""
import numpy as np

from . import _engine
from ._problems import conv_problem, grad_output
from .functional import im2col
from .layers import Convolution


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
        setting = (cnn_layer.layout, cnn_layer.groups, cnn_layer.padding_mode)
        if setting != ("NHWC", 1, "constant"):
            raise ValueError(
                "cnn_layer must be a Convolution as in document 001 (layout 'NHWC', groups=1, padding_mode "
                f"'constant'), got layout {setting[0]!r}, groups={setting[1]}, padding_mode {setting[2]!r}"
            )
        self.cnn_layer = cnn_layer

    def gradient(self, x):
        """J (N, OH, OW, F, kh, kw, C), a read-only view; x is (N, H, W, C) for the layer."""
        layer = self.cnn_layer
        x = layer._input(x)
        patches = im2col(x, layer.kernel_size, layer.strides, layer.dilations, layer.padding,
                         pad_value=layer.pad_value)
        (_, oh, ow, f), (kh, kw), c = layer.output_size, layer.kernel_size, layer.channel
        n = x.shape[0]
        return np.broadcast_to(patches.reshape(n, oh, ow, 1, kh, kw, c), (n, oh, ow, f, kh, kw, c))

    def backprop(self, delta, x):
        """dL/dkernel (F, kh, kw, C) for delta = dL/dy (N, OH, OW, F) at input x (N, H, W, C)."""
        layer = self.cnn_layer
        problem = conv_problem(layer._input(x), layer.kernel, None, layer.strides, layer.dilations, layer.padding,
                               "NHWC", layer.pad_value)
        delta = grad_output(delta, problem.output_shape, problem.dtype, "NHWC", name="delta")
        return _engine.kernel_grad(problem, delta)[0]

    backrop = backprop
