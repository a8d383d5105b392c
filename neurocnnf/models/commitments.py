"""Default Brain-Score region -> layer commitments chosen on brain data.

``commitments.json`` beside this module holds, per architecture, the commitment that
``neurocnnf analyze neural`` chose for one model of it on the 92-image fMRI set (algonauts92:
the forward layer with the highest mean RSA over subjects, per region, EVC and IT) and reported
on the held-out sets (docs/neural.md). ``analyses/neural.py`` writes the file from
docs/neural/commitment.json each time it runs (its ``registry`` step), and the architectures'
registrations read it (``regions`` of :func:`neurocnnf.models.registry.register_architecture`).

The fMRI regions become Brain-Score's four with :func:`regions_from_rsa`: V1 and V2 take the EVC
layer (Algonauts' early visual cortex spans V1-V3), IT the IT layer, and V4, which the data do
not measure, the tap halfway between them. The chosen iteration is recorded but not committed:
the iterations answer Brain-Score's time bins (``neurocnnf.brainscore.regions``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

COMMITMENTS = Path(__file__).with_name("commitments.json")


def regions_from_rsa(evc: str, it: str, taps: Sequence[str]) -> dict[str, str]:
    """Brain-Score region (V1, V2, V4, IT) -> tap from the layers committed to EVC and IT: V1,
    V2 -> ``evc``, IT -> ``it``, V4 -> the tap halfway between them in ``taps`` order (the one
    nearer IT when two are)."""
    missing = [layer for layer in (evc, it) if layer not in taps]
    if missing:
        raise ValueError(f"committed layer(s) {missing} are not taps of the model {list(taps)}")
    low, high = list(taps).index(evc), list(taps).index(it)
    middle = (low + high + (high > low)) // 2
    return {"V1": evc, "V2": evc, "V4": taps[middle], "IT": it}


def committed_regions(arch: str, path: Path = COMMITMENTS) -> dict[str, str]:
    """Region -> layer of ``arch`` from ``path`` (commitments.json); a clear error when the
    file commits nothing for it."""
    entries = json.loads(path.read_text())["architectures"]
    if arch not in entries:
        raise ValueError(f"{path} commits no layers for architecture {arch!r}; it has "
                         f"{sorted(entries)} (rerun analyses/neural.py)")
    return dict(entries[arch]["regions"])
