"""Hypothesis fuzzing of the validators with arbitrary argument values.

conv2d (with groups and padding modes), conv2d_backward, conv2d_transpose, conv1d, im2col, col2im
and the Convolution layer get anything: valid-looking problems, random ints (negative, huge),
floats, strings, None, nested tuples, random-shaped arrays of random dtypes. Every call must
either return a result of the right shape (and, for the convolutions, the values of
tests/reference.py's references within the derived rounding bound) or raise a clean ValueError /
TypeError (MemoryError only when some argument is huge).

The fuzzing runs in a subprocess (this file run as a script), so that a crash of the interpreter
(segfault, abort, out-of-memory kill) fails the test instead of killing pytest.
CYCONV_FUZZ_EXAMPLES sets the examples per entry point (default 150).
"""
import os
import subprocess
import sys

import pytest

import cyconv

ENTRY_POINTS = ["conv2d", "conv2d_backward", "conv2d_transpose", "conv1d", "im2col", "col2im", "Convolution"]
EXAMPLES = int(os.environ.get("CYCONV_FUZZ_EXAMPLES", "150"))


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_fuzzed_arguments_give_results_or_clean_errors(entry_point):
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    env.setdefault("CYCONV_NUM_THREADS", "2")
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), entry_point, str(EXAMPLES), package_root],
        capture_output=True, text=True, env=env, timeout=300,
    )
    output = proc.stdout[-6000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, f"fuzzing {entry_point} exited with {proc.returncode}:\n{output}"
    summary = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line and " " not in line)
    # the fuzzer must have reached both sides of the validation, or it tested nothing
    assert int(summary["results"]) >= EXAMPLES // 10, output
    assert int(summary["errors"]) >= EXAMPLES // 10, output


# ----------------------------------------------------------------------------- the fuzzer itself


