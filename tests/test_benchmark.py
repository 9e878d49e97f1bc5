"""The benchmark harness: a smoke run, and the honesty of its documents' NumPy baseline."""
import json

import numpy as np
import pytest

import cyconv
from cyconv import benchmark


def test_smoke_run_writes_results(tmp_path, capsys):
    code = benchmark.main(["--quick", "--layers", "0", "--repeats", "1", "--warmup", "0", "--no-torch",
                           "--out", str(tmp_path)])
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert set(data) >= {"meta", "results", "summary", "notes"}
    assert {"numpy_version", "cpu_model", "cyconv_threads", "repeats", "warmup", "quick"} <= set(data["meta"])
    assert [(r["layer_index"], r["layout"]) for r in data["results"]] == [(0, "NHWC"), (0, "NCHW")]
    for row in data["results"]:
        assert row["check"]["ok"]
        for mode in ("forward", "forward_backward"):
            result = row[mode]
            assert {"cyconv_ms", "documents_ms", "gemm_ms", "cyconv_gflops", "ratio_documents",
                    "ratio_gemm", "ratio_torch_best"} <= set(result)
            assert result["cyconv_ms"] > 0 and result["ratio_torch_best"] is None
        assert row["forward_backward"]["flops"] == 3 * row["forward"]["flops"]
        assert row["memory"]["cyconv_forward_peak_bytes"] > 0
    assert data["summary"]["all"]["rows"] == 2
    assert "PyTorch skipped (--no-torch)" in data["notes"]
    markdown = (tmp_path / "results.md").read_text()
    assert "| 0 |" in markdown and "Median ratios" in markdown
    assert "NCHW" in capsys.readouterr().out


def test_bad_layer_index_is_an_error(tmp_path):
    assert benchmark.main(["--layers", "99", "--out", str(tmp_path)]) == 2


def _inputs(rng, n, c, h, w, f, k):
    x = rng.standard_normal((n, c, h, w))
    kernel = rng.standard_normal((f, c, k, k))
    bias = rng.standard_normal(f)
    return x, kernel, bias


def test_documents_functions_match_cyconv():
    """conv_forward / conv_backward as documents 000 / 002 write them, on their own terms."""
    rng = np.random.default_rng(0)
    x, kernel, bias = _inputs(rng, 2, 3, 7, 7, 4, 3)
    out, cache = benchmark.conv_forward(x, kernel, bias.reshape(-1, 1), stride=1, padding=1)
    np.testing.assert_allclose(out, cyconv.conv2d(x, kernel, bias, 1, 0, 1, layout="NCHW"), rtol=1e-10,
                               atol=1e-10)
    grad_y = rng.standard_normal(out.shape)
    dx, dw, db = benchmark.conv_backward(grad_y, cache)
    expected = cyconv.conv2d_backward(grad_y, x, kernel, 1, 0, 1, layout="NCHW")
    for actual, wanted in zip((dx, dw, db.reshape(-1)), expected):
        np.testing.assert_allclose(actual, wanted, rtol=1e-10, atol=1e-10)
    # stride 2, padding 0 (an exact output size, as the documents require)
    out, cache = benchmark.conv_forward(x, kernel, bias.reshape(-1, 1), stride=2, padding=0)
    np.testing.assert_allclose(out, cyconv.conv2d(x, kernel, bias, 2, 0, 0, layout="NCHW"), atol=1e-10)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize(
    "size, k, stride, padding, dilation",
    [(8, 3, 1, "SAME", 0),    # symmetric SAME: padding=1 exactly as the documents
     (9, 3, 2, "SAME", 0),    # asymmetric SAME: explicit np.pad
     (11, 7, 2, "SAME", 0),   # asymmetric SAME, larger kernel
     (8, 1, 1, "VALID", 0),   # pointwise
     (8, 3, 1, "SAME", 1),    # dilation: zero-dilated kernel
     (10, 3, 2, "VALID", 2)], # dilation and stride
)
def test_documents_baseline_formulations_match_cyconv(layout, size, k, stride, padding, dilation):
    """The baseline the benchmark times computes what cyconv computes, on every kind of layer."""
    rng = np.random.default_rng(1)
    x, kernel, bias = _inputs(rng, 2, 3, size, size, 4, k)
    if layout == "NHWC":
        x, kernel = x.transpose(0, 2, 3, 1).copy(), kernel.transpose(0, 2, 3, 1).copy()
    geometry = cyconv.conv_geometry((size, size), (k, k), stride, dilation, padding)
    y = cyconv.conv2d(x, kernel, bias, stride, dilation, padding, layout=layout)
    np.testing.assert_allclose(benchmark.documents_conv(x, kernel, bias, geometry, layout), y,
                               rtol=1e-10, atol=1e-10)
    grad_y = rng.standard_normal(y.shape)
    y_doc, grads_doc = benchmark.documents_conv(x, kernel, bias, geometry, layout, grad_y=grad_y)
    np.testing.assert_allclose(y_doc, y, rtol=1e-10, atol=1e-10)
    expected = cyconv.conv2d_backward(grad_y, x, kernel, stride, dilation, padding, layout=layout)
    for actual, wanted in zip(grads_doc, expected):
        assert actual.shape == wanted.shape
        np.testing.assert_allclose(actual, wanted, rtol=1e-10, atol=1e-10)


def test_layer_list_is_the_agreed_one():
    assert len(benchmark.LAYERS) == 9
    dilated = benchmark.LAYERS[8]
    assert dilated.dilation == 1 and dilated.k == 3  # cyconv's convention: PyTorch dilation=2
    g = benchmark.LAYERS[6].geometry()
    assert (g.out_h, g.out_w) == (112, 112)
    assert benchmark.LAYERS[1].forward_flops() == 2 * 32 * 64 * 32 * 32 * 64 * 9
