"""How compare reduces (--reduction mean/sum) in each backend, and what it says when the reduction overflows.

Expected numbers: numpy's own np.mean / np.sum on arrays of the dtype (numpy documents that a float16 mean uses
float32 intermediates), torch's own .mean()/.sum() (CPU reductions accumulate 16-bit floats in float32), and mpmath
for the references (snippets beside them).
"""

from __future__ import annotations

import json

import ml_dtypes
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.core.backends import numpy_reduce
from stabcli.core.formats import FORMATS


def compare(*args):
    result = CliRunner().invoke(cli, ["compare", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def rows(doc, backend):
    return {r["method"]: r for r in doc["results"] if r["backend"] == backend}


def many(value: str, n: int) -> str:
    return ",".join([value] * n)


def test_float16_mean_of_4000_losses_of_20_is_20_not_inf():
    # softplus(20) = 20 + log1p(exp(-20)) = 20.000000002061153 (mpmath: mp.log1p(mp.exp(-20)) + 20), 20 in float16;
    # their mean is 20: np.mean of a float16 array takes float32 intermediates (80,000 fits), as torch's mean does.
    # The numpy backend used np.mean(loss, dtype=float16), whose float16 running sum overflowed past 65504: inf,
    # blamed on the formula (status inf) with no overflow counted.
    a = np.full(4000, 20, dtype=np.float16)
    assert np.mean(a) == 20 and np.mean(a).dtype == np.float16
    assert torch.tensor(a).mean().item() == 20
    doc = compare(many("20", 4000), "0", "--dtype", "float16")
    for backend in ("numpy", "torch"):
        for method in ("logsumexp", "softplus"):
            row = rows(doc, backend)[method]
            assert row["loss"] == 20.0 and row["status"] == "ok", (backend, method, row["loss"])
            assert row["reference"] == pytest.approx(20.000000002061153, rel=1e-15)
    assert not any("overflowed float16 for" in n for n in doc["notes"])


def test_bfloat16_and_float8_are_accumulated_in_float32():
    # softplus(3) = 3.0485873515737420 (mpmath: mp.log1p(mp.exp(3))) is 3.046875 in bfloat16; a mean of 1,000 of
    # them accumulated in bfloat16 stalls (ml_dtypes' own np.mean gives about 1.02: the running sum stops growing at
    # 1024, where 3.05 is less than half an ulp), accumulated in float32 it is 3.046875, torch's answer too.
    loss = np.full(1000, 3.046875, dtype=ml_dtypes.bfloat16)
    assert abs(float(np.mean(loss)) - 3.046875) > 1  # numpy in the dtype itself: the stall
    assert torch.tensor(loss.astype(np.float32)).bfloat16().mean().item() == 3.046875
    assert float(numpy_reduce(loss, "mean", FORMATS["bfloat16"])) == 3.046875
    doc = compare(many("3", 1000), "0", "--dtype", "bfloat16")
    for backend in ("numpy", "torch"):
        assert rows(doc, backend)["softplus"]["loss"] == 3.046875, backend
    # float8_e4m3fn: softplus(3) rounds to 3 (3.0486 lies between 3 and 3.25); 1,000 of them average 3 in float32,
    # and sum to 3000, above 464 = 448 + 32/2 (max + ulp/2), which e4m3fn, having no inf, rounds to NaN
    f8 = np.full(1000, 3.0, dtype=ml_dtypes.float8_e4m3fn)
    assert float(numpy_reduce(f8, "mean", FORMATS["float8_e4m3fn"])) == 3.0
    assert np.isnan(float(numpy_reduce(f8, "sum", FORMATS["float8_e4m3fn"])))  # 3000 > 464: NaN (no inf)


def test_float16_sum_is_numpys_own():
    # np.sum of a float16 array adds pairwise in float16 (no float32 intermediates, unlike np.mean); 10,000 values of
    # 1.0009765625 (the float16 above 1) sum to 10008 there, and the numpy backend gives numpy's number
    a = np.full(10000, 1.0009765625, dtype=np.float16)
    assert float(numpy_reduce(a, "sum", FORMATS["float16"])) == float(np.sum(a))
    assert float(numpy_reduce(a, "mean", FORMATS["float16"])) == float(np.mean(a))


def test_a_reduction_that_overflows_where_every_element_is_finite_says_so():
    # 4,000 losses of 20 sum to 80,000 (mpmath: 4000·20.000000002061153), beyond float16's 65504: each element is
    # finite, the sum is inf in numpy (pairwise float16) and in torch (float32 accumulation, rounded once)
    doc = compare(many("20", 4000), "0", "--dtype", "float16", "--reduction", "sum")
    for backend in ("numpy", "torch"):
        assert rows(doc, backend)["softplus"]["loss"] == "inf"
        note = next(n for n in doc["notes"] if n.startswith(f"float16, {backend}: the sum overflowed float16"))
        assert "softplus" in note and "although each element's loss is finite (at most 100)" in note
        assert "naive" not in note  # naive's elements are inf themselves (log(0) at p = 1)
    doc = compare(many("20", 4000), "0", "--dtype", "float16")  # the mean fits: no such note
    assert not any("overflowed float16 for" in n for n in doc["notes"])


def test_compare_and_check_means_agree(tmp_path):
    # check's mean is summed in float64 from the per-element losses; compare's is the backend's mean in the dtype.
    # Here both are 20 (float16's 20.000000002061153), and the exact means agree.
    x, y = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x, np.full(4000, 20, dtype=np.float16))
    np.save(y, np.zeros(4000, dtype=np.float16))
    result = CliRunner().invoke(cli, ["check", str(x), str(y), "--format", "json"])
    assert result.exit_code == 0, result.output
    checked = {(r["backend"], r["method"]): r for r in json.loads(result.output)["results"]}
    compared = compare(many("20", 4000), "0", "--dtype", "float16")
    for r in compared["results"]:
        c = checked[(r["backend"], r["method"])]
        if r["loss"] != "inf":
            assert c["mean_loss"] == r["loss"], (r["backend"], r["method"])
        assert c["mean_reference"] == pytest.approx(r["reference"], rel=1e-15)
