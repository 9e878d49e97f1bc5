"""Document 000's layer, cyconv.Conv (NCHW), against the document's worked example and source code,
the direct-loop reference and central finite differences."""
import numpy as np
import pytest
from hypothesis import given
from numpy.testing import assert_allclose

from cyconv import Conv, col2im_indices, im2col_indices
from helpers import FD_TOL, assert_close
from nchw_cases import document_cases, finite_difference_grads, reference_nchw
from reference import finite_difference_grad


class DocumentConv():
    """Document 000's Conv, verbatim, on cyconv's im2col_indices / col2im_indices."""

    def __init__(self,X_dim,n_filter,h_filter,w_filter,stride,padding):

        self.d_X,self.h_X,self.w_X = X_dim

        self.n_filter,self.h_filter,self.w_filter = n_filter,h_filter,w_filter
        self.stride,self.padding = stride,padding

        self.W = np.random.randn(n_filter,self.d_X,h_filter,w_filter) / np.sqrt(n_filter/2.)
        self.b = np.zeros((self.n_filter,1))
        self.params = [self.W,self.b]

        self.h_out = (self.h_X - h_filter + 2*padding)/ stride + 1
        self.w_out = (self.w_X - w_filter + 2*padding)/ stride + 1


        if not self.h_out.is_integer() or not self.w_out.is_integer():
            raise Exception("Invalid dimensions!")

        self.h_out,self.w_out  = int(self.h_out), int(self.w_out)
        self.out_dim = (self.n_filter,self.h_out,self.w_out)

    def forward(self,X):

        self.n_X = X.shape[0]

        self.X_col = im2col_indices(X,self.h_filter,self.w_filter,stride=self.stride,padding=self.padding)
        W_row = self.W.reshape(self.n_filter,-1)

        out = W_row @ self.X_col + self.b
        out = out.reshape(self.n_filter,self.h_out,self.w_out,self.n_X)
        out = out.transpose(3,0,1,2)
        return out

    def backward(self,dout):

        dout_flat = dout.transpose(1,2,3,0).reshape(self.n_filter,-1)

        dW = dout_flat @ self.X_col.T
        dW = dW.reshape(self.W.shape)

        db = np.sum(dout,axis=(0,2,3)).reshape(self.n_filter,-1)

        W_flat = self.W.reshape(self.n_filter,-1)

        dX_col = W_flat.T @ dout_flat
        shape = (self.n_X,self.d_X,self.h_X,self.w_X)
        dX = col2im_indices(dX_col,shape,self.h_filter,self.w_filter,self.padding,self.stride)

        return dX, [dW, db]


def test_document_000_worked_example():
    """The 4x4 image 0..15, three 2x2 filters, S = 1, P = 1: output 1x3x5x5."""
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    conv = Conv((1, 4, 4), 3, 2, 2, 1, 1, seed=0)
    conv.b += np.array([[0.5], [-1.0], [2.0]])
    assert (conv.h_out, conv.w_out, conv.out_dim) == (5, 5, (3, 5, 5))

    out = conv.forward(X)
    assert out.shape == (1,) + conv.out_dim
    assert_close(out, reference_nchw(X, conv.W, conv.b, 1, 1))

    probe = np.random.default_rng(1).standard_normal(out.shape)
    dX, (dW, db) = conv.backward(probe)
    expected = finite_difference_grads(reference_nchw, X, conv.W, conv.b, 1, 1, probe)
    scale = max(1.0, float(np.abs(out * probe).sum()))
    assert (dX.shape, dW.shape, db.shape) == ((1, 1, 4, 4), (3, 1, 2, 2), (3, 1))
    for grad, fd_grad in zip((dX, dW, db), expected):
        assert_close(grad, fd_grad, tol=FD_TOL * scale)


