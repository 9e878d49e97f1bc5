"""Hypothesis strategies for random convolution problems, shared by the property tests."""
import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from helpers import DTYPES, LAYOUTS
from reference import reference_padding


@st.composite
def paddings(draw):
    """'SAME' / 'VALID' in any case, an int, (ph, pw) or ((top, bottom), (left, right))."""
    return draw(
        st.one_of(
            st.sampled_from(["SAME", "VALID", "same", "valid"]),
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                      st.tuples(st.integers(0, 2), st.integers(0, 2))),
        )
    )


def resolved_pads(padding, in_hw, kernel_hw, strides, dilations):
    """((top, bottom), (left, right)) for any padding form, computed without cyconv."""
    if isinstance(padding, str):
        return tuple(
            reference_padding(padding.upper(), in_hw[a], kernel_hw[a], strides[a], dilations[a]) for a in (0, 1)
        )
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return padding


@st.composite
def conv_cases(draw, max_size=8, max_batch=3, dtypes=DTYPES):
    """A random valid conv2d problem: NHWC arrays plus the arguments, with the resolved paddings."""
    n = draw(st.integers(1, max_batch))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilations = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    padding = draw(paddings())
    pads = resolved_pads(padding, (h, w), (kh, kw), strides, dilations)
    for axis, size, k in ((0, h, kh), (1, w, kw)):
        extent = (k - 1) * (dilations[axis] + 1) + 1
        assume(size + sum(pads[axis]) >= extent)
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((n, h, w, c)).astype(dtype),
        kernel=rng.standard_normal((f, kh, kw, c)).astype(dtype),
        bias=rng.standard_normal(f).astype(dtype) if draw(st.booleans()) else None,
        strides=strides,
        dilations=dilations,
        padding=padding,
        pads=pads,
        pad_value=draw(st.sampled_from([0.0, 0.0, 1.5, -2.0])),
        layout=draw(st.sampled_from(LAYOUTS)),
        dtype=dtype,
    )
