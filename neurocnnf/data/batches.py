"""Fast in-memory batches: uint8 tensors cut, scaled and augmented per batch, no DataLoader.

Every random choice (order, crops, flips) comes from a generator seeded by (seed, epoch), so an
epoch's batches are the same whether training runs straight through or resumes at that epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurocnnf.data.datasets import ImageDataset


@dataclass(frozen=True)
class Augment:
    """Random crop after zero padding by ``pad`` pixels, and horizontal flip with prob. 1/2."""

    pad: int = 0
    flip: bool = False


def random_crop_flip(images: Tensor, augment: Augment, generator: torch.Generator) -> Tensor:
    """Augment a batch (N, C, H, W) on its device; the output has the input's shape and dtype."""
    n, _, height, width = images.shape
    out = images
    if augment.pad > 0:
        padded = F.pad(images, (augment.pad,) * 4)
        offsets = torch.randint(0, 2 * augment.pad + 1, (2, n), generator=generator)
        offsets = offsets.to(images.device)
        rows = offsets[0, :, None] + torch.arange(height, device=images.device)
        cols = offsets[1, :, None] + torch.arange(width, device=images.device)
        batch = torch.arange(n, device=images.device)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        out = out.permute(0, 3, 1, 2)
    if augment.flip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(images.device)
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out.contiguous()


class Batches:
    """Batches of (images float32 in [0, 1] (B, C, H, W), labels int64 (B,)) from memory.

    The whole uint8 dataset is moved to ``device`` once; each batch is indexed, augmented and
    scaled there.
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        shuffle: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images = dataset.images.to(device)
        self.labels = dataset.labels.to(device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.seed, self.drop_last = seed, drop_last

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(
        self, epoch: int = 0, shard: tuple[int, int] = (0, 1)
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of one epoch; ``shard`` = (rank, world size) takes every world-th batch."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        n = len(self.labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        rank, world = shard
        for b in range(len(self)):
            idx = order[b * self.batch_size: (b + 1) * self.batch_size]
            images = self.images[idx.to(self.images.device)]
            if self.augment is not None:
                images = random_crop_flip(images, self.augment, generator)
            if b % world == rank:
                yield images.float().div_(255.0), self.labels[idx.to(self.labels.device)]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.epoch(0)


def train_val_split(
    labels: Tensor, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of indices: ``val_fraction`` of each class goes to validation."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    labels_np = labels.cpu().numpy()
    train, val = [], []
    for c in np.unique(labels_np):
        members = rng.permutation(np.flatnonzero(labels_np == c))
        n_val = int(round(val_fraction * len(members)))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
