"""`stabcli demo`: the classroom walk-through, step by step, optionally pausing for Enter."""

from __future__ import annotations

import sys

import click

from stabcli.cli import options


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
@click.option("--dtype", type=click.Choice(("float16", "bfloat16", "float32", "float64"), case_sensitive=False),
              default="float32", show_default=True,
              help="Format of every step but 5 (which is about float16).")
@options.core_errors
def demo(step, pause, dtype):
    """Walk through why BCELoss(sigmoid(1e10), 1) is 0, in 8 steps with live numbers.

    Every number is computed as its step is shown (compare, sweep and thresholds underneath). By default the
    steps run straight through, so the demo works in a pipe; --pause waits for Enter between them (it has
    nothing to wait for with --step).

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
    """
    from stabcli.present import demo as lesson
    from stabcli.present import demo_view as render

    if step is not None:
        lesson.check_step(step)
    numbers = [step] if step is not None else list(range(1, lesson.STEP_COUNT + 1))
    waiting = pause and len(numbers) > 1
    if waiting and not options.stdin_is_terminal():
        click.echo("stabcli demo: --pause needs a terminal on stdin to wait for Enter; running through without "
                   "pausing.", err=True)
        waiting = False
    console = options.console()
    width = min(console.width, render.DEMO_WIDTH)
    steps = lesson.iter_steps(dtype.lower(), numbers)
    for i, number in enumerate(numbers):
        if waiting and i > 0:
            waiting = wait_for_enter(number, lesson.STEP_COUNT)
        console.print(render.demo_step_renderable(next(steps), lesson.STEP_COUNT), width=width)
