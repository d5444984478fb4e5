"""`stabcli demo`: the classroom walk-through, step by step, optionally pausing for Enter."""

from __future__ import annotations

import sys

import click

from stabcli import names
from stabcli.cli import options


def ask(question) -> str | None:
    """Ask the class for its prediction on stderr and read one line: the answer (possibly empty: Enter just
    reveals), or None when stdin has ended (then the quiz runs on without waiting)."""
    hint = f"(a-{'abcdefgh'[len(question.choices) - 1]})" if question.choices else "(a number)"
    click.echo(f"Your prediction {hint}, or Enter to reveal: ", nl=False, err=True)
    line = sys.stdin.readline()
    if not line:
        click.echo("", err=True)
        click.echo("stabcli demo: stdin ended; showing the remaining answers without waiting.", err=True)
        return None
    return line.strip()


def wait_for_enter(next_number: int, total: int) -> bool:
    """Wait for Enter before step ``next_number``; False when stdin has ended (then the demo runs on)."""
    click.echo(f"Press Enter for step {next_number} of {total} (Ctrl-C to stop) ", nl=False, err=True)
    line = sys.stdin.readline()
    if not line:
        click.echo("", err=True)
        click.echo("stabcli demo: stdin ended; showing the remaining steps without pausing.", err=True)
        return False
    return True


@click.command(short_help="The classroom walk-through: why BCELoss(sigmoid(1e10), 1) is 0.")
@click.option("--step", "step", type=options.Number("a step number from 1 to 8", whole=True, minimum=1, maximum=8),
              default=None, metavar="N",
              help="Show only step N (1 to 8). [default: all, in order]")
@click.option("--pause", is_flag=True,
              help="Wait for Enter before each next step. Needs a terminal on stdin: without one, a line on "
                   "stderr says so and the demo runs through.")
@click.option("--dtype", type=click.Choice(names.ALL_NAMES, case_sensitive=False),
              default="float32", show_default=True,
              help="Format of every step but 5 (which is about float16).")
@click.option("--quiz", is_flag=True,
              help="Before each step, ask the class to predict (e.g. BCELoss(sigmoid(1e10), 1) = ?), wait for an "
                   "answer or Enter, then reveal the live number. Without a terminal on stdin it does not wait: "
                   "each answer follows its question.")
@click.option("--export", "export", default=None, metavar="FILE",
              help="Write the lesson as a handout instead of showing it: NAME.md (its figures in NAME_figures/ "
                   "beside it) or NAME.html (self-contained): every panel as tables, figures, the questions "
                   "and an answer key.")
@options.core_errors
def demo(step, pause, dtype, quiz, export):
    """Walk through why BCELoss(sigmoid(1e10), 1) is 0, in 8 steps with live numbers.

    Every number is computed as its step is shown (compare, sweep and thresholds underneath). By default the
    steps run straight through, so the demo works in a pipe; --pause waits for Enter between them (it has
    nothing to wait for with --step); --quiz asks for a prediction before each step; --export writes a
    handout.

    \b
    Steps:
      1  ordinary logits: both formulas agree (the seed article's example)
      2  the logit 1e10: naive NaN or inf, BCELoss 0 or 100, log-sum-exp right
      3  why BCELoss(sigmoid(1e10), 1) is 0, step by step
      4  target 0: the -100 clamp returns 100 where the truth is 1e10
      5  float16: where the naive form breaks, op by op and in torch
      6  the gradient: 0 or NaN where it should be ±1
      7  the fix, BCEWithLogitsLoss, and where it loses relative accuracy
      8  other clips that hide the overflow (Keras, scikit-learn)

    \b
    Example:
        stabcli demo
        stabcli demo --pause
        stabcli demo --step 3
        stabcli demo --step 7 --dtype bfloat16
        stabcli demo --quiz
        stabcli demo --export handout.md
    """
    from stabcli.present import demo as lesson

    if step is not None:
        lesson.check_step(step)
    numbers = [step] if step is not None else list(range(1, lesson.STEP_COUNT + 1))
    if export is not None:
        live = [flag for flag, on in (("--pause", pause), ("--quiz", quiz)) if on]
        if live:  # both act on the live walk-through only; the handout was written without a word on them
            raise options.UserError(f"{' and '.join(live)} shape{'' if len(live) > 1 else 's'} the live demo; "
                                    "--export writes the handout, which always has the questions and an answer "
                                    f"key: drop {' and '.join(live)}")
        _export(export, dtype.lower(), numbers)
        return
    from stabcli.present import demo_view as render

    terminal = options.stdin_is_terminal()
    waiting = pause and len(numbers) > 1
    if waiting and not terminal:
        click.echo("stabcli demo: --pause needs a terminal on stdin to wait for Enter; running through without "
                   "pausing.", err=True)
        waiting = False
    asking = quiz and terminal  # in a pipe the quiz never waits: each answer follows its question
    console = options.console()
    width = min(console.width, render.DEMO_WIDTH)
    course = lesson.Lesson(dtype.lower())
    for i, number in enumerate(numbers):
        question = course.question(number) if quiz else None
        if question is not None:
            console.print(render.question_renderable(question, lesson.STEP_COUNT), width=width)
            said = ""
            if asking:
                answer = ask(question)
                if answer is None:
                    asking = waiting = False
                else:
                    said = lesson.judge_answer(question, answer)
            console.print(render.answer_renderable(question, said), width=width)
        elif waiting and i > 0:
            waiting = wait_for_enter(number, lesson.STEP_COUNT)
        console.print(render.demo_step_renderable(course.step(number), lesson.STEP_COUNT), width=width)


def _export(path: str, dtype: str, numbers: list[int]) -> None:
    """Write the handout (checked before any work: .md or .html, in a folder that can be written)."""
    from pathlib import Path

    from stabcli.core.inputs import shown
    from stabcli.present import handout

    options.check_output_file(path, "--export", (".md", ".html"))
    folder = Path(path).with_name(f"{Path(path).stem}_figures")
    if Path(path).suffix.lower() == ".md" and folder.exists() and not folder.is_dir():
        raise options.UserError(f"--export {shown(path)} puts its figures in the folder {shown(str(folder))}, which is "
                                "a file; move it, or give another name")
    try:
        written = handout.write_handout(Path(path), dtype, numbers)
    except OSError as exc:
        raise options.UserError(f"--export {shown(path)} cannot be written ({exc.strerror or exc})") from None
    for p in written:
        click.echo(click.format_filename(p))
