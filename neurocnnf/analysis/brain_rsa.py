"""RSA of every layer at every iteration against the real Kriegeskorte-92 IT RDMs.

Reads an activation dataset of the 92 images (``neurocnnf extract --stimuli kriegeskorte92``),
uses the unperturbed presentations, and compares each layer's RDM per iteration with the
macaque IT RDM (Kiani 2007) and with the human IT RDMs (Kriegeskorte 2008) of the 4 subjects
(sessions averaged): the human similarity is the mean over subjects, the number that the human
noise ceiling bounds (as rsatoolbox evaluates a model), with bootstrap CIs over the images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from neurocnnf.analysis.cka import linear_cka
from neurocnnf.analysis.rsa import bootstrap_ci, check_method, evaluate, noise_ceiling, rdm
from neurocnnf.data import Kriegeskorte92


def clean_presentations(ds: xr.Dataset) -> xr.Dataset:
    if "perturbation" in ds.coords:
        keep = (ds["perturbation"].values == "none") | (ds["level"].values == 0)
        ds = ds.isel(presentation=np.flatnonzero(keep))
    if ds.sizes["presentation"] != 92:
        raise ValueError(f"expected the 92 Kriegeskorte images, found {ds.sizes['presentation']}")
    return ds


def feature_layers(ds: xr.Dataset) -> list[str]:
    """Layer variables with a neuroid dim (forward features, not feedback or outputs)."""
    return [name for name in ds.data_vars if ds[name].ndim == 3 and not name.endswith(
        "_feedback") and name not in ("probabilities",)]


def human_subject_rdms(k92: Kriegeskorte92) -> list[np.ndarray]:
    """One RDM per human subject, averaged over its two sessions."""
    subjects = sorted({name.split("_")[2] for name in k92.rdms if name.startswith("human_IT_")})
    return [np.mean([k92.rdms[n] for n in k92.rdms if n.startswith(f"human_IT_{s}_")], 0)
            for s in subjects]


def target_rdms(k92: Kriegeskorte92) -> dict[str, list[np.ndarray]]:
    """Target name -> the RDMs a model is evaluated against (similarity averaged over them)."""
    return {"macaque_IT": [k92.rdms["macaque_IT"]], "human_IT": human_subject_rdms(k92)}


def layer_iteration_rsa(ds: xr.Dataset, k92: Kriegeskorte92, method: str = "spearman",
                        n_boot: int = 100) -> pd.DataFrame:
    """Tidy table: layer, iteration, target (macaque_IT / human_IT), similarity, CI, method.

    human_IT similarity: mean over the 4 subjects' RDMs; CI: bootstrap percentile over images.
    """
    check_method(method)
    ds = clean_presentations(ds)
    targets = target_rdms(k92)
    rows = []
    for layer in feature_layers(ds):
        values = ds[layer].values  # (92, T+1, D)
        for t in range(values.shape[1]):
            model_rdm = rdm(values[:, t])
            for target, rdms in targets.items():
                low, high = bootstrap_ci(model_rdm, rdms, method, n_boot)
                rows.append({"layer": layer, "iteration": t, "target": target,
                             "similarity": evaluate(model_rdm, rdms, method),
                             "ci_low": low, "ci_high": high, "method": method})
    return pd.DataFrame(rows)


def human_ceiling(k92: Kriegeskorte92, method: str = "spearman") -> tuple[float, float]:
    """(lower, upper) noise ceiling of the human_IT similarity (4 subjects)."""
    return noise_ceiling(human_subject_rdms(k92), method)


def iteration_cka(ds: xr.Dataset, layer: str) -> np.ndarray:
    """(T+1, T+1) debiased linear CKA between the iterations of one layer."""
    values = clean_presentations(ds)[layer].values
    passes = values.shape[1]
    matrix = np.ones((passes, passes))
    for i in range(passes):
        for j in range(i + 1, passes):
            matrix[i, j] = matrix[j, i] = linear_cka(values[:, i], values[:, j])
    return matrix
