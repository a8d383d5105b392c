"""Image-folder datasets (torchvision's ImageFolder layout) streamed from disk.

Layout: ``root/<split>/<class>/<image>`` with ``split`` in train, test; classes are the
sub-folder names, sorted; images are files ending in one of :data:`IMAGE_SUFFIXES`. Only paths
and labels are held in memory: images are decoded per batch (in DataLoader workers when asked),
so memory does not grow with the number of images.

Every image becomes (C, S, S) uint8: decoded (JPEGs at reduced size where they are much larger
than S), converted to RGB (C = 3: greyscale, palette, CMYK and alpha images are converted, alpha
dropped) or to greyscale (C = 1), resized so that its shorter side is S (bilinear, antialiased),
and centre-cropped to a square.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurocnnf.data.batches import Augment, random_crop_flip
from neurocnnf.data.roots import DataIntegrityError, DataNotFoundError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


@dataclass(frozen=True)
class ImageFolder:
    """One split of an image folder: relative paths, labels (int64 (N,)) and class names."""

    root: Path
    split: str
    paths: tuple[str, ...]
    labels: Tensor
    classes: tuple[str, ...]
    image_size: int
    channels: int = 3

    @property
    def name(self) -> str:
        return f"folder:{self.root.name}"

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Tensor | np.ndarray) -> ImageFolder:
        """The images at ``indices``, in that order."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return replace(self, paths=tuple(self.paths[i] for i in idx.tolist()),
                       labels=self.labels[idx])

    def load(self, index: int) -> Tensor:
        """Image ``index`` as uint8 (C, S, S); DataIntegrityError naming an unreadable file."""
        return decode_image(self.root / self.split / self.paths[index], self.image_size,
                            self.channels)


def image_folder(root: str | os.PathLike, split: str = "train", image_size: int = 32,
                 channels: int = 3) -> ImageFolder:
    """Scan ``root/<split>/<class>/*`` (see the module docstring); clear errors for a missing
    split, no class folders, an empty class or a class folder of the test split missing from
    training."""
    base = Path(root)
    if image_size < 1 or channels not in (1, 3):
        raise ValueError(f"image_size must be >= 1 and channels 1 or 3, got {image_size}, "
                         f"{channels}")
    folder = base / split
    if not folder.is_dir():
        found = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        raise DataNotFoundError(f"{folder}: no '{split}' folder (an image folder holds "
                                f"train/<class>/... and test/<class>/...; found {found})")
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    if not classes:
        raise DataIntegrityError(f"{folder}: no class folders (expected {folder}/<class>/*.jpg)")
    if split != "train" and (base / "train").is_dir():
        train_classes = tuple(sorted(p.name for p in (base / "train").iterdir() if p.is_dir()))
        if classes != train_classes:
            only_one = sorted(set(classes) ^ set(train_classes))
            raise DataIntegrityError(f"{folder}: classes {only_one} are in one split only: "
                                     "train and test need the same classes")
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataIntegrityError(f"{folder / name}: class {name!r} holds no images "
                                     f"({', '.join(IMAGE_SUFFIXES)})")
        paths += [f"{name}/{p.name}" for p in files]
        labels += [label] * len(files)
    return ImageFolder(base, split, tuple(paths), torch.tensor(labels, dtype=torch.long),
                       classes, image_size, channels)


