"""One contender in its own process, doing one thing at a time when the parent asks.

Each contender of a layer gets a worker process (multiprocessing "spawn": a fresh interpreter
that imports only what its contender needs), so no library's thread pools or caches disturb
another's. The parent sends one request at a time and waits for the answer; the other workers are
blocked reading their pipes meanwhile, so only one process works at a time.

Messages (parent -> worker, answer):
  ("check",)             the results of one forward and one forward + backward call, as NumPy
                         arrays (see contenders.Prepared.results; None for the bare GEMM), and
                         the tracemalloc peak of each call when the contender's memory is NumPy's
  ("block", mode, plan)  timing.time_block of "forward" or "forward_backward": a list of seconds
  ("stop",)              exit
Every answer is ("ok", value) or ("error", traceback text). The first message a worker sends is
("ready", environment.libraries()), ("unavailable", reason) when its library cannot be imported,
or ("error", traceback).
"""
import multiprocessing
import threading
import traceback
import tracemalloc

from .contenders import prepare
from .environment import libraries
from .timing import time_block

# A request that takes longer than this means a hung worker (the slowest block takes seconds).
TIMEOUT_SECONDS = 900


class WorkerError(RuntimeError):
    """A worker failed: its traceback, or why it stopped answering."""


def traced_call(fn):
    """(result, peak bytes) of fn() run in a fresh thread under tracemalloc: the peak of what it
    allocated beyond what was live before, outputs included. A fresh thread, because cyconv keeps
    its workspace per thread: a first call in a new thread allocates it, as a user's first call does."""
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as error:  # re-raised below, in the caller's thread
            box["error"] = error

    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if "error" in box:
        raise box["error"]
    return box["result"], max(peak - before, 0)


def _check(prepared):
    if prepared.traced:
        y, forward_peak = traced_call(prepared.forward)
        y_and_grads, backward_peak = traced_call(prepared.forward_backward)
        peaks = {"forward": forward_peak, "forward_backward": backward_peak}
    else:
        y, y_and_grads, peaks = prepared.forward(), prepared.forward_backward(), None
    results = prepared.results(y, y_and_grads) if prepared.results else None
    return {"results": results, "peak_bytes": peaks}


def _block(prepared, mode, plan):
    return time_block(getattr(prepared, mode), plan)


_HANDLERS = {"check": _check, "block": _block}


def serve(conn, contender, spec, cyconv_options):
    """The worker's main loop (runs in the child process)."""
    try:
        prepared = prepare(contender, spec, cyconv_options)
    except ImportError as error:
        conn.send(("unavailable", f"{type(error).__name__}: {error}"))
        return
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", libraries()))
    while True:
        kind, *args = conn.recv()
        if kind == "stop":
            return
        try:
            conn.send(("ok", _HANDLERS[kind](prepared, *args)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, contender, spec, cyconv_options):
        context = multiprocessing.get_context("spawn")
        self.contender = contender
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=serve, args=(child_conn, contender, spec, cyconv_options),
                                        name=f"cyconv-bench {contender.name}", daemon=True)
        self._process.start()
        child_conn.close()

    def _receive(self):
        if not self._conn.poll(TIMEOUT_SECONDS):
            raise WorkerError(f"{self.contender.name}: no answer in {TIMEOUT_SECONDS} s")
        try:
            return self._conn.recv()
        except EOFError:
            raise WorkerError(f"{self.contender.name}: the worker process died "
                              f"(exit code {self._process.exitcode})") from None

    def ready(self):
        """("ready", libraries) or ("unavailable", reason), once the contender is built."""
        kind, value = self._receive()
        if kind == "error":
            raise WorkerError(f"{self.contender.name}: {value}")
        return kind, value

    def request(self, *message):
        self._conn.send(message)
        kind, value = self._receive()
        if kind != "ok":
            raise WorkerError(f"{self.contender.name}: {value}")
        return value

    def close(self):
        try:
            self._conn.send(("stop",))
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
