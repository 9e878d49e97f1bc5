"""examples/dask_inference.py runs: a short run trains, shows Dask's progress bars, finds the Dask
and in-memory results within the float32 rounding bound, and ends with its throughput line.

Runs the script in a subprocess (as a user would), on the cyconv this test session imports.
Skipped without Dask, which the example needs.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dask.array")

import cyconv  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "dask_inference.py"
FINAL_LINE = re.compile(r"dask / in-memory throughput: batch (\d+\.\d\d)x, scene (\d+\.\d\d)x")


def test_a_short_run_agrees_with_the_in_memory_call():
    env = dict(os.environ)
    package_root = str(Path(cyconv.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    args = ["--images", "96", "--size", "12", "--chunk", "40", "--scene", "70", "--tile", "32", "--repeats", "1"]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip("\n").splitlines()
    assert re.match(r"trained in \d+\.\d\d s: kernel within \S+ of the teacher's", lines[0])
    assert "batch: 3 chunks of (40, 12, 12, 3)" in lines
    assert "scene: 9 chunks of (1, 32, 32, 3)" in lines
    assert result.stdout.count("100% Completed") == 2
    agreeing = [line.split(":")[0] for line in lines if "results agree within the float32 bound" in line]
    assert agreeing == ["batch", "scene"]
    assert FINAL_LINE.fullmatch(lines[-1]), lines[-1]