def _fuzz(entry_point, examples, package_root):  # pragma: no cover - runs in the subprocess
    from collections import Counter

    import numpy as np
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    assert os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__))) == package_root
    from helpers import assert_within_bound
    from reference import (conv1d_reference, conv2d_transpose_reference, grouped_conv2d_reference, pad_reference,
                           reference_padding)

    tally = Counter()
    BIG = 10**5  # an argument at least this large may legitimately raise MemoryError

    # --- arbitrary values
    ints = st.one_of(st.integers(-3, 7), st.integers(-2**70, 2**70),
                     st.sampled_from([2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, -2**63]))
    floats = st.floats(allow_nan=True, allow_infinity=True)
    dtypes = st.sampled_from(["f2", "f4", "f8", "i1", "i4", "i8", "u1", "u8", "?", "c8", "c16", "O", "U3", "S2",
                              "M8[s]", "m8[s]", "g", [("a", "f8"), ("b", "i4")]])

    @st.composite
    def random_arrays(draw):
        dtype = np.dtype(draw(dtypes))
        shape = draw(st.lists(st.integers(0, 4), min_size=0, max_size=6).map(tuple))
        values = (np.arange(int(np.prod(shape, dtype=np.int64))) % 5 - 2).reshape(shape)
        try:
            array = values.astype(dtype)
        except (TypeError, ValueError):
            array = np.zeros(shape, dtype)
        if draw(st.booleans()) and array.ndim >= 2:
            array = array.swapaxes(0, 1)  # not contiguous
        if draw(st.booleans()) and array.ndim >= 1 and array.shape[0] > 1:
            array = array[::-1]  # negative strides
        return array

    scalars = st.one_of(ints, floats, st.text(max_size=5), st.none(), st.booleans(), st.just(1j),
                        st.sampled_from(["SAME", "VALID", "same", "NHWC", "NCHW", b"SAME", np.int64(2), np.float32(1.5),
                                         np.array(2), np.bool_(True)]))
    anything = st.recursive(
        st.one_of(scalars, random_arrays()),
        lambda inner: st.one_of(st.tuples(inner), st.tuples(inner, inner), st.tuples(inner, inner, inner),
                                st.lists(inner, max_size=3), st.frozensets(st.integers(0, 3), max_size=2)),
        max_leaves=6,
    )

    # --- plausible values, so that many calls are valid
    small = st.integers(0, 4)

    def pairs_of(values):
        return st.one_of(values, st.tuples(values, values), st.lists(values, min_size=2, max_size=2))

    kernel_sizes, strides_ = pairs_of(st.integers(1, 3)), pairs_of(st.integers(1, 3))
    dilations_ = pairs_of(st.integers(0, 2))
    paddings = st.one_of(
        st.sampled_from(["SAME", "VALID", "same", "valid"]), small, st.tuples(small, small),
        st.tuples(st.tuples(small, small), st.tuples(small, small)),
    )
    layouts = st.sampled_from(["NHWC", "NCHW", "nchw"])
    padding_modes = st.sampled_from(["constant"] * 6 + ["reflect", "replicate", "circular", "zeros", "Edge", "wrap"])
    real_dtypes = st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.uint8])

    def plausible_array(shape_strategy):
        return real_dtypes.flatmap(
            lambda dt: hnp.arrays(dt, shape_strategy, elements=st.integers(-3, 3).map(float) if np.dtype(dt).kind == "f"
                                  else st.integers(0, 3)))

    def arg(plausible, name=None, bad=None):
        """`plausible`, or anything at all: always when `name` is in `bad`, else 1 time in 5."""
        if bad is not None:
            return anything if name in bad else plausible
        return st.one_of(plausible, plausible, plausible, plausible, anything)

    def corrupted(names):
        """Which arguments get arbitrary values: none (about half the time), or one to three."""
        return st.booleans().flatmap(
            lambda clean: st.just(frozenset()) if clean
            else st.frozensets(st.sampled_from(names), min_size=1, max_size=3))

    def ints_in(value):
        """Every int in a (nested) argument, and every dimension of an array in it."""
        if isinstance(value, (bool, np.bool_)):
            return []
        if isinstance(value, (int, np.integer)):
            return [int(value)]
        if isinstance(value, np.ndarray):
            return list(value.shape) + ([int(value)] if value.ndim == 0 and value.dtype.kind in "iu" else [])
        if isinstance(value, (tuple, list, frozenset)):
            return [i for v in value for i in ints_in(v)]
        return []

    def call(function, *args, **kwargs):
        """function(...), or None after a clean error; anything else propagates and fails."""
        try:
            result = function(*args, **kwargs)
        except (ValueError, TypeError) as error:
            assert str(error), "an error without a message"
            tally["errors"] += 1
            tally[type(error).__name__] += 1
            return None
        except MemoryError:
            biggest = max((abs(i) for i in ints_in((args, tuple(kwargs.values())))), default=0)
            assert biggest >= BIG, f"MemoryError although no argument is large: {args!r:.300} {kwargs!r:.300}"
            tally["errors"] += 1
            tally["MemoryError"] += 1
            return None
        tally["results"] += 1
        return result

    # --- independent shape rules (from reference.py, not from cyconv)
    def as_pair(value):
        return (int(value), int(value)) if np.ndim(value) == 0 else (int(value[0]), int(value[1]))

    def pads_of(padding, in_hw, kernel_hw, strides, dilations):
        if isinstance(padding, str):
            return tuple(reference_padding(padding.upper(), in_hw[a], kernel_hw[a], strides[a], dilations[a])
                         for a in (0, 1))
        if np.ndim(padding) == 0:
            return ((int(padding),) * 2,) * 2
        if np.ndim(padding[0]) == 0:
            return ((int(padding[0]),) * 2, (int(padding[1]),) * 2)
        return tuple(as_pair(p) for p in padding)

    def out_hw(in_hw, kernel_hw, strides, dilations, pads):
        return tuple(
            (in_hw[a] + sum(pads[a]) - (kernel_hw[a] - 1) * (dilations[a] + 1) - 1) // strides[a] + 1 for a in (0, 1)
        )

    def nhwc(shape, layout):
        return tuple(shape) if layout.upper() == "NHWC" else (shape[0], shape[2], shape[3], shape[1])

    def expected_dtype(*arrays):
        small_floats = all(a.dtype.kind == "f" and a.dtype.itemsize <= 4 for a in arrays)
        return np.float32 if small_floats else np.float64

    def canonical_mode(mode):
        return {"zeros": "constant", "edge": "replicate", "wrap": "circular"}.get(mode.lower(), mode.lower())

    def check_values(got, reference, inputs, terms):
        """got against reference(*inputs) within the rounding bound of `terms` terms, when finite."""
        expected = reference(*inputs)
        assert got.shape == expected.shape, (got.shape, expected.shape)
        if np.isfinite(expected).all():
            magnitudes = [None if a is None else np.abs(a) for a in inputs]
            assert_within_bound(got, expected, reference(*magnitudes), terms)

    def check_conv(y, x, kernel, bias, strides, dilations, padding, layout, pad_value, groups, padding_mode):
        layout = layout.upper()
        to_nhwc = (lambda a: a) if layout == "NHWC" else (lambda a: np.transpose(a, (0, 2, 3, 1)))
        x64, k64 = to_nhwc(np.asarray(x, np.float64)), to_nhwc(np.asarray(kernel, np.float64))
        s, d = as_pair(strides), as_pair(dilations)
        pads = pads_of(padding, x64.shape[1:3], k64.shape[1:3], s, d)
        b = None if bias is None else np.asarray(bias, np.float64)
        dtype = expected_dtype(np.asarray(x), np.asarray(kernel))  # the bias follows x and kernel
        assert y.dtype == dtype, (y.dtype, dtype)

        def reference(x_, k_, b_, pad_value_):
            padded = pad_reference(x_, pads, canonical_mode(padding_mode), pad_value_)
            return grouped_conv2d_reference(padded, k_, b_, s, d, ((0, 0), (0, 0)), groups=int(groups))

        check_values(to_nhwc(y), reference, (x64, k64, b, float(pad_value)), k64[0].size + 1)

    # --- one property per entry point
    @st.composite
    def conv_args(draw):
        bad = draw(corrupted(["x", "kernel", "bias", "strides", "dilations", "padding", "layout", "pad_value",
                              "groups", "padding_mode"]))
        layout = draw(arg(layouts, "layout", bad))
        groups = draw(st.sampled_from([1, 1, 2]))
        n, c = draw(st.integers(0, 2)), groups * draw(st.integers(1, 2))
        h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        f, kh, kw = groups * draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
        nchw = isinstance(layout, str) and layout.upper() == "NCHW"
        x_shape = (n, c, h, w) if nchw else (n, h, w, c)
        k_shape = (f, c // groups, kh, kw) if nchw else (f, kh, kw, c // groups)
        mode = draw(arg(padding_modes, "padding_mode", bad))
        constant = isinstance(mode, str) and mode.lower() in ("constant", "zeros")
        return dict(
            x=draw(arg(plausible_array(st.just(x_shape)), "x", bad)),
            kernel=draw(arg(plausible_array(st.just(k_shape)), "kernel", bad)),
            bias=draw(arg(st.one_of(st.none(), plausible_array(st.just((f,)))), "bias", bad)),
            strides=draw(arg(strides_, "strides", bad)), dilations=draw(arg(dilations_, "dilations", bad)),
            padding=draw(arg(paddings, "padding", bad)), layout=layout,
            # float32 values without subnormals: the rounding bound assumes nothing underflows
            pad_value=draw(arg(st.floats(-2, 2, width=32, allow_subnormal=False) if constant else st.just(0.0),
                               "pad_value", bad)),
            groups=draw(arg(st.just(groups), "groups", bad)), padding_mode=mode,
        )

    def conv_options(a):
        return dict(layout=a["layout"], pad_value=a["pad_value"], groups=a["groups"], padding_mode=a["padding_mode"])

    common = dict(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))

    @settings(**common)
    @given(conv_args())
    def fuzz_conv2d(a):
        y = call(cyconv.conv2d, a["x"], a["kernel"], a["bias"], a["strides"], a["dilations"], a["padding"],
                 **conv_options(a))
        if y is not None:
            check_conv(y, a["x"], a["kernel"], a["bias"], a["strides"], a["dilations"], a["padding"], a["layout"],
                       a["pad_value"], a["groups"], a["padding_mode"])

    @settings(**common)
    @given(conv_args(), st.data())
    def fuzz_conv2d_backward(a, data):
        try:
            y = cyconv.conv2d(a["x"], a["kernel"], None, a["strides"], a["dilations"], a["padding"],
                              **conv_options(a))
            gy_shape = y.shape
        except (ValueError, TypeError, MemoryError):
            gy_shape = (1, 2, 2, 1)
        grad_y = data.draw(arg(plausible_array(st.sampled_from([gy_shape, gy_shape[::-1], (0,) + gy_shape[1:]]))))
        grads = call(cyconv.conv2d_backward, grad_y, a["x"], a["kernel"], a["strides"], a["dilations"], a["padding"],
                     **conv_options(a))
        if grads is not None:
            x, kernel = np.asarray(a["x"]), np.asarray(a["kernel"])
            dtype = expected_dtype(x, kernel)
            assert [g.shape for g in grads] == [x.shape, kernel.shape, kernel.shape[:1]]
            assert all(g.dtype == dtype for g in grads)
            if x.shape[0] == 0:
                assert not grads[1].any() and not grads[2].any()

    @st.composite
    def patch_args(draw):
        bad = draw(corrupted(["kernel_size", "strides", "dilations", "padding", "layout", "pad_value"]))
        layout = draw(arg(layouts, "layout", bad))
        n, c, h, w = draw(st.integers(0, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
        nchw = isinstance(layout, str) and layout.upper() == "NCHW"
        shape = (n, c, h, w) if nchw else (n, h, w, c)
        return dict(layout=layout, shape=shape, kernel_size=draw(arg(kernel_sizes, "kernel_size", bad)),
                    strides=draw(arg(strides_, "strides", bad)), dilations=draw(arg(dilations_, "dilations", bad)),
                    padding=draw(arg(paddings, "padding", bad)),
                    pad_value=draw(arg(st.floats(-2, 2), "pad_value", bad)),
                    bad=bad)

    def patch_shape(shape, a):
        """cols shape for a valid call, computed from the arguments without cyconv."""
        n, h, w, c = nhwc(shape, a["layout"])
        k, s, d = as_pair(a["kernel_size"]), as_pair(a["strides"]), as_pair(a["dilations"])
        oh, ow = out_hw((h, w), k, s, d, pads_of(a["padding"], (h, w), k, s, d))
        taps = k[0] * k[1] * c
        return (n * oh * ow, taps) if a["layout"].upper() == "NHWC" else (n, taps, oh * ow)

    @settings(**common)
    @given(patch_args(), st.data())
    def fuzz_im2col(a, data):
        x = data.draw(arg(plausible_array(st.just(a["shape"]))))
        cols = call(cyconv.im2col, x, a["kernel_size"], a["strides"], a["dilations"], a["padding"],
                    layout=a["layout"], pad_value=a["pad_value"])
        if cols is not None:
            assert cols.shape == patch_shape(np.shape(x), a), (cols.shape, patch_shape(np.shape(x), a))
            assert cols.dtype == expected_dtype(np.asarray(x))

    @settings(**common)
    @given(patch_args(), st.data())
    def fuzz_col2im(a, data):
        input_shape = data.draw(arg(st.just(a["shape"])))
        try:
            cols_shape = patch_shape(input_shape, a)
        except Exception:
            cols_shape = (3, 4)
        # none fits, or huge
        if min(cols_shape) < 0 or max(cols_shape) > 5000 or np.prod(cols_shape, dtype=float) > 5000:
            cols_shape = (3, 4)
        # mostly the right shape, so that valid calls are common (they were about 1 in 10)
        cols = data.draw(arg(plausible_array(st.sampled_from([cols_shape] * 3 + [cols_shape[::-1]]))))
        out = call(cyconv.col2im, cols, input_shape, a["kernel_size"], a["strides"], a["dilations"], a["padding"],
                   layout=a["layout"])
        if out is not None:
            assert out.shape == tuple(input_shape)
            assert out.dtype == expected_dtype(np.asarray(cols))

    @settings(**common)
    @given(patch_args(), st.data())
    def fuzz_convolution(a, data):
        a["layout"] = "NHWC"
        input_shape = data.draw(arg(st.just(a["shape"])))
        filters = data.draw(arg(st.integers(1, 3)))
        layer = call(cyconv.Convolution, input_shape, filters, a["kernel_size"], a["strides"], a["dilations"],
                     a["padding"], pad_value=a["pad_value"], dtype=data.draw(st.sampled_from([np.float32, np.float64])))
        if layer is None:
            return
        n, h, w, c = (int(v) for v in input_shape)
        kh, kw = as_pair(a["kernel_size"])
        s, d = as_pair(a["strides"]), as_pair(a["dilations"])
        oh, ow = out_hw((h, w), (kh, kw), s, d, pads_of(a["padding"], (h, w), (kh, kw), s, d))
        assert layer.output_shape() == (n, oh, ow, int(filters))
        if data.draw(st.booleans()):
            new_kernel = data.draw(arg(plausible_array(st.just(layer.kernel.shape))))
            try:
                layer.kernel = new_kernel
            except (ValueError, TypeError):
                pass
            assert layer.kernel.shape == (filters, kh, kw, c) and layer.kernel.dtype == layer.dtype
            assert layer.kernel.flags.c_contiguous
        x = data.draw(arg(plausible_array(st.sampled_from([(n, h, w, c), (n + 1, h, w, c), (n, w, h, c)]))))
        y = call(layer.forward, x)
        grad_y = data.draw(arg(plausible_array(st.just(y.shape if y is not None else (n, oh, ow, filters)))))
        grad_x = call(layer.backward, grad_y)
        if y is not None:
            assert y.shape == (np.shape(x)[0], oh, ow, filters)
        if grad_x is not None:
            assert grad_x.shape == layer._x.shape
            assert layer.kernel_grad.shape == layer.kernel.shape
            assert layer.bias_grad.shape == (filters,)

    @st.composite
    def transpose_args(draw):
        bad = draw(corrupted(["x", "kernel", "bias", "strides", "dilations", "padding", "layout", "groups",
                              "output_padding"]))
        layout = draw(arg(layouts, "layout", bad))
        groups = draw(st.sampled_from([1, 1, 2]))
        n, f, cg = draw(st.integers(0, 2)), groups * draw(st.integers(1, 2)), draw(st.integers(1, 2))
        h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        nchw = isinstance(layout, str) and layout.upper() == "NCHW"
        return dict(
            x=draw(arg(plausible_array(st.just((n, f, h, w) if nchw else (n, h, w, f))), "x", bad)),
            kernel=draw(arg(plausible_array(st.just((f, cg, kh, kw) if nchw else (f, kh, kw, cg))), "kernel", bad)),
            bias=draw(arg(st.one_of(st.none(), plausible_array(st.just((groups * cg,)))), "bias", bad)),
            strides=draw(arg(strides_, "strides", bad)), dilations=draw(arg(dilations_, "dilations", bad)),
            padding=draw(arg(paddings, "padding", bad)), layout=layout,
            groups=draw(arg(st.just(groups), "groups", bad)),
            output_padding=draw(arg(pairs_of(st.integers(0, 2)), "output_padding", bad)),
        )

    @settings(**common)
    @given(transpose_args())
    def fuzz_conv2d_transpose(a):
        options = {key: a[key] for key in ("strides", "dilations", "padding", "output_padding", "layout", "groups")}
        y = call(cyconv.conv2d_transpose, a["x"], a["kernel"], a["bias"], **options)
        if y is None:
            return
        to_nhwc = (lambda v: v) if a["layout"].upper() == "NHWC" else (lambda v: np.transpose(v, (0, 2, 3, 1)))
        x64, k64 = to_nhwc(np.asarray(a["x"], np.float64)), to_nhwc(np.asarray(a["kernel"], np.float64))
        s, d, op = as_pair(a["strides"]), as_pair(a["dilations"]), as_pair(a["output_padding"])
        extents = [(k - 1) * (dd + 1) + 1 for k, dd in zip(k64.shape[1:3], d)]
        if isinstance(a["padding"], str) and a["padding"].upper() == "SAME":
            out = (x64.shape[1] * s[0], x64.shape[2] * s[1])
        else:
            explicit = pads_of(a["padding"], (1, 1), (1, 1), (1, 1), (0, 0))
            out = tuple((x64.shape[1 + i] - 1) * s[i] - sum(explicit[i]) + extents[i] + op[i] for i in (0, 1))
        pads = pads_of(a["padding"], out, k64.shape[1:3], s, d)
        assert y.dtype == expected_dtype(np.asarray(a["x"]), np.asarray(a["kernel"]))
        b = None if a["bias"] is None else np.asarray(a["bias"], np.float64)

        def reference(x_, k_, b_):
            return conv2d_transpose_reference(x_, k_, b_, s, d, pads, out, int(a["groups"]))

        terms = k64.shape[0] // int(a["groups"]) * k64.shape[1] * k64.shape[2] + 1
        check_values(to_nhwc(y), reference, (x64, k64, b), terms)

    @st.composite
    def conv1d_args(draw):
        bad = draw(corrupted(["x", "kernel", "bias", "strides", "dilations", "padding", "layout", "groups"]))
        layout = draw(arg(st.sampled_from(["NWC", "NCW", "ncw"]), "layout", bad))
        groups = draw(st.sampled_from([1, 1, 2]))
        n, c, f = draw(st.integers(0, 2)), groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
        w, k = draw(st.integers(1, 7)), draw(st.integers(1, 4))
        ncw = isinstance(layout, str) and layout.upper() == "NCW"
        return dict(
            x=draw(arg(plausible_array(st.just((n, c, w) if ncw else (n, w, c))), "x", bad)),
            kernel=draw(arg(plausible_array(st.just((f, c // groups, k) if ncw else (f, k, c // groups))), "kernel",
                            bad)),
            bias=draw(arg(st.one_of(st.none(), plausible_array(st.just((f,)))), "bias", bad)),
            strides=draw(arg(st.integers(1, 3), "strides", bad)),
            dilations=draw(arg(st.integers(0, 2), "dilations", bad)),
            padding=draw(arg(st.one_of(st.sampled_from(["SAME", "VALID"]), small, st.tuples(small, small)), "padding",
                             bad)),
            layout=layout, groups=draw(arg(st.just(groups), "groups", bad)),
        )

    @settings(**common)
    @given(conv1d_args())
    def fuzz_conv1d(a):
        y = call(cyconv.conv1d, a["x"], a["kernel"], a["bias"], a["strides"], a["dilations"], a["padding"],
                 layout=a["layout"], groups=a["groups"])
        if y is None:
            return
        to_nwc = (lambda v: v) if a["layout"].upper() == "NWC" else (lambda v: np.transpose(v, (0, 2, 1)))
        x64, k64 = to_nwc(np.asarray(a["x"], np.float64)), to_nwc(np.asarray(a["kernel"], np.float64))
        stride, dilation, padding = int(a["strides"]), int(a["dilations"]), a["padding"]
        if isinstance(padding, str):
            pads = reference_padding(padding, x64.shape[1], k64.shape[1], stride, dilation)
        else:
            pads = (int(padding),) * 2 if np.ndim(padding) == 0 else (int(padding[0]), int(padding[1]))
        assert y.dtype == expected_dtype(np.asarray(a["x"]), np.asarray(a["kernel"]))
        b = None if a["bias"] is None else np.asarray(a["bias"], np.float64)

        def reference(x_, k_, b_):
            return conv1d_reference(x_, k_, b_, stride, dilation, pads, 0.0, int(a["groups"]))

        check_values(to_nwc(y), reference, (x64, k64, b), k64[0].size + 1)

    fuzzers = {"conv2d": fuzz_conv2d, "conv2d_backward": fuzz_conv2d_backward,
               "conv2d_transpose": fuzz_conv2d_transpose,
               "conv1d": fuzz_conv1d, "im2col": fuzz_im2col,
               "col2im": fuzz_col2im, "Convolution": fuzz_convolution}
    fuzzers[entry_point]()
    for key, count in sorted(tally.items()):
        print(f"{key}={count}")


if __name__ == "__main__":  # pragma: no cover
    _fuzz(sys.argv[1], int(sys.argv[2]), sys.argv[3])
