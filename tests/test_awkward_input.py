"""Valid but awkward inputs: read-only, non-contiguous, Fortran-order and negative-stride views,
memory shared between arguments or with earlier outputs, empty batches, 1x1 images, kernels as
large as the padded input, strides larger than the kernel, integer and float16 data.

Every result is compared with tests/reference.py's direct convolution; gradients with central
finite differences of it (the convolution is linear, so differences with step 1 are exact up to
rounding). Both layouts.
"""
import numpy as np
import pytest

import cyconv
from helpers import LAYOUTS, assert_close, from_layout, to_layout
from reference import conv2d_reference, finite_difference_grad, reference_padding


class Problem:
    """A convolution in NHWC float64 with its reference output and reference gradients."""

    def __init__(self, x_shape, k_shape, strides=(1, 1), dilations=(0, 0), padding="VALID", pad_value=0.0,
                 seed=0, bias=True):
        rng = np.random.default_rng(seed)
        self.x = rng.integers(-4, 5, x_shape).astype(np.float64)
        self.kernel = rng.integers(-4, 5, k_shape).astype(np.float64)
        self.bias = rng.standard_normal(k_shape[0]) if bias else None
        self.strides, self.dilations, self.padding, self.pad_value = strides, dilations, padding, pad_value
        if isinstance(padding, str):
            self.pads = tuple(reference_padding(padding, x_shape[1 + a], k_shape[1 + a], strides[a], dilations[a])
                              for a in (0, 1))
        else:
            self.pads = padding
        self.y = self.forward_ref(self.x, self.kernel)
        self.grad_y = rng.standard_normal(self.y.shape)
        self._grads = None

    def forward_ref(self, x, kernel, bias="default"):
        bias = self.bias if isinstance(bias, str) else bias
        return conv2d_reference(x, kernel, bias, self.strides, self.dilations, self.pads, self.pad_value)

    @property
    def grads(self):
        """(grad_x, grad_kernel, grad_bias) of sum(y * grad_y), by central differences of the reference."""
        if self._grads is None:
            gx = finite_difference_grad(lambda x: np.sum(self.forward_ref(x, self.kernel, None) * self.grad_y),
                                        self.x, h=1.0)
            gk = finite_difference_grad(lambda k: np.sum(self.forward_ref(self.x, k, None) * self.grad_y),
                                        self.kernel, h=1.0)
            self._grads = gx, gk, self.grad_y.sum(axis=(0, 1, 2))
        return self._grads

    def kwargs(self, layout):
        pad = self.padding if isinstance(self.padding, str) else self.pads
        return dict(strides=self.strides, dilations=self.dilations, padding=pad, layout=layout,
                    pad_value=self.pad_value)


def check(problem, layout, x, kernel, bias="default", dtype=np.float64, grads=True):
    """conv2d and conv2d_backward on (x, kernel) in `layout` agree with the reference."""
    bias = to_bias(problem) if isinstance(bias, str) else bias
    y = cyconv.conv2d(x, kernel, bias, **problem.kwargs(layout))
    assert_close(from_layout(y, layout), problem.forward_ref(problem.x, problem.kernel, bias), dtype)
    if grads:
        gy = to_layout(problem.grad_y, layout).astype(dtype)
        gx, gk, gb = cyconv.conv2d_backward(gy, x, kernel, **problem.kwargs(layout))
        ref_gx, ref_gk, ref_gb = problem.grads
        assert_close(from_layout(gx, layout), ref_gx, dtype)
        assert_close(from_layout(gk, layout), ref_gk, dtype)
        assert_close(gb, ref_gb, dtype)


def to_bias(problem):
    return problem.bias


PROBLEM = Problem((2, 5, 6, 3), (4, 3, 2, 3), strides=(1, 2), dilations=(1, 0), padding="SAME", pad_value=0.5)


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _readonly_view(view):
    view.flags.writeable = False
    return view


def _strided(a):
    """A non-contiguous view of a copy of a: every other element of a larger array on each axis."""
    big = np.full(tuple(2 * s for s in a.shape), np.nan)
    big[tuple(slice(None, None, 2) for _ in a.shape)] = a
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    assert not view.flags.c_contiguous
    return view


