"""The command line: a click group whose commands each live in a module of their own.

Kept thin on purpose: a command parses its options, calls the numeric core (``stabcli/commands``), and prints what
``stabcli/present`` returns. Heavy modules (numpy, the core, torch, mpmath, matplotlib) are imported inside the
commands, so ``stabcli --help`` starts as fast as click allows.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import re
import sys

import click

from stabcli import __version__
from stabcli.cli import check, compare, demo, options, plot, sweep, thresholds
from stabcli.cli.float import float_command

# Exit codes, the same for every command (README, "Errors"):
EXIT_OK = 0  # done; also when the reader of a pipe went away (`stabcli demo | head -1`)
EXIT_OUTPUT = 1  # the output could not be written: stdout closed (`>&-`), a full disk, an I/O error
EXIT_USAGE = 2  # bad input: one `Error:` line that names the value and says what is allowed
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, the shell's convention)

# What stabcli's own text needs beyond ASCII, for a stream that cannot encode it (PYTHONIOENCODING=ascii, a C
# locale without UTF-8): written out in ASCII; anything else (a value the user typed) as a \u escape.
_ASCII = {"·": "*", "ε": "eps", "≥": ">=", "≤": "<=", "≈": "~", "±": "+/-", "×": "x", "…": "...", "–": "-",
          "—": "-", "²": "^2", "─": "-", "→": "->", "✕": "x", "▲": "^"}


def _to_ascii(err: UnicodeEncodeError):
    bad = err.object[err.start:err.end]
    return "".join(_ASCII.get(c) or c.encode("ascii", "backslashreplace").decode() for c in bad), err.end


codecs.register_error("stabcli-ascii", _to_ascii)


class _Stdout:
    """sys.stdout (and stderr) while a command runs: text goes to the file descriptor directly, and a failure is
    remembered.

    CPython's buffered writer, given a write larger than its buffer that the disk takes only in part, keeps the
    rest and then never writes it, without an error (a 100 kB JSON document on a full 64 kB disk came out cut at
    64 kB, exit 0). Here each write is encoded as the stream would encode it and written with os.write until all
    of it is out or the system says why not. Streams without a file descriptor (CliRunner's) are written as they
    are. Everything else is the real stream's.
    """

    def __init__(self, stream):
        self.stream = stream
        self.failed: OSError | None = None
        self.fd = None
        if os.name == "posix":  # elsewhere the stream's newline translation matters
            try:
                self.fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                pass

    def write(self, text):
        try:
            if not isinstance(text, str):  # (click probes with write(b"") whether a stream is binary)
                return self.stream.write(text)
            if self.fd is None:
                try:
                    return self.stream.write(text)
                except UnicodeEncodeError:  # a file name with undecodable bytes, on a strict stream
                    return self.stream.write(self._encode(text).decode(self._encoding, "replace"))
            data = self._encode(text)
            self.stream.flush()  # anything written before, in order
            _write_all(self.fd, data)
            return len(text)
        except OSError as exc:
            self.failed = exc
            raise

    @property
    def _encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"

    def _encode(self, text: str) -> bytes:
        """As the stream encodes, except that where it is strict a file name's undecodable bytes (surrogate
        escapes, as Python reads a non-UTF-8 argv) are written as those bytes, and any other lone surrogate as
        '?', rather than failing."""
        errors = getattr(self.stream, "errors", None) or "strict"
        if errors != "strict":
            return text.encode(self._encoding, errors)
        try:
            return text.encode(self._encoding, "surrogateescape")
        except UnicodeEncodeError:
            return text.encode(self._encoding, "replace")

    def flush(self):
        try:
            self.stream.flush()
        except OSError as exc:
            self.failed = exc
            raise

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written; an error (ENOSPC, EPIPE, EIO, ...) is raised, never dropped."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:  # a non-blocking stdout (some parents make one): wait until it takes more
            import select

            select.select([], [fd], [])
            continue
        if n == 0:
            raise OSError(errno.EIO, "the output took no bytes")
        view = view[n:]


class _OSErrorInCommand(Exception):
    """An OSError from inside a command, carried past click, which would end a broken pipe with exit code 1."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _Interrupted(BaseException):
    """Ctrl-C inside a command, carried past click (which prints a blank line and calls it 'Aborted!')."""


def _ascii_fallback(stream) -> None:
    """Let a stream that cannot encode stabcli's '·', '≤', 'ε' write them in ASCII instead of failing."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        "·≤ε─".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        try:
            stream.reconfigure(errors="stabcli-ascii")
        except (AttributeError, ValueError, OSError):
            pass


def _silence(stream) -> None:
    """Point a failed stream's file descriptor at /dev/null, so that Python's own flush at exit does not fail
    again (with a second message and exit code 120)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # CliRunner's streams have none
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _say(line: str) -> None:
    """One line on stderr; if stderr itself is closed, full or a broken pipe, the exit code has to say it."""
    if sys.stderr is None:
        return
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        _silence(sys.stderr)


