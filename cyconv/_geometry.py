"""The shape arithmetic of a 2-D convolution, and the validation of its scalar arguments.

Every output-size rule in cyconv is in `conv_geometry`; nothing else computes an output size.

Conventions (see DESIGN.md):
  dilation d   d gaps between kernel taps (document 001): d = 0 is the ordinary kernel, and the
               effective extent is (k - 1) * (d + 1) + 1. PyTorch's / TensorFlow's dilation is d + 1.
  "SAME"       TensorFlow's rule: out = ceil(in / stride), total padding
               max((out - 1) * stride + extent - in, 0), the smaller half before (top / left),
               the larger half after (bottom / right).
  "VALID"      no padding: out = (in - extent) // stride + 1; an input smaller than the extent is
               an error.
  explicit     an int p, a pair (ph, pw), or ((top, bottom), (left, right)).
"""
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Every size, stride, dilation and padding is below this, so products of two of them fit in the
# kernels' 64-bit index arithmetic.
MAX_INDEX = 2**31 - 1


@dataclass(frozen=True)
class Geometry:
    """A validated convolution over one spatial plane: sizes in pixels, dilation as gaps."""

    in_h: int
    in_w: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    out_h: int
    out_w: int

    @property
    def patch_size(self):
        """Taps per channel, kh * kw."""
        return self.kernel_h * self.kernel_w

    @property
    def is_pointwise(self):
        """A 1x1 kernel at stride 1 without padding: im2col is the identity."""
        return (self.kernel_h, self.kernel_w, self.stride_h, self.stride_w) == (1, 1, 1, 1) and not any(
            (self.pad_top, self.pad_bottom, self.pad_left, self.pad_right)
        )

    def kernel_args(self):
        """The geometry arguments every kernel in cyconv._im2col takes, in its order."""
        return (
            self.out_h, self.out_w, self.kernel_h, self.kernel_w, self.stride_h, self.stride_w,
            self.dilation_h, self.dilation_w, self.pad_top, self.pad_left,
        )


def integer(name, value, minimum, maximum=MAX_INDEX):
    """`value` as a Python int in [minimum, maximum].

    Anything with __index__ is an integer (int, NumPy integers, 0-d integer arrays); bool, float,
    str and None are TypeErrors, values out of range ValueErrors."""
    if isinstance(value, (bool, np.bool_)) or getattr(value, "dtype", None) == np.bool_:
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {show(value)} of type {type(value).__name__}") from None
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}], got {value}")
    return value


def pair(name, value, minimum):
    """An int or a sequence of two ints, each in [minimum, MAX_INDEX], as a tuple (height, width)."""
    if not is_sequence(value):
        if not _is_integer_like(value):
            raise TypeError(
                f"{name} must be an int or a pair of ints (height, width), each >= {minimum}, "
                f"got {show(value)} of type {type(value).__name__}"
            )
        v = integer(name, value, minimum)
        return (v, v)
    if len(value) != 2:
        raise ValueError(
            f"{name} must be an int or a pair of ints (height, width), each >= {minimum}, "
            f"got {show(value)} of length {len(value)}"
        )
    return (integer(f"{name}[0]", value[0], minimum), integer(f"{name}[1]", value[1], minimum))


def show(value, limit=80):
    """repr(value), shortened to about `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_integer_like(value):
    """True for what `integer` may accept (it still checks the range and rejects bool)."""
    if isinstance(value, (bool, np.bool_)):
        return True  # let `integer` reject it with its own message
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def is_sequence(value):
    """An ordered, indexable collection: list, tuple, 1-D-or-more ndarray, other Sequence.

    str / bytes are not (they are padding modes or nonsense); sets and dicts are not (no order);
    0-d arrays are not (len() fails on them)."""
    if isinstance(value, np.ndarray):
        return value.ndim >= 1
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


PADDING_FORMS = "'SAME', 'VALID', an int, (ph, pw) or ((top, bottom), (left, right)) of ints >= 0"


def _explicit_padding(padding):
    """((top, bottom), (left, right)) from an int, (ph, pw) or ((top, bottom), (left, right))."""
    if is_sequence(padding):
        if len(padding) != 2:
            raise ValueError(f"padding must be {PADDING_FORMS}, got {show(padding)} of length {len(padding)}")
        nested = [is_sequence(p) for p in padding]
        if all(nested):
            return pair("padding[0]", padding[0], 0), pair("padding[1]", padding[1], 0)
        if any(nested):
            raise ValueError(f"padding must be {PADDING_FORMS}, got {show(padding)}, a mix of both forms")
    elif not _is_integer_like(padding):
        raise TypeError(f"padding must be {PADDING_FORMS}, got {show(padding)} of type {type(padding).__name__}")
    ph, pw = pair("padding", padding, 0)
    return (ph, ph), (pw, pw)


def _same_padding(size, extent, stride):
    """TensorFlow's SAME rule on one axis: (out, before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + extent - size, 0)
    return out, total // 2, total - total // 2


def _padded_output(axis, size, extent, stride, before, after, require_exact):
    """out = (size + before + after - extent) // stride + 1, after checking the kernel fits."""
    span = size + before + after - extent
    if span < 0:
        raise ValueError(
            f"the input {axis} {size} with padding ({before}, {after}) is smaller than the dilated "
            f"kernel {axis} {extent}; expected an input {axis} of at least {extent - before - after}"
        )
    if require_exact and span % stride:
        raise ValueError(
            f"invalid dimensions: output {axis} ({size} - {extent} + {before + after}) / {stride} + 1 "
            f"= {span / stride + 1} is not an integer; choose padding or stride so that it is"
        )
    return span // stride + 1


