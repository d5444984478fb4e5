"""float8 in the engines: the numpy backend (ml_dtypes), torch's float32-and-round backend, sweeps, thresholds,
compare's notes and the links to `stabcli float`.

Where the expected numbers come from: ml_dtypes' own float32 arithmetic (its ufuncs are documented in
``ml_dtypes/_src/ufuncs.h`` as ``T(std::exp(to_system(a)))``: float32 in, rounded once), the format constants and
breakdown logits of ``tests/test_floats.py`` (worked out by hand there), and torch's float8 cast (saturating in
float8_e4m3fn, torch 2.13).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.commands.compare import run_compare
from stabcli.commands.sweep import make_grid, run_sweep
from stabcli.commands.thresholds import run_thresholds
from stabcli.core.backends import TorchFloat8Ops, make_ops
from stabcli.core.formats import FORMATS, parse_dtypes, to_float64
from stabcli.losses.bce import FAMILY as BCE, Inputs

F8 = ("float8_e4m3fn", "float8_e5m2")


def one(x, y):
    return Inputs(*(np.asarray(v, dtype=np.float64) for v in (x, y, 1.0, 1.0)), reduction="mean")


def rows_by(comparison):
    return {(r.backend, r.dtype, r.method): r for r in comparison.rows}


@pytest.mark.parametrize("name", F8)
def test_ml_dtypes_float8_ops_are_float32_rounded_once(name):
    # what the numpy backend relies on: each float8 operation is the float32 operation rounded once, checked on
    # every value (unary) and every pair (binary) of the format
    dt = FORMATS[name].np_dtype
    v = np.arange(256, dtype=np.uint8).view(dt)
    f = v.astype(np.float32)
    a, b = np.meshgrid(v, v)
    fa, fb = np.meshgrid(f, f)

    def same(x, y):
        x, y = x.astype(np.float64), y.astype(np.float64)
        return bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))

    with np.errstate(all="ignore"):
        for u in (np.exp, np.log, np.log1p, np.negative, np.abs):
            assert same(u(v), u(f).astype(dt)), u.__name__
        for u in (np.add, np.subtract, np.multiply, np.divide, np.maximum):
            assert same(u(a, b), u(fa, fb).astype(dt)), u.__name__


@pytest.mark.parametrize("name", F8)
@pytest.mark.parametrize("y", [0.0, 1.0, 0.25])
def test_torch_and_numpy_agree_bit_for_bit_where_both_round_each_operation(name, y):
    # logsumexp and softplus use only operations that both backends compute in float32 and round once (ml_dtypes'
    # rounding in numpy, torch's cast in torch): two implementations, the same bits on every value of the format
    fmt = FORMATS[name]
    xs = fmt.all_finite()
    arrays = {"logits": xs, "targets": fmt.round(np.array(y)), "weight": fmt.round(np.array(1.0)),
              "pos_weight": fmt.round(np.array(1.0))}
    for method in ("logsumexp", "softplus"):
        a, ops_a = BCE.evaluate("numpy", fmt, method, arrays, broadcast=False)
        b, ops_b = BCE.evaluate("torch", fmt, method, arrays, broadcast=False)
        la, lb = to_float64(ops_a.to_numpy(a.loss)), to_float64(ops_b.to_numpy(b.loss))
        assert np.array_equal(la, lb, equal_nan=True), method


def test_torch_float8_rounds_every_result_and_gradient():
    fmt = FORMATS["float8_e4m3fn"]
    ops = make_ops("torch", fmt)
    assert isinstance(ops, TorchFloat8Ops)
    x = ops.array(fmt.round(np.array([3.0, 0.3]))).requires_grad_(True)
    y = x * 1.1  # 3.3 and 0.33 in float32, then rounded: 3.25 and 0.34375 (float8_e4m3fn's neighbours)
    assert list(to_float64(ops.to_numpy(y))) == [3.25, 0.34375]
    (y * 1000).sum().backward()
    # d/dx = 1000·1.1 = 1100 in float32, which torch's cast saturates to 448 on the way back
    assert list(to_float64(ops.to_numpy(x.grad))) == [448.0, 448.0]


def test_saturation_turns_log0_into_a_clamp_in_torch_e4m3fn():
    # torch's cast saturates -inf to -448: naive's 0·log(1 - p) at p = 1 is 0·(-448) = 0, not 0·(-inf) = NaN,
    # and with target 0 the loss is 448 (a clamp at -448); numpy (ml_dtypes) gives NaN for log(0)
    rows = rows_by(run_compare(one(448.0, 1.0), parse_dtypes(["float8_e4m3fn"])))
    assert rows[("torch", "float8_e4m3fn", "naive")].loss == 0.0
    assert math.isnan(rows[("numpy", "float8_e4m3fn", "naive")].loss)
    rows = rows_by(run_compare(one(4.0, 0.0), parse_dtypes(["float8_e4m3fn"])))
    assert rows[("torch", "float8_e4m3fn", "naive")].loss == 448.0
    # BCELoss's -100 clamp, computed in float32 and rounded: 100 is a tie between 96 and 104, and goes to 96
    assert rows[("torch", "float8_e4m3fn", "torch_bce")].loss == 96.0
    assert rows[("torch", "float8_e4m3fn", "torch_bce")].status == "clamped"
    # in numpy the clamp cannot act: log1p(-1) is NaN, and max(NaN, -100) is NaN
    assert rows[("numpy", "float8_e4m3fn", "clamped")].status == "nan"


def test_exhaustive_float8_sweep_counts_every_value():
    sweep = run_sweep([FORMATS[n] for n in F8], ["numpy", "torch"], [0.0, 1.0], make_grid(exhaustive=True),
                      grad=False)
    # OCP float8: e4m3fn's 256 patterns less its two NaNs (S.1111.111); e5m2's less ±inf and six NaNs (exponent
    # all ones: 2 signs · 4 mantissas); README's --exhaustive row quotes both counts
    assert {r.points for r in sweep.rows if r.dtype == "float8_e4m3fn"} == {254}
    assert {r.points for r in sweep.rows if r.dtype == "float8_e5m2"} == {248}
    for r in sweep.rows:
        assert sum(r.counts.values()) == r.points
        if r.method in ("softplus", "torch_bce_with_logits"):  # within 2 ulps everywhere: inside rtol = 2·eps
            assert r.counts["ok"] == r.points, (r.backend, r.dtype, r.target, r.method)
    assert any("rounded to float8_e4m3fn by torch's cast" in n for n in sweep.notes)


@pytest.mark.parametrize("name", F8)
def test_float8_breakdowns_are_predicted_from_the_constants(name):
    # every exact prediction (all but the logsumexp estimate) equals what the exhaustive sweep measures
    fmt = FORMATS[name]
    got = run_thresholds([fmt])
    assert len(got) == (9 if name == "float8_e4m3fn" else 10)
    for t in got:
        if t.name.startswith("logsumexp"):
            assert t.measured is not None and t.measured < t.predicted  # an estimate; the truth lies further out
            continue
        assert t.measured == t.predicted, (t.name, t.predicted, t.measured)
    by_name = {t.name: t for t in got}
    # From the constants: e4m3fn's overflow threshold is 448 + 32/2 = 464 and ln 464 = 6.14, so exp(-x) overflows
    # from the first value at or below -6.14, -6.5 (spacing 0.5 in [4, 8)); p = sigmoid(x) underflows below half the
    # smallest subnormal, 2**-10, from x < -ln(2**10 - 1) = -6.93, i.e. -7.0. e5m2: -1/p overflows once
    # 1/p >= 57344 + 8192/2 = 61440, x < -ln(61439) = -11.03, i.e. -12 (spacing 1 in [8, 16)).
    if name == "float8_e4m3fn":  # no inf: overflow is NaN in numpy and saturates in torch
        assert by_name["exp(-x) overflows to NaN, so op-by-op sigmoid is NaN"].predicted == -6.5
        assert by_name["BCELoss gradient 0: p underflows (target 1)"].predicted == -7.0
    else:
        assert by_name["BCELoss gradient -inf: -1/p overflows (target 1)"].predicted == -12.0


def test_compare_names_the_float_command_and_it_shows_the_overflow():
    runner = CliRunner()
    doc = json.loads(runner.invoke(cli, ["compare", "1e10", "1", "--dtype", "float16", "--format", "json"]).output)
    assert any("stabcli float 1e10 --dtype float16" in n for n in doc["notes"])
    assert any("stabcli float 1e10 --dtype float16" in s for s in doc["summary"])
    shown = runner.invoke(cli, ["float", "1e10", "--dtype", "float16"])  # the command it names works and says inf
    assert shown.exit_code == 0 and "1e10 → inf" in shown.output
    doc = json.loads(runner.invoke(cli, ["compare", "1e10", "1", "--dtype", "float8_e4m3fn", "--format",
                                         "json"]).output)
    note = next(n for n in doc["notes"] if "overflows float8_e4m3fn" in n)
    assert "becomes NaN" in note and "saturate to 448" in note and "stabcli float 1e10 --dtype float8_e4m3fn" in note
    assert any("torch in float8_e4m3fn" in n for n in doc["notes"])
    doc = json.loads(runner.invoke(cli, ["compare", "0.1", "1", "--dtype", "float16", "--format", "json"]).output)
    assert any("stored as 0.0999755859375" in n and "stabcli float 0.1 --dtype float16" in n for n in doc["notes"])


def test_demo_names_the_float_command():
    from stabcli.present import demo

    step5 = demo.build_step(5, "float32")
    assert "stabcli float 1e10 --dtype float16 shows it" in " ".join(step5.paragraphs)
    step3 = demo.build_step(3, "float32")
    assert "stabcli float 1 --dtype float32 shows the float32 numbers around 1" in " ".join(step3.paragraphs)


def test_float8_through_every_command():
    runner = CliRunner()
    for args in (["compare", "-3,0,2,448", "0,1,0.5,1", "--dtype", "float8_e4m3fn", "--dtype", "float8_e5m2",
                  "--reduction", "none", "--format", "csv"],
                 ["sweep", "--dtype", "float8_e5m2", "--points", "101", "--format", "json"],
                 ["sweep", "--dtype", "float8_e4m3fn", "--exhaustive", "--no-grad"],
                 ["thresholds", "--dtype", "float8_e5m2", "--format", "csv"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)


@pytest.mark.parametrize("name", F8)
@pytest.mark.parametrize("y", [0.0, 1.0, 0.25])
def test_fast_sweep_references_round_correctly_into_float8(name, y):
    # the sweeps' float64 loss and gradient references against mpmath's exact values, on every float8 value
    from stabcli.core.exact import to_float64_odd
    from stabcli.core.formats import round_float64
    from stabcli.losses.bce import reference

    fmt = FORMATS[name]
    x64 = to_float64(fmt.all_finite())
    yy = float(to_float64(fmt.round(np.array(y))))
    _, for_rounding = reference.sweep_reference(x64, fmt.bits, yy, fmt=fmt)
    exact = round_float64(np.array([to_float64_odd(reference.exact_loss(float(v), yy)) for v in x64]), fmt)
    assert np.array_equal(to_float64(round_float64(for_rounding, fmt)), to_float64(exact), equal_nan=True)
    nearest, for_rounding = reference.sweep_grad_reference(x64, fmt, yy)
    exact = round_float64(np.array([to_float64_odd(reference.exact_grad(float(v), yy)) for v in x64]), fmt)
    assert np.array_equal(to_float64(round_float64(for_rounding, fmt)), to_float64(exact))


def test_exp_overflow_to_nan_counts_as_overflow():
    # float8_e4m3fn, numpy: exp(-x) overflows (to NaN, having no inf) from x <= -6.5 (tests/test_floats.py), so
    # count_overflow is the number of its values at or below -6.5: 6.5, 7, 7.5, five binades of 8, and 256..448
    # in steps of 32 (7): 3 + 40 + 7 = 50
    fmt = FORMATS["float8_e4m3fn"]
    sweep = run_sweep([fmt], ["numpy"], [1.0], make_grid(exhaustive=True), methods=["naive"], grad=False)
    x64 = to_float64(fmt.all_finite())
    assert sweep.rows[0].count_overflow == int(np.sum(x64 <= -6.5)) == 50
    row = rows_by(run_compare(one(-8.0, 1.0), parse_dtypes(["float8_e4m3fn"]), ["numpy"]))[
        ("numpy", "float8_e4m3fn", "naive")]
    assert row.events["overflow"] == 1 and "has no inf" in row.steps[0].note


@pytest.mark.parametrize("name", F8)
def test_figure_data_for_float8(name):
    # what `stabcli plot --dtype float8_...` draws: the plot grid stays within the format (e4m3fn ends at 448) and
    # the naive breakdown lines are the exhaustive sweep's, which tests/test_floats.py predicts by hand
    from stabcli.commands.curves import curve_set
    from stabcli.commands.curves import exact_breakdowns

    fmt = FORMATS[name]
    cs = curve_set(fmt, "numpy", 0.0)
    assert np.all(np.isfinite(cs.x)) and np.abs(cs.x).max() <= fmt.max and np.all(np.isfinite(cs.reference))
    assert [c.method for c in cs.curves] == ["naive", "clamped", "logsumexp", "softplus"]
    pos, neg = exact_breakdowns(fmt, "numpy", (0.0,))[0.0]
    assert pos == {"float8_e4m3fn": 2.75, "float8_e5m2": 2.0}[name]  # sigmoid rounds to 1 op by op


def test_torch_bce_backward_trace_is_the_float32_kernels():
    # torch has no float8 kernel for BCELoss's backward: the float32 kernel runs and its result is cast
    # (core/backends.py), so the guard max(p(1-p), 1e-12) is float32's 1e-12 = 9.99999996e-13
    # (float(np.float32(1e-12))), not 0. At x = 5, y = 1, sigmoid(5) = 0.9933 rounds to 1 in float8_e4m3fn (from
    # 3.5: test_floats.py), so dL/dp = (1 - 1)/1e-12 = 0 and the gradient is 0. The trace said "1e-12 rounds to 0 in
    # float8_e4m3fn: the guard is gone", dL/dp = NaN, beside a gradient of 0 (final-user)
    for args in (["5", "1"], ["0.9999999", "1", "--probs"]):
        out = CliRunner().invoke(cli, ["compare", *args, "--dtype", "float8_e4m3fn", "--backend", "torch",
                                       "--format", "json"]).output
        row = next(r for r in json.loads(out)["results"] if r["method"] == "torch_bce")
        steps = {s["name"]: s for s in row["steps"]}
        den = steps["grad: max(p(1-p), 1e-12)"]
        assert den["value"] == float(np.float32(1e-12)) and "in float32" in den["note"], den
        assert "guard is gone" not in den["note"]
        assert steps["grad: dL/dp = (p-y)/max(...)"]["value"] == 0.0
        assert row["grad"] == 0.0


def test_torch_bce_dl_dp_is_rounded_by_torchs_own_float8_cast():
    # x = 40, y = 0: p rounds to 1, so the float32 kernel's dL/dp = (1 - 0)/1e-12 = 1e12, which autograd's cast
    # rounds to the format as torch casts: float8_e4m3fn saturates to 448, float8_e5m2 overflows to inf (torch itself
    # below). sigmoid's backward then gives 448·0 = 0 (e4m3fn) and inf·0 = NaN (e5m2), the gradients torch returns.
    # The trace said dL/dp = NaN (ml_dtypes' rounding) beside "multiplies dL/dp = NaN by p(1-p) = 0: 0" (final)
    import torch

    for name, want_grad in (("float8_e4m3fn", 0.0), ("float8_e5m2", "nan")):
        cast = float(torch.tensor(1e12, dtype=torch.float32).to(FORMATS[name].torch_dtype).float())
        out = CliRunner().invoke(cli, ["compare", "40", "0", "--dtype", name, "--backend", "torch",
                                       "--format", "json"]).output
        row = next(r for r in json.loads(out)["results"] if r["method"] == "torch_bce")
        steps = {s["name"]: s for s in row["steps"]}
        dldp = steps["grad: dL/dp = (p-y)/max(...)"]["value"]
        assert (dldp == "inf" and cast == np.inf) or dldp == cast == 448.0, (name, dldp, cast)
        assert row["grad"] == want_grad, (name, row["grad"])
        if want_grad == 0.0:
            assert "saturated" in steps["dloss/dx"]["note"] and "NaN" not in steps["dloss/dx"]["note"]


def test_probs_logit_of_one_in_e4m3fn_says_it_became_nan():
    # --probs, p = 0.9999999 rounds to 1 in float8_e4m3fn (its largest value below 1 is 0.9375: 1.111₂ × 2^-1), so
    # logit(p) = inf, which e4m3fn cannot hold (no inf, ml_dtypes' round gives NaN): the logit forms get NaN. The
    # note said "rounded to float8_e4m3fn: ... its rounding is part of their error" beside NaN (final-user)
    assert np.isnan(to_float64(FORMATS["float8_e4m3fn"].round(np.array([np.inf])))[0])
    out = CliRunner().invoke(cli, ["compare", "0.9999999", "1", "--probs", "--dtype", "float8_e4m3fn", "--backend",
                                   "numpy", "--format", "json"]).output
    row = next(r for r in json.loads(out)["results"] if r["method"] == "logsumexp")
    first = row["steps"][0]
    assert first["name"] == "x = logit(p), float64" and first["value"] == "nan"
    assert "the logit is inf, which float8_e4m3fn cannot hold (it has no inf): it becomes NaN" in first["note"]


def test_no_float8_note_names_the_familys_own_peers():
    # --loss softmax has one peer, optax; the float8 note spoke of Keras and scikit-learn only (the BCE peers, and
    # not all of them: optax was missing there too) (final-user). Text only: no peer library needs to be installed
    from stabcli.core.peers import skipped_note
    from stabcli.losses import get_family

    fmt = FORMATS["float8_e4m3fn"]
    soft = [m.library for m in get_family("softmax").peer_methods.values()]
    bce = [m.library for m in get_family("bce").peer_methods.values()]
    assert "Keras" not in skipped_note(fmt, soft) and "scikit-learn" not in skipped_note(fmt, soft)
    assert skipped_note(fmt, soft).startswith("no peer rows in float8_e4m3fn: optax (jax) could compute in float8")
    assert all(name in skipped_note(fmt, bce) for name in ("Keras's torch backend", "optax", "scikit-learn"))


def test_nan_where_the_exact_loss_is_beyond_e4m3fn_is_nan_not_ok():
    # x = -96, y = 1, pos_weight 10: the exact loss is 10·softplus(96) = 960 (+ 10·log1p(e^-96), below 1e-40), beyond
    # float8_e4m3fn's largest 448. e4m3fn has no inf, so ml_dtypes rounds 960 to NaN, and the NaN the numpy
    # backend's logsumexp and softplus return (exp(96) = NaN there) used to match that NaN: status ok, 0 bits
    # (final-combos: float8 x --pos-weight; and the same in check, "within tolerance everywhere" beside a NaN mean)
    inp = Inputs(*(np.asarray(v, dtype=np.float64) for v in (-96.0, 1.0, 1.0, 10.0)), reduction="mean")
    rows = rows_by(run_compare(inp, parse_dtypes(["float8_e4m3fn"]), ["numpy", "torch"]))
    assert rows[("numpy", "float8_e4m3fn", "naive")].reference == 960.0
    for method in ("naive", "clamped", "logsumexp", "softplus"):
        row = rows[("numpy", "float8_e4m3fn", method)]
        assert math.isnan(row.loss) and row.status == "nan" and row.error_bits == 8.0, method
    # torch's cast saturates instead: 448, 512 away from 960, outside rtol 4·eps = 0.5 (448 < 960 - 480)
    assert rows[("torch", "float8_e4m3fn", "softplus")].loss == 448.0
    assert rows[("torch", "float8_e4m3fn", "softplus")].status == "inaccurate"


def test_nan_where_the_exact_loss_is_inf_is_nan_in_e4m3fn_with_probs():
    # --probs p = 0, y = 1: the exact loss -log 0 = inf, which e4m3fn rounds to NaN; naive's log(0) is NaN there
    # (no -inf), and was judged ok against it (final-combos: --probs x float8_e4m3fn)
    result = CliRunner().invoke(cli, ["compare", "0", "1", "--probs", "--dtype", "float8_e4m3fn", "--backend", "numpy",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    row = {r["method"]: r for r in json.loads(result.stdout)["results"]}["naive"]
    assert row["reference"] == "inf" and row["loss"] == "nan" and row["status"] == "nan"


def test_nan_in_nan_out_stays_ok_in_e4m3fn():
    # the rule the fix keeps: a NaN loss where the exact value is NaN (NaN in) is the right answer
    from stabcli.core.analysis import Reference, Tolerance, judge

    fmt = FORMATS["float8_e4m3fn"]
    ref = Reference.prepare(np.array([np.nan, 960.0, np.inf]), fmt, Tolerance.for_format(fmt))
    codes = judge(fmt.round(np.array([np.nan, np.nan, np.nan])), ref).status
    assert list(codes) == ["ok", "nan", "nan"]


def test_check_counts_the_nan_beyond_e4m3fn_as_nan(tmp_path):
    np.save(tmp_path / "x.npy", np.array([-96.0, 1.0], dtype=np.float32))
    np.save(tmp_path / "y.npy", np.array([1.0, 1.0], dtype=np.float32))
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--pos-weight", "10",
                                      "--dtype", "float8_e4m3fn", "--backend", "numpy", "--no-grad",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    row = {r["method"]: r for r in json.loads(result.stdout)["results"]}["softplus"]
    # x = 1: 10·softplus(-1) = 3.1326, in range and within tolerance; x = -96: 960, NaN in numpy (see above)
    assert (row["count_ok"], row["count_nan"]) == (1, 1)


def test_beyond_range_note_says_nan_in_a_format_without_inf():
    inp = Inputs(*(np.asarray(v, dtype=np.float64) for v in (-96.0, 1.0, 1.0, 10.0)), reduction="mean")
    notes = " ".join(run_compare(inp, parse_dtypes(["float8_e4m3fn"]), ["numpy"]).notes)
    # the note said "an inf there means the loss overflowed float8_e4m3fn (status inf)": e4m3fn has no inf
    assert "an inf there" not in notes
    assert "960 is beyond float8_e4m3fn's largest value 448" in notes and "NaN in numpy (status nan)" in notes


def test_e4m3fn_saturation_thresholds_under_a_tight_tolerance_say_why_they_moved():
    # float8_e4m3fn has no inf: torch's naive loss where sigmoid saturates is a finite 448, measured as the first
    # logit out of tolerance. With --rtol 0 --atol 0 ordinary rounding leaves the tolerance first, near 0, and the
    # reasons said "differs" (row 2) and "torch computes sigmoid in float32 ... its exp(-x) overflows at 88.72"
    # (row 4), which is not why (final-combos: thresholds --rtol/--atol x float8)
    rows = {t.name: t for t in run_thresholds([FORMATS["float8_e4m3fn"]], rtol=0.0, atol=0.0)}
    for name in ("sigmoid rounds to 1.0, correctly rounded", "sigmoid underflows to 0, correctly rounded"):
        t = rows[name]
        assert abs(t.measured) < abs(t.predicted), name  # 3.5 and -7 predicted (tests/test_floats.py)
        assert t.explanation.startswith("float8_e4m3fn has no inf, so this shows as a finite, saturated 448"), name
    # with the default tolerance both agree exactly, as before
    default = {t.name: t for t in run_thresholds([FORMATS["float8_e4m3fn"]])}
    assert [default[n].explanation for n in ("sigmoid rounds to 1.0, correctly rounded",
                                             "sigmoid underflows to 0, correctly rounded")] == ["agrees exactly"] * 2
