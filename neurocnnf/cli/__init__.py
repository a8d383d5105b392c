"""The ``neurocnnf`` command line (typer): ``app`` and its entry point ``main``; one module per
sub-app, the shared option texts and defaults in ``options``."""

from neurocnnf.cli.app import app, main
from neurocnnf.cli.options import ATTACK_BATCH, ATTACKS_HELP, DEVICE_HELP, FORWARD_BATCH

__all__ = ["ATTACKS_HELP", "ATTACK_BATCH", "DEVICE_HELP", "FORWARD_BATCH", "app", "main"]