def conv_geometry(in_hw, kernel_hw, strides=1, dilations=0, padding="VALID", *, require_exact=False):
    """Validate the scalar arguments of a convolution and compute its output size.

    in_hw, kernel_hw  (height, width) of the input and of the kernel (taps), each >= 1
    strides           int or (sh, sw), each >= 1
    dilations         int or (dh, dw), each >= 0: gaps between taps (0 = ordinary kernel)
    padding           'SAME' | 'VALID' (any case) | int | (ph, pw) | ((top, bottom), (left, right))
    require_exact     documents 000 / 002: an explicit padding whose output size
                      (in - extent + pads) / stride + 1 is not an integer is an error

    Arguments made of Python ints, strings and tuples are remembered (a layer's repeated calls
    pay for the checks once); anything else is checked every time.
    """
    arguments = (in_hw, kernel_hw, strides, dilations, padding, require_exact)
    key = _typed_key(arguments)
    if key is None:
        return _conv_geometry(*arguments)
    if key not in _remembered:
        if len(_remembered) >= 1024:
            _remembered.clear()
        _remembered[key] = _conv_geometry(*arguments)
    return _remembered[key]


_remembered = {}


def _typed_key(value):
    """A key that tells apart arguments Python considers equal but cyconv does not (True and 1,
    2.0 and 2): each int, str and bool with its type; None for anything else (not remembered)."""
    if type(value) in (int, str, bool):
        return (type(value), value)
    if type(value) is tuple:
        keys = tuple(_typed_key(v) for v in value)
        return None if None in keys else keys
    return None


def _conv_geometry(in_hw, kernel_hw, strides, dilations, padding, require_exact):
    in_h, in_w = pair("input size", in_hw, 1)
    kernel_h, kernel_w = pair("kernel_size", kernel_hw, 1)
    stride_h, stride_w = pair("strides", strides, 1)
    dil_h, dil_w = pair("dilations", dilations, 0)
    extent_h = (kernel_h - 1) * (dil_h + 1) + 1
    extent_w = (kernel_w - 1) * (dil_w + 1) + 1

    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "SAME":
            out_h, top, bottom = _same_padding(in_h, extent_h, stride_h)
            out_w, left, right = _same_padding(in_w, extent_w, stride_w)
            return Geometry(in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, dil_h, dil_w,
                            top, bottom, left, right, out_h, out_w)
        if mode != "VALID":
            raise ValueError(f"padding must be {PADDING_FORMS}, got {show(padding)}")
        (top, bottom), (left, right) = (0, 0), (0, 0)
    else:
        (top, bottom), (left, right) = _explicit_padding(padding)

    out_h = _padded_output("height", in_h, extent_h, stride_h, top, bottom, require_exact)
    out_w = _padded_output("width", in_w, extent_w, stride_w, left, right, require_exact)
    return Geometry(in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, dil_h, dil_w,
                    top, bottom, left, right, out_h, out_w)


def transposed_geometry(in_hw, kernel_hw, strides=1, dilations=0, padding="VALID", output_padding=0):
    """The Geometry of the convolution that a transposed convolution of an input of size in_hw
    transposes: its input has the transposed output's size, its output has size in_hw.

    The transposed output size on each axis is
        in * stride                                               for 'SAME' (Keras' rule)
        (in - 1) * stride - (before + after) + extent + output_padding   otherwise
    with output_padding in [0, stride) (0 for 'SAME'): the extra rows / columns at the bottom /
    right, which no output of the forward convolution reads."""
    in_h, in_w = pair("input size", in_hw, 1)
    kernel_h, kernel_w = pair("kernel_size", kernel_hw, 1)
    stride_h, stride_w = pair("strides", strides, 1)
    dil_h, dil_w = pair("dilations", dilations, 0)
    extra_h, extra_w = pair("output_padding", output_padding, 0)
    for axis, extra, stride in (("height", extra_h, stride_h), ("width", extra_w, stride_w)):
        if extra >= stride:
            raise ValueError(
                f"output_padding must be smaller than the stride on each axis, got {extra} with stride "
                f"{stride} on the {axis}"
            )
    if isinstance(padding, str) and padding.upper() == "SAME":
        if (extra_h, extra_w) != (0, 0):
            raise ValueError(
                f"output_padding must be 0 with padding 'SAME' (the output size is the input size times the "
                f"stride), got {output_padding!r}"
            )
        out_hw = (in_h * stride_h, in_w * stride_w)
    else:
        if isinstance(padding, str) and padding.upper() != "VALID":
            raise ValueError(f"padding must be {PADDING_FORMS}, got {show(padding)}")
        pads = ((0, 0), (0, 0)) if isinstance(padding, str) else _explicit_padding(padding)
        out_hw = []
        for axis, size, k, d, s, (before, after), extra in (
            ("height", in_h, kernel_h, dil_h, stride_h, pads[0], extra_h),
            ("width", in_w, kernel_w, dil_w, stride_w, pads[1], extra_w),
        ):
            out = (size - 1) * s - before - after + (k - 1) * (d + 1) + 1 + extra
            if out < 1:
                raise ValueError(
                    f"the transposed convolution's output {axis} ({size} - 1) * {s} - {before + after} + "
                    f"{(k - 1) * (d + 1) + 1} + {extra} = {out} is not positive; expected less padding"
                )
            out_hw.append(out)
    for axis, size in zip(("height", "width"), out_hw):
        if size > MAX_INDEX:
            raise ValueError(f"the transposed convolution's output {axis} {size} is larger than {MAX_INDEX}")
    return conv_geometry(out_hw, (kernel_h, kernel_w), (stride_h, stride_w), (dil_h, dil_w), padding)
