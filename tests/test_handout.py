"""`stabcli demo --quiz` and `stabcli demo --export`: the questions' answers are live numbers, the quiz never
waits without a terminal, and the handout's numbers are the JSON of the commands it names, byte for byte the same
every time."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.cli import demo as cli_demo
from stabcli.present import demo, handout
from test_demo import same  # equal as shown: same string, or same float (NaN = NaN, -0 is not 0)


def run(*args, **kwargs):
    return CliRunner().invoke(cli, list(args), **kwargs)


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


# --- the quiz -------------------------------------------------------------------------------------------------

def test_every_step_has_a_question_whose_answer_is_a_live_number(questions):
    """The right choice is the text of the live value (issue 15's example: BCELoss(sigmoid(1e10), 1) = ? is 0
    in float32, DESIGN.md's 1e10 story), and the distractors are the other choices."""
    q = questions["float32"][1]
    assert q.choices == ["0", "NaN", "inf", "100"] and q.answer_text() == "(a) 0"
    live = next(x for x in q.quotes if x.call.get("method") == "torch_bce" and x.call["field"] == "loss")
    assert live.value == 0 and q.choices[q.answer] == live.text()
    q4 = questions["float32"][3]
    assert q4.answer_text() == "(b) 100"  # the -100 clamp caps the target-0 loss at 100 (DESIGN.md)
    q6 = {d: questions[d][5] for d in questions}
    assert q6["float32"].answer_text() == "(b) 0" and q6["float16"].answer_text() == "(c) NaN"  # DESIGN.md
    q5 = questions["float32"][4]
    assert q5.choices == [] and q5.value.value == 7.625  # DESIGN.md: op-by-op float16 saturation
    for d, qs in questions.items():
        assert [q.number for q in qs] == list(range(1, demo.STEP_COUNT + 1))
        for question in qs:
            assert question is not None and question.quotes, (d, question.number)
            if question.choices:
                assert 0 <= question.answer < len(question.choices)
                assert len(set(question.choices)) == len(question.choices)


def test_judging_what_the_class_said(questions):
    q = questions["float32"][1]
    assert demo.judge_answer(q, "a") == "You said (a) 0: right."
    assert demo.judge_answer(q, "(b)") == "You said (b) NaN: not this time."
    assert demo.judge_answer(q, "NaN") == "You said (b) NaN: not this time."
    assert demo.judge_answer(q, "") == ""
    assert "not one of the choices" in demo.judge_answer(q, "z")
    q5 = questions["float32"][4]
    assert demo.judge_answer(q5, "7.6") == "You said 7.6: off by 0.025."  # 7.625 - 7.6
    assert demo.judge_answer(q5, "seven") == "You said 'seven'."


def test_quiz_in_a_pipe_prints_each_answer_after_its_question():
    result = run("demo", "--quiz", "--step", "2", input="")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    asked = out.index("BCELoss(sigmoid(x), 1) = ? (a) 0 (b) NaN (c) inf (d) 100")
    answered = out.index("Answer: (a) 0. BCELoss gives 0 (clamped)")
    assert asked < answered < out.index("Step 2 of 8")
    assert "Your prediction" not in result.output  # nothing was asked of a pipe


def test_quiz_never_blocks_on_a_pipe_that_stays_open(tmp_path):
    """A pipe on stdin that is never written to nor closed: the quiz must finish without reading it."""
    out = tmp_path / "out.txt"
    with open(out, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "stabcli", "demo", "--quiz", "--step", "4"],
                                stdin=subprocess.PIPE, stdout=sink, stderr=subprocess.STDOUT)
        try:
            assert proc.wait(timeout=120) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdin.close()
    text = flat(out.read_text())
    assert "Answer: (b) 100." in text and "Step 4 of 8" in text


def test_quiz_at_a_terminal_waits_and_judges(monkeypatch):
    monkeypatch.setattr(cli_demo.options, "stdin_is_terminal", lambda: True)
    result = run("demo", "--quiz", "--step", "6", input="c\n")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "Your prediction (a-d), or Enter to reveal:" in out
    assert "You said (c) NaN: not this time." in out and "Answer: (b) 0." in out  # float32: 0 (DESIGN.md)


