"""Memory: repeated calls do not grow memory (tracemalloc and RSS), the layer's cached state is
replaced rather than accumulated, and cyconv.set_max_workspace bounds the im2col workspace without
changing results."""
import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import cyconv
from helpers import LAYOUTS, assert_close, from_layout, to_layout
from reference import conv2d_reference, finite_difference_grad


def _traced_growth(step, warmup=5, iterations=25):
    """Bytes still allocated after `iterations` calls of step(), compared with after the warm-up."""
    tracemalloc.start()
    try:
        for _ in range(warmup):
            step()
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(iterations):
            step()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before


def _problem(layout, n=4, h=16, w=16, c=8, f=8, seed=0):
    rng = np.random.default_rng(seed)
    x, k, b = rng.standard_normal((n, h, w, c)), rng.standard_normal((f, 3, 3, c)), rng.standard_normal(f)
    return to_layout(x, layout), to_layout(k, layout), b


@pytest.mark.parametrize("layout", LAYOUTS)
def test_functional_calls_do_not_grow_traced_memory(layout):
    x, k, b = _problem(layout)
    gy = np.ones(cyconv.conv2d(x, k, b, padding="SAME", layout=layout).shape)

    def step():
        cyconv.conv2d(x, k, b, strides=1, padding="SAME", layout=layout)
        cyconv.conv2d_backward(gy, x, k, padding="SAME", layout=layout)
        cols = cyconv.im2col(x, 3, padding="SAME", layout=layout)
        cyconv.col2im(cols, x.shape, 3, padding="SAME", layout=layout)

    # each step allocates several 100 KiB arrays; a leak of any of them would be megabytes
    assert _traced_growth(step) < 64 * 1024


def test_failing_calls_do_not_grow_traced_memory():
    x, k, b = _problem("NHWC")

    def step():
        for bad in (dict(padding="FULL"), dict(strides=0), dict(layout="CHW"), dict(pad_value="0")):
            with pytest.raises((ValueError, TypeError)):
                cyconv.conv2d(x, k, b, **bad)
        with pytest.raises(ValueError):
            cyconv.conv2d_backward(np.ones((1, 2, 3, 4)), x, k)

    assert _traced_growth(step) < 64 * 1024


def test_layer_does_not_grow_traced_memory():
    layer = cyconv.Convolution((4, 16, 16, 8), 8, 3, strides=1, padding="SAME", seed=0)
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((4, 16, 16, 8)) for _ in range(3)]
    gy = np.ones((4, 16, 16, 8))
    count = [0]

    def step():
        x = inputs[count[0] % 3].copy()  # a new input array every call: the cache must not keep old ones
        count[0] += 1
        layer(x)
        layer.backward(gy)

    # one cached input (64 KiB) + gradients stay alive between calls; growth must not scale with calls
    assert _traced_growth(step, iterations=40) < 128 * 1024


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.exists("/proc/self/statm"),
                    reason="RSS from /proc/self/statm is Linux-only")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_repeated_calls_do_not_grow_rss(layout):
    # about 1.3 MiB of cols per call: 60 calls leaking them would be about 80 MiB
    x, k, b = _problem(layout, n=4, h=24, w=24, c=8, f=8, seed=2)
    layer = cyconv.Convolution((4, 24, 24, 8), 8, 3, padding="SAME", seed=0) if layout == "NHWC" else None
    gy = np.ones(cyconv.conv2d(x, k, b, padding="SAME", layout=layout).shape)

    def step():
        cyconv.conv2d(x, k, b, padding="SAME", layout=layout)
        cyconv.conv2d_backward(gy, x, k, padding="SAME", layout=layout)
        if layer is not None:
            layer(x)
            layer.backward(gy)

    for _ in range(10):
        step()
    gc.collect()
    before = _rss_bytes()
    for _ in range(60):
        step()
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 16 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 60 calls"


