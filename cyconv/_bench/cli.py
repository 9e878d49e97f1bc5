"""python -m cyconv bench (and benchmarks/run.py): the command line of the benchmark suite.

Exit status: 0; 1 when a row was not timed because cyconv's result disagreed with a baseline or a
contender failed; 2 on a bad command line (argparse's message on stderr).
"""
import argparse
import ast
import importlib.util
import inspect
import time

import cyconv

from . import report
from .environment import load_average, machine
from .layers import LAYERS, LAYOUTS
from .results import layer_rows, summarize
from .runner import Settings, run_suite
from .timing import BlockPlan

DEFAULT_ROUNDS, QUICK_ROUNDS = 5, 2
QUICK_PLAN = BlockPlan(timed_seconds=0.05)
# Arguments the suite itself passes to cyconv for each layer (zero padding, as every baseline).
SUITE_ARGUMENTS = ("x", "kernel", "bias", "grad_y", "strides", "dilations", "padding", "layout", "pad_value",
                   "groups")


def layer_indices(text):
    """'3', '0,3' or '2-5' -> a list of layer indices (an argparse type)."""
    indices = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        try:
            indices.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected layer indices like 0,3 or 2-5, got {text!r}") from None
    bad = [i for i in indices if not 0 <= i < len(LAYERS)]
    if bad or not indices:
        raise argparse.ArgumentTypeError(f"layer indices are 0..{len(LAYERS) - 1}, got {text!r}")
    return indices


def cyconv_option(text):
    """'KEY=VALUE' -> (key, value): a keyword argument of both conv2d and conv2d_backward; VALUE
    is a Python literal (2, 0.5, True, 'gemm') or else a plain string (gemm)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if key in SUITE_ARGUMENTS:
        raise argparse.ArgumentTypeError(f"{key} is set by the suite for each layer")
    for function in (cyconv.conv2d, cyconv.conv2d_backward):
        parameters = inspect.signature(function).parameters
        if key not in parameters and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            raise argparse.ArgumentTypeError(
                f"cyconv.{function.__name__} has no keyword argument {key!r} (it takes {', '.join(parameters)})")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key, value


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m cyconv bench",
        description="Time cyconv's conv2d forward and forward+backward against the documents' NumPy method, "
                    "PyTorch (if installed) and the bare GEMM, each contender in its own process.")
    add = parser.add_argument
    add("--layers", nargs="+", type=layer_indices, metavar="I",
        help=f"layers by index: '0 3', '0,3' or '2-5' (default: all {len(LAYERS)}; see --list)")
    add("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS), help="layouts to run (default: both)")
    add("--rounds", type=positive_int, help=f"rounds per layer (default {DEFAULT_ROUNDS}, --quick {QUICK_ROUNDS})")
    add("--quick", action="store_true", help="smoke run: batches 8x smaller, fewer rounds, shorter blocks")
    add("--contention", action="store_true",
        help="also time every block beside a busy process, and report each contender's slowdown")
    add("--no-torch", action="store_true", help="do not run PyTorch")
    add("--cyconv-option", action="append", type=cyconv_option, default=[], metavar="KEY=VALUE",
        help="an extra keyword argument for cyconv.conv2d and conv2d_backward (repeatable; a transposed layer "
             "passes it to conv2d_transpose and conv2d_transpose_backward, and fails if they do not take it)")
    add("--out", default="cyconv-benchmark", help="directory for results.md/.json/.png (default ./cyconv-benchmark)")
    add("--list", action="store_true", help="list the layers and exit")
    return parser


def _settings(args):
    indices = sorted({i for chosen in args.layers for i in chosen}) if args.layers else range(len(LAYERS))
    return Settings(
        layers=tuple(indices), layouts=tuple(l for l in LAYOUTS if l in args.layouts),
        rounds=args.rounds or (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS), quick=args.quick,
        with_torch=not args.no_torch and importlib.util.find_spec("torch") is not None,
        contention=args.contention, cyconv_options=dict(args.cyconv_option),
        plan=QUICK_PLAN if args.quick else BlockPlan())


def _print_layer(layer, layouts):
    for row in layer_rows(layer, layouts):
        print(report.text_line(report.row_cells(row)), flush=True)


def _busy_machine_note(meta):
    """A warning when other work kept at least half the cores busy as the run started."""
    load, cores = meta["load_average_at_start"], meta["cores_available"]
    if load and load[0] >= 0.5 * cores:
        return [f"the machine was busy: load average {load[0]} on {cores} cores as the run started; "
                "expect disturbed figures (see the spreads)"]
    return []


def _layer_notes(layers):
    """Each layer's notes, those common to every layer once."""
    common = set.intersection(*(set(layer["notes"]) for layer in layers)) if len(layers) > 1 else set()
    notes = [f"every layer: {n}" for n in layers[0]["notes"] if n in common] if common else []
    return notes + [f"layer {layer['index']}: {n}" for layer in layers for n in layer["notes"] if n not in common]


def main(argv=None):
    """Run the suite; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or argparse's error (message already on stderr)
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.list:
        print("\n".join(f"{i}: {spec.label()}" for i, spec in enumerate(LAYERS)))
        return 0
    settings = _settings(args)
    meta, start = machine(), time.perf_counter()
    print(f"cyconv {cyconv.__version__} benchmark, float32: layers {', '.join(map(str, settings.layers))}, "
          f"{' and '.join(settings.layouts)}, {settings.rounds} rounds" + (", quick" if settings.quick else ""))
    print(report.TIME_LEGEND)
    print(report.RATIO_LEGEND)
    print(report.text_header(), flush=True)
    suite = run_suite(settings, lambda layer: _print_layer(layer, settings.layouts))
    rows = [row for layer in suite["layers"] for row in layer_rows(layer, settings.layouts)]
    summary = summarize(rows)
    notes = ([] if settings.with_torch else ["PyTorch not run (--no-torch, or not installed)"]) + suite["notes"]
    notes += _busy_machine_note(meta)
    notes += _layer_notes(suite["layers"])
    meta.update(settings=dict(vars(settings), plan=vars(settings.plan)), libraries=suite["libraries"],
                load_average_at_end=load_average(), elapsed_seconds=time.perf_counter() - start)
    files = report.write_all(args.out, meta, suite["layers"], rows, summary, notes)
    report.print_end(meta, rows, summary, notes, files)
    return 0 if all(row["ok"] for row in rows) else 1
