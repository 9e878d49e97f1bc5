"""Run-time settings: OpenMP thread count of the kernels and the im2col workspace per chunk.

Both can be set from the environment before import (CYCONV_NUM_THREADS, CYCONV_MAX_WORKSPACE in
bytes) or at run time with the setters below. Results do not depend on either setting.

Why the defaults (measured with benchmarks/, see the README's Performance section):
- One kernel thread. The matrix products, 75-90 % of the time, already run on every core in
  NumPy's BLAS. A second OpenMP team competes with BLAS's threads: libgomp's workers spin after
  each region and stalled the next product (2 threads were 3-10x slower on 2 cores), and even
  with OMP_WAIT_POLICY=PASSIVE they gained only a few per cent. With a single-threaded BLAS, set
  CYCONV_NUM_THREADS to the core count.
- A 4 MiB workspace. The batch is processed in chunks of images whose cols fit, so cols is still
  in cache when the product reads it: the forward of a 64->64 3x3 layer on 32 32x32 images went
  from 1.8x the bare product's time (one 75 MB cols) to 0.95x.
"""
import os

from ._geometry import integer

DEFAULT_NUM_THREADS = 1
DEFAULT_MAX_WORKSPACE = 4 * 2**20

_settings = {}


def _from_env(variable, default, minimum):
    raw = os.environ.get(variable)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {variable} must be an integer, got {raw!r}") from None
    return integer(variable, value, minimum, 2**62)


def get_num_threads():
    """Threads the kernels use (default 1, or CYCONV_NUM_THREADS)."""
    if "num_threads" not in _settings:
        _settings["num_threads"] = _from_env("CYCONV_NUM_THREADS", DEFAULT_NUM_THREADS, 1)
    return _settings["num_threads"]


def set_num_threads(num_threads):
    """Use `num_threads` (>= 1) OpenMP threads in the kernels from now on."""
    _settings["num_threads"] = integer("num_threads", num_threads, 1, 4096)


def get_max_workspace():
    """Bytes the im2col workspace of one chunk may take (default 4 MiB, or CYCONV_MAX_WORKSPACE).

    The batch is processed in chunks of images that fit; a single image always fits one chunk."""
    if "max_workspace" not in _settings:
        _settings["max_workspace"] = _from_env("CYCONV_MAX_WORKSPACE", DEFAULT_MAX_WORKSPACE, 1)
    return _settings["max_workspace"]


def set_max_workspace(nbytes):
    """Limit the im2col workspace of one chunk to `nbytes` (>= 1) from now on."""
    _settings["max_workspace"] = integer("max_workspace", nbytes, 1, 2**62)
