"""torch.autocast as a policy: which operations run in float32, which in the low dtype, which are refused.

Under ``torch.autocast(device, dtype=low)`` each ATen operation is looked up in the device's lists before it runs:

* ``fp32``: every floating input (float16, bfloat16, float32; never float64) is cast to float32, and so is the
  result. On CUDA: exp, log, log1p, pow, softplus, logsumexp, nll_loss, binary_cross_entropy_with_logits, ...
* ``fp32_set_opt_dtype``: softmax, log_softmax, sum, prod, cumsum, ...: run with ``dtype=float32`` unless a dtype
  was given (the result is float32).
* ``lower_precision_fp``: matmul, linear, conv...: cast to the low dtype (none of the losses' operations).
* ``promote``: the widest floating dtype among the inputs.
* banned: ``binary_cross_entropy`` on CUDA raises torch's RuntimeError :data:`BCE_BANNED_MESSAGE`.
* everything else falls through: sigmoid, arithmetic, maximum, where, xlogy, ... run in their inputs' dtype
  (type promotion decides: a float32 log times a float16 target is float32).

The CUDA lists are torch 2.13.0's own: the macros ``AT_FORALL_LOWER_PRECISION_FP``, ``AT_FORALL_FP32``,
``AT_FORALL_FP32_SET_OPT_DTYPE`` and ``AT_FORALL_PROMOTE`` of ``aten/src/ATen/autocast_mode.h`` (shipped in the
wheel as ``torch/include/ATen/autocast_mode.h``; ``tests/test_autocast.py`` checks the lists below against the
installed header), which ``aten/src/ATen/autocast_mode.cpp`` registers for the Autocast (CUDA) dispatch key, with
``aten::binary_cross_entropy`` bound to ``binary_cross_entropy_banned`` and its message.

On ``device="cpu"`` stabcli runs the real ``torch.autocast("cpu", dtype=...)``. CUDA cannot run here, so
``device="cuda"`` runs the same CPU kernels under :class:`_Emulation`, a ``TorchFunctionMode`` that applies the
CUDA policy at each torch call the formulas make, as autocast does at each ATen operation (the casts are real
``Tensor.to`` calls, so autograd goes through them as it goes through autocast's). The emulation with the CPU
policy (:data:`CPU`) gives the real CPU autocast bit for bit, value, dtype and gradient
(``tests/test_autocast.py``): that pins the mechanism, and the CUDA lists come from the source. What it cannot
reproduce is CUDA's own kernels (their float32 exp and log may differ from the CPU's in the last bit).

torch is imported inside the functions; importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

from stabcli.names import AUTOCAST_DEVICES, AUTOCAST_DTYPES

TORCH_VERSION = "2.13.0"  # the version whose autocast_mode.h the CUDA lists below are copied from
DEVICES, DTYPES = AUTOCAST_DEVICES, AUTOCAST_DTYPES  # stabcli/names.py

# aten/src/ATen/autocast_mode.cpp (torch 2.13.0), binary_cross_entropy_banned: the message torch raises on CUDA
BCE_BANNED_MESSAGE = (
    "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast.\n"
    "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
    "In this case, combine the two layers using torch.nn.functional.binary_cross_entropy_with_logits\n"
    "or torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and BCEWithLogits are\n"
    "safe to autocast."
)

# torch 2.13.0, aten/src/ATen/autocast_mode.h: the CUDA lists (op names, overloads dropped)
CUDA_LOWER_PRECISION_FP = frozenset("""
    _convolution _scaled_dot_product_flash_attention _thnn_fused_gru_cell _thnn_fused_lstm_cell addbmm addmm addmv
    addr baddbmm bmm chain_matmul conv1d conv2d conv3d conv_tbc conv_transpose1d conv_transpose2d conv_transpose3d
    convolution einsum gru_cell linalg_multi_dot linalg_vecdot linear lstm_cell matmul mm mv prelu rnn_relu_cell
    rnn_tanh_cell scaled_dot_product_attention""".split())
CUDA_FP32 = frozenset("""
    _upsample_bicubic2d_aa _upsample_bilinear2d_aa _upsample_nearest_exact1d _upsample_nearest_exact2d
    _upsample_nearest_exact3d acos asin binary_cross_entropy_with_logits cdist cosh cosine_embedding_loss
    cosine_similarity dist erfinv exp expm1 frobenius_norm group_norm hinge_embedding_loss huber_loss kl_div l1_loss
    layer_norm log log10 log1p log2 logsumexp margin_ranking_loss mse_loss multi_margin_loss multilabel_margin_loss
    native_layer_norm nll_loss nll_loss2d nuclear_norm pdist poisson_nll_loss pow reciprocal renorm rms_norm rsqrt
    sinh smooth_l1_loss soft_margin_loss softplus tan triplet_margin_loss upsample_bicubic2d upsample_bilinear2d
    upsample_linear1d upsample_nearest1d upsample_nearest2d upsample_nearest3d upsample_trilinear3d""".split())
CUDA_FP32_SET_OPT_DTYPE = frozenset(
    "cumprod cumsum linalg_matrix_norm linalg_vector_norm log_softmax prod softmax sum".split())
CUDA_PROMOTE = frozenset(
    "addcdiv addcmul atan2 bilinear cross dot grid_sampler index_put scatter_add tensordot vdot".split())


@dataclass(frozen=True)
class Policy:
    """One device's autocast lists, by ATen op name."""

    device: str
    lower: frozenset
    fp32: frozenset
    fp32_set_opt_dtype: frozenset
    promote: frozenset
    banned: dict  # op name -> torch's message

    def rule(self, op: str) -> str:
        """``banned``, ``fp32``, ``fp32_set_opt_dtype``, ``lower``, ``promote`` or ``fallthrough``."""
        if op in self.banned:
            return "banned"
        for name in ("fp32", "fp32_set_opt_dtype", "lower", "promote"):
            if op in getattr(self, name):
                return name
        return "fallthrough"


