"""Bad arguments of groups, padding modes, depthwise and transposed convolution: each a ValueError or
TypeError that names the argument, raised before any compiled code runs."""
import numpy as np
import pytest

import cyconv
from helpers import case_ids

X = np.ones((2, 5, 6, 4))          # NHWC, 4 channels
K2 = np.ones((6, 3, 3, 2))          # 6 filters of 4 / 2 channels: groups=2
XT = np.ones((2, 5, 6, 6))          # input of a transposed convolution with K2: 6 channels


def conv2d(**overrides):
    args = dict(x=X, kernel=K2, groups=2)
    args.update(overrides)
    return cyconv.conv2d(args.pop("x"), args.pop("kernel"), **args)


def transpose(**overrides):
    args = dict(x=XT, kernel=K2, groups=2, strides=2)
    args.update(overrides)
    return cyconv.conv2d_transpose(args.pop("x"), args.pop("kernel"), **args)


CASES = [
    ("groups-0", lambda: conv2d(groups=0), ValueError, r"groups must be an integer in \[1, 2147483647\], got 0"),
    ("groups-float", lambda: conv2d(groups=2.0), TypeError, r"groups must be an integer, got 2\.0 of type float"),
    ("groups-not-dividing", lambda: conv2d(groups=3), ValueError,
     r"groups must divide both the channels of x \(4\) and the filters of kernel \(6\), got groups=3"),
    ("groups-kernel-channels", lambda: conv2d(kernel=np.ones((6, 3, 3, 4))), ValueError,
     r"kernel must have 2 input channels \(C / groups = 4 / 2\), got 4: kernel shape \(6, 3, 3, 4\) is "
     r"\(F, kh, kw, C / groups\)"),
    ("groups-nchw-axes", lambda: conv2d(x=np.ones((2, 4, 5, 6)), kernel=np.ones((6, 4, 3, 3)), layout="NCHW"),
     ValueError, r"is \(F, C / groups, kh, kw\) in layout NCHW"),
    ("padding_mode-unknown", lambda: conv2d(padding_mode="mirror", padding=1), ValueError,
     r"padding_mode must be one of 'constant', 'reflect', 'replicate', 'circular' \(or NumPy's 'edge', 'wrap'\), "
     r"got 'mirror'"),
    ("padding_mode-not-str", lambda: conv2d(padding_mode=0), ValueError, r"padding_mode must be one of .*got 0"),
    ("padding_mode-pad_value", lambda: conv2d(padding_mode="replicate", padding=1, pad_value=2.0), ValueError,
     r"pad_value applies to padding_mode 'constant' only, got pad_value=2\.0 with padding_mode 'replicate'"),
    ("reflect-too-wide", lambda: conv2d(padding_mode="reflect", padding=((5, 0), (0, 0))), ValueError,
     r"padding_mode 'reflect' pads the height by \(5, 0\) but the input height is 5: expected a padding of at most 4"),
    ("circular-too-wide", lambda: conv2d(padding_mode="circular", padding=((0, 0), (0, 7))), ValueError,
     r"padding_mode 'circular' pads the width by \(0, 7\) but the input width is 6: expected a padding of at most 6"),
    ("backward-padding_mode", lambda: cyconv.conv2d_backward(np.ones((2, 5, 6, 6)), X, K2, padding=1, groups=2,
                                                             padding_mode="wrapped"), ValueError,
     r"padding_mode must be one of"),
    ("depthwise-kernel", lambda: cyconv.depthwise_conv2d(X, np.ones((8, 3, 3, 2))), ValueError,
     r"kernel must have 1 input channels \(C / groups = 4 / 4\), got 2"),
    ("transpose-channels", lambda: transpose(x=np.ones((2, 5, 6, 4))), ValueError,
     r"x has 4 channels but kernel maps 6: the kernel of conv2d_transpose is the forward convolution's"),
    ("transpose-groups", lambda: transpose(groups=4), ValueError,
     r"groups must divide the channels of x \(6\), got groups=4"),
    ("transpose-output_padding-stride", lambda: transpose(output_padding=2), ValueError,
     r"output_padding must be smaller than the stride on each axis, got 2 with stride 2 on the height"),
    ("transpose-output_padding-negative", lambda: transpose(output_padding=(0, -1)), ValueError,
     r"output_padding\[1\] must be an integer in \[0, 2147483647\], got -1"),
    ("transpose-output_padding-float", lambda: transpose(output_padding=0.5), TypeError,
     r"output_padding must be an int or a pair of ints"),
    ("transpose-output_padding-same", lambda: transpose(padding="SAME", output_padding=1), ValueError,
     r"output_padding must be 0 with padding 'SAME'"),
    ("transpose-padding-unknown", lambda: transpose(padding="FULL"), ValueError,
     r"padding must be 'SAME', 'VALID'.*got 'FULL'"),
    ("transpose-empty-output", lambda: transpose(strides=1, padding=4), ValueError,
     r"the transposed convolution's output height \(5 - 1\) \* 1 - 8 \+ 3 \+ 0 = -1 is not positive; "
     r"expected less padding"),
    ("transpose-bias", lambda: transpose(bias=np.ones(6)), ValueError,
     r"bias must have shape \(4,\) \(one value per output channel\), got \(6,\)"),
    ("transpose-backward-grad_y", lambda: cyconv.conv2d_transpose_backward(np.ones((2, 11, 13, 5)), XT, K2,
                                                                          strides=2, groups=2), ValueError,
     r"grad_y must have the output's shape \(2, 11, 13, 4\) \(NHWC\), got \(2, 11, 13, 5\)"),
    ("transpose-x-3d", lambda: transpose(x=np.ones((5, 6, 6))), ValueError, r"x must be 4-D, got shape \(5, 6, 6\)"),
]


@pytest.mark.parametrize("name, call, error, pattern", CASES, ids=case_ids(CASES))
def test_bad_arguments_are_named(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
