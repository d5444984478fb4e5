"""`sweep`: exhaustive 16-bit counts and exact breakdown logits, the fast reference, output shapes, errors."""

from __future__ import annotations

import json
import math
import struct
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from stabcli.losses.bce import reference
from stabcli.cli import cli
from stabcli.core.formats import FORMATS, round_float64, to_float64
from stabcli.commands.sweep import make_grid, run_sweep

F16, BF16 = FORMATS["float16"], FORMATS["bfloat16"]

# DESIGN.md, "Facts with their sources": first x where sigmoid rounds to 1.0 (op by op / torch) and where exp
# overflows; torch float16 -17.34375 is the first x with sigmoid(x) <= 2^-25 (half float16's smallest subnormal):
# mpmath: -log(2**25 - 1) = -17.3286795..., and float16 spacing in [16, 32) is 1/64, so -17.34375.
EXPECTED_NAIVE = {
    ("float16", "numpy"): (7.625, -11.09375),
    ("float16", "torch"): (8.3203125, -17.34375),
    ("bfloat16", "numpy"): (5.5625, -89.0),
    ("bfloat16", "torch"): (6.25, -89.0),
}
# Every finite value, -0 and +0 both (issue 3: 63,488 float16 and 65,280 bfloat16): 2**16 bit patterns minus the
# 2·2**10 (float16) or 2·2**7 (bfloat16) with an all-ones exponent.
FINITE = {"float16": 2**16 - 2 * 2**10, "bfloat16": 2**16 - 2 * 2**7}
assert FINITE == {"float16": 63488, "bfloat16": 65280}


@pytest.fixture(scope="module")
def exhaustive(exhaustive16):
    return exhaustive16  # conftest.py: shared with tests/test_sweep_grad.py


@pytest.mark.parametrize("key", list(EXPECTED_NAIVE))
@pytest.mark.parametrize("target", [0.0, 1.0])
def test_exhaustive_naive_breakdown(exhaustive, key, target):
    dtype, backend = key
    row = exhaustive[(dtype, backend, target, "naive")]
    assert row.points == FINITE[dtype] == len(FORMATS[dtype].all_finite())
    assert (row.breakdown.nonfinite_pos, row.breakdown.nonfinite_neg) == EXPECTED_NAIVE[key]
    assert sum(row.counts.values()) == row.points


def test_exhaustive_counts_are_consistent(exhaustive):
    for (dtype, backend, target, method), row in exhaustive.items():
        assert sum(row.counts.values()) == FINITE[dtype]
        if method in ("clamped", "torch_bce"):  # the clamp turns every inf/NaN of naive into a finite loss
            naive = exhaustive[(dtype, backend, target, "naive")]
            assert row.counts["inf"] == row.counts["nan"] == 0
            assert row.breakdown.clamped_pos == naive.breakdown.nonfinite_pos
    # naive numpy float16, target 0: inf where p rounds to 1 (x >= 7.625: log(1-p) = -inf) and NaN where exp(-x)
    # overflows (x <= -11.09375: p = 0, 0·log 0). Counted from the format: values in [7.625, 65504] and
    # [-65504, -11.09375] (ordinals).
    from stabcli.core.formats import ordinal

    row = exhaustive[("float16", "numpy", 0.0, "naive")]
    top = int(ordinal(np.float16(65504), F16))
    assert row.counts["inf"] == top - int(ordinal(np.float16(7.625), F16)) + 1
    assert row.counts["nan"] == row.count_overflow == top - int(ordinal(np.float16(11.09375), F16)) + 1


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_softplus_is_finite_and_within_one_ulp(exhaustive, dtype, backend):
    # Bound established over every finite value: at most 1 ulp (error_bits = log2(1 + ulps) <= 1).
    for target in (0.0, 1.0):
        row = exhaustive[(dtype, backend, target, "softplus")]
        assert row.counts["inf"] == row.counts["nan"] == row.count_overflow == 0
        assert row.counts["ok"] == row.points
        assert row.max_error_bits <= 1.0