def _negative(a):
    """A view with negative strides on every axis, equal to a."""
    view = a[tuple(slice(None, None, -1) for _ in a.shape)].copy()[tuple(slice(None, None, -1) for _ in a.shape)]
    assert all(s < 0 for s in view.strides if s)
    return view


def _transposed(a):
    """A view through a transpose: equal to a, not C-contiguous."""
    view = np.ascontiguousarray(np.transpose(a, (3, 2, 1, 0) if a.ndim == 4 else None)).T
    return view


VIEWS = {
    "readonly": _readonly,
    "fortran": np.asfortranarray,
    "strided": _strided,
    "negative-strides": _negative,
    "transposed": _transposed,
    "readonly-strided": lambda a: _readonly_view(_strided(a)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("view", list(VIEWS))
def test_views_of_every_argument(view, layout):
    make = VIEWS[view]
    x, kernel = make(to_layout(PROBLEM.x, layout)), make(to_layout(PROBLEM.kernel, layout))
    np.testing.assert_array_equal(x, to_layout(PROBLEM.x, layout))
    check(PROBLEM, layout, x, kernel, make(PROBLEM.bias))
    # grad_y as the same kind of view
    gx, gk, gb = cyconv.conv2d_backward(make(to_layout(PROBLEM.grad_y, layout)), x, kernel, **PROBLEM.kwargs(layout))
    assert_close(from_layout(gx, layout), PROBLEM.grads[0], np.float64)
    assert_close(from_layout(gk, layout), PROBLEM.grads[1], np.float64)


def test_readonly_inputs_are_not_written_and_outputs_are_writable():
    x, kernel = _readonly(PROBLEM.x), _readonly(PROBLEM.kernel)
    y = cyconv.conv2d(x, kernel, padding="SAME")
    gx, gk, gb = cyconv.conv2d_backward(_readonly(np.ones_like(y)), x, kernel, padding="SAME")
    cols = cyconv.im2col(x, 3)
    for out in (y, gx, gk, gb, cols, cyconv.col2im(_readonly(cols), x.shape, 3)):
        assert out.flags.writeable and out.flags.c_contiguous


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pointwise_im2col_of_a_readonly_input_is_a_copy(layout):
    x = _readonly(to_layout(PROBLEM.x, layout))
    cols = cyconv.im2col(x, 1, layout=layout)
    assert not np.shares_memory(cols, x) and cols.flags.writeable
    cols[...] = 0
    np.testing.assert_array_equal(x, to_layout(PROBLEM.x, layout))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_arguments_sharing_one_buffer(layout):
    """x, kernel, bias and grad_y as overlapping views of one buffer: read, never written."""
    x_shape, k_shape = to_layout(PROBLEM.x, layout).shape, to_layout(PROBLEM.kernel, layout).shape
    x_size, k_size = int(np.prod(x_shape)), int(np.prod(k_shape))
    buffer = np.random.default_rng(1).integers(-3, 4, x_size + 10).astype(np.float64)
    saved = buffer.copy()
    x = buffer[:x_size].reshape(x_shape)
    kernel = buffer[10:10 + k_size].reshape(k_shape)  # overlaps x
    bias = buffer[:k_shape[0]]  # overlaps both
    problem = Problem(PROBLEM.x.shape, PROBLEM.kernel.shape, PROBLEM.strides, PROBLEM.dilations, PROBLEM.padding,
                      PROBLEM.pad_value)
    problem.x, problem.kernel, problem.bias = from_layout(x, layout), from_layout(kernel, layout), bias.copy()
    problem.y = problem.forward_ref(problem.x, problem.kernel)
    problem.grad_y = problem.y[..., ::-1].copy()
    y = cyconv.conv2d(x, kernel, bias, **problem.kwargs(layout))
    assert_close(from_layout(y, layout), problem.y, np.float64)
    np.testing.assert_array_equal(buffer, saved)
    check(problem, layout, x, kernel, bias)
    np.testing.assert_array_equal(buffer, saved)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_outputs_fed_back_as_inputs(layout):
    """The output of one call as the input, kernel and gradient of the next."""
    first = Problem((1, 6, 6, 2), (2, 3, 3, 2), padding="SAME", seed=3)
    y1 = cyconv.conv2d(to_layout(first.x, layout), to_layout(first.kernel, layout), None, padding="SAME",
                       layout=layout)
    # y1 (1, 6, 6, 2) NHWC is a valid input of the same geometry; y1 also serves as grad_y
    expected = conv2d_reference(from_layout(y1, layout), first.kernel, None, (1, 1), (0, 0), first.pads)
    y2 = cyconv.conv2d(y1, to_layout(first.kernel, layout), padding="SAME", layout=layout)
    assert_close(from_layout(y2, layout), expected, np.float64)
    gx, gk, gb = cyconv.conv2d_backward(y1, y1, to_layout(first.kernel, layout), padding="SAME", layout=layout)
    ref = finite_difference_grad(
        lambda x: np.sum(conv2d_reference(x, first.kernel, None, (1, 1), (0, 0), first.pads) * from_layout(y1, layout)),
        from_layout(y1, layout), h=1.0)
    assert_close(from_layout(gx, layout), ref, np.float64)
    # a view of the previous output (one channel sliced out: not contiguous) as x
    view = y1[..., :1] if layout == "NHWC" else y1[:, :1]
    expected = conv2d_reference(from_layout(view, layout), first.kernel[..., :1], None, (1, 1), (0, 0), first.pads)
    got = cyconv.conv2d(view, to_layout(first.kernel[..., :1], layout), padding="SAME", layout=layout)
    assert_close(from_layout(got, layout), expected, np.float64)


def test_im2col_of_a_previous_output_and_col2im_back():
    x = PROBLEM.x
    cols = cyconv.im2col(x, (3, 2), strides=(1, 2), dilations=(1, 0), padding="SAME", pad_value=0.5)
    # im2col then a GEMM with the kernel is the convolution
    y = (cols @ PROBLEM.kernel.reshape(4, -1).T).reshape(PROBLEM.y.shape) + PROBLEM.bias
    assert_close(y, PROBLEM.y, np.float64)
    # col2im of a transposed (non-contiguous) view of cols
    back = cyconv.col2im(np.ascontiguousarray(cols.T).T, x.shape, (3, 2), strides=(1, 2), dilations=(1, 0),
                         padding="SAME")
    ones = finite_difference_grad(lambda v: np.sum(cyconv_free_patches(v) * cols), x, h=1.0)
    assert_close(back, ones, np.float64)


def cyconv_free_patches(x):
    """PROBLEM's patches with the reference: y of a kernel that picks tap t gives column t."""
    p = PROBLEM
    taps = int(np.prod(p.kernel.shape[1:]))
    eye = np.eye(taps).reshape((taps,) + p.kernel.shape[1:])
    y = conv2d_reference(x, eye, None, p.strides, p.dilations, p.pads, 0.0)
    return y.reshape(-1, taps)


# ----------------------------------------------------------------------------- empty batches


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 0), (2, 3))])
def test_empty_batch(layout, padding):
    problem = Problem((0, 5, 6, 3), (4, 3, 2, 3), strides=(2, 1), padding=padding)
    assert problem.y.shape[0] == 0 and problem.y.shape[1:] != (0, 0, 0)
    x, kernel = to_layout(problem.x, layout), to_layout(problem.kernel, layout)
    y = cyconv.conv2d(x, kernel, problem.bias, **problem.kwargs(layout))
    assert y.shape == to_layout(problem.y, layout).shape and y.dtype == np.float64
    gx, gk, gb = cyconv.conv2d_backward(np.zeros(y.shape), x, kernel, **problem.kwargs(layout))
    assert gx.shape == x.shape and gk.shape == kernel.shape and gb.shape == (4,)
    assert not gk.any() and not gb.any()
    cols = cyconv.im2col(x, (3, 2), strides=(2, 1), padding=problem.kwargs(layout)["padding"], layout=layout)
    assert cols.shape[0 if layout == "NHWC" else 0] == 0
    assert cols.shape[1] == 18 if layout == "NHWC" else cols.shape[1:] == (18, y.shape[2] * y.shape[3])
    back = cyconv.col2im(cols, x.shape, (3, 2), strides=(2, 1), padding=problem.kwargs(layout)["padding"],
                         layout=layout)
    assert back.shape == x.shape


