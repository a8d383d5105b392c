"""Plug-ins found by entry point: installed packages that add architectures or attacks.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."neurocnnf.architectures"]
    my_net = "my_package.models"      # a module whose import calls register_architecture

    [project.entry-points."neurocnnf.attacks"]
    my_attack = "my_package.attacks"  # a module whose import calls register_attack

The registries load every entry point of their group the first time a name is looked up (as
xarray finds its backends), so a checkpoint of a plug-in's architecture loads without
importing the plug-in's code first. A plug-in that fails to import is skipped with a warning
naming it.
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

ARCHITECTURES = "neurocnnf.architectures"
ATTACKS = "neurocnnf.attacks"
_loaded: set[str] = set()


class PluginWarning(UserWarning):
    """An installed plug-in could not be loaded."""


def load_plugins(group: str) -> list[str]:
    """Import every entry point of ``group`` once per process; returns the names loaded now."""
    if group in _loaded:
        return []
    _loaded.add(group)
    loaded = []
    for point in entry_points(group=group):
        try:
            point.load()
        except Exception as error:  # a broken plug-in must not break the package
            warnings.warn(f"neurocnnf plug-in {point.name!r} ({point.value}, group {group}) "
                          f"failed to load: {type(error).__name__}: {error}", PluginWarning,
                          stacklevel=2)
            continue
        loaded.append(point.name)
    return loaded
