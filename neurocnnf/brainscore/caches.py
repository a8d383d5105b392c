"""Where Brain-Score keeps its caches, for tests and benchmarks that keep them apart.

Brain-Score reads some of these variables when its modules are imported (``result_caching``
fixes a decorated function's folder then): call :func:`configure_environment` before importing
:mod:`neurocnnf.brainscore.commitment`. Loading a model or a plugin never calls it, so a user's
Brain-Score data stays where Brain-Score puts it.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_VARIABLES = ("RESULTCACHING_HOME", "BRAINSCORE_HOME", "BRAINIO_HOME", "MT_HOME")


def configure_environment(cache: str | os.PathLike) -> Path:
    """Point Brain-Score's caches that are not set yet at folders under ``cache``; returns it."""
    root = Path(cache)
    for variable in CACHE_VARIABLES:
        os.environ.setdefault(variable, str(root / variable.split("_")[0].lower()))
    return root
