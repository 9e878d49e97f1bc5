"""Padding modes other than a constant (reflect, replicate, circular), and their adjoints.

A convolution with such a padding is a VALID convolution of the padded input, as in PyTorch: the
engine pads x (`pad`), convolves, and for the gradient adds what each padded pixel received back
into the pixel it copied (`fold`, the adjoint of `pad`). The paddings were checked by
cyconv._problems (reflect: at most size - 1 on a side, circular: at most size).
"""
from dataclasses import replace

import numpy as np

NUMPY_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _spatial_axes(layout):
    return (1, 2) if layout == "NHWC" else (2, 3)


def _pads(geometry):
    return ((geometry.pad_top, geometry.pad_bottom), (geometry.pad_left, geometry.pad_right))


def padded_geometry(geometry):
    """The geometry of the same convolution on the padded input, without padding."""
    g = geometry
    return replace(g, in_h=g.in_h + g.pad_top + g.pad_bottom, in_w=g.in_w + g.pad_left + g.pad_right,
                   pad_top=0, pad_bottom=0, pad_left=0, pad_right=0)


def pad(x, geometry, layout, mode):
    """x with its spatial axes padded as the geometry says, in `mode` (a new C-contiguous array)."""
    widths = [(0, 0)] * 4
    for axis, pads in zip(_spatial_axes(layout), _pads(geometry)):
        widths[axis] = pads
    return np.pad(x, widths, mode=NUMPY_MODES[mode])


def fold(grad_padded, geometry, layout, mode):
    """The adjoint of `pad`: the gradient of the padded input summed back onto the input."""
    grad = grad_padded
    for axis, (before, after), size in zip(_spatial_axes(layout), _pads(geometry), (geometry.in_h, geometry.in_w)):
        grad = _fold_axis(np.moveaxis(grad, axis, 0), before, after, size, mode)
        grad = np.moveaxis(grad, 0, axis)
    return np.ascontiguousarray(grad)


def _fold_axis(grad, before, after, size, mode):
    """Axis 0 of grad has length before + size + after; return the (size, ...) sums."""
    core = grad[before:before + size].copy()
    left, right = grad[:before], grad[before + size:]
    if mode == "reflect":  # padded pixel before - 1 - p copied input pixel p + 1
        core[1:before + 1] += left[::-1]
        core[size - 1 - after:size - 1] += right[::-1]
    elif mode == "replicate":  # every padded pixel copied the edge
        core[0] += left.sum(axis=0)
        core[size - 1] += right.sum(axis=0)
    else:  # circular: the padding before copied the last pixels, the padding after the first
        core[size - before:] += left
        core[:after] += right
    return core
