"""Optional dependencies: import one, or fail with a message naming the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """A feature needs a package from one of neurocnnf's optional extras."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise MissingExtraError naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{feature} needs {module.split('.')[0]}, from the `{extra}` extra: "
            f"pip install 'neurocnnf[{extra}]' ({error})") from None
