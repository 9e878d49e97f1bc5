"""Direct convolution kernels (cyconv._direct and its CPU variants) and the variant dispatch (cyconv._cpu).

Expected values come from tests/reference.py's direct loop in float64. Tolerance, derived: each output
is a sum of n = K + 1 terms (K = kh * kw * C products and the bias), so in unit roundoff u any
summation order, with or without fused multiply-adds, gives |computed - exact| <= gamma_n * S, with
gamma_n = n u / (1 - n u) and S = sum |terms| (the reference run on |x|, |kernel|, |bias|,
|pad_value|). The float64 reference adds its own gamma_n(2^-53) * S. Two variants of the kernel each
satisfy the first bound, so they differ by at most 2 gamma_n * S.
"""
import importlib
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cyconv import _cpu
from reference import conv2d_reference, nchw, nhwc

DIRECT = _cpu.load("_direct")


def runnable_variants():
    """The variants this CPU supports and this build has, best first."""
    names = []
    for name in _cpu.VARIANTS:
        qualified = _cpu.module_name("_direct", name)
        if _cpu.runs_here(qualified.split(".")[1]) and importlib.util.find_spec(qualified):
            names.append(name)
    return names


VARIANTS = runnable_variants()


def variant_module(name):
    return importlib.import_module(_cpu.module_name("_direct", name))


# ------------------------------------------------------------------------------------ problems


def padded_input(x, pads, pad_value):
    """NHWC x with ((top, bottom), (left, right)) padding of any sign: a negative pad crops."""
    (top, bottom), (left, right) = pads
    full = np.pad(x, ((0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0)), (0, 0)),
                  constant_values=pad_value)
    return full[:, max(-top, 0):full.shape[1] - max(-bottom, 0), max(-left, 0):full.shape[2] - max(-right, 0)]


def reference(case, x=None, kernel=None, bias=None, pad_value=None):
    """The reference output (float64, NHWC) of case, or of case with some operands replaced."""
    x = case["x"] if x is None else x
    pad_value = case["pad_value"] if pad_value is None else pad_value
    return conv2d_reference(padded_input(x.astype(np.float64), case["pads"], pad_value),
                            case["kernel"] if kernel is None else kernel,
                            case["bias"] if bias is None else bias,
                            case["strides"], case["dilations"], ((0, 0), (0, 0)))


def gamma(n, u):
    return n * u / (1 - n * u)


def error_bound(case, dtype=None, variants=1):
    """Largest |computed - exact| allowed per output element (see the module docstring); with
    variants=2, between two computations in dtype."""
    dtype = case["x"].dtype if dtype is None else dtype
    n = case["kernel"][0].size + 1
    scale = reference(case, np.abs(case["x"]), np.abs(case["kernel"]), np.abs(case["bias"]), abs(case["pad_value"]))
    u = np.finfo(dtype).eps / 2
    if variants == 2:
        return 2 * gamma(n, u) * scale
    return (gamma(n, u) + gamma(n, np.finfo(np.float64).eps / 2)) * scale


def run(module, case, layout, num_threads=2):
    """The kernel's output for case in layout, returned in NHWC."""
    x, kernel, bias = case["x"], case["kernel"], case["bias"]
    (sh, sw), (dh, dw), ((top, _), (left, _)) = case["strides"], case["dilations"], case["pads"]
    n, oh, ow, f = case["out_shape"]
    if layout == "NHWC":
        y = np.full((n, oh, ow, f), np.nan, x.dtype)
        module.direct_nhwc(x, kernel, bias, y, sh, sw, dh, dw, top, left, case["pad_value"], num_threads)
        return y
    y = np.full((n, f, oh, ow), np.nan, x.dtype)
    module.direct_nchw(nchw(x), nchw(kernel), bias, y, sh, sw, dh, dw, top, left, case["pad_value"], num_threads)
    return nhwc(y)


