"""`stabcli float`: one number in each format, up close."""

from __future__ import annotations

import click

from stabcli.cli import options


@click.command(name="float", cls=options.NumbersCommand, context_settings={"ignore_unknown_options": True},
               short_help="A number's bits, neighbours, ulp and rounding in each format.")
@click.argument("value")
@options.dtype_option
@options.format_option
@options.core_errors
def float_command(value, dtypes, output_format):
    """Show VALUE as each format stores it: bits, neighbours, ulp, rounding error, and the format's constants.

    VALUE is a number as every command reads it (1e10, -0.1, inf, nan; negative numbers need no `--`). Per dtype:
    the stored value, its sign/exponent/mantissa bits (coloured in a terminal), the values just below and above,
    the ulp, how far rounding moved VALUE (absolute and in ulps), whether it is normal, subnormal, inf or NaN and
    why, and the format's max, smallest normal and subnormal, eps, where exp(x) overflows and where sigmoid(x)
    rounds to 1. float8_e4m3fn and float8_e5m2 are shown only when named (--dtype all is the four wider formats).

    \b
    Example:
        stabcli float 1e10 --dtype float16
        stabcli float 0.1
        stabcli float 1 --dtype float8_e4m3fn --dtype float8_e5m2
        stabcli float 448 --dtype float8_e4m3fn --format json
    """
    from stabcli.commands.floats import run_float
    from stabcli.core import inputs as parse
    from stabcli.core.formats import parse_dtypes

    if value.startswith("--"):
        raise options.UserError(f"no such option {value!r}; see 'stabcli float --help'")
    number = parse.parse_number(value, "VALUE")
    report = run_float(value, number, parse_dtypes(dtypes))
    from stabcli.present import float_view as view

    options.emit(output_format, lambda: view.float_json(report), lambda: view.float_csv(report),
                 lambda width: view.float_renderable(report))
