"""stabcli as a script uses it: --format json and csv across options (strict JSON, CSV cells that round-trip,
the same number in both). Each test pins a defect found by piping the real commands."""

from __future__ import annotations

import csv
import io
import json
import math

from click.testing import CliRunner

from stabcli.cli import cli


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def strict(text: str):
    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_compare_csv_leaves_a_refused_rows_missing_numbers_empty_as_json_has_null():
    # --autocast float16 refuses torch_bce (torch's BCELoss ban); JSON has loss null, the CSV cell was 'None'
    args = ("compare", "9", "0", "--autocast", "float16", "--backend", "torch")
    doc = strict(run(*args, "--format", "json"))
    row = next(r for r in doc["results"] if r["method"] == "torch_bce")
    assert row["status"] == "refused" and row["loss"] is None and row["grad"] is None
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(run(*args, "--format", "csv")))}
    refused = rows["torch_bce"]
    assert refused["status"] == "refused"
    for key in ("loss", "abs_error", "rel_error", "error_bits", "grad", "grad_reference", "grad_abs_error",
                "grad_error_bits"):
        assert refused[key] == "", (key, refused[key])
    assert "None" not in run(*args, "--format", "csv")


def test_compare_json_rows_of_several_elements_have_one_key_set_a_refused_row_included():
    # README: `steps` and `verdict` are there for a single element only; a row autocast refused had `steps: []`,
    # `verdict` and `grad_verdict` for several elements too, where no other row has them
    doc = strict(run("compare", "9,1e5", "0,1", "--autocast", "bfloat16", "--backend", "torch",
                     "--reduction", "none", "--format", "json"))
    keys = {r["method"]: set(r) for r in doc["results"]}
    assert keys["torch_bce"] == keys["naive"] | {"message"}, keys["torch_bce"] ^ keys["naive"]
    assert not {"steps", "verdict", "grad_verdict"} & keys["torch_bce"]
    # ... and for one element every row has them, the refused one with an empty trace
    one = strict(run("compare", "9", "0", "--autocast", "bfloat16", "--backend", "torch", "--format", "json"))
    refused = next(r for r in one["results"] if r["method"] == "torch_bce")
    assert refused["steps"] == [] and refused["verdict"].startswith("refused: ")
    assert all({"steps", "verdict", "grad_verdict"} <= set(r) for r in one["results"])


def test_compare_csv_message_is_torchs_message_on_one_line_as_check_and_sweep_write_it():
    args = ("compare", "9", "0", "--autocast", "float16", "--backend", "torch")
    message = next(r["message"] for r in strict(run(*args, "--format", "json"))["results"] if "message" in r)
    rows = list(csv.DictReader(io.StringIO(run(*args, "--format", "csv"))))
    cell = next(r["message"] for r in rows if r["message"])
    assert cell == " ".join(message.split()) and "  " not in cell


def test_float_json_spells_nan_as_every_other_field_and_keeps_the_sign_of_a_typed_zero():
    # exact_decimal was "NaN" where `stored`, `value` and `rounded_once` (and every other document) say "nan"
    doc = strict(run("float", "nan", "--dtype", "float16", "--format", "json"))
    row = doc["results"][0]
    assert doc["value"] == row["stored"] == row["rounded_once"] == row["exact_decimal"] == "nan"
    inf = strict(run("float", "-inf", "--dtype", "float16", "--format", "json"))["results"][0]
    assert inf["stored"] == inf["rounded_once"] == inf["exact_decimal"] == "-inf"
    # -0 typed, rounded once, is -0 (IEEE 754 negation of 0), as stored; rounded_once was +0.0
    zero = strict(run("float", "-0", "--dtype", "float16", "--dtype", "float8_e4m3fn", "--format", "json"))
    for r in zero["results"]:
        assert r["exact_decimal"] == "-0" and math.copysign(1, r["stored"]) == -1
        assert math.copysign(1, r["rounded_once"]) == -1, r
    rows = list(csv.DictReader(io.StringIO(run("float", "-0", "--dtype", "float16", "--format", "csv"))))
    assert rows[0]["stored"] == rows[0]["rounded_once"] == "-0.0"


def test_compare_csv_says_what_each_rows_gradient_is_taken_with_respect_to():
    # --probs: naive/clamped/torch_bce differentiate with respect to p, the logit methods with respect to
    # x = logit(p); JSON's grad_wrt said so, the CSV had no such column (check's CSV has it)
    args = ("compare", "0.8,0.2", "1,0", "--probs", "--dtype", "float32", "--backend", "numpy")
    doc = strict(run(*args, "--format", "json"))
    rows = list(csv.DictReader(io.StringIO(run(*args, "--format", "csv"))))
    assert [r["grad_wrt"] for r in rows] == [r["grad_wrt"] for r in doc["results"]] == ["p", "p", "x", "x"]
    # d/dp of the mean loss at p = 0.8, y = 1 is -1/(2p) = -0.625 in float32; d/dx is (p - y)/2 = -0.1
    grads = {r["method"]: float(r["grad"].split(";")[0]) for r in rows}
    assert grads["naive"] == -0.625 and abs(grads["softplus"] + 0.1) < 1e-6
    # without --probs the column is there too, and says x (the same columns under every option)
    plain = list(csv.reader(io.StringIO(run("compare", "1", "0", "--backend", "numpy", "--dtype", "float32",
                                            "--format", "csv"))))
    assert plain[0] == list(csv.reader(io.StringIO(run(*args, "--format", "csv"))))[0]
    assert {row[plain[0].index("grad_wrt")] for row in plain[1:]} == {"x"}


def test_check_softmax_means_leave_out_nan_rows_as_bce_files_do(tmp_path):
    # check's `mean_loss`/`mean_reference` leave out the elements whose input is NaN and count them in
    # `mean_excludes_nan_inputs` (README); --loss softmax (compare's engine) averaged the NaN row in: mean nan,
    # and said 0 were left out
    import numpy as np

    np.save(tmp_path / "x.npy", np.array([[np.nan, 0, 0], [0, 0, 0]], dtype=np.float32))
    np.save(tmp_path / "y.npy", np.array([0, 0]))
    doc = strict(run("check", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--loss", "softmax",
                     "--dtype", "float32", "--format", "json"))
    for r in doc["results"]:
        assert r["mean_excludes_nan_inputs"] == 1, r
        # the row [0, 0, 0] with class 0: -log(1/3); mpmath.log(3) = 1.0986122886681098, here rounded to float64
        assert r["mean_reference"] == 1.0986122886681098, r
        assert abs(r["mean_loss"] - 1.0986122886681098) < 1e-6, r
    # every row NaN: nothing to average, the means are nan (as the file engine's)
    np.save(tmp_path / "n.npy", np.array([[np.nan, 0, 0]], dtype=np.float32))
    np.save(tmp_path / "m.npy", np.array([0]))
    doc = strict(run("check", str(tmp_path / "n.npy"), str(tmp_path / "m.npy"), "--loss", "softmax",
                     "--dtype", "float32", "--backend", "numpy", "--format", "json"))
    assert {(r["mean_loss"], r["mean_excludes_nan_inputs"]) for r in doc["results"]} == {("nan", 1)}
