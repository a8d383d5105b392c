"""What an exported Brain-Score plugin runs: verified weights in, activations / brain model out.

An exported plugin carries a copy of this module and of everything it imports, generated at
export time (``brainscore.vendor``), so it needs only published packages; with
``--package-url`` it imports the installed ``neurocnnf`` instead.

Weights, in order: ``NEUROCNNF_WEIGHTS`` (a local file); the plugin's local path when it has
no URL (a local, not submittable plugin); else the download cache
(``NEUROCNNF_CACHE``/weights/<identifier>.safetensors), filled from the URL through a
temporary name that is renamed only once its sha256 matches. Every load checks the sha256.
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path

from neurocnnf.data.download import download, verify
from neurocnnf.data.roots import DataIntegrityError, DataNotFoundError, cache_dir
from neurocnnf.errors import NeurocnnfError
from neurocnnf.train.checkpoint import load_model


class WeightsError(NeurocnnfError, RuntimeError):
    """The plugin's weights are neither on disk nor downloadable."""


def weights_path(identifier: str, url: str | None, sha256: str,
                 local: str | None = None) -> Path:
    """The verified checkpoint file of ``identifier`` (downloaded once when needed)."""
    override = os.environ.get("NEUROCNNF_WEIGHTS")
    if override:
        path = Path(override)
    elif url is None:
        if local is None:
            raise WeightsError(f"{identifier}: the plugin has neither a weights URL nor a local "
                               "path; set NEUROCNNF_WEIGHTS to the checkpoint file")
        path = Path(local)
    else:
        path = cache_dir() / "weights" / f"{identifier}.safetensors"
        if not path.exists():
            try:
                download(url, path, f"sha256:{sha256}", [path.parent])
            except (DataNotFoundError, http.client.HTTPException) as error:
                raise WeightsError(
                    f"{identifier}: downloading the weights from {url} failed "
                    f"({type(error).__name__}); nothing was cached, so the next load tries "
                    "again. Set NEUROCNNF_WEIGHTS to a local copy to skip the download.") from None
            except DataIntegrityError as error:
                raise WeightsError(
                    f"{identifier}: what was downloaded from {url} is not the exported "
                    "checkpoint (broken off, or another file); nothing was cached, so the next "
                    f"load downloads again. {error}") from None
    if not path.exists():
        raise WeightsError(f"{identifier}: weights file {path} does not exist (set "
                           "NEUROCNNF_WEIGHTS to the checkpoint file)")
    verify(path, f"sha256:{sha256}")
    return path


def get_model(identifier: str, weights: Path, iterations: int):
    """The activations model (Brain-Score PytorchWrapper; layers '<layer>-t<iteration>')."""
    from neurocnnf.brainscore.commitment import activations_model

    return activations_model(load_model(weights), identifier, iterations)


def get_brain_model(identifier: str, weights: Path, iterations: int,
                    region_layer_map: dict[str, str], class_names: list[str] | None,
                    time_mode: str = "overlap"):
    """The committed BrainModel: region -> layer, time bin -> iterations (``time_mode``:
    "overlap" or "nearest", as ``make_brain_model``)."""
    from neurocnnf.brainscore.commitment import make_brain_model

    return make_brain_model(load_model(weights), identifier, region_layer_map,
                            time_mode=time_mode, iterations=iterations, class_names=class_names)
