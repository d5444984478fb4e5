"""`stabcli sweep --severity training`: inf/NaN and stalled gradients ranked before mere inaccuracy (issue 12).

The expected logits are DESIGN.md's facts: sigmoid rounds to 1.0 from 16.63553237915039 (float32) and from
8.3203125 in torch's float16; exp(t) overflows from 88.72283935546875 (float32) and 11.09375 (float16).
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.commands import severity
from stabcli.commands.sweep import logit_chunks, make_grid, run_sweep
from stabcli.core.formats import FORMATS, to_float64

F32 = FORMATS["float32"]


@pytest.fixture(scope="module")
def f32_torch():
    """float32, torch, stabcli sweep's default grid, targets 0 and 1: {(target, method): row}."""
    sweep = run_sweep([F32], ["torch"], [0.0, 1.0], make_grid())
    return {(r.target, r.method): r for r in sweep.rows}


def test_bceloss_stalls_where_sigmoid_saturates_and_the_truth_is_1(f32_torch):
    t = f32_torch[(0.0, "torch_bce")].training
    assert t.cls == "stalls" and t.count_nonfinite == 0 and t.count_stalled > 0
    # p = 1 from 16.63553237915039: (p-y)/1e-12 times p(1-p) = 0 is 0; the truth sigmoid(x) is 1 to float32
    assert (t.break_pos, t.break_pos_kind) == (16.63553237915039, "grad 0")
    assert t.truth_pos == pytest.approx(1.0, abs=F32.eps)
    # every stalled point is a vanished gradient, and vanished ones are counted among the gradient's counts
    assert t.count_stalled <= f32_torch[(0.0, "torch_bce")].grad.counts["vanished"]


def test_bce_with_logits_vanishing_below_eps_is_not_a_stall(f32_torch):
    # target 1, x >= 16.63553237915039: sigmoid(x) - 1 = 0 where the truth is -sigmoid(-x) <= -5.96e-8 in size,
    # below float32's eps = 2^-23: vanished (the accuracy view counts it), but no news for training
    row = f32_torch[(1.0, "torch_bce_with_logits")]
    assert row.grad.counts["vanished"] > 0 and row.grad.breakdown.vanished_pos == 16.63553237915039
    assert row.grad.breakdown.stalled_pos is None
    assert row.training.cls == "inaccurate" and row.training.count_stalled == 0
    assert severity.stall_floor(row_case(row)) == F32.eps


def row_case(row):
    from stabcli.losses import get_family

    return get_family().sweep_case(FORMATS[row.dtype], row.target)


def test_naive_diverges_at_saturation_and_exp_overflow(f32_torch):
    t0 = f32_torch[(0.0, "naive")].training
    # target 0: -(1-y)·log(1-p) = -log(0) = inf once p = 1; for x <= -88.72283935546875 torch.sigmoid's exp(-x)
    # overflows, p = 0, and y·log(p) = 0·(-inf) = NaN
    assert (t0.break_pos, t0.break_pos_kind) == (16.63553237915039, "loss inf")
    assert (t0.break_neg, t0.break_neg_kind) == (-88.72283935546875, "loss NaN")
    row = f32_torch[(0.0, "naive")]
    assert t0.count_nonfinite == row.counts["inf"] + row.counts["nan"]  # its gradient breaks at the same points


def test_ranking_puts_nan_inf_then_stalls_first(f32_torch):
    rows = [r for (t, _), r in f32_torch.items() if t == 0.0]
    order = [r.method for r in severity.ranked(rows)]
    assert order[:3] == ["naive", "clamped", "torch_bce"]
    assert [r.training.cls for r in severity.ranked(rows)][:3] == ["diverges", "diverges", "stalls"]
    assert {r.training.cls for r in severity.ranked(rows)[3:]} <= {"inaccurate", "ok"}


