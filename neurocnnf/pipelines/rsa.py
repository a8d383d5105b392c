"""``neurocnnf analyze rsa`` and the workflow's rsa rule: RSA of every layer x iteration with
the Kriegeskorte-92 IT RDMs, the human noise ceiling, RDM panels and CKA across iterations."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from neurocnnf.activations import open_activations
from neurocnnf.analysis import brain_rsa
from neurocnnf.pipelines.layout import RsaFiles

SHOWN_LAYER = "h_hat"  # layer k's features, which the classifier reads: the RDM panels' layer


def run_rsa(activations: str | Path, out: str | Path, method: str = "spearman",
            n_boot: int = 100, data_root: str | Path | None = None) -> pd.DataFrame:
    """Write the :class:`RsaFiles` under ``out``: the table (layer, iteration, target,
    similarity, CI), the human noise ceiling, the figure, the RDM panels (h_hat at t = 0 and
    the last t beside the IT RDMs) and CKA per layer; returns the RSA table."""
    from neurocnnf.data import kriegeskorte92
    from neurocnnf.viz import analysis as fig
    from neurocnnf.viz.style import save_figure

    files = RsaFiles(out)
    files.folder.mkdir(parents=True, exist_ok=True)
    ds = open_activations(activations)
    layers = brain_rsa.feature_layers(ds)
    if SHOWN_LAYER not in layers:
        raise ValueError(f"{activations}: the RSA figures need the {SHOWN_LAYER!r} layer; "
                         f"this store has {layers}")
    k92 = kriegeskorte92(data_root)
    table = brain_rsa.layer_iteration_rsa(ds, k92, method, n_boot)
    ceiling = brain_rsa.human_ceiling(k92, method)
    table.to_csv(files.table, index=False)
    files.noise_ceiling.write_text(json.dumps({"human_IT": ceiling, "method": method}))
    save_figure(fig.similarity_vs_iteration(table, ceiling), files.figure)
    clean = brain_rsa.clean_presentations(ds)
    model_rdms = {f"{SHOWN_LAYER} t={t}": brain_rsa.rdm(clean[SHOWN_LAYER].values[:, t])
                  for t in (0, ds.sizes["iteration"] - 1)}
    save_figure(fig.rdm_panels({**model_rdms, "macaque IT": k92.rdms["macaque_IT"],
                                "human IT": k92.rdms["human_IT"]}, k92.category_names),
                files.rdms)
    for layer in layers:
        save_figure(fig.cka_matrix(brain_rsa.iteration_cka(ds, layer), layer),
                    files.cka(layer))
    return table
