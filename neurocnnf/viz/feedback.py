"""Seeing the feedback work (paper Fig. 6): restoration, decision cells, Grad-CAM per iteration.

Each ``*_data`` function returns an xarray object; each ``plot_*`` function draws it.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
import torch.nn.functional as F
import xarray as xr

from neurocnnf.models import FeedbackModel
from neurocnnf.models.engine import InputRangeWarning
from neurocnnf.viz import style


@torch.no_grad()
def restoration_data(model: FeedbackModel, clean: torch.Tensor, perturbed: dict[str, torch.Tensor],
                     iterations: int | None = None) -> xr.Dataset:
    """Inputs, pixel-space reconstructions per iteration, predictions and the distance of
    h_hat_t to the clean image's layer-k features (per-image MSE, as the reconstruction loss).

    clean: (N, C, H, W) in [0, 1]; perturbed: kind -> images of the same N sources.
    """
    reference = model(clean, iterations=0).h
    kinds = {"clean": clean, **perturbed}
    inputs, reconstructions, predictions, confidences, distances = [], [], [], [], []
    for images in kinds.values():
        trace = model(images, iterations=iterations, decode=True)
        probabilities = torch.stack(trace.logits, 1).softmax(-1)  # (N, T+1, K)
        inputs.append(images.cpu().numpy())
        reconstructions.append(torch.stack(trace.decoded, 1).cpu().numpy())
        predictions.append(probabilities.argmax(-1).cpu().numpy())
        confidences.append(probabilities.max(-1).values.cpu().numpy())
        distances.append(torch.stack([(x - reference).pow(2).flatten(1).mean(1)
                                      for x in trace.h_hat], 1).cpu().numpy())
    dims = ("kind", "image")
    return xr.Dataset(
        {"input": (dims + ("channel", "y", "x"), np.stack(inputs)),
         "reconstruction": (dims + ("iteration", "channel", "y", "x"), np.stack(reconstructions)),
         "prediction": (dims + ("iteration",), np.stack(predictions)),
         "confidence": (dims + ("iteration",), np.stack(confidences)),
         "distance_to_clean": (dims + ("iteration",), np.stack(distances))},
        coords={"kind": list(kinds), "iteration": np.arange(len(distances[0][0]))},
        attrs={"distance": "mean squared difference of h_hat_t and the clean image's h"})


def match_scale(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image`` affinely rescaled to the mean and s.d. of ``reference`` (arrays of one shape).

    The decoded h_hat_t lives on the scale of the RMS-normalized features, not of pixels; this
    puts every decoded image on one stated, comparable scale (its input's) without changing
    its pattern (a positive gain and an offset). A constant image maps to the reference mean.
    """
    spread = image.std()
    gain = reference.std() / spread if spread > 0 else 0.0
    return (image - image.mean()) * gain + reference.mean()


def plot_restoration(data: xr.Dataset, image: int = 0, classes=None) -> plt.Figure:
    """Rows: kinds; columns: the input, then the reconstruction at each iteration with the
    prediction and its confidence. Each reconstruction is shown matched to its row's input
    mean and s.d. (:func:`match_scale`), then clipped to [0, 1]."""
    kinds, steps = data.sizes["kind"], data.sizes["iteration"]
    fig, axes = style.figure(steps + 1, kinds, panel=(1.6, 1.75))
    axes = axes.reshape(kinds, steps + 1)
    cmap = "gray" if data.sizes["channel"] == 1 else None

    def show(ax, array):
        picture = np.clip(np.moveaxis(array, 0, -1), 0, 1)
        ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap=cmap,
                  vmin=0, vmax=1)
        style.picture(ax)

    for row, kind in enumerate(data["kind"].values):
        part = data.sel(kind=kind).isel(image=image)
        source = part["input"].values
        show(axes[row, 0], source)
        axes[row, 0].set_ylabel(str(kind))
        for t in range(steps):
            show(axes[row, t + 1], match_scale(part["reconstruction"].values[t], source))
            label = int(part["prediction"].values[t])
            name = classes[label] if classes is not None else label
            axes[row, t + 1].set_title(f"t={t}: {name}\n{part['confidence'].values[t]:.2f}",
                                       fontsize=7)
    axes[0, 0].set_title("input", fontsize=8)
    fig.suptitle("decoded h_hat_t per iteration t (prediction, confidence), matched to the "
                 "input's mean and s.d.", fontsize=8)
    return fig