@pytest.mark.parametrize("X_dim, n_filter, size, stride, padding", [
    ((2, 5, 5), 3, 3, 1, 1),
    ((2, 7, 5), 3, 3, 2, 1),
    ((1, 6, 6), 2, 2, 2, 0),
])
def test_document_000_source_and_cyconv_give_the_reference(X_dim, n_filter, size, stride, padding):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2,) + X_dim)
    document = DocumentConv(X_dim, n_filter, size, size, stride, padding)
    conv = Conv(X_dim, n_filter, size, size, stride, padding, seed=2)
    conv.b += rng.standard_normal((n_filter, 1))
    document.W[...], document.b[...] = conv.W, conv.b  # the same parameters in both layers
    expected_out = reference_nchw(X, conv.W, conv.b, stride, padding)
    probe = rng.standard_normal(expected_out.shape)
    expected_grads = finite_difference_grads(reference_nchw, X, conv.W, conv.b, stride, padding,
                                             probe)
    scale = max(1.0, float(np.abs(expected_out * probe).sum()))

    assert conv.out_dim == document.out_dim
    for layer in (document, conv):
        out = layer.forward(X)
        dX, (dW, db) = layer.backward(probe)
        assert_close(out, expected_out)
        for grad, fd_grad in zip((dX, dW, db), expected_grads):
            assert grad.shape == fd_grad.shape
            assert_close(grad, fd_grad, tol=FD_TOL * scale)


def test_attributes_follow_the_document():
    conv = Conv((3, 8, 10), 5, 3, 3, 1, 1)
    assert (conv.d_X, conv.h_X, conv.w_X) == (3, 8, 10)
    assert (conv.n_filter, conv.h_filter, conv.w_filter, conv.stride, conv.padding) == (5, 3, 3, 1, 1)
    assert conv.W.shape == (5, 3, 3, 3) and conv.W.dtype == np.float64
    assert conv.b.shape == (5, 1) and not conv.b.any()
    assert conv.params[0] is conv.W and conv.params[1] is conv.b and len(conv.params) == 2
    assert (conv.h_out, conv.w_out, conv.out_dim) == (8, 10, (5, 8, 10))
    assert type(conv.h_out) is int and type(conv.w_out) is int


def test_weights_are_randn_over_sqrt_half_n_filter_and_seeded():
    conv = Conv((16, 5, 5), 8, 5, 5, 1, 2, seed=7)
    assert np.array_equal(conv.W, Conv((16, 5, 5), 8, 5, 5, 1, 2, seed=7).W)
    assert not np.array_equal(conv.W, Conv((16, 5, 5), 8, 5, 5, 1, 2, seed=8).W)
    # 3200 draws of N(0, 1) / sqrt(8 / 2): the sample std is 0.5 within a few percent.
    assert abs(conv.W.mean()) < 0.05
    assert abs(conv.W.std() - 0.5) < 0.03


@given(document_cases())
def test_forward_matches_direct_loop(case):
    X, W, b, stride, padding = (case[k] for k in ("X", "W", "b", "stride", "padding"))
    f, c, fh, fw = W.shape
    conv = Conv(X.shape[1:], f, fh, fw, stride, padding)
    conv.W, conv.b = W, b
    out = conv.forward(X)
    assert conv.out_dim == (f,) + case["out_hw"]
    assert out.shape == (X.shape[0],) + conv.out_dim
    assert_close(out, reference_nchw(X, W, b, stride, padding))


@given(document_cases(max_out=3, max_channels=2, max_filters=2))
def test_backward_matches_finite_differences(case):
    X, W, b, stride, padding = (case[k] for k in ("X", "W", "b", "stride", "padding"))
    f, c, fh, fw = W.shape
    conv = Conv(X.shape[1:], f, fh, fw, stride, padding)
    conv.W, conv.b = W, b
    out = conv.forward(X)
    probe = np.random.default_rng(0).standard_normal(out.shape)  # L = <out, probe>, so dL/dout = probe
    dX, (dW, db) = conv.backward(probe)

    def loss(X_, W_, b_):
        conv.W, conv.b = W_, b_
        return float(np.sum(conv.forward(X_) * probe))

    scale = max(1.0, float(np.abs(out * probe).sum()))
    assert_close(dX, finite_difference_grad(lambda v: loss(v, W, b), X), tol=FD_TOL * scale)
    assert_close(dW, finite_difference_grad(lambda v: loss(X, v, b), W), tol=FD_TOL * scale)
    assert_close(db, finite_difference_grad(lambda v: loss(X, W, v), b), tol=FD_TOL * scale)


def test_in_place_updates_of_params_are_seen_by_forward():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 2, 5, 5))
    conv = Conv((2, 5, 5), 3, 3, 3, 1, 1, seed=3)
    W, b = conv.W, conv.b
    out = conv.forward(X)
    _, grads = conv.backward(out)
    for param, grad in zip(conv.params, grads):
        param -= 0.1 * grad
    conv.W -= 0.1 * grads[0]
    assert conv.W is W and conv.b is b and conv.params == [W, b]
    assert_close(conv.forward(X), reference_nchw(X, W, b, 1, 1))


