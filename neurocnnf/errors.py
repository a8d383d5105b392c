"""The package's errors: every error neurocnnf raises for a reason a user can act on is a
:class:`NeurocnnfError` (each also keeps its builtin base, ``ValueError``, ``OSError``, ...,
for code that catches those). The command line catches it once and prints its one line."""

from __future__ import annotations


class NeurocnnfError(Exception):
    """Base of the package's errors; its message says what is wrong and what to do."""


class CheckpointError(NeurocnnfError, ValueError):
    """A checkpoint that is missing, corrupt, truncated or does not match the model."""
