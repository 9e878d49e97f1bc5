"""cyconv.dask against the in-memory cyconv call on the same data.

Tolerance. Each output element of conv2d is a dot product of K = kh*kw*C (+1 for the bias) terms;
a sum of K products computed in any order, by any BLAS kernel or split across chunks, is within
gamma_K * sum|terms| of the exact value (gamma_K = K*u / (1 - K*u), u the unit roundoff). The
chunked and the in-memory result sum the same terms, so they differ by at most twice that.
sum|terms| is the same convolution of |x| with |kernel| (+|bias|, |pad_value|) in float64, itself
within gamma_K(float64) of exact, hence the factor 1 / (1 - gamma_K(float64)) below. Backward:
grad_x sums at most F*kh*kw products, grad_kernel N*OH*OW, grad_bias N*OH*OW values; those two
are summed in float32 per block, then over blocks in float64 and rounded once more, so they get
two terms more. test_the_tolerance_catches_a_halo_from_the_wrong_side shows the check fails a real
chunking bug.

Most tests use Dask's synchronous scheduler; a few run on a real distributed.LocalCluster with two
worker processes (module-scoped fixture), including a task that fails once and is retried.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cyconv  # noqa: E402
import cyconv.dask as cdask  # noqa: E402
from helpers import gamma  # noqa: E402
from reference import nchw  # noqa: E402
from strategies import paddings, resolved_pads  # noqa: E402


# ------------------------------------------------------------------------------------- helpers


def assert_within_dot_bound(actual, expected, sum_abs, terms, dtype):
    """|actual - expected| <= 2 gamma_terms sum|terms| everywhere (see the module docstring)."""
    assert actual.dtype == expected.dtype == np.dtype(dtype)
    assert actual.shape == expected.shape
    bound = 2 * gamma(terms, dtype) * sum_abs / (1 - gamma(terms, np.float64))
    excess = np.abs(actual.astype(np.float64) - expected.astype(np.float64)) - bound
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else None
    assert excess.size == 0 or excess[worst] <= 0, (
        f"at {worst}: |difference| exceeds 2 gamma_{terms} sum|terms| = {bound[worst]:.3g} by {excess[worst]:.3g}"
    )


def compute(*arrays):
    """Compute on the synchronous scheduler, block by block, checking that every block has the
    shape its array's chunks declare (Dask trusts them); returns the assembled NumPy arrays."""
    results = []
    for array in arrays:
        blocks = dask.compute(*array.to_delayed().ravel(), scheduler="synchronous")
        for index, block in zip(np.ndindex(*array.numblocks), blocks):
            declared = tuple(array.chunks[axis][i] for axis, i in enumerate(index))
            assert block.shape == declared, f"block {index} has shape {block.shape}, its chunks say {declared}"
        nested = np.empty(array.numblocks, dtype=object)
        for index, block in zip(np.ndindex(*array.numblocks), blocks):
            nested[index] = block
        results.append(np.block(nested.tolist()) if array.ndim else blocks[0])
    return results


def partition(draw, size):
    """Random chunk sizes adding up to `size`, chunks of one element included."""
    cuts = sorted(draw(st.sets(st.integers(1, size - 1), max_size=size - 1))) if size > 1 else []
    starts = [0] + cuts + [size]
    return tuple(b - a for a, b in zip(starts, starts[1:]))


