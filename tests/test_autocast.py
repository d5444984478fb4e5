"""--autocast: torch.autocast's policy, real on the CPU, emulated with torch's CUDA lists (issue 11, item 3).

The CUDA lists are copied from torch 2.13.0's aten/src/ATen/autocast_mode.h (test_cuda_lists_match_the_header
re-reads the installed header); the emulation mechanism is pinned by running it with the CPU policy against the
real torch.autocast("cpu"), bit for bit.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.core import autocast
from stabcli.core.formats import FORMATS
from stabcli.losses import get_family


def run(*args):
    return CliRunner().invoke(cli, list(args))


def _header_list(text: str, macro: str) -> set[str]:
    body = re.search(rf"#define {macro}\(_\)(.*?)(?:\n\n|\n#)", text, re.S).group(1)
    return set(re.findall(r"_\((\w+)", body))


def test_cuda_lists_match_the_header():
    header = Path(torch.__file__).parent / "include" / "ATen" / "autocast_mode.h"
    if not header.exists():
        pytest.skip("this torch install has no C++ headers")
    if not torch.__version__.startswith(autocast.TORCH_VERSION):
        pytest.skip(f"the lists are torch {autocast.TORCH_VERSION}'s")
    text = header.read_text()
    assert _header_list(text, "AT_FORALL_FP32") == set(autocast.CUDA_FP32)
    assert _header_list(text, "AT_FORALL_FP32_SET_OPT_DTYPE") == set(autocast.CUDA_FP32_SET_OPT_DTYPE)
    assert _header_list(text, "AT_FORALL_LOWER_PRECISION_FP") == set(autocast.CUDA_LOWER_PRECISION_FP)
    assert _header_list(text, "AT_FORALL_PROMOTE") == set(autocast.CUDA_PROMOTE)
    assert {"exp", "log", "log1p", "binary_cross_entropy_with_logits", "nll_loss"} <= autocast.CUDA_FP32
    assert "sigmoid" not in autocast.CUDA_FP32  # sigmoid falls through: p stays in the low dtype


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cpu_autocast_facts(dtype):
    # measured in torch 2.13.0 (the lead's list): unary ops stay low, the losses come back in float32
    low = getattr(torch, dtype)
    x = torch.tensor([1.0, -2.0], dtype=low)
    rows = torch.tensor([[1.0, 2.0, 3.0]], dtype=low)
    with torch.autocast("cpu", dtype=low):
        stays = [torch.sigmoid(x), torch.exp(x), torch.log(x.abs()), torch.log1p(x.abs()), F.softplus(x),
                 F.logsigmoid(x), F.log_softmax(rows, -1), torch.softmax(rows, -1), rows.sum(-1)]
        fp32 = [F.binary_cross_entropy(torch.sigmoid(x), torch.ones_like(x)),
                F.binary_cross_entropy_with_logits(x, torch.ones_like(x)),
                F.cross_entropy(rows, torch.tensor([1])), F.nll_loss(rows, torch.tensor([1]))]
    assert all(t.dtype == low for t in stays)
    assert all(t.dtype == torch.float32 for t in fp32)
    spec = autocast.AutocastSpec(dtype, "cpu")
    for op in ("sigmoid", "exp", "log", "log1p", "softplus", "log_softmax", "softmax", "sum"):
        assert spec.op_rule(op) == "fallthrough"
    for op in ("binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss"):
        assert spec.op_rule(op) == "fp32"


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint8)


LOGITS = [-1e4, -100.0, -20.0, -12.0, -3.0, -0.1, 0.0, 0.5, 4.0, 8.3203125, 9.0, 40.0, 1e4, np.inf, -np.inf, np.nan]


@pytest.mark.parametrize("loss", ["bce", "softmax"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_emulation_with_the_cpu_policy_is_the_real_cpu_autocast(monkeypatch, loss, dtype):
    fmt = FORMATS[dtype]
    family = get_family(loss)
    n = len(LOGITS)
    if loss == "bce":
        arrays = {"logits": fmt.round(np.array(LOGITS)), "targets": fmt.round(np.resize([0.0, 1.0, 0.25], n)),
                  "weight": fmt.round(np.array(1.0)), "pos_weight": fmt.round(np.array(1.0))}
    else:
        rows = np.stack([np.array(LOGITS), np.zeros(n), np.full(n, -1.0)], axis=1)
        arrays = {"logits": fmt.round(rows), "targets": np.resize(np.array([0, 1, 2], dtype=np.int64), n),
                  "weight": fmt.round(np.ones(3)), "label_smoothing": np.array(0.0)}
    spec = autocast.AutocastSpec(dtype, "cpu")
    results = {}
    for how in ("real", "emulated"):
        if how == "emulated":
            monkeypatch.setattr("stabcli.core.backends.AutocastOps.context", lambda self: autocast.emulate(self.spec))
        out = {}
        with autocast.use(spec):
            for method in family.methods_for("torch"):
                ev, ops = family.evaluate("torch", fmt, method, arrays, broadcast=False)
                grad = family.grad_details("torch", fmt, method, arrays).grad
                out[method] = (ops.to_numpy(ev.loss), np.asarray(grad))
        results[how] = out
    for method, (loss_real, grad_real) in results["real"].items():
        loss_emul, grad_emul = results["emulated"][method]
        assert loss_real.dtype == loss_emul.dtype, method
        assert np.array_equal(_bits(loss_real), _bits(loss_emul)), method
        assert np.array_equal(_bits(grad_real), _bits(grad_emul)), method


def test_cuda_emulation_computes_bce_with_logits_in_float32():
    # autocast's fp32 policy: the float16 inputs cast to float32, then the float32 kernel
    fmt = FORMATS["float16"]
    xs = fmt.round(np.array([-20.0, -3.0, 0.5, 9.0, 1e4]))
    arrays = {"logits": xs, "targets": fmt.round(np.array([0.0, 1.0, 0.0, 0.0, 1.0])),
              "weight": fmt.round(np.array(1.0)), "pos_weight": fmt.round(np.array(1.0))}
    with autocast.use(autocast.AutocastSpec("float16", "cuda")):
        ev, ops = get_family("bce").evaluate("torch", fmt, "torch_bce_with_logits", arrays)
    got = ops.to_numpy(ev.loss)
    want = F.binary_cross_entropy_with_logits(torch.from_numpy(xs).float(), torch.from_numpy(
        arrays["targets"]).float(), reduction="none").numpy()
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_compare_refuses_bce_on_cuda_with_torchs_message():
    result = run("compare", "9", "0", "--autocast", "float16", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["autocast"] == {"dtype": "float16", "device": "cuda", "emulated": True, "torch_lists": "2.13.0"}
    rows = {r["method"]: r for r in doc["results"]}
    assert {r["backend"] for r in doc["results"]} == {"torch"}
    bce = rows["torch_bce"]
    assert bce["status"] == "refused" and bce["loss"] is None and bce["compute_dtype"] is None
    assert bce["message"] == autocast.BCE_BANNED_MESSAGE
    assert bce["message"].startswith("torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to "
                                     "autocast.")
    # log, exp and BCEWithLogits are on CUDA's float32 list; the clamped form's xlogy/xlog1py fall through
    assert rows["naive"]["compute_dtype"] == "float32"
    assert rows["torch_bce_with_logits"]["compute_dtype"] == "float32"
    assert rows["clamped"]["compute_dtype"] == "float16"
    # sigmoid stays float16, so naive still sees p = 1 at x = 9 (>= 8.3203125, DESIGN.md) and gives inf
    assert rows["naive"]["loss"] == "inf" and rows["naive"]["status"] == "inf"


def test_compare_on_cpu_runs_bce_in_float32():
    result = run("compare", "9", "0", "--autocast", "float16", "--device", "cpu", "--format", "json")
    rows = {r["method"]: r for r in json.loads(result.output)["results"]}
    assert rows["torch_bce"]["status"] == "clamped" and rows["torch_bce"]["compute_dtype"] == "float32"
    assert rows["torch_bce"]["loss"] == 100.0  # p = 1 in float16, log1p(-1) = -inf clamped at -100 in float32
    assert rows["naive"]["compute_dtype"] == "float16"


def test_cpu_bce_clamp_is_judged_in_float32():
    # x = 2, y = 1: p = sigmoid(2) in float16, then BCELoss in float32; no clamp fires (log p = -0.127), so the
    # row is not "clamped" (the rule without the clamp is evaluated in float32 as well), and its gradient guard
    # max(p(1-p), 1e-12) does not fire either
    result = run("compare", "2", "1", "--autocast", "float16", "--device", "cpu", "--format", "json")
    bce = {r["method"]: r for r in json.loads(result.output)["results"]}["torch_bce"]
    assert bce["status"] == "inaccurate"  # float32 result with float16 p: outside float32's tolerance
    assert bce["grad_status"] != "clamped"


def test_table_names_the_compute_dtype_and_the_refusal():
    result = run("compare", "9", "0", "--autocast", "float16", "--no-steps")
    out = " ".join(result.output.split())
    assert "computed in float32 under autocast: naive, logsumexp, softplus, torch_bce_with_logits" in out
    assert "torch_bce refused, torch's message: torch.nn.functional.binary_cross_entropy" in out
    assert "emulated on the CPU with torch 2.13.0's CUDA lists" in out


def test_sweep_lists_the_refused_method():
    result = run("sweep", "--autocast", "float16", "--points", "101", "--format", "json", "--no-grad")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    refused = [r for r in doc["results"] if r["refused"]]
    assert [r["method"] for r in refused] == ["torch_bce", "torch_bce"]  # targets 0 and 1
    assert all(r["refused"] == autocast.BCE_BANNED_MESSAGE and r["points"] == 0 for r in refused)
    counted = [r for r in doc["results"] if not r["refused"]]
    assert {r["compute_dtype"] for r in counted if r["method"] == "softplus"} == {"float32"}
    assert all(r["points"] > 0 for r in counted)


@pytest.mark.parametrize("args, message", [
    (["compare", "1", "1", "--autocast", "float16", "--dtype", "float32"], "drop --dtype"),
    (["compare", "1", "1", "--autocast", "float16", "--backend", "numpy"], "only the torch backend"),
    (["compare", "1", "1", "--device", "cpu"], "--device 'cpu' chooses the device of --autocast"),
    (["compare", "1", "1", "--autocast", "float32"], "--autocast"),
    (["sweep", "--autocast", "bfloat16", "--plot", "x.png"], "--plot"),
    (["compare", "1", "1", "--autocast", "float16", "--peers"], "--peers"),
])
def test_autocast_errors(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and message in result.output
