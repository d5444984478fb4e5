"""The six methods: seed examples, exact limits, and the torch backend's bit-for-bit BCELoss."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stabcli.commands.compare import run_compare
from stabcli.losses.bce import FAMILY as BCE, Inputs
from stabcli.core.formats import FORMATS, parse_dtypes, to_float64
from stabcli.losses.bce.formulas import METHOD_NAMES


def one(x, y, w=1.0, pw=1.0, reduction="mean"):
    return Inputs(*(np.asarray(v, dtype=np.float64) for v in (x, y, w, pw)), reduction=reduction)


def rows_by(comparison):
    return {(r.backend, r.dtype, r.method): r for r in comparison.rows}


def test_seed_article_example_gives_0_6812_both_ways():
    # Seed article: BCELoss(sigmoid(x), y) and BCEWithLogitsLoss(x, y) on these logits both print 0.6812
    x = [[-0.6117, 0.1446, 0.0415], [-1.5376, -0.2599, -0.9680]]
    y = [[0, 1, 0], [0, 1, 1]]
    shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    inp = Inputs(np.array(x), np.array(y, dtype=float), np.ones(shape), np.ones(shape))
    rows = rows_by(run_compare(inp, parse_dtypes(["float32"])))
    for key in [("numpy", "float32", m) for m in ("naive", "clamped", "logsumexp", "softplus")] + [
        ("torch", "float32", m) for m in METHOD_NAMES
    ]:
        assert round(rows[key].loss, 4) == 0.6812, key
        assert rows[key].status == "ok"


def test_r_torch_example_logit_1_5():
    # The R torch example: logit 1.5, target 1, pos_weight 1 gives -log(sigmoid(1.5)) = log1p(exp(-1.5))
    rows = rows_by(run_compare(one(1.5, 1.0), parse_dtypes(["float64"])))
    want = math.log1p(math.exp(-1.5))
    for (backend, _, method), row in rows.items():
        assert row.loss == pytest.approx(want, rel=4 * 2.0**-52), (backend, method)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_clamped_equals_torch_bce_bit_for_bit_on_every_finite_value(name, y):
    fmt = FORMATS[name]
    xs = fmt.all_finite()
    arrays = {"logits": xs, "targets": fmt.round(np.full(xs.shape, y)), "weight": fmt.round(np.ones(xs.shape)),
              "pos_weight": fmt.round(np.ones(xs.shape))}
    mine, ops = BCE.evaluate("torch", fmt, "clamped", arrays)
    real, _ = BCE.evaluate("torch", fmt, "torch_bce", arrays)
    a, b = ops.to_numpy(mine.loss).view(fmt.uint_dtype), ops.to_numpy(real.loss).view(fmt.uint_dtype)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", ["float32", "float64"])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_clamped_equals_torch_bce_bit_for_bit_on_a_seeded_sample(name, y):
    fmt = FORMATS[name]
    rng = np.random.default_rng(20261122)
    xs = fmt.round(rng.standard_normal(100_000) * 40)  # covers saturation (|x| > 16.6 in float32, 36.7 in float64)
    arrays = {"logits": xs, "targets": fmt.round(np.full(xs.shape, y)), "weight": fmt.round(np.ones(xs.shape)),
              "pos_weight": fmt.round(np.ones(xs.shape))}
    mine, ops = BCE.evaluate("torch", fmt, "clamped", arrays)
    real, _ = BCE.evaluate("torch", fmt, "torch_bce", arrays)
    assert np.array_equal(ops.to_numpy(mine.loss).view(fmt.uint_dtype), ops.to_numpy(real.loss).view(fmt.uint_dtype))


def test_why_torch_log_would_not_match_bceloss_in_float32():
    # Pins the reason clamped goes through torch.xlogy: torch.log (SLEEF) and BCELoss's std::log differ by an
    # ulp on some float32 inputs, so a clamp built on torch.log is not bit-equal to BCELoss.
    g = torch.Generator().manual_seed(0)
    p = torch.sigmoid(torch.randn(200_000, generator=g) * 30)
    y = torch.ones_like(p)
    real = F.binary_cross_entropy(p, y, reduction="none")
    via_log = (y - 1) * torch.clamp(torch.log1p(-p), min=-100) - y * torch.clamp(torch.log(p), min=-100)
    via_xlogy = (y - 1) * torch.clamp(torch.special.xlog1py(torch.ones_like(p), -p), min=-100) - y * torch.clamp(
        torch.xlogy(torch.ones_like(p), p), min=-100)
    assert not torch.equal(real, via_log)
    assert torch.equal(real, via_xlogy)


def test_numpy_and_torch_differ_at_float16_7_625_and_why():
    # DESIGN.md: naive float16 saturates at x = 7.625 op by op and at 8.3203125 in torch. Op by op,
    # exp(-7.625) = 4.8797e-4 stays in float16 below 2**-11, half an ulp of 1, so 1 + exp(-x) rounds to 1.0;
    # one float16 lower, exp(-7.62109375) is above 2**-11 and 1 + exp(-x) rounds up. torch computes sigmoid in
    # float32 (0.99951...) and rounds once, to 1 - 2**-11.
    fmt = FORMATS["float16"]
    x = np.array([7.625], dtype=np.float16)
    below = np.array([7.62109375], dtype=np.float16)
    assert np.exp(-x)[0] < 2.0**-11 < np.exp(-below)[0]
    assert np.float16(1) + np.exp(-x)[0] == np.float16(1)
    assert np.float16(1) + np.exp(-below)[0] == np.float16(1 + 2.0**-10)
    arrays = {"logits": x, "targets": np.array([0.0], np.float16), "weight": np.ones(1, np.float16),
              "pos_weight": np.ones(1, np.float16)}
    ev_np, ops_np = BCE.evaluate("numpy", fmt, "naive", arrays)
    ev_t, ops_t = BCE.evaluate("torch", fmt, "naive", arrays)
    p_np = to_float64(ops_np.to_numpy(ev_np.steps[0].value))[0]
    p_t = to_float64(ops_t.to_numpy(ev_t.steps[0].value))[0]
    assert p_np == 1.0
    assert p_t == 1 - 2.0**-11 == float(np.float16(1 / (1 + math.exp(-7.625))))
    assert math.isinf(to_float64(ops_np.to_numpy(ev_np.loss))[0])  # y = 0: -log(1 - p) = -log(0)
    assert math.isfinite(to_float64(ops_t.to_numpy(ev_t.loss))[0])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if f.has_inf])  # float8_e4m3fn has no inf
@pytest.mark.parametrize(
    "x, y, want",
    [(math.inf, 1.0, 0.0), (math.inf, 0.0, math.inf), (-math.inf, 0.0, 0.0), (-math.inf, 1.0, math.inf),
     (math.inf, 0.25, math.inf), (-math.inf, 0.25, math.inf)],
)
def test_softplus_has_the_exact_limits(backend, name, x, y, want):
    rows = rows_by(run_compare(one(x, y), parse_dtypes([name]), [backend], methods=["softplus"]))
    row = rows[(backend, name, "softplus")]
    assert row.loss == want and row.reference == want and row.status == "ok"


def test_nan_logit_gives_nan_everywhere():
    comparison = run_compare(one(math.nan, 1.0), parse_dtypes(["float32"]))
    assert all(math.isnan(r.loss) and math.isnan(r.reference) for r in comparison.rows)


def test_torch_bce_with_logits_nan_at_infinity_is_shown_as_torchs_result():
    # torch computes (1-y)·x - logsigmoid(x): at x = +inf, y = 1 that is 0·inf = NaN (real torch 2.x behaviour)
    rows = rows_by(run_compare(one(math.inf, 1.0), parse_dtypes(["float32"]), ["torch"]))
    assert math.isnan(rows[("torch", "float32", "torch_bce_with_logits")].loss)
    assert rows[("torch", "float32", "torch_bce_with_logits")].status == "nan"
    assert F.binary_cross_entropy_with_logits(torch.tensor([math.inf]), torch.tensor([1.0])).isnan()


def test_the_1e10_story_in_float32():
    # DESIGN.md's 1e10 story: naive NaN, the clamp gives 0 for y = 1 and 100 for y = 0 (truth 1e10)
    rows = rows_by(run_compare(one(1e10, 1.0), parse_dtypes(["float32"])))
    for backend in ("numpy", "torch"):
        assert rows[(backend, "float32", "naive")].status == "nan"
        assert rows[(backend, "float32", "clamped")].loss == 0.0
        assert rows[(backend, "float32", "clamped")].status == "clamped"
    assert rows[("torch", "float32", "torch_bce")].status == "clamped"
    rows0 = rows_by(run_compare(one(1e10, 0.0), parse_dtypes(["float32"])))
    assert rows0[("torch", "float32", "torch_bce")].loss == 100.0
    assert rows0[("torch", "float32", "torch_bce")].reference == 1e10
    assert rows0[("numpy", "float32", "softplus")].loss == 1e10


def test_pos_weight_leaves_out_torch_bce_and_is_applied():
    comparison = run_compare(one(0.0, 1.0, pw=3.0), parse_dtypes(["float64"]))
    methods = {r.method for r in comparison.rows}
    assert "torch_bce" not in methods and any("pos_weight" in n for n in comparison.notes)
    for r in comparison.rows:  # 3·log 2: pos_weight scales the target-1 term, softplus(0) = log 2
        assert r.loss == pytest.approx(3 * math.log(2), rel=1e-15), r.method


def test_reduction_none_sum_mean():
    x, y = np.array([1.0, -2.0, 3.0]), np.array([1.0, 0.0, 0.25])
    per = run_compare(Inputs(x, y, np.ones(3), np.ones(3), "none"), parse_dtypes(["float64"]), ["numpy"],
                      methods=["softplus"]).rows[0]
    total = run_compare(Inputs(x, y, np.ones(3), np.ones(3), "sum"), parse_dtypes(["float64"]), ["numpy"],
                        methods=["softplus"]).rows[0]
    mean = run_compare(Inputs(x, y, np.ones(3), np.ones(3), "mean"), parse_dtypes(["float64"]), ["numpy"],
                       methods=["softplus"]).rows[0]
    assert isinstance(per.loss, list) and len(per.loss) == 3
    assert total.loss == pytest.approx(sum(per.loss), rel=1e-15)
    assert mean.loss == pytest.approx(sum(per.loss) / 3, rel=1e-15)


def test_methods_per_backend():
    assert BCE.methods_for("numpy") == ("naive", "clamped", "logsumexp", "softplus")
    assert BCE.methods_for("torch") == METHOD_NAMES


def test_fp_events_are_counted_from_the_steps():
    # DESIGN.md: exp overflows in float32 from t = 88.72283935546875, so exp(-x) at x = -100 overflows inside the
    # op-by-op sigmoid; p = 0 then makes log(p) = log(0) = -inf. At x = 1e10 p = 1: log(1 - p) = -inf and
    # 0·(-inf) = NaN.
    rows = rows_by(run_compare(one(-100.0, 1.0), parse_dtypes(["float32"])))
    assert rows[("numpy", "float32", "naive")].events == {"overflow": 1, "divide_by_zero": 1, "invalid": 0}
    assert rows[("torch", "float32", "naive")].events["overflow"] == 0  # torch.sigmoid is one fused kernel
    assert rows[("numpy", "float32", "softplus")].events == {"overflow": 0, "divide_by_zero": 0, "invalid": 0}
    rows = rows_by(run_compare(one(1e10, 1.0), parse_dtypes(["float32"])))
    assert rows[("numpy", "float32", "naive")].events == {"overflow": 0, "divide_by_zero": 1, "invalid": 1}
    assert rows[("numpy", "float32", "clamped")].events == {"overflow": 0, "divide_by_zero": 1, "invalid": 0}


def test_trace_notes_say_what_happened_and_only_then():
    rows = rows_by(run_compare(one(1e10, 1.0), parse_dtypes(["float32"]), ["torch"]))
    notes = {s.name: s.note for s in rows[("torch", "float32", "clamped")].steps}
    assert notes["log1p(-p)"] == "log1p(-1) = log(0) = -inf"  # p rounded to 1.0
    assert notes["max(log1p(-p), -100)"] == "clamp fired: -inf -> -100"
    assert "hides the NaN" in notes["(y-1)·max(log1p)"]
    # float64, x = -150, y = 0: log p = -150 is clamped, but times y = 0 there was no NaN to hide
    rows = rows_by(run_compare(one(-150.0, 0.0), parse_dtypes(["float64"]), ["numpy"]))
    notes = {s.name: s.note for s in rows[("numpy", "float64", "clamped")].steps}
    assert notes["max(log p, -100)"] == "clamp fired: -150 -> -100"
    assert notes["pw·y·max(log p)"] == ""
    # the verdict says what the clamp replaced: at x = -100 in float32 the unclamped loss is inf, not NaN
    rows = rows_by(run_compare(one(-100.0, 1.0), parse_dtypes(["float32"]), ["torch"]))
    assert rows[("torch", "float32", "torch_bce")].verdict.endswith("(without it: inf).")
