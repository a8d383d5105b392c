"""Image-folder datasets: the layout's errors, mode conversion, seeded splits, batches equal
with and without DataLoader workers, and a real training run on a CIFAR-10 folder whose
normalisation is stored and applied on reload."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import neurocnnf
from neurocnnf.data import DataIntegrityError, DataNotFoundError, data_roots
from neurocnnf.data.batches import Augment
from neurocnnf.data.folder import FolderBatches, decode_image, folder_statistics, image_folder
from neurocnnf.nn import Normalize
from neurocnnf.train import load_config, train
from neurocnnf.train.loop import prepare_data

PER_CLASS = {"train": 50, "test": 10}


@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory) -> Path:
    """The first 50 train and 10 test JPEGs of each CIFAR-10 class, as an image folder."""
    archive = next((root / "cifar10-jpeg.tar.gz" for root in data_roots()
                    if (root / "cifar10-jpeg.tar.gz").exists()), None)
    if archive is None:
        pytest.skip("cifar10-jpeg.tar.gz is not in any data root")
    out = tmp_path_factory.mktemp("cifar-folder")
    counts: dict[tuple[str, str], int] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4:
                continue
            key = (parts[1], parts[2])
            if counts.get(key, 0) < PER_CLASS[parts[1]]:
                counts[key] = counts.get(key, 0) + 1
                target = out / parts[1] / parts[2] / parts[3]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
    return out


def test_folder_scans_classes_and_labels(cifar_folder):
    data = image_folder(cifar_folder, "train")
    assert len(data) == 500 and len(data.classes) == 10
    assert torch.bincount(data.labels).tolist() == [50] * 10
    image = data.load(0)
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8


def test_missing_split_names_the_layout(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="no 'test' folder"):
        image_folder(tmp_path, "test")


def test_empty_class_is_named(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "cat" / "a.png")
    (tmp_path / "train" / "dog").mkdir()
    with pytest.raises(DataIntegrityError, match="class 'dog' holds no images"):
        image_folder(tmp_path, "train")


def test_unreadable_file_is_named(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    data = image_folder(tmp_path, "train")
    with pytest.raises(DataIntegrityError, match="broken.jpg: cannot read the image"):
        data.load(0)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_other_modes_become_rgb(tmp_path, mode):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8))
    path = tmp_path / "image.png" if mode != "CMYK" else tmp_path / "image.jpg"
    rgb.convert(mode).save(path)
    image = decode_image(path, 32)
    assert image.shape == (3, 32, 32)
    if mode == "L":  # greyscale: three equal channels
        assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_shorter_side_resized_and_centre_cropped(tmp_path):
    array = np.zeros((64, 128, 3), np.uint8)
    array[:, 32:96] = 255  # the centre square is white
    Image.fromarray(array).save(tmp_path / "wide.png")
    image = decode_image(tmp_path / "wide.png", 32)
    assert image.shape == (3, 32, 32) and image.float().mean() > 250


def test_same_seed_same_split(cifar_folder):
    config = load_config("cifar10-cnn", [f"data.root={cifar_folder}", "data.dataset=folder"])
    first, second = prepare_data(config), prepare_data(config)
    for a, b in zip(first, second, strict=True):
        assert a.paths == b.paths
    train_split, val_split, _ = first
    assert not set(train_split.paths) & set(val_split.paths)
    assert torch.bincount(val_split.labels).tolist() == [5] * 10  # stratified


def test_workers_give_the_same_batches(cifar_folder):
    data = image_folder(cifar_folder, "train")
    kwargs = dict(shuffle=True, augment=Augment(4, True), seed=3, min_scale=0.5)
    plain = list(FolderBatches(data, 64, **kwargs).epoch(2))
    workers = list(FolderBatches(data, 64, workers=2, **kwargs).epoch(2))
    assert len(plain) == len(workers) == 8
    for (xa, ya), (xb, yb) in zip(plain, workers, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(plain[0][0], next(FolderBatches(data, 64, **kwargs).epoch(3))[0])


def test_training_on_a_folder_stores_its_normalisation(cifar_folder, tmp_path):
    config = load_config("cifar10", [f"data.root={cifar_folder}", "data.dataset=folder",
                                     "optim.epochs=1", "optim.batch_size=50"])
    results = train(config, tmp_path / "run", progress=False)
    model = neurocnnf.load(tmp_path / "run")
    mean, std = folder_statistics(prepare_data(config)[0])
    assert model.config["mean"] == pytest.approx(mean) and model.config["std"] == pytest.approx(std)
    normalize = next(m for m in model.modules() if isinstance(m, Normalize))
    assert torch.allclose(normalize.mean.flatten(), torch.tensor(mean, dtype=torch.float32))
    assert results["test"]["acc_last"] >= 0.0 and model.input_shape == (3, 32, 32)


def test_a_folder_size_the_architecture_does_not_take_is_refused_before_loading(tmp_path):
    from neurocnnf.train import ConfigError

    config = load_config("cifar10", [f"data.root={tmp_path}", "data.dataset=folder",
                                     "data.image_size=64"])
    with pytest.raises(ConfigError, match=r"takes images of shape \(3, 32, 32\)"):
        train(config, tmp_path / "run", progress=False)
