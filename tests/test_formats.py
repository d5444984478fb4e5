"""The format table: constants, correct rounding, ulp distances."""

import numpy as np
import pytest

from stabcli.core.errors import InputError
from stabcli.core.formats import FORMATS, get_format, parse_dtypes, round_float64, to_float64, ulps_between


def test_constants_match_the_formats():
    # IEEE 754 binary16/32/64 and bfloat16 (8 exponent bits, 8-bit significand): eps = 2**(1-p)
    assert FORMATS["float16"].eps == 2.0**-10 and FORMATS["float16"].max == 65504.0
    assert FORMATS["bfloat16"].eps == 2.0**-7 and FORMATS["bfloat16"].max == 3.3895313892515355e38
    assert FORMATS["float32"].eps == 2.0**-23 and FORMATS["float64"].eps == 2.0**-52
    assert FORMATS["float16"].smallest_subnormal == 2.0**-24
    assert FORMATS["bfloat16"].smallest_subnormal == 2.0**-133


def test_1e10_rounds_as_design_says():
    # DESIGN.md: 1e10 is inf in float16 and 9999220736 in bfloat16
    assert np.isinf(to_float64(get_format("float16").round([1e10]))[0])
    assert to_float64(get_format("bfloat16").round([1e10]))[0] == 9999220736.0
    assert to_float64(get_format("float32").round([1e10]))[0] == 1e10  # 1e10 = 2**10 · 9765625 fits 24 bits


def test_bfloat16_rounding_is_correct_where_a_float32_cast_would_double_round():
    # 1 + 2**-8 + 2**-30 is just above the tie between 1 and 1 + 2**-7; via float32 it becomes the tie and
    # rounds to even (1.0). Our rounding must give 1 + 2**-7.
    v = np.array([1 + 2**-8 + 2**-30])
    assert float(round_float64(v, FORMATS["bfloat16"]).astype(np.float32)[0]) == 1 + 2**-7


def test_all_finite_counts():
    # issue 3: 63,488 finite float16 values and 65,280 finite bfloat16 values (2**16 less the all-ones exponents)
    f16 = FORMATS["float16"].all_finite()
    bf16 = FORMATS["bfloat16"].all_finite()
    assert f16.size == 2**16 - 2 * 2**10 == 63488
    assert bf16.size == 2**16 - 2 * 2**7 == 65280
    assert to_float64(f16)[-1] == 65504.0 and np.all(np.diff(to_float64(f16)) >= 0)


@pytest.mark.parametrize("name", list(FORMATS))
def test_ulps_between_neighbours(name):
    fmt = FORMATS[name]
    one = np.array([1.0], dtype=fmt.np_dtype)
    nxt = (one.view(fmt.uint_dtype) + 1).view(fmt.np_dtype)
    assert ulps_between(one, nxt, fmt)[0] == 1
    # across zero: +smallest subnormal and -smallest subnormal are 2 apart (through +0/-0, which count as one)
    tiny = np.array([fmt.smallest_subnormal], dtype=np.float64).astype(fmt.np_dtype)
    assert ulps_between(tiny, -tiny, fmt)[0] == 2


def test_parse_dtypes():
    assert [f.name for f in parse_dtypes(["all"])] == ["float16", "bfloat16", "float32", "float64"]
    assert [f.name for f in parse_dtypes(["float32", "float16", "float32"])] == ["float16", "float32"]
    with pytest.raises(InputError, match="float8"):
        parse_dtypes(["float8"])