def plot_restoration_distance(data: xr.Dataset) -> plt.Figure:
    """Mean distance of h_hat_t to the clean features per iteration and kind, with its
    bootstrap CI over images."""
    frame = data["distance_to_clean"].to_dataframe().reset_index()
    fig, (ax,) = style.figure()
    sns.lineplot(data=frame, x="iteration", y="distance_to_clean", hue="kind", marker="o",
                 errorbar=("ci", 95), ax=ax)
    ax.set(xlabel="iteration t", ylabel="MSE of h_hat_t to the clean image's h",
           title=f"does the feedback restore the clean features?\n(bands: {style.BOOTSTRAP_CI}"
                 " over images)")
    style.from_zero(ax)
    style.whole_numbers(ax)
    style.legend_outside(ax, title="input")
    return fig


def principal_directions(images: torch.Tensor, count: int = 2) -> torch.Tensor:
    """(count, C*H*W) leading principal directions of a set of images (N, C, H, W)."""
    flat = images.flatten(1).double()
    _, _, v = torch.linalg.svd(flat - flat.mean(0), full_matrices=False)
    return v[:count].float()


@torch.no_grad()
def decision_cells_data(model: FeedbackModel, image: torch.Tensor, directions: torch.Tensor,
                        extent: float = 3.0, resolution: int = 21,
                        iterations: int | None = None) -> xr.Dataset:
    """Predicted class over the plane image + a u + b v (a, b in [-extent, extent]) and the
    feedback's displacement of each point (decoded reconstruction at the last iteration minus
    the first, projected on u and v)."""
    steps = torch.linspace(-extent, extent, resolution, device=image.device)
    a, b = torch.meshgrid(steps, steps, indexing="ij")
    u, v = directions[0].view(image.shape), directions[1].view(image.shape)
    points = image[None] + a.reshape(-1, 1, 1, 1) * u + b.reshape(-1, 1, 1, 1) * v
    with warnings.catch_warnings():  # the plane leaves the pixel range by design
        warnings.simplefilter("ignore", InputRangeWarning)
        trace = model(points, iterations=iterations, decode=True)
    movement = (trace.decoded[-1] - trace.decoded[0]).flatten(1)
    shape = (resolution, resolution)
    return xr.Dataset(
        {"prediction": (("a", "b"), trace.last.argmax(1).view(shape).cpu().numpy()),
         "move_a": (("a", "b"), (movement @ directions[0]).view(shape).cpu().numpy()),
         "move_b": (("a", "b"), (movement @ directions[1]).view(shape).cpu().numpy())},
        coords={"a": steps.cpu().numpy(), "b": steps.cpu().numpy()})


