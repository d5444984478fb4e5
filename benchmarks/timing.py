"""What the benchmarks share: timing a function the same way in each (imported as a sibling module: the scripts
run as `PYTHONPATH=. python benchmarks/<name>.py`, which puts this folder first on sys.path)."""

from __future__ import annotations

import statistics
import time


def median_time(fn, repeat: int) -> float:
    """The median wall time of ``repeat`` calls of ``fn``, after one warm-up call."""
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