def test_quiz_at_a_terminal_runs_on_when_stdin_ends(monkeypatch):
    monkeypatch.setattr(cli_demo.options, "stdin_is_terminal", lambda: True)
    result = run("demo", "--quiz", "--step", "1", input="")
    assert result.exit_code == 0
    assert "stdin ended" in result.output and "Step 1 of 8" in result.output


# --- the handout ----------------------------------------------------------------------------------------------

class Json:
    """The JSON of each command a handout names, run once through the CLI."""

    def __init__(self):
        self.docs = {}

    def __call__(self, command: str):
        if command not in self.docs:
            argv = shlex.split(command)
            assert argv[0] == "stabcli"
            result = run(*argv[1:])
            assert result.exit_code == 0, (command, result.output)
            self.docs[command] = json.loads(result.output)
        return self.docs[command]


def _number(v):
    return {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}.get(v, v) if isinstance(v, str) else v


def value_in_json(q: demo.Quote, docs: Json):
    doc = docs(q.command())
    c = q.call
    if q.source == "compare":
        row = next(r for r in doc["results"] if r["backend"] == c["backend"] and r["method"] == c["method"])
        field = c["field"]
        if field == "input":
            return _number(row["input"][0])
        if field.startswith("step:"):
            return _number(next(s["value"] for s in row["steps"] if s["name"] == field[5:]))
        return row[field] if field.endswith("status") else _number(row[field])
    if q.source == "sweep":
        row = next(r for r in doc["results"] if r["backend"] == c["backend"] and r["dtype"] == c["dtype"]
                   and r["target"] == c["target"] and r["method"] == c["method"])
        field = c["field"]
        if field == "points" or field.startswith("grad_count_"):  # step 7's gradient caveat (default grid)
            return row[field]
        if field.startswith("grad."):
            return row["grad_breakdown"][field[len("grad."):]]
        return row["breakdown"][field]
    if q.source == "threshold":
        return next(r["predicted"] for r in doc["results"] if r["name"] == c["name"])
    raise AssertionError(q.source)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The whole float32 handout, Markdown, as the command writes it, and its sections."""
    folder = tmp_path_factory.mktemp("handout")
    result = run("demo", "--export", str(folder / "lesson.md"))
    assert result.exit_code == 0, result.output
    return folder, handout.build_sections("float32", range(1, demo.STEP_COUNT + 1))


def test_handout_numbers_are_the_json_of_the_commands_it_names(exported):
    one, sections = exported
    text = (one / "lesson.md").read_text()
    docs = Json()
    checked = 0
    for s in sections:
        start = text.index(f"## Step {s.step.number} of")
        end = text.find("\n## ", start + 1)
        part = text[start:end if end > 0 else None]
        for q in s.step.quotes:
            assert q.text() in part.replace("\\", ""), (s.step.number, q.text())
            if q.command() is None:
                assert q.source in handout.OTHER_SOURCES
                continue
            assert f"`{q.command()}`" in part, q.command()
            assert same(q.value, value_in_json(q, docs)), (q.command(), q.call, q.value)
            checked += 1
    for s in sections:  # the questions' numbers too, and the answer key says them
        key = text[text.index("## Answer key"):]
        assert f"{s.question.number}. **{s.question.answer_text()}**" in key.replace("\\", "")
        for q in s.question.quotes:
            if q.command() is not None:
                assert same(q.value, value_in_json(q, docs)), (q.command(), q.call, q.value)
                checked += 1
    assert checked > 100


def test_handout_embeds_its_figures_and_puts_the_questions_first(exported):
    one, sections = exported
    files = sorted(str(p.relative_to(one)) for p in one.rglob("*") if p.is_file())
    assert files == ["lesson.md"] + sorted(f"lesson_figures/{s.figure.stem}.png" for s in sections if s.figure)
    text = (one / "lesson.md").read_text()
    for s in sections:
        if s.figure is not None:
            assert f"](lesson_figures/{s.figure.stem}.png)" in text
            assert (one / "lesson_figures" / f"{s.figure.stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert text.index("## Predict first") < text.index("## Step 1 of 8") < text.index("## Answer key")


def test_markdown_handout_is_deterministic(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        result = run("demo", "--export", str(tmp_path / name / "h.md"), "--step", "4")
        assert result.exit_code == 0, result.output
    files = sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == ["h.md", "h_figures/step4_loss_float32_y0.png"]
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_html_handout_is_self_contained_and_deterministic(tmp_path):
    outs = []
    for name in ("a.html", "b.html"):
        result = run("demo", "--export", str(tmp_path / name), "--step", "4")
        assert result.exit_code == 0, result.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html"]  # nothing beside it
    page = outs[0].decode()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    assert "<td class=\"n\">100</td>" in page  # step 4: BCELoss's capped 100 (DESIGN.md)
    assert "Answer key" in page and "(b) 100" in page


@pytest.mark.parametrize("name, needle", [("lesson.txt", ".md or .html"), ("missing/lesson.md", "missing"),
                                           ("folder.md", "is a folder"), ("file/lesson.md", "file"),
                                           # its figure folder is a file: was "cannot be written (File exists)",
                                           # after building every step (final-user)
                                           ("file_figures.md", "puts its figures in the folder")])
def test_export_refuses_bad_paths(tmp_path, name, needle):
    (tmp_path / "folder.md").mkdir()
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "file_figures_figures").write_text("not a folder")
    result = run("demo", "--export", str(tmp_path / name))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --export") and needle in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["file", "file_figures_figures", "folder.md"]
    assert not os.listdir(tmp_path / "folder.md")


def test_handout_commands_are_quoted_for_a_shell(exported):
    # `stabcli compare [[-0.6117,...]] [[0,1,0],...]` left the brackets to the shell, which globs them (zsh: "no
    # matches found"); every command is now what shlex.quote makes of its arguments
    one, sections = exported
    commands = [q.command() for s in sections for q in [*s.step.quotes, *s.question.quotes] if q.command()]
    assert any("[[" in c for c in commands)
    for c in commands:
        assert " ".join(shlex.quote(a) for a in shlex.split(c)) == c, c


def test_quiz_answers_do_not_repeat_themselves(questions):
    # step 8 said "Answer: (b) 15.94238. 15.94238: 1 - 1e-7 is stored as ..."
    for d, qs in questions.items():
        for q in qs:
            if q.choices:
                shown = q.choices[q.answer]
                assert not q.reveal.startswith(f"{shown}:"), (d, q.number, q.reveal)
    q8 = questions["float32"][7]
    # Keras 3's clip: 1 - 1e-7 in float32 is 1 - 2^-23 = 0.999999881; -log(2^-23) = 23·ln 2 = 15.94238515
    assert q8.reveal.startswith("1 - 1e-7 is stored as 0.999999881 in float32, and -log(1 - 0.999999881) is 15.94238")


def test_step_7_says_the_true_gradient_shrinks_beyond_the_first_logit():
    # "the true gradient there is -5.96e-8" held only at the first logit, 16.635532 (float32's op-by-op sigmoid-one
    # point, DESIGN.md): sigmoid(16.63553237915039) - 1 = -5.96e-8 (mpmath: -1/(1 + mp.exp(16.63553237915039)))
    out = flat(run("demo", "--step", "7", env={"COLUMNS": "80"}).output)
    assert "the true gradient there runs from -5.96e-8 (at x = 16.635532) toward 0" in out


@pytest.mark.parametrize("flags, named", [(["--quiz"], "--quiz"), (["--pause"], "--pause"),
                                          (["--pause", "--quiz"], "--pause and --quiz")])
def test_export_refuses_the_live_demo_flags_and_writes_nothing(tmp_path, flags, named):
    # demo --export handout.md --quiz wrote the handout and said nothing of --quiz (final-combos)
    out = tmp_path / "handout.md"
    result = run("demo", "--export", str(out), *flags)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and f"drop {named}" in lines[0]
    assert list(tmp_path.iterdir()) == []