@st.composite
def chunked_cases(draw, max_size=14):
    """A conv2d problem (NHWC arrays, as in tests/strategies.py) with random chunks of x along
    the batch, height and width; kernel 1-5, strides 1-3, dilations 0-2, any padding form."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilations = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    padding = draw(paddings())
    sizes = []
    for axis, k in ((0, kh), (1, kw)):
        extent = (k - 1) * (dilations[axis] + 1) + 1
        fixed = resolved_pads(padding, (extent, extent), (kh, kw), strides, dilations)[axis]
        smallest = 1 if isinstance(padding, str) and padding.upper() == "SAME" else max(1, extent - sum(fixed))
        sizes.append(draw(st.integers(smallest, smallest + max_size)))
    h, w = sizes
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return dict(
        x=rng.standard_normal((n, h, w, c)).astype(dtype),
        kernel=rng.standard_normal((f, kh, kw, c)).astype(dtype),
        bias=rng.standard_normal(f).astype(dtype) if draw(st.booleans()) else None,
        chunks=(partition(draw, n), partition(draw, h), partition(draw, w), (c,)),
        args=dict(strides=strides, dilations=dilations, padding=padding,
                  layout=draw(st.sampled_from(["NHWC", "NCHW"])), pad_value=draw(st.sampled_from([0.0, 1.5, -2.0]))),
        dtype=dtype,
    )


def in_layout(case):
    """(x, kernel, x's chunks) of a case in its layout."""
    x, kernel, chunks = case["x"], case["kernel"], case["chunks"]
    if case["args"]["layout"] == "NCHW":
        return nchw(x), nchw(kernel), (chunks[0], chunks[3], chunks[1], chunks[2])
    return x, kernel, chunks


def absolute(args):
    return dict(args, pad_value=abs(args["pad_value"]))


def f64(a):
    return None if a is None else np.abs(a).astype(np.float64)


def test_import_cyconv_does_not_import_dask():
    """Dask is an optional extra: only `import cyconv.dask` imports it (checked in a fresh process
    on the cyconv this session imports)."""
    code = "import sys, cyconv; assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]"
    env = dict(os.environ)
    package_root = str(Path(cyconv.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/")
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------ results equal NumPy's


@given(chunked_cases())
def test_forward_equals_the_in_memory_call(case):
    x, kernel, chunks = in_layout(case)
    y = cdask.conv2d(da.from_array(x, chunks=chunks), kernel, case["bias"], **case["args"])
    expected = cyconv.conv2d(x, kernel, case["bias"], **case["args"])
    (actual,) = compute(y)
    sum_abs = cyconv.conv2d(f64(x), f64(kernel), f64(case["bias"]), **absolute(case["args"]))
    terms = kernel[0].size + (case["bias"] is not None)
    assert_within_dot_bound(actual, expected, sum_abs, terms, case["dtype"])


@given(chunked_cases())
def test_backward_equals_the_in_memory_call(case):
    x, kernel, chunks = in_layout(case)
    args = case["args"]
    y = cyconv.conv2d(x, kernel, None, **args)
    grad_y = np.random.default_rng(0).standard_normal(y.shape).astype(case["dtype"])
    grads = cdask.conv2d_backward(grad_y, da.from_array(x, chunks=chunks), kernel, **args)
    expected = cyconv.conv2d_backward(grad_y, x, kernel, **args)
    actual = compute(*grads)
    sums = cyconv.conv2d_backward(f64(grad_y), f64(x), f64(kernel), **absolute(args))
    taps_times_filters = kernel.size // case["x"].shape[3]  # F * kh * kw
    outputs_per_filter = y.size // kernel.shape[0]  # N * OH * OW
    terms = (taps_times_filters, outputs_per_filter + 2, outputs_per_filter + 2)
    for lazy, a, e, s, k in zip(grads, actual, expected, sums, terms):
        assert lazy.shape == e.shape
        assert_within_dot_bound(a, e, s, k, case["dtype"])


RIGHT_PADDING = cdask._Borders.padding


def padding_on_the_wrong_side(borders, location, numblocks):
    """Bug: the first block padded after its rows, the last before (same shapes as the right one)."""
    return tuple((after, before) for before, after in RIGHT_PADDING(borders, location, numblocks))


def fold_without_the_borrowed_halo(block, depth, block_info=None):
    """Bug: each block keeps its own rows of grad_x but drops what its halo gave the block before."""
    info = block_info[None]
    index = [slice(None)] * block.ndim
    for axis, (halo, _) in depth.items():
        lead = halo if info["chunk-location"][axis] > 0 else 0
        index[axis] = slice(lead, lead + info["chunk-shape"][axis])
    return block[tuple(index)]


@pytest.mark.parametrize("target, name, mutant, broken", [
    (cdask._Borders, "padding", padding_on_the_wrong_side, ["y", "grad_x"]),
    (cdask, "_fold_block", fold_without_the_borrowed_halo, ["grad_x"]),
])
def test_the_tolerance_catches_a_chunking_bug(monkeypatch, target, name, mutant, broken):
    """Real chunking bugs that keep every shape right fail the check; the correct code passes it."""
    rng = np.random.default_rng(1)
    x, kernel = rng.standard_normal((1, 12, 12, 2)), rng.standard_normal((2, 3, 3, 2))
    grad_y = rng.standard_normal((1, 12, 12, 2))
    dx = da.from_array(x, chunks=(1, 5, 6, 2))
    expected = [cyconv.conv2d(x, kernel, padding="SAME"), cyconv.conv2d_backward(grad_y, x, kernel, padding="SAME")[0]]
    sums = [cyconv.conv2d(np.abs(x), np.abs(kernel), padding="SAME"),
            cyconv.conv2d_backward(np.abs(grad_y), np.abs(x), np.abs(kernel), padding="SAME")[0]]
    terms = [kernel[0].size, kernel.size // 2]

    def failing_checks():
        actual = compute(cdask.conv2d(dx, kernel, padding="SAME"),
                         cdask.conv2d_backward(grad_y, dx, kernel, padding="SAME")[0])
        failed = []
        for what, a, e, s, k in zip(["y", "grad_x"], actual, expected, sums, terms):
            try:
                assert_within_dot_bound(a, e, s, k, np.float64)
            except AssertionError as error:
                assert "exceeds" in str(error)
                failed.append(what)
        return failed

    assert failing_checks() == []
    monkeypatch.setattr(target, name, mutant)
    assert failing_checks() == broken


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_many_batch_chunks_sum_the_kernel_gradient_over_all_of_them(layout):
    rng = np.random.default_rng(2)
    x, kernel = rng.standard_normal((37, 5, 5, 2)), rng.standard_normal((3, 3, 3, 2))
    if layout == "NCHW":
        x, kernel = nchw(x), nchw(kernel)
    grad_y = rng.standard_normal(cyconv.conv2d(x, kernel, layout=layout).shape)
    grads = cdask.conv2d_backward(grad_y, da.from_array(x, chunks=(2, -1, -1, -1)), kernel, layout=layout)
    assert grads[0].numblocks[0] == 19
    for actual, expected in zip(compute(*grads), cyconv.conv2d_backward(grad_y, x, kernel, layout=layout)):
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


def test_numpy_input_is_wrapped_and_chunked_over_the_batch():
    rng = np.random.default_rng(3)
    x, kernel, bias = rng.standard_normal((4, 6, 6, 3)), rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2)
    y = cdask.conv2d(x, kernel, bias, padding="SAME")
    assert isinstance(y, da.Array)
    assert y.chunks[1:] == ((6,), (6,), (2,))
    np.testing.assert_allclose(compute(y)[0], cyconv.conv2d(x, kernel, bias, padding="SAME"), rtol=1e-12)


def test_empty_batch():
    x = da.zeros((0, 5, 5, 2), chunks=(1, 5, 5, 2))
    kernel = np.ones((3, 2, 2, 2))
    (y,) = compute(cdask.conv2d(x, kernel))
    assert y.shape == (0, 4, 4, 3)
    grad_x, grad_kernel, grad_bias = compute(*cdask.conv2d_backward(np.zeros((0, 4, 4, 3)), x, kernel))
    assert grad_x.shape == (0, 5, 5, 2) and not grad_kernel.any() and not grad_bias.any()


def test_nothing_is_computed_until_asked():
    calls = []

    def load(block):
        calls.append(block.shape)
        return block

    x = da.ones((2, 20, 20, 1), chunks=(1, 7, 9, 1)).map_blocks(load, meta=np.empty((0,) * 4))
    kernel = np.ones((1, 3, 3, 1))
    y = cdask.conv2d(x, kernel, padding="SAME", strides=2)
    grads = cdask.conv2d_backward(da.ones(y.shape, chunks=y.chunks), x, kernel, padding="SAME", strides=2)
    assert calls == []
    compute(y, *grads)
    assert calls


# ---------------------------------------------------------------------------------------- chunks


def test_output_chunks_are_the_images_of_the_input_chunks():
    # SAME, 3x3, stride 1: output o's window starts at input row o - 1, so a block starting at
    # input row b holds outputs from b + 1 on; W, stride 1 with a 1-wide kernel: the same chunks.
    x = da.zeros((3, 12, 10, 2), chunks=(2, (5, 4, 3), (6, 4), 2))
    y = cdask.conv2d(x, np.ones((4, 3, 1, 2)), padding="SAME")
    assert y.chunks == ((2, 1), (6, 4, 2), (6, 4), (4,))


def test_chunks_not_aligned_to_the_stride_are_moved_to_the_next_window_start():
    # VALID, 3 rows, stride 2: windows start at even rows. The boundary at row 5 moves to row 6
    # (the block rows [0, 6) computes outputs 0-2); halo 3 - 2 = 1 row.
    x = da.zeros((1, 11, 4, 1), chunks=(1, (5, 6), 4, 1))
    y = cdask.conv2d(x, np.ones((1, 3, 1, 1)), strides=(2, 1))
    assert y.chunks[1] == (3, 2)
    grad_x, _, _ = cdask.conv2d_backward(da.ones(y.shape, chunks=y.chunks), x, np.ones((1, 3, 1, 1)), strides=(2, 1))
    assert grad_x.chunks[1] == (6, 5)


def test_chunks_shorter_than_the_halo_are_merged():
    # A 5-row kernel at stride 1 borrows 4 rows from the next block: of the 2-row chunks, the
    # first is merged into the second (the last keeps its 6 rows). SAME pads 2 rows on top, so the
    # block from input row b computes the outputs from b + 2 on.
    x = da.zeros((1, 16, 3, 1), chunks=(1, (6, 2, 2, 6), 3, 1))
    y = cdask.conv2d(x, np.ones((1, 5, 1, 1)), padding="SAME")
    assert y.chunks[1] == (8, 4, 4)
    grad_x, _, _ = cdask.conv2d_backward(da.ones(y.shape, chunks=y.chunks), x, np.ones((1, 5, 1, 1)), padding="SAME")
    assert grad_x.chunks[1] == (6, 4, 6)


def test_a_chunk_without_outputs_of_its_own_is_merged():
    # VALID, 3 rows, 10 rows in all: outputs start at rows 0-7; the last chunk [8, 10) has none.
    x = da.zeros((1, 10, 3, 1), chunks=(1, (4, 4, 2), 3, 1))
    y = cdask.conv2d(x, np.ones((1, 3, 1, 1)))
    assert y.chunks[1] == (4, 4)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_groups_and_padding_modes(layout):
    # groups work on spatial chunks as on the whole image; a reflected border needs the image's far
    # side, so padding modes other than a constant run on batch chunks only.
    rng = np.random.default_rng(3)
    x, kernel = rng.standard_normal((3, 12, 11, 4)), rng.standard_normal((6, 3, 3, 2))
    if layout == "NCHW":
        x, kernel = nchw(x), nchw(kernel)
    spatial = da.from_array(x, chunks=(1, 5, 4, 4) if layout == "NHWC" else (1, 4, 5, 4))
    args = dict(strides=2, padding="SAME", layout=layout, groups=2)
    (actual,) = compute(cdask.conv2d(spatial, kernel, **args))
    sum_abs = cyconv.conv2d(np.abs(x), np.abs(kernel), **args)
    assert_within_dot_bound(actual, cyconv.conv2d(x, kernel, **args), sum_abs, 3 * 3 * 2, np.float64)
    reflect = dict(padding=1, layout=layout, groups=2, padding_mode="reflect")
    (actual,) = compute(cdask.conv2d(da.from_array(x, chunks=(1, -1, -1, -1)), kernel, **reflect))
    sum_abs = cyconv.conv2d(np.abs(x), np.abs(kernel), **reflect)
    assert_within_dot_bound(actual, cyconv.conv2d(x, kernel, **reflect), sum_abs, 3 * 3 * 2, np.float64)
    with pytest.raises(ValueError, match=r"padding_mode='reflect': not supported by cyconv.dask when x is chunked "
                                         r"along its height or width"):
        cdask.conv2d(spatial, kernel, **reflect)


# ---------------------------------------------------------------------------------------- errors


def test_chunked_channels_are_refused_naming_x_and_the_axis():
    x = da.zeros((2, 3, 5, 5), chunks=(1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"x is chunked along its channel axis \(axis 1 in layout NCHW"):
        cdask.conv2d(x, np.ones((1, 3, 2, 2)), layout="NCHW")


def test_dask_kernel_and_bias_are_refused():
    x = da.zeros((2, 5, 5, 3), chunks=1)
    with pytest.raises(TypeError, match=r"kernel must be a NumPy array .* call kernel.compute\(\) first"):
        cdask.conv2d(x.rechunk((1, 5, 5, 3)), da.ones((1, 2, 2, 3)))
    with pytest.raises(TypeError, match=r"bias must be a NumPy array"):
        cdask.conv2d(x.rechunk((1, 5, 5, 3)), np.ones((1, 2, 2, 3)), da.ones(1))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x, k: cdask.conv2d(x, k, layout="NWHC"), ValueError, "layout must be 'NHWC' or 'NCHW'"),
        (lambda x, k: cdask.conv2d(x[0], k), ValueError, r"x must be 4-D, got shape \(5, 5, 3\)"),
        (lambda x, k: cdask.conv2d(x, k[..., :2]), ValueError, "kernel has 2 input channels but x has 3"),
        (lambda x, k: cdask.conv2d(x, k, groups=2), ValueError, "groups must divide both the channels of x"),
        (lambda x, k: cdask.conv2d(x, k[0]), ValueError, r"kernel must be 4-D \(F, kh, kw, C\)"),
        (lambda x, k: cdask.conv2d(x, k, np.ones(3)), ValueError, r"bias must have shape \(1,\)"),
        (lambda x, k: cdask.conv2d(x, k, padding="FULL"), ValueError, "padding must be"),
        (lambda x, k: cdask.conv2d(x, k, strides=0), ValueError, "strides"),
        (lambda x, k: cdask.conv2d(x, np.ones((1, 7, 7, 3))), ValueError, "smaller than the dilated kernel"),
        (lambda x, k: cdask.conv2d(x, k, pad_value="0"), TypeError, "pad_value must be a real number"),
        (lambda x, k: cdask.conv2d(x.astype(complex), k), TypeError, "x must hold real numbers"),
        (lambda x, k: cdask.conv2d(x, k, no_such_option=1), TypeError, "no_such_option"),
        (lambda x, k: cdask.conv2d(x[x[:, 0, 0, 0] > 0], k), ValueError, "unknown chunk sizes"),
        (lambda x, k: cdask.conv2d_backward(da.zeros((2, 5, 5, 1)), x, k), ValueError,
         r"grad_y must have the output's shape \(2, 4, 4, 1\)"),
        (lambda x, k: cdask.conv2d_backward(da.zeros((2, 4, 4, 1), dtype=bool), x, k), TypeError,
         "grad_y must hold real numbers"),
    ],
)
def test_bad_arguments_raise_before_any_graph_is_built(call, error, message):
    x = da.zeros((2, 5, 5, 3), chunks=(1, 3, 5, 3))
    kernel = np.ones((1, 2, 2, 3))
    with pytest.raises(error, match=message):
        call(x, kernel)


# ------------------------------------------------------------------------- a real local cluster


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            yield client


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_on_two_worker_processes(client, layout):
    rng = np.random.default_rng(4)
    x, kernel, bias = rng.standard_normal((3, 23, 19, 2)), rng.standard_normal((3, 3, 2, 2)), rng.standard_normal(3)
    chunks = (2, 7, 6, 2)
    if layout == "NCHW":
        x, kernel, chunks = nchw(x), nchw(kernel), (2, 2, 7, 6)
    args = dict(strides=2, dilations=(1, 0), padding="SAME", layout=layout, pad_value=0.5)
    dx = da.from_array(x, chunks=chunks)
    y = client.compute(cdask.conv2d(dx, kernel, bias, **args)).result()
    np.testing.assert_allclose(y, cyconv.conv2d(x, kernel, bias, **args), rtol=1e-12, atol=1e-12)
    grad_y = rng.standard_normal(y.shape)
    grads = client.gather(client.compute(list(cdask.conv2d_backward(grad_y, dx, kernel, **args))))
    for actual, expected in zip(grads, cyconv.conv2d_backward(grad_y, x, kernel, **args)):
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


def fail_the_first_time(block, marker):
    """Raise if `marker` does not exist yet (creating it), else return block: a chunk whose first
    load fails on whichever worker runs it, and whose second succeeds."""
    try:
        with open(marker, "x"):
            pass
    except FileExistsError:
        return block
    raise OSError(f"simulated failure, recorded in {marker}")


def test_a_task_that_fails_once_is_retried_with_the_same_result(client, tmp_path):
    rng = np.random.default_rng(5)
    x, kernel = rng.standard_normal((4, 16, 16, 3)), rng.standard_normal((2, 3, 3, 3))
    expected = cyconv.conv2d(x, kernel, padding="SAME")

    def flaky_y(marker):
        dx = da.from_array(x, chunks=(2, 8, 16, 3)).map_blocks(fail_the_first_time, str(marker), meta=x[:0])
        return cdask.conv2d(dx, kernel, padding="SAME")

    with pytest.raises(OSError, match="simulated failure"):
        client.compute(flaky_y(tmp_path / "no_retry")).result()
    y = client.compute(flaky_y(tmp_path / "retried"), retries=1).result()
    assert (tmp_path / "retried").exists()
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
