"""`stabcli compare` through click's CliRunner: table, JSON, CSV, and every error path."""

import csv
import io
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from stabcli import __version__
from stabcli.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


def strict_json(text):
    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_1e10_1_tells_the_whole_story():
    result = run("compare", "1e10", "1")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.replace("│", " ").split())  # the answer panel wraps its sentences
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        assert dtype in out
    table = [line.split() for line in result.output.splitlines()]
    backends = {cells[1] for cells in table if cells[:1] == ["naive"] and len(cells) == 6}
    assert backends == {"both"}  # naive: numpy and torch agree on loss and gradient in every dtype, one line each
    assert "sigmoid rounded to exactly 1.0" in out
    assert "log(0) = -inf" in out
    assert "0·(-inf) = NaN" in out
    assert "clamp fired: -inf -> -100" in out
    assert "the clamp hides the NaN" in out
    assert "With target 0 it returns 100 where the true loss is 1e10" in out
    assert "overflows float16 (max 65504) and becomes inf" in out  # float16 cannot hold 1e10 (DESIGN.md)
    assert "9999220736" in out  # 1e10 as stored in bfloat16 (DESIGN.md)


def test_1e10_0_shows_100_against_1e10():
    result = run("compare", "1e10", "0", "--dtype", "float32", "--backend", "torch", "--format", "json")
    rows = {r["method"]: r for r in strict_json(result.output)["results"]}
    assert rows["torch_bce"]["loss"] == 100.0 and rows["torch_bce"]["reference"] == 1e10
    assert rows["torch_bce"]["status"] == "clamped"
    assert rows["naive"]["status"] == "inf"  # -(1-y)·log(1-p) = -log(0) = inf for y = 0


def test_json_is_strict_and_has_the_contract_keys():
    result = run("compare", "1e10", "1", "--format", "json")
    assert result.exit_code == 0
    doc = strict_json(result.output)
    assert doc["command"] == "compare" and doc["reduction"] == "mean"
    assert doc["logits"] == [1e10] and doc["targets"] == [1.0]  # DESIGN.md: "logits": [...]
    assert len(doc["results"]) == 4 * (4 + 6)  # 4 dtypes × (4 numpy methods + 6 torch methods)
    keys = {"backend", "dtype", "method", "input", "input_overflow", "loss", "reference", "abs_error", "rel_error",
            "error_bits", "status", "steps"}
    for row in doc["results"]:
        assert keys <= set(row)
        assert row["status"] in ("ok", "inaccurate", "clamped", "inf", "nan")
        assert all({"name", "value", "note"} <= set(s) for s in row["steps"])
    f16 = [r for r in doc["results"] if r["dtype"] == "float16"]
    assert all(r["input"] == ["inf"] and r["input_overflow"] is True for r in f16)
    naive = next(r for r in doc["results"] if r["dtype"] == "float32" and r["method"] == "naive")
    assert naive["loss"] == "nan" and naive["error_bits"] == 32.0  # NaN vs finite: the format's full width


def test_reduction_none_gives_lists():
    result = run("compare", "1,2,3", "0,1,1", "--reduction", "none", "--format", "json", "--dtype", "float64")
    doc = strict_json(result.output)
    for row in doc["results"]:
        assert len(row["loss"]) == 3 and len(row["status"]) == 3 and len(row["reference"]) == 3
        assert "steps" not in row


@pytest.mark.parametrize("args", [("1", "0"), ("[[12,0,-12]]", "1", "--loss", "softmax")])
def test_one_element_with_reduction_none_gives_lists_too(args):
    """One logit (or one row) with --reduction none is a list of one loss, shown in the per-element tables (it
    once reached the one-element verdict, which takes a number, and ended in a traceback)."""
    for fmt in ("json", "table"):
        result = run("compare", *args, "--reduction", "none", "--format", fmt, "--dtype", "float16")
        assert result.exit_code == 0, result.output
    doc = strict_json(run("compare", *args, "--reduction", "none", "--format", "json", "--dtype", "float16").output)
    assert all(len(row["loss"]) == 1 and len(row["status"]) == 1 for row in doc["results"])


def test_csv_has_a_header_and_a_line_per_row():
    result = run("compare", "-100", "1", "--format", "csv", "--dtype", "float32")
    assert result.exit_code == 0
    lines = list(csv.DictReader(io.StringIO(result.output)))
    assert len(lines) == 10
    naive = next(line for line in lines if line["method"] == "naive" and line["backend"] == "numpy")
    assert naive["loss"] == "inf" and naive["status"] == "inf" and naive["input"] == "-100.0"


