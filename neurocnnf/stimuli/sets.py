"""Stimulus sets in Brain-Score's conventions: one metadata row per stimulus, keyed by
``stimulus_id``, with images that are read (and perturbed) batch by batch.

A set's ``metadata`` always has the columns ``stimulus_id``, ``source_id`` (the unperturbed
image it comes from), ``perturbation`` and ``level``; any other columns (label, category, ...)
are carried into the activation datasets as presentation coords.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurocnnf.data import load_dataset
from neurocnnf.data.datasets import kriegeskorte92
from neurocnnf.errors import NeurocnnfError
from neurocnnf.extras import require

if TYPE_CHECKING:
    import pandas as pd


class StimulusError(NeurocnnfError, ValueError):
    """A stimulus set that cannot be built or read (missing column, unreadable image, ...)."""


class ConversionWarning(UserWarning):
    """Stimuli that must be converted to the model's input: colour images shown to a greyscale
    model, or images of another size than the model's (``strict`` refuses them instead)."""


class StimulusSizeWarning(UserWarning):
    """Images that lose more than MAX_CROP of their area to the centre crop, or are enlarged
    more than MAX_UPSCALE times, on their way to the model's size."""


MAX_CROP = 0.5
MAX_UPSCALE = 4.0


@dataclass
class StimulusSet:
    """Stimuli: metadata (one row each) + the source images they are made from.

    metadata: DataFrame with stimulus_id, source_id, source_index, perturbation, level, ...
    images: uint8 (N_sources, C, H, W) held in memory, or None when ``paths`` are read.
    paths: one file per source image (read lazily with PIL).
    """

    identifier: str
    metadata: pd.DataFrame
    images: Tensor | None = None
    paths: list[Path] | None = None
    seed: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.metadata)

    @property
    def n_sources(self) -> int:
        return len(self.images) if self.images is not None else len(self.paths or [])

    def source_images(self, indices: np.ndarray, size: int | None = None) -> list[Tensor]:
        """uint8 (C, H, W) tensors of the given source indices (read from disk if needed;
        ``size``: the side they will be resized to, so that a large file is decoded reduced)."""
        if self.images is not None:
            return [self.images[int(i)] for i in indices]
        return [_read_image(self.paths[int(i)], size=size) for i in indices]


BACKGROUND = 0.5  # grey on which transparent pixels are composited (pixel scale)
NAME_COLUMNS = ("stimulus_id", "source_id", "filename", "image_file_name", "path",
                "perturbation", "category")


MAX_ZERO_RUN = 64  # zero bytes in a row in a JPEG's compressed data: damage, not an image
REDUCE_ABOVE = 16  # a file whose short side is >= 16x the model's side is decoded reduced ...
REDUCE_TO = 8  # ... to a short side of >= 8x the model's side (then resized as any image)


