"""Dataset readers: Fashion-MNIST (IDX), CIFAR-10 (python batches or JPEG tree), Kriegeskorte 92.

Image datasets are returned whole, in memory, as uint8 tensors (N, C, H, W) with int64 labels:
training batches are cut, normalized and augmented from them on tensors (see ``batches``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from neurocnnf.data import download as dl
from neurocnnf.data import roots
from neurocnnf.data.roots import DataIntegrityError, DataNotFoundError

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# sha256 of the *decompressed* IDX bytes: identical for the publisher's files and Debian's.
FASHION_MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte",
                          "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    ("train", "labels"): ("train-labels-idx1-ubyte",
                          "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    ("test", "images"): ("t10k-images-idx3-ubyte",
                         "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte",
                         "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "md5:c58f30108f718f92721af3b95e74349a"
CIFAR10_TEST_LABELS = (  # the test labels in the original order (relative path, URL, checksum)
    "cifar10h/cifar10-test-labels.npy",
    "https://raw.githubusercontent.com/cleanlab/label-errors/6d5d6b31a13216290afc40e5c6319399c4d15c06"
    "/original_test_labels/cifar10_test_set_original_labels.npy",
    "sha256:fc48d9ecfdbeacce2dacf004498170f2df12e75e3485475017d2663b587a92f3")
CIFAR10_JPEG_SHA256 = "sha256:efac85c8ed52f4ead1e1f1b670d8dcf435d551fccebdd8b6365e0a01a504f3a4"
KRIEGESKORTE_URL = (
    "https://raw.githubusercontent.com/rsagroup/rsatoolbox/main/demos/92imageData/"
)
KRIEGESKORTE_FILES = {
    "Kriegeskorte_Neuron2008_supplementalData.mat":
        "sha256:06f21214399a5d43dc264eed19a7f4b8daf11c8622a59eec3e106064ce5e3504",
    "92_brainRDMs.mat": "sha256:1743f90a15e895798a94318649e80e1123a7e5943a1703fa1dd7c31ea5780b7c",
}
SPLITS = ("train", "test")


@dataclass
class ImageDataset:
    """Images held in memory. images: uint8 (N, C, H, W); labels: int64 (N,)."""

    name: str
    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]
    source: str = ""
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Tensor | np.ndarray) -> ImageDataset:
        """A new dataset holding ``images[indices]`` (same classes and source)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageDataset(self.name, self.images[idx], self.labels[idx], self.classes,
                            self.source, dict(self.metadata))


def dataset_digest(data: ImageDataset) -> str:
    """sha256 of a dataset's images and labels (what a model was trained or scored on)."""
    digest = hashlib.sha256(data.images.cpu().numpy().tobytes())
    digest.update(data.labels.cpu().numpy().tobytes())
    return digest.hexdigest()


def channel_statistics(images: Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images (N, C, H, W), pixel scale [0, 1]
    (float64 sums over chunks: memory stays small for large N)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].to(torch.float64).div_(255.0)
        total += part.sum((0, 2, 3))
        squares += part.square().sum((0, 2, 3))
    count = images.numel() // channels
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return mean.tolist(), std.tolist()


