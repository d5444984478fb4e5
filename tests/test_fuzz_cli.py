"""Every command, random text in every argument (issue 16, item 8): exit 0 or 2, never a traceback, and on exit 2
exactly one `Error:` line on stderr.

hypothesis draws, per example, which of a command's arguments get random text (one of them, or any number) and
what text: random unicode (lone surrogates and NUL included: a Linux argv cannot hold all of them, but CliRunner
and other platforms can), a token from a list of known troublemakers, or a valid number of any size (decimal or
hex). The other arguments keep quick valid values, so that an example that happens to be valid runs in a
fraction of a second. Derandomized, so CI sees the same examples on
every run; examples and deadline are bounded to keep the file to a few seconds per command.

What is made smaller, and why (each engine's numbers have their own tests):
* thresholds measures on an 11-point grid instead of every float16 value (seconds per example otherwise);
* sweep refuses more than 1,000 points (so a random '999999' costs nothing; it is then an exit 2);
* figures and handouts are not drawn: plot's writers (figures, slides), sweep's --plot writer and demo's
  --export writer are replaced by ones that, inside this test's folder, write small files (plot's through the
  same staging folder); the path checks before them are the real ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stabcli.cli import cli

TOKENS = ["", " ", "0", "1", "-1", "-0", "0.5", "2", "nan", "inf", "-inf", "1e400", "-1e400", "1e-400", "0x1p-1074",
          "0x1.8p3", "0x1p5000", "1_000", "١٢", "１", "[1,2", "1,2]", "[[1],[2,3]]", "[[0.1,0.2],[0.3,0.4]]", "1,,2",
          "[]", '["inf"]', "--bogus", "--help", "-h", "-", "--", "all", "float16", "bfloat16", "torch", "numpy", "json",
          "csv", "table", "none", "sum", "mean", "linear", "log", "float32", "float64", "png,svg", "svg", "png,,svg",
          "x.png", "x.svg", "fig", "9" * 400, "\n", "a\nb", "\udcff", "é", "∞", "1e10", "-100", "3", "8", "1e9", "/",
          ".", "..", "/proc/x.png", "-2e304", "1.7976931348623157e308", "5e-324", "-5e-324", "softmax", "bce",
          "[[12,0,-12]]", "[[1,2,3],[4,5,6]]", "1,0,0", "0.2,0.3,0.5", "1e-99999", "0e999999999",
          "training", "values"]
NUMBERS = st.one_of(  # valid numbers of every size, so that the values past parsing get tried too
    st.floats().map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(float.hex),
    st.integers(-10**6, 10**6).map(str),
    st.floats(0, 1).map(repr),
)
TEXT = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=()), max_size=24),
    st.sampled_from(TOKENS),
    NUMBERS,
)

# command -> (positional slots, option slots): each slot's quick valid value (None: the option is left out)
COMMANDS = {
    "compare": ({"LOGITS": "1", "TARGETS": "1"},
                {"--loss": None, "--dtype": "float16", "--backend": "numpy", "--weight": None, "--pos-weight": None,
                 "--reduction": None, "--label-smoothing": None, "--rtol": None, "--atol": None, "--format": None}),
    "sweep": ({}, {"--loss": None, "--dtype": "float16", "--backend": "numpy", "--points": "11", "--target": None,
                   "--weight": None, "--pos-weight": None, "--label-smoothing": None, "--classes": None,
                   "--shift": None, "--rtol": None, "--atol": None, "--format": None, "--min": None, "--max": None,
                   "--spacing": None, "--plot": None, "--severity": None}),
    "thresholds": ({}, {"--loss": None, "--dtype": "float16", "--rtol": None, "--atol": None, "--format": None}),
    "plot": ({}, {"--loss": None, "--dtype": "float16", "--backend": "numpy", "--target": "0", "--out": "figs",
                  "--format": "png", "--slide": None}),
    "demo": ({}, {"--step": "1", "--dtype": None, "--export": None}),
    "float": ({"VALUE": "1"}, {"--dtype": "float16", "--format": None}),
    # issue 11: files (small ones the sandbox writes), probabilities and autocast
    "check": ({"LOGITS": "x.npy", "TARGETS": "y.npy"},
              {"--key": None, "--targets-key": None, "--loss": None, "--dtype": None, "--backend": "numpy",
               "--weight": None, "--pos-weight": None, "--label-smoothing": None, "--rtol": None, "--atol": None,
               "--format": None, "--autocast": None, "--device": None, "--worst": None, "--severity": None,
               "--plot": None}),
}
COMMANDS["compare"][1].update({"--autocast": None, "--device": None})
COMMANDS["sweep"][1].update({"--autocast": None, "--device": None})
FLAGS = {"compare": ["--no-steps"], "sweep": ["--no-grad"], "thresholds": [], "plot": [], "demo": [], "float": [],
         "check": ["--no-grad"]}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working folder for relative paths, quick engines, and figure writers that stay inside it."""
    from stabcli.commands import curves
    from stabcli.commands import sweep as sweep_engine
    from stabcli.commands import thresholds as thresholds_engine
    from stabcli.present import handout, plots

    home = tmp_path_factory.mktemp("fuzz").resolve()
    real_make_grid = sweep_engine.make_grid

    def inside(path) -> bool:
        try:
            return Path(os.path.abspath(path)).is_relative_to(home) and len(str(path).encode("utf-8", "replace")) < 200
        except (ValueError, OSError):
            return False

    def fake_write_figures(out, formats, figures):  # figures: a generator, never run (nothing is computed)
        names = [f"figure.{e}" for e in formats]
        if not inside(out):
            return [Path(out) / n for n in names]
        with plots.staged_folder(out) as staging:
            for n in names:
                (staging / n).write_bytes(b"figure")
        return [Path(out) / n for n in names]

    def fake_write_slides(out, formats, kind, slides):
        return fake_write_figures(out, formats, slides)

    def fake_write_sweep_figure(figure, path):
        if inside(path):
            Path(path).write_bytes(b"figure")
        return Path(path)

    def fake_write_check_figure(check, histogram, path):
        if inside(path):
            Path(path).write_bytes(b"figure")
        return Path(path)

    def fake_write_handout(path, dtype, numbers=None):
        if inside(path):
            Path(path).write_bytes(b"handout")
        return [Path(path)]

    before = os.getcwd()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(thresholds_engine, "make_grid", lambda **kw: real_make_grid(-20.0, 20.0, 11, "linear"))
        mp.setattr(sweep_engine, "MAX_POINTS", 1000)
        mp.setattr(plots, "write_figures", fake_write_figures)
        mp.setattr(plots, "write_sweep_figure", fake_write_sweep_figure)
        mp.setattr(curves, "sweep_figure", lambda sweep, rtol=None, atol=None: None)  # the curves are not drawn
        mp.setattr(plots, "write_slides", fake_write_slides)
        mp.setattr(handout, "write_handout", fake_write_handout)
        mp.setattr(plots, "write_check_figure", fake_write_check_figure)
        import numpy as np

        np.save(home / "x.npy", np.array([0.5, -3.0, 9.0], dtype=np.float16))
        np.save(home / "y.npy", np.array([0.0, 1.0, 0.0], dtype=np.float16))
        os.chdir(home)
        try:
            yield home
        finally:
            os.chdir(before)