def _read_image(path: Path, background: float = BACKGROUND, size: int | None = None) -> Tensor:
    """float32 (C, H, W) in [0, 1]: 8- and 16-bit images at their full range, 32-bit float
    images as pixel values in [0, 1]; images with transparency composited on the grey
    ``background``. Refused (StimulusError): decompression bombs (PIL's pixel limit),
    several frames, damaged JPEG data, non-finite or out-of-range float pixels. ``size``: the
    model's side; a file with a short side >= REDUCE_ABOVE x ``size`` is decoded reduced
    (JPEG draft, else a box reduction) to >= REDUCE_TO x ``size``, so memory follows the
    model, not the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image, file_format = _checked(opened, path, size), opened.format
            if image.mode == "F":  # 32-bit float: pixel values in [0, 1]
                array = np.array(image, np.float32)
                if not np.isfinite(array).all():
                    raise StimulusError(f"{path}: {int((~np.isfinite(array)).sum())} pixels "
                                        "are NaN or infinite")
                if array.min() < 0 or array.max() > 1:
                    raise StimulusError(f"{path}: a float image must hold pixel values in "
                                        f"[0, 1], got [{array.min():.4g}, {array.max():.4g}]")
            elif image.mode.startswith("I"):  # 16-bit grey ('I;16*', or 'I' from a PNG)
                array = np.asarray(image).astype(np.float32)
                if image.mode == "I" and (file_format != "PNG" or array.max() > 65535):
                    raise StimulusError(f"{path}: 32-bit integer images are not supported; "
                                        "save as 8- or 16-bit PNG")
                array /= 65535.0
            elif image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or image.has_transparency_data:
                grey = image.mode in ("LA", "La") or (image.mode == "P" and _grey_palette(image))
                pixels = np.asarray(image.convert("LA" if grey else "RGBA"), np.float32) / 255.0
                alpha = pixels[..., -1:]
                array = pixels[..., :-1] * alpha + background * (1.0 - alpha)
            else:
                mode = "L" if image.mode in ("L", "1") else "RGB"
                array = np.asarray(image.convert(mode), np.float32) / 255.0
    except (FileNotFoundError, UnidentifiedImageError, OSError,
            Image.DecompressionBombError) as error:
        raise StimulusError(f"cannot read image {path}: {error}") from None
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _checked(image, path: Path, size: int | None):
    """``image`` (PIL), refused if it has several frames or damaged JPEG data; reduced (see
    ``_read_image``) when it is far larger than ``size``."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise StimulusError(f"{path} holds {frames} frames (an animation or a stack): save the "
                            "frame to use as an image of its own")
    if image.format == "JPEG":
        data = Path(path).read_bytes()
        if bytes(MAX_ZERO_RUN) in data[data.find(b"\xff\xda"):]:  # from the first scan on
            raise StimulusError(f"cannot read image {path}: its JPEG data hold a run of "
                                f"{MAX_ZERO_RUN} or more zero bytes (a damaged file)")
    if not size or min(image.size) < REDUCE_ABOVE * size:
        return image
    factor = min(image.size) // (REDUCE_TO * size)
    if image.format == "JPEG":  # decoded at 1/2, 1/4 or 1/8 scale, still >= the size asked
        image.draft(image.mode, (image.width // factor, image.height // factor))
        return image
    return image.reduce(factor) if image.mode in ("L", "RGB", "RGBA", "LA", "F", "I") \
        else image


def _grey_palette(image) -> bool:
    rgb = np.asarray(image.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def convert(image: Tensor, channels: int, size: int) -> Tensor:
    """uint8 (C, H, W), or float in [0, 1] -> float (channels, size, size) in [0, 1]: luma or
    grey->RGB, then a bilinear antialiased resize of the square centre crop."""
    x = image.float().div(255.0) if image.dtype == torch.uint8 else image.float()
    if x.shape[0] == 3 and channels == 1:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    elif x.shape[0] == 1 and channels == 3:
        x = x.expand(3, -1, -1)
    elif x.shape[0] != channels:
        raise StimulusError(f"cannot convert a {x.shape[0]}-channel image to {channels}")
    height, width = x.shape[-2:]
    side = min(height, width)
    if side * side < (1 - MAX_CROP) * height * width or size > MAX_UPSCALE * side:
        warnings.warn(f"stimulus images lose more than {MAX_CROP:.0%} of their area to the "
                      f"centre crop, or are enlarged more than {MAX_UPSCALE:g}x, to reach the "
                      "model's size (see the 'conversion' attribute of the outputs)",
                      StimulusSizeWarning, stacklevel=2)
    top, left = (height - side) // 2, (width - side) // 2
    x = x[:, top:top + side, left:left + side]
    if side != size:
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)[0]
    return x.clamp(0.0, 1.0)


def conversion_note(stimuli: StimulusSet, channels: int, size: int) -> str:
    """How the set's images were turned into model input, for the dataset attributes."""
    first = stimuli.source_images(np.array([0]))[0]
    c, h, w = first.shape
    colour = {(3, 1): "RGB->grey (ITU-R 601 luma)", (1, 3): "grey->RGB (repeat)"}.get(
        (c, channels), "channels kept")
    alpha = (f"; transparency composited on grey {BACKGROUND}" if stimuli.images is None
             else "")
    return (f"{colour}; {h}x{w} -> centre crop {min(h, w)} -> {size}x{size} "
            f"(bilinear, antialias); scaled to [0, 1]{alpha}")


def input_conversion(stimuli: StimulusSet, channels: int, size: int,
                     strict: bool = False) -> str:
    """The conversion note (see :func:`conversion_note`); a :class:`ConversionWarning` naming
    it when the images are colour and the model greyscale, or of another size than the
    model's ``size`` x ``size``; with ``strict``, a StimulusError instead."""
    note = conversion_note(stimuli, channels, size)
    c, h, w = stimuli.source_images(np.array([0]))[0].shape
    problems = ([f"colour images shown to a {channels}-channel model"] if c > channels else []) \
        + ([f"{h}x{w} images shown to a model of {size}x{size}"] if (h, w) != (size, size)
           else [])
    if problems:
        message = f"{' and '.join(problems)}: converted ({note})"
        if strict:
            raise StimulusError(f"{message.split(': converted')[0]}; strict mode refuses to "
                                "convert them (give images the model takes, or drop --strict)")
        warnings.warn(message, ConversionWarning, stacklevel=2)
    return note


def _base_metadata(ids: list[str], extra: dict | None = None) -> pd.DataFrame:
    pd = require("pandas", "analysis", "stimulus sets")
    frame = pd.DataFrame({"stimulus_id": ids, "source_id": ids,
                          "source_index": np.arange(len(ids)), "perturbation": "none",
                          "level": 0.0})
    for key, values in (extra or {}).items():
        frame[key] = values
    return frame


def read_table(csv: Path) -> pd.DataFrame:
    """A metadata CSV with every column that names things (ids, file names, categories, any
    ``*_id`` / ``*_name`` column) read as text: ``001`` stays ``001``, ``1e3`` stays ``1e3``."""
    pd = require("pandas", "analysis", "stimulus sets")
    try:
        header = pd.read_csv(csv, nrows=0).columns
        names = [c for c in header if c in NAME_COLUMNS or str(c).endswith(("_id", "_name"))]
        table = pd.read_csv(csv, dtype=dict.fromkeys(names, str))
    except pd.errors.EmptyDataError:
        raise StimulusError(f"{csv} is empty: it needs a header with stimulus_id and filename, "
                            "and one row per stimulus") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise StimulusError(f"{csv}: not a readable CSV ({error})") from None
    if table.empty:
        raise StimulusError(f"{csv} lists no stimuli (a header but no rows)")
    return table


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def scan_folder(folder: str | os.PathLike, identifier: str | None = None) -> StimulusSet:
    """Every image file under ``folder`` (sorted by path), without a CSV: ``stimulus_id`` is
    the path relative to the folder without its suffix (``dogs/img01``; with the suffix where
    two files differ only in it), ``filename`` the relative path, and ``category`` the
    subfolder an image lies in (its first level; '' for images at the top) when any does."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StimulusError(f"stimulus folder {folder} does not exist")
    files = sorted(p.relative_to(folder) for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise StimulusError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}, and no "
                            "stimuli.csv naming them")
    ids = [p.with_suffix("").as_posix() for p in files]
    if len(set(ids)) < len(ids):
        ids = [p.as_posix() for p in files]
    extra = {"filename": [p.as_posix() for p in files]}
    if any(len(p.parts) > 1 for p in files):
        extra["category"] = [p.parts[0] if len(p.parts) > 1 else "" for p in files]
    return StimulusSet(identifier or folder.name, _base_metadata(ids, extra),
                       paths=[folder / p for p in files])


def from_folder(folder: str | os.PathLike, csv: str | os.PathLike | None = None,
                identifier: str | None = None) -> StimulusSet:
    """Images in a folder with a metadata CSV (``stimulus_id`` plus ``filename`` or
    ``image_file_name``, relative to the folder; other columns are kept). Rows with
    ``rendered`` true hold images already perturbed as listed (see ``stimuli.export``).
    Naming columns are read as text (see ``read_table``). Without a CSV (none given and no
    ``stimuli.csv`` in the folder) every image in it is a stimulus (see ``scan_folder``)."""
    folder = Path(folder)
    if csv is None and not (folder / "stimuli.csv").exists():
        return scan_folder(folder, identifier)
    csv = Path(csv) if csv is not None else folder / "stimuli.csv"
    if not csv.is_file():
        raise StimulusError(f"metadata CSV {csv} does not exist")
    table = read_table(csv)
    if "stimulus_id" not in table.columns:
        raise StimulusError(f"{csv} has no 'stimulus_id' column (columns: {list(table.columns)})")
    path_column = next((c for c in ("filename", "image_file_name", "path") if c in table), None)
    if path_column is None:
        raise StimulusError(f"{csv} needs a 'filename' (or 'image_file_name') column")
    for column in ("stimulus_id", path_column):
        empty = np.flatnonzero(table[column].isna().to_numpy())
        if len(empty):
            raise StimulusError(f"{csv}: {column} is empty (or NA) in row(s) "
                                f"{(empty + 2).tolist()[:5]} (line numbers)")
    repeated = table["stimulus_id"][table["stimulus_id"].duplicated()].unique().tolist()
    if repeated:
        raise StimulusError(f"{csv}: stimulus_id values are not unique: {repeated[:5]}")
    ids = table["stimulus_id"].tolist()
    paths = [folder / p for p in table[path_column]]
    outside = [str(p) for p in table[path_column]
               if os.path.isabs(p) or os.path.normpath(p).split(os.sep)[0] == ".."]
    if outside:
        raise StimulusError(f"{len(outside)} image path(s) in {csv} lie outside {folder}: "
                            f"{outside[:3]} (paths are relative to the folder, inside it)")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise StimulusError(f"{len(missing)} image(s) listed in {csv} do not exist: {missing[:3]}")
    folders = [str(p) for p in paths if not p.is_file()]
    if folders:
        raise StimulusError(f"{len(folders)} path(s) listed in {csv} are not files: "
                            f"{folders[:3]}")
    # source_index addresses ``paths`` (one file per row); every other column is kept
    extra = {c: table[c].to_numpy() for c in table.columns
             if c not in ("stimulus_id", "source_index")}
    return StimulusSet(identifier or folder.name, _base_metadata(ids, extra), paths=paths)


def from_dataset(name: str, split: str = "test", n: int | None = 1000, seed: int = 0,
                 root=None) -> StimulusSet:
    """``n`` images of Fashion-MNIST or CIFAR-10, class-balanced (seeded): n // classes of
    each class, and one more of the first n % classes classes. None: the whole split."""
    data = load_dataset(name, split, root)
    rng = np.random.default_rng(seed)
    labels = data.labels.numpy()
    if n is not None and not 1 <= n <= len(labels):
        raise StimulusError(f"{name}:{split}:{n}: n must be in [1, {len(labels)}] "
                            f"(the {split} split's size)")
    if n is None or n == len(labels):
        chosen = np.arange(len(labels))
    else:
        k = len(data.classes)
        members = [np.flatnonzero(labels == c) for c in range(k)]
        wanted, total = [0] * k, 0
        while total < n:  # round robin over the classes that still have images
            for c in range(k):
                if total < n and wanted[c] < len(members[c]):
                    wanted[c], total = wanted[c] + 1, total + 1
        chosen = np.sort(np.concatenate([
            rng.choice(m, w, replace=False) for m, w in zip(members, wanted, strict=True)
        ]))
    ids = [f"{data.name}-{split}-{i:05d}" for i in chosen]
    extra = {"label": labels[chosen], "category": [data.classes[c] for c in labels[chosen]],
             "dataset_index": chosen}
    return StimulusSet(f"{data.name}-{split}-{len(chosen)}-s{seed}", _base_metadata(ids, extra),
                       images=data.images[torch.as_tensor(chosen)], seed=seed)


def from_paths(identifier: str, ids: list[str], paths: list[Path],
               extra: dict | None = None) -> StimulusSet:
    """A set of image files (read lazily), one stimulus per file, ids in order."""
    if len(ids) != len(paths):
        raise StimulusError(f"{identifier}: {len(ids)} ids for {len(paths)} images")
    return StimulusSet(identifier, _base_metadata(ids, extra), paths=list(paths))


def brain_stimuli(dataset: str, root=None) -> StimulusSet:
    """The images of a brain data set (``neurocnnf.data.brain_datasets``) in RDM order, with
    the RDMs' stimulus ids: the publisher's JPEGs for the Algonauts sets (read lazily; the 78
    are 399-402 x 400 pixels, verified as one ordered set), the Kriegeskorte ``.mat`` images
    (in memory) for kriegeskorte92 and judgements92."""
    from neurocnnf.data.brain import algonauts_files, stimulus_ids

    if not dataset.startswith("algonauts"):
        stimulus_ids(dataset)  # an unknown name fails here, listing the known ones
        return kriegeskorte92_set(root)
    paths = algonauts_files(dataset, root)
    return from_paths(dataset, stimulus_ids(dataset), paths, {"filename": [p.name for p in paths]})


def kriegeskorte92_set(root=None) -> StimulusSet:
    """The 92 object images with their category columns (animate, human, face, ...)."""
    k = kriegeskorte92(root)
    ids = [f"kriegeskorte92-{i:02d}" for i in range(92)]
    extra = {"category": k.category_names, **{f"is_{c}": v for c, v in k.categories.items()}}
    return StimulusSet("kriegeskorte92", _base_metadata(ids, extra), images=k.images)


def load_stimuli(spec: str, root=None) -> StimulusSet:
    """Parse a stimulus-set spec: ``kriegeskorte92``, ``algonauts92``, ``algonauts78``,
    ``fashion_mnist[:split[:n]]``, ``cifar10[:split[:n]]`` or ``folder:PATH[:CSV]``."""
    name, _, rest = spec.partition(":")
    if name == "kriegeskorte92":
        return kriegeskorte92_set(root)
    if name in ("algonauts92", "algonauts78"):
        return brain_stimuli(name, root)
    if name in ("fashion_mnist", "cifar10"):
        parts = rest.split(":") if rest else []
        split = parts[0] if parts else "test"
        if len(parts) > 2 or (len(parts) > 1 and not parts[1].strip().isdigit()):
            raise StimulusError(f"{spec!r}: use {name}[:split[:n]] with n a positive integer")
        n = int(parts[1]) if len(parts) > 1 else 1000
        return from_dataset(name, split, n, root=root)
    if name == "folder":
        folder, _, csv = rest.partition(":")
        return from_folder(folder, csv or None)
    raise StimulusError(f"unknown stimulus set {spec!r}: use kriegeskorte92, algonauts92, "
                        "algonauts78, fashion_mnist[:split[:n]], cifar10[:split[:n]] or "
                        "folder:PATH[:CSV]")
