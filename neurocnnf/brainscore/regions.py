"""Region -> layer commitments (used when no data-driven choice exists) and region -> time
windows of the iterations.

Region -> layer: each architecture's default is registered with it (``regions`` in
:mod:`neurocnnf.models.registry`; the maps and their reasons are beside the registrations),
chosen from the depth of each tap in the feedforward hierarchy, or, for the natural-image
``vgg6`` (and ``vgg6_pc``), from its CNN-F's RSA with fMRI (:mod:`neurocnnf.models.commitments`).
An architecture registered without one (``from_backbone``) commits each region to the tap of
the same name (a CORnet-style backbone with blocks V1, V2, V4, IT commits them as named). Only
body layers change across iterations; encoder layers are constant.

Region -> time windows of the iterations (``TimeBins(start_ms, step_ms)``, see docs/brainscore.md
for the evidence): each region's iteration 0 starts at the response onset that the region's
Brain-Score data use (V1, V2: 50 ms, FreemanZiemba2013's 50-200 ms window; V4, IT: 70 ms,
MajajHong2015's 70-170 ms and Kar2019's 70-250 ms), and every region takes 40 ms per iteration
(one CNN-F iteration updates all layers together: a whole-network feedback loop, ~ the 30-40 ms
by which IT solves Kar et al. 2019's late images after the control images).
"""

from __future__ import annotations

from collections.abc import Sequence

from neurocnnf.activations.timebins import TimeBins
from neurocnnf.models import architecture, architecture_names

REGIONS = ("V1", "V2", "V4", "IT")


def default_region_layer_map(arch: str, taps: Sequence[str] = ()) -> dict[str, str]:
    """Region -> tap: the commitment registered with ``arch``, else (none registered) each
    region to the tap among ``taps`` that carries its name."""
    registered = architecture(arch).regions if arch in architecture_names() else None
    if registered is not None:
        return dict(registered)
    named = {region: region for region in REGIONS if region in taps}
    if not named:
        raise ValueError(f"no region-layer commitment for architecture {arch!r} and no layer "
                         f"named after a region {REGIONS}: pass region_layer_map")
    return named


REGION_TIME_BINS: dict[str, TimeBins] = {
    "V1": TimeBins(50.0, 40.0),
    "V2": TimeBins(50.0, 40.0),
    "V4": TimeBins(70.0, 40.0),
    "IT": TimeBins(70.0, 40.0),
}


def default_time_bins() -> dict[str, TimeBins]:
    """Region -> the time windows of the iterations (a copy of REGION_TIME_BINS)."""
    return dict(REGION_TIME_BINS)
