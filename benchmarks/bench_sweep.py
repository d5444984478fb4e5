"""Benchmark (not a test): the sweep engine against a bare numpy script, float32's every value, memory per --points.

    PYTHONPATH=. python benchmarks/bench_sweep.py [--repeat 7] [--float32-all]

Goals (issue 7), each measured in one run on this machine:

1. Exhaustive float16 sweep (the four numpy methods, targets 0 and 1, --no-grad) <= 2 x :func:`bare`, a plain numpy
   script of the same four formulas op by op in float16, the float64 softplus reference, and a comparable
   judgement (per method: non-finite count, count outside |loss - ref| <= atol + rtol·|ref|, largest |loss - ref|).
   Both run in this process (imports excluded), median of --repeat runs; the bare script's numbers are checked
   against the engine's. With gradients the engine does much more than the bare script (every derivative op by op
   and its own reference); that ratio is printed for information.
2. Every finite float32 logit (4.28e9), one target, the four numpy methods, --no-grad: <= 10 minutes on 2 cores
   with peak RSS under 1 GiB. --float32-all runs it through the command line (`stabcli sweep --dtype float32
   --exhaustive --target 0 --backend numpy --no-grad --format json`, ~7 minutes); without it, 8 slices of 1.25e7
   ordinals spread over the format are timed in one run_sweep call each (in a child process, both cores) and the
   time is extrapolated to 4.28e9, which the output says.
3. Peak memory flat in --points: `stabcli sweep --dtype float32 --backend numpy --points N` for N = 1e5, 1e6, 1e7.

Memory: ru_maxrss of the child as os.wait4 reports it (the largest of the child and its reaped worker processes),
and the largest sum of the RSS of the child and its descendants, sampled from /proc every 20 ms (an upper bound on
the memory they use together: pages shared by a fork are counted in each).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from timing import median_time

ROOT = Path(__file__).resolve().parent.parent
FLOAT32_FINITE = 2 * 2139095039 + 2  # every finite float32, -0 and +0 both


# --- 1. float16: the engine against a bare script -----------------------------------------------------------------

def bare(xs: np.ndarray, dt, targets=(0.0, 1.0)) -> dict:
    """The four numpy formulas (DESIGN.md) op by op in ``dt``, the float64 softplus reference, and per
    (target, method): (non-finite count, count outside the tolerance, largest |loss - ref|)."""
    fi = np.finfo(dt)
    rtol, atol = 4 * float(fi.eps), float(fi.smallest_subnormal)  # stabcli's defaults (Tolerance.for_format)
    one, zero, w, pw = dt(1), dt(0), dt(1), dt(1)
    x64 = xs.astype(np.float64)
    out = {}
    with np.errstate(all="ignore"):
        for target in targets:
            y = dt(target)
            sp64 = lambda t: np.maximum(t, 0.0) + np.log1p(np.exp(-np.abs(t)))  # noqa: E731
            ref = float(w) * (float(pw) * float(y) * sp64(-x64) + (1 - float(y)) * sp64(x64))
            bound = atol + rtol * np.abs(ref)
            p = one / (one + np.exp(-xs))
            naive = -(w * (pw * y * np.log(p) + (one - y) * np.log(one - p)))
            clamped = ((y - one) * np.maximum(np.log1p(-p), dt(-100)) - pw * y * np.maximum(np.log(p), dt(-100))) * w
            lw = one + (pw - one) * y
            m = np.maximum(-xs, zero)
            lse = w * ((one - y) * xs + lw * (m + np.log(np.exp(-m) + np.exp(-xs - m))))
            sp = lambda t: np.maximum(t, zero) + np.log1p(np.exp(-np.abs(t)))  # noqa: E731
            soft = w * (pw * y * sp(-xs) + (one - y) * sp(xs))
            for name, loss in (("naive", naive), ("clamped", clamped), ("logsumexp", lse), ("softplus", soft)):
                l64 = loss.astype(np.float64)
                err = np.where(np.isfinite(l64), np.abs(l64 - ref), np.inf)
                out[(target, name)] = (int(np.count_nonzero(~np.isfinite(l64))),
                                       int(np.count_nonzero(~(err <= bound))), float(err.max()))
    return out


def float16_ratio(repeat: int) -> bool:
    from stabcli.core.formats import FORMATS
    from stabcli.commands.sweep import make_grid, run_sweep

    f16 = FORMATS["float16"]
    xs = f16.all_finite()

    def engine(grad: bool):
        return run_sweep([f16], ["numpy"], [0.0, 1.0], make_grid(exhaustive=True), grad=grad)

    t_bare = median_time(lambda: bare(xs, np.float16), repeat)
    t_engine = median_time(lambda: engine(False), repeat)
    t_grad = median_time(lambda: engine(True), repeat)
    # the same numbers: non-finite = inf + nan, and the largest error, per (target, method)
    b, rows = bare(xs, np.float16), engine(False).rows
    agree = all(b[(r.target, r.method)][0] == r.counts["inf"] + r.counts["nan"]
                and b[(r.target, r.method)][2] == r.max_abs_error for r in rows)
    ratio = t_engine / t_bare
    print(f"1. float16 exhaustive ({len(xs):,} logits x 2 targets, 4 numpy methods), median of {repeat}:")
    print(f"   bare numpy script (formulas, reference, judgement)   {t_bare:7.3f} s")
    print(f"   engine --no-grad                                     {t_engine:7.3f} s   ratio {ratio:4.2f} "
          f"(goal <= 2) {'met' if ratio <= 2 else 'NOT MET'}")
    print(f"   engine with gradients (for information)              {t_grad:7.3f} s   ratio {t_grad / t_bare:4.2f}")
    print(f"   bare and engine agree on non-finite counts and largest errors: {'yes' if agree else 'NO'}")
    return ratio <= 2 and agree


# --- running a child and watching its memory ----------------------------------------------------------------------

def _tree_rss(pid: int) -> int:
    """RSS in bytes of ``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))  # fields[1]: the parent's pid
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # fields[21]: rss in pages
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def run_child(cmd: list[str]) -> tuple[float, int, int, str]:
    """Run ``cmd``: (wall seconds, ru_maxrss in bytes, largest sampled RSS of its process tree, stdout)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.wait(0.02):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    watcher.join()
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()}")
    return wall, usage.ru_maxrss * 1024, peak[0], b"".join(out_chunks).decode()


def _mib(n: int) -> str:
    return f"{n / 2**20:6.0f} MiB"


# --- 2. every finite float32 --------------------------------------------------------------------------------------

SLICES = """
import json, sys, time
from stabcli.core.formats import FORMATS
from stabcli.commands.sweep import Grid, max_ordinal, run_sweep
f32, n, k = FORMATS["float32"], int(sys.argv[1]), int(sys.argv[2])
m = max_ordinal(f32)
points = 0
t = time.perf_counter()
for i in range(k):  # k slices of n ordinals, spread evenly from -max to +max
    lo = -m + (2 * m + 1 - n) * i // (k - 1)
    sweep = run_sweep([f32], ["numpy"], [0.0], Grid(exhaustive=True, ordinals=(lo, lo + n - 1)), grad=False)
    points += sweep.rows[0].points
