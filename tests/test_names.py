"""Every list of names is written once (``stabcli/names.py``): the CLI's choices and what the engines accept are the
same tuples, so a name cannot be offered in one place and refused in the other."""

from __future__ import annotations

import click

from stabcli import names
from stabcli.cli import cli


def _choices():
    """(command, option, choices) of every click.Choice option of every command."""
    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param.type, click.Choice):
                yield name, param.opts[0], tuple(param.type.choices)


def test_every_choice_of_the_cli_is_a_list_of_names_py():
    from stabcli.losses import family_names

    lists = {v for k, v in vars(names).items() if k.isupper()}
    lists |= {(*names.ALL_NAMES, *names.FLOAT8_NAMES, "all"), (*names.BACKEND_NAMES, "all"), family_names()}
    found = list(_choices())
    assert len(found) >= 10  # --dtype, --backend, --format, --reduction, --spacing, --severity, --slide, ...
    assert [(c, o, ch) for c, o, ch in found if ch not in lists] == []


def test_the_engines_accept_the_same_names():
    from stabcli.commands import compare, severity, sweep
    from stabcli.core import autocast, backends, formats
    from stabcli.present import plots

    assert formats.DTYPE_NAMES is names.DTYPE_NAMES and formats.ALL_NAMES is names.ALL_NAMES
    assert set(names.DTYPE_NAMES) == set(formats.FORMATS)  # a name for every format defined, and no other
    assert backends.BACKEND_NAMES is names.BACKEND_NAMES
    assert compare.REDUCTIONS is names.REDUCTIONS
    assert sweep.SPACINGS is names.SPACINGS
    assert severity.SEVERITIES is names.SEVERITIES
    assert (autocast.DTYPES, autocast.DEVICES) == (names.AUTOCAST_DTYPES, names.AUTOCAST_DEVICES)
    assert set(autocast.POLICIES) == set(names.AUTOCAST_DEVICES)
    # plots draws every slide kind: the three curve slides have titles, the overview its own figure
    assert (*plots.SLIDE_TITLES, "overview") == names.SLIDE_KINDS
    assert plots.FORMATS_WRITTEN == names.FIGURE_FORMATS


def test_the_cli_checks_a_reduction_the_engine_takes():
    """The same tuple both sides: click offers exactly what run_compare accepts."""
    from click.testing import CliRunner

    for reduction in names.REDUCTIONS:
        result = CliRunner().invoke(cli, ["compare", "1", "0", "--reduction", reduction, "--dtype", "float32",
                                          "--backend", "numpy", "--format", "json"])
        assert result.exit_code == 0, result.output
