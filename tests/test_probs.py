"""--probs: the first argument holds probabilities p (issue 11, item 2)."""

import json

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.core.formats import FORMATS
from stabcli.losses.bce.probs import FAMILY, logit64


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_seed_004_probabilities():
    # seed article 004: BCELoss on p = [0.8, 0.2, 0.4], targets [1, 0, 0] is 0.3190 (mean of -log 0.8, -log 0.8,
    # -log 0.6); at p as stored in float32, mpmath:
    #   ps = [mpf(float(np.float32(v))) for v in (0.8, 0.2, 0.4)]; (-log(ps[0]) - log(1-ps[1]) - log(1-ps[2]))/3
    with mpmath.workdps(30):
        ps = [mpmath.mpf(float(np.float32(v))) for v in (0.8, 0.2, 0.4)]
        exact = float((-mpmath.log(ps[0]) - mpmath.log(1 - ps[1]) - mpmath.log(1 - ps[2])) / 3)
    assert abs(exact - 0.3190375) < 1e-7
    result = run("compare", "0.8,0.2,0.4", "1,0,0", "--probs", "--dtype", "float32", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["probs"] == [0.8, 0.2, 0.4]
    # DESIGN.md's "logits": the logits the logit methods start from, logit(p) = log(p/(1-p)) of p as typed (float64),
    # here against mpmath at 30 digits, correctly rounded to float64 or one ulp off
    with mpmath.workdps(30):
        want = [float(mpmath.log(mpmath.mpf(v) / (1 - mpmath.mpf(v)))) for v in (0.8, 0.2, 0.4)]
    assert all(abs(got - w) <= abs(w) * 2**-52 for got, w in zip(doc["logits"], want)), (doc["logits"], want)
    rows = {(r["backend"], r["method"]): r for r in doc["results"]}
    for key in (("numpy", "naive"), ("torch", "naive"), ("torch", "torch_bce")):
        assert abs(rows[key]["loss"] - exact) <= 2 * 2**-24 * exact, key  # float32: within 2 ulps
        assert rows[key]["reference"] == exact and rows[key]["status"] == "ok"
    assert rows[("torch", "torch_bce")]["loss"] == float(np.float32(exact))  # BCELoss rounds correctly here
    for (backend, method), row in rows.items():
        assert row["grad_wrt"] == ("p" if method in ("naive", "clamped", "torch_bce") else "x")
        assert row["status"] == "ok", (backend, method)


def test_p_that_rounds_to_one_is_said():
    # float16's largest value below 1 is 1 - 2^-11 = 0.99951171875; 0.9999999 is nearer to 1
    result = run("compare", "0.9999999", "0", "--probs", "--dtype", "float16", "--backend", "torch")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.replace("│", " ").split())
    assert "probability 0.9999999 is stored as 1.0 in float16" in out
    # -log(1 - 0.9999999) at the float64 the user typed: mpmath.log(1 / (1 - mpf(0.9999999))) = 16.1180956...
    assert "at the typed p the true loss is 16.11809" in out  # the answer (issue 12: answer first)
    assert "p = 1 exactly in float16: 1 - p is 0" in out
    every = run("compare", "0.9999999", "0", "--probs", "--dtype", "float16", "--backend", "torch", "--steps")
    assert "so the logit is inf" in " ".join(every.output.replace("│", " ").split())  # --steps: every trace


def test_trace_says_the_logit_was_recovered():
    result = run("compare", "0.3", "1", "--probs", "--dtype", "float32", "--backend", "torch", "--format", "json")
    rows = {r["method"]: r for r in json.loads(result.output)["results"]}
    first = rows["softplus"]["steps"][0]
    assert first["name"] == "x = logit(p), float64"
    assert "recovered from p in float64" in first["note"]
    # logit(float32(0.3)) rounded to float32
    assert first["value"] == float(np.float32(float(mpmath.log(mpmath.mpf(float(np.float32(0.3))) /
                                                                (1 - mpmath.mpf(float(np.float32(0.3))))))))
    assert rows["torch_bce"]["steps"][0]["name"] == "p (given)"


