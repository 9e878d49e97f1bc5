"""Document 001's Convolution layer: its worked example, its API, and its gradients."""
import numpy as np
import pytest
from hypothesis import given
from numpy.testing import assert_allclose

from cyconv import Convolution
from reference import conv2d_reference, finite_difference_grad
from strategies import conv_cases

DOCUMENT_OUTPUT = np.array([[26.5, 20.7, 10.5], [23.7, 23.8, 12.9], [11.5, 11.6, 5.9]])


def document_input():
    x = np.zeros((1, 3, 3, 2))
    x[0, :, :, 0] = np.array([[2, 1, 1.5], [3, 2.2, 5], [5, 3, 2]])
    x[0, :, :, 1] = np.array([[7.3, 4, 2], [4, 3, 2], [0.8, 2.7, 3.9]])
    return x


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
    expected = conv2d_reference(x, conv.kernel, conv.bias, (1, 1), (0, 0), ((1, 1), (1, 1)))
    assert_allclose(y, expected, rtol=0, atol=2e-5 * np.abs(expected).max())
