"""python -m cyconv: demo, gradcheck and bench, their exit codes and argparse's errors."""
import functools
import os
import subprocess
import sys
import types

import pytest

import cyconv
from cyconv import __main__ as cli
from cyconv.gradcheck import check_conv2d

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__)))


def run_cli(*args):
    """`python -m cyconv ARGS` in a subprocess that imports the same cyconv as this test."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    env["CYCONV_NUM_THREADS"] = "1"  # thousands of tiny calls: one thread keeps the run light
    # cwd: `python -m` puts the working directory first on sys.path, where a source checkout's
    # cyconv/ (without the compiled module) would shadow the installed package.
    return subprocess.run([sys.executable, "-m", "cyconv", *args], capture_output=True, text=True, env=env,
                          cwd=PACKAGE_ROOT, timeout=300)


def test_demo_reproduces_document_001_and_passes():
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    for line in ("forward PASS", "backward PASS", "gradcheck PASS", "demo PASS"):
        assert line in result.stdout
    assert "26.5  20.7  10.5      26.5  20.7  10.5" in result.stdout


def test_gradcheck_passes_three_random_problems():
    result = run_cli("gradcheck", "--count", "3", "--seed", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.rstrip().endswith("PASS")]
    assert len(rows) == 3
    assert "gradcheck PASS: 3 of 3 problems passed" in result.stdout


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("demo", "gradcheck", "bench"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope"], "invalid choice: 'nope'"),
        ([], "the following arguments are required: COMMAND"),
        (["gradcheck", "--count", "0"], "--count: expected an integer >= 1, got 0"),
        (["demo", "--verbose"], "unrecognized arguments: --verbose"),
    ],
)
def test_argument_errors_exit_2_with_argparse_messages(args, message, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(args)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_subcommand_exits_non_zero_in_a_subprocess():
    result = run_cli("nope")
    assert result.returncode != 0
    assert "invalid choice" in result.stderr


def test_gradcheck_exits_1_and_prints_the_report_when_a_problem_fails(monkeypatch, capsys, one_thread):
    monkeypatch.setattr(cli, "check_conv2d", functools.partial(check_conv2d, rtol=0, atol=0))
    assert cli.main(["gradcheck", "--count", "1"]) == 1
    out = capsys.readouterr().out
    assert "gradcheck FAIL: 0 of 1 problems passed" in out
    assert "problem 1:" in out


def test_bench_passes_the_remaining_arguments_to_the_benchmark_suite(monkeypatch):
    received = []
    fake = types.SimpleNamespace(main=lambda argv: received.append(argv) or 7)
    monkeypatch.setitem(sys.modules, "cyconv._bench", fake)
    monkeypatch.setattr(cyconv, "_bench", fake, raising=False)
    assert cli.main(["bench", "--quick", "-h", "extra"]) == 7
    assert received == [["--quick", "-h", "extra"]]


def test_bench_says_so_when_the_benchmark_module_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cyconv._bench", None)
    monkeypatch.delattr(cyconv, "_bench", raising=False)
    assert cli.main(["bench"]) == 1
    assert "the benchmark suite cyconv._bench cannot be imported" in capsys.readouterr().err
