"""The classroom walk-through's steps as rich Panels. Returns; never prints."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stabcli.present.common import status_text

DEMO_WIDTH = 80  # the walk-through is laid out for 80 columns (a projector, a pipe), whatever the terminal


def _demo_cell(cell) -> Text:
    """A table cell of the demo: a Quote (a number, or a status) or plain text."""
    from stabcli.present.demo import Quote

    if isinstance(cell, Quote):
        if isinstance(cell.value, str):
            return status_text(cell.value)
        text = cell.text()
        return Text(text, style="bold red" if text in ("NaN", "inf", "-inf") else "")
    return Text(str(cell))


def demo_table(table) -> Table:
    """A DemoTable as a rich Table: numbers right-aligned, text left, long notes folded."""
    from stabcli.present.demo import Quote

    out = Table(title=table.title or None, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD,
                show_edge=False)
    for i, name in enumerate(table.columns):
        numeric = any(isinstance(row[i], Quote) and not isinstance(row[i].value, str) for row in table.rows)
        out.add_column(name, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold")
    for row in table.rows:
        out.add_row(*(_demo_cell(c) for c in row))
    return out


def demo_step_renderable(step, total: int) -> Panel:
    """One step of the walk-through as a Panel: its paragraphs, its tables, then its closing paragraphs."""
    parts: list = []
    for paragraph in step.paragraphs:
        parts += [Text(paragraph), Text("")]
    for table in step.tables:
        parts += [demo_table(table), Text("")]
    for paragraph in step.after:
        parts += [Text(paragraph), Text("")]
    if parts:
        parts.pop()
    return Panel(Group(*parts), title=f"[bold]Step {step.number} of {total}[/] · {step.title}", title_align="left",
                 padding=(0, 1))


def question_renderable(question, total: int) -> Panel:
    """The question asked before a step: the prompt and its choices (a), (b), ... or a request for a number."""
    from stabcli.present.demo import LETTERS

    parts: list = [Text(question.prompt)]
    if question.choices:
        parts.append(Text("   ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(question.choices))))
    else:
        parts.append(Text("(type a number)"))
    return Panel(Group(*parts), title=f"[bold]Predict[/] · before step {question.number} of {total}",
                 title_align="left", padding=(0, 1), border_style="yellow")


def answer_renderable(question, said: str = "") -> Panel:
    """The answer, after the class has said theirs (``said``: the line judge_answer wrote, or '')."""
    parts: list = []
    if said:
        parts.append(Text(said))
    parts.append(Text.assemble(("Answer: ", "bold"), question.answer_text(), ". ", question.reveal))
    return Panel(Group(*parts), title=f"[bold]Answer[/] · step {question.number}", title_align="left",
                 padding=(0, 1), border_style="green")
