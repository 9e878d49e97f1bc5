"""Precision: every element of conv2d's and conv2d_backward's results lies within the rounding
bound of its sum (tests/helpers.py: (gamma_K(u) + 2 gamma_K(2**-53)) * sum|terms|), in float32
and float64, on sums of up to 4609 terms; the bound fails deliberately broken computations; and
float32 results really are computed in float32. That is the bound of every algorithm that sums the
K terms themselves, im2col-GEMM (algorithm="gemm") and the direct kernels ("direct"), each tested;
Winograd, which "auto" takes for wide 3x3 stride-1 layers, is held to its own derived bound at the
end (tests/helpers.py's winograd_error_bound, derived in tests/test_winograd.py).

The bound holds for any summation order, so these tests pass on every BLAS kernel;
test_precision_blas_kernels.py runs this module under each OpenBLAS kernel the machine can run.
Expected values come from tests/reference.py in float64 on the same inputs (float32 data convert
exactly), sum|terms| from the same reference on absolute values. Terms K per element (the bias is
one more term):

  result                     terms summed                     K here
  y[n, oh, ow, f]            kh * kw * C taps + bias          3 * 3 * 512 + 1 = 4609 (and others)
  grad_x[n, h, w, c]         F per tap reading the pixel,     512 * 3 * 3 = 4608 at most:
                             <= kh * kw taps (dcols, then     the two stages form one summation
                             col2im's adds)                   tree, which the bound covers
  grad_kernel[f, i, j, c]    N * OH * OW output pixels        2 * 48 * 48 = 4608
  grad_bias[f]               N * OH * OW output pixels        4608 (partial sums in float32,
                                                              their total in float64: one tree)

The bound is a worst case (2.75e-4 of sum|terms| at K = 4609 in float32, where the measured
errors stay below 2.3e-6 of sum|terms| on every kernel): it catches what moves an element by more
than that -- a wrong tap, a lost channel, filter, image or block of rows, and, in a sum of 145
terms, a single lost term or a weight off by 1 % (test_the_bound_fails_broken_computations). A
float64 computation rounded to float32 stays within the bound; assert_float32_arithmetic catches
it instead. The problems are cached per module (read-only arrays): both layouts and dtypes, and
the broken computations, reuse one reference computation.
"""
import functools

import numpy as np
import pytest

import cyconv
from helpers import (
    DTYPES,
    LAYOUTS,
    assert_float32_arithmetic,
    assert_within_bound,
    from_layout,
    to_layout,
    winograd_error_bound,
)
from reference import conv2d_reference, finite_difference_grad, kernel_grad_reference

SAME3 = ((1, 1), (1, 1))  # SAME for a 3x3 kernel at stride 1
# The algorithms that sum every term of a result themselves (the K-term bound is theirs); the
# direct kernels compute the forward pass and grad_x (the kernel gradient is im2col-GEMM's).
ALGORITHMS = ("gemm", "direct")
KINDS = ("normal", "positive")


def draw(rng, kind, shape):
    """float32 values: standard normal, or uniform in [0, 1) (same signs: errors add up)."""
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    return rng.uniform(0.0, 1.0, shape).astype(np.float32)


def read_only(*arrays):
    for a in arrays:
        a.flags.writeable = False
    return arrays


# ----------------------------------------------------------------------------- forward

# name: (x shape NHWC, kernel shape (F, kh, kw, C), strides, dilations, pads, pad_value)
FORWARD = {
    "3x3-C512": ((2, 8, 8, 512), (8, 3, 3, 512), (1, 1), (0, 0), SAME3, 0.0),
    "1x1-C512": ((2, 8, 8, 512), (8, 1, 1, 512), (1, 1), (0, 0), ((0, 0), (0, 0)), 0.0),
    "5x3-C64-dilated": ((2, 11, 9, 64), (4, 5, 3, 64), (2, 1), (1, 0), ((2, 1), (0, 2)), 0.5),
    "3x3-C16": ((2, 8, 8, 16), (8, 3, 3, 16), (1, 1), (0, 0), SAME3, 0.0),
}