CUDA = Policy("cuda", CUDA_LOWER_PRECISION_FP, CUDA_FP32, CUDA_FP32_SET_OPT_DTYPE, CUDA_PROMOTE,
              {"binary_cross_entropy": BCE_BANNED_MESSAGE})

# The CPU lists of autocast_mode.cpp, as far as the losses' operations go (the rest are linear algebra, pooling,
# FFTs ...): binary_cross_entropy is on the CPU's fp32 list, not banned. Measured in torch 2.13.0 too: sigmoid,
# exp, log, log1p, softplus, logsigmoid, softmax, log_softmax, sum and logsumexp stay in the low dtype
# (tests/test_autocast.py). Used only to check the emulation against the real CPU autocast.
CPU = Policy("cpu", frozenset({"conv1d", "conv2d", "conv3d", "bmm", "mm", "baddbmm", "addmm", "addbmm", "linear",
                               "matmul", "prelu", "scaled_dot_product_attention"}),
             frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits", "nll_loss", "nll_loss2d",
                        "cross_entropy_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
                        "poisson_nll_loss", "soft_margin_loss", "margin_ranking_loss", "hinge_embedding_loss",
                        "cosine_embedding_loss", "multi_margin_loss", "multilabel_margin_loss",
                        "triplet_margin_loss", "prod", "cdist"}),
             frozenset(), frozenset({"stack", "cat", "index_copy"}), {})
POLICIES = {"cuda": CUDA, "cpu": CPU}

# Python-level names whose ATen operation is called something else
_ATEN_NAME = {"cross_entropy": "cross_entropy_loss"}
# On CUDA, cross_entropy_loss is not listed: it is a composite of log_softmax (fp32_set_opt_dtype) and nll_loss
# (fp32), so it runs in float32 from the low-dtype logits, exactly as casting them to float32 first.
_CUDA_COMPOSITES_FP32 = frozenset({"cross_entropy_loss"})


@dataclass(frozen=True)
class AutocastSpec:
    """What ``--autocast DTYPE --device DEVICE`` asks for."""

    dtype: str  # the low dtype: float16 or bfloat16
    device: str = "cuda"

    @property
    def policy(self) -> Policy:
        return POLICIES[self.device]

    @property
    def emulated(self) -> bool:
        return self.device != "cpu"

    def describe(self) -> str:
        how = (f"emulated on the CPU with torch {TORCH_VERSION}'s CUDA lists (aten/src/ATen/autocast_mode.h)"
               if self.emulated else "the real torch.autocast on the CPU")
        return f"torch.autocast({self.device!r}, dtype=torch.{self.dtype}): {how}"

    def as_json(self) -> dict:
        return {"dtype": self.dtype, "device": self.device, "emulated": self.emulated,
                "torch_lists": TORCH_VERSION if self.emulated else None}

    def op_rule(self, op: str) -> str:
        """The rule for ``op`` (an ATen name) under this spec."""
        op = _ATEN_NAME.get(op, op)
        if self.device == "cuda" and op in _CUDA_COMPOSITES_FP32:
            return "fp32"
        return self.policy.rule(op)


