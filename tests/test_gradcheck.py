"""cyconv.gradcheck: the checker passes correct layers and functions and catches wrong backwards."""
import numpy as np
import pytest

from cyconv import Conv, Convolution, check_conv2d, check_function, check_layer, conv2d_direct
from cyconv.gradcheck import DEFAULT_TOLERANCES
from helpers import DOCUMENT_OUTPUT, LAYOUTS, document_input
from reference import conv2d_reference, nchw, nhwc


# Finite differences make thousands of tiny calls; on shared cores one thread is fastest.
pytestmark = pytest.mark.usefixtures("one_thread")


def random_convolution(dtype=np.float64):
    conv = Convolution((2, 6, 5, 3), 2, (3, 2), strides=(2, 1), dilations=(1, 0), padding="SAME",
                       dtype=dtype, seed=1)
    conv.bias[:] = [0.5, -1.0]
    return conv, np.random.default_rng(2).standard_normal((2, 6, 5, 3)).astype(dtype)


class ScaledBackward(Convolution):
    """A Convolution whose backward returns 1.01 times the true input gradient."""

    def backward(self, grad_y):
        return 1.01 * super().backward(grad_y)


class Document000Style:
    """Document 000's API on a dense layer: y = X @ W + b, params = [W, b], backward -> (dX, [dW, db])."""

    def __init__(self, wrong_db=False):
        rng = np.random.default_rng(3)
        self.W = rng.standard_normal((4, 3))
        self.b = rng.standard_normal((1, 3))
        self.params = [self.W, self.b]
        self.wrong_db = wrong_db

    def forward(self, X):
        self.X = X
        return X @ self.W + self.b

    def backward(self, dout):
        db = dout[:1] if self.wrong_db else dout.sum(axis=0, keepdims=True)
        return dout @ self.W.T, [self.X.T @ dout, db]


class Elementwise:
    """y = tanh(w * x): a nonlinear layer described to check_layer through explicit params."""

    def __init__(self, wrong_derivative=False):
        self.w = np.linspace(-1.0, 1.0, 5)
        self.w_gradient = None
        self.wrong_derivative = wrong_derivative

    def __call__(self, x):
        self.x = x
        return np.tanh(self.w * x)

    def backward(self, grad_y):
        slope = 1.0 if self.wrong_derivative else 1.0 - np.tanh(self.w * self.x) ** 2
        self.w_gradient = (grad_y * slope * self.x).sum(axis=0)
        return grad_y * slope * self.w


def test_check_layer_passes_a_convolution_and_reports_each_gradient():
    conv, x = random_convolution()
    report = check_layer(conv, x, seed=0)
    assert report.passed, report
    assert [r.name for r in report.results] == ["x", "kernel", "bias"]
    assert report["kernel"].shape == conv.kernel.shape
    assert report["x"].max_abs_error < 1e-8
    assert report.tolerances == DEFAULT_TOLERANCES["float64"]


def test_check_layer_passes_a_float32_convolution_with_float32_tolerances():
    conv, x = random_convolution(np.float32)
    report = check_layer(conv, x, seed=0)
    assert report.passed, report
    assert report.tolerances == DEFAULT_TOLERANCES["float32"]


def test_check_layer_leaves_the_parameters_bit_for_bit_unchanged():
    conv, x = random_convolution()
    kernel, bias = conv.kernel.copy(), conv.bias.copy()
    check_layer(conv, x, seed=0)
    assert np.array_equal(conv.kernel, kernel) and np.array_equal(conv.bias, bias)


def test_check_layer_fails_a_scaled_input_gradient_and_says_which():
    conv = ScaledBackward((1, 5, 5, 2), 2, 3, padding="SAME", seed=0)
    report = check_layer(conv, np.random.default_rng(0).standard_normal((1, 5, 5, 2)), seed=0)
    assert not report.passed
    assert not report["x"].passed
    assert report["kernel"].passed and report["bias"].passed
    assert report["x"].max_rel_error == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert "FAIL (1 of 3 arrays)" in str(report)


def test_check_layer_reads_document_000_params_and_names_them():
    report = check_layer(Document000Style(), np.random.default_rng(0).standard_normal((6, 4)), seed=0)
    assert report.passed, report
    assert [r.name for r in report.results] == ["x", "W", "b"]


def test_check_layer_catches_a_wrong_document_000_parameter_gradient():
    report = check_layer(Document000Style(wrong_db=True), np.random.default_rng(0).standard_normal((6, 4)), seed=0)
    assert not report.passed
    assert [r.passed for r in report.results] == [True, True, False]


def test_check_layer_passes_cyconv_conv():
    conv = Conv((2, 5, 5), 3, 3, 3, 1, 1, seed=0)
    conv.b[:] = 0.25
    report = check_layer(conv, np.random.default_rng(0).standard_normal((2, 2, 5, 5)), seed=0)
    assert report.passed, report
    assert [r.name for r in report.results] == ["x", "W", "b"]


