"""The Fig. 6 set for one checkpoint: restoration, decision cells and Grad-CAM, as data
(NetCDF) and figures (PNG) under one folder. Called by ``neurocnnf visualize``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from neurocnnf.attacks import logits_fn, pgd
from neurocnnf.data import load_dataset
from neurocnnf.io import save_figure as save
from neurocnnf.models import FeedbackModel
from neurocnnf.stimuli.perturb import apply
from neurocnnf.viz import feedback

PERTURBATIONS = {"noise": 0.3, "blur": 1.5, "occlusion": 0.25}


def perturbed_versions(model: FeedbackModel, images: torch.Tensor, labels: torch.Tensor, eps: float,
                       seed: int) -> dict[str, torch.Tensor]:
    """Noisy, blurred, occluded and adversarial (PGD-20 on the first pass) copies."""
    versions = {}
    for kind, level in PERTURBATIONS.items():
        generator = torch.Generator().manual_seed(seed)
        versions[kind] = torch.stack([apply(x, kind, level, generator) for x in images])
    versions["adversarial"] = pgd(logits_fn(model, "first"), images, labels, eps, eps / 8, 20,
                                  generator=torch.Generator().manual_seed(seed))
    return versions


def run_figure6(model: FeedbackModel, out: str | Path, dataset: str = "fashion_mnist",
                n_show: int = 4, n_stats: int = 200, layer: str | None = None, eps: float = 0.1,
                seed: int = 0) -> dict[str, Path]:
    """Write restoration/decision-cell/Grad-CAM data and figures; returns the written files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    test = load_dataset(dataset, "test")
    classes = test.classes
    pick = np.random.default_rng(seed).choice(len(test), n_stats, replace=False)
    images = test.images[torch.as_tensor(pick)].float() / 255
    labels = test.labels[torch.as_tensor(pick)]
    versions = perturbed_versions(model, images, labels, eps, seed)
    written = {}
    data = feedback.restoration_data(model, images, versions)
    data.to_netcdf(out / "restoration.nc", engine="h5netcdf")
    written["restoration"] = save(feedback.plot_restoration(data.isel(image=slice(0, n_show)),
                                                            classes=classes),
                                  out / "restoration.png")
    written["restoration_distance"] = save(feedback.plot_restoration_distance(data),
                                           out / "restoration_distance.png")
    directions = feedback.principal_directions(images)
    cells = feedback.decision_cells_data(model, images[0], directions, extent=10.0)
    cells.to_netcdf(out / "decision_cells.nc", engine="h5netcdf")
    written["decision_cells"] = save(feedback.plot_decision_cells(cells, classes),
                                     out / "decision_cells.png")
    layer = layer or model.body_taps[0]
    candidates = torch.cat([versions["adversarial"], versions["noise"], images])
    candidate_labels = torch.cat([labels, labels, labels])
    changed = feedback.changed_predictions(model, candidates, candidate_labels)
    chosen = changed[:n_show] if len(changed) else np.arange(n_show)
    cams = feedback.grad_cam_data(model, candidates[chosen], layer, candidate_labels[chosen])
    cams.to_netcdf(out / "gradcam.nc", engine="h5netcdf")
    with torch.no_grad():
        trace = model(candidates[chosen])
    predictions = torch.stack(trace.logits, 1).argmax(-1).numpy()
    written["gradcam"] = save(feedback.plot_grad_cam(candidates[chosen], cams, predictions,
                                                     classes), out / "gradcam.png")
    (out / "summary.txt").write_text(
        f"images whose prediction turns right over iterations: {len(changed)} of "
        f"{len(candidates)} (adversarial eps={eps}, noise, clean)\n"
        + "mean distance of h_hat_t to the clean features, per kind (t = 0 .. T):\n"
        + "\n".join(f"  {kind}: " + " ".join(f"{v:.4f}" for v in data["distance_to_clean"]
                                              .sel(kind=kind).mean("image").values)
                    for kind in data["kind"].values) + "\n")
    return written
