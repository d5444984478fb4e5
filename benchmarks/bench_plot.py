"""How long the figures take: `stabcli plot` (every default figure), one slide, and the demo's handouts.

Each command runs in a fresh process (imports included, as a user waits for it), a few times; the best and the
median wall time are printed. Run it from the project's root with the project's virtual environment active:

    python benchmarks/bench_plot.py              # all four
    python benchmarks/bench_plot.py --repeat 1   # once each
    python benchmarks/bench_plot.py --only plot  # just `stabcli plot`

With ``--src DIR`` the commands run the stabcli in DIR (another checkout, e.g. ``git archive main | tar -x -C
DIR``) through PYTHONPATH, to compare two versions on the same machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {
    "plot": ["plot", "--out", "{tmp}/figures"],
    "slide": ["plot", "--slide", "loss", "--dtype", "float32", "--backend", "torch", "--target", "0",
              "--out", "{tmp}/slides"],
    "export-md": ["demo", "--export", "{tmp}/handout.md"],
    "export-html": ["demo", "--export", "{tmp}/handout.html"],
}


def run(args: list[str], src: str | None) -> float:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "stabcli", *(a.replace("{tmp}", tmp) for a in args)]
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    parser.add_argument("--src", default=None, help="run the stabcli found in this folder (PYTHONPATH)")
    opts = parser.parse_args()
    for name in opts.only or CASES:
        if opts.src and name != "plot":
            continue  # older versions have no --slide or --export
        times = [run(CASES[name], opts.src) for _ in range(opts.repeat)]
        print(f"{name:12s} best {min(times):6.2f} s   median {statistics.median(times):6.2f} s   "
              f"({opts.repeat} runs)")


if __name__ == "__main__":
    main()
