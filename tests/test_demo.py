"""`stabcli demo`: it runs through without input, every number it shows is what the core gives for the same
inputs, --step and --pause work, bad input is one `Error:` line, and every command's help teaches.

The numbers are never copied here: each one the demo shows is a Quote that names the core call it came from,
and the tests below make that call again themselves (run_compare, run_sweep, thresholds.predict, a format's
constants, and a plain numpy version of the clip of step 8) and compare.
"""

from __future__ import annotations

import math
import re
import shlex
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from stabcli.cli import demo as cli_demo
from stabcli.cli import options as cli_options
from stabcli.present import demo
from stabcli.present import demo_view as render
from stabcli.cli import cli
from stabcli.commands.compare import run_compare
from stabcli.losses.bce import Inputs
from stabcli.core.formats import FORMATS
from stabcli.commands.sweep import make_grid, run_sweep
from stabcli.losses.bce.thresholds import predict
from stabcli.losses.bce.grad_thresholds import grad_epsilon

STEPS = range(1, demo.STEP_COUNT + 1)
# float32 is the default and tells the seed article's story; float16 takes the other branches (1e10 overflows,
# Keras's 1 - 1e-7 rounds to 1, 1e-12 rounds to 0).
CHECKED_DTYPES = ("float32", "float16")


def run(*args, **kwargs):
    return CliRunner().invoke(cli, list(args), **kwargs)


