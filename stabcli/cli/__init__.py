"""The command line: a click group whose commands each live in a module of their own.

Kept thin on purpose: a command parses its options, calls the numeric core (``stabcli/commands``), and prints what
``stabcli/present`` returns. Heavy modules (numpy, the core, torch, mpmath, matplotlib) are imported inside the
commands, so ``stabcli --help`` starts as fast as click allows.
"""

from __future__ import annotations

import sys

import click

from stabcli import __version__
from stabcli.cli import compare, demo, plot, sweep, thresholds
from stabcli.cli.float import float_command


class StabcliGroup(click.Group):
    """A click group whose usage errors are one `Error:` line (no usage block), exit code 2, no traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            exc.ctx = None  # drop the usage block and hint: one line says what is wrong
            exc.show()
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


@click.group(cls=StabcliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="stabcli")
def cli():
    """Explore where binary cross-entropy breaks in float16, bfloat16, float32 and float64.

    Compares the naive BCELoss(sigmoid(x), y) with the log-sum-exp / softplus form of BCEWithLogitsLoss(x, y),
    op by op in numpy and with real torch kernels, against exact values from mpmath.

    \b
    Example:
        stabcli demo
        stabcli compare 1e10 1
    """


for _module in (compare, sweep, thresholds, plot, demo):
    cli.add_command(getattr(_module, _module.__name__.rsplit(".", 1)[1]))
cli.add_command(float_command)


def main():
    cli(prog_name="stabcli")


if __name__ == "__main__":
    main()
