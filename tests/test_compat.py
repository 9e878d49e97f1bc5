"""Document 002's functions (conv_forward, conv_backward, im2col_indices, col2im_indices) against
document 000's worked example, the direct-loop reference and central finite differences."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from cyconv import col2im_indices, conv_backward, conv_forward, im2col_indices
from helpers import FD_TOL, assert_close, assert_within_bound
from nchw_cases import document_cases, finite_difference_grads, reference_nchw

# Document 000: the 4x4 image 0..15 padded by 1, patches of a 2x2 filter at stride 1, as printed.
DOCUMENT_000_X_COL = np.array([
    [0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 7, 0, 8, 9, 10, 11, 0, 12, 13, 14, 15],
    [0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 7, 0, 8, 9, 10, 11, 0, 12, 13, 14, 15, 0],
    [0, 0, 1, 2, 3, 0, 4, 5, 6, 7, 0, 8, 9, 10, 11, 0, 12, 13, 14, 15, 0, 0, 0, 0, 0],
    [0, 1, 2, 3, 0, 4, 5, 6, 7, 0, 8, 9, 10, 11, 0, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0],
])


def document_conv_forward(X, W, b, stride=1, padding=1):
    """Document 002's conv_forward, verbatim, on cyconv's im2col_indices."""
    cache = W, b, stride, padding
    n_filters, d_filter, h_filter, w_filter = W.shape
    n_x, d_x, h_x, w_x = X.shape
    h_out = (h_x - h_filter + 2 * padding) / stride + 1
    w_out = (w_x - w_filter + 2 * padding) / stride + 1

    if not h_out.is_integer() or not w_out.is_integer():
        raise Exception('Invalid output dimension!')

    h_out, w_out = int(h_out), int(w_out)

    X_col = im2col_indices(X, h_filter, w_filter, padding=padding, stride=stride)
    W_col = W.reshape(n_filters, -1)

    out = W_col @ X_col + b
    out = out.reshape(n_filters, h_out, w_out, n_x)
    out = out.transpose(3, 0, 1, 2)

    cache = (X, W, b, stride, padding, X_col)

    return out, cache


def document_conv_backward(dout, cache):
    """Document 002's conv_backward, verbatim, on cyconv's col2im_indices."""
    X, W, b, stride, padding, X_col = cache
    n_filter, d_filter, h_filter, w_filter = W.shape

    db = np.sum(dout, axis=(0, 2, 3))
    db = db.reshape(n_filter, -1)

    dout_reshaped = dout.transpose(1, 2, 3, 0).reshape(n_filter, -1)
    dW = dout_reshaped @ X_col.T
    dW = dW.reshape(W.shape)

    W_reshape = W.reshape(n_filter, -1)
    dX_col = W_reshape.T @ dout_reshaped
    dX = col2im_indices(dX_col, X.shape, h_filter, w_filter, padding=padding, stride=stride)

    return dX, dW, db


def conv_forward_out(X, W, b, stride, padding):
    return conv_forward(X, W, b, stride, padding)[0]


def test_im2col_indices_reproduces_document_000_worked_example():
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    X_col = im2col_indices(X, 2, 2, padding=1, stride=1)
    assert X_col.shape == (4, 25)
    assert_array_equal(X_col, DOCUMENT_000_X_COL)


def test_document_000_worked_example_three_filters():
    """Three 1x2x2 filters: W_row (3, 4) @ X_col (4, 25) reshaped to (1, 3, 5, 5)."""
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    W = np.random.default_rng(0).standard_normal((3, 1, 2, 2))
    b = np.array([[0.5], [-1.0], [2.0]])
    out, _ = conv_forward(X, W, b, stride=1, padding=1)
    assert out.shape == (1, 3, 5, 5)
    assert_close(out, reference_nchw(X, W, b, 1, 1))
    assert_close(out.reshape(3, 25), W.reshape(3, 4) @ DOCUMENT_000_X_COL + b)


def test_document_002_forward_sample():
    """The sample's sizes: X 5x1x10x10, twenty 3x3 filters, stride 1, padding 1."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 1, 10, 10))
    W, b = rng.standard_normal((20, 1, 3, 3)), rng.standard_normal((20, 1))
    h_filter, w_filter, n_filters, n_x, h_out, w_out = 3, 3, 20, 5, 10, 10
    padding, stride = 1, 1

    X_col = im2col_indices(X, h_filter, w_filter, padding=padding, stride=stride)
    W_col = W.reshape(n_filters, -1)
    out = W_col @ X_col + b
    out = out.reshape(n_filters, h_out, w_out, n_x)
    out = out.transpose(3, 0, 1, 2)

    expected = reference_nchw(X, W, b, stride, padding)
    assert (X_col.shape, W_col.shape, out.shape) == ((9, 500), (20, 9), (5, 20, 10, 10))
    assert_close(out, expected)
    assert_close(conv_forward(X, W, b, stride, padding)[0], expected)


