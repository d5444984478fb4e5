"""Small things a user meets at the command line: help that fits 80 columns, errors that name what was typed,
unknown options called unknown options, messages that stay true."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from stabcli.cli import cli

COMMANDS = ["compare", "sweep", "thresholds", "plot", "demo", "float", "check"]


def run(*args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_fits_80_columns(command):
    # sweep's Example had an 86-column line (--dtype float32 --min -200 --max 200 --points 1e6 --spacing linear)
    result = run(*([command] if command else []), "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    wide = [line for line in result.output.splitlines() if len(line) > 80]
    assert not wide, wide
