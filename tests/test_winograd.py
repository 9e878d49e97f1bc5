"""cyconv._winograd: Winograd F(2x2, 3x3) and F(4x4, 3x3) against a direct convolution, within an
error bound derived for the algorithm (not measured on one BLAS).

Expected values come from tests/reference.py's direct loop, on the input padded (or cropped, for a
negative pad) explicitly here. The bound comes from an independent NumPy Winograd written from
the paper's matrices (Lavin & Gray, arXiv 1509.09308), run on absolute values.

Error bound (Higham, Accuracy and Stability of Numerical Algorithms, ch. 3; gamma_n = n u / (1 - n u),
u the unit roundoff of the dtype, (1 + t_a)(1 + t_b) = 1 + t_{a+b} with |t_k| <= gamma_k):

    y = A^T [ sum_c (G g_c G^T) * (B^T d_c B) ] A + bias

is a sum of products of data (d, g, bias) and matrix coefficients. Every stage is a linear map,
computed with a known number of rounded operations on each path from an input to an output:

    kernel transform G g G^T    float64, 2 passes of at most 3 roundings (2 additions and a division
                                by 6; 1/2 and 1/4 are exact), then one rounding to the dtype:  p_K = 7
                                (F(2x2): 2 additions a pass, halving exact:                     p_K = 5)
    input transform B^T d B     2 passes, at most 2 roundings each (F(4x4); products by 2, 4 exact;
                                F(2x2): one addition a pass):                      p_B = 4  (F(2x2): 2)
    products M = V @ U          a C-term dot product in any order, FMA or not:       C
    output transform A^T M A    2 passes, at most 3 roundings each (F(4x4); products by 2, 4, 8
                                exact; F(2x2): at most 2):                         p_A = 6  (F(2x2): 4)
    bias                        one addition:                                        1

A perturbation of each stage's result by gamma_k times the same stage run on absolute values
propagates through the later (linear) stages, whose coefficients enter in absolute value, so

    |y_computed - y| <= gamma_n * Y_abs,   n = C + p_K + p_B + p_A + 1 = C + 18 (F(4x4)), C + 12 (F(2x2))

where Y_abs is the same algorithm in exact arithmetic on |A^T|, |G|, |B^T|, |d|, |g|, |bias| (the
input tile as the kernel reads it: pad_value outside the input, 0 where no written output of the
tile reads). The direct reference has its own error, at most gamma_{C+10} (float64) times the
direct convolution of |d| with |g| plus |bias| (a C-term BLAS dot product, 9 accumulations, the
bias); that is added. Y_abs is itself a float64 sum of positive terms, exact to a relative 1e-12
for these sizes, so the bound is scaled by (1 + 1e-12).

The bound is checked to fail real bugs (a wrong coefficient, a dropped channel, a shifted window, a
low-precision stage), and a float32 emulation pins that the float32 path computes in float32.
"""
import platform

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

import cyconv._winograd as wg
from helpers import WINOGRAD_ROUNDINGS, gamma, winograd_error_bound
from reference import G, direct_reference, nchw, nhwc, padded, winograd_reference

# ---------------------------------------------------------------------------------------------
# Running the kernel
# ---------------------------------------------------------------------------------------------

def run(x, kernel, bias, pads, out_hw, dilations, pad_value, tile, layout, threads=2, u=None):
    """x (N, H, W, C), kernel (F, 3, 3, C), bias (F,) in one dtype; returns y as NHWC."""
    alpha = tile + 2
    if u is None:
        u = np.empty((alpha * alpha, kernel.shape[3], kernel.shape[0]), kernel.dtype)
        wg.transform_kernel(kernel if layout == "NHWC" else nchw(kernel), u, layout == "NCHW", tile)
    n, f = x.shape[0], kernel.shape[0]
    with threadpool_limits(1, user_api="blas"):
        if layout == "NHWC":
            y = np.full((n,) + tuple(out_hw) + (f,), np.nan, x.dtype)
            wg.winograd_nhwc(x, u, bias, y, pads[0], pads[1], dilations[0], dilations[1], pad_value, tile, threads)
            return y
        y = np.full((n, f) + tuple(out_hw), np.nan, x.dtype)
        wg.winograd_nchw(nchw(x), u, bias, y, pads[0], pads[1], dilations[0], dilations[1], pad_value, tile, threads)
        return nhwc(y)


