"""The kernel gradient of a 3x3 stride-1 convolution by Winograd F(2x2, 3x3) (cyconv._winograd's
kernel_grad_nhwc / _nchw, which cyconv._engine.kernel_grad runs when the forward algorithm is
Winograd) against a direct loop, within an error bound derived for the algorithm.

Expected values: grad_kernel[f, i, j, c] = sum_{n, oh, ow} grad_y[n, oh, ow, f]
xp[n, oh + i (dh + 1), ow + j (dw + 1), c], a loop over the 9 taps written here from that formula
on tests/reference.py's explicitly padded input xp (pad_value outside x); grad_bias = grad_y summed
per filter.

Error bound (Higham, ch. 3, as tests/test_winograd.py derives the forward's; gamma_n = n u / (1 - n u),
u the dtype's unit roundoff). The algorithm computes, over the T tiles of every image,

    grad_kernel = G^T [ sum_t (A e_t A^T) * (B^T d_t B) ] G

(e_t the 2x2 grad_y tile, 0 outside y; d_t the 4x4 input window, 0 where no output of the tile
reads it), a linear map of the products e * d with a known number of roundings on each path:

    grad_y transform A e A^T   2 passes of at most one addition:                      2
    input transform B^T d B    2 passes of at most one addition:                      2
    products M = sum_t E V     a T-term sum of products in any order (BLAS in blocks,
                               parts added in float64):                           T
    G^T M G                    float64, 2 passes of at most 2 additions (halving exact): 4
    rounding to the dtype      once:                                                  1

so |computed - exact| <= gamma_{T+9} * Y_abs (the float64 passes rounded with 2**-53 <= u), where
Y_abs is the same algorithm on |A|, |B^T|, |G^T|, |e|, |d| (winograd_abs below: an independent NumPy
version from the paper's matrices). The float64 reference is within gamma_K(2**-53) of its own
sum of |terms| (K = N * OH * OW products per tap), which is added; Y_abs itself is a float64 sum of
positive terms, exact to a relative 1e-12 here. pad_value is chosen exactly representable in
float32, so the kernel's cast of it adds no error. The bound is shown to fail a dropped tile, a
wrong tap, a dropped channel and a float16 computation.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cyconv
from cyconv import _engine
from cyconv.functional import conv2d_backward
from helpers import LAYOUTS, assert_within, from_layout, gamma, to_layout
from reference import AT, BT, G, kernel_grad_reference, padded
from strategies import paddings, resolved_pads

DTYPES = (np.float32, np.float64)


def direct_kernel_grad(x, grad_y, pads, dilations, pad_value):
    """grad_kernel (F, 3, 3, C) of the stride-1 convolution with signed pads (top, left), NHWC, float64."""
    return kernel_grad_reference(x, grad_y, (3, 3), (1, 1), dilations, pads, pad_value)


def winograd_abs(x, grad_y, pads, dilations, pad_value):
    """Y_abs of the bound: F(2x2, 3x3)'s kernel gradient on absolute values, tiled as the kernel
    tiles (sub-grid by sub-grid, 2 outputs a tile, window positions no written output reads 0)."""
    bt, g, a = np.abs(BT[2]), np.abs(G[2]), np.abs(AT[2]).T
    x, e_all = np.abs(x.astype(np.float64)), np.abs(grad_y.astype(np.float64))
    (dh, dw), (out_h, out_w) = dilations, grad_y.shape[1:3]
    total = np.zeros((grad_y.shape[3], 3, 3, x.shape[3]))
    for ph in range(min(dh + 1, out_h)):
        for pw in range(min(dw + 1, out_w)):
            rows, cols = len(range(ph, out_h, dh + 1)), len(range(pw, out_w, dw + 1))
            th, tw = -(-rows // 2), -(-cols // 2)
            xp = padded(x, pads[0], pads[1], ph + (dh + 1) * (2 * th + 2), pw + (dw + 1) * (2 * tw + 2), abs(pad_value))
            z = xp[:, ph::dh + 1, pw::dw + 1][:, :2 * th + 2, :2 * tw + 2].copy()
            z[:, rows + 2:] = 0
            z[:, :, cols + 2:] = 0
            e = np.zeros((x.shape[0], 2 * th, 2 * tw, grad_y.shape[3]))
            e[:, :rows, :cols] = e_all[:, ph::dh + 1, pw::dw + 1]
            tiles = np.lib.stride_tricks.sliding_window_view(z, (4, 4), axis=(1, 2))[:, ::2, ::2]
            v = np.einsum("ak,nrsckl,bl->abnrsc", bt, tiles, bt, optimize=True)
            et = e.reshape(x.shape[0], th, 2, tw, 2, -1)
            ee = np.einsum("ai,nrisjf,bj->abnrsf", a, et, a, optimize=True)
            m = np.einsum("abnrsf,abnrsc->abfc", ee, v, optimize=True)
            total += np.einsum("ai,abfc,bj->fijc", g, m, g)
    return total


def kernel_grad_bound(x, grad_y, pads, dilations, pad_value, dtype):
    """Elementwise bound on |grad_kernel - direct_kernel_grad| (see the module docstring)."""
    (dh, dw), (out_h, out_w) = dilations, grad_y.shape[1:3]
    tiles = x.shape[0] * sum(-(-len(range(p, out_h, dh + 1)) // 2) for p in range(min(dh + 1, out_h))) * sum(
        -(-len(range(p, out_w, dw + 1)) // 2) for p in range(min(dw + 1, out_w)))
    y_abs = winograd_abs(x, grad_y, pads, dilations, pad_value)
    direct_abs = direct_kernel_grad(np.abs(x), np.abs(grad_y), pads, dilations, abs(pad_value))
    terms = x.shape[0] * out_h * out_w
    return (gamma(tiles + 9, dtype) * y_abs + gamma(terms) * direct_abs) * (1 + 1e-12)


def _case(rng, n, h, w, c, f, padding, dilations, dtype):
    """NHWC x and grad_y of the 3x3 stride-1 convolution, with its signed (pad_top, pad_left)."""
    pads = resolved_pads(padding, (h, w), (3, 3), (1, 1), dilations)
    out_h = h + sum(pads[0]) - 2 * dilations[0] - 2
    out_w = w + sum(pads[1]) - 2 * dilations[1] - 2
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    grad_y = rng.standard_normal((n, out_h, out_w, f)).astype(dtype)
    return x, grad_y, (pads[0][0], pads[1][0])


def _grads(x, grad_y, padding, dilations, pad_value, layout, algorithm="winograd"):
    """(grad_kernel, grad_bias) in NHWC by cyconv (the kernel's values do not matter)."""
    kernel = np.zeros((grad_y.shape[3], 3, 3, x.shape[3]), dtype=x.dtype)
    _, grad_kernel, grad_bias = conv2d_backward(
        to_layout(grad_y, layout), to_layout(x, layout), to_layout(kernel, layout), 1, dilations, padding,
        layout=layout, pad_value=pad_value, algorithm=algorithm)
    return from_layout(grad_kernel, layout), grad_bias


@pytest.fixture
def winograd_calls(monkeypatch):
    """The number of calls to the engine's Winograd kernel gradient, counted during the test."""
    calls = []
    original = _engine._winograd_kernel_grad

    def counted(problem, grad_y):
        calls.append(problem.layout)
        return original(problem, grad_y)

    monkeypatch.setattr(_engine, "_winograd_kernel_grad", counted)
    return calls


CASES = [  # (n, h, w, c, f, padding, dilations, pad_value)
    (2, 7, 5, 3, 4, "SAME", (0, 0), 0.0),                # odd sizes: partial tiles on both axes
    (3, 9, 8, 5, 6, "VALID", (0, 0), 0.0),
    (2, 6, 9, 4, 3, ((2, 0), (1, 2)), (0, 0), -1.25),     # explicit, uneven padding, pad_value
    (2, 11, 10, 33, 35, "SAME", (1, 2), 0.5),             # dilations; more than LANES channels, filters
    (1, 13, 12, 2, 40, ((1, 1), (0, 2)), (2, 0), 1.5),
    (4, 16, 16, 8, 9, "SAME", (0, 0), 0.0),               # several blocks of tiles
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[:5]}-{case[5]}-d{case[6]}-p{case[7]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_against_the_direct_loop_within_the_bound(case, dtype, layout, winograd_calls):
    n, h, w, c, f, padding, dilations, pad_value = case
    x, grad_y, pads = _case(np.random.default_rng(1), n, h, w, c, f, padding, dilations, dtype)
    grad_kernel, grad_bias = _grads(x, grad_y, padding, dilations, pad_value, layout)
    assert winograd_calls == [layout]
    assert grad_kernel.dtype == dtype and grad_bias.dtype == dtype
    assert_within(grad_kernel, direct_kernel_grad(x, grad_y, pads, dilations, pad_value),
                  kernel_grad_bound(x, grad_y, pads, dilations, pad_value, dtype))
    # grad_bias: a float64 sum of N * OH * OW terms, rounded once to the dtype
    terms = grad_y.shape[0] * grad_y.shape[1] * grad_y.shape[2]
    exact = grad_y.astype(np.float64).sum(axis=(0, 1, 2))
    abs_sum = np.abs(grad_y.astype(np.float64)).sum(axis=(0, 1, 2))
    assert_within(grad_bias, exact, gamma(terms) * abs_sum + np.finfo(dtype).eps / 2 * np.abs(exact))


@st.composite
def winograd_cases(draw):
    """A random 3x3 stride-1 problem (NHWC arrays), any padding, dilations up to 2."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    dilations = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    padding = draw(paddings())
    pads = resolved_pads(padding, (h, w), (3, 3), (1, 1), dilations)
    for axis, size in ((0, h), (1, w)):
        if size + sum(pads[axis]) < 2 * dilations[axis] + 3:
            padding = "SAME"
    dtype = draw(st.sampled_from(DTYPES))
    x, grad_y, signed = _case(np.random.default_rng(draw(st.integers(0, 2**32 - 1))), draw(st.integers(1, 3)), h, w,
                              draw(st.integers(1, 40)), draw(st.integers(1, 40)), padding, dilations, dtype)
    return dict(x=x, grad_y=grad_y, padding=padding, pads=signed, dilations=dilations,
                pad_value=draw(st.sampled_from([0.0, 0.0, 1.5, -2.0])), layout=draw(st.sampled_from(LAYOUTS)),
                algorithm=draw(st.sampled_from(["winograd", "winograd_4x4"])))


@given(winograd_cases())
def test_random_problems_within_the_bound(drawn):
    d = drawn
    grad_kernel, _ = _grads(d["x"], d["grad_y"], d["padding"], d["dilations"], d["pad_value"], d["layout"],
                            d["algorithm"])
    args = (d["x"], d["grad_y"], d["pads"], d["dilations"], d["pad_value"])
    assert_within(grad_kernel, direct_kernel_grad(*args), kernel_grad_bound(*args, d["x"].dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_the_bound_fails_broken_computations(dtype):
    """Simulated bugs, each the exact gradient of a slightly wrong computation rounded to the dtype,
    fall outside the bound, while the kernel's result is inside it."""
    x, grad_y, pads = _case(np.random.default_rng(2), 2, 9, 7, 6, 5, "SAME", (0, 0), dtype)
    args = (pads, (0, 0), 0.5)
    expected = direct_kernel_grad(x, grad_y, *args)
    bound = kernel_grad_bound(x, grad_y, *args, dtype)
    assert_within(_grads(x, grad_y, "SAME", (0, 0), 0.5, "NHWC")[0], expected, bound)
    dropped_tile = grad_y.copy()
    dropped_tile[1, 4:6, 2:4] = 0
    wrong_tap = expected.copy()
    wrong_tap[:, 1, 2], wrong_tap[:, 2, 1] = expected[:, 2, 1], expected[:, 1, 2]
    dropped_channel = expected.copy()
    dropped_channel[:, :, :, 3] -= direct_kernel_grad(x[..., 3:4], grad_y, *args)[..., 0] / 2
    half = direct_kernel_grad(x.astype(np.float16), grad_y.astype(np.float16), *args)
    for broken in (direct_kernel_grad(x, dropped_tile, *args), wrong_tap, dropped_channel, half):
        with pytest.raises(AssertionError, match="outside the bound"):
            assert_within(broken.astype(dtype), expected, bound)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_results_are_bit_identical_for_any_thread_count(layout, restore_settings, winograd_calls):
    """A problem large enough for a team (and several blocks, the workspace limit shrinking them)."""
    x, grad_y, _ = _case(np.random.default_rng(3), 3, 15, 16, 37, 34, "SAME", (0, 0), np.float32)
    results = []
    for threads, workspace in ((1, 2**16), (2, 2**16), (2, 2**30), (1, 2**30)):
        cyconv.set_num_threads(threads)
        cyconv.set_max_workspace(workspace)
        results.append(_grads(x, grad_y, "SAME", (0, 0), 0.0, layout))
    assert len(winograd_calls) == 4
    for a, b in ((0, 1), (2, 3)):
        for got, expected in zip(results[a], results[b]):
            assert got.tobytes() == expected.tobytes()
