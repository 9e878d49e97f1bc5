"""Document 001's Convolution layer: its worked example, its API, and its gradients."""
import numpy as np
import pytest
from hypothesis import given
from numpy.testing import assert_allclose

from cyconv import ConvGrad, Convolution, _validation
from helpers import DOCUMENT_OUTPUT, assert_within_bound, document_input, gamma
from reference import conv2d_reference, finite_difference_grad
from strategies import conv_cases


def test_document_worked_example():
    conv = Convolution((1, 3, 3, 2), 1, (2, 2), (1, 1), (0, 0), "SAME")
    conv.kernel = np.ones((1, 2, 2, 2))
    assert conv.output_shape() == (1, 3, 3, 1)
    y = conv(document_input())
    assert y.shape == (1, 3, 3, 1)
    assert_allclose(y[0, :, :, 0], DOCUMENT_OUTPUT, rtol=0, atol=1e-12)


def test_document_example_backward_against_finite_differences():
    conv = Convolution((1, 3, 3, 2), 1, (2, 2), (1, 1), (0, 0), "SAME")
    conv.kernel = np.ones((1, 2, 2, 2))
    x = document_input()
    y = conv(x)
    grad_x = conv.backward(np.ones_like(y))  # L = sum(y)
    # With a kernel of ones, dL/dx counts the windows that read each pixel (SAME pads bottom/right).
    assert_allclose(grad_x[0, :, :, 0], [[1, 2, 2], [2, 4, 4], [2, 4, 4]])
    assert_allclose(conv.bias_grad, [9.0])
    fd_kernel = finite_difference_grad(lambda k: conv2d_reference(x, k, None, (1, 1), (0, 0), ((0, 1), (0, 1))).sum(),
                                       conv.kernel)
    assert_allclose(conv.kernel_grad, fd_kernel, rtol=0, atol=1e-9 * max(1, np.abs(fd_kernel).max()))


@given(conv_cases(max_size=6, dtypes=(np.float64,)))
def test_layer_gradients_match_finite_differences(case):
    x = case["x"]
    f, kh, kw, c = case["kernel"].shape
    conv = Convolution(x.shape, f, (kh, kw), case["strides"], case["dilations"], case["padding"],
                       pad_value=case["pad_value"], seed=0)
    conv.kernel = case["kernel"]
    y = conv(x)
    probe = np.random.default_rng(1).standard_normal(y.shape)
    grad_x = conv.backward(probe)

    def loss_of(x_=x, kernel_=case["kernel"], bias_=np.zeros(f)):
        reference = conv2d_reference(x_, kernel_, bias_, case["strides"], case["dilations"], case["pads"],
                                     case["pad_value"])
        return float(np.sum(reference * probe))

    tol = 1e-9 * max(1.0, float(np.abs(y * probe).sum()))
    assert_allclose(grad_x, finite_difference_grad(lambda v: loss_of(x_=v), x), rtol=0, atol=tol)
    assert_allclose(conv.kernel_grad, finite_difference_grad(lambda v: loss_of(kernel_=v), case["kernel"]),
                    rtol=0, atol=tol)
    assert_allclose(conv.bias_grad, finite_difference_grad(lambda v: loss_of(bias_=v), np.zeros(f)),
                    rtol=0, atol=tol)


def test_output_shape_strides_and_dilation():
    conv = Convolution((4, 10, 9, 3), 5, (3, 2), strides=(2, 3), dilations=(1, 0), padding="VALID")
    # extents 5 and 2: (10 - 5) // 2 + 1 = 3, (9 - 2) // 3 + 1 = 3
    assert conv.output_shape() == (4, 3, 3, 5)
    assert conv.kernel.shape == (5, 3, 2, 3)
    assert conv(np.zeros((4, 10, 9, 3))).shape == (4, 3, 3, 5)


def test_batch_size_may_differ_but_image_shape_may_not():
    conv = Convolution((8, 5, 5, 2), 3, 3, padding="SAME", seed=0)
    assert conv(np.ones((2, 5, 5, 2))).shape == (2, 5, 5, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 5, 5, 2\)"):
        conv(np.ones((2, 5, 5, 3)))


def test_kernel_assignment_checks_the_shape():
    conv = Convolution((1, 5, 5, 2), 3, 3, seed=0)
    with pytest.raises(ValueError, match=r"kernel must have shape \(3, 3, 3, 2\)"):
        conv.kernel = np.ones((3, 3, 3, 1))


def test_backward_before_forward_is_an_error():
    conv = Convolution((1, 5, 5, 2), 3, 3, seed=0)
    with pytest.raises(ValueError, match="forward"):
        conv.backward(np.ones((1, 3, 3, 3)))


