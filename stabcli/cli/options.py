"""What the commands share: the one-line user error, options written once, output, and terminal checks.

Only click is imported here; numpy, the core, torch, mpmath and matplotlib are imported inside the commands.
"""

from __future__ import annotations

import functools
import math
import sys

import click

DTYPE_CHOICES = ("float16", "bfloat16", "float32", "float64", "float8_e4m3fn", "float8_e5m2", "all")
BACKEND_CHOICES = ("numpy", "torch", "all")
FORMAT_CHOICES = ("table", "json", "csv")


class UserError(click.ClickException):
    """A bad value from the user: printed as one `Error:` line, exit code 2."""

    exit_code = 2


def core_errors(func):
    """Turn the core's StabcliError into a UserError at the CLI edge."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from stabcli.core.errors import StabcliError

        try:
            return func(*args, **kwargs)
        except StabcliError as exc:
            raise UserError(str(exc)) from None

    return wrapper


# --- options used by several commands ------------------------------------------------------------------------

def dtype_option(func):
    return click.option(
        "--dtype", "dtypes", multiple=True, type=click.Choice(DTYPE_CHOICES, case_sensitive=False),
        help="Format to evaluate in; repeat for several. all = the four 16- to 64-bit formats; "
             "float8_e4m3fn and float8_e5m2 only when named. [default: all]",
    )(func)


def backend_option(func):
    return click.option(
        "--backend", "backends", multiple=True, type=click.Choice(BACKEND_CHOICES, case_sensitive=False),
        help="numpy (op by op, every intermediate rounded) or torch (real kernels); repeatable. [default: all]",
    )(func)


def format_option(func):
    return click.option(
        "--format", "output_format", type=click.Choice(FORMAT_CHOICES, case_sensitive=False), default="table",
        show_default=True, help="table for people; json (strict, one document) or csv for scripts.",
    )(func)


def tolerance_options(func):
    for name, what in (("--atol", "absolute"), ("--rtol", "relative")):
        func = click.option(
            name, type=float, default=None,
            help=f"{what.capitalize()} tolerance of the allclose rule |loss-ref| <= atol + rtol·|ref|. "
                 f"[default: per dtype, see README]",
        )(func)
    return func


def weight_options(func):
    func = click.option("--pos-weight", default="1", show_default=True,
                        help="pos_weight (number or list, >= 0): scales the target-1 term.")(func)
    func = click.option("--weight", default="1", show_default=True,
                        help="Per-element weight (number or list, >= 0); softmax: one per class.")(func)
    return func


class LossChoice(click.Choice):
    """--loss's choices, read from the registry (``stabcli/losses/__init__.py``, cheap to import) whenever they are
    needed, so that a family registered after the CLI was imported (a plug-in, a test) is a choice too."""

    def __init__(self):
        super().__init__((), case_sensitive=False)

    @property
    def choices(self):
        from stabcli.losses import family_names

        return family_names()

    @choices.setter
    def choices(self, value):  # click.Choice.__init__ assigns it; the registry is the only source
        pass


def loss_option(func):
    """--loss: the loss family (default bce)."""
    from stabcli.losses import DEFAULT

    return click.option(
        "--loss", type=LossChoice(), default=DEFAULT, show_default=True,
        help="Loss family: bce (binary cross-entropy: a logit per element) or softmax (softmax cross-entropy: "
             "a row of class logits per element).",
    )(func)


def label_smoothing_option(func):
    return click.option("--label-smoothing", type=float, default=None,
                        help="softmax: label smoothing ε in [0, 1], as torch's cross_entropy. [default: 0]")(func)


def family_of(loss: str, **given):
    """The loss family called ``loss``; refuses a family option (``given``, None when not given) it does not take."""
    from stabcli.losses import get_family

    family = get_family(loss.lower())
    for name, value in given.items():
        if value is not None and name not in family.options:
            takers = "--loss softmax" if family.name != "softmax" else "another loss"
            raise UserError(f"--{name.replace('_', '-')} is not an option of --loss {family.name}; it is for "
                            f"{takers}")
    return family


def backends(names) -> list[str]:
    chosen = [n.lower() for n in names] or ["all"]
    return [b for b in ("numpy", "torch") if "all" in chosen or b in chosen]


def check_tolerance(value, name):
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise UserError(f"{name} {value!r} is not allowed; tolerances are finite numbers >= 0")


def parse_targets(texts, default=("0", "1")) -> list[float]:
    """--target values: numbers in [0, 1], duplicates dropped, order kept."""
    from stabcli.core import inputs as parse

    ys: list[float] = []
    for text in texts or default:
        y = parse.parse_number(str(text), "--target", "a number in [0, 1]")
        if not (0 <= y <= 1):
            raise UserError(f"--target {text!r} is outside [0, 1]; targets are probabilities in [0, 1]")
        if y not in ys:
            ys.append(y)
    return ys


# --- output --------------------------------------------------------------------------------------------------

def emit(output_format: str, as_json, as_csv, as_table) -> None:
    """Print a result as strict JSON, CSV, or rich tables (``as_table`` gets the console width)."""
    fmt = output_format.lower()
    if fmt == "json":
        click.echo(as_json())
    elif fmt == "csv":
        click.echo(as_csv(), nl=False)
    else:
        from rich.console import Console

        console = Console()
        console.print(as_table(console.width))


# --- the terminal --------------------------------------------------------------------------------------------

def stderr_is_terminal() -> bool:
    """Whether a progress bar can be drawn: stderr is a terminal (not a pipe, a file or CliRunner's capture)."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def stdin_is_terminal() -> bool:
    """Whether Enter can be waited for: stdin is a terminal (not a pipe, a file or CliRunner's input)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
