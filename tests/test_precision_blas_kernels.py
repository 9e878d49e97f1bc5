"""The precision tests on every OpenBLAS kernel this machine can run.

OpenBLAS picks its kernels for the CPU it runs on, and kernels sum in different orders: on an
AVX-512 CPU (SkylakeX kernels) a float32 product's error was 10x what it is on Haswell kernels.
test_precision.py's bound holds for any order; this runs that module's result checks again in a
subprocess per kernel, chosen with OPENBLAS_CORETYPE, after checking through threadpoolctl that
every OpenBLAS loaded (NumPy's, SciPy's) really runs that kernel. A kernel the CPU cannot run, or
that this OpenBLAS maps to another, is skipped with the reason; so is the session's own kernel,
on which test_precision.py has just run.
"""
import os
import subprocess
import sys

import pytest
import threadpoolctl

import cyconv

# x86-64 kernels from the newest instruction set to the oldest: AVX-512, AVX2 + FMA, AVX,
# SSE4.2, SSE.
CORETYPES = ("SkylakeX", "Haswell", "Sandybridge", "Nehalem", "Katmai")
TESTS = os.path.dirname(os.path.abspath(__file__))
# What depends on the kernel: the results. The broken computations and the finite-difference
# check of the references do not, and run once, in the main session.
SELECTED = "within_the_bound or computed_in_float32"

# Loads cyconv and both OpenBLAS builds, runs one product in each precision (a kernel the CPU
# cannot run dies here, before the tests), says which kernels are loaded, then runs the tests --
# without conftest.py and Hypothesis, which test_precision.py does not use (they would double the
# cost of each run).
SCRIPT = """
import sys
import numpy as np
import scipy.linalg
import threadpoolctl
import cyconv

a = np.ones((64, 64))
for dtype in (np.float32, np.float64):
    a.astype(dtype) @ a.astype(dtype)
    scipy.linalg.blas.get_blas_funcs("gemm", dtype=dtype)(1.0, a, a)
loaded = sorted({pool["architecture"] for pool in threadpoolctl.threadpool_info()
                 if pool["internal_api"] == "openblas"})
print("openblas kernels:", " ".join(loaded), flush=True)
if [name.lower() for name in loaded] != [sys.argv[1].lower()]:
    sys.exit(99)
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--noconftest",
                      sys.argv[2], "-k", sys.argv[3]]))
"""


def own_kernels():
    """The kernels this session's OpenBLAS builds run (their choice for this CPU)."""
    return {pool["architecture"].lower() for pool in threadpoolctl.threadpool_info()
            if pool["internal_api"] == "openblas"}


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """{coretype: subprocess} for the kernels this session's tests ask for, all started at once
    so that they overlap; each test waits for its own. One BLAS thread each, as they run side by
    side: OpenBLAS's threaded GEMM gives each thread whole dot products (blocks of rows and
    columns), so the thread count does not change the order in which any element is summed."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__)))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    wanted = {item.callspec.params["coretype"] for item in request.session.items
              if item.originalname == "test_precision_tests_pass_on_the_openblas_kernel"}
    started = {}
    for coretype in CORETYPES:
        if coretype not in wanted or own_kernels() == {coretype.lower()}:
            continue
        # cwd: `python -c` puts the working directory first on sys.path, where a source
        # checkout's cyconv/ (without the compiled module) would shadow the installed package.
        started[coretype] = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, coretype, os.path.join(TESTS, "test_precision.py"),
             SELECTED],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(env, OPENBLAS_CORETYPE=coretype), cwd=tmp_path_factory.mktemp(coretype),
        )
    yield started
    for proc in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("coretype", CORETYPES)
def test_precision_tests_pass_on_the_openblas_kernel(coretype, runs):
    if coretype not in runs:
        pytest.skip(f"{coretype} is this session's own kernel: test_precision.py ran on it")
    stdout, stderr = runs[coretype].communicate(timeout=600)
    returncode = runs[coretype].returncode
    output = stdout[-4000:] + stderr[-4000:]
    loaded = [line for line in stdout.splitlines() if line.startswith("openblas kernels:")]
    if not loaded:
        pytest.skip(f"OpenBLAS cannot run its {coretype} kernels here (exit {returncode}):\n"
                    f"{output[-500:]}")
    kernels = loaded[0].split(":")[1].strip()
    if returncode == 99 and not kernels:
        pytest.skip("NumPy and SciPy do not use OpenBLAS here")
    if returncode == 99:
        pytest.skip(f"this OpenBLAS runs {kernels} when asked for {coretype} on this CPU")
    assert returncode == 0, f"precision tests on OpenBLAS {coretype} kernels:\n{output}"
    assert " passed" in stdout and " failed" not in stdout, output