def test_negative_numbers_need_no_double_dash():
    result = run("compare", "-100", "1", "--dtype", "float32", "--backend", "torch")
    assert result.exit_code == 0, result.output
    assert "x = -100" in result.output


def test_nested_lists_and_broadcasting():
    result = run("compare", "[[1,2],[3,4]]", "1", "--dtype", "float32", "--format", "json")
    assert result.exit_code == 0, result.output
    assert strict_json(result.output)["logits"] == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["abc", "1"], "'abc'"),
        (["1", "1.5"], "1.5"),
        (["1", "-0.5"], "-0.5"),
        (["1", "nan"], "nan"),
        (["1e400", "1"], "1e400"),
        (["", "1"], "empty"),
        (["[]", "1"], "[]"),
        (["1,,2", "1"], "1,,2"),
        (["[[1,2],[3]]", "1"], "ragged"),
        (["1,2", "0,1,1"], "do not broadcast"),
        (["1", "1", "--weight", "-1"], "-1"),
        (["1", "1", "--weight", "inf"], "inf"),
        (["1", "1", "--pos-weight", "nan"], "nan"),
        (["1", "1", "--dtype", "float8"], "float8"),
        (["1", "1", "--backend", "jax"], "jax"),
        (["1", "1", "--format", "xml"], "xml"),
        (["1", "1", "--reduction", "avg"], "avg"),
        (["1", "1", "--rtol", "-1"], "--rtol"),
        (["1", "1", "--atol", "nan"], "--atol"),
        (["1", "--bogus"], "--bogus"),
        (["1"], "TARGETS"),
        # --steps traces one loss: with several it was silently dropped (final-combos)
        (["9,1", "0,1", "--steps"], "with 2 logits"),
        (["9", "0,1", "--steps"], "with 2 logits"),  # one logit, two targets: two losses
        (["9", "0", "--reduction", "none", "--steps"], "with --reduction none"),
        (["[[1,2,3],[3,2,1]]", "0", "--loss", "softmax", "--steps"], "with 2 rows"),
        (["0.3,0.2", "1", "--probs", "--steps"], "with 2 probabilities"),
    ],
)
def test_bad_input_is_one_error_line_exit_2(args, needle):
    result = run("compare", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert needle in lines[0]
    assert "Traceback" not in result.output


def test_version_and_help():
    assert run("--version").output.strip() == f"stabcli, version {__version__}"
    for args in (["--help"], ["-h"], ["compare", "--help"]):
        result = run(*args)
        assert result.exit_code == 0 and "Example:" in result.output


def test_python_dash_m_and_light_start_up():
    # `stabcli --help` must not import torch, matplotlib or mpmath (start-up speed)
    code = ("import sys; from stabcli.cli import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'mpmath') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    done = subprocess.run([sys.executable, "-m", "stabcli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and __version__ in done.stdout


def test_no_numpy_warning_reaches_stderr():
    done = subprocess.run([sys.executable, "-W", "always", "-m", "stabcli", "compare", "-1e4,0,1e4,inf,-inf,nan",
                           "0,1,0.5,1,0,1", "--reduction", "none", "--format", "json"],
                          capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stderr == ""


def test_summary_names_every_method_that_is_off():
    """Issue 15: the lesson's x = -12, y = 0 in float32 (DESIGN.md: torch's (1-y)·x - logsigmoid(x) gives 5.72e-6
    against the true 6.144e-6); the summary must say that torch_bce_with_logits is the one off there."""
    result = run("compare", "-12", "0", "--dtype", "float32", "--backend", "torch", "--format", "json")
    doc = strict_json(result.output)
    status = {r["method"]: r["status"] for r in doc["results"]}
    assert status["torch_bce_with_logits"] == "inaccurate" and status["softplus"] == "ok"
    summary = " ".join(doc["summary"])
    # the digits: the truth softplus(-12) = mpmath.log1p(mpmath.exp(-12)) = 6.144193478e-6; torch computes
    # -12 - logsigmoid(-12) = -12 + 12.000006144 in float32, whose ulp at 12 is 2**-20, so the sum rounds to
    # 12 + 6·2**-20 and the loss is 6·2**-20 = 5.7220458984375e-6 (printed to 10 digits)
    assert "torch_bce_with_logits gives 5.722045898e-6 (inaccurate)" in summary
    assert "softplus gives" in summary and "(true 6.144193478e-6, ok)" in summary