def check(case, y):
    """y (NHWC) within the bound of the direct convolution; returns the largest error / bound."""
    args = (case["x"], case["kernel"], case["bias"], case["pads"], case["out_hw"], case["dilations"], case["pad_value"])
    expected = direct_reference(*args)
    bound = winograd_error_bound(*args, case["tile"], case["x"].dtype)
    err = np.abs(y.astype(np.float64) - expected)
    assert y.dtype == case["x"].dtype
    return (err / bound).max()


def problem(rng, n, h, w, c, f, dtype, pads=(1, 1), out_hw=None, dilations=(0, 0), pad_value=0.0, tile=2):
    extent = (2 * (dilations[0] + 1) + 1, 2 * (dilations[1] + 1) + 1)
    if out_hw is None:  # SAME
        out_hw = (h + 2 * pads[0] - extent[0] + 1, w + 2 * pads[1] - extent[1] + 1)
    return dict(x=rng.standard_normal((n, h, w, c)).astype(dtype),
                kernel=rng.standard_normal((f, 3, 3, c)).astype(dtype),
                bias=rng.standard_normal(f).astype(dtype),
                pads=pads, out_hw=out_hw, dilations=dilations, pad_value=pad_value, tile=tile)


def run_case(case, layout, threads=2, u=None):
    return run(case["x"], case["kernel"], case["bias"], case["pads"], case["out_hw"], case["dilations"],
               case["pad_value"], case["tile"], layout, threads, u)


# ---------------------------------------------------------------------------------------------
# The independent implementation itself
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tile", [2, 4])
def test_numpy_winograd_is_the_direct_convolution(tile):
    """The bound's NumPy Winograd (signed matrices) equals the direct loop: its tiling and matrices
    are right, so Y_abs is the algorithm's."""
    rng = np.random.default_rng(0)
    for pads, out_hw, dil in [((1, 1), (7, 5), (0, 0)), ((-2, 3), (4, 9), (1, 2)), ((0, 0), (1, 1), (2, 0))]:
        case = problem(rng, 2, 7, 5, 3, 2, np.float64, pads, out_hw, dil, 1.5, tile)
        args = (case["x"], case["kernel"], case["bias"], pads, out_hw, dil, 1.5)
        np.testing.assert_allclose(winograd_reference(*args, tile), direct_reference(*args), rtol=0, atol=1e-12)


def test_transform_kernel_matches_the_paper_and_both_layouts():
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((5, 3, 3, 7))
    for tile in (2, 4):
        alpha = tile + 2
        u, u_nchw = np.empty((alpha**2, 7, 5)), np.empty((alpha**2, 7, 5))
        wg.transform_kernel(kernel, u, False, tile)
        wg.transform_kernel(nchw(kernel), u_nchw, True, tile)
        expected = np.einsum("ai,fijc,bj->abcf", G[tile], kernel, G[tile]).reshape(alpha**2, 7, 5)
        np.testing.assert_allclose(u, expected, rtol=0, atol=1e-14)
        assert np.array_equal(u, u_nchw)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

