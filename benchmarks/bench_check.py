"""`stabcli check` on 10,000,000-element files: wall time and peak RSS, against a bare numpy + torch script.

    python benchmarks/bench_check.py            # float16 pair: check vs the bare script; float32 pair: check alone
    python benchmarks/bench_check.py --keep DIR # keep the generated files in DIR (else a temporary folder)

The files: logits ~ N(0, 8²) (so that every method meets its breakdowns: |x| > 8.32 and > 17.3 occur), targets 0/1,
shape (1000, 10000), saved with numpy.save. Each command runs in its own process; peak RSS is that process's
ru_maxrss (resource.getrusage of the finished child), wall time time.perf_counter around it.

The bare script (written below, run the same way) is what one would write by hand for the same question: it reads
the same .npy files (memory-mapped, 2**20 elements at a time), evaluates every method of `check` (numpy op by op:
naive, clamped, logsumexp, softplus; torch: the same four and F.binary_cross_entropy,
F.binary_cross_entropy_with_logits), their gradients (torch autograd; numpy: each formula's derivative written out in
the dtype), the float64 softplus reference and its derivative, and counts per method how many losses and gradients
are within numpy's allclose tolerance (rtol 4·eps, atol the smallest subnormal), inf or NaN. It does on every one
of the 10,000,000 elements what check does on each distinct (logit, target) pair; check also certifies the
reference where float64 cannot, pins the breakdowns, keeps the worst elements and their indices, and the means.

Goals (issue 11): float16 check within 1.5x of the bare script and under 1 GiB peak RSS; float32 check under 60 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

N_ROWS, N_COLS = 1000, 10_000

BARE = textwrap.dedent('''
    import sys
    import numpy as np
    import torch
    import torch.nn.functional as F

    x_all = np.load(sys.argv[1], mmap_mode="r").reshape(-1)
    y_all = np.load(sys.argv[2], mmap_mode="r").reshape(-1)
    dt = x_all.dtype.type
    eps, tiny = float(np.finfo(x_all.dtype).eps), float(np.finfo(x_all.dtype).smallest_subnormal)
    counts = {}

    def count(name, value, ref):
        v = np.asarray(value, dtype=np.float64)
        with np.errstate(all="ignore"):
            ok = np.abs(v - ref) <= tiny + 4 * eps * np.abs(ref)
        c = counts.setdefault(name, np.zeros(3, dtype=np.int64))
        c += [np.count_nonzero(ok), np.count_nonzero(np.isinf(v)), np.count_nonzero(np.isnan(v))]

    def np_methods(x, y):
        one = dt(1)
        with np.errstate(all="ignore"):
            e = np.exp(-x)
            p = one / (one + e)
            dp = e * p * p  # d/dx of 1/(1+exp(-x)), op by op
            out = {}
            out["naive"] = -(y * np.log(p) + (one - y) * np.log(one - p))
            out["naive_grad"] = -(y * dp / p - (one - y) * dp / (one - p))
            lp, l1p = np.maximum(np.log(p), dt(-100)), np.maximum(np.log1p(-p), dt(-100))
            out["clamped"] = (y - one) * l1p - y * lp
            out["clamped_grad"] = np.where(np.log1p(-p) > -100, (one - y) * dp / (one - p), 0) - \\
                np.where(np.log(p) > -100, y * dp / p, 0)
            m = np.maximum(-x, dt(0))
            e1, e2 = np.exp(-m), np.exp(-x - m)
            out["logsumexp"] = (one - y) * x + m + np.log(e1 + e2)
            out["logsumexp_grad"] = (one - y) - e2 / (e1 + e2)
            sp = lambda t: np.maximum(t, dt(0)) + np.log1p(np.exp(-np.abs(t)))
            out["softplus"] = y * sp(-x) + (one - y) * sp(x)
            out["softplus_grad"] = (one - y) * p - y * (one - p)
        return out

    def torch_methods(xt, yt):
        out = {}
        forms = {
            "naive": lambda x: -(yt * torch.log(torch.sigmoid(x)) + (1 - yt) * torch.log(1 - torch.sigmoid(x))),
            "clamped": lambda x: (yt - 1) * torch.clamp(torch.log1p(-torch.sigmoid(x)), min=-100)
                                 - yt * torch.clamp(torch.log(torch.sigmoid(x)), min=-100),
            "logsumexp": lambda x: (1 - yt) * x + torch.clamp(-x, min=0)
                                   + torch.log(torch.exp(-torch.clamp(-x, min=0)) + torch.exp(-x - torch.clamp(-x, min=0))),
            "softplus": lambda x: yt * F.softplus(-x) + (1 - yt) * F.softplus(x),
            "torch_bce": lambda x: F.binary_cross_entropy(torch.sigmoid(x), yt, reduction="none"),
            "torch_bce_with_logits": lambda x: F.binary_cross_entropy_with_logits(x, yt, reduction="none"),
        }
        for name, f in forms.items():
            xg = xt.clone().requires_grad_(True)
            loss = f(xg)
            loss.sum().backward()
            out[name] = loss.detach()
            out[name + "_grad"] = xg.grad
        return out

    def to64(t):
        return t.float().numpy().astype(np.float64) if t.dtype == torch.bfloat16 else t.numpy().astype(np.float64)

    for start in range(0, x_all.size, 2**20):
        x, y = np.asarray(x_all[start:start + 2**20]), np.asarray(y_all[start:start + 2**20])
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        with np.errstate(all="ignore"):
            ref = y64 * (np.maximum(-x64, 0) + np.log1p(np.exp(-np.abs(x64)))) + \\
                (1 - y64) * (np.maximum(x64, 0) + np.log1p(np.exp(-np.abs(x64))))
            s = 1 / (1 + np.exp(-x64))
            gref = (1 - y64) * s - y64 * (1 - s)
        for name, v in np_methods(x, y).items():
            count("numpy " + name, v, gref if name.endswith("_grad") else ref)
        for name, v in torch_methods(torch.from_numpy(x), torch.from_numpy(y)).items():
            count("torch " + name, to64(v), gref if name.endswith("_grad") else ref)
    print(len(counts), "rows;", sum(int(c[0]) for c in counts.values()), "within tolerance")
''')


def make_files(folder: Path) -> dict[str, tuple[Path, Path]]:
    import numpy as np

    rng = np.random.default_rng(2026)
    out = {}
    for dtype in ("float16", "float32"):
        x, y = folder / f"logits_{dtype}.npy", folder / f"targets_{dtype}.npy"
        if not x.exists():
            np.save(x, (rng.standard_normal((N_ROWS, N_COLS)) * 8).astype(dtype))
            np.save(y, (rng.random((N_ROWS, N_COLS)) < 0.5).astype(dtype))
        out[dtype] = (x, y)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="folder for the generated files (kept)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command (the best is reported)")
    args = parser.parse_args()
    ctx = tempfile.TemporaryDirectory() if args.keep is None else None
    folder = args.keep or Path(ctx.name)
    folder.mkdir(parents=True, exist_ok=True)
    files = make_files(folder)
    bare = folder / "bare_check.py"
    bare.write_text(BARE)
    stabcli = [sys.executable, "-m", "stabcli", "check"]
    # peak RSS per command: ru_maxrss of children is the largest of any child so far, so each command is run by
    # a helper process of its own (measure)
    results = {}
    for name, cmd in (("check float16", [*stabcli, *map(str, files["float16"]), "--format", "json"]),
                      ("bare float16", [sys.executable, str(bare), *map(str, files["float16"])]),
                      ("check float32", [*stabcli, *map(str, files["float32"]), "--format", "json"])):
        runs = [measure(cmd) for _ in range(args.repeat)]
        results[name] = min(runs)
        print(f"{name:15s} {results[name][0]:7.2f} s   peak RSS {results[name][1]:6.0f} MiB", flush=True)
    ratio = results["check float16"][0] / results["bare float16"][0]
    print(f"check / bare (float16, 10,000,000 elements, all methods, both backends): {ratio:.2f}x (goal <= 1.5x)")
    print(f"float32 check: {results['check float32'][0]:.1f} s (goal < 60 s)")
    if ctx is not None:
        ctx.cleanup()


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall time and peak RSS of ``cmd``, measured by a fresh helper process so that ru_maxrss is this command's."""
    helper = textwrap.dedent('''
        import resource, subprocess, sys, time
        t = time.perf_counter()
        proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t
        if proc.returncode:
            sys.exit(proc.stderr)
        print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    ''')
    out = subprocess.run([sys.executable, "-c", helper, *cmd], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    wall, peak = out.stdout.split()
    return float(wall), float(peak)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