class AutocastRefused(RuntimeError):
    """An operation autocast refuses (binary_cross_entropy on CUDA), with torch's own message."""


_ACTIVE: contextvars.ContextVar[AutocastSpec | None] = contextvars.ContextVar("stabcli_autocast", default=None)


def active() -> AutocastSpec | None:
    """The autocast the engines are evaluating under, or None."""
    return _ACTIVE.get()


@contextlib.contextmanager
def use(spec: AutocastSpec | None):
    """Evaluate the torch backend under ``spec`` (None: no autocast) inside the block (``backends.make_ops``)."""
    token = _ACTIVE.set(spec)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def parse(dtype: str | None, device: str | None) -> AutocastSpec | None:
    """--autocast and --device as a spec (None without --autocast); refuses --device alone and unknown names."""
    from stabcli.core.errors import InputError

    if dtype is None:
        if device is not None:
            raise InputError(f"--device {device!r} chooses the device of --autocast; give --autocast float16 or "
                             "bfloat16 with it")
        return None
    dtype, device = dtype.lower(), (device or "cuda").lower()
    if dtype not in DTYPES:
        raise InputError(f"--autocast {dtype!r} is not allowed; torch.autocast takes {' or '.join(DTYPES)}")
    if device not in DEVICES:
        raise InputError(f"--device {device!r} is not allowed; use {' or '.join(DEVICES)}")
    return AutocastSpec(dtype, device)


def context(spec: AutocastSpec):
    """The context manager that evaluates under ``spec``: the real torch.autocast on the CPU, the emulation for
    CUDA."""
    import torch

    low = getattr(torch, spec.dtype)
    if spec.device == "cpu":
        return torch.autocast("cpu", dtype=low)
    return emulate(spec)


def emulate(spec: AutocastSpec):
    """A TorchFunctionMode applying ``spec``'s policy (its device's lists) to every torch call in the block."""
    return _emulation_class()(spec)


def _emulation_class():
    import torch
    from torch.overrides import TorchFunctionMode

    class _Emulation(TorchFunctionMode):
        """Each torch call looked up by name in the policy, its floating inputs cast as autocast casts them."""

        def __init__(self, spec: AutocastSpec):
            super().__init__()
            self.spec = spec
            self.low = getattr(torch, spec.dtype)

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            rule = self.spec.op_rule(getattr(func, "__name__", ""))
            if rule == "banned":
                raise AutocastRefused(self.spec.policy.banned[getattr(func, "__name__", "")])
            if rule == "fp32":
                args, kwargs = _cast((args, kwargs), torch.float32)
            elif rule == "lower":
                args, kwargs = _cast((args, kwargs), self.low)
            elif rule == "promote":
                widest = torch.float32 if _any_eligible((args, kwargs), torch.float32) else self.low
                args, kwargs = _cast((args, kwargs), widest)
            elif rule == "fp32_set_opt_dtype":
                first = next((a for a in _tensors(args)), None)
                if first is not None and _eligible(first) and kwargs.get("dtype") is None:
                    kwargs["dtype"] = torch.float32
            return func(*args, **kwargs)

    return _Emulation


def _eligible(t) -> bool:
    """autocast's is_eligible: a floating tensor that is not float64."""
    import torch

    return isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float64


def _tensors(tree):
    import torch

    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (list, tuple)):
        for item in tree:
            yield from _tensors(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from _tensors(item)


def _any_eligible(tree, dtype) -> bool:
    return any(_eligible(t) and t.dtype == dtype for t in _tensors(tree))


def _cast(tree, dtype):
    """Every eligible tensor in nested args cast to ``dtype`` (autocast's cached_cast, without the cache)."""
    import torch

    if isinstance(tree, torch.Tensor):
        return tree.to(dtype) if _eligible(tree) and tree.dtype != dtype else tree
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cast(item, dtype) for item in tree)
    if isinstance(tree, dict):
        return {k: _cast(v, dtype) for k, v in tree.items()}
    return tree


def compute_dtype_of(op: str, spec: AutocastSpec | None, dtype: str) -> str:
    """The dtype ``op`` computes in for inputs of ``dtype`` under ``spec`` (float32 on a float32 list)."""
    if spec is None:
        return dtype
    return "float32" if spec.op_rule(op) in ("fp32", "fp32_set_opt_dtype") else dtype


__all__ = ["AutocastRefused", "AutocastSpec", "BCE_BANNED_MESSAGE", "CPU", "CUDA", "TORCH_VERSION", "active",
           "compute_dtype_of", "context", "emulate", "parse", "use"]
