"""Direct convolution kernels (cyconv._direct and its CPU variants) and the variant dispatch (cyconv._cpu).

Expected values come from tests/reference.py's direct loop in float64 (direct_reference). Each output
is a sum of K + 1 terms (K = kh * kw * C products and the bias), held to tests/helpers.py's bound
(assert_within_bound: any summation order, with or without fused multiply-adds), with sum |terms|
from the same reference on |x|, |kernel|, |bias|, |pad_value|. tests/test_precision.py shows that
bound refusing broken computations (a wrong tap, a lost channel, a lost term).
"""
import importlib
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cyconv import _cpu
from helpers import assert_within_bound
from reference import direct_reference, nchw, nhwc

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


def make_case(n, h, w, c, f, kernel_hw, strides, dilations, top_left, out_hw, pad_value, dtype, seed=0):
    """A problem in NHWC as the kernels take it: padding (pad_top, pad_left) of any sign (negative
    crops) and the output size (the padding after is what it needs)."""
    rng = np.random.default_rng(seed)
    kh, kw = kernel_hw
    return dict(x=rng.standard_normal((n, h, w, c)).astype(dtype),
                kernel=rng.standard_normal((f, kh, kw, c)).astype(dtype),
                bias=rng.standard_normal(f).astype(dtype),
                strides=strides, dilations=dilations, top_left=top_left, out_hw=out_hw, pad_value=pad_value)


def reference(case, absolute=False):
    """The reference output of case (float64, NHWC); absolute=True: on the absolute values of every
    operand, sum |terms| of each output."""
    f = np.abs if absolute else (lambda a: a)
    return direct_reference(f(case["x"].astype(np.float64)), f(case["kernel"]), f(case["bias"]), case["top_left"],
                            case["out_hw"], case["dilations"], f(case["pad_value"]), case["strides"])


def assert_matches_reference(got, case):
    """got (NHWC) within the bound of K + 1 terms of the reference (a NaN, e.g. an output never
    written, fails)."""
    assert_within_bound(got, reference(case), reference(case, absolute=True), case["kernel"][0].size + 1)


def run(module, case, layout, num_threads=2):
    """The kernel's output for case in layout, returned in NHWC."""
    x, kernel, bias = case["x"], case["kernel"], case["bias"]
    (sh, sw), (dh, dw), (top, left) = case["strides"], case["dilations"], case["top_left"]
    n, (oh, ow), f = x.shape[0], case["out_hw"], kernel.shape[0]
    if layout == "NHWC":
        y = np.full((n, oh, ow, f), np.nan, x.dtype)
        module.direct_nhwc(x, kernel, bias, y, sh, sw, dh, dw, top, left, case["pad_value"], num_threads)
        return y
    y = np.full((n, f, oh, ow), np.nan, x.dtype)
    module.direct_nchw(nchw(x), nchw(kernel), bias, y, sh, sw, dh, dw, top, left, case["pad_value"], num_threads)
    return nhwc(y)


@st.composite
def axis(draw, outs):
    """(input size, kernel size, stride, dilation, pad before, output size) for one spatial axis:
    a pad of any sign (negative crops), an output size drawn from outs (the padding after, of any
    sign too, is what it needs)."""
    k, s, d = draw(st.integers(1, 7)), draw(st.integers(1, 3)), draw(st.integers(0, 2))
    return draw(st.integers(1, 10)), k, s, d, draw(st.integers(-3, 8)), draw(outs)


@st.composite
def direct_cases(draw, dtypes=(np.float32, np.float64)):
    # Output rows of up to 40 pixels: NCHW tiles span 18 to 32 pixels of a row (by variant and dtype).
    h, kh, sh, dh, top, oh = draw(axis(st.integers(1, 4)))
    w, kw, sw, dw, left, ow = draw(axis(st.one_of(st.integers(1, 9), st.integers(30, 40))))
    return make_case(draw(st.integers(1, 3)), h, w, draw(st.integers(1, 8)), draw(st.integers(1, 70)),
                     (kh, kw), (sh, sw), (dh, dw), (top, left), (oh, ow), draw(st.sampled_from([0.0, 1.5, -2.0])),
                     draw(st.sampled_from(dtypes)), seed=draw(st.integers(0, 2**32 - 1)))


# ------------------------------------------------------------------------------------ the kernels


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@given(case=direct_cases())
def test_matches_the_reference(case, layout, variant):
    assert_matches_reference(run(variant_module(variant), case, layout), case)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("f", [1, 11, 12, 13, 24, 31, 32, 33, 64, 65])
def test_filter_counts_across_tile_edges(variant, layout, f):
    # float32 tiles hold 2, 8 or 12 rows and 20 or 32 columns (filters or pixels, by layout and
    # variant): cover the counts just below, at and above their multiples, on rows of 74 output pixels.
    case = make_case(2, 3, 75, 2, f, (3, 2), (1, 1), (0, 0), (1, 0), (3, 74), 0.5, np.float32, seed=f)
    assert_matches_reference(run(variant_module(variant), case, layout), case)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_an_image_gives_the_same_result_alone_and_in_a_batch(layout):
    # Threads take bands of output rows (here 3 per image: 20, 20 and 5 rows of 19 pixels). Each
    # output element is computed the same way whatever its band, so a batch equals its images
    # computed one by one, bit for bit.
    case = make_case(4, 47, 40, 3, 40, (3, 3), (1, 2), (0, 1), (0, 1), (45, 19), -1.0, np.float32)
    batch = run(DIRECT, case, layout)
    for i in range(4):
        one = dict(case, x=case["x"][i:i + 1])
        np.testing.assert_array_equal(run(DIRECT, one, layout), batch[i:i + 1])
    assert_matches_reference(batch, case)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_thread_count_does_not_change_results(layout):
    case = make_case(3, 23, 37, 3, 45, (3, 5), (1, 2), (1, 0), (2, -1), (22, 18), 0.25, np.float32)
    results = [run(DIRECT, case, layout, num_threads) for num_threads in (1, 2, 3, 4)]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    assert_matches_reference(results[0], case)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_read_only_inputs(layout):
    case = make_case(2, 6, 7, 3, 5, (3, 3), (1, 1), (0, 0), (1, 1), (6, 7), 0.0, np.float64)
    for name in ("x", "kernel", "bias"):
        case[name].setflags(write=False)
    assert_matches_reference(run(DIRECT, case, layout), case)


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
