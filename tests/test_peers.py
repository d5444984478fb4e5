"""The peer libraries' real losses (--peers): Keras 3 on torch, optax on jax, scikit-learn's log_loss.

Skipped where the peers extra is not installed (CI installs it). Expected values follow from each library's
documented clip (Keras: epsilon = 1e-7; scikit-learn 1.9: eps = finfo(dtype).eps) and mpmath.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.core import peers

pytestmark = pytest.mark.skipif(not all(peers.installed(n) for n in ("keras", "optax", "jax", "scikit-learn")),
                                reason="the peers extra is not installed (pip install 'stabcli[peers]')")


def compare_json(*args):
    result = CliRunner().invoke(cli, ["compare", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def by_method(doc, dtype):
    return {r["method"]: r for r in doc["results"] if r["dtype"] == dtype and r["backend"] == "peers"}


def test_no_peer_rows_without_the_flag():
    doc = compare_json("1e10", "0", "--dtype", "float32")
    assert all(r["backend"] != "peers" for r in doc["results"])


def test_clips_hide_the_overflow_at_1e10():
    doc = compare_json("1e10", "0", "--dtype", "float16", "--dtype", "float32", "--peers")
    f32, f16 = by_method(doc, "float32"), by_method(doc, "float16")
    assert set(f32) == {"keras_bce", "keras_bce_logits", "optax_sigmoid_bce", "sklearn_log_loss"}
    # Keras clips p to 1 - 1e-7, which is 1 - 2^-23 in float32: -log(2^-23) = 23·ln 2 = 15.942385152878742
    assert f32["keras_bce"]["loss"] == pytest.approx(23 * math.log(2), rel=2**-23)
    assert f32["keras_bce"]["status"] == "clamped" and f32["keras_bce"]["reference"] == 1e10
    # ... and in float16 1 - 1e-7 rounds to 1, the clip does nothing, and torch's BCELoss clamps log(0) at -100
    assert f16["keras_bce"]["loss"] == 100.0 and f16["keras_bce"]["status"] == "clamped"
    # scikit-learn 1.9 clips to [eps, 1 - eps] of the dtype: -log(2^-23) in float32, -log(2^-10) in float16
    assert f32["sklearn_log_loss"]["loss"] == pytest.approx(23 * math.log(2), rel=2**-23)
    assert f16["sklearn_log_loss"]["loss"] == 6.9296875  # 10·ln 2 = 6.9314718 rounded to float16
    # the logit forms are right: 1e10 (float32), inf (float16, where 1e10 is inf)
    for method in ("keras_bce_logits", "optax_sigmoid_bce"):
        assert f32[method]["loss"] == 1e10 and f32[method]["status"] == "ok"
        assert f16[method]["loss"] == "inf" and f16[method]["status"] == "ok"


def test_rows_name_library_version_and_dtype():
    doc = compare_json("3", "1", "--dtype", "bfloat16", "--peers")
    rows = by_method(doc, "bfloat16")
    assert rows["keras_bce"]["library"] == f"keras {peers.version('keras')}, torch backend, bfloat16 tensors"
    assert rows["optax_sigmoid_bce"]["library"].startswith(f"optax {peers.version('optax')} on jax ")
    # bfloat16 is not a dtype scikit-learn keeps: it converts to float64
    assert rows["sklearn_log_loss"]["library"] == f"scikit-learn {peers.version('scikit-learn')}, computes in float64"
    assert rows["sklearn_log_loss"]["grad"] is None  # log_loss has no gradient


def test_peer_gradients_are_real_autodiff():
    # mpmath: 1/(1 + mp.exp(-2)) = 0.8807970779778824440597... = d loss/d x at x = 2, y = 0
    doc = compare_json("2", "0", "--dtype", "float64", "--peers")
    for method in ("keras_bce", "keras_bce_logits", "optax_sigmoid_bce"):
        assert by_method(doc, "float64")[method]["grad"] == pytest.approx(0.8807970779778824, rel=4 * 2**-52)


def test_softmax_peer():
    doc = compare_json("[[12,0,-12]]", "1", "--loss", "softmax", "--dtype", "float16", "--peers")
    assert by_method(doc, "float16")["optax_softmax_ce"]["loss"] == 12.0  # mpmath 12.00000614 in float16
    doc = compare_json("[[-inf,0,0]]", "[[0,0.5,0.5]]", "--loss", "softmax", "--dtype", "float32", "--peers")
    row = by_method(doc, "float32")["optax_softmax_ce"]
    assert row["loss"] == "nan" and row["reference"] == 0.6931471805599453  # 0·(-inf) = NaN, the truth is log 2


def test_missing_peers_say_how_to_add_them(monkeypatch):
    monkeypatch.setattr(peers, "installed", lambda name: False)
    doc = compare_json("1e10", "0", "--dtype", "float32", "--peers")
    assert all(r["backend"] != "peers" for r in doc["results"])
    assert any("pip install 'stabcli[peers]'" in n for n in doc["notes"])


@pytest.mark.parametrize("args", [
    ("nan", "1", "--dtype", "float32"), ("nan", "0.5"), ("inf,-inf,nan,0", "0,1,0.5,1"),
    ("nan", "0", "--dtype", "float16"),
    ("nan,0", "1", "--reduction", "none", "--dtype", "bfloat16"), ("[[nan,0,1]]", "1", "--loss", "softmax"),
])
def test_a_nan_logit_is_nan_in_every_peer_row(args):
    # torch's BCELoss (which keras_bce calls) raised RuntimeError "all elements of input should be between 0 and 1"
    # on the NaN probability sigmoid(NaN); as torch_bce, the element is NaN with a note. NaN in, NaN out: the
    # loss of a NaN logit is NaN in every row (and the reference too, DESIGN.md)
    single = "none" not in args and ("," not in args[0] or "softmax" in args)  # --steps traces one loss only
    for fmt in ("table", "json", "csv"):
        result = CliRunner().invoke(cli, ["compare", *args, "--peers", *(["--steps"] if single else []),
                                          "--format", fmt])
        assert result.exit_code == 0 and result.exception is None, result.output
    doc = compare_json(*args, "--peers")
    peer_rows = [r for r in doc["results"] if r["backend"] == "peers"]
    assert peer_rows
    for r in peer_rows:
        losses = r["loss"] if isinstance(r["loss"], list) else [r["loss"]]
        assert losses[doc["logits"].index("nan") if isinstance(r["loss"], list) else 0] == "nan", r
        if r["grad"] is not None and "softmax" not in args:
            grads = r["grad"] if isinstance(r["grad"], list) else None
            if grads is not None:
                assert grads[doc["logits"].index("nan")] == "nan", r


def test_a_nan_logit_in_keras_bce_says_why():
    doc = compare_json("nan", "1", "--dtype", "float32", "--peers")
    row = by_method(doc, "float32")["keras_bce"]
    step = next(s for s in row["steps"] if s["name"] == "binary_crossentropy(y, p)")
    assert step["value"] == "nan" and "refuses a NaN probability" in step["note"]
    assert row["grad"] == "nan"  # NaN in, NaN out (not the gradient of the 0.5 stand-in)
    # the other elements of a batch are untouched: x = 0, y = 1 is ln 2 (mpmath: mp.log(2) = 0.693147180559945...),
    # which Keras's float32 mean rounds to float32 even for float64 tensors (test_keras_float64_mean_is_float32)
    doc = compare_json("nan,0", "1", "--dtype", "float64", "--peers", "--reduction", "none")
    row = by_method(doc, "float64")["keras_bce"]
    assert row["loss"][0] == "nan" and row["loss"][1] == float(np.float32(math.log(2)))
    assert row["grad"][0] == "nan" and row["grad"][1] == -0.5  # sigmoid(0) - 1, exact


def test_keras_float64_mean_is_float32():
    # keras.ops.mean (torch backend) computes in result_type(float64, float32) = float32: a real Keras behaviour the
    # row shows and names. np.float32(ln 2) = 0.6931471824645996; optax keeps float64 (0.6931471805599453)
    doc = compare_json("0", "1", "--dtype", "float64", "--peers")
    rows = by_method(doc, "float64")
    for method in ("keras_bce", "keras_bce_logits"):
        assert rows[method]["loss"] == float(np.float32(math.log(2)))
        assert "rounded to float32" in rows[method]["library"]
    assert rows["optax_sigmoid_bce"]["loss"] == math.log(2)
    assert "float32" not in by_method(compare_json("0", "1", "--dtype", "float32", "--peers"), "float32")[
        "keras_bce"]["library"].split(",", 2)[2].replace("float32 tensors", "")


def test_no_peer_rows_in_float8():
    # Keras's torch backend has no float8 kernels and scikit-learn no float8 dtype: was a TypeError traceback
    # (torch.from_numpy of an ml_dtypes array); now a note, and the float16 rows still run
    for cmd in (["compare", "1", "0"], ["sweep", "--points", "11"]):
        result = CliRunner().invoke(cli, [*cmd, "--dtype", "float8_e4m3fn", "--dtype", "float16", "--peers",
                                          "--format", "json"])
        assert result.exit_code == 0 and result.exception is None, result.output
        doc = json.loads(result.output)
        peer_dtypes = {r["dtype"] for r in doc["results"] if r["backend"] == "peers"}
        assert peer_dtypes == {"float16"}
        assert any("no peer rows in float8_e4m3fn" in n for n in doc["notes"])


def test_sweep_with_peers_over_a_grid_is_fine():
    # a sweep's grid never holds NaN (finite --min/--max): every peer row evaluates every point
    result = CliRunner().invoke(cli, ["sweep", "--peers", "--dtype", "float16", "--points", "101", "--format",
                                      "json"])
    assert result.exit_code == 0, result.output
    rows = [r for r in json.loads(result.output)["results"] if r.get("backend") == "peers"]
    assert rows and all(r["points"] == 101 for r in rows)


def test_softmax_sweep_with_peers_runs_the_peer_rows():
    # sweep --loss softmax --peers raised KeyError: 'optax_softmax_ce' (a traceback, exit 1): the shared-log p path
    # looked every method up in the family's own formulas, which the peers are not among (final-combos)
    result = CliRunner().invoke(cli, ["sweep", "--loss", "softmax", "--peers", "--dtype", "float16", "--points", "101",
                                      "--target", "0", "--target", "2", "--format", "json"])
    assert result.exit_code == 0 and result.exception is None, result.output
    doc = json.loads(result.stdout)
    peer = {(r["method"], r["target"]) for r in doc["results"] if r["backend"] == "peers"}
    assert ("optax_softmax_ce", 0) in peer and ("optax_softmax_ce", 2) in peer
    # the same peer row, swept for one target alone, gives the same counts (the shared path changes nothing)
    alone = CliRunner().invoke(cli, ["sweep", "--loss", "softmax", "--peers", "--dtype", "float16", "--points", "101",
                                     "--target", "2", "--format", "json"])
    row = {(r["backend"], r["method"], r["target"]): r for r in doc["results"]}
    for r in json.loads(alone.stdout)["results"]:
        assert {k: v for k, v in r.items()} == row[(r["backend"], r["method"], r["target"])]


def test_the_default_view_names_each_library_and_version():
    # the answer-first view (no --steps) had the peer rows but not which library and version made them
    result = CliRunner().invoke(cli, ["compare", "1e10", "0", "--dtype", "float32", "--peers", "--no-steps"],
                                env={"COLUMNS": "80"})
    lines = [line.rstrip() for line in result.output.splitlines()]
    assert f"  keras_bce, keras_bce_logits: keras {peers.version('keras')}, torch backend, float32 tensors" in lines
    assert any(line.startswith(f"  optax_sigmoid_bce: optax {peers.version('optax')} on jax ") for line in lines)
    assert f"  sklearn_log_loss: scikit-learn {peers.version('scikit-learn')}, computes in float32" in lines
