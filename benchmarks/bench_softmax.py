"""Benchmark (not a test): the exhaustive float16 softmax sweep of the gap against a bare numpy script.

    PYTHONPATH=. python benchmarks/bench_softmax.py [--repeat 7]

Goal (issue 13): an exhaustive float16 softmax cross-entropy sweep of the gap g (rows [g, 0, 0], 3 classes) within
2x a bare numpy script of the same formulas. Both sides, in this process (imports excluded), median of --repeat
runs: the three numpy methods (naive, log_of_softmax, logsumexp) op by op in float16 on every finite float16 gap,
targets class 0 and class 1, the float64 reference (the same log1p form as the engine's), and per (target,
method) the non-finite count, the count outside |loss - ref| <= atol + rtol·|ref| and the largest |loss - ref|.
The engine runs with --no-grad (gradients are an extra the bare script does not do; printed for information).
The bare script's numbers are checked against the engine's.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from timing import median_time


def bare(xs: np.ndarray, dt, targets=(0, 1)) -> dict:
    """The three formulas op by op in ``dt`` on rows [g, 0, 0], the float64 reference, counts per (target, method)."""
    fi = np.finfo(dt)
    rtol, atol = 4 * float(fi.eps), float(fi.smallest_subnormal)  # stabcli's defaults
    x = np.zeros((xs.size, 3), dtype=dt)
    x[:, 0] = xs
    x64 = x.astype(np.float64)
    out = {}
    with np.errstate(all="ignore"):
        # reference: -log p_t = (m - x_t) + log1p(Σ_{c≠argmax} exp(x_c - m))
        m = x64.max(axis=1, keepdims=True)
        e = np.exp(x64 - m)
        top = x64.argmax(axis=1)
        e[np.arange(xs.size), top] = 0.0
        lp1 = np.log1p(e.sum(axis=1))
        # the three methods' log p, each operation rounded to dt (the sum one class at a time)
        def row_sum(a):
            return (a[:, 0:1] + a[:, 1:2]) + a[:, 2:3]

        ex = np.exp(x)
        naive = np.log(ex / row_sum(ex))
        mx = x.max(axis=1, keepdims=True)
        es = np.exp(x - mx)
        los = np.log(es / row_sum(es))
        z = x - mx
        lse = z - np.log(row_sum(np.exp(z)))
        for t in targets:
            ref = (m[:, 0] - x64[:, t]) + lp1
            bound = atol + rtol * np.abs(ref)
            for name, logp in (("naive", naive), ("log_of_softmax", los), ("logsumexp", lse)):
                loss = -logp[:, t]
                l64 = loss.astype(np.float64)
                err = np.where(np.isfinite(l64), np.abs(l64 - ref), np.inf)
                out[(t, name)] = (int(np.count_nonzero(~np.isfinite(l64))), int(np.count_nonzero(~(err <= bound))),
                                  float(err.max()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    from stabcli.commands.sweep import make_grid, run_sweep
    from stabcli.core.formats import FORMATS

    f16 = FORMATS["float16"]
    xs = f16.all_finite()

    def engine(grad: bool):
        return run_sweep([f16], ["numpy"], [0, 1], make_grid(exhaustive=True), grad=grad, loss="softmax")

    t_bare = median_time(lambda: bare(xs, np.float16), args.repeat)
    t_engine = median_time(lambda: engine(False), args.repeat)
    t_grad = median_time(lambda: engine(True), max(1, args.repeat // 2))
    b, rows = bare(xs, np.float16), engine(False).rows
    agree = all(b[(r.target, r.method)][0] == r.counts["inf"] + r.counts["nan"]
                and b[(r.target, r.method)][2] == r.max_abs_error for r in rows)
    ratio = t_engine / t_bare
    print(f"float16 exhaustive softmax sweep ({len(xs):,} gaps x 2 targets, 3 numpy methods, rows [g, 0, 0]), "
          f"median of {args.repeat}:")
    print(f"   bare numpy script (formulas, reference, judgement)   {t_bare:7.3f} s")
    print(f"   engine --no-grad                                     {t_engine:7.3f} s   ratio {ratio:4.2f} "
          f"(goal <= 2) {'met' if ratio <= 2 else 'NOT MET'}")
    print(f"   engine with gradients (for information)              {t_grad:7.3f} s   ratio {t_grad / t_bare:4.2f}")
    print(f"   bare and engine agree on non-finite counts and largest errors: {'yes' if agree else 'NO'}")
    return 0 if ratio <= 2 and agree else 1


if __name__ == "__main__":
    sys.exit(main())
