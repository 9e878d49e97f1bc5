"""Astronomically large geometries, refused (MemoryError / ValueError) before anything is
allocated, at every entry point; sizes near the int limit that are valid compute.

Every message names the argument, what it got and what was expected, and the error comes before
any kernel runs: the compiled kernels have no bounds checks, so a case missing here is a potential
memory corruption. helpers.py holds the valid problem (X, K, B, GY) whose arguments are corrupted.
"""
import tracemalloc

import numpy as np
import pytest

import cyconv
from cyconv import _validation as validation
from helpers import case_ids
from reference import conv2d_reference, nchw

HUGE = 2**31 - 1
ONE = np.ones((1, 1, 1, 1))


def _virtual(shape):
    """An array of `shape` that takes no memory (a broadcast view of one zero)."""
    return np.broadcast_to(np.zeros((1,) * len(shape)), shape)


HUGE_CASES = [
    ("conv2d-padding", lambda: cyconv.conv2d(ONE, ONE, padding=HUGE), MemoryError,
     r"conv2d of x \(1, 1, 1, 1\) .*output 4294967295 x 4294967295.*would need \d+ bytes"),
    ("conv2d-padding-mid", lambda: cyconv.conv2d(ONE, ONE, padding=10**7), MemoryError,
     r"output 20000001 x 20000001.*more than the \d+ bytes .* of memory"),
    ("conv2d-padding-pair", lambda: cyconv.conv2d(ONE, ONE, padding=((0, HUGE), (0, HUGE))),
     MemoryError, r"would need"),
    ("conv2d-padding-over", lambda: cyconv.conv2d(ONE, ONE, padding=2**63), ValueError,
     r"padding must be an integer in \[0, 2147483647\]"),
    ("conv2d-batch", lambda: cyconv.conv2d(_virtual((2**40, 1, 1, 1)), ONE), ValueError,
     r"the batch size of x \(N, H, W, C\) must be in \[0, 2147483647\], got 1099511627776"),
    ("conv2d-batch-memory", lambda: cyconv.conv2d(_virtual((HUGE, 64, 64, 1)), ONE), MemoryError,
     r"would need"),
    ("conv2d-channels",
     lambda: cyconv.conv2d(_virtual((1, 1, 1, 2**33)), _virtual((1, 1, 1, 2**33))), ValueError,
     r"the channels of x .*got 8589934592"),
    ("conv2d-image",
     lambda: cyconv.conv2d(_virtual((1, 2**20, 2**20, 1)), np.ones((1, 3, 3, 1)), padding="SAME"),
     MemoryError, r"would need"),
    ("conv2d-workspace",
     lambda: cyconv.conv2d(_virtual((1, 2**16, 2**16, 1)), _virtual((1, 2**15, 2**15, 1)),
                           padding="SAME"),
     MemoryError, r"would need"),
    ("conv2d-filters", lambda: cyconv.conv2d(ONE, _virtual((2**31 - 1, 1, 1, 1))), MemoryError,
     r"would need"),
    ("backward-padding", lambda: cyconv.conv2d_backward(ONE, ONE, ONE, padding=HUGE), MemoryError,
     r"would need"),
    ("im2col-padding", lambda: cyconv.im2col(ONE, 1, padding=HUGE), MemoryError,
     r"the patches of input_shape \(1, 1, 1, 1\) .*would need"),
    ("im2col-kernel", lambda: cyconv.im2col(_virtual((1, 2**16, 2**16, 1)), 2**16, padding="SAME"),
     MemoryError, r"would need"),
    ("im2col-dilations", lambda: cyconv.im2col(ONE, 2, dilations=HUGE, padding=HUGE), MemoryError,
     r"output 2147483647 x 2147483647"),
    ("col2im-input", lambda: cyconv.col2im(np.zeros((1, 1)), (1, HUGE, HUGE, 1), 1), MemoryError,
     r"the patches of input_shape \(1, 2147483647, 2147483647, 1\)"),
    ("col2im-virtual-cols",
     lambda: cyconv.col2im(_virtual((HUGE * 2**20, 1)), (1, HUGE, 2**20, 1), 1), MemoryError,
     r"would need"),
    ("col2im-batch", lambda: cyconv.col2im(np.zeros((1, 1)), (HUGE, HUGE, 1, 1), 1, layout="NCHW"),
     MemoryError, r"would need"),
    ("col2im-over", lambda: cyconv.col2im(np.zeros((1, 1)), (1, 2**40, 1, 1), 1), ValueError,
     r"input_shape\[1\] must be an integer in \[1, 2147483647\], got 1099511627776"),
    ("layer-input", lambda: cyconv.Convolution((1, HUGE, HUGE, 1), 1, 3), MemoryError,
     r"would need"),
    ("layer-channels", lambda: cyconv.Convolution((1, 1, 1, HUGE), 1, 1, padding=HUGE), MemoryError,
     r"would need"),
]


