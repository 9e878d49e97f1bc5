"""The layers beyond document 001's: Convolution with groups, padding modes and NCHW,
ConvolutionTranspose and Conv1D — each computes what its functional call does, and passes
cyconv.check_layer (every gradient against central differences)."""
import numpy as np
import pytest

import cyconv

LAYERS = {
    "grouped-nchw-reflect": lambda: cyconv.Convolution((2, 4, 7, 6), 6, (3, 2), strides=(2, 1), padding="SAME",
                                                       groups=2, padding_mode="reflect", layout="NCHW", seed=0),
    "depthwise-circular": lambda: cyconv.Convolution((2, 6, 5, 3), 6, 3, dilations=(0, 1), padding=1, groups=3,
                                                     padding_mode="circular", seed=1),
    "transpose-nhwc": lambda: cyconv.ConvolutionTranspose((2, 4, 3, 4), 3, 3, strides=2, padding=1, output_padding=1,
                                                          seed=2),
    "transpose-grouped-nchw": lambda: cyconv.ConvolutionTranspose((1, 4, 3, 4), 6, (2, 3), strides=(1, 2),
                                                                  dilations=1, padding="SAME", groups=2,
                                                                  layout="NCHW", seed=3),
    "conv1d-nwc": lambda: cyconv.Conv1D((2, 9, 4), 6, 3, strides=2, padding="SAME", groups=2, seed=4),
    "conv1d-ncw-replicate": lambda: cyconv.Conv1D((2, 3, 8), 2, 3, dilations=1, padding=(2, 1),
                                                  padding_mode="replicate", layout="NCW", seed=5),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_gradients_pass_check_layer(name):
    layer = LAYERS[name]()
    rng = np.random.default_rng(9)
    layer.bias = rng.standard_normal(layer.bias.shape)
    report = cyconv.check_layer(layer, rng.standard_normal(layer.input_shape), seed=10)
    assert [r.name for r in report.results] == ["x", "kernel", "bias"]
    assert report.passed, report


@pytest.mark.parametrize("name", LAYERS)
def test_layer_output_is_its_functional_call(name):
    layer = LAYERS[name]()
    x = np.random.default_rng(11).standard_normal(layer.input_shape)
    y = layer(x)
    assert y.shape == layer.output_shape()
    if isinstance(layer, cyconv.ConvolutionTranspose):
        expected = cyconv.conv2d_transpose(x, layer.kernel, layer.bias, layer.strides, layer.dilations, layer.padding,
                                           output_padding=layer.output_padding, layout=layer.layout,
                                           groups=layer.groups)
    elif isinstance(layer, cyconv.Conv1D):
        expected = cyconv.conv1d(x, layer.kernel, layer.bias, layer.strides, layer.dilations, layer.padding,
                                 layout=layer.layout, groups=layer.groups, padding_mode=layer.padding_mode)
    else:
        expected = cyconv.conv2d(x, layer.kernel, layer.bias, layer.strides, layer.dilations, layer.padding,
                                 layout=layer.layout, groups=layer.groups, padding_mode=layer.padding_mode)
    np.testing.assert_array_equal(y, expected)


def test_kernel_shapes_follow_the_layouts():
    assert cyconv.Convolution((1, 8, 8, 6), 4, 3, groups=2).kernel.shape == (4, 3, 3, 3)
    assert cyconv.Convolution((1, 6, 8, 8), 4, 3, groups=2, layout="NCHW").kernel.shape == (4, 3, 3, 3)
    # the transposed layer keeps the kernel of the convolution it transposes: (C_in, kh, kw, C_out / G)
    transposed = cyconv.ConvolutionTranspose((1, 8, 8, 6), 4, (3, 2), strides=2, groups=2)
    assert transposed.kernel.shape == (6, 3, 2, 2)
    assert transposed.output_shape() == (1, 17, 16, 4)  # (8 - 1) * 2 + 3, (8 - 1) * 2 + 2
    assert cyconv.ConvolutionTranspose((1, 6, 8, 8), 4, 3, layout="NCHW").kernel.shape == (6, 4, 3, 3)
    assert cyconv.Conv1D((1, 10, 6), 6, 5, groups=3).kernel.shape == (6, 5, 2)
    assert cyconv.Conv1D((1, 6, 10), 4, 5, layout="NCW").kernel.shape == (4, 6, 5)


@pytest.mark.parametrize("build, error, pattern", [
    (lambda: cyconv.Convolution((1, 8, 8, 6), 4, 3, groups=4), ValueError,
     r"groups must divide both the channels of x \(6\) and the filters of kernel \(4\), got groups=4"),
    (lambda: cyconv.Convolution((1, 8, 8, 6), 4, 3, padding_mode="mirror"), ValueError,
     r"padding_mode must be one of 'constant', 'reflect', 'replicate', 'circular'"),
    (lambda: cyconv.Convolution((1, 2, 8, 6), 4, 5, padding="SAME", padding_mode="reflect"), ValueError,
     r"padding_mode 'reflect' pads the height by \(2, 2\) but the input height is 2: expected a padding of at most 1"),
    (lambda: cyconv.Convolution((1, 8, 8, 6), 4, 3, padding=1, padding_mode="reflect", pad_value=1.0), ValueError,
     r"pad_value applies to padding_mode 'constant' only"),
    (lambda: cyconv.ConvolutionTranspose((1, 8, 8, 6), 4, 3, strides=2, output_padding=2), ValueError,
     r"output_padding must be smaller than the stride on each axis, got 2 with stride 2 on the height"),
    (lambda: cyconv.ConvolutionTranspose((1, 8, 8, 6), 4, 3, strides=2, padding="SAME", output_padding=1),
     ValueError, r"output_padding must be 0 with padding 'SAME'"),
    (lambda: cyconv.ConvolutionTranspose((1, 8, 8, 6), 5, 3, groups=2), ValueError,
     r"groups must divide filters \(5\), got groups=2"),
    (lambda: cyconv.Conv1D((1, 8, 6), 4, 3, layout="NHWC"), ValueError, r"layout must be 'NWC' or 'NCW'"),
    (lambda: cyconv.Conv1D((1, 8), 4, 3), ValueError, r"input_shape must be a 3-D shape \(N, W, C\), got \(1, 8\)"),
    (lambda: cyconv.ConvGrad(cyconv.Convolution((1, 8, 8, 6), 4, 3, groups=2)), ValueError,
     r"cnn_layer must be a Convolution as in document 001 \(layout 'NHWC', groups=1, padding_mode 'constant'\)"),
])
def test_bad_construction_is_named(build, error, pattern):
    with pytest.raises(error, match=pattern):
        build()
