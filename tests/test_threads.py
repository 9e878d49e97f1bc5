"""Threads: the kernels release the GIL, so Python threads may call cyconv at once; OpenMP thread
counts must not change any result (bit for bit); CYCONV_NUM_THREADS is honoured."""
import hashlib
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import cyconv
from helpers import LAYOUTS, from_layout, to_layout
from reference import conv2d_reference


def _problem(seed, layout, n=3, h=19, w=17, c=6, f=5):
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal((n, h, w, c)), rng.standard_normal((f, 3, 3, c))
    b = rng.standard_normal(f)
    return to_layout(x, layout), to_layout(k, layout), b


ARGS = dict(strides=(2, 1), dilations=(1, 0), padding="SAME", pad_value=0.25)


def _run_all(x, k, b, layout):
    """Every entry point on one problem; a tuple of arrays."""
    y = cyconv.conv2d(x, k, b, layout=layout, **ARGS)
    grads = cyconv.conv2d_backward(np.cos(y), x, k, layout=layout, **ARGS)
    cols = cyconv.im2col(x, k.shape[1:3] if layout == "NHWC" else k.shape[2:], layout=layout, **ARGS)
    back = cyconv.col2im(np.sin(cols), x.shape, k.shape[1:3] if layout == "NHWC" else k.shape[2:], layout=layout,
                         strides=ARGS["strides"], dilations=ARGS["dilations"], padding=ARGS["padding"])
    return (y,) + tuple(grads) + (cols, back)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_concurrent_python_threads_match_sequential_calls(layout):
    problems = [_problem(seed, layout) for seed in range(6)]
    sequential = [_run_all(*p, layout) for p in problems]
    # the sequential results are right (forward against the reference, in NHWC)
    x, k, b = problems[0]
    # SAME: 3 taps dilated to 5 rows at stride 2 on 19 rows pad (2, 2); 3 columns on 17 pad (1, 1)
    expected = conv2d_reference(from_layout(x, layout), from_layout(k, layout), b, (2, 1), (1, 0),
                                ((2, 2), (1, 1)), 0.25)
    np.testing.assert_allclose(from_layout(sequential[0][0], layout), expected, rtol=0,
                               atol=1e-12 * np.abs(expected).max())

    results = [[None] * len(problems) for _ in range(3)]
    errors = []
    barrier = threading.Barrier(len(problems))

    def worker(i):
        try:
            barrier.wait()
            for rep in range(3):
                results[rep][i] = _run_all(*problems[i], layout)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for rep in range(3):
        for i, expected_arrays in enumerate(sequential):
            for got, want in zip(results[rep][i], expected_arrays):
                np.testing.assert_array_equal(got, want)


def test_concurrent_layers_match_sequential_calls():
    rng = np.random.default_rng(5)
    layers = [cyconv.Convolution((2, 12, 12, 4), 3, 3, strides=2, padding="SAME", seed=s) for s in range(4)]
    inputs = [rng.standard_normal((2, 12, 12, 4)) for _ in layers]
    grads = [rng.standard_normal((2, 6, 6, 3)) for _ in layers]
    sequential = []
    for layer, x, g in zip(layers, inputs, grads):
        y = layer(x)
        sequential.append((y, layer.backward(g), layer.kernel_grad.copy(), layer.bias_grad.copy()))
    # the first layer against the reference
    expected = conv2d_reference(inputs[0], layers[0].kernel, layers[0].bias, (2, 2), (0, 0), ((0, 1), (0, 1)))
    np.testing.assert_allclose(sequential[0][0], expected, rtol=0, atol=1e-12 * np.abs(expected).max())

    out = [None] * len(layers)
    barrier = threading.Barrier(len(layers))

    def worker(i):
        barrier.wait()
        for _ in range(5):
            y = layers[i](inputs[i])
            out[i] = (y, layers[i].backward(grads[i]), layers[i].kernel_grad.copy(), layers[i].bias_grad.copy())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(layers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for got, want in zip(out, sequential):
        assert got is not None
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_results_are_bit_identical_for_any_thread_count(layout, restore_settings):
    # a batch of 5 over 2 or 3 threads splits unevenly; col2im's overlapping adds (kernel 3, stride 1
    # or 2, dilation) are where a different split could change the summation order
    x, k, b = _problem(11, layout, n=5, h=23, w=21, c=7, f=4)
    runs = {}
    for threads in (1, 2, 3):
        cyconv.set_num_threads(threads)
        assert cyconv.get_num_threads() == threads
        runs[threads] = _run_all(x, k, b, layout)
    for threads in (2, 3):
        for got, want in zip(runs[threads], runs[1]):
            assert got.dtype == want.dtype
            assert got.tobytes() == want.tobytes()


def test_set_num_threads_validates_and_restores(restore_settings):
    before = cyconv.get_num_threads()
    with pytest.raises(ValueError, match=r"num_threads must be an integer in \[1, 4096\], got 0"):
        cyconv.set_num_threads(0)
    with pytest.raises(TypeError, match=r"num_threads must be an integer, got 2\.0"):
        cyconv.set_num_threads(2.0)
    assert cyconv.get_num_threads() == before


def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.dtype).encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


SCRIPT = """
import sys
import numpy as np
import cyconv
sys.path.insert(0, {tests!r})
from test_threads import _problem, _run_all, _digest
print("threads", cyconv.get_num_threads())
print("digest", _digest(_run_all(*_problem(11, "NHWC", n=5, h=23, w=21, c=7, f=4), "NHWC")))
"""


def _subprocess(env_threads):
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__)))
    env = dict(os.environ, PYTHONPATH=package_root)
    env.pop("CYCONV_NUM_THREADS", None)
    if env_threads is not None:
        env["CYCONV_NUM_THREADS"] = env_threads
    script = SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    # cwd: `python -c` puts the working directory first on sys.path, where a source checkout's
    # cyconv/ (without the compiled module) would shadow the installed package.
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          cwd=package_root)


def test_environment_variable_sets_the_thread_count(restore_settings):
    cyconv.set_num_threads(1)
    here = _digest(_run_all(*_problem(11, "NHWC", n=5, h=23, w=21, c=7, f=4), "NHWC"))
    for value in ("1", "3", " 2 "):
        proc = _subprocess(value)
        assert proc.returncode == 0, proc.stderr
        lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
        assert lines["threads"] == value.strip()
        assert lines["digest"] == here  # and the thread count does not change the result
    proc = _subprocess(None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[1] == str(len(os.sched_getaffinity(0)))  # the default: every available core


@pytest.mark.parametrize("value, message", [("abc", r"CYCONV_NUM_THREADS must be an integer, got 'abc'"),
                                            ("0", r"CYCONV_NUM_THREADS must be an integer in \[1, "),
                                            ("-2", r"CYCONV_NUM_THREADS must be an integer in \[1, ")])
def test_invalid_environment_variable_is_a_clear_error(value, message):
    proc = _subprocess(value)
    assert proc.returncode != 0 and proc.returncode > 0  # an exception, not a crash
    assert "ValueError" in proc.stderr
    assert re.search(message, proc.stderr), proc.stderr
