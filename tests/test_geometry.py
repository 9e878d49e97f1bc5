"""Output sizes and paddings: SAME / VALID / explicit, against rules re-derived in reference.py."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cyconv import conv_geometry
from reference import reference_padding


@given(size=st.integers(1, 40), kernel=st.integers(1, 7), stride=st.integers(1, 5), dilation=st.integers(0, 3))
def test_same_follows_tensorflow(size, kernel, stride, dilation):
    g = conv_geometry((size, 1), (kernel, 1), (stride, 1), (dilation, 0), "SAME")
    assert g.out_h == -(-size // stride)
    assert (g.pad_top, g.pad_bottom) == reference_padding("SAME", size, kernel, stride, dilation)


@given(size=st.integers(1, 40), kernel=st.integers(1, 7), stride=st.integers(1, 5), dilation=st.integers(0, 3))
def test_valid_counts_the_windows_that_fit(size, kernel, stride, dilation):
    extent = (kernel - 1) * (dilation + 1) + 1
    windows = len([start for start in range(0, size, stride) if start + extent <= size])
    if windows == 0:
        with pytest.raises(ValueError, match="smaller than the dilated kernel"):
            conv_geometry((1, size), (1, kernel), (1, stride), (0, dilation), "VALID")
    else:
        g = conv_geometry((1, size), (1, kernel), (1, stride), (0, dilation), "valid")
        assert g.out_w == windows
        assert (g.pad_left, g.pad_right) == (0, 0)


def test_same_puts_the_odd_padding_pixel_after():
    g = conv_geometry((3, 3), (2, 2), 1, 0, "SAME")  # document 001's example
    assert (g.out_h, g.out_w) == (3, 3)
    assert (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right) == (0, 1, 0, 1)


@pytest.mark.parametrize(
    "padding, expected",
    [
        (2, (2, 2, 2, 2)),
        ((1, 3), (1, 1, 3, 3)),
        (((0, 1), (2, 3)), (0, 1, 2, 3)),
        ([[0, 1], [2, 3]], (0, 1, 2, 3)),
    ],
)
def test_explicit_padding_forms(padding, expected):
    g = conv_geometry((5, 6), (3, 3), 1, 0, padding)
    assert (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right) == expected
    assert g.out_h == 5 + expected[0] + expected[1] - 2
    assert g.out_w == 6 + expected[2] + expected[3] - 2


def test_dilation_widens_the_kernel():
    g = conv_geometry((9, 9), (3, 3), 1, (1, 2), "VALID")  # extents 5 and 7
    assert (g.out_h, g.out_w) == (5, 3)


def test_require_exact_rejects_fractional_output_sizes():
    assert conv_geometry((5, 5), (2, 2), 2, 0, 1, require_exact=False).out_h == 3
    with pytest.raises(ValueError, match="not an integer"):
        conv_geometry((5, 5), (2, 2), 2, 0, 1, require_exact=True)
