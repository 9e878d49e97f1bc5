"""The benchmark suite (cyconv._bench): a smoke run with real worker processes, the honesty of the
documents' baseline and of the correctness check, the layer list, the report's arithmetic and the
command line's errors. Nothing here asserts a speed."""
import json

import numpy as np
import pytest

import cyconv
from cyconv._bench import check, cli, contenders, main, report, results
from cyconv._bench.contention import BusyProcess
from cyconv._bench.documents import conv_backward, conv_forward, documents_conv
from cyconv._bench.layers import LAYERS, LayerSpec, make_inputs
from cyconv._bench.runner import Settings, run_suite
from cyconv._bench.timing import BlockPlan
from reference import conv2d_transpose_reference, grouped_conv2d_reference, kernel_grad_reference, nchw, nhwc

FLOAT64_UNIT_ROUNDOFF = 2.0**-53


def test_smoke_run_writes_results(tmp_path, capsys):
    """One small layer, both layouts, real workers: every row checked, timed and written."""
    code = main(["--quick", "--no-torch", "--layers", "0", "--rounds", "1", "--out", str(tmp_path)])
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert set(data) == {"meta", "rows", "summary", "notes", "layers"}
    assert [(r["layout"], r["mode"]) for r in data["rows"]] == [
        ("NHWC", "forward"), ("NHWC", "forward_backward"), ("NCHW", "forward"), ("NCHW", "forward_backward")]
    for row in data["rows"]:
        assert row["ok"], row["failure"]
        assert set(row["times_ms"]) == {"cyconv", "documents", "bare GEMM"}
        for s in row["times_ms"].values():
            assert 0 < s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["calls"] >= 3
        assert row["cyconv_over_torch_best"] is None and row["documents_over_cyconv"] > 0
        assert row["cyconv_peak_bytes"] > 0
    for layout, each in data["layers"][0]["checks"].items():
        assert each["ok"] and set(each["comparisons"]) == {f"documents {layout}"}
    cyconv_env = data["meta"]["libraries"]["cyconv NHWC"]
    assert any(pool.get("user_api") == "blas" for pool in cyconv_env["thread_pools"])
    assert cyconv_env["cyconv_threads"] == cyconv.get_num_threads()
    markdown = (tmp_path / "results.md").read_text()
    assert "documents/cyconv (>1: cyconv faster)" in markdown and "cyconv/PyTorch best (<1: cyconv faster)" in markdown
    assert "| 0 | N4 3x32x32->32 k3 s1 SAME | NCHW | fwd+bwd |" in markdown
    assert "PyTorch not run" in markdown
    assert "NCHW" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [(["--layers", "99"], "layer indices are 0..10, got '99'"),
     (["--layers", "2-x"], "expected layer indices like 0,3 or 2-5"),
     (["--rounds", "0"], "expected an integer >= 1, got 0"),
     (["--layouts", "NWHC"], "invalid choice: 'NWHC'"),
     (["--cyconv-option", "nonsense"], "expected KEY=VALUE, got 'nonsense'"),
     (["--cyconv-option", "no_such_option=1"], "cyconv.conv2d has no keyword argument 'no_such_option'"),
     (["--cyconv-option", "layout=NCHW"], "layout is set by the suite"),
     (["--cyconv-option", "groups=2"], "groups is set by the suite"),
     (["--warmup", "1"], "unrecognized arguments: --warmup 1")],
)
def test_bad_options_exit_2_with_a_message(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_list_prints_the_layers(capsys):
    assert main(["--list"]) == 0
    assert capsys.readouterr().out.splitlines()[8] == "8: N16 64x32x32->64 k3 s1 SAME d1"


def test_cyconv_options_reach_conv2d_and_conv2d_backward(monkeypatch):
    """A future keyword (here a stand-in, 'algorithm') passes the command line and reaches both calls."""
    received = []

    def conv2d(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, layout="NHWC", groups=1,
               algorithm="auto"):
        received.append(("conv2d", algorithm))

    def conv2d_backward(grad_y, x, kernel, strides=1, dilations=0, padding="VALID", *, layout="NHWC", groups=1,
                        algorithm="auto"):
        received.append(("conv2d_backward", algorithm))

    monkeypatch.setattr(cyconv, "conv2d", conv2d)
    monkeypatch.setattr(cyconv, "conv2d_backward", conv2d_backward)
    assert cli.cyconv_option("algorithm=gemm") == ("algorithm", "gemm")
    assert cli.cyconv_option("algorithm='direct'") == ("algorithm", "direct")
    prepared = contenders.prepare(contenders.Contender("cyconv", "NCHW"), LAYERS[0].quick(), {"algorithm": "gemm"})
    prepared.forward_backward()
    assert received == [("conv2d", "gemm"), ("conv2d_backward", "gemm")]


def test_layer_list_is_the_agreed_one():
    assert [tuple(vars(spec).values()) for spec in LAYERS] == [
        (32, 3, 32, 32, 32, 3, 1, "SAME", 0, 1, False), (32, 64, 32, 32, 64, 3, 1, "SAME", 0, 1, False),
        (16, 128, 16, 16, 128, 3, 1, "SAME", 0, 1, False), (8, 256, 14, 14, 256, 3, 1, "SAME", 0, 1, False),
        (8, 64, 56, 56, 64, 1, 1, "VALID", 0, 1, False), (8, 64, 56, 56, 128, 3, 2, "SAME", 0, 1, False),
        (1, 3, 224, 224, 64, 7, 2, "SAME", 0, 1, False), (64, 1, 28, 28, 32, 5, 1, "SAME", 0, 1, False),
        (16, 64, 32, 32, 64, 3, 1, "SAME", 1, 1, False), (8, 128, 56, 56, 128, 3, 1, "SAME", 0, 128, False),
        (8, 32, 64, 64, 64, 4, 2, "SAME", 0, 1, True)]
    g = LAYERS[6].geometry()
    assert (g.out_h, g.out_w, g.pad_top, g.pad_bottom) == (112, 112, 2, 3)  # TensorFlow's SAME
    assert LAYERS[1].forward_flops() == 2 * 32 * 64 * 32 * 32 * 64 * 9
    assert LAYERS[8].extent() == 5  # cyconv's dilation 1: one gap between taps, PyTorch's dilation=2


def test_depthwise_layer_shapes_flops_and_term_counts():
    spec = LAYERS[9]
    assert spec.label() == "N8 128x56x56->128 k3 s1 SAME groups=128"
    assert spec.shapes() == ((8, 128, 56, 56), (128, 1, 3, 3), (8, 128, 56, 56))
    assert spec.forward_flops() == 2 * 8 * 128 * 56 * 56 * 1 * 9  # one input channel per filter
    assert check.term_counts(spec) == {"y": 10, "y_fb": 10, "grad_x": 9, "grad_kernel": 8 * 56 * 56,
                                       "grad_bias": 8 * 56 * 56}
    assert [a.shape for a in make_inputs(spec.quick())] == [(1, 128, 56, 56), (128, 1, 3, 3), (128,), (1, 128, 56, 56)]


def test_transposed_layer_shapes_flops_and_term_counts():
    """Layer 10 times 64 x 32 x 32 -> 32 x 64 x 64, the adjoint of the convolution 64x64 -> 32x32
    with 64 filters of 4x4 at stride 2, whose SAME pads are 1 on every side (PyTorch's padding=1)."""
    spec = LAYERS[10]
    g = spec.geometry()
    assert (g.out_h, g.out_w, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right) == (32, 32, 1, 1, 1, 1)
    assert spec.label() == "N8 64x32x32->32 k4 s2 SAME transposed"
    assert spec.shapes() == ((8, 64, 32, 32), (64, 32, 4, 4), (8, 32, 64, 64))
    assert spec.forward_flops() == 2 * (8 * 64 * 32 * 32) * 32 * 16  # every input value times C * k * k taps
    assert check.term_counts(spec) == {"y": 64 * 16 + 1, "y_fb": 64 * 16 + 1, "grad_x": 32 * 16,
                                       "grad_kernel": 8 * 32 * 32, "grad_bias": 8 * 64 * 64}
    assert [a.shape for a in make_inputs(spec.quick())] == [(1, 64, 32, 32), (64, 32, 4, 4), (32,), (1, 32, 64, 64)]


def test_only_the_documents_and_the_bare_gemm_are_not_applicable_to_grouped_or_transposed_layers():
    for spec in LAYERS:
        plain = spec.groups == 1 and not spec.transposed
        for contender in contenders.contenders_for(("NHWC", "NCHW"), with_torch=True):
            reason = contenders.not_applicable(contender, spec)
            assert (reason is None) == (plain or contender.library in ("cyconv", "PyTorch")), (contender, spec)
    assert "transposed" in contenders.not_applicable(contenders.Contender("documents", "NCHW"), LAYERS[10])
    assert "groups=128" in contenders.not_applicable(contenders.Contender("bare GEMM", "NHWC"), LAYERS[9])


def test_grouped_bound_is_the_per_group_sum_without_winograd():
    """S of a depthwise 3x3 stride-1 layer, from the reference loop on absolute values: the bound is
    2 gamma_K S with K = 1 * 9 + 1 (y) and 9 (grad_x), and no Winograd term (no groups in Winograd)."""
    spec = LayerSpec(2, 4, 6, 6, 4, 3, 1, "SAME", groups=4)
    inputs = make_inputs(spec)
    x, kernel, bias, grad_y = (np.abs(a).astype(np.float64) for a in inputs)
    args = ((1, 1), (0, 0), ((1, 1), (1, 1)))
    u = check.FLOAT32_UNIT_ROUNDOFF
    bounds = check.bounds(spec, inputs)
    s_y = nchw(grouped_conv2d_reference(nhwc(x), nhwc(kernel), bias, *args, groups=4))
    s_grad_x = nchw(conv2d_transpose_reference(nhwc(grad_y), nhwc(kernel), None, *args, (6, 6), groups=4))
    np.testing.assert_allclose(bounds["y"], 2 * check.gamma(10, u) * s_y, rtol=1e-12)
    np.testing.assert_allclose(bounds["grad_x"], 2 * check.gamma(9, u) * s_grad_x, rtol=1e-12)


def _float64(spec, layout):
    """The layer's inputs in float64 and `layout` (x, kernel, bias, grad_y), and the NCHW inputs."""
    inputs = make_inputs(spec)
    arrays = [a.astype(np.float64) for a in inputs]
    if layout == "NHWC":
        arrays = [a.transpose(0, 2, 3, 1).copy() if a.ndim == 4 else a for a in arrays]
    return arrays, inputs


def _assert_within_bound(actual, expected, spec, inputs, layout):
    """Every result within 2 gamma_K S (check.py) for float64 sums, compared in NCHW order."""
    bounds = check.bounds(spec, inputs, unit_roundoff=FLOAT64_UNIT_ROUNDOFF)
    nchw = (lambda a: a.transpose(0, 3, 1, 2)) if layout == "NHWC" else (lambda a: a)
    for name, a, e in zip(("y", "grad_x", "grad_kernel"), actual[:3], expected[:3]):
        assert a.shape == e.shape
        assert check.compare(nchw(a), nchw(e), bounds[name])["ok"], name
    if len(actual) > 3:
        assert check.compare(actual[3], expected[3], bounds["grad_bias"])["ok"]


def test_documents_functions_match_cyconv():
    """conv_forward / conv_backward as documents 000 / 002 write them, on their own terms."""
    spec = LayerSpec(2, 3, 7, 7, 4, 3, 1, "SAME")  # padding=1 for a 3x3 kernel
    (x, kernel, bias, _), inputs = _float64(spec, "NCHW")
    y, cache = conv_forward(x, kernel, bias.reshape(-1, 1), stride=1, padding=1)
    grad_y = np.random.default_rng(3).standard_normal(y.shape)
    dx, dw, db = conv_backward(grad_y, cache)
    expected_y = cyconv.conv2d(x, kernel, bias, 1, 0, 1, layout="NCHW")
    expected_grads = cyconv.conv2d_backward(grad_y, x, kernel, 1, 0, 1, layout="NCHW")
    _assert_within_bound((y, dx, dw, db.reshape(-1)), (expected_y,) + tuple(expected_grads), spec,
                         inputs._replace(grad_y=grad_y), "NCHW")


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize(
    "spec",
    [LayerSpec(2, 3, 8, 8, 4, 3, 1, "SAME"),               # symmetric SAME: padding=1 as the documents
     LayerSpec(2, 3, 9, 9, 4, 3, 2, "SAME"),               # asymmetric SAME: explicit np.pad
     LayerSpec(2, 3, 11, 11, 4, 7, 2, "SAME"),             # asymmetric SAME, larger kernel
     LayerSpec(2, 3, 8, 8, 4, 1, 1, "VALID"),              # pointwise
     LayerSpec(2, 3, 8, 8, 4, 3, 1, "SAME", dilation=1),   # dilation: zero-dilated kernel
     LayerSpec(2, 3, 10, 10, 4, 3, 2, "VALID", dilation=2)],  # dilation, stride, cropped rows
    ids=lambda spec: spec.label(),
)
def test_documents_baseline_matches_cyconv(layout, spec):
    """The baseline the suite times computes what cyconv computes, in every formulation it uses."""
    (x, kernel, bias, grad_y), inputs = _float64(spec, layout)
    geometry = spec.geometry()
    y, grads = documents_conv(x, kernel, bias, geometry, layout, grad_y=grad_y)
    np.testing.assert_array_equal(documents_conv(x, kernel, bias, geometry, layout), y)
    args = (spec.stride, spec.dilation, spec.padding)
    expected = (cyconv.conv2d(x, kernel, bias, *args, layout=layout),) + tuple(
        cyconv.conv2d_backward(grad_y, x, kernel, *args, layout=layout))
    _assert_within_bound((y,) + tuple(grads), expected, spec, inputs, layout)


def test_check_passes_correct_float32_results_and_fails_a_missing_tap():
    """The bound holds for cyconv's float32 results, and is tight enough to catch a kernel tap dropped."""
    spec = LayerSpec(2, 16, 9, 9, 8, 3, 2, "SAME")
    inputs = make_inputs(spec)
    bounds = check.bounds(spec, inputs)
    prepared = contenders.prepare(contenders.Contender("cyconv", "NHWC"), spec, {})
    cy = prepared.results(prepared.forward(), prepared.forward_backward())
    docs = contenders.prepare(contenders.Contender("documents", "NCHW"), spec, {})
    reference = docs.results(docs.forward(), docs.forward_backward())
    assert all(c["ok"] for c in check.compare_results(cy, reference, bounds).values())
    broken = inputs.kernel.copy()
    broken[:, :, 1, 1] = 0  # the centre tap's products go missing
    wrong = documents_conv(inputs.x, broken, inputs.bias, spec.geometry(), "NCHW")
    assert not check.compare(wrong, reference["y"], bounds["y"])["ok"]


def _reference_results(spec, inputs, kernel):
    """The layer's five results (NCHW, float64) from tests/reference.py's loops and the definition
    of the kernel gradient, with `kernel` (NCHW) in place of the inputs' kernel."""
    x, _, bias, grad_y = (nhwc(a.astype(np.float64)) if a.ndim == 4 else a.astype(np.float64) for a in inputs)
    k = nhwc(kernel.astype(np.float64))
    g = spec.geometry()
    pads, args = ((g.pad_top, g.pad_bottom), (g.pad_left, g.pad_right)), ((spec.stride,) * 2, (0, 0))
    if spec.transposed:  # the adjoint of the convolution u: u's input is grad_y, u's output gradient is x
        y = conv2d_transpose_reference(x, k, bias, *args, pads, (spec.h, spec.w), groups=spec.groups)
        grad_x = grouped_conv2d_reference(grad_y, k, None, *args, pads, groups=spec.groups)
        grad_kernel = kernel_grad_reference(grad_y, x, (spec.k, spec.k), (spec.stride,) * 2, pads=(g.pad_top, g.pad_left), groups=spec.groups)
    else:
        y = grouped_conv2d_reference(x, k, bias, *args, pads, groups=spec.groups)
        grad_x = conv2d_transpose_reference(grad_y, k, None, *args, pads, (spec.h, spec.w), groups=spec.groups)
        grad_kernel = kernel_grad_reference(x, grad_y, (spec.k, spec.k), (spec.stride,) * 2, pads=(g.pad_top, g.pad_left), groups=spec.groups)
    return {"y": nchw(y), "y_fb": nchw(y), "grad_x": nchw(grad_x), "grad_kernel": nchw(grad_kernel),
            "grad_bias": grad_y.sum(axis=(0, 1, 2))}


GROUPED_AND_TRANSPOSED = [
    LayerSpec(2, 4, 7, 7, 4, 3, 1, "SAME", groups=4),            # depthwise
    LayerSpec(2, 6, 8, 8, 9, 3, 2, "SAME", groups=3),            # grouped, asymmetric SAME
    LayerSpec(2, 3, 8, 8, 4, 4, 2, "SAME", transposed=True),     # SAME pads (1, 1): 4 x 4 x 4 -> 3 x 8 x 8
    LayerSpec(2, 4, 8, 8, 6, 3, 2, "SAME", groups=2, transposed=True),  # asymmetric pads (0, 1), groups
]


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("spec", GROUPED_AND_TRANSPOSED, ids=lambda spec: spec.label())
def test_check_bounds_hold_for_grouped_and_transposed_layers_and_catch_a_missing_tap(spec, layout):
    """cyconv's float32 results lie within the derived bounds of independent float64 references;
    the same references with one kernel tap dropped do not."""
    inputs = make_inputs(spec)
    bounds = check.bounds(spec, inputs)
    prepared = contenders.prepare(contenders.Contender("cyconv", layout), spec, {})
    cy = prepared.results(prepared.forward(), prepared.forward_backward())
    reference = _reference_results(spec, inputs, inputs.kernel)
    assert all(c["ok"] for c in check.compare_results(cy, reference, bounds).values())
    broken = inputs.kernel.copy()
    broken[:, :, 1, 1] = 0
    wrong = _reference_results(spec, inputs, broken)
    for name in ("y", "grad_x"):
        assert not check.compare(wrong[name], reference[name], bounds[name])["ok"], name


@pytest.mark.parametrize("memory_format", contenders.TORCH_FORMATS)
@pytest.mark.parametrize("spec", GROUPED_AND_TRANSPOSED, ids=lambda spec: spec.label())
def test_pytorch_computes_grouped_and_transposed_layers_as_cyconv(spec, memory_format):
    """PyTorch's groups, conv_transpose2d weight and cropped asymmetric pads as the suite calls them."""
    pytest.importorskip("torch")
    inputs = make_inputs(spec)
    torch_run = contenders.prepare(contenders.Contender("PyTorch", memory_format), spec, {})
    results = torch_run.results(torch_run.forward(), torch_run.forward_backward())
    bounds = check.bounds(spec, inputs)
    assert all(c["ok"] for c in check.compare_results(results, _reference_results(spec, inputs, inputs.kernel),
                                                      bounds).values())


def test_not_applicable_contenders_are_skipped_for_their_layer_only(capsys):
    """Layers 9 (depthwise), 10 (transposed) then 0, real workers, no PyTorch: the documents' method
    and the bare GEMM are n/a on layers 9 and 10 (with notes; cyconv's results there are noted as
    unchecked, and timed) and run and are compared on layer 0."""
    settings = Settings(layers=(9, 10, 0), layouts=("NCHW",), rounds=1, quick=True, with_torch=False,
                        plan=BlockPlan(warmup_seconds=0.01, timed_seconds=0.01))
    suite = run_suite(settings, lambda layer: None)
    depthwise, transposed, plain = suite["layers"]
    assert set(transposed["not_applicable"]) == {"documents", "bare GEMM"}
    assert all(row["ok"] for row in results.layer_rows(transposed, ["NCHW"]))
    assert set(depthwise["not_applicable"]) == {"documents", "bare GEMM"}
    assert set(depthwise["contenders"]) == {"cyconv NCHW"} and depthwise["checks"]["NCHW"]["comparisons"] == {}
    assert "NCHW: cyconv's results not checked (no other contender computed this layer)" in depthwise["notes"]
    assert any(note.startswith("documents not run on this layer") for note in depthwise["notes"])
    assert set(plain["contenders"]) == {"cyconv NCHW", "documents NCHW", "bare GEMM NCHW"}
    assert set(plain["checks"]["NCHW"]["comparisons"]) == {"documents NCHW"} and suite["notes"] == []
    rows = results.layer_rows(depthwise, ["NCHW"])
    assert all(row["ok"] and row["not_applicable"] == ["bare GEMM", "documents"] for row in rows)
    cells = report.row_cells(rows[0])
    assert cells[6] == "n/a" and cells[8] == "n/a" and cells[7] == "-"  # documents, PyTorch, bare GEMM


def _layer(times, comparisons=None):
    """A layer result as runner.run_layer makes it, with given times (seconds) per contender and
    check comparisons (none: the check passed)."""
    contender_info = {name: {"library": name.rsplit(" ", 1)[0], "layout": name.rsplit(" ", 1)[1]} for name in times}
    return {"index": 0, "label": "L", "forward_flops": 1e9, "failures": {}, "contenders": contender_info,
            "peak_bytes": {"cyconv NHWC": {"forward": 2**20, "forward_backward": 2**21}},
            "checks": {"NHWC": {"ok": not comparisons, "contenders": list(times), "comparisons": comparisons or {}}},
            "times": {name: {"forward": t, "forward_backward": t} for name, t in times.items()}}


def test_rows_ratios_read_as_documented():
    idle = lambda *values: {"idle": [list(values)]}
    layer = _layer({"cyconv NHWC": idle(0.002, 0.004, 0.003), "documents NHWC": idle(0.009),
                    "bare GEMM NHWC": idle(0.0015), "PyTorch NCHW": idle(0.006), "PyTorch channels_last": idle(0.004)})
    row = results.layer_rows(layer, ["NHWC"])[0]
    assert row["times_ms"]["cyconv"]["median"] == pytest.approx(3.0)
    assert row["documents_over_cyconv"] == pytest.approx(3.0)
    assert row["torch_best"] == "PyTorch channels_last"
    assert row["cyconv_over_torch_best"] == pytest.approx(0.75)
    assert row["gemm_over_cyconv"] == pytest.approx(0.5)
    assert row["cyconv_gflops"] == pytest.approx(1e9 / 3e-3 / 1e9)
    assert "slowdown" not in row


def test_rows_report_slowdowns_under_contention_and_failed_checks():
    both = lambda idle, contended: {"idle": [[idle]], "contended": [[contended]]}
    layer = _layer({"cyconv NHWC": both(1.0, 3.0), "bare GEMM NHWC": both(1.0, 2.0)})
    row = results.layer_rows(layer, ["NHWC"])[0]
    assert row["slowdown"] == pytest.approx({"cyconv": 3.0, "bare GEMM": 2.0})
    assert row["cyconv_slowdown_over_gemm"] == pytest.approx(1.5)
    disagreement = {"documents NHWC": {"y": {"ok": False, "bound_fraction": 12.0}, "grad_x": {"ok": True}}}
    failed = results.layer_rows(_layer({"cyconv NHWC": both(1.0, 1.0)}, disagreement), ["NHWC"])
    assert [r["ok"] for r in failed] == [False, False]
    assert failed[0]["failure"] == "cyconv disagrees with documents NHWC y (error / bound 12.0)"


def test_busy_process_spins_only_inside_competing():
    with BusyProcess() as busy:
        with busy.competing():
            assert busy._spinning.is_set()
        assert not busy._spinning.is_set()


def test_notes_common_to_every_layer_are_given_once():
    layers = [{"index": 0, "notes": ["nhwc views", "pad"]}, {"index": 3, "notes": ["nhwc views"]}]
    assert cli._layer_notes(layers) == ["every layer: nhwc views", "layer 0: pad"]
    assert cli._layer_notes(layers[:1]) == ["layer 0: nhwc views", "layer 0: pad"]


def test_a_busy_machine_is_noted():
    assert cli._busy_machine_note({"load_average_at_start": [0.4, 0.3, 0.2], "cores_available": 2}) == []
    assert "load average 1.5 on 2 cores" in cli._busy_machine_note({"load_average_at_start": [1.5, 1, 1],
                                                                      "cores_available": 2})[0]