def test_float16_exhaustive(exhaustive16):
    # torch's float16 BCELoss gradient, target 0: NaN from 8.3203125 (1e-12 is 0 in float16, DESIGN.md)
    t = exhaustive16[("float16", "torch", 0.0, "torch_bce")].training
    assert (t.cls, t.break_pos, t.break_pos_kind) == ("diverges", 8.3203125, "grad NaN")
    # op by op, the clamped form's gradient is 0 from 7.625 (saturation) where the truth is about 1: a stall,
    # before its NaN from -11.09375 on the other side (exp(-x) overflows, p = 0, 0·inf)
    c = exhaustive16[("float16", "numpy", 0.0, "clamped")].training
    assert (c.break_pos, c.break_pos_kind) == (7.625, "grad 0")
    assert (c.break_neg, c.break_neg_kind) == (-11.09375, "grad NaN")
    assert c.cls == "diverges"
    assert exhaustive16[("float16", "numpy", 0.0, "softplus")].training.cls in ("ok", "inaccurate")


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_cli_table_fits_80_columns_and_says_one_line_per_target():
    result = run("sweep", "--dtype", "float32", "--backend", "torch", "--severity", "training")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    flat = " ".join(result.output.split())
    for target in ("0", "1"):
        assert f"float32 (torch), target {target}, for training:" in flat
    assert ("torch_bce stalls (grad 0 from x ≥ 16.63553237915039 where the truth is 1)" in flat)
    table = [line.split() for line in lines]
    naive = next(cells for cells in table if cells[:2] == ["naive", "diverges"])
    # naive's loss is inf/NaN from the DESIGN.md breakdowns x >= 16.63553237915039 and x <= -88.72283935546875
    # on: its count is the default grid's float32 logits out there (695 + 513 = 1208)
    xs = to_float64(np.concatenate(list(logit_chunks(make_grid(), FORMATS["float32"]))))
    beyond = np.count_nonzero(xs >= 16.63553237915039) + np.count_nonzero(xs <= -88.72283935546875)
    assert naive[2] == str(beyond) and naive[3:5] == ["16.635532", "loss"]


def test_cli_json_csv_and_errors():
    result = run("sweep", "--dtype", "bfloat16", "--points", "101", "--format", "json", "--severity", "training")
    doc = json.loads(result.output)
    assert doc["severity"] == "training" and len(doc["training_summary"]) == 4  # 2 backends × 2 targets
    for row in doc["results"]:
        assert set(row["training"]) == {"class", "count_nonfinite", "count_stalled", "break_pos", "break_pos_kind",
                                        "break_neg", "break_neg_kind"}
        assert row["training"]["class"] in severity.CLASSES
    lines = list(csv.DictReader(io.StringIO(run("sweep", "--dtype", "bfloat16", "--points", "101",
                                                "--format", "csv").output)))
    assert all(line["training_class"] in severity.CLASSES for line in lines)
    no_grad = json.loads(run("sweep", "--dtype", "float16", "--points", "101", "--format", "json",
                             "--no-grad").output)
    assert all(row["training"] is None for row in no_grad["results"]) and no_grad["training_summary"] is None
    bad = run("sweep", "--dtype", "float16", "--severity", "training", "--no-grad")
    assert bad.exit_code == 2 and bad.output.strip().splitlines()[0].startswith("Error: --severity training")
    assert len(bad.output.strip().splitlines()) == 1
    bad = run("sweep", "--severity", "speed")
    assert bad.exit_code == 2 and "speed" in bad.output


def test_softmax_training_header_names_the_gap():
    # the softmax sweep varies the gap g of the rows [g, 0, 0] and its columns say g≥/g≤; the training view's header
    # said "logits" and "breaks x≥/x≤: the logit closest to 0" above them (final-user)
    from click.testing import CliRunner

    from stabcli.cli import cli

    out = CliRunner().invoke(cli, ["sweep", "--loss", "softmax", "--dtype", "float16", "--backend", "numpy",
                                   "--points", "41", "--severity", "training"]).output
    head = " ".join(out.split("float16 ·")[0].split())
    assert "41 log-spaced values of g from" in head and "breaks g≥/g≤: the g closest to 0" in head, head
    assert "logit" not in head and "x≥" not in head