@pytest.mark.parametrize("p", [1e-30, 1e-5, 0.1, 0.25, 0.3, 0.4999, 0.5, 0.5001, 0.7, 0.75, 0.9, 1 - 2**-20,
                               1 - 2**-52])
def test_logit64_is_accurate(p):
    # against mpmath at 50 digits: within 4 float64 ulps (no cancellation near 0.5, where log(p) - log1p(-p) has it)
    with mpmath.workdps(50):
        exact = mpmath.log(mpmath.mpf(p) / (1 - mpmath.mpf(p)))
        got = float(logit64(np.array(p)))
        assert abs(mpmath.mpf(got) - exact) <= 4 * abs(exact) * 2**-52 + 1e-300


def test_logit64_limits():
    assert list(logit64(np.array([0.0, 1.0]))) == [-np.inf, np.inf]
    assert np.isnan(logit64(np.array(np.nan)))


def test_torch_bce_is_the_real_kernel_on_p():
    rng = np.random.default_rng(11)
    fmt = FORMATS["float32"]
    p = fmt.round(rng.uniform(0, 1, 64))
    y = fmt.round(rng.uniform(0, 1, 64))
    arrays = FAMILY.round_inputs(fmt, {"probs": p, "targets": y, "weight": np.ones(64), "pos_weight": np.ones(64)})

    ev, ops = FAMILY.evaluate("torch", fmt, "torch_bce", arrays)
    want = F.binary_cross_entropy(torch.from_numpy(p), torch.from_numpy(y), reduction="none").numpy()
    assert np.array_equal(ops.to_numpy(ev.loss), want)


def test_gradient_with_respect_to_p():
    # d/dp of -log p is -1/p: at p = 0.8 (exact in float64), -1.25
    result = run("compare", "0.8", "1", "--probs", "--dtype", "float64", "--format", "json")
    rows = {(r["backend"], r["method"]): r for r in json.loads(result.output)["results"]}
    bce = rows[("torch", "torch_bce")]
    assert bce["grad_reference"] == -1.25 and bce["grad"] == -1.25 and bce["grad_status"] == "ok"
    # the logit forms: d/dx = sigmoid(x) - 1 at x = logit(0.8), -0.2 to float64 accuracy
    assert abs(rows[("torch", "softplus")]["grad_reference"] + 0.2) < 1e-15


@pytest.mark.parametrize("args, message", [
    (["compare", "1.5", "0", "--probs"], "probability '1.5' is outside [0, 1]"),  # as typed (review-user)
    (["compare", "nan", "0", "--probs"], "probability 'nan'"),
    (["compare", "-0.1,0.5", "0", "--probs"], "probability '-0.1' (in '-0.1,0.5')"),
    (["compare", "inf", "0", "--probs"], "probability 'inf'"),
    (["compare", "0.5", "0", "--probs", "--loss", "softmax"], "--probs is for --loss bce"),
    (["compare", "0.5", "0", "--probs", "--peers"], "--peers takes logits"),
])
def test_probs_errors(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and message in result.output and len(result.output.splitlines()) == 1


def test_correctly_rounded_line_names_each_gradient():
    # p = 0, y = 1: the true loss is -log 0 = inf; naive's gradient is d loss/d p = -y/p = -inf, softplus's is
    # d loss/d x = sigmoid(x) - y at x = logit(0) = -inf, which is -1 (exact limits, no mpmath needed). Both are
    # correctly rounded, but they are two different numbers: one line each (final-user: one line said "gradient
    # -inf" for both).
    result = run("compare", "0", "1", "--probs", "--dtype", "float32", "--backend", "torch")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "naive: loss inf and gradient -inf (d loss/d p), correctly rounded." in lines
    assert "softplus: loss inf and gradient -1 (d loss/d x), correctly rounded." in lines