def decode_image(path: Path, size: int, channels: int = 3) -> Tensor:
    """``path`` as uint8 (channels, size, size): shorter side resized to ``size``, centre crop."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.format == "JPEG" and min(image.size) > 2 * size:
                image.draft("RGB" if channels == 3 else "L", (size, size))  # decode reduced
            image = image.convert("RGB" if channels == 3 else "L")
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataIntegrityError(f"{path}: cannot read the image ({error})") from None
    tensor = torch.from_numpy(array.copy()).reshape(array.shape[0], array.shape[1], channels)
    tensor = tensor.permute(2, 0, 1)
    height, width = tensor.shape[1:]
    scale = size / min(height, width)
    if (height, width) != (size, size):
        new = (max(size, round(height * scale)), max(size, round(width * scale)))
        resized = F.interpolate(tensor[None].float(), size=new, mode="bilinear",
                                antialias=True, align_corners=False)[0]
        top, left = (new[0] - size) // 2, (new[1] - size) // 2
        tensor = resized[:, top:top + size, left:left + size].round().clamp(0, 255).byte()
    return tensor.contiguous()


def folder_digest(data: ImageFolder) -> str:
    """sha256 of the split's relative paths, labels and file sizes (not the pixels: a large
    folder is not read twice); identifies what a model was trained on."""
    digest = hashlib.sha256()
    for path, label in zip(data.paths, data.labels.tolist(), strict=True):
        size = (data.root / data.split / path).stat().st_size
        digest.update(f"{path}\t{label}\t{size}\n".encode())
    return digest.hexdigest()


def random_resized_crop(image: Tensor, min_scale: float, generator: torch.Generator) -> Tensor:
    """A crop of area fraction U(min_scale, 1) and aspect ratio log-U(3/4, 4/3) of ``image``
    (C, S, S) uint8, resized back to S x S (bilinear)."""
    _, height, width = image.shape
    area = height * width * float(torch.empty(1).uniform_(min_scale, 1.0, generator=generator))
    log_ratio = float(torch.empty(1).uniform_(np.log(3 / 4), np.log(4 / 3), generator=generator))
    ratio = float(np.exp(log_ratio))
    crop_w = min(width, max(1, round((area * ratio) ** 0.5)))
    crop_h = min(height, max(1, round((area / ratio) ** 0.5)))
    top = int(torch.randint(0, height - crop_h + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - crop_w + 1, (1,), generator=generator))
    crop = image[None, :, top:top + crop_h, left:left + crop_w].float()
    out = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)
    return out[0].round().clamp(0, 255).byte()


class _Images(torch.utils.data.Dataset):
    """Image i of a folder, augmented with a generator seeded by (seed, epoch, i): the same
    whichever worker decodes it."""

    def __init__(self, data: ImageFolder, augment: Augment | None, min_scale: float | None,
                 seed: int, epoch: int) -> None:
        self.data, self.augment, self.min_scale = data, augment, min_scale
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.data.load(index)
        if self.augment is not None or self.min_scale is not None:
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + self.epoch) * 10_000_019 + index)
            if self.min_scale is not None:
                image = random_resized_crop(image, self.min_scale, generator)
            if self.augment is not None:
                image = random_crop_flip(image[None], self.augment, generator)[0]
        return image, int(self.data.labels[index])


class FolderBatches:
    """Batches of (images float32 in [0, 1] (B, C, S, S), labels int64 (B,)) streamed from an
    image folder: the interface of :class:`~neurocnnf.data.batches.Batches`.

    ``workers``: DataLoader processes decoding images (0: in this process); the batches are
    the same for any number of workers. ``min_scale``: random-resized crop with that minimum
    area fraction (None: none); ``augment``: random crop after padding, and flip.
    """

    def __init__(self, data: ImageFolder, batch_size: int, shuffle: bool = False,
                 augment: Augment | None = None, seed: int = 0,
                 device: str | torch.device = "cpu", drop_last: bool = False,
                 workers: int = 0, min_scale: float | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.data, self.batch_size, self.shuffle, self.augment = data, batch_size, shuffle, augment
        self.seed, self.device, self.drop_last = seed, torch.device(device), drop_last
        self.workers, self.min_scale = workers, min_scale
        self.labels = data.labels

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int = 0, shard: tuple[int, int] = (0, 1)
              ) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of one epoch; ``shard`` = (rank, world size) takes every world-th batch."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        n = len(self.data)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        rank, world = shard
        batches = [order[b * self.batch_size: (b + 1) * self.batch_size].tolist()
                   for b in range(len(self))]
        loader = torch.utils.data.DataLoader(
            _Images(self.data, self.augment, self.min_scale, self.seed, epoch),
            batch_sampler=batches[rank::world], num_workers=self.workers,
            persistent_workers=False)
        for images, labels in loader:
            yield images.to(self.device).float().div_(255.0), labels.to(self.device)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.epoch(0)


def folder_statistics(data: ImageFolder, limit: int = 10_000, seed: int = 0
                      ) -> tuple[list[float], list[float]]:
    """Per-channel mean and sd (pixel scale) over up to ``limit`` images drawn with ``seed``."""
    count = min(limit, len(data))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count]
    total = torch.zeros(data.channels, dtype=torch.float64)
    squares = torch.zeros(data.channels, dtype=torch.float64)
    for index in order.tolist():
        image = data.load(index).to(torch.float64).div_(255.0)
        total += image.sum((1, 2))
        squares += image.square().sum((1, 2))
    pixels = count * data.image_size ** 2
    mean = total / pixels
    return mean.tolist(), (squares / pixels - mean.square()).clamp_min(0).sqrt().tolist()