def _odd(v) -> float:
    """mpmath value -> float64 rounded to odd (lean version of reference.to_float64_odd, same rule).

    The comparisons run at 200 bits: at mpmath's default 53, abs(v) is rounded to a float64 first, and a value
    just below a float64 would be taken as equal to it (and rounded to odd on the wrong side).
    """
    import mpmath

    with mpmath.workprec(200):
        f = float(v)
        if mpmath.mpf(f) == v or not math.isfinite(f):
            return f
        too_big = abs(mpmath.mpf(f)) > abs(v)
    if too_big:
        f = math.nextafter(f, 0.0)
    (bits,) = struct.unpack("<q", struct.pack("<d", f))
    return struct.unpack("<d", struct.pack("<q", bits | 1))[0]


def _check_fast_reference(fmt, xs64, y, w=1.0, pw=1.0, exact=None):
    exact = exact if exact is not None else [reference.exact_loss(float(x), y, w, pw) for x in xs64]
    want = to_float64(round_float64(np.array([_odd(v) for v in exact]), fmt))
    got = to_float64(fmt.round(reference.fast_loss(xs64, y, w, pw)))
    bad = np.flatnonzero(~((got == want) | (np.isnan(got) & np.isnan(want))))
    # The documented exception (reference.py): an exact value within 2^-50 (relative) of a rounding boundary of
    # the dtype. Such a point is allowed; any other mismatch fails, and the exceptions are returned for reporting.
    fast = reference.fast_loss(xs64[bad], y, w, pw)
    near_boundary = fmt.round(fast * (1 - 2.0**-50)) != fmt.round(fast * (1 + 2.0**-50))
    assert near_boundary.all(), f"{fmt.name}: fast reference misrounds at x = {xs64[bad[~near_boundary][:5]].tolist()}"
    return xs64[bad]


@pytest.mark.parametrize("fmt", [F16, BF16], ids=["float16", "bfloat16"])
def test_fast_reference_rounds_like_mpmath_on_every_finite_value(fmt):
    xs = to_float64(fmt.all_finite())
    exact0 = [reference.exact_loss(float(x), 0.0) for x in xs]  # softplus(x)
    assert not _check_fast_reference(fmt, xs, 0.0, exact=exact0).size
    # loss(x, 1) = softplus(-x) = loss(-x, 0) (reference.py's definition) and the set of values is symmetric
    assert not _check_fast_reference(fmt, xs, 1.0, exact=exact0[::-1]).size


def test_fast_reference_on_float32_sample_and_soft_targets():
    rng = np.random.default_rng(20240601)
    f32 = FORMATS["float32"]
    xs = rng.integers(0, 2**32, size=1500, dtype=np.uint64).astype(np.uint32).view(np.float32)
    xs = xs[np.isfinite(xs)].astype(np.float64)
    assert not _check_fast_reference(f32, xs, 0.0).size
    assert not _check_fast_reference(f32, xs[:500], 0.25, 0.5, 2.0).size
    # y = 0.3 (not a float16): (1-y)·x lands within e^-700 of a float16 midpoint for x = 777.5, 827.5, ...
    # (e.g. 0.7·777.5 = 544.25, halfway between 544 and 544.5): the allowed exception. Which logits: float64 gives
    # the midpoint itself and ties to the even neighbour, while the exact loss (y the float64 nearest 0.3, a hair
    # below it, and softplus(-|x|) < e^-40, far below 2^-50 of the loss) lies on the other side of the midpoint.
    xs = np.unique(to_float64(F16.all_finite()))[::50]  # every 50th distinct float16 value, -0 and +0 taken as one

    def ties_the_other_way(x: float) -> bool:
        linear = (1 - Fraction(0.3)) * Fraction(x) if x > 0 else -Fraction(0.3) * Fraction(x)
        m = float(linear)
        even = np.float16(m)  # a midpoint rounds to its even neighbour
        other = np.nextafter(even, np.float16(np.inf if m > float(even) else -np.inf))
        return abs(x) > 40 and (float(even) + float(other)) / 2 == m and (float(even) - m) * (linear - Fraction(m)) < 0

    expected = [x for x in xs if ties_the_other_way(float(x))]
    assert len(expected) == 11 and expected[0] == 777.5  # 777.5, 827.5, ..., 977.5 and 24560, ..., 32560
    assert _check_fast_reference(F16, xs, 0.3).tolist() == expected