# ---------------------------------------------------------------- Fashion-MNIST (IDX)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike, sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a numpy array; clear errors for bad files.

    ``sha256``: expected digest of the decompressed bytes, checked when given.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DataIntegrityError(f"{path}: cannot read IDX file ({error})") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise DataIntegrityError(
            f"{path}: content does not match the published file (sha256 mismatch); "
            "delete it to download a fresh copy"
        )
    return parse_idx(data, str(path))


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes: magic 0x0000 | dtype | ndim, big-endian int32 dims, then the values."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataIntegrityError(f"{name}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataIntegrityError(f"{name}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataIntegrityError(
            f"{name}: IDX header promises {shape} ({expected} bytes of data) but the file holds "
            f"{len(data) - header}: the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _fashion_mnist_file(split: str, kind: str, root) -> np.ndarray:
    stem, sha = FASHION_MNIST_FILES[(split, kind)]
    candidates = [f"fashion-mnist/{stem}.gz", f"fashion-mnist/{stem}", f"FashionMNIST/raw/{stem}"]
    path = roots.find(candidates, root)
    if path is None:
        target = roots.download_target(root) / "fashion-mnist" / f"{stem}.gz"
        path = _download_or_explain(FASHION_MNIST_URL + f"{stem}.gz", target, None, candidates,
                                    root)
    return read_idx(path, sha)


def fashion_mnist(split: str = "train", root: str | os.PathLike | None = None) -> ImageDataset:
    """Fashion-MNIST: 60,000 train or 10,000 test 28x28 grey images, 10 classes."""
    _check_split(split)
    images = _fashion_mnist_file(split, "images", root)
    labels = _fashion_mnist_file(split, "labels", root)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataIntegrityError(f"Fashion-MNIST {split}: unexpected shapes {images.shape}, "
                                 f"{labels.shape}")
    return ImageDataset(
        "fashion_mnist", torch.from_numpy(images.copy()).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES, f"fashion-mnist/{split}",
    )


# ---------------------------------------------------------------- CIFAR-10


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the official CIFAR-10 batches: dicts, lists, bytes and numpy arrays only."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise DataIntegrityError(f"refusing to unpickle {module}.{name}: not a CIFAR-10 batch")


def _read_cifar_batch(handle, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayUnpickler(handle, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as error:
        raise DataIntegrityError(f"{name}: not a valid CIFAR-10 batch ({error})") from None
    return data, labels


def _cifar_from_python_batches(source: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = []
    if source.is_dir():
        for name in names:
            with open(source / name, "rb") as handle:
                parts.append(_read_cifar_batch(handle, str(source / name)))
    else:
        with tarfile.open(source) as archive:
            for name in names:
                member = archive.extractfile(f"cifar-10-batches-py/{name}")
                parts.append(_read_cifar_batch(member, f"{source}:{name}"))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _cifar_from_jpeg_tar(source: Path, split: str
                         ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """images (N, 3, 32, 32), labels (N,) and each image's ``<class>/<file>`` name."""
    from PIL import Image

    images, labels, names = [], [], []
    try:
        with tarfile.open(source) as archive:
            for member in archive:
                parts = member.name.split("/")
                if not (member.isfile() and len(parts) == 4 and parts[1] == split):
                    continue
                if parts[2] not in CIFAR10_CLASSES:
                    raise DataIntegrityError(f"{source}: unknown class folder {parts[2]!r}")
                raw = archive.extractfile(member).read()
                images.append(np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")))
                labels.append(CIFAR10_CLASSES.index(parts[2]))
                names.append(f"{parts[2]}/{parts[3]}")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataIntegrityError(f"{source}: cannot read the CIFAR-10 JPEG archive ({error})") \
            from None
    if not images:
        raise DataIntegrityError(f"{source}: no {split} images found")
    return np.stack(images).transpose(0, 3, 1, 2), np.asarray(labels, dtype=np.int64), names


def jpeg_positions(labels: np.ndarray) -> np.ndarray:
    """(N,) -> (N,) k: test image i is ``test/<class of i>/<k:04d>.jpg`` in the JPEG tree."""
    labels = np.asarray(labels)
    k = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k[members] = np.arange(len(members))
    return k


def original_test_labels(root: str | os.PathLike | None = None) -> np.ndarray:
    """(10000,) int64: the CIFAR-10 test labels in the original test-set order (checksum
    checked; beside CIFAR-10H in ../shared/data, downloaded where there is a network)."""
    path = published_file(*CIFAR10_TEST_LABELS, root)
    try:
        labels = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise DataIntegrityError(f"{path}: not a numpy array file ({error})") from None
    if labels.shape != (10_000,):
        raise DataIntegrityError(f"{path}: {labels.shape} labels, not (10000,)")
    return labels.astype(np.int64)


def _in_original_order(images: np.ndarray, labels: np.ndarray, names: list[str],
                       root: str | os.PathLike | None
                       ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The JPEG tree's test split (sorted by class) put back in the original test-set order,
    so that "the first N test images" are those of every other CIFAR-10 tool."""
    original = original_test_labels(root)
    row_of = {name: row for row, name in enumerate(names)}
    wanted = [f"{CIFAR10_CLASSES[c]}/{k:04d}.jpg"
              for c, k in zip(original, jpeg_positions(original), strict=True)]
    missing = [name for name in wanted if name not in row_of]
    if missing or len(row_of) != len(wanted):
        raise DataIntegrityError(f"the JPEG test tree does not hold one file per test image "
                                 f"({len(row_of)} files; missing e.g. {missing[:3]})")
    rows = np.array([row_of[name] for name in wanted])
    return images[rows], labels[rows], wanted


def cifar10(split: str = "train", root: str | os.PathLike | None = None) -> ImageDataset:
    """CIFAR-10: 50,000 train or 10,000 test 32x32 colour images, 10 classes.

    Reads the official python batches (folder ``cifar-10-batches-py`` or the tarball) or the
    JPEG tree ``cifar10-jpeg.tar.gz`` (quality 75, not bit-exact), whichever is found first;
    from the JPEGs, ``metadata['files']`` names each image's ``<class>/<file>``. The test split
    is in the original order from either source (the JPEG tree's, class by class, is mapped
    back with the original test labels); the JPEG train split is in its class folders' order.
    """
    _check_split(split)
    candidates = ["cifar-10-batches-py", "cifar-10-python.tar.gz", "cifar10-jpeg.tar.gz"]
    source = roots.find(candidates, root)
    if source is None:
        target = roots.download_target(root) / "cifar-10-python.tar.gz"
        source = _download_or_explain(CIFAR10_URL, target, CIFAR10_MD5, candidates, root)
    metadata = {}
    if source.name == "cifar10-jpeg.tar.gz":
        dl.verify(source, CIFAR10_JPEG_SHA256)
        images, labels, metadata["files"] = _cifar_from_jpeg_tar(source, split)
        if split == "test":
            images, labels, metadata["files"] = _in_original_order(
                images, labels, metadata["files"], root)
    else:
        images, labels = _cifar_from_python_batches(source, split)
    return ImageDataset("cifar10", torch.from_numpy(np.ascontiguousarray(images)),
                        torch.from_numpy(labels), CIFAR10_CLASSES, f"{source.name}/{split}",
                        metadata)


# ---------------------------------------------------------------- Kriegeskorte 92 objects


@dataclass
class Kriegeskorte92:
    """The 92-object set with real IT RDMs.

    images: uint8 (92, 3, 175, 175). categories: dict column -> bool array (92,)
    (animate, human, face, ...). category_names: per-image category string.
    rdms: name -> (92, 92) float64 dissimilarities: 'macaque_IT' (Kiani 2007, 674 neurons),
    'human_IT' (Kriegeskorte 2008 fMRI, fig. 1), and 'human_IT_<subject>_s<session>'.
    """

    images: Tensor
    category_names: list[str]
    categories: dict[str, np.ndarray]
    rdms: dict[str, np.ndarray]


def _square_rdm(rdm: np.ndarray, n: int = 92) -> np.ndarray:
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.shape == (n, n):
        return rdm
    vector = rdm.ravel()
    if vector.size != n * (n - 1) // 2:
        raise DataIntegrityError(f"RDM of shape {rdm.shape} is not a {n}x{n} RDM")
    square = np.zeros((n, n))
    square[np.triu_indices(n, 1)] = vector
    return square + square.T


def kriegeskorte92(root: str | os.PathLike | None = None) -> Kriegeskorte92:
    """Load the Kriegeskorte et al. (2008) 92 images, categories and IT RDMs."""
    import scipy.io

    paths = {}
    for name, checksum in KRIEGESKORTE_FILES.items():
        rel = [f"kriegeskorte92/{name}"]
        path = roots.find(rel, root)
        if path is None:
            target = roots.download_target(root) / "kriegeskorte92" / name
            path = _download_or_explain(KRIEGESKORTE_URL + name, target, checksum, rel, root)
        dl.verify(path, checksum)
        paths[name] = path
    try:
        main = scipy.io.loadmat(paths["Kriegeskorte_Neuron2008_supplementalData.mat"])
        subjects = scipy.io.loadmat(paths["92_brainRDMs.mat"])
        stimuli = main["stimuli_92objs"][0]
        images = np.stack([s["image"] for s in stimuli]).transpose(0, 3, 1, 2)
        category_names = [str(s["category"][0]) for s in stimuli]
        labels = [str(x[0]) for x in main["categoryLabels"][0]]
        vectors = np.asarray(main["categoryVectors"], dtype=bool)
        rdms = {}
        for entry in main["RDMs_mIT_hIT_fig1"][0]:
            key = "macaque_IT" if str(entry["name"][0]).startswith("mIT") else "human_IT"
            rdms[key] = _square_rdm(entry["RDM"])
        for entry in subjects["RDMs"][0].ravel():
            subject, session = _subject_session(str(entry["name"][0]))
            rdms[f"human_IT_{subject}_s{session}"] = _square_rdm(entry["RDM"])
    except (KeyError, IndexError, ValueError) as error:
        message = f"Kriegeskorte 92 .mat files have an unexpected layout ({error})"
        raise DataIntegrityError(message) from None
    categories = {name: vectors[:, i] for i, name in enumerate(labels)}
    return Kriegeskorte92(torch.from_numpy(np.ascontiguousarray(images)), category_names,
                          categories, rdms)


def _subject_session(name: str) -> tuple[str, str]:
    """'hIT | BE | Session: 1' -> ('BE', '1')."""
    parts = [p.strip() for p in name.split("|")]
    return parts[1], parts[2].split(":")[-1].strip()


# ---------------------------------------------------------------- registry and helpers

DATASETS = {"fashion_mnist": fashion_mnist, "cifar10": cifar10}
IMAGE_SHAPES = {"fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}  # (C, H, W) of each


def load_dataset(name: str, split: str = "train", root=None) -> ImageDataset:
    """Load an image dataset by name ('fashion_mnist' or 'cifar10')."""
    key = name.replace("-", "_").lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    return DATASETS[key](split, root)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")


def published_file(relative: str, url: str, checksum: str, root=None) -> Path:
    """``relative`` found in the data roots, or downloaded from ``url`` into the download
    target; checksum-verified (``"sha256:..."``) either way."""
    path = roots.find([relative], root)
    if path is None:
        path = _download_or_explain(url, roots.download_target(root) / relative, checksum,
                                    [relative], root)
    dl.verify(path, checksum)
    return path


def _download_or_explain(url, target: Path, checksum, candidates, root) -> Path:
    looked_in = [base / rel for base in roots.data_roots(root) for rel in candidates]
    if os.environ.get("NEUROCNNF_OFFLINE"):
        places = "\n  ".join(str(p) for p in looked_in)
        raise DataNotFoundError(f"{target.name} not found in:\n  {places}\n"
                                "(NEUROCNNF_OFFLINE is set, so nothing was downloaded)")
    return dl.download(url, target, checksum, looked_in)
