"""The layout's promise: a new loss family is its own package plus one registry line, nothing else.

``tests/toyfocal.py`` is a binary focal loss written against ``stabcli.losses.base`` only. Registering it (one
entry in ``REGISTRY``, as a contributor adds one line to ``stabcli/losses/__init__.py``) makes it a ``--loss``
choice of compare, sweep, thresholds and plot, with no edit to the engines, the views or the CLI.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from stabcli import losses
from stabcli.cli import cli


@pytest.fixture
def focal(monkeypatch):
    monkeypatch.setitem(losses.REGISTRY, "focal", "toyfocal")  # the one line
    return losses.get_family("focal")


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_registry_line_makes_it_a_choice(focal):
    assert "focal" in losses.family_names()
    assert "focal" in run("compare", "--help")


def test_compare_runs_a_new_family(focal):
    doc = json.loads(run("compare", "40", "0", "--loss", "focal", "--dtype", "float32", "--format", "json"))
    assert doc["loss"] == "focal"
    rows = {(r["backend"], r["method"]): r for r in doc["results"]}
    assert set(rows) == {(b, m) for b in ("numpy", "torch") for m in ("naive", "stable")}
    # mpmath: x = mpf(40); p = 1/(1+exp(-x)); p**2*log1p(exp(x)) = 39.99999999999999966438 -> 40.0 in float64
    for backend in ("numpy", "torch"):
        stable, naive = rows[(backend, "stable")], rows[(backend, "naive")]
        assert stable["reference"] == 40.0 and stable["loss"] == 40.0 and stable["status"] == "ok"
        # float32 sigmoid(40) is exactly 1, so log(1 - p) = log(0) = -inf: the engines' generic judgement says inf
        assert naive["loss"] == "inf" and naive["status"] == "inf"
        assert naive["fp_events"]["divide_by_zero"] == 1
        # the gradient from core.autodiff's defaults against mpmath.diff: d/dx p²·softplus(x) at 40 is
        # 2p²(1-p)·softplus(x) + p³ = 1 + 77·e^-40 = 1.000000000000000327 -> 1.0000000000000002 in float64, 1 in float32
        assert stable["grad_reference"] == 1.0000000000000002
        assert stable["grad"] == 1.0 and stable["grad_status"] == "ok"
    table = run("compare", "40", "0", "--loss", "focal", "--dtype", "float32")
    assert "naive" in table and "log(0) = -inf" in table  # the plain notes every family gets


def test_sweep_thresholds_and_plot_run_a_new_family(focal, tmp_path):
    doc = json.loads(run("sweep", "--loss", "focal", "--dtype", "float64", "--points", "41", "--min", "-50",
                         "--max", "50", "--format", "json"))
    rows = {(r["backend"], r["target"], r["method"]): r for r in doc["results"]}
    # naive's sigmoid rounds to 1.0 from x = 36.73680056967711 in float64 (DESIGN.md), so log(1 - p) = -inf there
    assert rows[("numpy", 0.0, "naive")]["breakdown"]["nonfinite_pos"] == 36.73680056967711
    assert rows[("numpy", 0.0, "stable")]["count_inf"] == 0
    assert json.loads(run("thresholds", "--loss", "focal", "--dtype", "float16", "--format", "json"))["results"] == []
    written = run("plot", "--loss", "focal", "--dtype", "float64", "--backend", "numpy", "--format", "svg",
                  "--out", str(tmp_path)).split()
    assert [p.rsplit("/", 1)[1] for p in written] == ["focal_float64_numpy.svg", "focal_breakdown_overview.svg"]


def test_a_family_option_names_the_families_that_take_it(focal):
    """The hint comes from the registry (each family's ``options``), not from a name written in the CLI."""
    result = CliRunner().invoke(cli, ["sweep", "--loss", "focal", "--classes", "4"])
    assert result.exit_code == 2
    assert "--classes is not an option of --loss focal; it is for --loss softmax" in result.output


def test_slides_are_refused_for_a_family_without_them(focal, tmp_path):
    result = CliRunner().invoke(cli, ["plot", "--loss", "focal", "--slide", "loss", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "--slide draws the slides of --loss bce only; drop it with --loss focal" in result.output
    assert not (tmp_path / "s").exists()
