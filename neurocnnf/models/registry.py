"""The architecture registry: one :class:`Architecture` per name, read by everything that
builds or describes a model by its architecture's name.

Readers: :func:`build_model` (by name), :func:`build_from_config` (checkpoints), the training
config's check of ``model.arch`` and ``model.eta``, checkpoint loading's layout check and
Brain-Score's default region -> layer commitment.

Adding an architecture touches one file: the module that defines its builder calls
:func:`register_architecture` next to it (the built-in ones: ``architectures.py``,
``predictive.py``, ``backbone.py``; a new module is imported in ``models/__init__.py``). An
installed package registers its own through the ``neurocnnf.architectures`` entry point
(:mod:`neurocnnf.plugins`), loaded at the first lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from neurocnnf.models.protocol import FeedbackModel
from neurocnnf.plugins import ARCHITECTURES, load_plugins

Builder = Callable[..., FeedbackModel]


@dataclass(frozen=True)
class Architecture:
    """How to build, rebuild and commit one architecture.

    name: the ``arch`` label, stored as ``model.config["arch"]``.
    build: ``build(iterations=T, eta=..., **options)`` -> a model (``build_model``); None for
        an architecture made otherwise (``from_backbone``), which is only rebuilt.
    rebuild: ``rebuild(**config_without_arch, iterations=T, eta=...)`` -> the model a saved
        ``model.config`` describes (``build_from_config``); None: ``build`` does it.
    regions: the default Brain-Score commitment, region (V1, V2, V4, IT) -> tap; None: each
        region goes to the tap of its name (a CORnet-style model).
    has_eta: the model takes CNN-F's step size; False: ``eta`` must be None (training config:
        ``model.eta: null``), the dynamics are set through the options.
    fixed_layout: for a builder that fixes the layout, the config entries it still takes
        (e.g. ``("num_classes",)``): a checkpoint labelled with this name must have exactly
        the layout the builder gives for them. None: any config the rebuild accepts is valid.
    """

    name: str
    build: Builder | None
    rebuild: Builder | None = None
    regions: Mapping[str, str] | None = None
    has_eta: bool = True
    fixed_layout: tuple[str, ...] | None = None

    def rebuild_from(self, config: Mapping[str, Any], iterations: int, eta: float | None
                     ) -> FeedbackModel:
        """The model of a saved ``model.config`` with the run defaults T and eta."""
        builder = self.rebuild or self.build
        options = {k: v for k, v in config.items() if k != "arch"}
        return builder(**options, iterations=iterations, **({} if eta is None else {"eta": eta}))


_ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(
    name: str,
    build: Builder | None,
    *,
    rebuild: Builder | None = None,
    regions: Mapping[str, str] | None = None,
    has_eta: bool = True,
    fixed_layout: tuple[str, ...] | None = None,
) -> Architecture:
    """Register an architecture under ``name`` (see :class:`Architecture` for the fields).

    A name can be registered once; the entry is returned.
    """
    if name in _ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is already registered")
    if build is None and rebuild is None:
        raise ValueError(f"architecture {name!r} needs a build or a rebuild function")
    if build is None and fixed_layout is not None:
        raise ValueError(f"architecture {name!r}: a fixed_layout is checked against its build "
                         "function; give one")
    entry = Architecture(name, build, rebuild,
                         None if regions is None else MappingProxyType(dict(regions)),
                         has_eta, fixed_layout)
    _ARCHITECTURES[name] = entry
    return entry


def architecture_names(buildable: bool = False) -> tuple[str, ...]:
    """The registered names (plug-ins included), sorted; ``buildable``: only those
    :func:`build_model` builds."""
    load_plugins(ARCHITECTURES)
    return tuple(sorted(n for n, a in _ARCHITECTURES.items() if a.build or not buildable))


def architecture(name: str) -> Architecture:
    """The registered architecture ``name``; a clear error listing the known ones."""
    if name not in _ARCHITECTURES:
        load_plugins(ARCHITECTURES)
    if name not in _ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {list(architecture_names())}")
    return _ARCHITECTURES[name]


def build_model(arch: str, **kwargs: Any) -> FeedbackModel:
    """Build an architecture by name (``iterations``, ``eta`` and its own options as keywords),
    e.g. ``build_model("fmnist_small", iterations=2)``; see :func:`architecture_names`."""
    if arch not in _ARCHITECTURES:
        load_plugins(ARCHITECTURES)
    entry = _ARCHITECTURES.get(arch)
    if entry is None or entry.build is None:
        why = "unknown architecture" if entry is None else \
            "not built by name (only rebuilt from a saved config):"
        raise ValueError(f"{why} {arch!r}; choose from {list(architecture_names(True))}")
    return entry.build(**kwargs)


def build_from_config(config: Mapping[str, Any], iterations: int = 1,
                      eta: float | None = None) -> FeedbackModel:
    """Rebuild a model from its ``model.config`` (as stored in a checkpoint) with the defaults
    T = ``iterations`` and ``eta`` (None: the architecture's own)."""
    arch = config.get("arch")
    if not isinstance(arch, str):
        raise ValueError(f"model config names no architecture ('arch'): {dict(config)}")
    return architecture(arch).rebuild_from(config, iterations, eta)
