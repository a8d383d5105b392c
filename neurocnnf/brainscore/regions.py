"""Region -> layer commitments per architecture (used when no data-driven choice exists).

Documented defaults, from the depth of each tap in the feedforward hierarchy:
  fmnist_small: V1, V2 -> conv1; V4, IT -> conv2 (the model has two conv layers)
  fmnist_adv:   V1 -> conv1, V2 -> conv2, V4 -> conv3, IT -> conv4
  wrn:          V1 -> conv1, V2 -> group1, V4 -> group2, IT -> group3
  fmnist_pc:    as fmnist_small (the predictive-coding comparator on the same backbone)
  any other model (e.g. ``from_backbone``): each region to the tap of the same name (a
                CORnet-style backbone with blocks V1, V2, V4, IT commits them as named)
Only body layers (after layer k) change across iterations; encoder layers are constant.
"""

from __future__ import annotations

from collections.abc import Sequence

REGIONS = ("V1", "V2", "V4", "IT")

REGION_LAYER_MAPS: dict[str, dict[str, str]] = {
    "fmnist_small": {"V1": "conv1", "V2": "conv1", "V4": "conv2", "IT": "conv2"},
    "fmnist_adv": {"V1": "conv1", "V2": "conv2", "V4": "conv3", "IT": "conv4"},
    "wrn": {"V1": "conv1", "V2": "group1", "V4": "group2", "IT": "group3"},
    "fmnist_pc": {"V1": "conv1", "V2": "conv1", "V4": "conv2", "IT": "conv2"},
}


def default_region_layer_map(arch: str, taps: Sequence[str] = ()) -> dict[str, str]:
    if arch in REGION_LAYER_MAPS:
        return dict(REGION_LAYER_MAPS[arch])
    named = {region: region for region in REGIONS if region in taps}
    if not named:
        raise ValueError(f"no region-layer commitment for architecture {arch!r} and no layer "
                         f"named after a region {REGIONS}: pass region_layer_map")
    return named
