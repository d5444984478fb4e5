"""Gradients d loss / d x: numpy duals, torch autograd, the mpmath reference, compare's rows and text.

Where the numbers come from:
* mpmath literals below were made with this snippet (mpmath 1.3, mp.dps = 50):

      from mpmath import mp, mpf, exp
      mp.dps = 50
      g = lambda x, y, w=1, pw=1: mpf(w) * ((1 - mpf(y)) / (1 + exp(-mpf(x))) - mpf(pw) * mpf(y) / (1 + exp(mpf(x))))
      for a in [(40, 0), (-50, 1), (0, 0), (-12, 0), (1.5, 0.25, 2, 3), (-27.5, 1), (100, 1)]:
          print(a, mp.nstr(g(*a), 20))
      p = 1 / (1 + exp(50)); print(mp.nstr(p, 20))   # sigmoid(-50)

  (40, 0) 0.99999999999999999575      (-50, 1) -1.0 (to 20 digits)     (0, 0) 0.5
  (-12, 0) 6.1441746022147178256e-6   (1.5, 0.25, 2, 3) 0.95272342858093097882
  (-27.5, 1) -0.99999999999886000815  (100, 1) -3.720075976020835963e-44
  sigmoid(-50) = 1.9287498479639177830e-22
* torch BCELoss's backward (p-y)/max(p(1-p), 1e-12) and torch.sigmoid's backward p(1-p): DESIGN.md, from
  aten/src/ATen/native/Loss.cpp.
* format constants (eps, smallest subnormal) from ml_dtypes.finfo via ``Format``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from stabcli.core.autodiff import DualOps
from stabcli.losses.bce.gradients import grad_details, grad_of
from stabcli.core.backends import NumpyOps
from stabcli.cli import cli
from stabcli.core.formats import FORMATS, to_float64
from stabcli.losses.bce import FAMILY as BCE
from stabcli.losses.bce.formulas import METHODS
from stabcli.losses.bce import grad_thresholds as thresholds_grad, reference

F16, BF16, F32, F64 = (FORMATS[n] for n in ("float16", "bfloat16", "float32", "float64"))
SIGMOID_M50 = 1.9287498479639177830e-22  # mpmath, snippet above


def arrays(fmt, x, y, w=1.0, pw=1.0):
    return {"logits": fmt.round(np.atleast_1d(x)), "targets": fmt.round(np.atleast_1d(y)),
            "weight": fmt.round(np.atleast_1d(w)), "pos_weight": fmt.round(np.atleast_1d(pw))}


def g(backend, fmt, method, x, y, **kw) -> float:
    return float(to_float64(grad_of(backend, fmt, method, arrays(fmt, x, y, **kw)))[0])


# --- the known cases (issue 4, DESIGN.md) -------------------------------------------------------------------

def test_float32_x40_y0_bce_gradient_is_zero_softplus_one():
    # true gradient sigmoid(40) = 0.99999999999999999575 (mpmath), 1.0 in float32
    assert g("torch", F32, "torch_bce", 40, 0) == 0.0  # p = 1: (p-y)/1e-12 · p(1-p) = 1e12 · 0
    assert g("numpy", F32, "clamped", 40, 0) == 0.0  # the -100 clamp fired: d max(-inf, -100) = 0
    for backend in ("numpy", "torch"):
        assert g(backend, F32, "softplus", 40, 0) == 1.0
        assert g(backend, F32, "logsumexp", 40, 0) == 1.0
    assert g("torch", F32, "torch_bce_with_logits", 40, 0) == 1.0


def test_torch_autograd_through_hand_written_clamp_is_nan_at_saturation():
    # Pinned difference: reverse mode passes 0 back through max(log1p(-p), -100), and log1p's backward
    # (xlog1py's: grad·1/(1 + (-p))) divides it by 1 - p = 0: 0/0 = NaN. Forward mode selects the branch: 0.
    assert math.isnan(g("torch", F32, "clamped", 40, 0))
    gd = grad_details("numpy", F32, "clamped", arrays(F32, 40, 0))
    assert gd.clamped[0]


def test_float32_xm50_y1_bce_gradient_collapses():
    # p = sigmoid(-50) = 1.93e-22 (mpmath) is a normal float32; p(1-p) < 1e-12 so the denominator is clamped:
    # grad = (p - 1)/1e-12 · p(1-p) ≈ -p·1e12 = -1.93e-10, against the true -1.
    got = g("torch", F32, "torch_bce", -50, 1)
    assert got == pytest.approx(-SIGMOID_M50 * 1e12, rel=8 * F32.eps)
    gd = grad_details("torch", F32, "torch_bce", arrays(F32, -50, 1))
    assert gd.clamped[0] and gd.details["epsilon"] == pytest.approx(1e-12, rel=F32.eps)
    # The hand-written clamped form differentiates log p, not BCELoss's custom backward: -1, correct.
    assert g("numpy", F32, "clamped", -50, 1) == -1.0
    assert g("torch", F32, "clamped", -50, 1) == -1.0
    assert g("torch", F32, "softplus", -50, 1) == -1.0
    assert g("torch", F32, "torch_bce_with_logits", -50, 1) == -1.0


@pytest.mark.parametrize("x, y", [(40, 0), (-50, 1), (10, 0)])
def test_float16_torch_bce_gradient_is_nan(x, y):
    # 1e-12 rounds to 0 in float16 (smallest subnormal 6e-8), so max(p(1-p), 1e-12) = 0 once p is 0 or 1:
    # (p-y)/0 = ±inf, then times p(1-p) = 0: NaN. torch's float16 sigmoid saturates from x = 8.3203125.
    assert thresholds_grad.grad_epsilon(F16) == 0.0
    assert math.isnan(g("torch", F16, "torch_bce", x, y))
    assert abs(g("torch", F16, "torch_bce_with_logits", x, y)) == 1.0


# --- numpy duals against torch autograd ----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [F32, F64], ids=lambda f: f.name)
def test_numpy_duals_agree_with_torch_autograd(fmt):
    """On a seeded sample, |numpy - torch| <= k·eps·S·c(x), S = w·((1-y)σ(x) + y·σ(-x)) the size of the terms.

    softplus sums non-negative terms: k = 4, c = 1 (measured max 2.1). naive, clamped and logsumexp cancel (1 - p,
    or 1 - e2/(e1+e2)), and their derivatives inherit that: op-by-op differentiation of 1/(1+exp(-x)) takes the
    derivative from exp(-x) while torch.sigmoid's backward takes p(1-p) from the rounded p, so they differ by the
    forward's own cancellation error, which grows like 1 + exp(|x|): k = 2, c = 1 + exp(|x|) (measured max 1.0).
    """
    rng = np.random.default_rng(20240604)
    x = fmt.round(rng.uniform(-16, 16, 600))
    y = fmt.round(rng.choice([0.0, 1.0, 0.3], 600))
    a = {"logits": x, "targets": y, "weight": fmt.round(np.array([0.75]))}
    X, Y = to_float64(x), to_float64(y)
    s = 1 / (1 + np.exp(-X))
    scale = 0.75 * ((1 - Y) * s + Y * (1 - s))
    for method in ("naive", "clamped", "logsumexp", "softplus"):
        gn, gt = grad_of("numpy", fmt, method, a), grad_of("torch", fmt, method, a)
        assert gn.dtype == gt.dtype == fmt.np_dtype
        k, c = (4, 1.0) if method == "softplus" else (2, 1 + np.exp(np.abs(X)))
        diff = np.abs(to_float64(gn) - to_float64(gt))
        assert np.all(diff <= k * fmt.eps * scale * c), method


def test_known_legitimate_differences_are_pinned():
    # naive at x = 16.5, y = 0, float32: 1 - p has 1 significant bit (5.96e-8), numpy's dp/(1-p) uses the accurate
    # dp = e/(1+e)^2 and so is ~1.03, torch's p(1-p)/(1-p) = p is ~1 by consistent rounding.
    assert g("torch", F32, "naive", 16.5, 0) == pytest.approx(1.0, abs=F32.eps)
    assert abs(g("numpy", F32, "naive", 16.5, 0) - 1.0) > 0.01
    # logsumexp op by op in float16 at x = -12, y = 0: d lse = -1 + 6.1e-6 rounds to -1, the gradient 1 - 1 = 0
    # vanishes where the truth is sigmoid(-12) = 6.1441746022147178256e-6 (mpmath); torch's reverse mode keeps it.
    assert g("numpy", F16, "logsumexp", -12, 0) == 0.0
    assert g("torch", F16, "logsumexp", -12, 0) == pytest.approx(6.1441746022147178256e-6, rel=2 * F16.eps)


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=lambda f: f.name)
def test_dual_values_equal_numpy_ops_bit_for_bit(fmt):
    x = fmt.round(np.array([-200, -50, -12, -1, 0, 0.5, 3, 17, 40, 1e10, np.inf, -np.inf, np.nan]))
    y = fmt.round(np.array([0.0, 1.0, 0.3]))[:, None]
    x2, y2 = np.broadcast_arrays(x, y)
    one = fmt.round(np.array([1.0]))
    with np.errstate(all="ignore"):
        for method in BCE.methods_for("numpy"):
            plain = METHODS[method](NumpyOps(fmt), x2, y2, one, one).loss
            dops = DualOps(fmt)
            dual = METHODS[method](dops, dops.variable(x2), y2, one, one).loss
            np.testing.assert_array_equal(to_float64(dops.to_numpy(dual)), to_float64(plain), err_msg=method)


def test_softplus_gradient_at_zero_is_half():
    # sigmoid(0) - 0 = 0.5 exactly: at t = 0 max(t, 0) splits its derivative as torch.maximum does, abs' is 0.
    for fmt in FORMATS.values():
        assert g("numpy", fmt, "softplus", 0, 0) == 0.5
        assert g("torch", fmt, "softplus", 0, 0) == 0.5


def test_grad_of_is_vectorised_and_reduces():
    x = F32.round(np.linspace(-5, 5, 10_001))
    a = {"logits": x, "targets": F32.round(np.array([1.0]))}
    none = grad_of("numpy", F32, "softplus", a)
    mean = grad_of("numpy", F32, "softplus", a, reduction="mean")
    total = grad_of("torch", F32, "softplus", a, reduction="sum")
    assert none.shape == mean.shape == total.shape == x.shape and none.dtype == np.float32
    np.testing.assert_array_equal(mean, none / np.float32(x.size))
    np.testing.assert_allclose(to_float64(total), to_float64(none), rtol=4 * F32.eps, atol=0)


# --- the reference gradient ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    ((40, 0), "0.99999999999999999575"),
    ((-50, 1), "-1.0"),
    ((0, 0), "0.5"),
    ((-12, 0), "6.1441746022147178256e-6"),
    ((1.5, 0.25, 2, 3), "0.95272342858093097882"),
    ((-27.5, 1), "-0.99999999999886000815"),
    ((100, 1), "-3.720075976020835963e-44"),
])
def test_exact_grad_against_mpmath_literals(args, expected):
    import mpmath

    with mpmath.workdps(50):
        got = reference.exact_grad(*args)
        assert abs(got - mpmath.mpf(expected)) <= abs(mpmath.mpf(expected)) * mpmath.mpf(10) ** -19 or got == 0.5


def test_exact_grad_limits():
    # the exact limits of w·((1-y)σ(x) - pw·y·σ(-x)) at x = ±inf, and NaN in, NaN out
    cases = {(math.inf, 0): 1.0, (math.inf, 1): 0.0, (-math.inf, 1): -1.0, (-math.inf, 0): 0.0,
             (math.inf, 0.25): 0.75, (-math.inf, 0.25): -0.25}
    for (x, y), want in cases.items():
        assert reference.to_float64_nearest(reference.exact_grad(x, y)) == want
    assert math.isnan(reference.to_float64_nearest(reference.exact_grad(math.nan, 1)))


# --- predicted collapse logits -------------------------------------------------------------------------------

def test_predicted_saturation_matches_design_facts():
    # DESIGN.md: sigmoid first rounds to 1.0 at 7.625 / 5.5625 / 16.63553237915039 / 36.73680056967711 op by op,
    # 8.3203125 / 6.25 in torch (fused): the first value of each format at or above ln(2/eps), ln(4/eps).
    def first_at_or_above(fmt, t):
        v = fmt.round(np.array([t]))
        return float(to_float64(v)[0]) if to_float64(v)[0] >= t else float(to_float64(np.nextafter(v, v + 1))[0])

    assert first_at_or_above(F16, thresholds_grad.saturation_logit(F16)) == 7.625
    assert first_at_or_above(BF16, thresholds_grad.saturation_logit(BF16)) == 5.5625
    assert first_at_or_above(F32, thresholds_grad.saturation_logit(F32)) == 16.63553237915039
    # float64: ln(2**53) in float64 arithmetic is itself rounded, and whether exp(-x) <= 2**-53 at the boundary
    # depends on exp's last bit, so the prediction is good to an ulp there, not exact.
    assert thresholds_grad.saturation_logit(F64) == pytest.approx(36.73680056967711, rel=2 * F64.eps)
    assert first_at_or_above(F16, thresholds_grad.saturation_logit(F16, fused=True)) == 8.3203125
    assert first_at_or_above(BF16, thresholds_grad.saturation_logit(BF16, fused=True)) == 6.25


def test_predicted_collapse_logits_match_torch():
    # ln(1e-12) = -27.631021115928547: below it p(1-p) < 1e-12 and BCELoss's gradient leaves -1.
    assert thresholds_grad.denominator_clamp_logit_neg(F32) == pytest.approx(-27.631021115928547, rel=1e-6)
    assert thresholds_grad.denominator_clamp_logit_neg(F16) is None  # ε = 0 in float16
    assert thresholds_grad.denominator_clamp_logit_pos(F64) == pytest.approx(27.631021115928547)
    ok, bad = F32.round(np.array([-27.6, -27.7]))  # either side of the predicted logit
    ref = -1.0
    assert g("torch", F32, "torch_bce", float(ok), 1) == pytest.approx(ref, rel=1e-6)
    assert abs(g("torch", F32, "torch_bce", float(bad), 1) - ref) > 0.05
    # float16: NaN from where p(1-p) is 0, predicted at ln(smallest subnormal / 2) = -17.33 and saturation 8.318
    assert thresholds_grad.grad_nan_logit_neg(F16) == pytest.approx(math.log(2.0**-25))
    assert not math.isnan(g("torch", F16, "torch_bce", -17.25, 1))
    assert math.isnan(g("torch", F16, "torch_bce", -17.375, 1))
    assert not math.isnan(g("torch", F16, "torch_bce", 8.3125, 0))
    assert math.isnan(g("torch", F16, "torch_bce", 8.3203125, 0))


# --- compare: rows, JSON, CSV, table -------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch):
    for var in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    return result


def rows_of(result):
    return {(r["backend"], r["method"]): r for r in json.loads(result.output)["results"]}


def test_compare_m50_1_json_forward_fine_gradient_wrong():
    result = run("compare", "-50", "1", "--dtype", "float32", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = rows_of(result)
    bce = rows[("torch", "torch_bce")]
    for key in ("grad", "grad_reference", "grad_abs_error", "grad_error_bits", "grad_status", "grad_verdict"):
        assert key in bce
    assert bce["status"] == "ok" and bce["loss"] == 50.0  # the forward looks fine
    assert bce["grad_reference"] == -1.0 and bce["grad_status"] == "clamped"
    assert bce["grad"] == pytest.approx(-SIGMOID_M50 * 1e12, rel=8 * F32.eps)
    assert rows[("torch", "softplus")]["grad"] == -1.0 and rows[("torch", "softplus")]["grad_status"] == "ok"
    steps = {s["name"]: s for s in bce["steps"]}
    assert "clamped at 1e-12" in steps["grad: max(p(1-p), 1e-12)"]["note"]
    summary = " ".join(json.loads(result.output)["summary"])
    assert "although its loss looks right" in summary


def test_compare_40_0_table_shows_gradient():
    # The default output has one compact table (loss, status, gradient, gradient status per row); --steps keeps the
    # per-dtype tables, gradient table included.
    result = run("compare", "40", "0", "--dtype", "float32")
    assert result.exit_code == 0, result.output
    bce = next(line for line in result.output.splitlines() if line.split()[:2] == ["torch_bce", "torch"])
    assert bce.split()[2:] == ["100", "clamped", "0", "clamped"]
    result = run("compare", "40", "0", "--dtype", "float32", "--steps")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "float32  gradient d loss / d x" in out
    assert max(len(line) for line in out.splitlines()[:40]) <= 80
    grad_lines = out[out.index("gradient d loss / d x"):].splitlines()
    bce = next(line for line in grad_lines if line.strip().startswith("torch_bce "))
    # bits: log2(1 + ulps from 0 to 1.0) = log2(1 + 0x3f800000) = 29.99, shown as 30
    assert bce.split()[1:] == ["0", "1", "30", "clamped"]
    sp = next(line for line in grad_lines if line.strip().startswith("softplus "))
    assert sp.split()[1:] == ["1", "1", "0", "ok"]
    flat = " ".join(out.replace("│", " ").split())
    assert "Gradient: BCELoss's backward gives 0 where the true gradient is 1 (clamped)" in flat


def test_compare_40_0_float16_grad_nan_is_explained():
    result = run("compare", "40", "0", "--dtype", "float16", "--backend", "torch", "--format", "json")
    bce = rows_of(result)[("torch", "torch_bce")]
    assert bce["grad"] == "nan" and bce["grad_status"] == "nan"
    notes = " ".join(s["note"] for s in bce["steps"])
    # p = 1, y = 0: (p-y)/max(p(1-p), 0) = 1/0 = inf, and torch.sigmoid's backward multiplies it by p(1-p) = 0
    assert "1e-12 rounds to 0 in float16" in notes and "(p-y)/0 = inf" in notes and "inf·0 = NaN" in notes


def test_compare_grad_lists_and_mean():
    result = run("compare", "1,-50", "1", "--dtype", "float32", "--backend", "torch", "--format", "json")
    bce = rows_of(result)[("torch", "torch_bce")]
    # mean over 2 elements: each gradient halved; true (sigmoid(1) - 1)/2 and -1/2 (sigmoid(-50)-1 ≈ -1)
    assert bce["grad_reference"][1] == -0.5 and len(bce["grad"]) == 2
    assert bce["grad_status"] == ["ok", "clamped"]


def test_compare_csv_has_grad_columns():
    result = run("compare", "40", "0", "--dtype", "float32", "--backend", "torch", "--format", "csv")
    header, *lines = result.output.splitlines()
    cols = header.split(",")
    assert cols[-5:] == ["grad", "grad_reference", "grad_abs_error", "grad_error_bits", "grad_status"]
    bce = next(line.split(",") for line in lines if line.split(",")[2] == "torch_bce")
    assert bce[cols.index("grad")] == "0.0" and bce[cols.index("grad_status")] == "clamped"


def test_vanished_gradient_is_inaccurate_even_with_loose_tolerance():
    # float32, x = 40, y = 1: torch's p(1-p) = 0, so BCELoss's gradient is 0 where the truth is -sigmoid(-40)
    # = -4.248354255291589e-18 (mpmath); with --atol 1 it would pass allclose, yet it vanished.
    result = run("compare", "40", "1", "--dtype", "float32", "--backend", "torch", "--format", "json",
                 "--atol", "1")
    bce = rows_of(result)[("torch", "torch_bce")]
    assert bce["grad"] == 0.0 and bce["grad_status"] in ("inaccurate", "clamped")
    # BCEWithLogits' own backward computes sigmoid(x) - y = 1 - 1 = 0: it vanishes too (inaccurate, not clamped);
    # softplus differentiates log1p(exp(-40)) and keeps -4.2e-18.
    wl = rows_of(result)[("torch", "torch_bce_with_logits")]
    assert wl["grad"] == 0.0 and wl["grad_status"] == "inaccurate"
    sp = rows_of(result)[("torch", "softplus")]
    assert sp["grad_status"] == "ok" and sp["grad"] == pytest.approx(-4.248354255291589e-18, rel=4 * F32.eps)


def test_bad_input_is_one_line_error():
    result = run("compare", "40", "2")
    assert result.exit_code == 2
    assert result.output.strip().startswith("Error:") and len(result.output.strip().splitlines()) == 1


def test_no_numpy_warnings_leak():
    code = ("import warnings; warnings.simplefilter('error');"
            "from stabcli.cli import cli; from click.testing import CliRunner;"
            "r = CliRunner().invoke(cli, ['compare', '1e10,-1e10,inf,-inf', '0,1,1,0', '--reduction', 'none']);"
            "assert r.exit_code == 0, r.output")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from click.testing import CliRunner; from stabcli.cli import cli;"
            "CliRunner().invoke(cli, ['--help']);"
            "assert 'torch' not in sys.modules and 'mpmath' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
