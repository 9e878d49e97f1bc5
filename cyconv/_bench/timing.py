"""Timing one block of calls, and the statistics reported for a pile of timed calls.

A block is what one contender does while it has the machine to itself: it first runs untimed for
`warmup_seconds` (caches, thread pools, page faults, and it absorbs the previous worker's BLAS
threads, which keep spinning about 0.1 s after their last product), then times a number of calls
chosen so that the timed part lasts about `timed_seconds`, each call with its own perf_counter
pair. The garbage collector is off during the timed calls.
"""
import gc
import math
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BlockPlan:
    """How long a block warms up and how many calls it times (seconds; call counts)."""

    warmup_seconds: float = 0.15
    timed_seconds: float = 0.25
    min_calls: int = 3
    max_calls: int = 50


def time_block(fn, plan):
    """Warm fn up for plan.warmup_seconds (at least one call), then return the times (seconds) of
    min_calls..max_calls further calls, as many as fit in plan.timed_seconds at the warm-up's pace."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= plan.warmup_seconds:
            break
    wanted = math.ceil(plan.timed_seconds / (elapsed / calls))
    count = min(max(wanted, plan.min_calls), plan.max_calls)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        if was_enabled:
            gc.enable()
    return times


def spread(times):
    """{median, q1, q3, min, max} of a list of times (same unit), and the number of calls."""
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "min": float(min(times)),
            "max": float(max(times)), "calls": len(times)}
