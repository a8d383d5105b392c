"""``neurocnnf visualize`` and the workflow's figure6 rule: the Fig. 6 set for one checkpoint
(restoration, decision cells, Grad-CAM), as data (NetCDF) and figures (PNG) under one folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from neurocnnf.models.protocol import FeedbackModel
from neurocnnf.pipelines.layout import Figure6Files
from neurocnnf.stimuli import StimulusSet, from_dataset, perturb, render

# the perturbed versions of Fig. 6 and their levels (see neurocnnf.stimuli.perturb); the
# adversarial level is the run's eps
PERTURBATIONS = {"noise": 0.3, "blur": 1.5, "occlusion": 0.25}


def perturbed_versions(model: FeedbackModel, stimuli: StimulusSet, eps: float) -> dict[str, Tensor]:
    """Kind -> (N, C, H, W) images in [0, 1]: the set's stimuli noisy, blurred, occluded and
    adversarial (``perturb``'s PGD-10 at radius ``eps`` on the first pass), each rendered at
    the model's input shape with the set's per-stimulus seeds."""
    channels, size, _ = model.input_shape
    rows = np.arange(len(stimuli))
    levels = {**PERTURBATIONS, "adversarial": eps}
    return {kind: render(perturb(stimuli, kind, [level], stimuli.seed), rows, channels, size,
                         model) for kind, level in levels.items()}


def run_figure6(model: FeedbackModel, out: str | Path, dataset: str = "fashion_mnist",
                n_show: int = 4, n_stats: int = 200, layer: str | None = None, eps: float = 0.1,
                seed: int = 0, data_root: str | Path | None = None) -> dict[str, Path]:
    """Write restoration/decision-cell/Grad-CAM data and figures for ``n_stats`` test images
    (class-balanced, seeded); returns the written figures. The model runs where its weights
    are (``load_model(..., map_location=device)``); the images are rendered on the CPU."""
    from neurocnnf.data import load_dataset
    from neurocnnf.viz import feedback
    from neurocnnf.viz.style import save_figure

    files = Figure6Files(out)
    files.folder.mkdir(parents=True, exist_ok=True)
    stimuli = from_dataset(dataset, "test", n_stats, seed, root=data_root)
    classes = load_dataset(dataset, "test", data_root).classes
    channels, size, _ = model.input_shape
    device = next(model.parameters()).device
    images = render(stimuli, np.arange(len(stimuli)), channels, size).to(device)
    labels = torch.tensor(stimuli.metadata["label"].to_numpy(), dtype=torch.long, device=device)
    versions = {kind: x.to(device) for kind, x in perturbed_versions(model, stimuli, eps).items()}
    written = {}
    data = feedback.restoration_data(model, images, versions)
    data.to_netcdf(files.restoration, engine="h5netcdf")
    written["restoration"] = save_figure(feedback.plot_restoration(
        data.isel(image=slice(0, n_show)), classes=classes), files.restoration_figure)
    written["restoration_distance"] = save_figure(feedback.plot_restoration_distance(data),
                                                  files.restoration_distance)
    directions = feedback.principal_directions(images)
    cells = feedback.decision_cells_data(model, images[0], directions, extent=10.0)
    cells.to_netcdf(files.decision_cells, engine="h5netcdf")
    written["decision_cells"] = save_figure(feedback.plot_decision_cells(cells, classes),
                                            files.decision_cells_figure)
    layer = layer or model.body_taps[0]
    candidates = torch.cat([versions["adversarial"], versions["noise"], images])
    candidate_labels = torch.cat([labels, labels, labels])
    changed = feedback.changed_predictions(model, candidates, candidate_labels)
    chosen = changed[:n_show] if len(changed) else np.arange(n_show)
    cams = feedback.grad_cam_data(model, candidates[chosen], layer, candidate_labels[chosen])
    cams.to_netcdf(files.gradcam, engine="h5netcdf")
    with torch.no_grad():
        trace = model(candidates[chosen])
    predictions = torch.stack(trace.logits, 1).argmax(-1).cpu().numpy()
    written["gradcam"] = save_figure(feedback.plot_grad_cam(
        candidates[chosen].cpu(), cams, predictions, classes), files.gradcam_figure)
    files.summary.write_text(
        f"images whose prediction turns right over iterations: {len(changed)} of "
        f"{len(candidates)} (adversarial eps={eps}, noise, clean)\n"
        + "mean distance of h_hat_t to the clean features, per kind (t = 0 .. T):\n"
        + "\n".join(f"  {kind}: " + " ".join(f"{v:.4f}" for v in data["distance_to_clean"]
                                              .sel(kind=kind).mean("image").values)
                    for kind in data["kind"].values) + "\n")
    return written
