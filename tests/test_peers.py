"""The peer libraries' real losses (--peers): Keras 3 on torch, optax on jax, scikit-learn's log_loss.

Skipped where the peers extra is not installed (CI installs it). Expected values follow from each library's
documented clip (Keras: epsilon = 1e-7; scikit-learn 1.9: eps = finfo(dtype).eps) and mpmath.
"""

from __future__ import annotations

import json
import math

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