def test_float32_and_float64_breakdowns_on_the_default_grid():
    # DESIGN.md facts: 16.63553237915039 / -88.72283935546875 (float32), 36.73680056967711 / -709.7827128933841.
    sweep = run_sweep([FORMATS["float32"], FORMATS["float64"]], ["numpy", "torch"], [0.0], methods=["naive"])
    got = {(r.dtype, r.backend): (r.breakdown.nonfinite_pos, r.breakdown.nonfinite_neg) for r in sweep.rows}
    for backend in ("numpy", "torch"):
        assert got[("float32", backend)] == (16.63553237915039, -88.72283935546875)
        assert got[("float64", backend)] == (36.73680056967711, -709.7827128933841)


def test_breakdown_search_finds_non_monotone_first_failure():
    # logsumexp's out-of-tolerance logits are not one run: a coarse grid misses the first one, the search finds it.
    coarse = run_sweep([F16], ["numpy"], [0.0], make_grid(points=41, spacing="linear", min=-20, max=20),
                       methods=["logsumexp"])
    full = run_sweep([F16], ["numpy"], [0.0], make_grid(exhaustive=True), methods=["logsumexp"])
    assert coarse.rows[0].breakdown.inaccurate_neg == full.rows[0].breakdown.inaccurate_neg


def test_chunking_does_not_change_results():
    grid = make_grid(points=3001, min=-50, max=50, spacing="linear")
    a = run_sweep([F16], ["numpy"], [0.0], grid, methods=["naive"], chunk=2**16)
    b = run_sweep([F16], ["numpy"], [0.0], grid, methods=["naive"], chunk=97)
    assert a.rows[0].counts == b.rows[0].counts and a.rows[0].breakdown == b.rows[0].breakdown


# --- the command line ----------------------------------------------------------------------------------------

SMALL = ["sweep", "--dtype", "float16", "--backend", "numpy", "--points", "101", "--min", "-20", "--max", "20"]


