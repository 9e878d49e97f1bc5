"""python -m cyconv: see the library work, check it on random problems, or time it.

    python -m cyconv demo                          document 001's worked example, backward, a gradient check
    python -m cyconv gradcheck [--count N] [--seed S]
                                                   conv2d against a direct loop, conv2d_backward
                                                   against finite differences, on N random problems
    python -m cyconv bench [ARGS...]               the benchmark suite (`bench --help` for its options)

Exit status 0 when every check passes, 1 when one fails, 2 on a command-line error.
"""
import argparse
import sys

import numpy as np

from .gradcheck import check_conv2d, check_layer
from .layers import Convolution

# Document 001's worked example: input (1, 3, 3, 2), a 2x2 kernel of ones, 'SAME' padding.
DOCUMENT_INPUT = np.stack(
    [
        np.array([[2, 1, 1.5], [3, 2.2, 5], [5, 3, 2]]),
        np.array([[7.3, 4, 2], [4, 3, 2], [0.8, 2.7, 3.9]]),
    ],
    axis=-1,
)[np.newaxis]
DOCUMENT_OUTPUT = np.array([[26.5, 20.7, 10.5], [23.7, 23.8, 12.9], [11.5, 11.6, 5.9]])


def verdict(passed):
    return "PASS" if passed else "FAIL"


def demo_forward():
    """Document 001's example through cyconv.Convolution, beside the document's numbers."""
    print("Document 001's worked example: x (1, 3, 3, 2), kernel of ones (1, 2, 2, 2),")
    print("strides (1, 1), dilations (0, 0), padding 'SAME'.")
    conv = Convolution((1, 3, 3, 2), 1, (2, 2), (1, 1), (0, 0), "SAME")
    conv.kernel = np.ones((1, 2, 2, 2))
    y = conv(DOCUMENT_INPUT)
    print(f"\n  {'cyconv':<20}  document 001")
    for got, expected in zip(y[0, :, :, 0], DOCUMENT_OUTPUT):
        print(f"  {' '.join(f'{v:5.1f}' for v in got):<20}  {' '.join(f'{v:5.1f}' for v in expected)}")
    passed = y.shape == (1, 3, 3, 1) and np.allclose(y[0, :, :, 0], DOCUMENT_OUTPUT, rtol=0, atol=1e-12)
    print(f"forward {verdict(passed)}: output shape {y.shape}, values as in document 001\n")
    return conv, passed


def demo_backward(conv):
    """Convolution.backward for L = sum(y): grad_x counts the output windows that cover each pixel."""
    grad_x = conv.backward(np.ones(conv.output_shape()))
    print("Convolution.backward(grad_y = ones), the gradient of L = sum(y):")
    for c in range(2):
        print(f"  dL/dx[0, :, :, {c}] = {grad_x[0, :, :, c].tolist()}")
    print(f"  dL/dkernel[0, :, :, 0] = {conv.kernel_grad[0, :, :, 0].tolist()}")
    coverage = np.outer([1, 2, 2], [1, 2, 2])
    passed = all(np.array_equal(grad_x[0, :, :, c], coverage) for c in range(2))
    print(f"backward {verdict(passed)}: each pixel's gradient is the number of 2x2 windows covering it "
          f"(the padding is on the bottom / right)\n")
    return passed


def demo_gradcheck():
    """check_layer on a random Convolution with stride, dilation, SAME padding and a bias."""
    rng = np.random.default_rng(0)
    conv = Convolution((2, 6, 5, 3), 2, (3, 2), strides=(2, 1), dilations=(1, 0), padding="SAME", seed=1)
    conv.bias = rng.standard_normal(2)
    print("cyconv.gradcheck.check_layer on Convolution((2, 6, 5, 3), 2, (3, 2), strides=(2, 1), "
          "dilations=(1, 0), padding='SAME'):")
    report = check_layer(conv, rng.standard_normal((2, 6, 5, 3)), seed=2)
    print(report)
    print(f"gradcheck {verdict(report.passed)}\n")
    return report.passed


def run_demo():
    conv, forward_passed = demo_forward()
    passed = [forward_passed, demo_backward(conv), demo_gradcheck()]
    print(f"demo {verdict(all(passed))}")
    return 0 if all(passed) else 1


