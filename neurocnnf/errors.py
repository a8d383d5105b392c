"""Errors that more than one layer raises."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or does not match the model."""