def invocation(command: str, chosen: dict[str, str]) -> list[str]:
    positional, opts = COMMANDS[command]
    args = [command] + [chosen.get(slot, value) for slot, value in positional.items()]
    for opt, value in opts.items():
        value = chosen.get(opt, value)
        if value is not None:
            args += [opt, value]
    return args + FLAGS[command]


def check(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    where = f"stabcli {args!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (where, result.exc_info)
    assert result.exit_code in (0, 2), (where, result.output)
    assert "Traceback" not in result.output, (where, result.output)
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (where, result.stderr)


FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _slots(command: str):
    """Random text in one argument (the others valid, so that the text itself is what gets judged), or in any
    number of them at once."""
    positional, opts = COMMANDS[command]
    names = [*positional, *opts]
    one = st.sampled_from(names).flatmap(lambda name: st.fixed_dictionaries({name: TEXT}))
    several = st.fixed_dictionaries({}, optional={name: TEXT for name in names})
    return st.one_of(one, several)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_random_text_in_every_argument(sandbox, command):
    @FUZZ
    @given(chosen=_slots(command))
    def run(chosen):
        check(invocation(command, chosen))

    run()


@FUZZ
@given(words=st.lists(TEXT, min_size=0, max_size=3))
def test_random_words_after_stabcli(sandbox, words):
    check(words)
