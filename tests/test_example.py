"""The digits example trains: a short run of examples/train_digits.py beats chance by far.

Runs the script in a subprocess (as a user would), on the cyconv this test session imports.
Skipped without scikit-learn, which the example uses to load the data.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

import cyconv  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"
FINAL_LINE = re.compile(r"test accuracy (\d+\.\d) % \((\d+) images\), (\d+\.\d) s")


def run_example(*args):
    """Run the example with args; returns (accuracy in %, number of test images)."""
    env = dict(os.environ)
    package_root = str(Path(cyconv.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    last_line = result.stdout.rstrip("\n").splitlines()[-1]
    match = FINAL_LINE.fullmatch(last_line)
    assert match, f"unexpected final line {last_line!r}"
    return float(match.group(1)), int(match.group(2))


def test_short_run_learns_and_is_reproducible():
    first = run_example("--epochs", "2", "--seed", "5")
    accuracy, n_test = first
    assert n_test == 360
    assert accuracy > 80.0  # chance is 10 %
    assert run_example("--epochs", "2", "--seed", "5", "--quiet") == first
