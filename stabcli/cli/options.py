"""What the commands share: the one-line user error, numbers, options written once, output, and terminal checks.

Every command reads its numbers through :class:`Number` (the one rule of ``core/inputs.parse_number``) and writes
its output through :func:`emit` or :func:`console`; how a closed, full or broken stdout and Ctrl-C end a command is
decided once, in ``cli/__init__.py``. A command added later inherits all of it by using these.

Only click is imported here; numpy, the core, torch, mpmath and matplotlib are imported inside the commands.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import sys

import click

from stabcli import names

DTYPE_CHOICES = (*names.ALL_NAMES, *names.FLOAT8_NAMES, "all")
BACKEND_CHOICES = (*names.BACKEND_NAMES, "all")
FORMAT_CHOICES = names.OUTPUT_FORMATS


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


# --- numbers ------------------------------------------------------------------------------------------------

class Number(click.ParamType):
    """A numeric option, read by the one rule every number follows (``core.inputs.parse_number``: plain ASCII
    decimal or hex floats, inf and nan), then checked; every message names the value as typed.

    ``allowed`` says what the option takes (it ends every message); ``finite`` refuses inf and nan; ``minimum``
    and ``maximum`` bound it; ``whole`` refuses fractions and returns an int.
    """

    name = "number"

    def __init__(self, allowed: str, finite: bool = True, minimum: float | None = None,
                 maximum: float | None = None, whole: bool = False):
        self.allowed, self.finite, self.whole = allowed, finite, whole
        self.minimum, self.maximum = minimum, maximum

    def get_metavar(self, param, ctx=None):  # click < 8.2 passes no ctx
        return "INTEGER" if self.whole else "FLOAT"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # a default, already a number
            return value
        from stabcli.core.errors import InputError
        from stabcli.core.inputs import parse_number, shown

        label = param.opts[0] if param is not None and param.opts else "value"
        try:
            number = parse_number(value, label, self.allowed, finite=self.finite)
        except InputError as exc:
            raise UserError(str(exc)) from None
        bad = ((self.minimum is not None and not number >= self.minimum)
               or (self.maximum is not None and not number <= self.maximum)
               or (self.whole and math.isfinite(number) and number != int(number)))
        if bad:
            raise UserError(f"{label} {shown(value)} is not allowed; give {self.allowed}")
        return int(number) if self.whole else number



class NumbersCommand(click.Command):
    """A command whose arguments may be negative numbers (``compare -100 1``): click's ignore_unknown_options lets
    them through, and with them any option it does not know (``--bogus`` ended as "Got unexpected extra
    argument"). Here a token that starts like an option (a dash and a letter) and is no option of the command, nor
    inf or nan, is called what it is: no such option."""

    def parse_args(self, ctx, args):
        import difflib

        known = {opt for param in self.get_params(ctx) for opt in (*param.opts, *param.secondary_opts)}
        for token in args:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            word = name.lstrip("-")
            numeric = word.split(",", 1)[0].lower() in ("inf", "infinity", "nan")
            if name.startswith("-") and word[:1].isalpha() and not numeric and name not in known:
                close = difflib.get_close_matches(name, sorted(o for o in known if o.startswith("--")), n=1)
                raise click.NoSuchOption(name, possibilities=close, ctx=ctx)
        return super().parse_args(ctx, args)

# --- options used by several commands ------------------------------------------------------------------------

def dtype_option(func=None, *, default: str = "all"):
    """--dtype, repeatable; ``default`` is what the help says it defaults to (check: the logits file's own dtype).
    Used bare (``@dtype_option``) or with the default named (``@dtype_option(default=...)``)."""
    def apply(f):
        return click.option(
            "--dtype", "dtypes", multiple=True, type=click.Choice(DTYPE_CHOICES, case_sensitive=False),
            help="Format to evaluate in; repeat for several. all = the four 16- to 64-bit formats; "
                 f"float8_e4m3fn and float8_e5m2 only when named. [default: {default}]",
        )(f)

    return apply if func is None else apply(func)


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


TOLERANCE = Number("a finite number >= 0", minimum=0)


def tolerance_options(func):
    for name, what in (("--atol", "absolute"), ("--rtol", "relative")):
        func = click.option(
            name, type=TOLERANCE, default=None,
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
    return click.option("--label-smoothing", type=Number("a number in [0, 1]", minimum=0, maximum=1), default=None,
                        help="softmax: label smoothing ε in [0, 1], as torch's cross_entropy. [default: 0]")(func)


def family_of(loss: str, **given):
    """The loss family called ``loss``; refuses a family option (``given``, None when not given) it does not take."""
    from stabcli.losses import family_names, get_family

    family = get_family(loss.lower())
    for name, value in given.items():
        if value is not None and name not in family.options:
            takers = " or ".join(f"--loss {n}" for n in family_names() if name in get_family(n).options) \
                or "no registered loss"
            raise UserError(f"--{name.replace('_', '-')} is not an option of --loss {family.name}; it is for "
                            f"{takers}")
    return family


def probs_option(func):
    return click.option(
        "--probs", is_flag=True,
        help="The first argument holds probabilities p in [0, 1] (what BCELoss takes), not logits: naive, clamped "
             "and torch_bce take p directly, the logit forms logit(p) recovered in float64.")(func)


def probability_family(family):
    """The family of ``family`` that takes probabilities (--probs), or a UserError naming the families that do."""
    probs = family.with_probabilities()
    if probs is None:
        raise UserError(f"--probs is for --loss bce (probabilities of one class); --loss {family.name} takes logits")
    return probs


def autocast_options(func):
    """--autocast DTYPE and --device DEVICE: evaluate the torch backend under torch.autocast."""
    func = click.option(
        "--device", type=click.Choice(names.AUTOCAST_DEVICES, case_sensitive=False), default=None,
        help="The device whose autocast lists apply: cuda (emulated here with torch 2.13's CUDA lists; "
             "binary_cross_entropy is refused there) or cpu (the real torch.autocast). [default: cuda]")(func)
    return click.option(
        "--autocast", "autocast_dtype", type=click.Choice(names.AUTOCAST_DTYPES, case_sensitive=False),
        default=None,
        help="Evaluate as inside torch.autocast(device, dtype): inputs in that dtype, log/exp/BCEWithLogits "
             "and the other ops on autocast's float32 list in float32. torch backend only.")(func)


def autocast_spec(autocast_dtype, device, dtypes=(), backend_names=(), dtype_from_file: bool = False):
    """The autocast spec of --autocast/--device, or None; refuses --dtype and a numpy-only --backend with it."""
    from stabcli.core import autocast

    spec = autocast.parse(autocast_dtype, device)
    if spec is None:
        return None
    if dtypes:
        raise UserError(f"--autocast {spec.dtype} evaluates in {spec.dtype} (torch.autocast's low dtype) with "
                        f"float32 where autocast says so; drop --dtype")
    chosen = [n.lower() for n in backend_names]
    if chosen and "torch" not in chosen and "all" not in chosen:
        raise UserError("--autocast emulates torch.autocast, which only the torch backend has; use --backend torch "
                        "(or leave --backend out)")
    return spec


def backends(given) -> list[str]:
    """The backends of --backend's values (none given: all), in BACKEND_NAMES order."""
    chosen = [n.lower() for n in given] or ["all"]
    return [b for b in names.BACKEND_NAMES if "all" in chosen or b in chosen]


def parse_targets(texts, default=("0", "1")) -> list[float]:
    """--target values: numbers in [0, 1], duplicates dropped, order kept."""
    from stabcli.core import inputs as parse

    ys: list[float] = []
    for text in texts or default:
        y = parse.parse_number(str(text), "--target", "a number in [0, 1]")
        if not (0 <= y <= 1):
            raise UserError(f"--target {parse.shown(text)} is outside [0, 1]; targets are probabilities in [0, 1]")
        if y not in ys:
            ys.append(y)
    return ys


def check_output_file(path: str, option: str, suffixes: tuple[str, ...]) -> None:
    """Check an output file before any work (sweep --plot, demo --export): not empty, not a folder, ending in
    one of ``suffixes``, in a folder that exists and can be written, and a name the file system can hold (not
    too long, no NUL). Every refusal is one UserError that names the path."""
    import os
    from pathlib import Path

    from stabcli.core.inputs import shown

    endings = " or ".join(suffixes)
    target = Path(refuse_empty(path, option, f"a file name ending in {endings}"))
    with checking_path(path, option):
        if target.is_dir():
            raise UserError(f"{option} {shown(path)} is a folder; give a file name ending in {endings}")
        if target.suffix.lower() not in suffixes:
            raise UserError(f"{option} {shown(path)} must end in {endings}")
        folder = target.parent
        if not folder.is_dir() or not writable(folder):
            raise UserError(f"{option} {shown(path)}: the folder {shown(str(folder))} does not exist or cannot be "
                            "written")
        try:
            os.stat(target)  # a file name too long is refused here, not after the work
        except FileNotFoundError:
            pass


def refuse_empty(path: str, option: str, wanted: str) -> str:
    """``path`` itself, or a UserError if it is empty or blank (``wanted``: what to give instead)."""
    from stabcli.core.inputs import shown

    if not path.strip():
        raise UserError(f"{option} {shown(path)} is empty; give {wanted}")
    return path


@contextlib.contextmanager
def checking_path(path: str, option: str):
    """Check that ``path`` is a name a file system can hold (:func:`check_file_name`), then run the checks inside:
    any OSError or ValueError there (a name too long, a folder we may not look into, a NUL) becomes one UserError
    that names the path."""
    from stabcli.core.inputs import shown

    try:
        check_file_name(path)
        yield
    except (OSError, ValueError) as exc:  # ValueError: a name no file system takes (NUL, a lone surrogate)
        raise UserError(f"{option} {shown(path)} cannot be used ({path_problem(exc)}); give a shorter or other "
                        "path") from None


def writable(folder) -> bool:
    """Whether files can be made in the existing folder ``folder``."""
    import os

    return os.access(folder, os.W_OK | os.X_OK)


def check_file_name(path: str) -> None:
    """ValueError for a name that no file system holds: a NUL, or a character the file system encoding lacks
    (pathlib's exists() just says False to both, and the failure would come after all the work)."""
    import os

    if "\0" in path:
        raise ValueError("embedded null byte")
    os.fsencode(path)


def path_problem(exc: Exception) -> str:
    """Why a path cannot be used, in a few words: the system's reason, or that no file system takes the name."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return "not a name a file system can hold"


# --- output --------------------------------------------------------------------------------------------------

def console(**kwargs):
    """The rich Console every command prints its tables with (on stdout unless ``stderr=True``).

    rich's own answer to a broken pipe is to exit 1 at once; this one lets the BrokenPipeError through, so that
    ``cli/__init__.py`` ends every command the same way (see the README's Errors section).
    """
    return _console_class()(**kwargs)


@functools.lru_cache(maxsize=None)
def _console_class():
    from rich.console import Console

    class PipeAwareConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    return PipeAwareConsole


def echo_notes(notes) -> None:
    """Notes a format has no place for (CSV: 'torch_bce is left out: ...'), one 'note:' line each on stderr."""
    for note in notes:
        click.echo(f"note: {note}", err=True)


def emit(output_format: str, as_json, as_csv, as_table, notes=()) -> None:
    """Print a result as strict JSON, CSV, or rich tables (``as_table`` gets the console width).

    ``notes``: what the result says beside its rows (such as a method left out); JSON and the tables carry them,
    CSV cannot, so they go to stderr, where a script reading stdout is not disturbed.
    """
    fmt = output_format.lower()
    if fmt == "json":
        write(as_json() + "\n")
    elif fmt == "csv":
        echo_notes(notes)
        write(as_csv())
    else:
        out = console()
        out.print(as_table(out.width))


def write(text: str) -> None:
    """Write ``text`` to stdout and flush, so that a full disk or a closed reader is seen here, not lost."""
    sys.stdout.write(text)
    sys.stdout.flush()


# --- the terminal --------------------------------------------------------------------------------------------

def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (not a pipe, a file, CliRunner's capture, a closed or missing stream)."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):  # a closed or replaced stream
        return False


def stderr_is_terminal() -> bool:
    """Whether a progress bar can be drawn: stderr is a terminal."""
    return is_terminal(sys.stderr)


def stdin_is_terminal() -> bool:
    """Whether Enter can be waited for: stdin is a terminal."""
    return is_terminal(sys.stdin)
