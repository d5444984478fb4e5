"""The bad-input battery: hundreds of wrong invocations across every command.

Each must exit 2 with exactly one line, `Error: ...`, that names the offending value, print no traceback, and
leave no file behind.
"""

from __future__ import annotations

import itertools

import pytest
from click.testing import CliRunner

from stabcli.cli import cli

# Every number follows one rule (core/inputs.py): plain ASCII decimal or hex floats, inf, nan. So '0x10' is 16
# (a hex float, as float.fromhex reads it), while underscores, other scripts' digits and full-width digits, all of
# which Python's float() takes, are refused.
BAD_NUMBERS = ["abc", "1e400", "-1e400", "1,,2", "[1,2", "[[1],[2,3]]", "[]", "0x1p", "0x1.8g", "0x1p5000", "1e",
               "1 2", "[true]", '["a"]', "1;2", "∞", "--", "1,", ",1", "[[]]", "nan_", "1e10e1", "1_000", "١٢",
               "１", "1,2]", "[[1,2]", "[1][2]", "[[1][2]]"]
BAD_TARGETS = ["1.5", "-0.1", "nan", "inf", "-inf", "2", "abc", "1e400", "1,,0", "[]", "0.5,1.01", "-1e-300"]
BAD_WEIGHTS = ["-1", "inf", "nan", "abc", "-0.0001", "1e400", "[]", "-inf"]
BAD_TOLS = ["-1", "nan", "inf", "-inf", "abc", "1e400", "1_0", "٣"]


def _needle(value: str) -> str:
    """What the error line must contain to name ``value`` (1e400 is reported as it was typed, or as inf)."""
    return value


CASES: list[tuple[list[str], str]] = []
# compare: logits, targets, weights, options
CASES += [(["compare", v, "1"], _needle(v)) for v in BAD_NUMBERS if v != "--"]
CASES += [(["compare", "1", v], _needle(v)) for v in BAD_TARGETS]
CASES += [(["compare", "1", "1", opt, v], _needle(v)) for opt, v in itertools.product(("--weight", "--pos-weight"),
                                                                                      BAD_WEIGHTS)]
CASES += [(["compare", "1", "1", opt, v], opt) for opt, v in itertools.product(("--rtol", "--atol"), BAD_TOLS)]
CASES += [(["compare", x, y], "broadcast") for x, y in (("1,2", "0,1,1"), ("[[1,2],[3,4]]", "0,1,1"),
                                                          ("1,2,3", "0,1"), ("[[1,2,3]]", "[[0,1],[1,0]]"))]
CASES += [(["compare", "1", "1", "--weight", "1,1,1", "--pos-weight", "1,1"], "broadcast")]
CASES += [(["compare", "1", "1", "--dtype", v], v) for v in ("float8", "fp16", "int8", "half", "FLOAT128")]
CASES += [(["compare", "1", "1", "--backend", v], v) for v in ("jax", "cuda", "tensorflow")]
CASES += [(["compare", "1", "1", "--format", v], v) for v in ("xml", "yaml", "md")]
CASES += [(["compare", "1", "1", "--reduction", v], v) for v in ("avg", "max", "batchmean")]
CASES += [(["compare", "1", "1", v], v) for v in ("--bogus", "--dtypes", "--step")]
CASES += [(["compare", "1"], "TARGETS"), (["compare"], "LOGITS"), (["compare", "", "1"], "empty"),
          (["compare", "1", ""], "empty")]
# sweep
CASES += [(["sweep", "--min", a, "--max", b], "--min") for a, b in (("5", "1"), ("1", "1"), ("0", "-1"),
                                                                      ("1e3", "-1e3"))]
CASES += [(["sweep", opt, v], opt) for opt, v in itertools.product(("--min", "--max"), ("nan", "inf", "-inf", "1e400"))]
CASES += [(["sweep", opt, v], v) for opt, v in itertools.product(("--min", "--max"), ("abc", "1e", "--"))]
CASES += [(["sweep", "--points", v], "--points") for v in ("1", "0", "-5", "1e12", "2.5", "nan", "inf", "1e10")]
CASES += [(["sweep", "--points", v], v) for v in ("abc", "1_000", "١٠", "1e400", "2.5", "1e10")]
CASES += [(["sweep", opt, v], v) for opt, v in itertools.product(("--min", "--max"), ("1_0", "１", "1e400"))]
CASES += [(["sweep", "--spacing", v], v) for v in ("cubic", "geometric", "")]
CASES += [(["sweep", "--exhaustive", opt, v], opt) for opt, v in (("--min", "1"), ("--max", "1"), ("--points", "10"),
                                                                   ("--spacing", "log"))]
