"""Run-time settings: OpenMP thread count and the im2col workspace limit.

Both can be set from the environment before import (CYCONV_NUM_THREADS, CYCONV_MAX_WORKSPACE in
bytes) or at run time with the setters below. Results do not depend on either setting.
"""
import os

from .geometry import integer

DEFAULT_MAX_WORKSPACE = 256 * 2**20

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
    """Threads the kernels use (default: all cores, or CYCONV_NUM_THREADS)."""
    if "num_threads" not in _settings:
        _settings["num_threads"] = _from_env("CYCONV_NUM_THREADS", os.cpu_count() or 1, 1)
    return _settings["num_threads"]


def set_num_threads(num_threads):
    """Use `num_threads` (>= 1) OpenMP threads in the kernels from now on."""
    _settings["num_threads"] = integer("num_threads", num_threads, 1, 4096)


def get_max_workspace():
    """Bytes the im2col workspace of one call may take (default 256 MiB, or CYCONV_MAX_WORKSPACE).

    The batch is processed in chunks of images that fit; a single image always fits one chunk."""
    if "max_workspace" not in _settings:
        _settings["max_workspace"] = _from_env("CYCONV_MAX_WORKSPACE", DEFAULT_MAX_WORKSPACE, 1)
    return _settings["max_workspace"]


def set_max_workspace(nbytes):
    """Limit the im2col workspace of one call to `nbytes` (>= 1) from now on."""
    _settings["max_workspace"] = integer("max_workspace", nbytes, 1, 2**62)
