"""Benchmark (not a test): start-up of the two commands people type first, as ratios measured in one run.

    python benchmarks/bench_startup.py [--runs 7]

Goals (issue 7): `stabcli --help` <= 1.3 x `python -c "import click, rich.table"`;
`stabcli compare 1e10 1` <= 1.15 x `python -c "import torch"`. Issue 14: `stabcli float 1e10 --dtype float16`
<= 1.3 x importing what it needs (click, rich, numpy, mpmath, ml_dtypes): it must not load torch. Each command runs --runs times after one warm-up
run (so the OS file cache is warm for all of them alike); the medians are compared.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, capture_output=True, check=True)  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    runs = ap.parse_args().runs
    stabcli = shutil.which("stabcli")
    base = [stabcli] if stabcli else [sys.executable, "-m", "stabcli"]
    py = sys.executable
    rows = [
        ("stabcli --help", base + ["--help"], "import click, rich.table", [py, "-c", "import click, rich.table"], 1.3),
        ("stabcli compare 1e10 1", base + ["compare", "1e10", "1"], "import torch", [py, "-c", "import torch"], 1.15),
        ("stabcli float 1e10 (f16)", base + ["float", "1e10", "--dtype", "float16"],
         "import click, rich.table, numpy, mpmath, ml_dtypes",
         [py, "-c", "import click, rich.table, numpy, mpmath, ml_dtypes"], 1.3),
    ]
    failed = 0
    for label, cmd, base_label, base_cmd, goal in rows:
        ours, theirs = median_seconds(cmd, runs), median_seconds(base_cmd, runs)
        ratio = ours / theirs
        ok = ratio <= goal
        failed += not ok
        print(f"{label:28s} {ours:6.3f} s | python -c \"{base_label}\" {theirs:6.3f} s | "
              f"ratio {ratio:4.2f} (goal <= {goal}) {'met' if ok else 'NOT MET'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