@st.composite
def cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    dilations = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    # channels / filters past 32 cross a chunk of the transforms' lanes
    c, f = draw(st.sampled_from([1, 2, 3, 5, 33])), draw(st.sampled_from([1, 2, 4, 35]))
    pads = (draw(st.integers(-3, 6)), draw(st.integers(-3, 6)))
    out_hw = (draw(st.integers(1, 11)), draw(st.integers(1, 11)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    case = problem(rng, n, h, w, c, f, dtype, pads, out_hw, dilations, draw(st.sampled_from([0.0, 1.5, -2.0])),
                   draw(st.sampled_from([2, 4])))
    return case, draw(st.sampled_from(["NHWC", "NCHW"])), draw(st.integers(1, 3))


@given(cases())
def test_against_the_direct_convolution_within_the_bound(drawn):
    """Any geometry: sizes not multiples of the tile or smaller than it, negative, zero and large
    pads, any output size, dilations 0-2, both tiles, layouts and dtypes, 1-3 threads."""
    case, layout, threads = drawn
    assert check(case, run_case(case, layout, threads)) <= 1


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("tile", [2, 4])
def test_results_do_not_depend_on_the_thread_count(layout, tile):
    rng = np.random.default_rng(2)
    case = problem(rng, 3, 21, 19, 40, 37, np.float32, pads=(1, 2), dilations=(0, 1), tile=tile)
    ys = [run_case(case, layout, threads) for threads in (1, 2, 3)]
    assert np.array_equal(ys[0], ys[1]) and np.array_equal(ys[0], ys[2])
    assert check(case, ys[0]) <= 1


def test_large_kernels_share_the_products_across_the_team():
    """alpha**2 C F values of U above 8 MiB (float64, F(4x4), C = F = 172) switch to one V and M
    for the team; 257 tiles (one a 4 x 4 image) make two blocks of it. Same thread invariance,
    same bound. The direct loop would take seconds here: the expected values come from the NumPy
    Winograd (itself checked against the direct loop above), whose float64 error obeys the same
    bound, so the two may differ by twice the bound."""
    rng = np.random.default_rng(3)
    case = problem(rng, 257, 4, 4, 172, 172, np.float64, tile=4)
    args = (case["x"], case["kernel"], case["bias"], case["pads"], case["out_hw"], case["dilations"], 0.0, 4)
    expected = winograd_reference(*args)
    bound = 2 * gamma(172 + WINOGRAD_ROUNDINGS[4]) * winograd_reference(*args, absolute=True) * (1 + 1e-12)
    for layout in ("NHWC", "NCHW"):
        ys = [run_case(case, layout, threads) for threads in (1, 2)]
        assert np.array_equal(ys[0], ys[1])
        assert (np.abs(ys[0] - expected) <= bound).all()


def test_inputs_no_written_output_reads_are_not_read():
    """A partial tile's window reaches past the last row any output reads: that row holds inf here
    and must not reach y (the window is 0 there). Rows an output does read spread through its tile."""
    rng = np.random.default_rng(4)
    case = problem(rng, 1, 6, 6, 3, 2, np.float64, pads=(0, 0), out_hw=(2, 2), tile=4)
    case["x"][:, 4:, :, :] = np.inf
    case["x"][:, :, 4:, :] = np.inf
    for layout in ("NHWC", "NCHW"):
        y = run_case(case, layout)
        assert np.isfinite(y).all()
        assert check(case, y) <= 1


# ---------------------------------------------------------------------------------------------
# The bound is tight enough to fail real bugs
# ---------------------------------------------------------------------------------------------

def transformed(kernel, g, dtype):
    alpha = g.shape[0]
    u = np.einsum("ai,fijc,bj->abcf", g, kernel.astype(float), g).reshape(alpha**2, kernel.shape[3], -1)
    return np.ascontiguousarray(u, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tile", [2, 4])
def test_the_bound_fails_broken_computations(tile, dtype):
    rng = np.random.default_rng(5)
    case = problem(rng, 2, 10, 9, 64, 16, dtype, tile=tile)
    good = transformed(case["kernel"], G[tile], dtype)
    assert check(case, run_case(case, "NHWC", u=good)) <= 1
    # a wrong coefficient in the kernel transform (G[1, 1] = 1/2 -> 1/2 + 2**-8, or -1/6 -> -1/6 + 2**-8)
    wrong = G[tile].copy()
    wrong[1, 1] += 2.0**-8
    assert check(case, run_case(case, "NHWC", u=transformed(case["kernel"], wrong, dtype))) > 1
    # a dropped channel
    dropped = good.copy()
    dropped[:, 17, :] = 0
    assert check(case, run_case(case, "NHWC", u=dropped)) > 1
    # a window shifted by one column
    shifted = dict(case, pads=(case["pads"][0], case["pads"][1] + 1))
    assert check(case, run_case(shifted, "NHWC", u=good)) > 1
    # one stage in half precision: the transformed kernel rounded to float16
    assert check(case, run_case(case, "NHWC", u=good.astype(np.float16).astype(dtype))) > 1


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="pins the x86-64 evaluation: no FMA contraction at the project's flags")
@pytest.mark.parametrize("tile", [2, 4])
def test_the_float32_path_computes_in_float32(tile):
    """With C = F = 1 every value is determined by the order of operations, so the kernel equals,
    bit for bit, a float32 emulation of its transforms (expressions as in _winograd.pyx). A stage
    silently computed in float64 (as a bare `4 * s[c]` once did) stays within the bound but fails
    here."""
    rng = np.random.default_rng(6)
    case = problem(rng, 1, 9, 11, 1, 1, np.float32, pads=(1, 1), tile=tile)
    y = run_case(case, "NHWC")
    alpha, f32 = tile + 2, np.float32
    u = np.empty((alpha * alpha, 1, 1), f32)
    wg.transform_kernel(case["kernel"], u, False, tile)
    expected = np.empty_like(y)
    z = padded(case["x"], 1, 1, 13, 13, 0.0).astype(f32)[0, :, :, 0]  # 11 x 11 outputs need 13 x 13
    oh, ow = case["out_hw"]
    z = np.pad(z, ((0, 16), (0, 16)))  # room for whole tiles; those rows and columns are 0 (unread)
    for i0 in range(0, oh, tile):
        for j0 in range(0, ow, tile):
            d = z[i0:i0 + alpha, j0:j0 + alpha].copy()
            d[min(oh - i0, tile) + 2:] = 0
            d[:, min(ow - j0, tile) + 2:] = 0
            v = input_1d(input_1d(d, tile).T, tile).T           # columns, then rows
            mm = v * u[:, 0, 0].reshape(alpha, alpha)
            out = output_1d(output_1d(mm, tile).T, tile).T
            block = out + case["bias"][0]
            expected[0, i0:i0 + tile, j0:j0 + tile, 0] = block[:oh - i0, :ow - j0]
    assert np.array_equal(y, expected)


def input_1d(s, tile):
    """B^T s in float32, along axis 0, with _winograd.pyx's expressions."""
    two, four, five = np.float32(2), np.float32(4), np.float32(5)
    if tile == 2:
        return np.stack([s[0] - s[2], s[1] + s[2], s[2] - s[1], s[1] - s[3]])
    return np.stack([(four * s[0] + s[4]) - five * s[2], (s[3] + s[4]) - four * (s[1] + s[2]),
                     (s[4] - s[3]) + four * (s[1] - s[2]), (s[4] - s[2]) + two * (s[3] - s[1]),
                     (s[4] - s[2]) - two * (s[3] - s[1]), (four * s[1] + s[5]) - five * s[3]])


def output_1d(s, tile):
    """A^T s in float32, along axis 0, with _winograd.pyx's expressions."""
    two, four, eight = np.float32(2), np.float32(4), np.float32(8)
    if tile == 2:
        return np.stack([(s[0] + s[1]) + s[2], (s[1] - s[2]) - s[3]])
    return np.stack([(s[0] + (s[1] + s[2])) + (s[3] + s[4]), (s[1] - s[2]) + two * (s[3] - s[4]),
                     (s[1] + s[2]) + four * (s[3] + s[4]), ((s[1] - s[2]) + eight * (s[3] - s[4])) + s[5]])