print(json.dumps({"seconds": time.perf_counter() - t, "points": points}))
"""


def float32_all(full: bool) -> bool:
    if full:
        cmd = [sys.executable, "-m", "stabcli", "sweep", "--dtype", "float32", "--exhaustive", "--target", "0",
               "--backend", "numpy", "--no-grad", "--format", "json"]
        wall, maxrss, tree, out = run_child(cmd)
        rows = json.loads(out)["results"]
        label = "measured, the command line"
        print(f"2. every finite float32 logit, target 0, 4 numpy methods, --no-grad ({label}):")
        print(f"   {' '.join(cmd[1:])}")
        for r in rows:
            print(f"     {r['method']:10s} points {r['points']:,}  inf {r['count_inf']:,}  nan {r['count_nan']:,}  "
                  f"clamped {r['count_clamped']:,}  inaccurate {r['count_inaccurate']:,}")
        seconds = wall
    else:
        n, k = 12_500_000, 8
        wall, maxrss, tree, out = run_child([sys.executable, "-c", SLICES, str(n), str(k)])
        doc = json.loads(out)
        seconds = doc["seconds"] * FLOAT32_FINITE / doc["points"]
        print(f"2. every finite float32 logit, target 0, 4 numpy methods, --no-grad: EXTRAPOLATED from {k} slices "
              f"of {n:,} ordinals ({doc['points']:,} logits in {doc['seconds']:.1f} s, both cores) to "
              f"{FLOAT32_FINITE:,} (run with --float32-all to measure it):")
    ok = seconds <= 600 and maxrss < 2**30 and tree < 2**30
    print(f"   wall {seconds:7.1f} s = {seconds / 60:5.2f} min (goal <= 10 min) | peak RSS per process "
          f"{_mib(maxrss)}, of the process tree {_mib(tree)} (goal < 1 GiB) {'met' if ok else 'NOT MET'}")
    return ok


# --- 3. memory flat in --points -----------------------------------------------------------------------------------

def memory_by_points() -> bool:
    print("3. peak memory of `stabcli sweep --dtype float32 --backend numpy --points N --format json` "
          "(gradients on, the default):")
    peaks = []
    for n in ("1e5", "1e6", "1e7"):
        cmd = [sys.executable, "-m", "stabcli", "sweep", "--dtype", "float32", "--backend", "numpy", "--points", n,
               "--format", "json"]
        wall, maxrss, tree, _ = run_child(cmd)
        peaks.append(maxrss)
        print(f"   --points {n}: {wall:6.1f} s | peak RSS per process {_mib(maxrss)}, of the process tree "
              f"{_mib(tree)}")
    flat = max(peaks) <= 1.25 * min(peaks)
    print(f"   largest / smallest per-process peak: {max(peaks) / min(peaks):.2f} (flat: within 1.25) "
          f"{'met' if flat else 'NOT MET'}")
    return flat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs per float16 timing (median)")
    ap.add_argument("--float32-all", action="store_true",
                    help="run the whole float32 sweep through the command line (~7 minutes) instead of extrapolating")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    results = [float16_ratio(args.repeat), float32_all(args.float32_all), memory_by_points()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
