"""Datasets, data roots, downloads and fast in-memory batches."""

from neurocnnf.data.batches import Augment, Batches, random_crop_flip, train_val_split
from neurocnnf.data.brain import BrainRDMs, brain_datasets, load_brain_rdms
from neurocnnf.data.datasets import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    ImageDataset,
    Kriegeskorte92,
    channel_statistics,
    cifar10,
    dataset_digest,
    fashion_mnist,
    kriegeskorte92,
    load_dataset,
    parse_idx,
    read_idx,
)
from neurocnnf.data.manifest import prepare
from neurocnnf.data.roots import DataIntegrityError, DataNotFoundError, data_roots

__all__ = [
    "Augment", "Batches", "BrainRDMs", "CIFAR10_CLASSES", "DataIntegrityError", "DataNotFoundError",
    "FASHION_MNIST_CLASSES", "ImageDataset", "Kriegeskorte92", "brain_datasets",
    "channel_statistics", "cifar10",
    "data_roots",
    "dataset_digest",
    "fashion_mnist", "kriegeskorte92", "load_dataset", "parse_idx", "prepare", "random_crop_flip",
    "load_brain_rdms", "read_idx", "train_val_split",
]