def plot_decision_cells(data: xr.Dataset, classes=None) -> plt.Figure:
    """The class map with the feedback's displacement arrows (paper Fig. 6a)."""
    fig, (ax,) = style.figure(panel=(5.0, 4.4))
    a, b = data["a"].values, data["b"].values
    labels = np.unique(data["prediction"].values)
    palette = sns.color_palette("tab10", 10)
    image = np.array([[palette[int(c) % 10] for c in row] for row in data["prediction"].values])
    ax.imshow(np.transpose(image, (1, 0, 2)), origin="lower", alpha=0.6,
              extent=(a[0], a[-1], b[0], b[-1]))
    grid_a, grid_b = np.meshgrid(a, b, indexing="ij")
    ax.quiver(grid_a, grid_b, data["move_a"].values, data["move_b"].values, angles="xy")
    ax.plot(0, 0, "k*", markersize=12)
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[int(c) % 10]) for c in labels]
    names = [classes[int(c)] if classes is not None else str(int(c)) for c in labels]
    ax.legend(handles, names, title="predicted class", loc="upper left",
              bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set(xlabel="step along principal direction 1 (pixel scale)",
           ylabel="step along principal direction 2 (pixel scale)",
           title="decision cells and feedback displacement (arrows)")
    return fig


def grad_cam_data(model: FeedbackModel, images: torch.Tensor, layer: str,
                  target: torch.Tensor | None = None, iterations: int | None = None,
                  method: str = "gradcam") -> xr.DataArray:
    """Class-activation maps of ``layer`` for the logits of each iteration: (image,
    iteration, y, x) in [0, 1] at input resolution.

    target: class per image (default: the last iteration's prediction). method 'gradcam'
    weights channels by their mean gradient (Selvaraju et al.); 'hirescam' multiplies gradient
    and activation element-wise, which keeps only locations that move the logit.
    """
    if method not in ("gradcam", "hirescam"):
        raise ValueError(f"unknown CAM method {method!r}: use 'gradcam' or 'hirescam'")
    with torch.enable_grad():
        trace = model(images, iterations=iterations, layers=[layer])
        features = trace.forward[layer]
        if features[0].dim() != 4:
            raise ValueError(f"Grad-CAM needs a convolutional layer; {layer!r} is not one")
        target = trace.last.argmax(1) if target is None else target
        maps = []
        for t, logits in enumerate(trace.logits):
            chosen = logits.gather(1, target[:, None]).sum()
            (grad,) = torch.autograd.grad(chosen, features[t], retain_graph=True)
            activation = features[t].detach()
            if method == "gradcam":
                cam = (grad.mean((2, 3), keepdim=True) * activation).sum(1)
            else:
                cam = (grad * activation).sum(1)
            cam = F.relu(cam)[:, None]
            cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear",
                                align_corners=False)[:, 0]
            peak = cam.flatten(1).max(1).values.clamp_min(1e-12)
            maps.append((cam / peak[:, None, None]).cpu().numpy())
    return xr.DataArray(np.stack(maps, 1), dims=("image", "iteration", "y", "x"),
                        coords={"iteration": np.arange(len(maps))}, name=f"{method}_{layer}",
                        attrs={"layer": layer, "method": method})


def plot_grad_cam(images: torch.Tensor, cams: xr.DataArray, predictions: np.ndarray,
                  classes=None) -> plt.Figure:
    """Rows: images; columns: the image, then its CAM per iteration with the prediction."""
    n, steps = cams.sizes["image"], cams.sizes["iteration"]
    fig, axes = style.figure(steps + 1, n, panel=(1.6, 1.7))
    axes = axes.reshape(n, steps + 1)
    for i in range(n):
        picture = images[i].permute(1, 2, 0).numpy()
        grey = picture.mean(-1)
        axes[i, 0].imshow(grey, cmap="gray")
        for t in range(steps):
            axes[i, t + 1].imshow(grey, cmap="gray")
            heat = axes[i, t + 1].imshow(cams.values[i, t], cmap="inferno", alpha=0.5, vmin=0,
                                         vmax=1)
            label = int(predictions[i, t])
            axes[i, t + 1].set_title(f"t={t}: {classes[label] if classes else label}",
                                     fontsize=7)
        for ax in axes[i]:
            style.picture(ax)
    axes[0, 0].set_title("input", fontsize=7)
    fig.colorbar(heat, ax=list(axes.ravel()), shrink=0.6,
                 label=f"{cams.attrs.get('method', 'gradcam')} (of the map's peak)")
    return fig


def changed_predictions(model: FeedbackModel, images: torch.Tensor, labels: torch.Tensor,
                        iterations: int | None = None) -> np.ndarray:
    """Indices of images predicted wrongly at iteration 0 and rightly at the last one."""
    with torch.no_grad():
        trace = model(images, iterations=iterations)
    wrong_first = trace.first.argmax(1) != labels
    right_last = trace.last.argmax(1) == labels
    return torch.nonzero(wrong_first & right_last).flatten().cpu().numpy()


__all__ = [
    "changed_predictions", "decision_cells_data", "grad_cam_data", "plot_decision_cells",
    "plot_grad_cam", "plot_restoration", "plot_restoration_distance", "principal_directions",
    "restoration_data",
]