def random_padding(rng):
    """'SAME', 'VALID', an int, (ph, pw) or ((top, bottom), (left, right)), each pad in 0..2."""
    form = rng.integers(5)
    if form < 2:
        return ("SAME", "VALID")[form]
    if form == 2:
        return int(rng.integers(3))
    if form == 3:
        return tuple(int(p) for p in rng.integers(3, size=2))
    return tuple(tuple(int(p) for p in rng.integers(3, size=2)) for _ in range(2))


def random_problem(rng):
    """The arguments of one small random conv2d call (small: finite differences are per element)."""
    layout = ("NHWC", "NCHW")[rng.integers(2)]
    dtype = (np.float32, np.float64)[rng.integers(2)]
    n, c, f = (int(v) for v in rng.integers(1, 4, size=3))
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    strides = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dilations = tuple(int(v) for v in rng.integers(0, 3, size=2))
    # At least the dilated kernel's extent, so that the problem is valid even without padding.
    h = (kh - 1) * (dilations[0] + 1) + 1 + int(rng.integers(4))
    w = (kw - 1) * (dilations[1] + 1) + 1 + int(rng.integers(4))
    x_shape, kernel_shape = ((n, h, w, c), (f, kh, kw, c)) if layout == "NHWC" else ((n, c, h, w), (f, c, kh, kw))
    return dict(
        x=rng.standard_normal(x_shape).astype(dtype),
        kernel=rng.standard_normal(kernel_shape).astype(dtype),
        bias=rng.standard_normal(f).astype(dtype),
        strides=strides,
        dilations=dilations,
        padding=random_padding(rng),
        layout=layout,
        pad_value=float(rng.choice([0.0, 0.5])),
    )


GRADCHECK_COLUMNS = (
    f"{'#':>3}  {'layout':<6}  {'dtype':<7}  {'x':<14}  {'kernel':<14}  {'strides':<7}  {'dilations':<9}  "
    f"{'padding':<16}  {'pad':>3}  {'forward err':>11}  {'grad err':>8}  result"
)


def gradcheck_row(number, problem, report):
    """One table line: the problem, the forward's and the worst gradient's max abs error, PASS/FAIL."""
    p = problem
    forward_error = report["y"].max_abs_error
    gradient_error = max(r.max_abs_error for r in report.results if r.name != "y")
    return (
        f"{number:>3}  {p['layout']:<6}  {p['x'].dtype.name:<7}  {str(p['x'].shape):<14}  "
        f"{str(p['kernel'].shape):<14}  {str(p['strides']):<7}  {str(p['dilations']):<9}  "
        f"{str(p['padding']):<16}  {p['pad_value']:>3}  {forward_error:>11.1e}  {gradient_error:>8.1e}  "
        f"{verdict(report.passed)}"
    )


def run_gradcheck(args):
    rng = np.random.default_rng(args.seed)
    print(f"conv2d against a direct loop, conv2d_backward against central differences: "
          f"{args.count} random problems, seed {args.seed}")
    print(GRADCHECK_COLUMNS)
    failures = []
    for number in range(1, args.count + 1):
        problem = random_problem(rng)
        report = check_conv2d(**problem, seed=number)
        print(gradcheck_row(number, problem, report))
        if not report.passed:
            failures.append((number, report))
    for number, report in failures:
        print(f"\nproblem {number}:\n{report}")
    failed = len(failures)
    print(f"\ngradcheck {verdict(not failed)}: {args.count - failed} of {args.count} problems passed")
    return 1 if failed else 0


def run_bench(argv):
    try:
        from . import _bench
    except ImportError as error:
        print(f"python -m cyconv bench: the benchmark suite cyconv._bench cannot be imported ({error})",
              file=sys.stderr)
        return 1
    return _bench.main(argv)


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m cyconv",
        description="cyconv: exact, fast 2-D convolution for NumPy. Run the demo, check the library, or time it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("demo", help="document 001's worked example, Convolution.backward and a gradient check")
    gradcheck = commands.add_parser(
        "gradcheck", help="check conv2d and conv2d_backward on random problems (both layouts and dtypes)"
    )
    gradcheck.add_argument("--count", type=positive_int, default=20, help="number of random problems (default 20)")
    gradcheck.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    commands.add_parser("bench", add_help=False,
                        help="time cyconv against PyTorch and the documents' method; the remaining arguments go to "
                             "the benchmark suite")
    return parser


def main(argv=None):
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        return run_bench(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return run_demo() if args.command == "demo" else run_gradcheck(args)


if __name__ == "__main__":
    sys.exit(main())
