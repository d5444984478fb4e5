"""Gradients in sweeps and thresholds: the fast reference gradient, counts, exact gradient breakdowns, output.

Where the numbers come from:
* mpmath: the exact gradient w·((1-y)·sigmoid(x) - pw·y·sigmoid(-x)) (``reference.exact_grad``); for a hard target
  it is sigmoid(x) (y = 0) or -sigmoid(-x) (y = 1), computed here for every finite 16-bit value with

      with mpmath.workprec(200):
          s = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))     # then rounded to odd in float64, then into the dtype

* DESIGN.md, "Facts with their sources": where sigmoid first rounds to 1.0 (16.63553237915039 in float32, op by
  op and torch alike; 8.3203125 in torch float16), and BCELoss's backward (p-y)/max(p(1-p), 1e-12).
* Format constants (eps, smallest subnormal) from ``Format`` (ml_dtypes.finfo).
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from stabcli.losses.bce import reference
from stabcli.core.formats import FORMATS, round_float64, to_float64

F16, BF16, F32, F64 = (FORMATS[n] for n in ("float16", "bfloat16", "float32", "float64"))


# --- the fast reference gradient against mpmath --------------------------------------------------------------

def _odd(v) -> float:
    """An mpmath number rounded to odd in float64 (see reference.to_float64_odd), compared at 200 bits.

    (The comparison must run at high precision: abs(v) at mpmath's default 53 bits rounds v first.)
    """
    import mpmath

    with mpmath.workprec(200):
        f = float(v)
        if not math.isfinite(f) or mpmath.mpf(f) == v:
            return f
        if abs(mpmath.mpf(f)) > abs(v):
            f = math.nextafter(f, 0.0)
    (bits,) = struct.unpack("<q", struct.pack("<d", f))
    return struct.unpack("<d", struct.pack("<q", bits | 1))[0]


def _exact_in_dtype(values, fmt) -> np.ndarray:
    return to_float64(round_float64(np.array([_odd(v) for v in values]), fmt))


@pytest.fixture(scope="module")
def sigmoid16():
    """Per 16-bit format: every finite value (float64) and mpmath's sigmoid there, correctly rounded to the dtype."""
    import mpmath

    out = {}
    for fmt in (F16, BF16):
        xs = to_float64(fmt.all_finite())
        with mpmath.workprec(200):
            exact = [1 / (1 + mpmath.exp(-mpmath.mpf(float(x)))) for x in xs]
        out[fmt.name] = (xs, _exact_in_dtype(exact, fmt))
    return out


@pytest.mark.parametrize("fmt", [F16, BF16], ids=["float16", "bfloat16"])
def test_fast_grad_reference_rounds_like_mpmath_on_every_finite_value(sigmoid16, fmt):
    xs, sig = sigmoid16[fmt.name]
    # target 0: grad = sigmoid(x); target 1: grad = -sigmoid(-x), and the finite values are symmetric about 0
    for y, want in ((0.0, sig), (1.0, -sig[::-1])):
        fast = reference.fast_grad(xs, y)
        assert np.array_equal(to_float64(fmt.round(fast)), want), (fmt.name, y)
        # the error bound certifies every point, so a hard-target sweep never needs mpmath in 16 bits ...
        bound = reference.fast_grad_bound(xs, y)
        assert np.array_equal(to_float64(fmt.round(fast - bound)), to_float64(fmt.round(fast + bound)))
        # ... and the sweep's reference is that value, rounding into the dtype exactly as mpmath's does
        nearest, for_rounding = reference.sweep_grad_reference(xs, fmt, y, cache=(cache := {}))
        assert not cache and np.array_equal(to_float64(round_float64(for_rounding, fmt)), want)
        assert np.array_equal(nearest, fast)


@pytest.mark.parametrize("fmt, y, w, pw", [
    # float16(0.3) = 0.300048828125, so 1 - y = 0.699951171875 is a float16 midpoint (halfway between 1433 and
    # 1434 · 2^-11): the saturated tail's exact gradient lies just below it, which float64 cannot see (mpmath).
    (F16, 0.3, 1.0, 1.0),
    # y = 0.5: the root is at x = 0 and the sum cancels for every tiny logit (the tanh form takes over).
    (BF16, 0.5, 1.0, 1.0),
    # 1 - y = pw·y = 0.75: the root is at 0 again, with a weight
    (F16, 0.25, 0.5, 3.0),
])
def test_sweep_grad_reference_is_exact_for_soft_targets(fmt, y, w, pw):
    y, w, pw = (float(to_float64(fmt.round(np.array(v)))) for v in (y, w, pw))
    xs = np.unique(to_float64(fmt.all_finite()))[::23]  # every 23rd distinct value: ~2,800 logits
    want = _exact_in_dtype([reference.exact_grad(float(x), y, w, pw) for x in xs], fmt)
    nearest, for_rounding = reference.sweep_grad_reference(xs, fmt, y, w, pw)
    assert np.array_equal(to_float64(round_float64(for_rounding, fmt)), want)
    # the plain float64 formula alone misrounds in each case (they were chosen to need the certificate)
    assert not np.array_equal(to_float64(fmt.round(reference.fast_grad(xs, y, w, pw))), want)


def test_sweep_grad_reference_float32_sample_and_float64():
    rng = np.random.default_rng(20240602)
    xs = rng.integers(0, 2**32, size=1500, dtype=np.uint64).astype(np.uint32).view(np.float32)
    xs = xs[np.isfinite(xs)].astype(np.float64)
    for y in (0.0, 1.0, float(np.float32(0.3))):
        want = _exact_in_dtype([reference.exact_grad(float(x), y) for x in xs], F32)
        _, for_rounding = reference.sweep_grad_reference(xs, F32, y)
        assert np.array_equal(to_float64(round_float64(for_rounding, F32)), want), y
    # float64: mpmath's value, nearest, at every point
    xs64 = np.array([-800.0, -40.0, -1e-300, 0.0, 2.5, 36.75, 1e308])
    nearest, _ = reference.sweep_grad_reference(xs64, F64, 1.0)
    assert nearest.tolist() == [reference.to_float64_nearest(reference.exact_grad(x, 1.0)) for x in xs64]


# --- known gradient breakdowns (issue 4, DESIGN.md) ------------------------------------------------------------

@pytest.fixture(scope="module")
def float32_torch():
    """float32 on the default grid (log-spaced to ±1e4; the search pins each breakdown to the exact float32)."""
    from stabcli.commands.sweep import run_sweep

    sweep = run_sweep([F32], ["torch"], [0.0, 1.0], methods=["clamped", "torch_bce", "softplus"], grad=True)
    return {(r.target, r.method): r for r in sweep.rows}


def test_float32_bce_gradient_vanishes_where_sigmoid_saturates(float32_torch):
    # DESIGN.md: float32 sigmoid first rounds to 1.0 at 16.63553237915039; then p(1-p) = 0 < ε and BCELoss's
    # backward gives (p-0)/ε · 0 = 0 where the truth is sigmoid(x) ≈ 1. Before it the gradient is p, correct.
    g = float32_torch[(0.0, "torch_bce")].grad
    assert g.breakdown.vanished_pos == g.breakdown.inaccurate_pos == 16.63553237915039
    assert g.breakdown.nonfinite_pos is None and g.counts["nonfinite"] == 0
    grad, truth = g.at["vanished_pos"]
    assert grad == 0.0 and truth == pytest.approx(1.0, abs=F32.eps)


def test_float32_bce_gradient_collapses_below_ln_epsilon(float32_torch):
    # mpmath (mp.dps = 40): ε = float32(1e-12) = 9.999999960041972e-13 (torch's `constexpr float EPSILON`);
    # p(1-p) = sigmoid(x)·sigmoid(-x) < ε for x < t = ln(((1-2ε) - sqrt(1-4ε))/(2ε)) = -27.631021119922351 (≈ ln ε).
    # float32 spacing in [16, 32) is 2^-19, so the clamp first fires at -27.63102149963379, where
    # sigmoid(x)·sigmoid(-x)/ε - 1 = -3.797e-7: the gradient -(1-p)·p(1-p)/ε is still within rtol = 4·2^-23
    # = 4.77e-7 of -1. At the next float32, -27.631023406982422, it is -2.287e-6: outside. So the gradient leaves
    # the tolerance there (the "about -27.63"):
    g = float32_torch[(1.0, "torch_bce")].grad
    assert g.breakdown.inaccurate_neg == -27.631023406982422
    grad, truth = g.at["inaccurate_neg"]
    assert truth == pytest.approx(-(1 - 1e-12), abs=1e-15)  # -sigmoid(-x) = -(1 - p), p ≈ ε
    assert grad == pytest.approx(-(1 - 2.287057e-6), abs=4 * F32.eps)  # ≈ -p(1-p)/ε, up to the kernel's roundings
    # It shrinks like -p/ε from there, and vanishes (|grad| < eps·1 = 2^-23) once p < ε·2^-23:
    # ln(ε·2^-23) = -43.573406272803093 (mpmath), and the first float32 below it is -43.57341003417969.
    assert g.breakdown.vanished_neg == -43.57341003417969
    # For target 0 the same clamp makes the gradient p·p(1-p)/ε instead of p: 3.797e-7 relative is already
    # outside once the kernel's roundings are added, so it leaves the tolerance at the clamp itself.
    assert float32_torch[(0.0, "torch_bce")].grad.breakdown.inaccurate_neg == -27.63102149963379


def test_float16_bce_gradient_is_nan_and_inf(exhaustive16):
    # DESIGN.md: torch float16 sigmoid (computed in float32, rounded once) is 1.0 from 8.3203125 and 0 from
    # -17.34375 (sigmoid(x) <= 2^-25, half float16's smallest subnormal: -log(2**25 - 1) = -17.3286795 (mpmath),
    # float16 spacing in [16, 32) is 1/64). 1e-12 rounds to 0 in float16, so p(1-p) = 0 there is not guarded:
    # (p-y)/0 · 0 = NaN.
    y0 = exhaustive16[("float16", "torch", 0.0, "torch_bce")].grad.breakdown
    y1 = exhaustive16[("float16", "torch", 1.0, "torch_bce")].grad.breakdown
    assert (y0.nan_pos, y0.nan_neg) == (8.3203125, -17.34375)
    assert (y1.nan_pos, y1.nan_neg) == (8.3203125, -17.34375)
    assert (y0.nonfinite_pos, y0.nonfinite_neg) == (8.3203125, -17.34375)  # NaN is the first non-finite value
    # Target 1 is non-finite sooner: unguarded, (p-1)/(p(1-p)) ≈ -1/p, and 1/p rounds to inf in float16 once it
    # reaches 65504 + 16 = 65520 (max + half its ulp), i.e. for p <= 2^-16 (the largest float16 <= 1/65520).
    # float16 p is 2^-16 or less where sigmoid(x) < 2^-16 + 2^-25: x < -11.0884 (mpmath), and the first float16
    # below is -11.09375 (spacing 1/128 in [8, 16)). So the gradient is -inf from -11.09375 and NaN from -17.34375.
    assert y1.nonfinite_neg == -11.09375
    assert exhaustive16[("float16", "torch", 1.0, "torch_bce")].grad.at["nonfinite_neg"][0] == -math.inf


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_softplus_gradient_never_nonfinite(exhaustive16, dtype, backend):
    # Over every finite value: never inf/NaN, never vanished, always within tolerance, and at most 2 ulps off
    # (error_bits = log2(1 + ulps) <= log2(3)): a bound established by this exhaustive sweep.
    for target in (0.0, 1.0):
        g = exhaustive16[(dtype, backend, target, "softplus")].grad
        assert g.counts == {"nonfinite": 0, "vanished": 0, "inaccurate": 0}
        assert all(v is None for v in vars(g.breakdown).values())
        assert g.max_error_bits <= math.log2(3)


def test_gradient_counts_add_up(exhaustive16):
    # Exclusive counts: non-finite, vanished and off-tolerance points never overlap, and never exceed the points.
    for row in exhaustive16.values():
        assert sum(row.grad.counts.values()) <= row.points
    # float16 torch torch_bce, target 0: NaN from 8.3203125 up and from -17.34375 down, counted from the format:
    from stabcli.core.formats import ordinal

    top = int(ordinal(np.float16(65504), F16))
    nan = 2 * top - int(ordinal(np.float16(8.3203125), F16)) - int(ordinal(np.float16(17.34375), F16)) + 2
    assert exhaustive16[("float16", "torch", 0.0, "torch_bce")].grad.counts["nonfinite"] == nan


# --- predicted against measured (thresholds) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def wide_sweeps():
    """float32 and float64 on the default grid, the rows the gradient thresholds are measured by."""
    from stabcli.commands.sweep import run_sweep

    return run_sweep([F32, F64], ["numpy", "torch"], [0.0, 1.0], methods=["clamped", "torch_bce"], grad=True)


def _measured(exhaustive16, wide_sweeps, fmt):
    from stabcli.commands.sweep import Sweep
    from stabcli.commands.thresholds import measure_thresholds
    from stabcli.losses.bce.thresholds import predict_grad

    if fmt.bits == 16:
        rows = [r for (dtype, *_), r in exhaustive16.items() if dtype == fmt.name]
        sweep = Sweep(None, 1.0, 1.0, rows)
    else:
        sweep = wide_sweeps
    return measure_thresholds(predict_grad(fmt), sweep, fmt)


def _ulp(v: float, fmt) -> float:
    """The gap from |v| to the next larger value of ``fmt``."""
    from stabcli.core.formats import ordinal
    from stabcli.core.formats import from_ordinal

    o = ordinal(fmt.round(np.array(abs(v))), fmt)
    return float(to_float64(from_ordinal(o + 1, fmt))) - abs(v)


@pytest.mark.parametrize("fmt", [F16, BF16, F32, F64], ids=lambda f: f.name)
def test_gradient_thresholds_within_theory(exhaustive16, wide_sweeps, fmt):
    for t in _measured(exhaustive16, wide_sweeps, fmt):
        assert t.measured is not None, t.name
        step = _ulp(t.predicted, fmt)
        if t.name.startswith("BCELoss gradient collapses: p(1-p)"):
            # The clamp fires at the prediction; the gradient leaves the tolerance once p(1-p)/ε < 1 - rtol, i.e.
            # ln(1/(1 - rtol)) ≈ rtol further out, plus an ulp for the kernel's roundings (thresholds._explain).
            rtol = fmt.default_rtol
            assert t.predicted - rtol - 2 * step <= t.measured <= t.predicted, (t.predicted, t.measured)
        elif t.name.startswith("BCELoss gradient collapses: 1-p"):
            # float64 only: 1 - p moves in steps of 2^-52 near p = 1, so p(1-p) < ε is reached up to one step of
            # 1 - p later: exp(-x) smaller by a factor (1 - 2^-52/ε), i.e. x larger by up to 2^-52/ε = 2.2e-4.
            assert fmt.name == "float64"
            assert t.predicted <= t.measured <= t.predicted + 2.0**-52 / 9.999999960041972e-13
        else:  # saturation, underflow, overflow of -1/p: exact consequences of rounding, so exactly equal
            assert t.measured == t.predicted, (t.name, t.predicted, t.measured)
            assert t.explanation == "agrees exactly"


def test_gradient_threshold_values():
    # The predictions themselves: DESIGN.md's saturation facts (torch fused in 16 bits, op by op in 32/64), and
    # float16's NaN/-inf logits derived in test_float16_bce_gradient_is_nan_and_inf.
    from stabcli.losses.bce.thresholds import predict_grad

    def keyed(fmt):
        return {(t.method, t.target, t.key): t.predicted for t in predict_grad(fmt)}

    assert keyed(F16) == {("torch_bce", 0.0, "nan_pos"): 8.3203125, ("clamped", 0.0, "vanished_pos"): 7.625,
                          ("torch_bce", 1.0, "nan_neg"): -17.34375, ("torch_bce", 1.0, "nonfinite_neg"): -11.09375}
    assert keyed(BF16) == {("torch_bce", 0.0, "vanished_pos"): 6.25, ("clamped", 0.0, "vanished_pos"): 5.5625,
                           # bfloat16(1e-12) = 1.0018652574217413e-12, ln of it -27.6292; spacing 1/8 in [16, 32)
                           ("torch_bce", 1.0, "inaccurate_neg"): -27.75}
    assert keyed(F32) == {("torch_bce", 0.0, "vanished_pos"): 16.63553237915039,
                          ("clamped", 0.0, "vanished_pos"): 16.63553237915039,
                          ("torch_bce", 1.0, "inaccurate_neg"): -27.63102149963379}  # see the collapse test above
    f64 = keyed(F64)
    assert f64[("torch_bce", 0.0, "vanished_pos")] == 36.73680056967711  # DESIGN.md
    # t = -27.6310211199223510168 (mpmath, above); float(t) = -27.63102111992235 lies below t (mpmath compares
    # mpf(-27.63102111992235) < t), so it is the largest float64 below t. The positive side is its mirror image.
    assert f64[("torch_bce", 1.0, "inaccurate_neg")] == -27.63102111992235
    assert f64[("torch_bce", 0.0, "inaccurate_pos")] == 27.63102111992235


def test_thresholds_command_shows_gradient_rows():
    from click.testing import CliRunner

    from stabcli.cli import cli

    result = CliRunner().invoke(cli, ["thresholds", "--dtype", "float16", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    grads = [t for t in json.loads(result.stdout)["results"] if t["measured_by"]["quantity"] == "gradient"]
    assert [(t["predicted"], t["measured"]) for t in grads] == [
        (8.3203125, 8.3203125), (7.625, 7.625), (-17.34375, -17.34375), (-11.09375, -11.09375)]


# --- the command line: JSON, CSV, table, --no-grad --------------------------------------------------------------

# float16, torch, 101 logits from -20 to 20 (step 0.4): brackets every float16 gradient breakdown above.
SMALL = ["sweep", "--dtype", "float16", "--backend", "torch", "--points", "101", "--min", "-20", "--max", "20",
         "--spacing", "linear"]
GRAD_KEYS = ("grad_count_nonfinite", "grad_count_vanished", "grad_count_inaccurate", "grad_max_error_bits",
             "grad_breakdown")
GRAD_BREAKDOWN = {"nonfinite_pos", "nonfinite_neg", "inaccurate_pos", "inaccurate_neg", "vanished_pos",
                  "vanished_neg", "nan_pos", "nan_neg"}


def _invoke(*args):
    from click.testing import CliRunner

    from stabcli.cli import cli

    return CliRunner().invoke(cli, list(args))


def test_json_has_gradient_fields():
    import json

    result = _invoke(*SMALL, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["grad"] is True
    for row in doc["results"]:
        assert all(key in row for key in GRAD_KEYS) and set(row["grad_breakdown"]) == GRAD_BREAKDOWN
        assert sum(row[k] for k in GRAD_KEYS[:3]) <= row["points"]
    bce = {r["target"]: r for r in doc["results"] if r["method"] == "torch_bce"}
    # test_float16_bce_gradient_is_nan_and_inf: the grid brackets them, the search pins them
    assert bce[0]["grad_breakdown"]["nan_pos"] == 8.3203125 and bce[0]["grad_breakdown"]["nan_neg"] == -17.34375
    assert bce[1]["grad_breakdown"]["nonfinite_neg"] == -11.09375 and bce[1]["grad_breakdown"]["nan_neg"] == -17.34375
    assert bce[0]["grad_max_error_bits"] == 16  # a NaN against a finite truth counts the format's full width
    softplus = next(r for r in doc["results"] if r["method"] == "softplus")
    assert set(softplus["grad_breakdown"].values()) == {None} and softplus["grad_count_nonfinite"] == 0


def test_csv_has_gradient_columns():
    import csv
    import io

    result = _invoke(*SMALL, "--format", "csv", "--target", "0")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert set(GRAD_KEYS[:4]) | {f"grad_{k}" for k in GRAD_BREAKDOWN} <= set(rows[0])
    bce = next(r for r in rows if r["method"] == "torch_bce")
    assert bce["grad_nan_pos"] == "8.3203125" and bce["grad_vanished_pos"] == ""  # empty: none found
    assert int(bce["grad_count_nonfinite"]) > 0


def test_no_grad_nulls_the_gradient_fields():
    import json

    doc = json.loads(_invoke(*SMALL, "--format", "json", "--no-grad").stdout)
    assert doc["grad"] is False
    assert all(row[key] is None for row in doc["results"] for key in GRAD_KEYS)
    csv_text = _invoke(*SMALL, "--format", "csv", "--no-grad").stdout
    header, first = csv_text.splitlines()[:2]
    cells = dict(zip(header.split(","), first.split(",")))
    assert all(cells[k] == "" for k in cells if k.startswith("grad_"))
    table = _invoke(*SMALL, "--no-grad").stdout
    assert "gradient d/dx" not in table and "Gradient:" not in table


def test_table_has_gradient_section_within_80_columns():
    # float32 torch target 0 over [-30, 30]: BCELoss's gradient is 0 from 16.63553237915039 (the test above)
    result = _invoke("sweep", "--dtype", "float32", "--backend", "torch", "--target", "0", "--min", "-30",
                     "--max", "30", "--points", "61", "--spacing", "linear")
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "gradient d/dx" in result.stdout and "wrong x≥" in result.stdout
    sentence = " ".join(result.stdout.split())  # the sentence wraps at 80 columns
    assert "torch_bce's gradient is 0 from x ≥ 16.63553237915039 where the truth is 1" in sentence
    assert "naive's gradient is NaN from x ≥ 16.63553237915039" in sentence
    # float64 logits are the longest: still 80 columns (an ellipsis shortens them)
    wide = _invoke("sweep", "--dtype", "float64", "--backend", "torch", "--target", "1", "--points", "101")
    assert wide.exit_code == 0 and max(len(line) for line in wide.stdout.splitlines()) <= 80


def test_grad_switch_errors_and_no_warnings():
    result = _invoke("sweep", "--grad=1")
    assert result.exit_code == 2 and result.output.strip() == "Error: Option '--grad' does not take a value."
    import warnings

    from stabcli.commands.sweep import make_grid, run_sweep

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning (overflow, 0/0) would fail here
        run_sweep([F16, BF16], ["numpy", "torch"], [0.0, 0.3, 1.0], make_grid(points=201, min=-1e4, max=1e4),
                  grad=True)