@pytest.mark.parametrize("stride, padding, size", [(1, 1, 5), (2, 0, 5), (2, 1, 7)])
def test_document_002_source_and_cyconv_give_the_reference_gradients(stride, padding, size):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2, 2, size, size))
    W, b = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((3, 1))
    expected_out = reference_nchw(X, W, b, stride, padding)
    probe = rng.standard_normal(expected_out.shape)
    expected_grads = finite_difference_grads(reference_nchw, X, W, b, stride, padding, probe)
    scale = max(1.0, float(np.abs(expected_out * probe).sum()))

    for forward, backward in ((document_conv_forward, document_conv_backward), (conv_forward, conv_backward)):
        out, cache = forward(X, W, b, stride=stride, padding=padding)
        dX, dW, db = backward(probe, cache)
        assert_close(out, expected_out)
        assert (dX.shape, dW.shape, db.shape) == (X.shape, W.shape, b.shape)
        for grad, expected in zip((dX, dW, db), expected_grads):
            assert_close(grad, expected, tol=FD_TOL * scale)


@given(document_cases())
def test_conv_forward_matches_direct_loop(case):
    X, W, b, stride, padding = (case[k] for k in ("X", "W", "b", "stride", "padding"))
    out, _ = conv_forward(X, W, b, stride, padding)
    assert out.shape == (X.shape[0], W.shape[0]) + case["out_hw"]
    assert out.dtype == np.float64
    assert_close(out, reference_nchw(X, W, b, stride, padding))


@given(document_cases(max_out=3, max_channels=2, max_filters=2))
def test_conv_backward_matches_finite_differences(case):
    X, W, b, stride, padding = (case[k] for k in ("X", "W", "b", "stride", "padding"))
    out, cache = conv_forward(X, W, b, stride, padding)
    probe = np.random.default_rng(0).standard_normal(out.shape)  # L = <out, probe>, so dL/dout = probe

    dX, dW, db = conv_backward(probe, cache)

    expected_grads = finite_difference_grads(conv_forward_out, X, W, b, stride, padding, probe)
    scale = max(1.0, float(np.abs(out * probe).sum()))
    assert (dX.shape, dW.shape, db.shape) == (X.shape, W.shape, (W.shape[0], 1))
    for grad, expected in zip((dX, dW, db), expected_grads):
        assert_close(grad, expected, tol=FD_TOL * scale)


@given(document_cases())
def test_im2col_indices_columns_are_patches_ordered_oh_ow_n(case):
    X, stride, padding = case["X"], case["stride"], case["padding"]
    n, c, _, _ = X.shape
    _, _, fh, fw = case["W"].shape
    out_h, out_w = case["out_hw"]
    X_pad = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    expected = np.array([
        X_pad[:, ch, i:i + stride * out_h:stride, j:j + stride * out_w:stride].transpose(1, 2, 0).ravel()
        for ch in range(c) for i in range(fh) for j in range(fw)
    ])
    cols = im2col_indices(X, fh, fw, padding=padding, stride=stride)
    assert cols.shape == (c * fh * fw, out_h * out_w * n)
    assert_array_equal(cols, expected)


@given(document_cases())
def test_col2im_indices_is_the_adjoint_of_im2col_indices(case):
    X, stride, padding = case["X"], case["stride"], case["padding"]
    _, _, fh, fw = case["W"].shape
    cols = im2col_indices(X, fh, fw, padding=padding, stride=stride)
    c = np.random.default_rng(3).standard_normal(cols.shape)
    back = col2im_indices(c, X.shape, fh, fw, padding=padding, stride=stride)
    assert back.shape == X.shape
    lhs, rhs = np.vdot(cols, c), np.vdot(X, back)
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, np.abs(cols).sum() * np.abs(c).max())


@given(st.booleans(), document_cases(max_filters=2))
def test_db_has_the_shape_of_b(flat, case):
    X, W, stride, padding = case["X"], case["W"], case["stride"], case["padding"]
    b = case["b"].reshape(-1) if flat else case["b"]
    out, cache = conv_forward(X, W, b, stride, padding)
    _, _, db = conv_backward(np.ones_like(out), cache)
    assert db.shape == b.shape
    assert_close(db.ravel(), np.full(W.shape[0], out[0, 0].size * X.shape[0]))
    assert_close(out, reference_nchw(X, W, b, stride, padding))


def test_float32_inputs_give_float32_results():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal((4, 1)).astype(np.float32)
    out, cache = conv_forward(X, W, b)
    dX, dW, db = conv_backward(np.ones_like(out), cache)
    assert {a.dtype for a in (out, dX, dW, db)} == {np.dtype(np.float32)}
    abs_sum = reference_nchw(np.abs(X), np.abs(W), np.abs(b), 1, 1)
    assert_within_bound(out, reference_nchw(X, W, b, 1, 1), abs_sum, terms=3 * 3 * 3 + 1)


