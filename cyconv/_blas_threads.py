"""Hold the BLAS libraries to one thread while cyconv's OpenMP team calls them.

The compiled algorithms run one single-threaded product per OpenMP thread (cyconv/_blas.pxd); if
BLAS kept its own worker threads too, the two pools would fight over the cores. Around each call
on more than one thread the engine enters `one_blas_thread(threads)`, which sets every BLAS
library threadpoolctl finds to one thread (scikit-learn does the same around its cython_blas
loops) and restores the user's setting when the last concurrent cyconv call leaves. Costs about
15 microseconds per call (threadpoolctl reads and sets each library's count).
"""
import contextlib
import functools
import threading

import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS the compiled modules call)
from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_active_calls = 0
_saved_threads = []


@functools.lru_cache(maxsize=None)
def _blas_libraries():
    """threadpoolctl's controllers of every BLAS library loaded in this process."""
    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


@contextlib.contextmanager
def one_blas_thread(team_threads):
    """Within the block every BLAS library runs on the calling thread only, when an OpenMP team of
    `team_threads` > 1 threads will call it (a call on one thread leaves BLAS as it is). Safe for
    concurrent use from several Python threads: the first to enter saves the settings, the last
    restores them."""
    global _active_calls
    if team_threads == 1:
        yield
        return
    with _lock:
        if _active_calls == 0:
            _saved_threads[:] = [(lib, lib.num_threads) for lib in _blas_libraries()]
            for lib, threads in _saved_threads:
                if threads != 1:
                    lib.set_num_threads(1)
        _active_calls += 1
    try:
        yield
    finally:
        with _lock:
            _active_calls -= 1
            if _active_calls == 0:
                for lib, threads in _saved_threads:
                    if threads != 1:
                        lib.set_num_threads(threads)