@pytest.mark.parametrize("name, call, error, pattern", HUGE_CASES, ids=case_ids(HUGE_CASES))
def test_astronomical_geometries_are_refused_before_allocating(name, call, error, pattern):
    tracemalloc.start()
    try:
        with pytest.raises(error, match=pattern):
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak} bytes were allocated before the refusal"


def test_extreme_but_valid_strides_and_dilations_compute():
    """Sizes near the int limit that give a small output run and agree with the reference."""
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((1, 3, 3, 1)), rng.standard_normal((1, 3, 3, 1))
    # SAME with a dilation of 2**31 - 1 gaps: only the centre tap lands inside the image
    y = cyconv.conv2d(x, k, dilations=HUGE, padding="SAME")
    np.testing.assert_allclose(y, x * k[0, 1, 1, 0], rtol=1e-12)
    # a stride as large as the int limit: one output pixel, the top-left window
    y = cyconv.conv2d(x, k[:, :2, :2], strides=HUGE)
    np.testing.assert_allclose(y.ravel(), [np.sum(x[0, :2, :2, 0] * k[0, :2, :2, 0])], rtol=1e-12)
    # a huge one-sided padding at a huge stride: two outputs per axis, the second all padding
    y = cyconv.conv2d(x, k, strides=HUGE, padding=((0, HUGE), (0, HUGE)), pad_value=2.0)
    expected = conv2d_reference(x, k, None, (1, 1), (0, 0), ((0, 0), (0, 0)))[0, 0, 0, 0]
    assert y.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(y[0, 0, 0, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(y[0, 1, 1, 0], 2.0 * k.sum(), rtol=1e-12)
    for layout in ("NCHW",):
        y = cyconv.conv2d(nchw(x), nchw(k), dilations=HUGE, padding="SAME", layout=layout)
        np.testing.assert_allclose(y[:, 0], nchw(x * k[0, 1, 1, 0])[:, 0], rtol=1e-12)


def test_memory_limit_is_checked_before_allocation(monkeypatch):
    """With the limit lowered to 1 MiB, a 10 MiB problem is refused and nothing large is
    allocated."""
    monkeypatch.setattr(validation, "memory_limit", lambda: 2**20)
    x = np.ones((1, 64, 64, 8))  # 256 KiB input; cols 64*64*72*8 = 2.3 MiB
    cols = np.zeros((4096, 72))
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match=r"more than the 1048576 bytes"):
            cyconv.conv2d(x, np.ones((8, 3, 3, 8)), padding="SAME")
        with pytest.raises(MemoryError, match=r"the patches of input_shape \(1, 64, 64, 8\)"):
            cyconv.im2col(x, 3, padding="SAME")
        with pytest.raises(MemoryError, match=r"would need"):
            cyconv.col2im(cols, x.shape, 3, padding="SAME")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**19
    monkeypatch.undo()
    assert cyconv.conv2d(x, np.ones((8, 3, 3, 8)), padding="SAME").shape == (1, 64, 64, 8)
