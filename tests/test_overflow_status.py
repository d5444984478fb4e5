"""A loss that overflows the dtype is `inf`, even where the exact value also rounds to inf (issue 11, item 4).

float16's largest value is 65504 and every number from 65520 = 65504 + ulp(65504)/2 = 65504 + 32/2 on rounds to inf
(the tie itself too: 65504 = 0x7BFF has an odd last bit). With pos_weight 10 and target 1 the exact loss is
10·softplus(-x), so from x = -6552 on (10·6552 = 65520) no formula can return it in float16: before this rule those
infs were `ok` because the reference rounded to inf as well.
"""

import json
import math

import numpy as np
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.commands.sweep import make_grid, run_sweep
from stabcli.core.analysis import Reference, Tolerance, judge
from stabcli.core.formats import FORMATS


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_compare_says_the_loss_overflowed_float16():
    # exact: 10·softplus(7000) = 70000 + 10·log1p(exp(-7000)), 70000 to every digit shown (mpmath not needed)
    result = run("compare", "-7000", "1", "--pos-weight", "10", "--dtype", "float16", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    rows = {(r["backend"], r["method"]): r for r in doc["results"]}
    for backend in ("numpy", "torch"):
        row = rows[(backend, "softplus")]
        assert row["loss"] == "inf" and row["reference"] == 70000.0
        assert row["status"] == "inf"
        assert row["abs_error"] == "inf" and row["error_bits"] == 16  # full width: an inf against a finite truth
        assert "overflowed float16" in row["verdict"] and "65504" in row["verdict"]
    assert rows[("torch", "torch_bce_with_logits")]["status"] == "inf"
    assert any("beyond float16's largest value 65504" in n for n in doc["notes"])


def test_exact_infinite_limits_stay_ok():
    # DESIGN.md: loss(-inf, y) is +inf for y != 0, an exact limit, not an overflow
    result = run("compare", "-inf", "1", "--dtype", "float16", "--backend", "torch", "--format", "json")
    rows = {r["method"]: r for r in json.loads(result.output)["results"]}
    assert rows["softplus"]["loss"] == "inf" and rows["softplus"]["reference"] == "inf"
    assert rows["softplus"]["status"] == "ok" and rows["naive"]["status"] == "ok"


def test_judge_overflow_rule_in_float64_too():
    # An exact value beyond float64 (2e308) rounds to inf even as the nearest float64: still an overflow when finite.
    fmt = FORMATS["float64"]
    tol = Tolerance.for_format(fmt)
    loss = np.array([math.inf, math.inf])
    finite = Reference.prepare(np.array([math.inf, math.inf]), fmt, tol, exact_finite=np.array([True, False]))
    j = judge(loss, finite)
    assert list(j.status) == ["inf", "ok"]
    assert j.abs_error[0] == math.inf and j.error_bits()[0] == 64


def test_sweep_counts_the_overflow_as_inf():
    fmt = FORMATS["float16"]
    sweep = run_sweep([fmt], ["numpy", "torch"], [1.0], make_grid(-7000, -6000, 2001, "linear"), pos_weight=10.0,
                      grad=False)
    # the float16 values the grid rounds to (spacing 4 from 4096 to 8192), and those whose exact loss overflows
    xs = np.unique(fmt.round(np.linspace(-7000, -6000, 2001)).astype(np.float64))
    over = int(np.count_nonzero(xs <= -6552))  # 10·6552 = 65520: from here the exact loss rounds to inf
    assert over == (7000 - 6552) // 4 + 1  # 113: -7000, -6996, ..., -6552
    for row in sweep.rows:
        if row.method in ("softplus", "torch_bce_with_logits", "logsumexp"):
            assert row.points == xs.size
            assert row.counts["inf"] == over, (row.backend, row.method, row.counts)
            assert row.breakdown.nonfinite_neg == -6552.0