def _shorten(message: str, limit: int = 80) -> str:
    """A click message with every long quoted value cut to its two ends and its length, as ``inputs.shown``."""
    half = (limit - 20) // 2

    def cut(m: re.Match) -> str:
        q, inner = m.group(0)[0], m.group(0)[1:-1]
        return f"{q}{inner[:half]}{q}...{q}{inner[-half:]}{q} ({len(inner):,} characters)"

    return re.sub(r"'[^'\n]{%d,}'|\"[^\"\n]{%d,}\"" % (limit + 1, limit + 1), cut, message)


def run(invoke) -> int:
    """Run a command (``invoke``: click's main, not standalone) and decide its exit code: the one place where
    every command's streams, errors and Ctrl-C are handled, so that commands added later behave the same.

    * stdout closed (``>&-``): one line on stderr, exit 1, before any work.
    * stdout full or failing (``> /dev/full``): what is written is flushed and checked; one line, exit 1
      (stderr full or failing: exit 1, with nowhere to say it).
    * a broken pipe (``| head -1``): the reader has what it wanted; exit 0, quietly.
    * Ctrl-C: "Interrupted." and exit 130; a command's files are never left half-written (see ``plot``).
    * bad input: one ``Error:`` line, exit 2.
    """
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            _ascii_fallback(stream)
    if sys.stdout is None:  # Python's stdout when file descriptor 1 was closed at start
        _say("Error: stdout is closed, so nothing can be printed; redirect it to a file or to /dev/null instead "
             "of closing it")
        return EXIT_OUTPUT
    real, real_err = sys.stdout, sys.stderr
    out = sys.stdout = _Stdout(real)
    err = None if real_err is None else _Stdout(real_err)
    if err is not None:
        sys.stderr = err
    try:
        rv = invoke()
        out.flush()
        return rv if isinstance(rv, int) else EXIT_OK
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:  # `stabcli` alone: its help
            out.write(exc.ctx.get_help() + "\n")
            out.flush()
            return EXIT_OK
        _say(f"Error: {_shorten(exc.format_message())}")  # no usage block: one line says what is wrong
        return EXIT_USAGE
    except click.ClickException as exc:
        _say(f"Error: {_shorten(exc.format_message())}")
        return exc.exit_code
    except (_Interrupted, KeyboardInterrupt, click.Abort):  # Ctrl-C in a command, or around it
        _say(("\n" if options.is_terminal(sys.stderr) else "") + "Interrupted.")  # a terminal shows ^C: end its line
        return EXIT_INTERRUPTED
    except (OSError, _OSErrorInCommand) as caught:
        exc = caught.error if isinstance(caught, _OSErrorInCommand) else caught
        if exc.errno == errno.EPIPE:  # the reader of a pipe went away: it has what it wanted
            _silence(real)
            return EXIT_OK
        if out.failed is exc:
            _silence(real)
            _say(f"Error: the output could not be written ({exc.strerror or exc}); nothing more was printed")
            return EXIT_OUTPUT
        if err is not None and err.failed is exc:  # stderr itself is full or failing: nowhere left to say it
            _silence(real_err)
            return EXIT_OUTPUT
        raise exc from None
    finally:
        sys.stdout, sys.stderr = real, real_err


class StabcliGroup(click.Group):
    """A click group whose commands end the same way: see :func:`run`."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        call = super().main
        if not standalone_mode:
            return call(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = run(lambda: call(args, prog_name, complete_var, standalone_mode=False, **extra))
        except KeyboardInterrupt:  # a second Ctrl-C while the first one is reported
            code = EXIT_INTERRUPTED
        sys.exit(code)

    # click's own main ends a broken pipe with exit code 1 and Ctrl-C with "Aborted!", even when not standalone:
    # what happens in parsing (--help, --version) and in the command is carried past it to run().
    def make_context(self, *args, **kwargs):
        with _past_click():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _past_click():
            return super().invoke(ctx)


@contextlib.contextmanager
def _past_click():
    try:
        yield
    except OSError as exc:
        raise _OSErrorInCommand(exc) from exc
    except KeyboardInterrupt:
        raise _Interrupted() from None


@click.group(cls=StabcliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="stabcli")
def cli():
    """Explore where cross-entropy breaks, from float8 to float64.

    Compares the naive BCELoss(sigmoid(x), y) with the log-sum-exp / softplus form of BCEWithLogitsLoss(x, y)
    (and, with --loss softmax, the forms of softmax cross-entropy), op by op in numpy and with real torch
    kernels, against exact values from mpmath; on typed numbers, on sweeps of logits, or on your own tensors.

    \b
    Example:
        stabcli demo
        stabcli compare 1e10 1
        stabcli check logits.npy targets.npy
        stabcli float 1e10 --dtype float16
    """


for _module in (compare, check, sweep, thresholds, plot, demo):
    cli.add_command(getattr(_module, _module.__name__.rsplit(".", 1)[1]))
cli.add_command(float_command)


def main():
    cli(prog_name="stabcli")


if __name__ == "__main__":
    main()
