"""torch's own losses, called as a user calls them (issue 16, item 6).

stabcli's `torch_bce_with_logits` and `torch_bce` must be exactly what a user's
``F.binary_cross_entropy_with_logits(x, y)`` and ``F.binary_cross_entropy(torch.sigmoid(x), y)`` give: the loss
and its gradient, bit for bit, in every dtype, on a grid of soft targets, for every reduction, with and without
weight / pos_weight. The expected values are not literals: they are those plain torch calls, made here in the
plainest way (the peer whose behaviour stabcli reports).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.core.formats import FORMATS
from stabcli.losses.bce import FAMILY as BCE
from stabcli.losses.bce.gradients import grad_of

# The formats torch has kernels for. In float8 torch 2.13 has none ("add_stub" not implemented), so a plain call
# cannot be made; stabcli's torch backend then runs each kernel in float32 and rounds (core/backends.py).
DTYPES = ("float16", "bfloat16", "float32", "float64")
TARGETS = (0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 1.0)
LOGITS = np.concatenate([np.linspace(-30, 30, 121), [-100.0, -17.5, -0.0, 10.0, 88.7, 1e4, np.inf, -np.inf]])
WEIGHTS = {"plain": (None, None), "weight": ("w", None), "pos_weight": (None, 3.0), "both": ("w", 3.0)}
INT_OF = {2: (np.uint16, torch.int16), 4: (np.uint32, torch.int32), 8: (np.uint64, torch.int64)}


def bits(a) -> np.ndarray:
    """The raw bits of a numpy array (ml_dtypes bfloat16 included) or a torch tensor: equal bits, equal values,
    the sign of zero and NaN included."""
    if isinstance(a, torch.Tensor):
        a = a.detach()
        return a.view(INT_OF[a.element_size()][1]).numpy().view(INT_OF[a.element_size()][0])
    a = np.asarray(a)
    return a.view(INT_OF[a.dtype.itemsize][0])


def case(name: str, y: float, weights: str):
    fmt = FORMATS[name]
    x = fmt.round(LOGITS)
    w_kind, pw = WEIGHTS[weights]
    w = fmt.round(np.linspace(0.5, 3.0, x.size)) if w_kind else fmt.round(np.ones(x.size))
    arrays = {"logits": x, "targets": fmt.round(np.full(x.size, y)), "weight": w,
              "pos_weight": fmt.round(np.full(x.size, 1.0 if pw is None else pw))}

    def tensor(a):
        return torch.from_numpy(np.asarray(a, dtype=np.float64)).to(fmt.torch_dtype)  # exact: already rounded

    plain = {"x": tensor(x), "y": tensor(arrays["targets"]),
             "weight": tensor(w) if w_kind else None, "pos_weight": tensor(arrays["pos_weight"]) if pw else None}
    return fmt, arrays, plain


def plain_call(method: str, p: dict, reduction: str):
    """The user's call: (loss, x.grad), with weight=/pos_weight= only when they are not 1."""
    x = p["x"].clone().requires_grad_(True)
    if method == "torch_bce_with_logits":
        extra = {k: p[k] for k in ("weight", "pos_weight") if p[k] is not None}
        loss = F.binary_cross_entropy_with_logits(x, p["y"], reduction=reduction, **extra)
    else:
        loss = F.binary_cross_entropy(torch.sigmoid(x), p["y"], weight=p["weight"], reduction=reduction)
    loss.backward(torch.ones_like(loss) if reduction == "none" else None)
    return loss, x.grad


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weights", list(WEIGHTS))
@pytest.mark.parametrize("name", DTYPES)
def test_torch_losses_equal_plain_calls_bit_for_bit(name, weights, reduction):
    for method in ("torch_bce_with_logits", "torch_bce"):
        if method == "torch_bce" and WEIGHTS[weights][1] is not None:
            continue  # F.binary_cross_entropy has no pos_weight (stabcli leaves the method out)
        for y in TARGETS:
            fmt, arrays, plain = case(name, y, weights)
            want_loss, want_grad = plain_call(method, plain, reduction)
            ev, ops = BCE.evaluate("torch", fmt, method, arrays)
            got_loss = ops.to_numpy(ev.reduced(ops, reduction))
            got_grad = grad_of("torch", fmt, method, arrays, reduction)
            where = f"{method} {name} y={y} {weights} {reduction}"
            np.testing.assert_array_equal(bits(got_loss), bits(want_loss), err_msg=where)
            np.testing.assert_array_equal(bits(got_grad), bits(want_grad), err_msg=where)


@pytest.mark.parametrize("name", DTYPES)
def test_sweep_shapes_give_the_same_bits(name):
    # A sweep passes the target, weight and pos_weight as 0-d arrays (broadcast=False); torch wants the target at
    # the logits' shape, so stabcli expands it: the same elementwise kernels, the same bits as the plain call.
    for y in TARGETS:
        fmt, arrays, plain = case(name, y, "plain")
        zero_d = {"logits": arrays["logits"], "targets": fmt.round(np.array(y)), "weight": fmt.round(np.array(1.0)),
                  "pos_weight": fmt.round(np.array(1.0))}
        _, want_grad = plain_call("torch_bce_with_logits", plain, "none")
        got = grad_of("torch", fmt, "torch_bce_with_logits", zero_d, "none", broadcast=False)
        np.testing.assert_array_equal(bits(got), bits(want_grad), err_msg=f"{name} y={y}")


def test_tensors_of_ones_are_not_the_plain_call():
    # Why stabcli passes no weight/pos_weight when they are 1: torch then takes its pos_weight backward, which
    # rounds differently. float32, x = 0, y = 0.3: y is float32(0.3) = 0.30000001192092896, so the true gradient
    # sigmoid(0) - y = 0.5 - 0.30000001192092896 = 0.19999998807907104 exactly (a float32: 0.5 - y is exact by
    # Sterbenz's lemma), which the plain call gives.
    x, y = torch.tensor(0.0, requires_grad=True), torch.tensor(0.3)
    F.binary_cross_entropy_with_logits(x, y).backward()
    assert x.grad.item() == 0.5 - float(np.float32(0.3)) == 0.19999998807907104
    x1 = torch.tensor(0.0, requires_grad=True)
    F.binary_cross_entropy_with_logits(x1, y, weight=torch.ones(()), pos_weight=torch.ones(())).backward()
    assert x1.grad.item() == 0.19999995827674866  # what stabcli reported before


@pytest.mark.parametrize("name, x, y", [("float32", "0", "0.3"), ("bfloat16", "10", "0.3")])
def test_compare_reports_the_plain_gradient(name, x, y):
    # The two cases through the CLI: one logit, reduction mean, as `F.binary_cross_entropy_with_logits(x, y)`
    result = CliRunner().invoke(cli, ["compare", x, y, "--dtype", name, "--backend", "torch", "--format", "json"])
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.stdout)["results"] if r["method"] == "torch_bce_with_logits")
    dtype = FORMATS[name].torch_dtype
    xt = torch.tensor(float(x), dtype=dtype, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(xt, torch.tensor(float(y), dtype=dtype))
    loss.backward()
    assert row["grad"] == xt.grad.item()
    assert row["loss"] == loss.item()