def flat(text: str) -> str:
    """Rendered panels as one line of words: borders dropped, wrapped sentences joined."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


@pytest.fixture(scope="module")
def built():
    return {dtype: demo.build_steps(dtype) for dtype in CHECKED_DTYPES}



# --- every number equals what the core gives ------------------------------------------------------------------

class Again:
    """The core calls made afresh by the test, once each."""

    def __init__(self):
        self.comparisons = {}
        self.sweep16 = None
        self.grid_sweeps = {}

    def compare(self, call):
        key = (repr(call["logits"]), repr(call["targets"]), call["dtype"])
        if key not in self.comparisons:
            x = np.asarray(call["logits"], dtype=np.float64)
            y = np.asarray(call["targets"], dtype=np.float64)
            shape = np.broadcast_shapes(x.shape, y.shape)
            inputs = Inputs(np.broadcast_to(x, shape), np.broadcast_to(y, shape), np.ones(shape), np.ones(shape))
            self.comparisons[key] = run_compare(inputs, [FORMATS[call["dtype"]]])
        comparison = self.comparisons[key]
        row = next(r for r in comparison.rows if r.backend == call["backend"] and r.method == call["method"])
        what = call["field"]
        if what == "input":
            return row.input[0]
        if what.startswith("step:"):
            return next(s.value for s in row.steps if s.name == what[len("step:"):])
        return getattr(row, what)

    def sweep(self, call):
        if call["grid"] == "default":  # one method over stabcli sweep's default grid, with gradients
            key = (call["dtype"], call["backend"], call["method"], call["target"])
            if key not in self.grid_sweeps:
                self.grid_sweeps[key] = run_sweep([FORMATS[call["dtype"]]], [call["backend"]], [call["target"]],
                                                  make_grid(), methods=[call["method"]], grad=True)
            return demo.sweep_field(self.grid_sweeps[key].rows[0], call["field"])
        assert call["dtype"] == "float16" and call["grid"] == "exhaustive" and call["method"] == "naive"
        if self.sweep16 is None:
            self.sweep16 = run_sweep([FORMATS["float16"]], ["numpy", "torch"], [0.0, 1.0],
                                     make_grid(exhaustive=True), methods=["naive"])
        row = next(r for r in self.sweep16.rows if r.backend == call["backend"] and r.target == call["target"])
        return getattr(row.breakdown, call["field"])


def format_constant(call):
    """Format constants from their definitions (not from the demo's code)."""
    fmt = FORMATS[call["dtype"]]
    what = call["what"]
    if what == "below_one":
        return 1 - fmt.eps / 2  # the value below 1 is 1 - 2^-p, and eps = 2^(1-p)
    if what == "spacing":
        return 2.0 ** math.floor(math.log2(call["at"])) * fmt.eps  # gap in [2^e, 2^(e+1)) is 2^e·eps
    return getattr(fmt, what)


def clip_again(call):
    """Keras's and scikit-learn's clipped BCE written plainly in numpy, in the dtype (float16, float32, float64:
    numpy's own casts round correctly; bfloat16's go through float32 and are not used here). tf.keras 2.x adds
    its epsilon inside each log (tf_keras/backend.py: `target * tf.math.log(output + epsilon())`)."""
    dt = FORMATS[call["dtype"]].np_dtype.type
    with np.errstate(all="ignore"):
        x, y, low, high = dt(call["x"]), dt(call["y"]), dt(call["low"]), dt(call["high"])
        e = dt(call["log_eps"])
        p = dt(1) / (dt(1) + np.exp(-x))
        pc = np.clip(p, low, high)
        loss = -(y * np.log(pc + e) + (dt(1) - y) * np.log(dt(1) - pc + e))
    return float({"loss": loss, "high": high, "low": low, "one_minus_high": dt(1) - high, "p": p,
                  "log_eps": e}[call["field"]])


def same(shown, again) -> bool:
    if isinstance(shown, str) or isinstance(again, str):
        return shown == again
    shown, again = float(shown), float(again)
    if math.isnan(shown) or math.isnan(again):
        return math.isnan(shown) and math.isnan(again)
    return shown == again and math.copysign(1, shown) == math.copysign(1, again)


@pytest.mark.parametrize("dtype", CHECKED_DTYPES)
def test_every_number_is_what_the_core_gives(built, questions, dtype):
    again = Again()
    thresholds = {}
    for step in built[dtype] + questions[dtype]:
        assert step.quotes, f"step {step.number} shows no computed number"
        for q in step.quotes:
            call = q.call
            if q.source == "compare":
                value = again.compare(call)
            elif q.source == "sweep":
                value = again.sweep(call)
            elif q.source == "threshold":
                if call["dtype"] not in thresholds:
                    thresholds[call["dtype"]] = {t.name: t.predicted for t in predict(FORMATS[call["dtype"]])}
                value = thresholds[call["dtype"]][call["name"]]
            elif q.source == "thresholds_grad":
                assert call["function"] == "grad_epsilon"
                value = grad_epsilon(FORMATS[call["dtype"]])
            elif q.source == "format":
                value = format_constant(call)
            elif q.source == "clip":
                value = clip_again(call)
            else:
                raise AssertionError(f"unknown source {q.source!r}")
            assert same(q.value, value), (step.number, q.source, call, q.value, value)


@pytest.mark.parametrize("dtype", CHECKED_DTYPES)
def test_every_number_of_a_question_is_shown(questions, dtype):
    for q in questions[dtype]:
        console = Console(file=None, width=80, color_system=None, record=True)
        with console.capture() as cap:
            console.print(render.question_renderable(q, demo.STEP_COUNT))
            console.print(render.answer_renderable(q))
        text = flat(cap.get())
        for quote in q.quotes:
            assert quote.text() in text, (q.number, quote.text())


@pytest.mark.parametrize("dtype", CHECKED_DTYPES)
def test_every_quoted_number_is_shown(built, dtype):
    for step in built[dtype]:
        console = Console(file=None, width=80, color_system=None, record=True)
        with console.capture() as cap:
            console.print(render.demo_step_renderable(step, demo.STEP_COUNT))
        text = flat(cap.get())
        for q in step.quotes:
            assert q.text() in text, (step.number, q.text())


def shown(steps, number, **call):
    """The value of the one quote of step ``number`` whose call has these arguments."""
    found = [q.value for q in steps[number - 1].quotes if all(q.call.get(k) == v for k, v in call.items())]
    assert found, (number, call)
    assert all(same(v, found[0]) for v in found)
    return found[0]


def test_the_numbers_tell_the_story(built):
    """Spot checks of what the float32 walk-through shows against DESIGN.md ("The 1e10 story", "Facts with their
    sources") and the issue: the quotes carry the right numbers, not merely the core's."""
    steps = built["float32"]
    seed = shown(steps, 1, method="torch_bce", field="loss")
    assert f"{seed:.4f}" == "0.6812" == f"{shown(steps, 1, method='logsumexp', field='loss'):.4f}"
    assert math.isnan(shown(steps, 2, logits=1e10, targets=1.0, backend="torch", method="naive", field="loss"))
    assert shown(steps, 2, logits=1e10, targets=0.0, backend="torch", method="naive", field="loss") == math.inf
    assert shown(steps, 2, logits=1e10, targets=1.0, method="torch_bce", field="loss") == 0
    assert shown(steps, 2, logits=1e10, targets=0.0, method="torch_bce", field="loss") == 100
    assert shown(steps, 2, logits=1e10, targets=0.0, method="logsumexp", field="loss") == 1e10
    assert shown(steps, 3, method="naive", field="step:p = sigmoid(x)") == 1.0
    assert shown(steps, 3, method="clamped", field="step:max(log1p(-p), -100)") == -100
    assert shown(steps, 4, logits=1e10, method="torch_bce", field="loss") == 100
    assert shown(steps, 5, backend="numpy", field="nonfinite_pos") == 7.625
    assert shown(steps, 5, backend="torch", field="nonfinite_pos") == 8.3203125
    assert shown(steps, 6, logits=40.0, method="torch_bce", field="grad", dtype="float32") == 0  # should be 1
    assert shown(steps, 6, logits=40.0, method="torch_bce_with_logits", field="grad", dtype="float32") == 1
    assert math.isnan(shown(steps, 6, logits=40.0, method="torch_bce", field="grad", dtype="float16"))
    # BCEWithLogitsLoss's gradient, target 1, float32 torch: 0 from where sigmoid rounds to 1 (DESIGN.md:
    # 16.63553237915039), where the truth is -sigmoid(-x) = -5.96e-8 (mpmath: -1/(1+exp(16.63553237915039))).
    wl_grad = {"method": "torch_bce_with_logits", "grid": "default"}
    assert shown(steps, 7, field="grad.vanished_pos", **wl_grad) == 16.63553237915039
    assert f"{shown(steps, 7, field='grad_reference', method='torch_bce_with_logits', logits=16.63553237915039):.3g}" \
        == "-5.96e-08"
    assert shown(steps, 7, field="grad_count_vanished", **wl_grad) > 0
    assert shown(steps, 7, field="grad_count_vanished", method="softplus", grid="default") == 0
    wl = shown(steps, 7, logits=-12.0, method="torch_bce_with_logits", field="loss")
    ref = shown(steps, 7, logits=-12.0, targets=0.0, field="reference")
    assert f"{wl:.3g}" == "5.72e-06" and f"{ref:.4g}" == "6.144e-06"


def test_clip_of_step_8_in_float32_is_not_minus_log_1e7(built):
    step8 = built["float32"][7]
    def top(log_eps):
        return next(q for q in step8.quotes if q.source == "clip" and q.call["low"] == demo.KERAS_EPSILON
                    and q.call["field"] == "loss" and q.call["x"] == demo.BIG and q.call["dtype"] == "float32"
                    and q.call["log_eps"] == log_eps)

    keras3, tf_keras2 = top(0.0), top(demo.KERAS_EPSILON)
    # 1 - 1e-7 rounds to 1 - 2^-23 in float32 (its neighbours are 1 - 2^-24 and 1 - 2^-23; 1e-7 is nearer 2^-23),
    # so the largest loss is -log(2^-23) = 23·ln 2 rounded to float32, not -log(1e-7).
    assert keras3.value == float(np.float32(23 * math.log(2)))
    assert keras3.value != float(np.float32(-math.log(1e-7)))
    # tf.keras 2.x: -log(2^-23 + 1e-7) (mpmath: -log(mpf(2)**-23 + mpf(1e-7)) = 15.333238903433; float32 rounding of
    # the sum and of the log moves it by well under 1e-5)
    assert abs(tf_keras2.value - 15.3332386) < 1e-5


def test_step_2_in_float16_says_the_inf_comes_from_the_overflow(built):
    """Issue 15: in float16, 1e10 is inf before any formula runs, so naive's inf (status ok against the loss at
    x = inf) is not 'about x itself'; the true loss at 1e10 is 1e10 (mpmath, taken in float64, which holds 1e10)."""
    step = built["float16"][1]
    assert shown(built["float16"], 2, logits=1e10, targets=0.0, field="reference", dtype="float64") == 1e10
    assert shown(built["float16"], 2, logits=1e10, targets=0.0, field="reference", dtype="float16") == math.inf
    text = flat(" ".join(step.paragraphs + step.after))
    assert "The true loss is 0 if the target is 1 (right and sure) and 1e10 if it is 0" in text
    assert "judged against the loss at x = inf (0 and inf), not at 1e10" in text
    assert "comes from the overflow of 1e10, not from the formula" in text
    assert step.tables[0].rows[-1][0] == "exact at x = inf"
    assert "exact (mpmath)" == built["float32"][1].tables[0].rows[-1][0]


def test_step_8_says_which_keras_does_what(built):
    text = " ".join(" ".join(s.after) for s in [built["float32"][7]])
    assert "tf.keras 2.x" in text and "Keras 3 on torch, JAX or NumPy does not" in text
    assert "from_logits=True" in text


def test_clipped_bce_is_what_keras_3_on_torch_computes(monkeypatch):
    """With Keras 3 installed (the optional peers), on the torch backend: keras.losses.binary_crossentropy on
    keras.activations.sigmoid(x) is the clipped rule of clipped_bce, in float32, at the step's logits (±1e10,
    where the log's argument is the clip's bound) and at moderate ones. Not where p clips at 1e-7 with y = 0:
    torch's BCELoss then takes log1p(-1e-7), the numpy rule log(1 - 1e-7), a different number. torch's sigmoid
    and log may differ from numpy's op-by-op ones by an ulp, hence the 4-eps tolerance."""
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras runs on {keras.backend.backend()} here, not torch")
    import torch

    f32 = FORMATS["float32"]
    for x, y in ((1e10, 0.0), (1e10, 1.0), (-1e10, 1.0), (40.0, 0.0), (-40.0, 1.0), (3.0, 0.0), (3.0, 1.0),
                 (-0.5, 0.0), (-0.5, 1.0)):
        p = keras.activations.sigmoid(torch.tensor([x], dtype=torch.float32))
        got = float(keras.losses.binary_crossentropy(torch.tensor([y]), p))
        want = demo.clipped_bce(x, y, f32, demo.KERAS_EPSILON, 1 - demo.KERAS_EPSILON).loss
        assert got == pytest.approx(want, rel=4 * f32.eps), (x, y)


# --- the command -------------------------------------------------------------------------------------------

def test_demo_runs_through_without_input():
    result = run("demo")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    for n in STEPS:
        assert f"Step {n} of 8" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    text = flat(result.stdout)
    for phrase in ("sigmoid rounded to exactly 1.0 in float32", "log(0) = -inf", "0·(-inf) = NaN",
                   "clamp fired: -inf -> -100", "the clamp hides the NaN", "BCEWithLogitsLoss"):
        assert phrase in text, phrase


@pytest.mark.parametrize("n", STEPS)
def test_step_n_shows_step_n_only(n):
    result = run("demo", "--step", str(n))
    assert result.exit_code == 0, result.output
    shown = re.findall(r"Step (\d) of 8", result.stdout)
    assert shown == [str(n)]
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


@pytest.mark.parametrize("dtype", ["bfloat16", "float64"])
def test_other_dtypes_fit_80_columns(dtype):
    for n in (2, 7, 8):
        result = run("demo", "--step", str(n), "--dtype", dtype)
        assert result.exit_code == 0, result.output
        assert f"In {dtype}" in flat(result.stdout)
        assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_pause_waits_for_enter_on_a_terminal(monkeypatch):
    monkeypatch.setattr(cli_options, "stdin_is_terminal", lambda: True)
    result = run("demo", "--pause", input="\n" * 7)
    assert result.exit_code == 0, result.output
    prompts = re.findall(r"Press Enter for step (\d) of 8", result.stderr)
    assert prompts == [str(n) for n in range(2, 9)]
    out = result.output  # stdout and stderr in the order a terminal shows them
    for n in range(2, 9):  # each prompt comes after the step before it and before its own step
        assert out.index(f"Step {n - 1} of 8 ·") < out.index(f"Press Enter for step {n} of 8") \
            < out.index(f"Step {n} of 8 ·")
    assert "stdin ended" not in result.stderr


def test_pause_runs_on_when_stdin_ends(monkeypatch):
    monkeypatch.setattr(cli_options, "stdin_is_terminal", lambda: True)
    result = run("demo", "--pause", input="\n")
    assert result.exit_code == 0, result.output
    assert re.findall(r"Press Enter for step (\d)", result.stderr) == ["2", "3"]
    assert "stdin ended; showing the remaining steps without pausing" in result.stderr
    assert re.findall(r"Step (\d) of 8 ·", result.stdout) == [str(n) for n in STEPS]


def test_pause_without_a_terminal_says_so_and_does_not_hang():
    result = run("demo", "--pause")  # CliRunner's stdin is not a terminal
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--pause needs a terminal on stdin" in lines[0]
    assert re.findall(r"Step (\d) of 8 ·", result.stdout) == [str(n) for n in STEPS]


def test_pause_with_one_step_does_not_wait(monkeypatch):
    monkeypatch.setattr(cli_options, "stdin_is_terminal", lambda: True)
    result = run("demo", "--pause", "--step", "3")
    assert result.exit_code == 0 and result.stderr == ""


@pytest.mark.parametrize("args, needle", [
    (["--step", "0"], "--step '0'"),  # quoted as typed, as every number option's message
    (["--step", "9"], "--step '9'"),
    (["--step", "-1"], "--step '-1'"),
    (["--step", "two"], "'two'"),
    (["--dtype", "float8"], "float8"),
    (["--dtype", "all"], "'all'"),
    (["--bogus"], "--bogus"),
])
def test_bad_input_is_one_error_line_exit_2(args, needle):
    result = run("demo", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert needle in lines[0]
    if args[0] == "--step" and needle.startswith("--step"):
        assert "1 to 8" in lines[0]
    assert "Traceback" not in result.output


def test_core_refuses_bad_steps_and_dtypes():
    from stabcli.core.errors import InputError

    with pytest.raises(InputError, match="1 to 8"):
        demo.build_step(9)
    with pytest.raises(InputError, match="float8"):
        demo.build_step(1, "float8")


def test_no_numpy_warning_and_no_heavy_import_for_help():
    done = subprocess.run([sys.executable, "-W", "always", "-m", "stabcli", "demo", "--step", "8", "--dtype",
                           "float16"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    code = ("import sys; from stabcli.cli import cli\n"
            "try:\n    cli(['demo', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'mpmath') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# --- help that teaches: every command --------------------------------------------------------------------------

def examples(help_text: str) -> list[str]:
    """The lines of the `Example:` block (indented, up to the next blank line)."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Example:")
    block = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        block.append(line.strip())
    return block


def test_the_group_names_every_command_with_what_it_is_for():
    top = run("--help")
    assert top.exit_code == 0
    listing = top.output.split("Commands:")[1]
    for name, command in cli.commands.items():
        short = command.get_short_help_str(limit=1000)
        assert command.short_help, f"{name} sets no short_help"
        assert short and not short.endswith("..."), name
        assert re.search(rf"^  {re.escape(name)}\s+\S", listing, re.M), name
        assert short.split()[0] in listing
    assert examples(cli.help)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_a_one_line_summary_and_real_examples(name):
    command = cli.commands[name]
    help_text = command.help or ""
    lines = help_text.strip().splitlines()
    assert lines and lines[0].strip(), f"{name}: no summary"
    assert len(lines) == 1 or not lines[1].strip(), f"{name}: the summary is more than one line"
    assert "Example:" in help_text, f"{name}: no Example: block"
    block = examples(help_text)
    assert block, f"{name}: empty Example: block"
    for line in block:
        words = shlex.split(line)
        assert words[:2] == ["stabcli", name], line
        # a real example: the command's own parser accepts it (parsed only, not run)
        with command.make_context(name, words[2:]):
            pass
    result = run(name, "--help")
    assert result.exit_code == 0 and "Example:" in result.output


def test_an_example_that_does_not_parse_is_caught():
    command = cli.commands["demo"]
    with pytest.raises(click.UsageError):
        command.make_context("demo", ["--stepp", "3"])


def test_ctrl_c_at_a_prompt_stops_the_demo(monkeypatch):
    def interrupted(next_number, total):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_options, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr(cli_demo, "wait_for_enter", interrupted)
    result = run("demo", "--pause")
    assert result.exit_code == 130  # the shell's convention for Ctrl-C (issue 16), no longer 1 and "Aborted!"
    assert result.stderr.strip().splitlines()[-1] == "Interrupted."
    assert re.findall(r"Step (\d) of 8 ·", result.stdout) == ["1"]


def test_step_3_names_the_saturation_point_as_step_7_does(built):
    """Step 3 said 'from x = 16.63553237915039 on' (the float64 text of a float32 number, 17 digits) where step 7
    says 'from x ≥ 16.635532' for the same logit. Both now show the shortest text that identifies it in the dtype.
    The point is DESIGN.md's op-by-op saturation logit: float32 16.63553237915039, float16 7.625."""
    for dtype, short, full in (("float32", "16.635532", 16.63553237915039), ("float16", "7.625", 7.625)):
        step3 = built[dtype][2]
        sat = next(q for q in step3.quotes if q.source == "threshold")
        assert sat.value == full
        assert float(np.float32(float(short))) == full or dtype != "float32"
        text = flat(" ".join(step3.paragraphs))
        assert f"computed op by op, it does so from x = {short} on;" in text
    assert "16.63553237915039" not in flat(" ".join(built["float32"][2].paragraphs))
    assert "from x ≥ 16.635532," in flat(" ".join(built["float32"][6].after))


def test_step_6_in_bfloat16_says_why_dl_dp_is_not_1e12():
    """Step 6 in bfloat16 said 'dL/dp = (p-y)/1e-12 = 9.96432e11', which reads as an arithmetic slip: 1e-12 is
    stored as 141/128·2^-40 = 1.00187e-12 in bfloat16, and 1/1.00187e-12 = 9.98138e11 rounds to 232/128·2^39 =
    9.96432e11 (mpmath: e = mpf(141)/128*2**-40; 1/e). The note now says so; float32 (1e12) needs no aside."""
    text = flat(" ".join(demo.build_steps("bfloat16")[5].after))
    assert ("dL/dp = (p-y)/1e-12 = 9.96432e11 (1e-12 is 1.00187e-12 in bfloat16, and the quotient is rounded to "
            "bfloat16) by p(1-p) = 0") in text
    f32 = flat(" ".join(demo.build_steps("float32")[5].after))
    assert "dL/dp = (p-y)/1e-12 = 1e12 by p(1-p) = 0" in f32


def test_step_3_says_what_the_minus_zero_in_its_table_is(built):
    """Step 3's table prints torch's BCELoss as -0 (IEEE 754: (1 - 1)·(-100) = +0·(-100) = -0, the sign of a
    product of zeros is the xor of the signs) while the text says 'the loss is 0'; the text now says -0 = 0."""
    for dtype in CHECKED_DTYPES:
        step3 = built[dtype][2]
        bce = next(q for q in step3.quotes
                   if q.call.get("method") == "torch_bce" and q.call["field"].startswith("step:"))
        assert bce.value == 0 and math.copysign(1.0, bce.value) == -1.0 and bce.text() == "-0"
        text = flat(" ".join(step3.after))
        assert "(The table prints -0: 0·(-100) is a zero with a minus sign, and -0 = 0.)" in text