def test_assigning_W_or_b_replaces_params():
    conv = Conv((1, 4, 4), 2, 3, 3, 1, 1)
    W, b = np.ones((2, 1, 3, 3)), np.full((2, 1), 2.0)
    conv.W, conv.b = W, b
    assert conv.params[0] is W and conv.params[1] is b
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    assert_close(conv.forward(X), reference_nchw(X, W, b, 1, 1))


def test_gradient_descent_recovers_a_target_layer():
    """Document usage: forward, backward, then `param -= lr * grad` over params."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((4, 2, 6, 6))
    W_target, b_target = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((3, 1))
    target = reference_nchw(X, W_target, b_target, 1, 1)
    conv = Conv((2, 6, 6), 3, 3, 3, 1, 1, seed=4)
    for _ in range(300):
        error = conv.forward(X) - target
        _, grads = conv.backward(error / (error.size / 3))  # L = ||error||^2 / 2, averaged over pixels
        for param, grad in zip(conv.params, grads):
            param -= 0.5 * grad
    assert_allclose(conv.W, W_target, atol=1e-3)
    assert_allclose(conv.b, b_target, atol=1e-3)


@pytest.mark.parametrize("args, message", [
    (((1, 5, 5), 1, 2, 2, 2, 0), r"output height \(5 - 2 \+ 0\) / 2 \+ 1 = 2\.5 is not an integer"),
    (((1, 5, 6), 1, 3, 3, 2, 1), r"output width \(6 - 3 \+ 2\) / 2 \+ 1 = 3\.5 is not an integer"),
])
def test_a_non_integer_output_size_is_an_error(args, message):
    with pytest.raises(ValueError, match=message):
        Conv(*args)


@pytest.mark.parametrize("args, error, message", [
    (((5, 5), 1, 3, 3, 1, 1), ValueError, r"X_dim must be \(C, H, W\).*got \(5, 5\)"),
    ((3, 1, 3, 3, 1, 1), ValueError, r"X_dim must be \(C, H, W\).*got 3"),
    (((1, 0, 5), 1, 3, 3, 1, 1), ValueError, r"X_dim\[1\] must be an integer in \[1, .*got 0"),
    (((1, 5, 5), 0, 3, 3, 1, 1), ValueError, r"n_filter must be an integer in \[1, .*got 0"),
    (((1, 5, 5), 1, 1.5, 3, 1, 1), TypeError, r"h_filter must be an integer, got 1\.5"),
    (((1, 5, 5), 1, 3, 0, 1, 1), ValueError, r"w_filter must be an integer in \[1, .*got 0"),
    (((1, 5, 5), 1, 3, 3, 0, 1), ValueError, r"strides must be .*got 0"),
    (((1, 5, 5), 1, 3, 3, 1, -1), ValueError, r"padding must be .*got -1"),
    (((1, 2, 2), 1, 3, 3, 1, 0), ValueError, r"smaller than the dilated kernel"),
])
def test_constructor_rejects_bad_arguments(args, error, message):
    with pytest.raises(error, match=message):
        Conv(*args)


def test_forward_and_backward_reject_bad_arguments():
    conv = Conv((2, 5, 5), 3, 3, 3, 1, 1)
    with pytest.raises(ValueError, match=r"backward\(\) needs the input of a forward\(\) call first"):
        conv.backward(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2, 5, 5\) \(N, C, H, W\).*"
                                         r"got \(1, 5, 5, 2\)"):
        conv.forward(np.zeros((1, 5, 5, 2)))
    with pytest.raises(ValueError, match=r"X must be 4-D, got shape \(2, 5, 5\)"):
        conv.forward(np.zeros((2, 5, 5)))
    with pytest.raises(TypeError, match=r"X must hold real numbers.*complex128"):
        conv.forward(np.zeros((1, 2, 5, 5), dtype=complex))
    conv.forward(np.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"dout must have the shape of conv_forward's out \(1, 3, 5, 5\).*"
                                         r"got \(2, 3, 5, 5\)"):
        conv.backward(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"W must have shape \(3, 2, 3, 3\), got \(3, 3, 3, 2\)"):
        conv.W = np.zeros((3, 3, 3, 2))
    with pytest.raises(ValueError, match=r"b must have shape \(3, 1\), got \(3,\)"):
        conv.b = np.zeros(3)
