"""The benchmark suite (cyconv._bench): a smoke run with real worker processes, the honesty of the
documents' baseline and of the correctness check, the layer list, the report's arithmetic and the
command line's errors. Nothing here asserts a speed."""
import json

import numpy as np
import pytest

import cyconv
from cyconv._bench import check, cli, contenders, main, results
from cyconv._bench.contention import BusyProcess
from cyconv._bench.documents import conv_backward, conv_forward, documents_conv
from cyconv._bench.layers import LAYERS, LayerSpec, make_inputs

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
    [(["--layers", "99"], "layer indices are 0..8, got '99'"),
     (["--layers", "2-x"], "expected layer indices like 0,3 or 2-5"),
     (["--rounds", "0"], "expected an integer >= 1, got 0"),
     (["--layouts", "NWHC"], "invalid choice: 'NWHC'"),
     (["--cyconv-option", "nonsense"], "expected KEY=VALUE, got 'nonsense'"),
     (["--cyconv-option", "no_such_option=1"], "cyconv.conv2d has no keyword argument 'no_such_option'"),
     (["--cyconv-option", "layout=NCHW"], "layout is set by the suite"),
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

    def conv2d(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, layout="NHWC", algorithm="auto"):
        received.append(("conv2d", algorithm))

    def conv2d_backward(grad_y, x, kernel, strides=1, dilations=0, padding="VALID", *, layout="NHWC", algorithm="auto"):
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
        (32, 3, 32, 32, 32, 3, 1, "SAME", 0), (32, 64, 32, 32, 64, 3, 1, "SAME", 0),
        (16, 128, 16, 16, 128, 3, 1, "SAME", 0), (8, 256, 14, 14, 256, 3, 1, "SAME", 0),
        (8, 64, 56, 56, 64, 1, 1, "VALID", 0), (8, 64, 56, 56, 128, 3, 2, "SAME", 0),
        (1, 3, 224, 224, 64, 7, 2, "SAME", 0), (64, 1, 28, 28, 32, 5, 1, "SAME", 0),
        (16, 64, 32, 32, 64, 3, 1, "SAME", 1)]
    g = LAYERS[6].geometry()
    assert (g.out_h, g.out_w, g.pad_top, g.pad_bottom) == (112, 112, 2, 3)  # TensorFlow's SAME
    assert LAYERS[1].forward_flops() == 2 * 32 * 64 * 32 * 32 * 64 * 9
    assert LAYERS[8].extent() == 5  # cyconv's dilation 1: one gap between taps, PyTorch's dilation=2


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