@functools.lru_cache(maxsize=None)
def forward_problem(name, kind):
    """(x, kernel, bias, expected, abs_sum, terms) of FORWARD[name]; float32 arrays, float64
    expected values."""
    x_shape, k_shape, strides, dilations, pads, pad_value = FORWARD[name]
    rng = np.random.default_rng(1)
    x, kernel = draw(rng, kind, x_shape), draw(rng, kind, k_shape)
    bias = draw(rng, kind, k_shape[0])
    geometry = strides, dilations, pads
    expected = conv2d_reference(x, kernel, bias, *geometry, pad_value)
    abs_sum = conv2d_reference(np.abs(x), np.abs(kernel), np.abs(bias), *geometry, abs(pad_value))
    return read_only(x, kernel, bias, expected, abs_sum) + (int(np.prod(k_shape[1:])) + 1,)


def forward(name, kind, layout, dtype=np.float32, kernel=None, algorithm="gemm"):
    """cyconv's y of FORWARD[name] in NHWC (kernel: another kernel in its place)."""
    _, _, strides, dilations, pads, pad_value = FORWARD[name]
    x, true_kernel, bias = forward_problem(name, kind)[:3]
    kernel = true_kernel if kernel is None else kernel
    x, kernel = to_layout(x, layout).astype(dtype), to_layout(kernel, layout).astype(dtype)
    y = cyconv.conv2d(x, kernel, bias.astype(dtype), strides, dilations, pads, layout=layout,
                      pad_value=pad_value, algorithm=algorithm)
    assert y.dtype == dtype
    return from_layout(y, layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(FORWARD))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_forward_within_the_bound(algorithm, name, kind, layout, dtype):
    _, _, _, expected, abs_sum, terms = forward_problem(name, kind)
    assert_within_bound(forward(name, kind, layout, dtype, algorithm=algorithm), expected, abs_sum, terms)


# ----------------------------------------------------------------------------- backward


def grad_x_reference(gy, kernel):
    """dL/dx of a 3x3 SAME stride-1 convolution: the full correlation of gy with the flipped,
    transposed kernel, (C, kh, kw, F)."""
    flipped = np.ascontiguousarray(np.transpose(kernel[:, ::-1, ::-1, :], (3, 1, 2, 0)))
    return conv2d_reference(gy, flipped, None, (1, 1), (0, 0), SAME3)


def test_gradient_identities_against_finite_differences():
    """The two references above, checked on a small case where finite differences are cheap."""
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal((2, 4, 5, 3)), rng.standard_normal((2, 3, 3, 3))
    gy = rng.standard_normal((2, 4, 5, 2))

    def loss_x(v):
        return np.sum(conv2d_reference(v, k, None, (1, 1), (0, 0), SAME3) * gy)

    def loss_k(v):
        return np.sum(conv2d_reference(x, v, None, (1, 1), (0, 0), SAME3) * gy)

    np.testing.assert_allclose(grad_x_reference(gy, k), finite_difference_grad(loss_x, x, h=1.0),
                               atol=1e-10)
    np.testing.assert_allclose(kernel_grad_reference(x, gy, (3, 3), pads=(1, 1)),
                               finite_difference_grad(loss_k, k, h=1.0), atol=1e-10)


@functools.lru_cache(maxsize=None)
def backward_problem(kind):
    """{result: (inputs (gy, x, kernel), expected, abs_sum, terms)}: grad_x sums F * kh * kw =
    512 * 9 terms (a problem of its own), grad_kernel and grad_bias N * OH * OW = 2 * 48 * 48."""
    rng = np.random.default_rng(2)
    x, k = draw(rng, kind, (1, 6, 6, 4)), draw(rng, kind, (512, 3, 3, 4))
    gy = draw(rng, kind, (1, 6, 6, 512))
    read_only(x, k, gy)
    problems = {"grad_x": ((gy, x, k), grad_x_reference(gy, k),
                           grad_x_reference(np.abs(gy), np.abs(k)), 512 * 9)}
    x, k = draw(rng, kind, (2, 48, 48, 3)), draw(rng, kind, (4, 3, 3, 3))
    gy = draw(rng, kind, (2, 48, 48, 4))
    read_only(x, k, gy)
    problems["grad_kernel"] = ((gy, x, k), kernel_grad_reference(x, gy, (3, 3), pads=(1, 1)),
                               kernel_grad_reference(np.abs(x), np.abs(gy), (3, 3), pads=(1, 1)), 2 * 48 * 48)
    gy64 = gy.astype(np.float64)
    problems["grad_bias"] = ((gy, x, k), gy64.sum(axis=(0, 1, 2)),
                             np.abs(gy64).sum(axis=(0, 1, 2)), 2 * 48 * 48)
    return problems


