"""Run-time settings: OpenMP thread count of the compiled code and the scratch memory of a call.

Both can be set from the environment before import (CYCONV_NUM_THREADS, CYCONV_MAX_WORKSPACE in
bytes) or at run time with the setters below. Results do not depend on either setting.

Why the defaults (measured with benchmarks/, see the README's Performance section):
- One thread per available core. The compiled algorithms run everything in one OpenMP team, each
  thread filling its own block and multiplying it with a single-threaded BLAS product (BLAS's
  own threads are held to one meanwhile), so there is no second pool to compete with.
- A 4 MiB workspace: the scratch memory of one call (blocks of the patch matrix, the rounds of a
  strided backward), at least what one image needs.
"""
import os

from ._geometry import integer


def _available_cores():
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
    """Threads the compiled code uses (default: the available cores, or CYCONV_NUM_THREADS)."""
    if "num_threads" not in _settings:
        _settings["num_threads"] = _from_env("CYCONV_NUM_THREADS", _available_cores(), 1)
    return _settings["num_threads"]


def set_num_threads(num_threads):
    """Use `num_threads` (>= 1) OpenMP threads in the compiled code from now on."""
    _settings["num_threads"] = integer("num_threads", num_threads, 1, 4096)


def get_max_workspace():
    """Bytes of scratch memory one call may hold (default 4 MiB, or CYCONV_MAX_WORKSPACE).

    At least one block per thread and what one image needs are always allowed."""
    if "max_workspace" not in _settings:
        _settings["max_workspace"] = _from_env("CYCONV_MAX_WORKSPACE", DEFAULT_MAX_WORKSPACE, 1)
    return _settings["max_workspace"]


def set_max_workspace(nbytes):
    """Limit the scratch memory of one call to `nbytes` (>= 1) from now on."""
    _settings["max_workspace"] = integer("max_workspace", nbytes, 1, 2**62)
