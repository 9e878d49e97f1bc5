"""float32 accuracy on large reductions: C * kh * kw = 512 * 3 * 3 = 4608 products per output.

Stated tolerance (float32 results against a float64 computation of the same float32 inputs by
tests/reference.py):

    max |y32 - y64| / max |y64|                  <= REL_TOL   = 2e-6   (about 17 float32 ulps)
    max over elements |y32 - y64| / sum |terms|   <= TERMS_TOL = 1e-6

Measured on OpenBLAS: about 3e-7 for both. grad_bias sums N * OH * OW values in blocks of 1024
rows in float32 (row after row within a block, no pairwise summation) and the blocks in float64;
it gets its own, looser tolerance:

    grad_bias: max |g32 - g64| / max |g64|           <= BIAS_TOL  = 1e-5

The worst-case bound of a sum of 4608 float32
products, 4608 * 2**-24 = 2.7e-4 of sum |terms|, is far looser; blocked BLAS summation stays
near sqrt-growth. The backward pass is held to the same tolerances, with reductions of the same
length (F * kh * kw = 4608 for grad_x, N * OH * OW = 4608 for grad_kernel).
"""
import numpy as np
import pytest

import cyconv
from reference import conv2d_reference, finite_difference_grad, nchw, nhwc

REL_TOL = 2e-6
TERMS_TOL = 1e-6
BIAS_TOL = 1e-5
SAME3 = ((1, 1), (1, 1))  # SAME for a 3x3 kernel at stride 1


def draw(rng, kind, shape):
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    return rng.uniform(0.0, 1.0, shape).astype(np.float32)  # no cancellation: errors add up


def assert_float32_close(y32, y64, y_abs, rel_tol=REL_TOL, terms_tol=TERMS_TOL):
    """y32 against y64 under both stated tolerances; y_abs is the same computation on |inputs|."""
    assert y32.dtype == np.float32
    err = np.abs(y32.astype(np.float64) - y64)
    rel = err.max() / np.abs(y64).max()
    per_term = (err / np.maximum(y_abs, np.finfo(np.float64).tiny)).max()
    assert rel <= rel_tol, f"max error {rel:.3g} of the output scale, stated tolerance {rel_tol}"
    assert per_term <= terms_tol, f"max error {per_term:.3g} of sum |terms|, stated tolerance {terms_tol}"


def grad_x_reference(gy, kernel):
    """dL/dx of a 3x3 SAME stride-1 convolution: the full correlation of gy with the flipped,
    transposed kernel, (C, kh, kw, F)."""
    flipped = np.ascontiguousarray(np.transpose(kernel[:, ::-1, ::-1, :], (3, 1, 2, 0)))
    return conv2d_reference(gy, flipped, None, (1, 1), (0, 0), SAME3)


def grad_kernel_reference(gy, x):
    """dL/dkernel of a 3x3 SAME stride-1 convolution: x (as C images of N channels) correlated
    with gy (as F kernels of N channels), (C, 3, 3, F) transposed to (F, 3, 3, C)."""
    xt = np.ascontiguousarray(np.transpose(x, (3, 1, 2, 0)))
    gyt = np.ascontiguousarray(np.transpose(gy, (3, 1, 2, 0)))
    return np.transpose(conv2d_reference(xt, gyt, None, (1, 1), (0, 0), SAME3), (3, 1, 2, 0))


def test_gradient_identities_against_finite_differences():
    """The two identities above, checked on a small case where finite differences are cheap."""
    rng = np.random.default_rng(0)
    x, k, gy = rng.standard_normal((2, 4, 5, 3)), rng.standard_normal((2, 3, 3, 3)), rng.standard_normal((2, 4, 5, 2))

    def loss_x(v):
        return np.sum(conv2d_reference(v, k, None, (1, 1), (0, 0), SAME3) * gy)

    def loss_k(v):
        return np.sum(conv2d_reference(x, v, None, (1, 1), (0, 0), SAME3) * gy)

    np.testing.assert_allclose(grad_x_reference(gy, k), finite_difference_grad(loss_x, x, h=1.0), atol=1e-10)
    np.testing.assert_allclose(grad_kernel_reference(gy, x), finite_difference_grad(loss_k, k, h=1.0), atol=1e-10)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("kind", ["normal", "positive"])
def test_forward_float32_with_4608_term_sums(kind, layout):
    rng = np.random.default_rng(1)
    x, k = draw(rng, kind, (2, 8, 8, 512)), draw(rng, kind, (8, 3, 3, 512))
    y64 = conv2d_reference(x, k, None, (1, 1), (0, 0), SAME3)
    y_abs = conv2d_reference(np.abs(x), np.abs(k), None, (1, 1), (0, 0), SAME3)
    xs, ks = (x, k) if layout == "NHWC" else (nchw(x), nchw(k))
    y = cyconv.conv2d(xs, ks, padding="SAME", layout=layout)
    assert_float32_close(y if layout == "NHWC" else nhwc(y), y64, y_abs)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("kind", ["normal", "positive"])
def test_backward_float32_with_4608_term_sums(kind, layout):
    rng = np.random.default_rng(2)
    # grad_x: F * kh * kw = 512 * 9 terms
    x, k, gy = draw(rng, kind, (1, 6, 6, 4)), draw(rng, kind, (512, 3, 3, 4)), draw(rng, kind, (1, 6, 6, 512))
    gx64, gx_abs = grad_x_reference(gy, k), grad_x_reference(np.abs(gy), np.abs(k))
    to = (lambda a: a) if layout == "NHWC" else nchw
    back = (lambda a: a) if layout == "NHWC" else nhwc
    gx, _, gb = cyconv.conv2d_backward(to(gy), to(x), to(k), padding="SAME", layout=layout)
    assert_float32_close(back(gx), gx64, gx_abs)
    # grad_kernel and grad_bias: N * OH * OW = 2 * 48 * 48 = 4608 terms
    x, k, gy = draw(rng, kind, (2, 48, 48, 3)), draw(rng, kind, (4, 3, 3, 3)), draw(rng, kind, (2, 48, 48, 4))
    gk64, gk_abs = grad_kernel_reference(gy, x), grad_kernel_reference(np.abs(gy), np.abs(x))
    _, gk, gb = cyconv.conv2d_backward(to(gy), to(x), to(k), padding="SAME", layout=layout)
    assert_float32_close(back(gk), gk64, gk_abs)
    gy64 = gy.astype(np.float64)
    assert_float32_close(gb, gy64.sum(axis=(0, 1, 2)), np.abs(gy64).sum(axis=(0, 1, 2)), BIAS_TOL, BIAS_TOL)