RESULTS = ("grad_x", "grad_kernel", "grad_bias")


def backward(kind, result, layout, dtype=np.float32, algorithm="gemm"):
    """cyconv's `result` of backward_problem(kind), NHWC."""
    (gy, x, kernel), *_ = backward_problem(kind)[result]
    grads = cyconv.conv2d_backward(*(to_layout(a, layout).astype(dtype) for a in (gy, x, kernel)),
                                   padding="SAME", layout=layout, algorithm=algorithm)
    got = grads[RESULTS.index(result)]
    assert got.dtype == dtype
    return got if result == "grad_bias" else from_layout(got, layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("result", RESULTS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_backward_within_the_bound(algorithm, result, kind, layout, dtype):
    _, expected, abs_sum, terms = backward_problem(kind)[result]
    assert_within_bound(backward(kind, result, layout, dtype, algorithm), expected, abs_sum, terms)


# ----------------------------------------------------------------------------- the bound has teeth


# grad_bias is left out: cyconv sums it in float64 on purpose (F sums per call, a negligible cost)
# and rounds once, so it is as exact as a float64 computation; the bound above still holds for it.
FLOAT32_CHECKED = [(result, layout) for result in ("y",) + RESULTS for layout in LAYOUTS
                   if result != "grad_bias"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("result, layout", FLOAT32_CHECKED)
def test_float32_results_are_computed_in_float32(result, layout, algorithm):
    """On thousands of same-signed terms a float32 computation misses the float64 result by more
    than one rounding somewhere; a float64 computation rounded to float32 never does."""
    if result == "y":
        got = forward("3x3-C512", "positive", layout, algorithm=algorithm)
        expected, abs_sum, terms = forward_problem("3x3-C512", "positive")[3:]
    else:
        got = backward("positive", result, layout, algorithm=algorithm)
        _, expected, abs_sum, terms = backward_problem("positive")[result]
    assert_float32_arithmetic(got, expected, abs_sum, terms)


def float64_rounded_to_float32():
    """The forward computed in float64 and rounded once: what 'float64 silently used' returns."""
    return forward("3x3-C512", "positive", "NHWC", np.float64).astype(np.float32)


def test_float64_silently_used_is_caught():
    expected, abs_sum, terms = forward_problem("3x3-C512", "positive")[3:]
    got = float64_rounded_to_float32()
    assert_within_bound(got, expected, abs_sum, terms)  # the bound alone cannot see it
    with pytest.raises(AssertionError, match="computed in float64, not float32"):
        assert_float32_arithmetic(got, expected, abs_sum, terms)


def wrong_tap(kind):
    """The 4609-term forward with taps (0, 0) and (0, 1) exchanged: im2col reading a neighbour."""
    kernel = forward_problem("3x3-C512", kind)[1].copy()
    kernel[:, 0, [0, 1]] = kernel[:, 0, [1, 0]]
    return forward("3x3-C512", kind, "NHWC", kernel=kernel)


def without_channel(name, kind):
    """y minus channel 0's contribution (kh * kw terms per element)."""
    x, kernel = forward_problem(name, kind)[:2]
    _, _, strides, dilations, pads, pad_value = FORWARD[name]
    lost = conv2d_reference(x[..., :1], kernel[..., :1], None, strides, dilations, pads, pad_value)
    return (forward(name, kind, "NHWC") - lost).astype(np.float32)


def without_one_term(kind):
    """The 145-term forward minus one term per element: the centre tap of channel 0."""
    x, kernel = forward_problem("3x3-C16", kind)[:2]
    one_weight = np.zeros_like(kernel)
    one_weight[:, 1, 1, 0] = kernel[:, 1, 1, 0]
    lost = conv2d_reference(x, one_weight, None, (1, 1), (0, 0), SAME3)
    return (forward("3x3-C16", kind, "NHWC") - lost).astype(np.float32)


def one_weight_off(kind):
    """The 145-term forward with kernel[0, 1, 1, 0] 1 % off."""
    kernel = forward_problem("3x3-C16", kind)[1].copy()
    kernel[0, 1, 1, 0] *= 1.01
    return forward("3x3-C16", kind, "NHWC", kernel=kernel)


def backward_without(result, drop, kind):
    """cyconv's `result` with part of its sum removed by drop(gy, x, kernel) -> (gy, x, kernel)."""
    (gy, x, kernel), *_ = backward_problem(kind)[result]
    grads = cyconv.conv2d_backward(*drop(gy.copy(), x, kernel.copy()), padding="SAME")
    return grads[RESULTS.index(result)]


def first_filter_zeroed(gy, x, kernel):
    """grad_x without filter 0's kh * kw terms per element."""
    gy[..., 0], kernel[0] = 0, 0
    return gy, x, kernel


def last_image_zeroed(gy, x, kernel):
    """grad_kernel without the last image's OH * OW terms: a lost chunk of images."""
    gy[-1] = 0
    return gy, x, kernel


def last_rows_zeroed(gy, x, kernel):
    """grad_bias without grad_y's last 512 pixels: a lost block of its blocked sum."""
    gy.reshape(-1, gy.shape[-1])[-512:] = 0
    return gy, x, kernel


# bug: (the problem whose correct result it is compared with, the broken float32 result of kind)
BROKEN = {
    "wrong-tap-K4609": ("3x3-C512", wrong_tap),
    "lost-channel-K4609": ("3x3-C512", functools.partial(without_channel, "3x3-C512")),
    "lost-channel-K961": ("5x3-C64-dilated", functools.partial(without_channel, "5x3-C64-dilated")),
    "lost-term-K145": ("3x3-C16", without_one_term),
    "weight-1%-off-K145": ("3x3-C16", one_weight_off),
    "grad_x-lost-filter": ("grad_x",
                           functools.partial(backward_without, "grad_x", first_filter_zeroed)),
    "grad_kernel-lost-image": ("grad_kernel", functools.partial(
        backward_without, "grad_kernel", last_image_zeroed)),
    "grad_bias-lost-block": ("grad_bias",
                             functools.partial(backward_without, "grad_bias", last_rows_zeroed)),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bug", list(BROKEN))
def test_the_bound_fails_broken_computations(bug, kind):
    """Each computation is right but for one defect; the bound that every correct result meets
    (above) refuses it. The expected values, sum|terms| and K are those of the correct result."""
    problem, broken = BROKEN[bug]
    if problem in FORWARD:
        expected, abs_sum, terms = forward_problem(problem, kind)[3:]
    else:
        _, expected, abs_sum, terms = backward_problem(kind)[problem]
    got = broken(kind)
    assert got.dtype == np.float32
    with pytest.raises(AssertionError, match="outside the bound"):
        assert_within_bound(got, expected, abs_sum, terms)


# ----------------------------------------------------------------------------- Winograd


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("algorithm, tile", [("winograd", 2), ("winograd_4x4", 4)])
def test_winograd_forward_within_the_bound(algorithm, tile, kind, layout, dtype):
    """The 3x3 C = 512 problem by Winograd: within gamma_{C + p} times the algorithm's own absolute
    values (its transforms' coefficients in absolute value), on any BLAS kernel."""
    x, kernel, bias, expected = forward_problem("3x3-C512", kind)[:4]
    y = cyconv.conv2d(to_layout(x, layout).astype(dtype), to_layout(kernel, layout).astype(dtype), bias.astype(dtype),
                      padding="SAME", layout=layout, algorithm=algorithm)
    bound = winograd_error_bound(x, kernel, bias, (1, 1), x.shape[1:3], (0, 0), 0.0, tile, np.dtype(dtype))
    assert np.all(np.abs(from_layout(y, layout).astype(np.float64) - expected) <= bound)