@pytest.mark.parametrize("wrong_derivative", [False, True])
def test_check_layer_with_explicit_params(wrong_derivative):
    layer = Elementwise(wrong_derivative)
    report = check_layer(layer, np.random.default_rng(0).standard_normal((3, 5)),
                         params=[("w", layer.w, lambda: layer.w_gradient)], seed=0)
    assert [r.name for r in report.results] == ["x", "w"]
    assert report.passed is not wrong_derivative, report


def matmul_inputs(dtype=np.float64):
    rng = np.random.default_rng(0)
    return {"a": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal((4, 2)).astype(dtype)}


def matmul(a, b):
    return a @ b


def test_check_function_passes_a_correct_backward_as_sequence_or_mapping():
    sequence = check_function(matmul, lambda g, a, b: (g @ b.T, a.T @ g), matmul_inputs(), seed=0)
    mapping = check_function(matmul, lambda g, a, b: {"b": a.T @ g, "a": g @ b.T}, matmul_inputs(), seed=0)
    assert sequence.passed and mapping.passed
    assert [r.name for r in mapping.results] == ["a", "b"]


def test_check_function_fails_a_scaled_gradient():
    report = check_function(matmul, lambda g, a, b: (g @ b.T, 2 * a.T @ g), matmul_inputs(), seed=0)
    assert report["a"].passed and not report["b"].passed
    assert not report.passed


def test_check_function_differentiates_float32_inputs_in_float64_without_touching_them():
    inputs = matmul_inputs(np.float32)
    saved = {name: array.copy() for name, array in inputs.items()}
    report = check_function(matmul, lambda g, a, b: (g @ b.T, a.T @ g), inputs, seed=0)
    assert report.passed, report
    assert report.tolerances == DEFAULT_TOLERANCES["float32"]
    assert max(r.max_abs_error for r in report.results) < 1e-5
    assert all(np.array_equal(inputs[name], saved[name]) for name in inputs)


@pytest.mark.parametrize(
    "backward, inputs, error, message",
    [
        (lambda g, a, b: (g @ b.T,), matmul_inputs(), ValueError, "returned 1 gradients, expected 2"),
        (lambda g, a, b: (g @ b.T, (a.T @ g).T), matmul_inputs(), ValueError, "gradient of 'b' has shape"),
        (lambda g, a, b: {"a": g @ b.T}, matmul_inputs(), ValueError, "no gradient for ['b']"),
        (None, {"a": np.ones((2, 2), dtype=int), "b": np.ones((2, 2))}, TypeError, "inputs['a'] must be a floating"),
        (None, {}, ValueError, "non-empty dict"),
    ],
)
def test_check_function_rejects_bad_arguments_by_name(backward, inputs, error, message):
    with pytest.raises(error) as raised:
        check_function(matmul, backward, inputs)
    assert message in str(raised.value)


@pytest.mark.parametrize("name, value, message", [("eps", 0, "eps must be a finite number > 0"),
                                                   ("rtol", -1, "rtol must be a finite number >= 0"),
                                                   ("atol", float("nan"), "atol must be a finite number >= 0")])
def test_tolerances_are_validated(name, value, message):
    with pytest.raises(ValueError, match=message):
        check_function(matmul, lambda g, a, b: (g @ b.T, a.T @ g), matmul_inputs(), **{name: value})


def test_check_layer_refuses_a_read_only_parameter():
    layer = Elementwise()
    layer.w.flags.writeable = False
    with pytest.raises(ValueError, match="parameter 'w' is read-only"):
        check_layer(layer, np.ones((2, 5)), params=[("w", layer.w, lambda: layer.w_gradient)])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_conv2d_passes_and_compares_the_forward(layout, dtype):
    rng = np.random.default_rng(5)
    x, kernel = rng.standard_normal((2, 5, 6, 2)), rng.standard_normal((3, 2, 3, 2))
    if layout == "NCHW":
        x, kernel = nchw(x), nchw(kernel)
    report = check_conv2d(x.astype(dtype), kernel.astype(dtype), rng.standard_normal(3).astype(dtype),
                          strides=(2, 1), dilations=(0, 1), padding=((1, 0), (2, 1)), layout=layout,
                          pad_value=0.5, seed=0)
    assert report.passed, report
    assert [r.name for r in report.results] == ["y", "x", "kernel", "bias"]


def test_conv2d_direct_reproduces_document_001():
    y = conv2d_direct(document_input(), np.ones((1, 2, 2, 2)), padding="SAME")
    np.testing.assert_allclose(y[0, :, :, 0], DOCUMENT_OUTPUT, rtol=0, atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_direct_agrees_with_the_test_reference(layout):
    rng = np.random.default_rng(6)
    x, kernel, bias = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((2, 2, 3, 3)), rng.standard_normal(2)
    pads = ((2, 0), (1, 1))
    expected = conv2d_reference(x, kernel, bias, (2, 1), (1, 0), pads, pad_value=-0.5)
    if layout == "NCHW":
        x, kernel = nchw(x), nchw(kernel)
    y = conv2d_direct(x, kernel, bias, (2, 1), (1, 0), pads, layout=layout, pad_value=-0.5)
    np.testing.assert_allclose(y if layout == "NHWC" else nhwc(y), expected, rtol=1e-12, atol=1e-12)
