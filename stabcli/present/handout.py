"""The lesson as a handout: Markdown (figures in a folder beside it) or one self-contained HTML file.

Every step's paragraphs and tables as the live demo shows them (the same :class:`~stabcli.present.demo.Lesson`,
so the same core calls), a figure where a step has one (the 16:9 slides of ``stabcli plot --slide``), the commands
whose JSON holds each number, the questions of ``--quiz`` on their own, and an answer key. Deterministic: the same
stabcli, libraries, dtype and steps give the same bytes (no dates; figures without timestamps).
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from stabcli.present.demo import LETTERS, STEP_COUNT, DemoStep, DemoTable, Lesson, Question, Quote

TITLE = "Why is BCELoss(sigmoid(1e10), 1) zero? A lesson in floating point"
HANDOUT_DPI = 100  # figures at 1333 x 750 pixels: sharp on paper, light in an HTML file


@dataclass
class Figure:
    """A figure of a step: which slide it is (plots.slide_figure / slide_overview) and its caption."""

    stem: str
    caption: str
    kind: str  # loss, error, grad or overview
    dtype: str
    backend: str | None = None
    target: float | None = None


@dataclass
class Section:
    step: DemoStep
    question: Question | None
    figure: Figure | None = None
    commands: list[str] = field(default_factory=list)
    other_sources: list[str] = field(default_factory=list)


def step_figure(number: int, dtype: str) -> Figure | None:
    """The slide that goes with a step (None for a step without one)."""
    if number == 2:
        return Figure(f"step2_loss_{dtype}_y1", f"Every method's loss in {dtype} (torch), target 1: naive turns "
                      "NaN where sigmoid rounds to 1; the shaded stretch is where BCELoss's -100 clamp decides.",
                      "loss", dtype, "torch", 1.0)
    if number == 4:
        return Figure(f"step4_loss_{dtype}_y0", f"Target 0 in {dtype} (torch): BCELoss (torch_bce) flat at 100 "
                      "where the true loss keeps growing.", "loss", dtype, "torch", 0.0)
    if number == 5:
        return Figure("step5_overview_float16", "float16: where each method breaks, at every swept logit, op by "
                      "op (numpy) and in torch.", "overview", "float16")
    if number == 6:
        return Figure(f"step6_grad_{dtype}_y0", f"The gradient in {dtype} (torch), target 0: BCELoss's backward "
                      "drops to 0 (or NaN) where the truth is 1.", "grad", dtype, "torch", 0.0)
    if number == 7:
        return Figure(f"step7_error_{dtype}_y0", f"Error in bits in {dtype} (torch), target 0: "
                      "torch_bce_with_logits loses relative accuracy for x < 0; softplus stays at 0-1 bits.",
                      "error", dtype, "torch", 0.0)
    return None


OTHER_SOURCES = {"format": "the format's constants (stabcli.core.formats)",
                 "clip": "the clip rules of Keras and scikit-learn, applied by stabcli.present.demo.clipped_bce",
                 "thresholds_grad": "BCELoss's gradient guard in the dtype (stabcli.losses.bce.grad_thresholds)"}


def build_sections(dtype: str, numbers) -> list[Section]:
    """Each step with its question, figure and the sources of its numbers, in order."""
    lesson = Lesson(dtype)
    sections = []
    for n in numbers:
        question = lesson.question(n)
        step = lesson.step(n)
        quotes = list(step.quotes) + (list(question.quotes) if question else [])
        commands = list(dict.fromkeys(c for c in (q.command() for q in quotes) if c))
        others = list(dict.fromkeys(OTHER_SOURCES[q.source] for q in quotes if q.source in OTHER_SOURCES))
        sections.append(Section(step, question, step_figure(n, dtype), commands, others))
    return sections


def draw_figure(figure: Figure):
    """The matplotlib Figure of a handout figure (the slide of ``stabcli plot --slide``), at HANDOUT_DPI."""
    from stabcli.commands.curves import slide_figures
    from stabcli.core.formats import FORMATS
    from stabcli.present import plots

    fmt = FORMATS[figure.dtype]
    if figure.kind == "overview":
        overview = next(slide_figures("overview", [fmt], ["numpy", "torch"], [0.0, 1.0]))
        fig = plots.slide_overview(overview.sweep, overview.strips)
    else:
        panels = next(slide_figures(figure.kind, [fmt], [figure.backend], [figure.target]))
        fig = plots.slide_figure(figure.kind, panels.curve_sets[0], panels.breakdowns.get(figure.target))
    fig.set_dpi(HANDOUT_DPI)
    return fig


def _versions() -> str:
    import matplotlib
    import mpmath
    import numpy
    import torch

    from stabcli import __version__

    return (f"stabcli {__version__}, torch {torch.__version__}, numpy {numpy.__version__}, mpmath "
            f"{mpmath.__version__}, matplotlib {matplotlib.__version__}")


def _cell(cell) -> str:
    return cell.text() if isinstance(cell, Quote) else str(cell)


def _numeric_column(table: DemoTable, i: int) -> bool:
    return any(isinstance(r[i], Quote) and not isinstance(r[i].value, str) for r in table.rows)


# --- Markdown --------------------------------------------------------------------------------------------------

def _md_text(text: str) -> str:
    """Plain text safe in Markdown: the few characters it would read as markup are escaped."""
    for ch in ("\\", "*", "<", "|"):
        text = text.replace(ch, "\\" + ch)
    return text


def _is_code(paragraph: str) -> bool:
    """A paragraph of indented lines (the seed article's x and y in step 1) is shown as code."""
    lines = paragraph.split("\n")
    return all(line.startswith("  ") for line in lines)


def _md_paragraph(p: str) -> list[str]:
    if _is_code(p):
        return ["```text", *(line[2:] for line in p.split("\n")), "```", ""]
    return [_md_text(p), ""]


def _md_table(table: DemoTable) -> list[str]:
    cols = len(table.columns)
    lines = ["| " + " | ".join(_md_text(c) for c in table.columns) + " |",
             "|" + "|".join("---:" if _numeric_column(table, i) else "---" for i in range(cols)) + "|"]
    for row in table.rows:
        lines.append("| " + " | ".join(_md_text(_cell(c)) for c in row) + " |")
    return lines


def _md_question(q: Question) -> list[str]:
    lines = [f"**Before step {q.number}.** {_md_text(q.prompt)}", ""]
    if q.choices:
        lines.append("   ".join(f"({LETTERS[i]}) {_md_text(c)}" for i, c in enumerate(q.choices)))
    else:
        lines.append("Your prediction: ______")
    return lines + [""]


def render_markdown(sections: list[Section], dtype: str, figure_folder: str | None) -> str:
    out = [f"# {TITLE}", "",
           f"A handout of `stabcli demo --dtype {dtype}`: every number below was computed by {_versions()} "
           "(exact values by mpmath) and can be printed again with the commands listed under each step.", ""]
    questions = [s.question for s in sections if s.question]
    if questions:
        out += ["## Predict first", "", "Answer each question before reading its step; the answers are at the end.",
                ""]
        for q in questions:
            out += _md_question(q)
    for s in sections:
        st = s.step
        out += [f"## Step {st.number} of {STEP_COUNT}: {_md_text(st.title)}", ""]
        for p in st.paragraphs:
            out += _md_paragraph(p)
        for t in st.tables:
            out += _md_table(t) + [""]
        for p in st.after:
            out += _md_paragraph(p)
        if s.figure is not None and figure_folder is not None:
            out += [f"![Figure of step {st.number}]({figure_folder}/{s.figure.stem}.png)", "",
                    f"*{_md_text(s.figure.caption)}*", ""]
        if s.commands or s.other_sources:
            out += ["Numbers from: " + ", ".join(f"`{c}`" for c in s.commands)
                    + ("; " if s.commands and s.other_sources else "") + "; ".join(s.other_sources) + ".", ""]
    if questions:
        out += ["## Answer key", ""]
        for q in questions:
            out += [f"{q.number}. **{_md_text(q.answer_text())}**. {_md_text(q.reveal)}"]
        out.append("")
    return "\n".join(out)


# --- HTML ------------------------------------------------------------------------------------------------------

CSS = ("body{font-family:system-ui,sans-serif;max-width:58em;margin:2em auto;padding:0 1em;line-height:1.45;"
       "color:#111}table{border-collapse:collapse;margin:.6em 0}th,td{padding:.2em .7em;border-bottom:1px solid "
       "#ccc;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1em 0}"
       "img{max-width:100%}figcaption{font-style:italic;font-size:.9em}code{font-size:.9em}"
       ".q{border-left:4px solid #E69F00;padding-left:.8em}.key{border-left:4px solid #009E73;padding-left:.8em}"
       "@media print{section{break-inside:avoid-page}}")


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_paragraph(p: str) -> str:
    if _is_code(p):
        return "<pre>" + _h("\n".join(line[2:] for line in p.split("\n"))) + "</pre>"
    return f"<p>{_h(p)}</p>"


def _html_table(table: DemoTable) -> list[str]:
    numeric = [_numeric_column(table, i) for i in range(len(table.columns))]
    rows = ["<table>", "<tr>" + "".join(f"<th>{_h(c)}</th>" for c in table.columns) + "</tr>"]
    for row in table.rows:
        rows.append("<tr>" + "".join(f"<td class=\"n\">{_h(_cell(c))}</td>" if numeric[i] else f"<td>{_h(_cell(c))}</td>"
                                     for i, c in enumerate(row)) + "</tr>")
    return rows + ["</table>"]


def render_html(sections: list[Section], dtype: str, images: dict[str, bytes]) -> str:
    out = ["<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
           f"<title>{_h(TITLE)}</title>", f"<style>{CSS}</style>", "</head>", "<body>", f"<h1>{_h(TITLE)}</h1>",
           f"<p>A handout of <code>stabcli demo --dtype {_h(dtype)}</code>: every number below was computed by "
           f"{_h(_versions())} (exact values by mpmath) and can be printed again with the commands listed under "
           "each step.</p>"]
    questions = [s.question for s in sections if s.question]
    if questions:
        out += ["<section>", "<h2>Predict first</h2>",
                "<p>Answer each question before reading its step; the answers are at the end.</p>"]
        for q in questions:
            choices = "&nbsp;&nbsp; ".join(f"({LETTERS[i]}) {_h(c)}" for i, c in enumerate(q.choices)) \
                if q.choices else "Your prediction: ______"
            out.append(f"<p class=\"q\"><b>Before step {q.number}.</b> {_h(q.prompt)}<br>{choices}</p>")
        out.append("</section>")
    for s in sections:
        st = s.step
        out += ["<section>", f"<h2>Step {st.number} of {STEP_COUNT}: {_h(st.title)}</h2>"]
        out += [_html_paragraph(p) for p in st.paragraphs]
        for t in st.tables:
            out += _html_table(t)
        out += [_html_paragraph(p) for p in st.after]
        if s.figure is not None and s.figure.stem in images:
            data = base64.b64encode(images[s.figure.stem]).decode("ascii")
            out += ["<figure>", f"<img alt=\"{_h(s.figure.caption)}\" src=\"data:image/png;base64,{data}\">",
                    f"<figcaption>{_h(s.figure.caption)}</figcaption>", "</figure>"]
        if s.commands or s.other_sources:
            out.append("<p>Numbers from: " + ", ".join(f"<code>{_h(c)}</code>" for c in s.commands)
                       + ("; " if s.commands and s.other_sources else "") + _h("; ".join(s.other_sources))
                       + ".</p>")
        out.append("</section>")
    if questions:
        out += ["<section>", "<h2>Answer key</h2>", "<ol class=\"key\">"]
        out += [f"<li value=\"{q.number}\"><b>{_h(q.answer_text())}</b>. {_h(q.reveal)}</li>" for q in questions]
        out += ["</ol>", "</section>"]
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


# --- writing ---------------------------------------------------------------------------------------------------

def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _png(figure: Figure) -> bytes:
    import io

    from stabcli.present import plots

    fig = draw_figure(figure)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None}, dpi=fig.dpi)
        return buf.getvalue()
    finally:
        plots.close(fig)


def write_handout(path, dtype: str, numbers=None) -> list[Path]:
    """Write the handout of the steps ``numbers`` (default all) in ``dtype`` to ``path`` (.md or .html); return
    the files written. Markdown puts its figures in ``<stem>_figures/`` beside it; HTML embeds them. Each file is
    written to a temporary name and renamed, so none is left half-written."""
    path = Path(path)
    numbers = list(range(1, STEP_COUNT + 1)) if numbers is None else list(numbers)
    sections = build_sections(dtype, numbers)
    figures = [s.figure for s in sections if s.figure is not None]
    images = {f.stem: _png(f) for f in figures}
    written: list[Path] = []
    if path.suffix.lower() == ".html":
        _write_atomic(path, render_html(sections, dtype, images).encode("utf-8"))
        return [path]
    folder_name = f"{path.stem}_figures"
    if images:
        folder = path.parent / folder_name
        folder.mkdir(exist_ok=True)
        for stem, data in images.items():
            target = folder / f"{stem}.png"
            _write_atomic(target, data)
            written.append(target)
    _write_atomic(path, render_markdown(sections, dtype, folder_name if images else None).encode("utf-8"))
    return [path] + written