CASES += [(["sweep", "--exhaustive", "--dtype", "float64"], "float64"),
          (["sweep", "--exhaustive", "--dtype", "all"], "float64")]
CASES += [(["sweep", "--target", v], _needle(v)) for v in BAD_TARGETS if "," not in v and v != "[]"]
CASES += [(["sweep", opt, v], _needle(v)) for opt, v in itertools.product(("--weight", "--pos-weight"), BAD_WEIGHTS)]
CASES += [(["sweep", opt, v], opt) for opt, v in itertools.product(("--rtol", "--atol"), BAD_TOLS)]
CASES += [(["sweep", "--dtype", v], v) for v in ("float8", "int16")]
CASES += [(["sweep", "--backend", v], v) for v in ("jax", "cuda")]
CASES += [(["sweep", "--format", v], v) for v in ("xml", "png")]
CASES += [(["sweep", "--dtype", "float16", "--plot", "{tmp}/x.gif"], "x.gif"),
          (["sweep", "--dtype", "float16", "--plot", "{tmp}/missing/x.png"], "missing"),
          (["sweep", "--dtype", "float16", "--plot", "{tmp}/blocker/x.png"], "blocker"),
          (["sweep", "--dtype", "float16", "--plot", "{tmp}"], "--plot"),
          (["sweep", "--bogus"], "--bogus")]
# thresholds
CASES += [(["thresholds", "--dtype", v], v) for v in ("float8", "bf16")]
CASES += [(["thresholds", "--format", v], v) for v in ("xml", "png")]
CASES += [(["thresholds", opt, v], opt) for opt, v in itertools.product(("--rtol", "--atol"), BAD_TOLS)]
# plot
CASES += [(["plot", "--out", "{tmp}/blocker/sub"], "blocker"), (["plot", "--out", "{tmp}/blocker"], "blocker")]
CASES += [(["plot", "--out", "{tmp}/f", "--format", v], v) for v in ("gif", "jpg", "png,gif", ",", "pdf", "png,,svg",
                                                                    "png,", "")]
CASES += [(["plot", "--out", ""], "--out"), (["plot", "--out", " "], "--out"),
          (["plot", "--out", "{tmp}/" + "a" * 300], "File name too long"),
          (["plot", "--out", "{tmp}/" + "a" * 300 + "/sub"], "File name too long"),
          (["sweep", "--dtype", "float16", "--plot", "{tmp}/" + "a" * 300 + ".png"], "File name too long"),
          (["sweep", "--dtype", "float16", "--plot", "{tmp}/" + "a" * 300 + "/x.png"], "File name too long"),
          (["plot", "--out", "{tmp}/a\x00b"], "--out"), (["plot", "--out", "{tmp}/\ud800"], "--out"),
          (["sweep", "--dtype", "float16", "--plot", "{tmp}/a\x00.png"], "--plot"),
          (["sweep", "--dtype", "float16", "--plot", "{tmp}/\ud800.png"], "--plot")]
CASES += [(["plot", "--out", "{tmp}/f", "--target", v], v) for v in ("1.5", "-1", "nan", "inf")]
CASES += [(["plot", "--out", "{tmp}/f", "--target", "abc"], "abc")]
CASES += [(["plot", "--out", "{tmp}/f", "--dtype", v], v) for v in ("float8", "x")]
CASES += [(["plot", "--out", "{tmp}/f", "--backend", v], v) for v in ("jax", "x")]
# demo
CASES += [(["demo", "--step", v], v) for v in ("0", "9", "-1", "100", "abc", "1.5", "1_0", "٣", "1e400", "nan")]
CASES += [(["demo", "--dtype", v], v) for v in ("float8", "int8")]
CASES += [(["demo", "--export", "{tmp}/" + v], v) for v in ("h.txt", "h", "h.pdf", "missing/h.md", "blocker/h.md")]
CASES += [(["demo", "--export", "{tmp}"], "folder"), (["demo", "--export", "{tmp}/h.md", "--step", "9"], "9")]
CASES += [(["plot", "--out", "{tmp}/f", "--slide", v], v) for v in ("pie", "los")]
# the group
CASES += [([v], v) for v in ("nosuchcommand", "--bogus", "comparee")]


def test_the_battery_is_large():
    assert len(CASES) >= 200


@pytest.mark.parametrize("args, needle", CASES, ids=[" ".join(a) or "(empty)" for a, _ in CASES])
def test_bad_invocation(tmp_path, args, needle):
    (tmp_path / "blocker").write_text("a file where a folder is expected")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    needle = needle.replace("{tmp}", str(tmp_path))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file, not even a half-written one
