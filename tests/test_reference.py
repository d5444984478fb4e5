"""The mpmath reference against literals computed independently, and its rounding helpers."""

import math

import mpmath
import numpy as np
import pytest

from stabcli.losses.bce import reference
from stabcli.core.formats import FORMATS, round_float64

# Literals made with a plain, independent snippet (200 bits, the log1p form written out again):
#   import mpmath; mpmath.mp.prec = 200
#   def sp(t): return t + mpmath.log1p(mpmath.exp(-t)) if t > 0 else mpmath.log1p(mpmath.exp(t))
#   def loss(x, y): x = mpmath.mpf(x); y = mpmath.mpf(y); return y * sp(-x) + (1 - y) * sp(x)
#   [mpmath.nstr(loss(x, y), 20) for y in (0, 1, 0.25)]
# The logits: 0, ±1e-8, the saturation and overflow points of DESIGN.md's facts, ±100, ±1e4, 1e10.
LITERALS = {
    0.0: ("0.69314718055994530942", "0.69314718055994530942", "0.69314718055994530942"),
    1e-08: ("0.69314718555994532192", "0.69314717555994532192", "0.69314718305994532192"),
    -1e-08: ("0.69314717555994532192", "0.69314718555994532192", "0.69314717805994532192"),
    7.625: ("7.625487976163786633", "0.00048797616378663300101", "5.719237976163786633"),
    -11.09375: ("0.000015206955995846339543", "11.093765206955995846", "2.7734527069559958463"),
    8.3203125: ("8.3205559901062890781", "0.00024349010628907811281", "6.2404778651062890781"),
    -17.34375: ("2.9356553882059781779e-8", "17.343750029356553882", "4.3359375293565538821"),
    5.5625: ("5.5663318156823536241", "0.0038318156823536241025", "4.1757068156823536241"),
    6.25: ("6.2519285932042193808", "0.0019285932042193807783", "4.6894285932042193808"),
    -89.0: ("2.2273635617957437392e-39", "89.0", "22.25"),
    16.63553237915039: ("16.635532438755030899", "5.9604640274404249606e-8", "12.476649343967433243"),
    -88.72283935546875: ("2.9387351606044877455e-39", "88.72283935546875", "22.1807098388671875"),
    36.73680056967711: ("36.736800569677107942", "1.1102230246251493385e-16", "27.552600427257830984"),
    -709.7827128933841: ("5.562684646267503151e-309", "709.78271289338408678", "177.4456782233460217"),
    100.0: ("100.0", "3.720075976020835963e-44", "75.0"),
    -100.0: ("3.720075976020835963e-44", "100.0", "25.0"),
    1e4: ("10000.0", "1.1354838653147360985e-4343", "7500.0"),
    -1e4: ("1.1354838653147360985e-4343", "10000.0", "2500.0"),
    1e10: ("10000000000.0", "9.2785844203248725781e-4342944820", "7500000000.0"),
}


@pytest.mark.parametrize("x", list(LITERALS))
@pytest.mark.parametrize("column, y", [(0, 0.0), (1, 1.0), (2, 0.25)])
def test_exact_loss_matches_literals(x, column, y):
    got = reference.exact_loss(x, y)
    with mpmath.workprec(200):
        want = mpmath.mpf(LITERALS[x][column])
        assert abs(got - want) <= abs(want) * mpmath.mpf(10) ** -19  # the literals carry 20 digits


@pytest.mark.parametrize(
    "x, y, want",
    [  # DESIGN.md: loss(+inf, y) is 0 for y = 1 and +inf otherwise; loss(-inf, y) is 0 for y = 0, +inf otherwise
        (math.inf, 1.0, 0.0), (math.inf, 0.0, math.inf), (math.inf, 0.25, math.inf),
        (-math.inf, 0.0, 0.0), (-math.inf, 1.0, math.inf), (-math.inf, 0.25, math.inf),
    ],
)
def test_exact_limits_at_infinity(x, y, want):
    assert reference.to_float64_nearest(reference.exact_loss(x, y)) == want


def test_nan_in_nan_out():
    assert math.isnan(reference.to_float64_nearest(reference.exact_loss(math.nan, 1.0)))


def test_weight_and_pos_weight():
    # w·(pw·y·softplus(-x) + (1-y)·softplus(x)) at x = 0, y = 1, w = 3, pw = 2 is 3·2·log 2 (softplus(0) = log 2)
    got = reference.to_float64_nearest(reference.exact_loss(0.0, 1.0, 3.0, 2.0))
    assert got == pytest.approx(6 * math.log(2), rel=1e-15)


def test_round_to_odd_then_nearest_avoids_double_rounding():
    # 1 + 2**-8 + 2**-60 lies just above the tie between the bfloat16 neighbours 1 and 1 + 2**-7 (bfloat16 has
    # 8 significant bits), so it must round up. Its nearest float64 is the tie 1 + 2**-8 itself, which rounds
    # (ties to even) down to 1: the double rounding that round-to-odd avoids.
    with mpmath.workprec(200):
        exact = 1 + mpmath.mpf(2) ** -8 + mpmath.mpf(2) ** -60
    odd = reference.to_float64_odd(exact)
    nearest = reference.to_float64_nearest(exact)
    bf16 = FORMATS["bfloat16"]
    assert float(round_float64(np.array([nearest]), bf16).astype(np.float32)[0]) == 1.0
    assert float(round_float64(np.array([odd]), bf16).astype(np.float32)[0]) == 1 + 2**-7


def test_round_to_odd_exact_values_unchanged():
    assert reference.to_float64_odd(mpmath.mpf(0.75)) == 0.75
    assert reference.to_float64_odd(mpmath.mpf(0)) == 0.0


def test_error_bits_are_herbies_log2_of_1_plus_ulps_on_a_known_error():
    # DESIGN.md's weak spot: float32, x = -12, y = 0, torch's BCEWithLogits gives 6·2**-20 (-12 - logsigmoid(-12)
    # with logsigmoid rounded at 12's ulp, 2**-20) where the truth is mpmath.log1p(mpmath.exp(-12)) = 6.144e-6.
    # Both lie in [2**-18, 2**-17), where float32's ulp is 2**-41, so the ulps are counted here by hand.
    from stabcli.commands.compare import run_compare
    from stabcli.core.formats import parse_dtypes
    from stabcli.losses.bce import Inputs

    with mpmath.workprec(200):
        truth = float(np.float32(float(mpmath.log1p(mpmath.exp(-12)))))  # correctly rounded: far from a tie
    loss = 6 * 2.0**-20
    ulps = (truth - loss) / 2.0**-41
    assert ulps == int(ulps) and 900_000 < ulps < 950_000
    one = [np.array(v, dtype=np.float64) for v in (-12.0, 0.0, 1.0, 1.0)]
    row = next(r for r in run_compare(Inputs(*one), parse_dtypes(["float32"]), ["torch"]).rows
               if r.method == "torch_bce_with_logits")
    assert row.loss == loss and row.status == "inaccurate"
    assert row.error_bits == pytest.approx(math.log2(1 + ulps), rel=1e-12)