def test_empty_batch_through_the_layer():
    layer = cyconv.Convolution((0, 5, 6, 3), 4, 3, padding="SAME", seed=0)
    assert layer.output_shape() == (0, 5, 6, 4)
    y = layer(np.zeros((0, 5, 6, 3), np.float32))
    assert y.shape == (0, 5, 6, 4)
    gx = layer.backward(np.zeros(y.shape))
    assert gx.shape == (0, 5, 6, 3) and not layer.kernel_grad.any() and not layer.bias_grad.any()
    # a non-empty batch through the same layer afterwards
    x = np.random.default_rng(0).standard_normal((1, 5, 6, 3))
    expected = conv2d_reference(x, layer.kernel, layer.bias, (1, 1), (0, 0), ((1, 1), (1, 1)))
    assert_close(layer(x), expected, np.float64)


# ----------------------------------------------------------------------------- extreme shapes

EXTREME = {
    "1x1-image-1x1-kernel": Problem((2, 1, 1, 3), (2, 1, 1, 3)),
    "1x1-image-same": Problem((2, 1, 1, 3), (2, 3, 3, 3), padding="SAME", pad_value=-1.0),
    "1x1-image-padded": Problem((1, 1, 1, 1), (1, 3, 3, 1), padding=((1, 1), (1, 1)), pad_value=2.0),
    "1x1-image-stride": Problem((1, 1, 1, 2), (3, 2, 2, 2), strides=(5, 7), padding="SAME"),
    "kernel-equals-input": Problem((2, 4, 5, 2), (3, 4, 5, 2)),
    "kernel-equals-padded-input": Problem((2, 4, 5, 2), (3, 6, 8, 2), padding=((1, 1), (2, 1)), pad_value=0.25),
    "dilated-kernel-equals-padded-input": Problem((1, 5, 5, 1), (2, 3, 2, 1), dilations=(2, 4),
                                                  padding=((1, 1), (0, 1))),
    "stride-larger-than-kernel": Problem((2, 9, 11, 2), (2, 2, 1, 2), strides=(3, 5)),
    "stride-larger-than-input": Problem((1, 4, 4, 1), (1, 2, 2, 1), strides=(9, 10), padding="SAME"),
    "stride-larger-than-dilated-kernel": Problem((1, 10, 10, 2), (2, 2, 2, 2), strides=(4, 5), dilations=(1, 2)),
    "pointwise": Problem((2, 3, 4, 5), (6, 1, 1, 5)),
    "pointwise-strided": Problem((2, 5, 4, 3), (2, 1, 1, 3), strides=(2, 3)),
    "all-padding-rows": Problem((1, 2, 2, 1), (1, 1, 1, 1), strides=(3, 3), padding=((0, 4), (0, 4)), pad_value=3.0),
    "wide-image": Problem((1, 1, 17, 3), (2, 1, 4, 3), strides=(1, 3), dilations=(0, 1), padding="SAME"),
    "tall-image": Problem((1, 13, 1, 2), (2, 3, 1, 2), dilations=(3, 0), padding="SAME"),
    "many-channels": Problem((1, 3, 3, 40), (5, 2, 2, 40), padding="SAME"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", list(EXTREME))
def test_extreme_shapes(name, layout):
    problem = EXTREME[name]
    check(problem, layout, to_layout(problem.x, layout), to_layout(problem.kernel, layout))


@pytest.mark.parametrize("name", ["kernel-equals-padded-input", "stride-larger-than-kernel", "1x1-image-same"])
def test_extreme_shapes_through_the_layer(name):
    p = EXTREME[name]
    padding = p.padding if isinstance(p.padding, str) else p.pads
    layer = cyconv.Convolution(p.x.shape, p.kernel.shape[0], p.kernel.shape[1:3], p.strides, p.dilations, padding,
                               pad_value=p.pad_value)
    layer.kernel = p.kernel
    layer.bias[...] = p.bias
    assert layer.output_shape() == p.y.shape
    assert_close(layer(p.x), p.y, np.float64)
    assert_close(layer.backward(p.grad_y), p.grads[0], np.float64)
    assert_close(layer.kernel_grad, p.grads[1], np.float64)
    assert_close(layer.bias_grad, p.grads[2], np.float64)


# ----------------------------------------------------------------------------- dtype policy

DTYPE_CASES = [
    # (x dtype, kernel dtype, bias dtype, computed in)
    (np.int32, np.int64, None, np.float64),
    (np.uint8, np.float32, None, np.float64),
    (np.int16, np.int8, np.int64, np.float64),
    (np.float16, np.float16, None, np.float32),
    (np.float16, np.float32, np.float16, np.float32),
    (np.float32, np.float32, np.float64, np.float32),  # x and kernel decide; the bias follows them
    (np.float32, np.float64, None, np.float64),
    (np.float16, np.int32, None, np.float64),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("x_dtype, k_dtype, b_dtype, computed", DTYPE_CASES,
                         ids=[f"{np.dtype(a).name}-{np.dtype(b).name}-{b_dtype and np.dtype(b_dtype).name}"
                              for a, b, b_dtype, _ in DTYPE_CASES])
def test_dtype_policy(x_dtype, k_dtype, b_dtype, computed, layout):
    # small integers: exactly representable in every dtype, so the reference sees the same values
    p = Problem((2, 5, 4, 3), (2, 3, 2, 3), strides=(2, 1), padding="SAME", seed=7, bias=False)
    p.x = np.abs(p.x) if np.dtype(x_dtype).kind == "u" else p.x
    p.y = p.forward_ref(p.x, p.kernel)
    bias = None if b_dtype is None else np.array([1, -2], dtype=b_dtype)
    x, kernel = to_layout(p.x, layout).astype(x_dtype), to_layout(p.kernel, layout).astype(k_dtype)
    y = cyconv.conv2d(x, kernel, bias, **p.kwargs(layout))
    assert_close(from_layout(y, layout), p.forward_ref(p.x, p.kernel, None if bias is None else bias.astype(float)),
                 computed)
    gy = to_layout(p.grad_y, layout)
    gx, gk, gb = cyconv.conv2d_backward(gy.astype(x_dtype if np.dtype(x_dtype).kind == "f" else np.float64), x, kernel,
                                        **p.kwargs(layout))
    # backward has no bias: its dtype comes from x and kernel alone
    computed = np.float32 if all(np.dtype(d).kind == "f" and np.dtype(d).itemsize <= 4 for d in (x_dtype, k_dtype)) \
        else np.float64
    # grad_y's own dtype does not change the computation dtype; its values are rounded to it
    gy_used = gy.astype(x_dtype).astype(np.float64) if np.dtype(x_dtype).kind == "f" else gy
    p.grad_y = from_layout(gy_used, layout)
    p._grads = None
    assert_close(from_layout(gx, layout), p.grads[0], computed)
    assert_close(from_layout(gk, layout), p.grads[1], computed)
    assert_close(gb, p.grads[2], computed)


@pytest.mark.parametrize("dtype, computed", [(np.int64, np.float64), (np.float16, np.float32), (np.uint16, np.float64)])
def test_dtype_policy_im2col_col2im(dtype, computed):
    x = np.arange(2 * 4 * 4 * 2).reshape(2, 4, 4, 2).astype(dtype)
    cols = cyconv.im2col(x, 2, layout="NHWC")
    assert cols.dtype == computed
    np.testing.assert_array_equal(cols, cyconv_free_cols(x.astype(np.float64)))
    back = cyconv.col2im(cols.astype(dtype), x.shape, 2)
    assert back.dtype == computed


def cyconv_free_cols(x):
    """im2col of a 2x2 VALID kernel in NHWC, written out directly."""
    n, h, w, c = x.shape
    rows = [x[b, i:i + 2, j:j + 2, :].reshape(-1) for b in range(n) for i in range(h - 1) for j in range(w - 1)]
    return np.array(rows)


def test_layer_follows_the_dtype_policy():
    layer32 = cyconv.Convolution((1, 4, 4, 2), 3, 2, dtype=np.float32, seed=0)
    x = np.arange(32).reshape(1, 4, 4, 2)
    expected = conv2d_reference(x, layer32.kernel, layer32.bias, (1, 1), (0, 0), ((0, 0), (0, 0)))
    y = layer32(x.astype(np.float16))
    assert y.dtype == np.float32
    assert_close(y, expected, np.float32)
    y = layer32(x.astype(np.int32))  # integers are computed in float64
    assert_close(y, expected, np.float64)
