"""`stabcli compare` for one logit answers first: the answer, one table of everything, one trace (issue 12).

The shape of the default output (what the first screenful says, that it fits 80 columns and 80 lines in a pipe),
which dtype and backend the answer and trace are about, and what --steps, --no-steps, JSON and CSV keep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.commands.compare import focus_of, run_compare
from stabcli.core.formats import FORMATS
from stabcli.losses.bce import Inputs


def run(*args):
    return CliRunner().invoke(cli, list(args))


def piped(*args) -> str:
    """What the command prints into a pipe with COLUMNS=80 (as the README's examples are made)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "LINES", "TERM")}
    env["COLUMNS"] = "80"
    done = subprocess.run([sys.executable, "-m", "stabcli", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def test_1e10_1_fits_a_screen_and_answers_in_the_first_25_lines():
    out = piped("compare", "1e10", "1")
    lines = out.splitlines()
    assert len(lines) <= 80, len(lines)
    assert max(len(line) for line in lines) <= 80
    head = flat("\n".join(lines[:25]))
    # DESIGN.md's 1e10 story, float32 and torch: naive NaN, BCELoss's -100 clamp gives 0, and 100 for target 0
    assert "Answer (float32, torch)" in head
    assert "naive gives NaN" in head
    assert "clamps the -inf log to -100, so 0·(-100) = 0 and it returns 0: the clamp hides the NaN" in head
    assert "With target 0 it returns 100 where the true loss is 1e10" in head


def test_1e10_0_answers_100_against_1e10_first():
    out = run("compare", "1e10", "0").output  # rich's width outside a terminal, COLUMNS unset: 80
    lines = out.splitlines()
    assert len(lines) <= 80 and max(len(line) for line in lines) <= 80
    head = flat("\n".join(lines[:25]))
    assert "BCELoss (torch_bce) returns 100 where the true loss is 1e10" in head
    assert "naive gives inf" in head


def test_the_table_has_every_dtype_backend_and_method():
    result = run("compare", "1e10", "1")
    rows = [line.split() for line in result.output.splitlines()]
    # the table's rows: [dtype] method backend loss status grad grad-status; 'both' where numpy and torch agree
    table = [r for r in rows if len(r) in (6, 7) and r[-5] in ("numpy", "torch", "both")]
    seen = {(r[-6], r[-5]) for r in table}
    for method in ("naive", "clamped", "logsumexp", "softplus"):
        assert (method, "both") in seen or {(method, "numpy"), (method, "torch")} <= seen, method
    for method in ("torch_bce", "torch_bce_with_logits"):
        assert (method, "torch") in seen
    assert sum(r[-6] == "naive" for r in table) == 4  # one per dtype: numpy and torch agree on 1e10 in each
    assert sum(r[:2] == [d, "exact"] for r in rows for d in FORMATS) == 4  # the exact values per dtype
    # clamped: the same loss in both backends, but the gradient differs (numpy 0, torch NaN), so two lines
    clamped = [r for r in table if r[-6] == "clamped" and r[-5] == "torch"]
    assert len(clamped) == 4 and all(r[-2:] == ["NaN", "nan"] for r in clamped)


def test_default_trace_is_the_focus_only_and_steps_shows_every_trace():
    default = run("compare", "1e10", "1").output
    assert default.count("step by step") == 1 and "step by step: float32, torch" in default
    assert "clamp fired: -inf -> -100" in default  # the clamped method's trace, float32 torch
    every = run("compare", "1e10", "1", "--steps").output
    assert every.count("step by step") == 4  # one trace table per dtype, numpy and torch side by side
    assert "Answer (float32, torch)" in every and "What this shows, dtype by dtype" in every
    none = run("compare", "1e10", "1", "--no-steps").output
    assert "step by step" not in none and "Answer (float32, torch)" in none


def test_focus_is_float32_torch_when_they_ran_else_the_first_that_ran():
    def focus(dtypes, backends):
        inputs = Inputs(np.array([40.0]), np.array([0.0]), np.ones(1), np.ones(1))
        return run_compare(inputs, [FORMATS[d] for d in dtypes], tuple(backends)).focus

    assert focus(["float16", "float32"], ["numpy", "torch"]) == ("float32", "torch")
    assert focus(["float16", "float64"], ["numpy", "torch"]) == ("float16", "torch")
    assert focus(["float64"], ["numpy"]) == ("float64", "numpy")
    assert focus_of([]) is None
    out = run("compare", "40", "0", "--dtype", "float64", "--dtype", "bfloat16", "--backend", "numpy").output
    assert "Answer (bfloat16, numpy)" in out and "step by step: bfloat16, numpy" in out


def test_json_and_csv_keep_everything():
    doc = json.loads(run("compare", "1e10", "1", "--format", "json").output)
    assert doc["answer"]["dtype"] == "float32" and doc["answer"]["backend"] == "torch"
    assert any("the clamp hides the NaN" in line for line in doc["answer"]["lines"])
    assert len(doc["summary"]) == 4  # every dtype's summary, as --steps shows it
    assert all(row["steps"] for row in doc["results"])  # every row's trace, not only the focus's
    lines = run("compare", "1e10", "1", "--format", "csv").output.splitlines()
    assert len(lines) == 1 + 4 * (4 + 6)
    no_steps = json.loads(run("compare", "1e10", "1", "--format", "json", "--no-steps").output)
    assert all("steps" not in row for row in no_steps["results"])


def test_several_elements_keep_their_per_dtype_tables():
    out = run("compare", "1,2,3", "0,1,1", "--dtype", "float32").output
    assert "Answer" not in out and "float32  x = 1, 2, 3" in out
    assert "float32  gradient d loss / d x" in out


def test_ml_dtypes_is_imported_only_for_bfloat16():
    # importing ml_dtypes registers its numpy ufunc loops (0.5-0.9 s for ml_dtypes 0.7.0), so only a bfloat16 value
    # may load it: the seed's float32/torch compare starts without it
    code = ("import sys; from click.testing import CliRunner; from stabcli.cli import cli\n"
            "def run(*args):\n"
            "    r = CliRunner().invoke(cli, list(args)); assert r.exit_code == 0, r.output\n"
            "    return 'ml_dtypes' in sys.modules\n"
            "print(run('compare', '1e10', '1', '--dtype', 'float32'), run('sweep', '--dtype', 'float16', '--points',"
            " '11'), run('compare', '1e10', '1', '--dtype', 'bfloat16', '--backend', 'torch'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "True"]


def test_gc_freeze_only_when_stabcli_is_its_own_process():
    # As a process (main(), prog name 'stabcli'), compare freezes torch's objects out of the garbage collector's
    # walks (start-up and exit time); invoked inside a host process (here CliRunner) it leaves the host's gc alone.
    code = ("import atexit, gc, sys; from stabcli.cli import main\n"
            "atexit.register(lambda: print(gc.get_freeze_count() > 0))\n"
            "sys.argv = ['stabcli', 'compare', '1', '1', '--dtype', 'float32', '--format', 'csv']\n"
            "main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"
    import gc

    before = gc.get_freeze_count()
    assert run("compare", "1", "1", "--dtype", "float32").exit_code == 0
    assert gc.get_freeze_count() == before


STATUS_WORDS = {"ok", "inaccurate", "clamped", "inf", "nan", "refused"}


def overview_rows(out: str) -> list[list[str]]:
    """The method lines of the answer-first table (after its 'method backend loss ...' head, up to a blank line),
    split into cells: method, backend, loss, status, grad, grad status (a vector's status: 'nan (3/3)')."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["method", "backend", "loss"])
    rows = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        cells = line.split()
        if line.startswith("  ") and cells[0] != "note:" and cells[1] in ("numpy", "torch", "both"):  # no dtype or note
            rows.append(cells)
    return rows


@pytest.mark.parametrize("args", [
    ("9", "0", "--dtype", "float16", "--backend", "torch"),  # clamped
    ("9", "0", "--autocast", "float16"),  # refused
    ("9", "0", "--dtype", "float8_e4m3fn"),  # inaccurate, and the widest dtype name
    ("1e10", "1", "--dtype", "bfloat16"),
    ("[[12,0,-12]]", "1", "--loss", "softmax", "--dtype", "float16"),  # vector gradients: 'nan (3/3)'
    ("0.8", "1", "--probs", "--dtype", "bfloat16"),  # 9-character losses and gradients
])
def test_every_status_word_is_whole_in_80_columns(args):
    out = piped("compare", *args)
    assert max(len(line) for line in out.splitlines()) <= 80
    rows = overview_rows(out)
    assert rows, out
    for cells in rows:
        assert "…" not in cells[3] and cells[3] in STATUS_WORDS, cells  # the loss's status
        if cells[4] != "-":  # a refused method has no gradient
            assert cells[5] in STATUS_WORDS, cells
    statuses = {cells[3] for cells in rows} | {cells[5] for cells in rows if len(cells) > 5}
    if "--autocast" in args:
        assert "refused" in statuses
    if "float8_e4m3fn" in args:
        assert "inaccurate" in statuses and "clamped" in statuses
