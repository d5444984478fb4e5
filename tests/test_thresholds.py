"""`thresholds`: predictions from the format constants against the sweep engine's measurements."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.core.formats import FORMATS
from stabcli.commands.thresholds import run_thresholds
from stabcli.losses import get_family
from stabcli.losses.bce.thresholds import predict


@pytest.fixture(scope="module")
def measured16():
    return {(t.dtype, t.name): t for t in run_thresholds([FORMATS["float16"], FORMATS["bfloat16"]])}


def test_predictions_are_the_design_facts():
    # DESIGN.md "Facts with their sources" for all four dtypes (the formulas are in thresholds.py).
    facts = {"float16": (7.625, 8.3203125, -11.09375), "bfloat16": (5.5625, 6.25, -89.0),
             "float32": (16.63553237915039, None, -88.72283935546875),
             "float64": (36.73680056967711, None, -709.7827128933841)}
    for name, (one_op, one_cr, overflow) in facts.items():
        pred = {t.name: t.predicted for t in predict(FORMATS[name])}
        assert pred["sigmoid rounds to 1.0, op by op"] == one_op
        assert pred["exp(-x) overflows, so op-by-op sigmoid is 0"] == overflow
        if one_cr is not None:
            assert pred["sigmoid rounds to 1.0, correctly rounded"] == one_cr


def test_exact_thresholds_agree_in_16_bits(measured16):
    # Where the theory is exact (rounding of sigmoid, overflow of exp, the clamp), prediction == measurement,
    # except bfloat16's torch underflow: torch's float32 exp(-x) overflows (x <= -88.72 -> -89.0 in bfloat16)
    # before sigmoid reaches bfloat16's underflow at -ln(2**134 - 1) = -92.88 -> -93.0.
    for (dtype, name), t in measured16.items():
        if name.startswith("logsumexp"):
            continue
        if (dtype, name) == ("bfloat16", "sigmoid underflows to 0, correctly rounded"):
            assert (t.predicted, t.measured) == (-93.0, -89.0)
            continue
        assert t.measured == t.predicted, (dtype, name)


def test_logsumexp_accuracy_threshold_within_theory(measured16):
    # Predicted x = ln(e^(eps/rtol) - 1) = ln(e^(1/4) - 1) = -1.2587 (default rtol = 4 eps). The error there is
    # about one eps, of the same size as the tolerance, so the first failing logit lies at or beyond it; the
    # roundings (a few half-ulps) put it within 3/4 further out.
    for dtype in ("float16", "bfloat16"):
        t = measured16[(dtype, "logsumexp loses relative accuracy (target 0; an estimate)")]
        assert t.predicted == pytest.approx(math.log(math.expm1(0.25)))
        assert t.predicted - 0.75 <= t.measured <= t.predicted


def test_cli_json_and_table():
    runner = CliRunner()
    result = runner.invoke(cli, ["thresholds", "--dtype", "float16", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    # every prediction of bce/thresholds.py, in its order: 6 loss thresholds (naive's sigmoid saturating and
    # underflowing, op by op and correctly rounded; the clamp; logsumexp's accuracy) and 4 gradient ones
    # (grad_thresholds.py; tests/test_sweep_grad.py checks their values)
    predicted = get_family("bce").predict_thresholds(FORMATS["float16"])
    assert doc["command"] == "thresholds" and [r["name"] for r in doc["results"]] == [t.name for t in predicted]
    assert [r["measured_by"]["quantity"] for r in doc["results"]] == ["loss"] * 6 + ["gradient"] * 4
    assert {"predicted", "measured", "formula", "explanation", "measured_by"} <= set(doc["results"][0])
    table = runner.invoke(cli, ["thresholds", "--dtype", "bfloat16"])
    assert table.exit_code == 0 and "measured differs" in table.stdout


def test_cli_error():
    result = CliRunner().invoke(cli, ["thresholds", "--rtol", "nan"])
    assert result.exit_code == 2 and result.output.startswith("Error: --rtol")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_logsumexp_estimate_for_every_tolerance(dtype):
    # ln(e^(eps/rtol) - 1): at rtol 0 no rounding error is within tolerance, so the estimate is every logit (+inf);
    # it used to divide by zero. A tiny rtol used to overflow expm1 (eps/rtol > 709.78); there
    # ln(e^a - 1) = a + ln(1 - e^-a) is a itself to the last bit (e^-a < 1e-304).
    fmt = FORMATS[dtype]
    name = "logsumexp loses relative accuracy (target 0; an estimate)"
    lse = {rtol: {t.name: t.predicted for t in predict(fmt, rtol)}[name] for rtol in (0.0, 1e-300, fmt.default_rtol)}
    assert lse[0.0] == math.inf
    assert lse[1e-300] == fmt.eps / 1e-300
    assert lse[fmt.default_rtol] == math.log(math.expm1(1 / 4))  # default rtol = 4·eps: ln(e^(1/4) - 1)


def test_rtol_zero_is_valid():
    result = CliRunner().invoke(cli, ["thresholds", "--dtype", "float16", "--rtol", "0", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)["results"]}
    assert rows["logsumexp loses relative accuracy (target 0; an estimate)"]["predicted"] == "inf"


def _thresholds(*args):
    import json

    from click.testing import CliRunner

    from stabcli.cli import cli

    result = CliRunner().invoke(cli, ["thresholds", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["results"]


def test_float8_is_named_only_in_the_float8_tables():
    # the logsumexp explanation said "(in float8, whose few bits round e^x itself coarsely ...)" in every dtype
    for dtype in ("float16", "float32"):
        text = " ".join(r["explanation"] + r["formula"] for r in _thresholds("--dtype", dtype))
        assert "float8" not in text, dtype
    e5 = [r for r in _thresholds("--dtype", "float8_e5m2") if r["name"].startswith("logsumexp")]
    assert e5 and all("float8_e5m2's few bits" in r["explanation"] for r in e5 if r["measured"] != r["predicted"])


def test_e4m3fn_softmax_rows_say_nan_where_there_is_no_inf():
    # float8_e4m3fn has no inf (its only NaN pattern is S.1111.111): exp(g)'s overflow is NaN in ml_dtypes, so
    # "naive's inf/inf is NaN" and "log(softmax) = -inf" were not what happens there
    rows = _thresholds("--loss", "softmax", "--dtype", "float8_e4m3fn")
    assert all("inf/inf" not in r["name"] and "= -inf" not in r["name"] for r in rows), [r["name"] for r in rows]
    assert rows[0]["name"].startswith("exp(g) overflows: float8_e4m3fn has no inf")
    assert all("has no -inf" in r["formula"] for r in rows if "-inf" in r["formula"])
    # ... and float16 keeps its inf/inf (65504 overflows to inf there)
    assert _thresholds("--loss", "softmax", "--dtype", "float16")[0]["name"] == \
        "exp(g) overflows: naive's inf/inf is NaN (class 0)"