def test_backward_checks_the_gradient_shape():
    conv = Convolution((1, 5, 5, 2), 3, 3, seed=0)
    conv(np.ones((1, 5, 5, 2)))
    with pytest.raises(ValueError, match="grad_y must have the output's shape"):
        conv.backward(np.ones((1, 5, 5, 3)))


def test_he_initialisation_is_seeded():
    a = Convolution((1, 8, 8, 16), 64, 3, seed=7)
    b = Convolution((1, 8, 8, 16), 64, 3, seed=7)
    assert np.array_equal(a.kernel, b.kernel)
    assert abs(a.kernel.std() - np.sqrt(2 / (3 * 3 * 16))) < 0.02
    assert np.array_equal(a.bias, np.zeros(64))


def test_without_bias():
    conv = Convolution((1, 4, 4, 1), 2, 2, use_bias=False, seed=0)
    y = conv(np.ones((1, 4, 4, 1)))
    conv.backward(np.ones_like(y))
    assert conv.bias is None and conv.bias_grad is None


def test_float32_layer_computes_in_float32():
    conv = Convolution((2, 6, 6, 3), 4, 3, padding="SAME", dtype=np.float32, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype(np.float32)
    y = conv(x)
    assert y.dtype == np.float32
    same = (1, 1), (0, 0), ((1, 1), (1, 1))
    expected = conv2d_reference(x, conv.kernel, conv.bias, *same)
    abs_sum = conv2d_reference(np.abs(x), np.abs(conv.kernel), np.abs(conv.bias), *same)
    assert_within_bound(y, expected, abs_sum, terms=3 * 3 * 3 + 1)


def test_document_attributes_and_execute():
    conv = Convolution((4, 10, 9, 3), 5, (3, 2), strides=2, dilations=(1, 0), padding="VALID", seed=0)
    assert (conv.batch, conv.height, conv.width, conv.channel) == (4, 10, 9, 3)
    assert conv.filters == 5
    assert conv.kernel_size == (3, 2)
    assert conv.strides == (2, 2) and conv.dilations == (1, 0) and conv.padding == "VALID"
    assert conv.output_size == conv.output_shape() == (4, 3, 4, 5)
    x = np.random.default_rng(0).standard_normal((4, 10, 9, 3))
    assert_allclose(conv.execute(x), conv(x), rtol=0, atol=0)


def jacobian_reference(x, f, kernel_hw, strides, dilations, pads, pad_value):
    """J[b, h, w, f, i, j, c] = d y[b, h, w, f] / d kernel[f, i, j, c], by loops over the formula:
    the input pixel tap (i, j) of output (h, w) reads, pad_value outside x."""
    n, height, width, c = x.shape
    (kh, kw), (sh, sw), (dh, dw), ((top, bottom), (left, right)) = kernel_hw, strides, dilations, pads
    oh = (height + top + bottom - (kh - 1) * (dh + 1) - 1) // sh + 1
    ow = (width + left + right - (kw - 1) * (dw + 1) - 1) // sw + 1
    jac = np.zeros((n, oh, ow, f, kh, kw, c))
    for b in range(n):
        for h in range(oh):
            for w in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        row, col = h * sh - top + i * (dh + 1), w * sw - left + j * (dw + 1)
                        inside = 0 <= row < height and 0 <= col < width
                        jac[b, h, w, :, i, j, :] = x[b, row, col, :] if inside else pad_value
    return jac


def _layer_for(case):
    f, kh, kw, _ = case["kernel"].shape
    conv = Convolution(case["x"].shape, f, (kh, kw), case["strides"], case["dilations"], case["padding"],
                       pad_value=case["pad_value"], seed=0)
    conv.kernel = case["kernel"]
    return conv


@given(conv_cases(max_size=6, dtypes=(np.float64,)))
def test_convgrad_jacobian_matches_the_formula(case):
    conv = _layer_for(case)
    jac = ConvGrad(conv).gradient(case["x"])
    expected = jacobian_reference(case["x"], conv.filters, conv.kernel_size, case["strides"], case["dilations"],
                                  case["pads"], case["pad_value"])
    assert jac.shape == expected.shape == conv.output_size[:3] + conv.kernel.shape
    assert_allclose(jac, expected, rtol=0, atol=0)  # J copies input values: exact
    assert not jac.flags.writeable
    assert jac.strides[3] == 0  # one copy of the patches, broadcast over the filters


@given(conv_cases(max_size=6, dtypes=(np.float64,)))
def test_convgrad_backprop_matches_finite_differences_and_the_layer(case):
    conv = _layer_for(case)
    x = case["x"]
    delta = np.random.default_rng(1).standard_normal(conv(x).shape)
    conv.backward(delta)
    grad = ConvGrad(conv)
    d_w = grad.backprop(delta, x)

    def loss(kernel):
        y = conv2d_reference(x, kernel, None, case["strides"], case["dilations"], case["pads"], case["pad_value"])
        return float(np.sum(y * delta))

    # The loss is linear in the kernel, so central differences have no truncation error: what is
    # left is the rounding of the two float64 losses, each a sum of `count` products, at most
    # gamma_count * sum |terms| each, divided by the step 2h = 2e-3.
    count = delta.size * (case["kernel"][0].size + 1)
    terms = conv2d_reference(np.abs(x), np.abs(case["kernel"]), None, case["strides"], case["dilations"],
                             case["pads"], abs(case["pad_value"])) * np.abs(delta)
    tol = 2 * gamma(count) * terms.sum() / 2e-3 + 1e-300
    assert_allclose(d_w, finite_difference_grad(loss, case["kernel"]), rtol=0, atol=tol)
    assert_allclose(d_w, conv.kernel_grad, rtol=0, atol=0)
    assert_allclose(grad.backrop(delta, x), d_w, rtol=0, atol=0)  # the document's spelling


def test_convgrad_backprop_is_the_contraction_of_the_jacobian():
    conv = Convolution((2, 5, 6, 3), 4, (3, 2), strides=(2, 1), dilations=(0, 1), padding="SAME", pad_value=0.5,
                       seed=0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 6, 3))
    delta = rng.standard_normal(conv.output_size)
    grad = ConvGrad(conv)
    # Document 001: dL/dK[f, i, j, c] = sum_{b, h, w} delta[b, h, w, f] * J[b, h, w, f, i, j, c].
    contracted = np.einsum("bhwf,bhwfijc->fijc", delta, grad.gradient(x))
    terms = np.einsum("bhwf,bhwfijc->fijc", np.abs(delta), np.abs(grad.gradient(x)))
    # Both sides sum the same N*OH*OW products in float64: |difference| <= 2 * gamma_K * sum |terms|.
    assert np.all(np.abs(grad.backprop(delta, x) - contracted) <= 2 * gamma(delta.size // delta.shape[3]) * terms)


def test_convgrad_refuses_what_it_cannot_use(monkeypatch):
    conv = Convolution((1, 4, 4, 2), 3, 2, seed=0)
    with pytest.raises(TypeError, match="cnn_layer must be a cyconv.Convolution"):
        ConvGrad(object())
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4, 4, 2\)"):
        ConvGrad(conv).gradient(np.ones((1, 4, 4, 3)))
    with pytest.raises(ValueError, match="must have the output's shape"):
        ConvGrad(conv).backprop(np.ones((1, 2, 2, 3)), np.ones((1, 4, 4, 2)))
    monkeypatch.setattr(_validation, "memory_limit", lambda: 1000)
    with pytest.raises(MemoryError, match="would need"):
        ConvGrad(conv).gradient(np.ones((1, 4, 4, 2)))


def test_convgrad_matches_pytorch():
    torch = pytest.importorskip("torch")
    conv = Convolution((2, 7, 6, 3), 4, (3, 2), strides=(2, 1), dilations=(1, 0), padding="SAME", seed=0)
    x = np.random.default_rng(3).standard_normal((2, 7, 6, 3))
    delta = np.random.default_rng(4).standard_normal(conv.output_size)
    (top, bottom), (left, right) = ((conv.geometry.pad_top, conv.geometry.pad_bottom),
                                    (conv.geometry.pad_left, conv.geometry.pad_right))
    xt = torch.nn.functional.pad(torch.tensor(x).permute(0, 3, 1, 2), (left, right, top, bottom))
    kt = torch.tensor(conv.kernel).permute(0, 3, 1, 2).requires_grad_()
    yt = torch.nn.functional.conv2d(xt, kt, stride=conv.strides, dilation=tuple(d + 1 for d in conv.dilations))
    yt.backward(torch.tensor(delta).permute(0, 3, 1, 2))
    # Both libraries sum the same products in float64 in their own orders: each is within
    # gamma_K * sum |terms| of the exact value, so they are within twice that of each other.
    y_terms = conv2d_reference(np.abs(x), np.abs(conv.kernel), None, conv.strides, conv.dilations,
                               ((top, bottom), (left, right)))
    y_torch = yt.detach().permute(0, 2, 3, 1).numpy()
    assert np.all(np.abs(conv(x) - y_torch) <= 2 * gamma(conv.kernel[0].size) * y_terms)
    jac = jacobian_reference(x, 4, conv.kernel_size, conv.strides, conv.dilations, ((top, bottom), (left, right)), 0.0)
    dw_terms = np.einsum("bhwf,bhwfijc->fijc", np.abs(delta), np.abs(jac))
    dw_torch = kt.grad.permute(0, 2, 3, 1).numpy()
    assert np.all(np.abs(ConvGrad(conv).backprop(delta, x) - dw_torch) <= 2 * gamma(delta.size // 4) * dw_terms)
