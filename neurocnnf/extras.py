"""Optional dependencies: import one, or fail with a message naming the extra that installs it."""

from __future__ import annotations

import importlib
import re
from importlib import metadata
from types import ModuleType

from neurocnnf.errors import NeurocnnfError


class MissingExtraError(NeurocnnfError, ImportError):
    """A feature needs a package from one of neurocnnf's optional extras."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise MissingExtraError naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(f"{feature} {_needs(module, extra)} ({error})") from None


def _needs(module: str, extra: str) -> str:
    return (f"needs {module.split('.')[0]}, from the `{extra}` extra: "
            f"pip install 'neurocnnf[{extra}]'")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def extra_providing(module: str) -> str | None:
    """The first of neurocnnf's extras (as installed) that requires the distribution named
    like ``module`` (xarray -> 'analysis', snakemake -> 'workflows'); None if none does."""
    try:
        requirements = metadata.requires("neurocnnf") or []
    except metadata.PackageNotFoundError:
        return None
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*).*;.*extra\s*==\s*['\"]([^'\"]+)",
                         requirement)
        if match and _canonical(match[1]) == _canonical(module.split(".")[0]):
            return match[2]
    return None


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """The extras message for an import of a package from an extra that is not installed
    (None when the missing module is no extra's)."""
    extra = extra_providing(error.name or "")
    return None if extra is None else f"this command {_needs(error.name or '', extra)}"
