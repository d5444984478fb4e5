"""stabcli: a command-line explorer of numerical stability in cross-entropy losses (binary and softmax), from
float8 to float64, numpy op by op and real torch kernels, against exact values from mpmath."""

__version__ = "0.1.0"
