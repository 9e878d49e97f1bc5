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


PADDING_MODES = ("constant", "reflect", "replicate", "circular")


def _fits(mode, size, pads, extent):
    """The padded axis holds the kernel, and a reflect / circular padding fits the input."""
    limit = {"reflect": size - 1, "circular": size}.get(mode, max(pads))
    return size + sum(pads) >= extent and max(pads) <= limit


@st.composite
def grouped_cases(draw, max_size=7, max_batch=2, dtypes=DTYPES, modes=PADDING_MODES):
    """conv_cases with groups (1-3 groups of 1-3 channels and 1-3 filters) and a padding mode."""
    groups, cg, fg = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n = draw(st.integers(1, max_batch))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilations = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    padding = draw(paddings())
    mode = draw(st.sampled_from(modes))
    pads = resolved_pads(padding, (h, w), (kh, kw), strides, dilations)
    for axis, size, k in ((0, h, kh), (1, w, kw)):
        assume(_fits(mode, size, pads[axis], (k - 1) * (dilations[axis] + 1) + 1))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c, f = groups * cg, groups * fg
    return dict(
        x=rng.standard_normal((n, h, w, c)).astype(dtype),
        kernel=rng.standard_normal((f, kh, kw, cg)).astype(dtype),
        bias=rng.standard_normal(f).astype(dtype) if draw(st.booleans()) else None,
        strides=strides, dilations=dilations, padding=padding, pads=pads, groups=groups, padding_mode=mode,
        pad_value=draw(st.sampled_from([0.0, 1.5, -2.0])) if mode == "constant" else 0.0,
        layout=draw(st.sampled_from(LAYOUTS)), dtype=dtype,
    )


@st.composite
def transpose_cases(draw, max_size=5, max_batch=2, dtypes=DTYPES):
    """A random conv2d_transpose problem: x (N, H, W, F), the forward kernel (F, kh, kw, C/G),
    strides, dilations, padding, output_padding below the stride (0 with SAME), and the output
    size and paddings computed here from the formula."""
    groups, cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n = draw(st.integers(1, max_batch))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilations = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    padding = draw(paddings())
    same = isinstance(padding, str) and padding.upper() == "SAME"
    output_padding = (0, 0) if same else (draw(st.integers(0, strides[0] - 1)), draw(st.integers(0, strides[1] - 1)))
    extents = [(k - 1) * (d + 1) + 1 for k, d in zip((kh, kw), dilations)]
    if same:
        out_hw = (h * strides[0], w * strides[1])
    else:
        explicit = resolved_pads(padding, (1, 1), (1, 1), (1, 1), (0, 0))  # SAME is excluded here
        out_hw = tuple((size - 1) * s - sum(p) + e + o for size, s, p, e, o
                       in zip((h, w), strides, explicit, extents, output_padding))
        assume(min(out_hw) >= 1)
    pads = resolved_pads(padding, out_hw, (kh, kw), strides, dilations)
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return dict(
        x=rng.standard_normal((n, h, w, groups * fg)).astype(dtype),
        kernel=rng.standard_normal((groups * fg, kh, kw, cg)).astype(dtype),
        bias=rng.standard_normal(groups * cg).astype(dtype) if draw(st.booleans()) else None,
        strides=strides, dilations=dilations, padding=padding, output_padding=output_padding, groups=groups,
        pads=pads, out_hw=out_hw, layout=draw(st.sampled_from(LAYOUTS)), dtype=dtype,
    )
