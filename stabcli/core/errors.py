"""Exceptions of the numeric core; the CLI turns them into one-line `Error:` messages."""


class StabcliError(ValueError):
    """Base class of every error stabcli reports to a user."""


class InputError(StabcliError):
    """A value given by the user is not allowed (names the value and what is allowed)."""
