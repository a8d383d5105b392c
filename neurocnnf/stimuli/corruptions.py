"""Common corruptions with CIFAR-10-C's definitions (Hendrycks & Dietterich 2019,
``make_cifar_c.py``), generated in the package on any batch of images.

Images are float (N, C, H, W) in pixel scale [0, 1]; severity 0 is the identity, 1-5 are
CIFAR-10-C's levels:

  gaussian_noise  x + N(0, sd), clipped; sd 0.04, 0.06, 0.08, 0.09, 0.10
  defocus_blur    correlation with a disk of radius r (17 x 17 support) smoothed by a 3 x 3
                  Gaussian of sigma s, reflected borders (OpenCV's default); (r, s) = (0.3, 0.4),
                  (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)
  contrast        (x - mean) * c + mean, the mean per image and channel; c 0.75, 0.5, 0.4,
                  0.3, 0.15
  jpeg            JPEG re-encoding (PIL) at quality 80, 65, 58, 50, 40

The noise is seeded per image (``seed`` and the image's index), so an image corrupts the same
in any batch. Our own code, not CIFAR-10-C's files: the values follow its definitions but are
not the published arrays bit for bit (those also pass through uint8).
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurocnnf.errors import NeurocnnfError

CORRUPTIONS = ("gaussian_noise", "defocus_blur", "contrast", "jpeg")
SEVERITIES = (0, 1, 2, 3, 4, 5)
_NOISE_SD = (0.04, 0.06, 0.08, 0.09, 0.10)
_DEFOCUS = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))
_CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)
_JPEG_QUALITY = (80, 65, 58, 50, 40)


class CorruptionError(NeurocnnfError, ValueError):
    """An unknown corruption, a severity outside 0-5 or images that cannot be corrupted."""


def corrupt(images: Tensor, name: str, severity: int, seed: int = 0,
            first_index: int = 0) -> Tensor:
    """``images`` (N, C, H, W) in [0, 1] with corruption ``name`` at ``severity`` (0-5).

    ``first_index``: the index of ``images[0]`` in its set (seeds the noise per image).
    Returns a new float32 tensor in [0, 1] of the same shape.
    """
    if name not in CORRUPTIONS:
        raise CorruptionError(f"unknown corruption {name!r}; choose from {CORRUPTIONS}")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise CorruptionError(f"severity must be an integer in 0-5, got {severity!r}")
    if images.dim() != 4:
        raise CorruptionError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    x = images.detach().float()
    if severity == 0:
        return x.clone()
    level = severity - 1
    if name == "gaussian_noise":
        noise = torch.stack([
            torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(
                seed * 1_000_003 + first_index + i)) for i in range(len(x))])
        return (x + _NOISE_SD[level] * noise.to(x.device)).clamp_(0, 1)
    if name == "defocus_blur":
        return defocus_blur(x, *_DEFOCUS[level])
    if name == "contrast":
        mean = x.mean((2, 3), keepdim=True)
        return ((x - mean) * _CONTRAST[level] + mean).clamp_(0, 1)
    return jpeg(x, _JPEG_QUALITY[level])


def disk_kernel(radius: float, alias_blur: float) -> Tensor:
    """CIFAR-10-C's defocus kernel: a disk of ``radius`` on a 17 x 17 grid, normalised, then
    smoothed by a 3 x 3 Gaussian of sigma ``alias_blur`` (reflected borders). (17, 17), sums
    to 1."""
    grid = torch.arange(-8, 9, dtype=torch.float64)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius ** 2).double()
    disk /= disk.sum()
    taps = torch.exp(-torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64) ** 2
                     / (2 * alias_blur ** 2))
    taps /= taps.sum()
    padded = F.pad(disk[None, None], (1, 1, 1, 1), mode="reflect")
    smooth = F.conv2d(padded, (taps[:, None] * taps[None, :])[None, None])
    return smooth[0, 0]


def defocus_blur(images: Tensor, radius: float, alias_blur: float) -> Tensor:
    """Each channel correlated with :func:`disk_kernel` (reflected borders), clipped to [0, 1]."""
    kernel = disk_kernel(radius, alias_blur).to(images)
    channels = images.shape[1]
    if min(images.shape[-2:]) <= 8:
        raise CorruptionError(f"defocus_blur needs images larger than 8 x 8 pixels, got "
                              f"{tuple(images.shape[-2:])}")
    padded = F.pad(images, (8, 8, 8, 8), mode="reflect")
    out = F.conv2d(padded, kernel.expand(channels, 1, 17, 17), groups=channels)
    return out.clamp_(0, 1)


def jpeg(images: Tensor, quality: int) -> Tensor:
    """Each image rounded to uint8, encoded as JPEG at ``quality`` and decoded (PIL)."""
    from PIL import Image

    out = []
    for image in images:
        array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        mode = "L" if array.shape[2] == 1 else "RGB"
        buffer = io.BytesIO()
        Image.fromarray(array.squeeze(2) if mode == "L" else array).save(
            buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert(mode))
        out.append(torch.from_numpy(decoded.reshape(array.shape).copy()))
    return torch.stack(out).permute(0, 3, 1, 2).float().div_(255).to(images.device)
