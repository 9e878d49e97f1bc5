"""A busy process: another program competing for the CPU while a contended block runs.

Users rarely have the machine to themselves. In contention mode every timed block is run twice,
once alone and once beside this process, which spins a pure-Python loop (one core's worth of work,
no memory traffic to speak of) from before the block's warm-up to after its last call. It sleeps
(blocked on an Event, using no CPU) between contended blocks.
"""
import contextlib
import multiprocessing
import time


def _spin(run, spinning, quit_):
    """The busy process: spin while `run` is set, tell the parent through `spinning`."""
    while True:
        run.wait()
        if quit_.is_set():
            return
        spinning.set()
        total = 0
        while run.is_set():
            for i in range(20_000):  # about a millisecond between looks at `run`
                total += i
        spinning.clear()


class BusyProcess:
    """Start with `with BusyProcess() as busy:`; then `with busy.competing():` around a block."""

    def __enter__(self):
        context = multiprocessing.get_context("spawn")
        self._run, self._spinning, self._quit = context.Event(), context.Event(), context.Event()
        self._process = context.Process(target=_spin, args=(self._run, self._spinning, self._quit),
                                        name="cyconv-bench busy", daemon=True)
        self._process.start()
        return self

    @contextlib.contextmanager
    def competing(self):
        """The busy process spins for the duration of the with-block (it is spinning on entry,
        and has stopped on exit)."""
        self._run.set()
        if not self._spinning.wait(timeout=60):
            raise RuntimeError("the busy process did not start spinning")
        try:
            yield
        finally:
            self._run.clear()
            while self._spinning.is_set() and self._process.is_alive():
                time.sleep(0.001)

    def __exit__(self, *exc_info):
        self._quit.set()
        self._run.set()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
