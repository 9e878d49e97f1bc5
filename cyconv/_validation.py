"""Validation of the arrays handed to cyconv, and the dtype policy.

Every public entry point calls these (mostly through cyconv._problems) before any compiled code
runs; the compiled code trusts what they produce (contiguous arrays of one float dtype, shapes
that agree with a `Geometry`).

Memory: a call whose arrays would not fit in this machine's memory is a MemoryError raised here,
before anything is allocated (see memory_limit).

dtype policy: float32 (and float16) inputs are computed in float32; anything else that is real
(float64, integers) in float64. x and the kernel decide; a bias is converted to their dtype.
bool, complex, object, string and structured data, and long double, are TypeErrors.
"""
import functools
import os
from numbers import Real

import numpy as np

from ._geometry import MAX_INDEX, integer, is_sequence, show

LAYOUTS = ("NHWC", "NCHW")
# How each layout orders the axes of the data, for messages.
DATA_AXES = {"NHWC": "(N, H, W, C)", "NCHW": "(N, C, H, W)", "NWC": "(N, W, C)", "NCW": "(N, C, W)"}


def layout_name(layout):
    """'NHWC' or 'NCHW' (any case accepted)."""
    if not isinstance(layout, str) or layout.upper() not in LAYOUTS:
        raise ValueError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")
    return layout.upper()


def real_array(name, value, ndim=None):
    """`value` as an ndarray of real numbers with `ndim` dimensions (an int, a tuple of the
    accepted ones, or None for any); its dtype unchanged."""
    ndims = ndim if isinstance(ndim, tuple) else (ndim,)
    dims = " or ".join(f"{d}-D" for d in ndims)
    what = "an array of real numbers" if ndim is None else f"a {dims} array of real numbers"
    if value is None:
        raise TypeError(f"{name} must be {what}, got None")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{name} must be {what}, got {show(value)} ({error})") from None
    if array.dtype.kind not in "iuf" or array.dtype.itemsize > 8:
        raise TypeError(
            f"{name} must hold real numbers (float32, float64 or integers), got dtype {array.dtype}"
        )
    if ndim is not None and array.ndim not in ndims:
        raise ValueError(f"{name} must be {dims}, got shape {array.shape} ({array.ndim}-D)")
    return array


def shape_tuple(name, value, expected, minimums):
    """A shape given as a sequence of len(minimums) ints, each >= its minimum, as a tuple.

    `expected` describes it for the message, e.g. "(C, H, W), the shape of one input image"."""
    if not is_sequence(value) or len(value) != len(minimums):
        raise ValueError(f"{name} must be {expected}, got {show(value)}")
    return tuple(integer(f"{name}[{i}]", size, low) for i, (size, low) in enumerate(zip(value, minimums)))


@functools.lru_cache(maxsize=None)
def memory_limit():
    """Bytes one call may plan to allocate: this machine's physical memory (2**48 if unknown).

    A geometry whose arrays would not fit is refused with a MemoryError before anything is
    allocated, instead of letting the allocation succeed lazily and the OS kill the process
    while the kernels fill it."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 2**48
    return pages * page_size if pages > 0 and page_size > 0 else 2**48


def check_memory(what, nbytes):
    """MemoryError when a call would need `nbytes` (> memory_limit()) for `what`."""
    limit = memory_limit()
    if nbytes > limit:
        raise MemoryError(
            f"{what} would need {nbytes} bytes ({nbytes / 2**30:.4g} GiB), more than the "
            f"{limit} bytes ({limit / 2**30:.4g} GiB) of memory of this machine; expected a smaller "
            f"input, kernel, padding or batch"
        )


def dimension(name, value, minimum, shape):
    """One axis of an array's shape, checked to be in [minimum, MAX_INDEX]; names the shape."""
    if not minimum <= value <= MAX_INDEX:
        raise ValueError(f"{name} must be in [{minimum}, {MAX_INDEX}], got {value} (shape {shape})")
    return value


def compute_dtype(*arrays):
    """float32 when every array is float16/float32, float64 otherwise."""
    if all(a.dtype.kind == "f" and a.dtype.itemsize <= 4 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def real_scalar(name, value):
    """A real number (int or float, not bool) as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a real number (int or float), got {show(value)} of type {type(value).__name__}"
        )
    return float(value)


def nhwc_order(shape, layout):
    """(N, H, W, C) from the shape of a 4-D array in `layout`."""
    if layout == "NHWC":
        return tuple(shape)
    n, c, h, w = shape
    return (n, h, w, c)


def in_layout(n, h, w, c, layout):
    """The 4-D shape (n, h, w, c) written in `layout`."""
    return (n, h, w, c) if layout == "NHWC" else (n, c, h, w)