@pytest.mark.parametrize("call", [
    lambda: conv_forward(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 2, 2)), np.zeros((1, 1)), 2, 0),
    lambda: conv_forward(np.zeros((1, 1, 6, 4)), np.zeros((1, 1, 3, 3)), np.zeros((1, 1)), 2, 0),
    lambda: im2col_indices(np.zeros((1, 1, 5, 5)), 2, 2, padding=0, stride=2),
    lambda: col2im_indices(np.zeros((4, 4)), (1, 1, 5, 5), 2, 2, padding=0, stride=2),
])
def test_a_non_integer_output_size_is_an_error(call):
    with pytest.raises(ValueError, match=r"= 2\.5 is not an integer"):
        call()


GOOD_X, GOOD_W, GOOD_B = np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3)), np.zeros((4, 1))


@pytest.mark.parametrize("args, error, message", [
    ((np.zeros((3, 5, 5)), GOOD_W, GOOD_B), ValueError, r"X must be 4-D, got shape \(3, 5, 5\)"),
    ((GOOD_X, np.zeros((4, 3, 3)), GOOD_B), ValueError, r"W must be 4-D, got shape \(4, 3, 3\)"),
    ((GOOD_X, np.zeros((4, 2, 3, 3)), GOOD_B), ValueError, r"W has 2 input channels but X has 3"),
    ((GOOD_X, GOOD_W, np.zeros((3, 1))), ValueError, r"b must have shape \(4, 1\) or \(4,\).*got \(3, 1\)"),
    ((GOOD_X, GOOD_W, np.zeros((1, 4))), ValueError, r"b must have shape \(4, 1\) or \(4,\).*got \(1, 4\)"),
    ((GOOD_X, GOOD_W, None), TypeError, r"b must be a 1-D or 2-D array of real numbers, got None"),
    ((GOOD_X.astype(complex), GOOD_W, GOOD_B), TypeError, r"X must hold real numbers.*complex128"),
    ((GOOD_X, GOOD_W, GOOD_B.astype(bool)), TypeError, r"b must hold real numbers.*bool"),
    ((GOOD_X, GOOD_W, GOOD_B, 0), ValueError, r"strides must be .*got 0"),
    ((GOOD_X, GOOD_W, GOOD_B, 1, -1), ValueError, r"padding must be an integer in \[0, .*got -1"),
    ((GOOD_X, GOOD_W, GOOD_B, 1.0), TypeError, r"strides must be .*got 1\.0"),
    ((GOOD_X, np.zeros((4, 3, 7, 7)), GOOD_B, 1, 0), ValueError, r"smaller than the dilated kernel"),
])
def test_conv_forward_rejects_bad_arguments(args, error, message):
    with pytest.raises(error, match=message):
        conv_forward(*args)


def test_conv_backward_rejects_a_wrong_dout_or_cache():
    out, cache = conv_forward(GOOD_X, GOOD_W, GOOD_B)
    with pytest.raises(ValueError, match=r"dout must have the shape of conv_forward's out \(2, 4, 5, 5\).*"
                                         r"got \(2, 4, 5, 4\)"):
        conv_backward(np.zeros((2, 4, 5, 4)), cache)
    with pytest.raises(ValueError, match=r"dout must be 4-D, got shape \(4, 5, 5\)"):
        conv_backward(out[0], cache)
    with pytest.raises(TypeError, match=r"cache must be the cache returned by conv_forward, got tuple"):
        conv_backward(out, (GOOD_X, GOOD_W, GOOD_B, 1, 1, None))


@pytest.mark.parametrize("call, error, message", [
    (lambda: im2col_indices(np.zeros((5, 5)), 3, 3), ValueError, r"x must be 4-D, got shape \(5, 5\)"),
    (lambda: im2col_indices(GOOD_X, 0, 3), ValueError, r"field_height must be an integer in \[1, .*got 0"),
    (lambda: im2col_indices(GOOD_X, 3, 2.0), TypeError, r"field_width must be an integer, got 2\.0"),
    (lambda: col2im_indices(np.zeros((27, 49)), GOOD_X.shape), ValueError,
     r"cols must have shape \(27, 50\) \(C \* fh \* fw, OH \* OW \* N\) for x_shape \(2, 3, 5, 5\), "
     r"got \(27, 49\)"),
    (lambda: col2im_indices(np.zeros((27, 50)), (3, 5, 5)), ValueError,
     r"x_shape must be .*\(N, C, H, W\).*got \(3, 5, 5\)"),
    (lambda: col2im_indices(np.zeros((27, 50)), (2, 3, 0, 5)), ValueError,
     r"x_shape\[2\] must be an integer in \[1, .*got 0"),
    (lambda: col2im_indices(np.zeros((1, 27, 50)), GOOD_X.shape), ValueError, r"cols must be 2-D"),
])
def test_patch_helpers_reject_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()
