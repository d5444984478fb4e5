"""Benchmark (not a test): the sweep engine against a bare numpy script of the same formulas.

    PYTHONPATH=. python benchmarks/bench_sweep.py [--points 10000000]

Engine: every method, both targets, numpy backend only (torch adds its own kernel time), with counts, error
bits and the breakdown search. Bare: the four numpy formulas op by op in the dtype plus the float64 softplus
reference, counting non-finite results, nothing else.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from stabcli.formats import FORMATS
from stabcli.sweep import make_grid, run_sweep


def bare(xs: np.ndarray, dt) -> int:
    bad = 0
    with np.errstate(all="ignore"):
        for y in (dt(0), dt(1)):
            p = dt(1) / (dt(1) + np.exp(-xs))
            naive = -(y * np.log(p) + (dt(1) - y) * np.log(dt(1) - p))
            clamped = -(y * np.maximum(np.log(p), dt(-100)) + (dt(1) - y) * np.maximum(np.log1p(-p), dt(-100)))
            m = np.maximum(-xs, dt(0))
            lse = (dt(1) - y) * xs + m + np.log(np.exp(-m) + np.exp(-xs - m))
            sp = lambda t: np.maximum(t, dt(0)) + np.log1p(np.exp(-np.abs(t)))  # noqa: E731
            soft = y * sp(-xs) + (dt(1) - y) * sp(xs)
            x64 = xs.astype(np.float64)
            ref = float(y) * (np.maximum(-x64, 0) + np.log1p(np.exp(-np.abs(x64)))) + (1 - float(y)) * (
                np.maximum(x64, 0) + np.log1p(np.exp(-np.abs(x64))))
            bad += sum(int(np.count_nonzero(~np.isfinite(v))) for v in (naive, clamped, lse, soft, ref))
    return bad


def timed(label, fn):
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    print(f"{label:48s} {dt:8.2f} s")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000_000)
    n = ap.parse_args().points
    f16, f32 = FORMATS["float16"], FORMATS["float32"]
    timed("engine: float16 exhaustive (63,487 x 2 targets)",
          lambda: run_sweep([f16], ["numpy"], [0.0, 1.0], make_grid(exhaustive=True)))
    xs16 = f16.all_finite()
    timed("bare numpy: float16 exhaustive", lambda: bare(xs16, np.float16))
    grid = make_grid(min=-1000, max=1000, points=n, spacing="linear")
    timed(f"engine: float32 grid of {n:,} points x 2 targets",
          lambda: run_sweep([f32], ["numpy"], [0.0, 1.0], grid))

    def bare32():
        for start in range(0, n, 2**20):  # chunked too, so memory is comparable
            i = np.arange(start, min(start + 2**20, n), dtype=np.float64)
            bare((-1000 + 2000 * i / (n - 1)).astype(np.float32), np.float32)
    timed(f"bare numpy: float32 {n:,} points", bare32)


if __name__ == "__main__":
    main()