def test_json_shape():
    result = CliRunner().invoke(cli, [*SMALL, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "sweep" and doc["grid"]["points"] == 101
    row = doc["results"][0]
    for key in ("backend", "dtype", "target", "method", "points", "count_ok", "count_inaccurate", "count_clamped",
                "count_inf", "count_nan", "count_overflow", "max_abs_error", "max_error_bits", "breakdown"):
        assert key in row
    assert set(row["breakdown"]) >= {"nonfinite_pos", "nonfinite_neg", "inaccurate_pos", "inaccurate_neg"}
    naive = next(r for r in doc["results"] if r["method"] == "naive" and r["target"] == 0)
    assert naive["breakdown"]["nonfinite_pos"] == 7.625 and naive["max_abs_error"] == "inf"
    assert len(doc["results"]) == 2 * 4  # targets 0 and 1, four numpy methods


def test_csv_shape():
    result = CliRunner().invoke(cli, [*SMALL, "--format", "csv", "--target", "0.5"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("backend,dtype,target,method,points,count_ok")
    assert len(lines) == 1 + 4


def test_table_and_no_progress_in_a_pipe():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "stabcli", *SMALL], capture_output=True, text=True)  # a pipe
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar, no warning
    assert "7.625" in done.stdout and "inf/NaN" in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 80


def test_progress_on_a_terminal_never_touches_stdout(monkeypatch):
    import stabcli.cli.options as cli_module

    plain = CliRunner().invoke(cli, SMALL).stdout
    monkeypatch.setattr(cli_module, "stderr_is_terminal", lambda: True)
    shown = CliRunner().invoke(cli, SMALL)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == plain  # the bar goes to stderr only
    as_json = CliRunner().invoke(cli, [*SMALL, "--format", "json"])
    assert as_json.exit_code == 0 and as_json.stderr == ""  # never with JSON/CSV
    json.loads(as_json.stdout)


@pytest.mark.parametrize("args, message", [
    (["--min", "5", "--max", "1"], "--min 5 must be less than --max 1"),
    (["--points", "1"], "--points '1' is not allowed"),  # every number named as typed (issue 16)
    (["--points", "1e10"], "--points '1e10' is not allowed"),
    (["--points", "2.5"], "--points '2.5' is not allowed"),
    (["--target", "1.5"], "--target '1.5' is outside [0, 1]"),
    (["--target", "nan"], "--target 'nan' is outside [0, 1]"),
    (["--target", "abc"], "--target 'abc' is not a number"),
    (["--exhaustive", "--points", "10"], "--exhaustive evaluates every finite value, so --points"),
    (["--exhaustive", "--dtype", "float64"], "--exhaustive with float64 would be 1.8e19 values"),
    (["--weight", "-1"], "--weight '-1' is not allowed"),
    (["--rtol", "-1"], "--rtol '-1' is not allowed"),
])
def test_errors(args, message):
    result = CliRunner().invoke(cli, ["sweep", "--dtype", "float16", *args] if "--dtype" not in args else ["sweep", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output


BIG = 1.7976931348623157e308  # float64's largest value


@pytest.mark.parametrize("lo, hi, spacing", [
    (-2e304, None, "log"), (None, 2e304, "log"), (-BIG, BIG, "log"), (-BIG, BIG, "linear"), (1e-300, BIG, "log"),
    (-BIG, -1e-300, "log"), (5e-324, 1.0, "log"), (-1.0, -5e-324, "log"),
])
def test_bounds_near_the_ends_of_float64_give_the_whole_grid(lo, hi, spacing):
    # found by tests/test_fuzz_cli.py: |bound| / 1e-4 overflowed past 1.8e304 and made the log grid's split NaN
    # (ValueError: cannot convert float NaN to integer); then b/a overflowing (or underflowing) in a·(b/a)^t, and
    # hi - lo in the linear grid, turned every inner point into inf (or 0), which the sweep dropped in silence.
    args = ["sweep", "--dtype", "float64", "--backend", "numpy", "--points", "11", "--no-grad", "--format", "json",
            "--spacing", spacing, *(["--min", repr(lo)] if lo is not None else []),
            *(["--max", repr(hi)] if hi is not None else [])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["points"] == 11  # float64: 11 distinct finite logits


# --- grid points left out: duplicates after rounding, and points beyond the dtype's range ---------------------

def _brute_force(grid, fmt):
    """(evaluated, duplicates, beyond) by rounding every grid point with numpy/ml_dtypes directly."""
    from stabcli.commands.sweep import grid_float64

    x = grid_float64(grid, 0, grid.points)
    with np.errstate(all="ignore"):
        r = x.astype(fmt.np_dtype).astype(np.float64)  # numpy's and ml_dtypes' casts round to nearest
    finite = np.isfinite(r)
    evaluated = np.unique(np.where(r[finite] == 0, 0.0, r[finite])).size  # -0 and +0 are one logit
    return evaluated, grid.points - evaluated - int((~finite).sum()), int((~finite).sum())


@pytest.mark.parametrize("dtype, lo, hi, n, spacing", [
    ("float16", -1e5, 1e5, 100001, "log"), ("float16", -1e5, 1e5, 1001, "linear"), ("float16", 0, 1e-5, 10, "log"),
    ("float8_e4m3fn", -1000, 1000, 501, "linear"), ("float8_e5m2", -7e4, 1e5, 300, "log"),
    ("bfloat16", -1e39, 1e38, 1000, "linear"),
])
def test_grid_points_left_out_are_counted(dtype, lo, hi, n, spacing):
    from stabcli.commands.sweep import dropped_note, grid_beyond

    fmt = FORMATS[dtype]
    grid = make_grid(lo, hi, n, spacing)
    evaluated, duplicates, beyond = _brute_force(grid, fmt)
    assert grid_beyond(grid, fmt) == beyond
    sweep = run_sweep([fmt], ["numpy"], [0.0], grid, methods=["softplus"], grad=False)
    assert sweep.rows[0].points == evaluated
    note = dropped_note(grid, fmt, evaluated)
    assert (note is None) == (evaluated == n)
    if note is not None:
        assert note in sweep.notes
        assert f"{evaluated:,} of the {n:,} grid points" in note
        assert (f"{duplicates:,} round to a {dtype} value already swept" in note) == (duplicates > 0)
        assert (f"{beyond:,} lie beyond {dtype}'s largest value" in note) == (beyond > 0)


def test_a_sweep_in_which_every_point_is_left_out_is_an_error():
    # 70000..80000 is beyond float16's largest value, 65504 (np.finfo(np.float16).max): every point rounds to inf.
    # It reported "0 logits" and rows of zeros, with no word on why
    result = CliRunner().invoke(cli, ["sweep", "--dtype", "float16", "--min", "70000", "--max", "80000", "--spacing",
                                      "linear", "--points", "10"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: none of the 10 grid points from 70000 to 80000")
    assert "the largest float16 is 65504" in lines[0]
    # in float32 the same grid is fine, and the float16 rows then say why they are empty
    result = CliRunner().invoke(cli, ["sweep", "--dtype", "float16", "--dtype", "float32", "--min", "70000", "--max",
                                      "80000", "--spacing", "linear", "--points", "10", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert "float16: 0 of the 10 grid points are evaluated; 10 lie beyond float16's largest value 65504 and would " \
           "round to inf (left out)" in doc["notes"]


def test_a_log_grid_below_float16_resolution_says_how_many_points_it_kept():
    # 10 log-spaced points from 0 to 1e-5 round to 2 distinct float16 values (float16's subnormal spacing is
    # 2^-24 = 5.96e-8): the sweep header said 10 and evaluated 2 without a word
    result = CliRunner().invoke(cli, ["sweep", "--dtype", "float16", "--min", "0", "--max", "1e-5", "--spacing", "log",
                                      "--points", "10", "--backend", "numpy", "--format", "json"])
    doc = json.loads(result.output)
    points = doc["results"][0]["points"]
    assert points == _brute_force(make_grid(0, 1e-5, 10, "log"), F16)[0] == 2
    assert "float16: 2 of the 10 grid points are evaluated; 8 round to a float16 value already swept (left out)" \
        in doc["notes"]


@pytest.mark.parametrize("sign", [1, -1])
def test_breakdown_search_finds_the_first_failure_after_any_sample(sign):
    # find_closest_failure against the truth by construction: with fails = (ordinal past T) the answer is T. A bracket
    # wider than SCAN_LIMIT is sampled; the hardest T sit right after a sample, where the search must resume one
    # ordinal after the last passing sample (and right at a sample, and at the ends).
    from stabcli.commands.sweep import SAMPLES, SCAN_LIMIT, find_closest_failure

    far = sign * 10**6
    offsets = np.unique(np.round(np.linspace(0, 10**6, SAMPLES[64])).astype(np.int64))
    assert 10**6 + 1 > SCAN_LIMIT[64]  # the sampled path, not a whole scan
    for t in sorted({0, 1, 10**6, *offsets[1:] + 1, *offsets[1:], *(offsets[1:] - 1)} - {10**6 + 1}):
        got = find_closest_failure(lambda o: sign * o >= t, 0, far, 64)
        assert got == sign * t, t