def make_case(n, h, w, c, f, kernel_hw, strides, dilations, pads, pad_value, dtype, seed=0):
    """A problem in NHWC with its output shape; pads of any sign."""
    rng = np.random.default_rng(seed)
    kh, kw = kernel_hw
    extents = [(k - 1) * (d + 1) + 1 for k, d in zip(kernel_hw, dilations)]
    out = [(size + sum(p) - e) // s + 1 for size, p, e, s in zip((h, w), pads, extents, strides)]
    return dict(x=rng.standard_normal((n, h, w, c)).astype(dtype),
                kernel=rng.standard_normal((f, kh, kw, c)).astype(dtype),
                bias=rng.standard_normal(f).astype(dtype),
                strides=strides, dilations=dilations, pads=pads, pad_value=pad_value,
                out_shape=(n, out[0], out[1], f))


@st.composite
def axis(draw, outs):
    """(input size, kernel size, stride, dilation, (pad before, pad after)) for one spatial axis:
    pads of any sign (negative crops), chosen so the output has a size drawn from outs."""
    k, s, d = draw(st.integers(1, 7)), draw(st.integers(1, 3)), draw(st.integers(0, 2))
    out = draw(outs)
    padded = (out - 1) * s + (k - 1) * (d + 1) + 1 + draw(st.integers(0, s - 1))
    size, before = draw(st.integers(1, 10)), draw(st.integers(-3, 8))
    return size, k, s, d, (before, padded - size - before)


@st.composite
def direct_cases(draw, dtypes=(np.float32, np.float64)):
    # Output rows of up to 40 pixels: NCHW tiles span 24 or 32 pixels of a row.
    h, kh, sh, dh, pads_h = draw(axis(st.integers(1, 4)))
    w, kw, sw, dw, pads_w = draw(axis(st.one_of(st.integers(1, 9), st.integers(30, 40))))
    return make_case(draw(st.integers(1, 3)), h, w, draw(st.integers(1, 8)), draw(st.integers(1, 70)),
                     (kh, kw), (sh, sw), (dh, dw), (pads_h, pads_w), draw(st.sampled_from([0.0, 1.5, -2.0])),
                     draw(st.sampled_from(dtypes)), seed=draw(st.integers(0, 2**32 - 1)))


def assert_within(actual, expected, bound):
    """|actual - expected| <= bound everywhere (a NaN, e.g. an output never written, fails)."""
    assert actual.shape == expected.shape
    error = np.abs(actual.astype(np.float64) - expected)
    assert np.all(error <= bound), f"largest error / bound: {np.max(error / bound):.3g}"


# ------------------------------------------------------------------------------------ the kernels


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@given(case=direct_cases())
def test_matches_the_reference(case, layout, variant):
    assert_within(run(variant_module(variant), case, layout), reference(case), error_bound(case))


@pytest.mark.parametrize("variant", VARIANTS[:-1])
@given(case=direct_cases(dtypes=(np.float32,)))
def test_variants_agree_with_the_baseline(case, variant):
    bound = error_bound(case, variants=2)
    for layout in ("NHWC", "NCHW"):
        assert_within(run(variant_module(variant), case, layout), run(variant_module("baseline"), case, layout), bound)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("f", [1, 11, 12, 13, 24, 31, 32, 33, 64, 65])
def test_filter_counts_across_tile_edges(layout, f):
    # Tiles hold 1-12 rows and 24-32 columns (filters or pixels, by layout and variant): cover the
    # counts just below, at and above their multiples, on a row of 75 output pixels.
    case = make_case(2, 3, 75, 2, f, (3, 2), (1, 1), (0, 0), ((1, 1), (0, 0)), 0.5, np.float32, seed=f)
    assert_within(run(DIRECT, case, layout), reference(case), error_bound(case))


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_an_image_gives_the_same_result_alone_and_in_a_batch(layout):
    # Threads take bands of output rows (here 3 per image: 20, 20 and 5 rows of 19 pixels). Each
    # output element is computed the same way whatever its band, so a batch equals its images
    # computed one by one, bit for bit.
    case = make_case(4, 47, 40, 3, 40, (3, 3), (1, 2), (0, 1), ((0, 0), (1, 1)), -1.0, np.float32)
    assert case["out_shape"] == (4, 45, 19, 40)
    batch = run(DIRECT, case, layout)
    for i in range(4):
        one = dict(case, x=case["x"][i:i + 1], out_shape=(1,) + case["out_shape"][1:])
        np.testing.assert_array_equal(run(DIRECT, one, layout), batch[i:i + 1])
    assert_within(batch, reference(case), error_bound(case))


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_thread_count_does_not_change_results(layout):
    case = make_case(3, 23, 37, 3, 45, (3, 5), (1, 2), (1, 0), ((2, 1), (-1, 3)), 0.25, np.float32)
    results = [run(DIRECT, case, layout, num_threads) for num_threads in (1, 2, 3, 4)]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    assert_within(results[0], reference(case), error_bound(case))


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_read_only_inputs(layout):
    case = make_case(2, 6, 7, 3, 5, (3, 3), (1, 1), (0, 0), ((1, 1), (1, 1)), 0.0, np.float64)
    for name in ("x", "kernel", "bias"):
        case[name].setflags(write=False)
    assert_within(run(DIRECT, case, layout), reference(case), error_bound(case))


def buggy_outputs(case):
    """What kernels with real bugs would return for case: one that skips the last tap, one that skips
    the last channel, one that reads the border as 0 instead of pad_value, one that reads one pixel to
    the left."""
    kernel, c = case["kernel"], case["kernel"].shape[3]
    no_tap = kernel.copy()
    no_tap[:, -1, -1, :] = 0
    no_channel = kernel.copy()
    no_channel[..., c - 1] = 0
    shifted = np.concatenate([np.full_like(case["x"][:, :, :1], case["pad_value"]), case["x"][:, :, :-1]], axis=2)
    return [reference(case, kernel=no_tap), reference(case, kernel=no_channel), reference(case, pad_value=0.0),
            reference(case, x=shifted)]


def test_the_bound_rejects_real_bugs_here():
    case = make_case(2, 6, 7, 3, 5, (3, 3), (1, 1), (0, 0), ((1, 1), (1, 1)), 1.5, np.float32)
    bound, truth = error_bound(case), reference(case)
    for buggy in buggy_outputs(case):
        assert np.any(np.abs(buggy - truth) > bound)


@given(case=direct_cases())
def test_the_bound_rejects_real_bugs(case):
    # Whenever a bug changes the result visibly (by 1e-3 of its scale), it breaks the bound.
    bound, truth = error_bound(case), reference(case)
    for buggy in buggy_outputs(case):
        if np.abs(buggy - truth).max() > 1e-3 * np.abs(truth).max():
            assert np.any(np.abs(buggy - truth) > bound)


# ------------------------------------------------------------------------------------ CPU variants


def test_choose_takes_the_best_supported_variant():
    avx512 = {"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"}
    assert _cpu.choose(avx512) == "avx512"
    assert _cpu.choose(avx512 - {"avx512vl"}) == "avx2"
    assert _cpu.choose({"avx2"}) == "baseline"
    assert _cpu.choose(set()) == "baseline"


def test_choose_respects_the_cap_and_never_exceeds_the_cpu():
    assert _cpu.choose({"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"}, cap="avx2") == "avx2"
    assert _cpu.choose({"avx2", "fma"}, cap="avx512") == "avx2"
    assert _cpu.choose({"avx2", "fma"}, cap="baseline") == "baseline"
    with pytest.raises(ValueError, match="CYCONV_CPU_VARIANT='sse9'.*avx512, avx2, baseline"):
        _cpu.choose(set(), cap="sse9")


def test_variant_module_names():
    assert _cpu.split("_direct_avx512") == ("_direct", "avx512")
    assert _cpu.split("_direct_avx2") == ("_direct", "avx2")
    assert _cpu.split("_im2col") == ("_im2col", "baseline")
    assert _cpu.module_name("_direct", "baseline") == "cyconv._direct"
    assert _cpu.runs_here("_im2col")
    assert _cpu.runs_here("_direct_avx2") == ({"avx2", "fma"} <= _cpu.supported_features())


def test_the_probe_reports_every_feature_the_variants_need():
    needed = {feature for features in _cpu.VARIANTS.values() for feature in features}
    from cyconv import _cpu_features

    assert set(_cpu_features.features()) == needed


def test_the_probe_agrees_with_the_operating_system():
    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("no /proc/cpuinfo")
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":")[1].split() for line in f if line.startswith("flags")), None)
    if flags is None:
        pytest.skip("/proc/cpuinfo lists no x86 flags")
    from cyconv import _cpu_features

    assert _cpu_features.features() == {name: name in flags for name in _cpu_features.features()}


def test_load_gives_the_best_variant_this_cpu_runs_and_the_build_has():
    order = list(_cpu.VARIANTS)
    chosen = _cpu.variant()  # the best the CPU supports, capped by CYCONV_CPU_VARIANT
    expected = next(name for name in VARIANTS if order.index(name) >= order.index(chosen))
    assert DIRECT.__name__ == _cpu.module_name("_direct", expected)


def test_forcing_the_baseline():
    code = "from cyconv import _cpu; print(_cpu.load('_direct').__name__)"
    env = dict(os.environ, CYCONV_CPU_VARIANT="baseline")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "cyconv._direct"
