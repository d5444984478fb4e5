"""stabcli: a command-line explorer of numerical stability in binary cross-entropy."""

__version__ = "0.1.0"
