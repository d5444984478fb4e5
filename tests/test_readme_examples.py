"""Every README output example is real output: each ```text block whose lead-in names a `stabcli ...` command is
that command's output today, as printed into a pipe with COLUMNS=80 (trailing spaces and blank lines stripped).

A block whose lead-in says "excerpt" is checked as one: its parts (separated by lines that are just "...") each
appear as consecutive lines of the real output, in order. Any other block must equal the output line for line. A
```text block with no command in its lead-in must be one of NOT_OUTPUT (say so there, with why), so that a new
example cannot slip in unchecked. The check example's files are made as the README says (numpy's default_rng(0)).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.core import peers

README = Path(__file__).resolve().parent.parent / "README.md"
NOT_OUTPUT = {"stabcli/": "the Layout section's tree of files, not a command's output"}


def blocks() -> list[tuple[int, str | None, bool, list[str]]]:
    """(line number, the command its lead-in names, whether it is an excerpt, the block's lines)."""
    lines = README.read_text(encoding="utf-8").split("\n")
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```text":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            end = i  # the lead-in: the paragraph just before the block (and the blank line between)
            while end > 0 and not lines[end - 1].strip():
                end -= 1
            k = end
            while k > 0 and lines[k - 1].strip():
                k -= 1
            lead = " ".join(lines[k:end])
            commands = re.findall(r"`(stabcli [^`]+)`", lead)
            out.append((i + 1, commands[-1] if commands else None, "excerpt" in lead,
                        [line.rstrip() for line in lines[i + 1:j]]))
            i = j
        i += 1
    return out


BLOCKS = blocks()


def test_every_block_is_named_or_known():
    assert len(BLOCKS) >= 14  # the examples README had when this test was written
    for line, command, _, body in BLOCKS:
        if command is None:
            assert any(body[0].startswith(first) for first in NOT_OUTPUT), (
                f"README.md line {line}: a text block with no `stabcli ...` command in its lead-in")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The check example's batch: numpy.random.default_rng(0), logits standard_normal((64, 1000))·6 and targets
    random((64, 1000)) < 0.3, both saved as float16 .npy files."""
    folder = tmp_path_factory.mktemp("readme")
    rng = np.random.default_rng(0)
    np.save(folder / "logits.npy", (rng.standard_normal((64, 1000)) * 6).astype(np.float16))
    np.save(folder / "targets.npy", (rng.random((64, 1000)) < 0.3).astype(np.float16))
    return folder


def _runs(part: list[str], real: list[str]) -> list[int]:
    """Where ``part`` starts as consecutive lines of ``real``."""
    return [i for i in range(len(real) - len(part) + 1) if real[i:i + len(part)] == part]


@pytest.mark.parametrize("line, command, excerpt, body", [b for b in BLOCKS if b[1] is not None],
                         ids=[f"line{b[0]}" for b in BLOCKS if b[1] is not None])
def test_block_is_real_output(line, command, excerpt, body, files, monkeypatch):
    if "--peers" in command and not all(peers.installed(n) for n in ("keras", "optax", "jax", "scikit-learn")):
        pytest.skip("the peers extra is not installed")
    monkeypatch.chdir(files)
    args = shlex.split(command)[1:]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    real = [text.rstrip() for text in result.stdout.rstrip().split("\n")]  # a table's last blank line aside
    if not excerpt:
        assert body == real, f"README.md line {line}: `{command}` prints something else:\n" + "\n".join(real)
        return
    parts, part = [], []
    for text in body:
        if text == "...":
            parts.append(part)
            part = []
        else:
            part.append(text)
    parts.append(part)
    at = 0
    for part in parts:
        starts = [s for s in _runs(part, real) if s >= at]
        assert starts, (f"README.md line {line}: this part of the excerpt of `{command}` is not in its output:\n"
                        + "\n".join(part) + "\n--- real output:\n" + "\n".join(real))
        at = starts[0] + len(part)
