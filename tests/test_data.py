"""Data layer: real files in ../shared/data, batches, data roots and clear errors."""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocnnf.data import (
    Augment,
    Batches,
    DataIntegrityError,
    DataNotFoundError,
    cifar10,
    fashion_mnist,
    kriegeskorte92,
    load_dataset,
    parse_idx,
    random_crop_flip,
    read_idx,
    train_val_split,
)
from neurocnnf.data import datasets as ds
from neurocnnf.data.roots import data_roots


@pytest.mark.data
@pytest.mark.parametrize("split, per_class", [("train", 6000), ("test", 1000)])
def test_fashion_mnist_real_files(split, per_class):
    data = fashion_mnist(split)
    assert data.images.shape == (10 * per_class, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.bincount(data.labels).tolist() == [per_class] * 10
    assert len(data.classes) == 10


@pytest.mark.data
def test_cifar10_jpeg_test_split():
    data = cifar10("test")
    assert data.images.shape == (10_000, 3, 32, 32) and data.images.dtype == torch.uint8
    assert torch.bincount(data.labels).tolist() == [1000] * 10
    assert 60 < data.images.float().mean() < 190
    # the original test order (the JPEG tree is sorted by class): "the first N test images"
    # are every other tool's, of every class
    from neurocnnf.data.datasets import original_test_labels
    assert data.labels.tolist() == original_test_labels().tolist()
    assert data.labels[:100].unique().numel() == 10


@pytest.mark.data
@pytest.mark.slow
def test_cifar10_jpeg_train_split():
    assert torch.bincount(cifar10("train").labels).tolist() == [5000] * 10


@pytest.mark.data
def test_kriegeskorte92_images_categories_and_rdms():
    k = kriegeskorte92()
    assert k.images.shape == (92, 3, 175, 175)
    assert len(k.category_names) == 92 and k.categories["animate"].sum() == 48
    assert {"macaque_IT", "human_IT"} <= set(k.rdms)
    assert sum(name.startswith("human_IT_") for name in k.rdms) == 8
    for rdm in k.rdms.values():
        assert rdm.shape == (92, 92)
        assert np.allclose(rdm, rdm.T) and np.allclose(np.diag(rdm), 0)
    # the two fig-1 RDMs are the same images in two species: clearly related
    iu = np.triu_indices(92, 1)
    r = np.corrcoef(k.rdms["macaque_IT"][iu], k.rdms["human_IT"][iu])[0, 1]
    assert r > 0.2


def test_cifar10_official_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, 20).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    train = cifar10("train", root=tmp_path)
    assert train.images.shape == (100, 3, 32, 32) and train.labels.dtype == torch.int64
    assert cifar10("test", root=tmp_path).images.shape == (20, 3, 32, 32)


def test_cifar10_batches_refuse_arbitrary_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Path("x"), b"labels": []}))
    with pytest.raises(DataIntegrityError, match="refusing to unpickle"):
        cifar10("test", root=tmp_path)


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def test_idx_reader_round_trip_and_truncation(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", array)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    with pytest.raises(DataIntegrityError, match="truncated"):
        parse_idx(raw[:-3])
    with pytest.raises(DataIntegrityError, match="magic"):
        parse_idx(b"\x01\x02\x03\x04")
    (tmp_path / "b.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataIntegrityError, match="cannot read"):
        read_idx(tmp_path / "b.gz")


def test_fashion_mnist_wrong_file_fails_the_checksum(tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for (_, kind), (stem, _) in ds.FASHION_MNIST_FILES.items():
        shape = (5, 28, 28) if kind == "images" else (5,)
        _write_idx(folder / f"{stem}.gz", np.zeros(shape, dtype=np.uint8))
    with pytest.raises(DataIntegrityError, match="sha256 mismatch"):
        fashion_mnist("test", root=tmp_path)


def test_missing_data_offline_names_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setattr(ds.roots, "_CHECKOUT", tmp_path / "nowhere" / "checkout")
    monkeypatch.setattr(ds.roots, "DEBIAN_DATASETS", tmp_path / "debian")
    monkeypatch.setenv("NEUROCNNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROCNNF_DATA", raising=False)
    # a real download attempt to an address that cannot answer
    monkeypatch.setattr(ds, "FASHION_MNIST_URL", "http://127.0.0.1:9/")
    with pytest.raises(DataNotFoundError) as error:
        fashion_mnist("test", root=tmp_path / "mine")
    message = str(error.value)
    assert "t10k-images-idx3-ubyte" in message and str(tmp_path / "mine") in message
    assert "NEUROCNNF_DATA" in message
    assert not list((tmp_path / "mine").rglob("*.part"))


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROCNNF_DATA", str(tmp_path / "env"))
    found = data_roots(tmp_path / "explicit")
    assert found[0] == tmp_path / "explicit" and found[1] == tmp_path / "env"
    assert found[2].name == "data" and found[2].parent.name == "shared"
    assert found[3] == Path("/usr/share/datasets")


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown split"):
        fashion_mnist("validation")


def _toy(n=50):
    from neurocnnf.data import ImageDataset

    images = torch.arange(n * 3 * 8 * 8, dtype=torch.int64).remainder(256).to(torch.uint8)
    return ImageDataset("toy", images.view(n, 3, 8, 8), torch.arange(n) % 5, tuple("abcde"))


def test_batches_are_deterministic_per_seed_and_epoch_and_cover_the_data():
    data = _toy()
    batches = Batches(data, 16, shuffle=True, augment=Augment(pad=2, flip=True), seed=3)
    first = [x for x, _ in batches.epoch(1)]
    again = [x for x, _ in batches.epoch(1)]
    other = [x for x, _ in batches.epoch(2)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    labels = torch.cat([y for _, y in Batches(data, 16, shuffle=True, seed=3).epoch(0)])
    assert sorted(labels.tolist()) == sorted(data.labels.tolist())
    assert first[0].dtype == torch.float32 and first[0].min() >= 0 and first[0].max() <= 1


def test_random_crop_is_a_shifted_window_and_flip_mirrors():
    images = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    generator = torch.Generator().manual_seed(0)
    out = random_crop_flip(images, Augment(pad=2), generator)
    assert out.shape == images.shape
    for i in range(2):  # every crop is a window of the zero-padded image
        padded = torch.nn.functional.pad(images[i], (2,) * 4)
        windows = padded.unfold(1, 6, 1).unfold(2, 6, 1)
        assert any(torch.equal(windows[0, r, c], out[i, 0]) for r in range(5) for c in range(5))
    flipped = random_crop_flip(images, Augment(flip=True), torch.Generator().manual_seed(1))
    for i in range(2):
        assert torch.equal(flipped[i], images[i]) or torch.equal(flipped[i], images[i].flip(2))


def test_train_val_split_is_stratified_disjoint_and_seeded():
    labels = torch.arange(1000) % 10
    train, val = train_val_split(labels, 0.1, seed=0)
    assert len(val) == 100 and len(set(train) & set(val)) == 0 and len(train) + len(val) == 1000
    assert np.bincount(labels[val].numpy()).tolist() == [10] * 10
    assert np.array_equal(val, train_val_split(labels, 0.1, seed=0)[1])