def test_layer_cache_is_replaced_by_each_forward():
    """backward uses the last forward's input only: gradients are those of x2, not of x1 or x1 + x2."""
    rng = np.random.default_rng(3)
    layer = cyconv.Convolution((2, 6, 5, 2), 3, (3, 2), strides=(1, 2), padding="SAME", seed=0)
    x1, x2 = rng.standard_normal((2, 6, 5, 2)), rng.standard_normal((1, 6, 5, 2))  # different batch sizes
    gy = rng.standard_normal((1, 6, 3, 3))
    layer(x1)
    layer.backward(rng.standard_normal((2, 6, 3, 3)))
    layer(x2)
    gx = layer.backward(gy)
    pads = ((1, 1), (0, 1))  # SAME: 3 taps on 6 rows; 2 taps at stride 2 on 5 columns

    def loss_of_kernel(k):
        return np.sum(conv2d_reference(x2, k, None, (1, 2), (0, 0), pads) * gy)

    def loss_of_x(x):
        return np.sum(conv2d_reference(x, layer.kernel, None, (1, 2), (0, 0), pads) * gy)

    np.testing.assert_allclose(layer.kernel_grad, finite_difference_grad(loss_of_kernel, layer.kernel, h=1.0),
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(gx, finite_difference_grad(loss_of_x, x2, h=1.0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(layer.bias_grad, gy.sum(axis=(0, 1, 2)), rtol=0, atol=1e-12)
    # a second backward without a new forward gives the same gradients (nothing accumulates)
    kernel_grad = layer.kernel_grad.copy()
    np.testing.assert_array_equal(layer.backward(gy), gx)
    np.testing.assert_array_equal(layer.kernel_grad, kernel_grad)


# ----------------------------------------------------------------------------- workspace limit


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("limit", [1, 5000, 40000])
def test_small_workspace_gives_the_same_results(layout, dtype, limit, restore_settings):
    # limit 1: one image per chunk; 5000 / 40000 bytes: a few images per chunk, the last one partial
    x, k, b = _problem(layout, n=7, h=9, w=8, c=3, f=4, seed=4)
    x, k = x.astype(dtype), k.astype(dtype)
    args = dict(strides=(2, 1), dilations=(0, 1), padding="SAME", pad_value=-0.5, layout=layout)
    y_default = cyconv.conv2d(x, k, b.astype(dtype), **args)
    gy = np.cos(y_default)
    grads_default = cyconv.conv2d_backward(gy, x, k, **args)
    cyconv.set_max_workspace(limit)
    assert cyconv.get_max_workspace() == limit
    y_small = cyconv.conv2d(x, k, b.astype(dtype), **args)
    grads_small = cyconv.conv2d_backward(gy, x, k, **args)
    layer = cyconv.Convolution((7, 9, 8, 3), 4, 3, strides=(2, 1), dilations=(0, 1), padding="SAME",
                               pad_value=-0.5, dtype=dtype, seed=0) if layout == "NHWC" else None
    assert_close(y_small, y_default)
    for small, default in zip(grads_small, grads_default):
        assert_close(small, default)
    # both agree with the reference
    expected = conv2d_reference(from_layout(x, layout), from_layout(k, layout), b.astype(dtype),
                                (2, 1), (0, 1), ((1, 1), (2, 2)), -0.5)
    assert_close(from_layout(y_small, layout), expected.astype(dtype))
    if layer is not None:
        y_layer = layer(x)
        cyconv.set_max_workspace(2**28)
        assert_close(y_layer, layer(x))


def test_workspace_limit_bounds_peak_memory(restore_settings):
    # A strided backward forms grad_y @ kernel (dcols) a round of images at a time, as much as the
    # workspace limit allows: one image's dcols is 16 * 16 * 9 * 8 * 8 bytes = 144 KiB, the batch
    # of 16 images' 2.25 MiB. grad_x, which the call returns, is 1 MiB.
    x, k, b = _problem("NHWC", n=16, h=32, w=32, c=8, f=2, seed=5)
    gy = np.ones(cyconv.conv2d(x, k, b, strides=2, padding="SAME").shape)

    def peak(limit):
        cyconv.set_max_workspace(limit)
        tracemalloc.start()
        try:
            grads = cyconv.conv2d_backward(gy, x, k, strides=2, padding="SAME")
            _, top = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return top, grads

    default_peak, grads_default = peak(2**30)
    small_peak, grads_small = peak(150 * 1024)
    assert default_peak > 3.2 * 2**20
    assert small_peak < 1.5 * 2**20, small_peak
    for small, default in zip(grads_small, grads_default):
        assert_close(small, default)


def test_set_max_workspace_validates(restore_settings):
    before = cyconv.get_max_workspace()
    with pytest.raises(ValueError, match=r"max_workspace must be an integer in \[1, .*got 0"):
        cyconv.set_max_workspace(0)
    with pytest.raises(TypeError, match=r"max_workspace must be an integer, got 1000000\.0 of type float"):
        cyconv.set_max_workspace(1e6)
    assert cyconv.get_max_workspace() == before
