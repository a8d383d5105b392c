"""A folder of images without a CSV, and the in-memory extract_features, give the file path's
values: ids from the file names, categories from the subfolders (real Algonauts images)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import neurocnnf
from neurocnnf.stimuli import StimulusError, from_folder

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "algonauts2019" / \
    "78images" / "images"
MODEL = "pretrained:fmnist-small-cnnf1"


@pytest.fixture
def folder(tmp_path) -> Path:
    """Six real photographs in two subfolders, no CSV."""
    if not IMAGES.is_dir():
        pytest.skip(f"the Algonauts images are not at {IMAGES}")
    root = tmp_path / "photos"
    for i, name in enumerate(sorted(IMAGES.glob("*.jpg"))[:6]):
        (root / ("animals" if i < 3 else "objects")).mkdir(parents=True, exist_ok=True)
        shutil.copy(name, root / ("animals" if i < 3 else "objects") / name.name)
    return root


def _extract(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "neurocnnf", "extract", MODEL, "--no-progress",
                           "--device", "cpu", *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_folder_without_csv_takes_ids_from_names_and_categories_from_subfolders(folder):
    stimuli = from_folder(folder)
    assert stimuli.metadata["stimulus_id"].tolist()[0] == "animals/78images_00001"
    assert stimuli.metadata["category"].tolist() == ["animals"] * 3 + ["objects"] * 3
    (folder / "notes.txt").write_text("not an image")
    assert len(from_folder(folder)) == 6
    (folder / "empty").mkdir()
    with pytest.raises(StimulusError, match="no images"):
        from_folder(folder / "empty")
    with pytest.raises(StimulusError, match="does not exist"):
        from_folder(folder / "missing")


@pytest.mark.slow  # three extractions in fresh processes: ~25 s on 2 quiet cores
def test_folder_and_memory_paths_equal_the_csv_file_path(folder, tmp_path):
    _extract("--stimuli", f"folder:{folder}", "--out", str(tmp_path / "scan.nc"))
    metadata = from_folder(folder).metadata[["stimulus_id", "filename", "category"]]
    csv = tmp_path / "stimuli.csv"
    metadata.to_csv(csv, index=False)
    _extract("--stimuli", f"folder:{folder}:{csv}", "--out", str(tmp_path / "csv.nc"))
    memory = neurocnnf.extract_features(MODEL, folder, device="cpu")
    with xr.open_dataset(tmp_path / "scan.nc", engine="h5netcdf") as scan, \
            xr.open_dataset(tmp_path / "csv.nc", engine="h5netcdf") as listed:
        variables = sorted(listed.data_vars)
        assert variables and sorted(scan.data_vars) == variables == sorted(memory.data_vars)
        for name in variables:
            np.testing.assert_array_equal(scan[name].values, listed[name].values)
            np.testing.assert_array_equal(memory[name].values, listed[name].values)
        for coord in ("stimulus_id", "category"):
            assert list(memory[coord].values) == list(listed[coord].values)
    assert np.isfinite(memory["logits"].values).all()
    assert memory["logits"].dims[0] == "presentation" and memory.sizes["presentation"] == 6


def test_extract_features_takes_a_list_of_files_and_layers(folder):
    files = sorted(folder.rglob("*.jpg"))[:2]
    features = neurocnnf.extract_features(MODEL, files, layers=["conv2", "logits"],
                                          iterations=1, device="cpu")
    assert {"conv2", "conv2_feedback", "logits"} <= set(features.data_vars)
    assert "conv1" not in features and features.sizes["iteration"] == 2
    assert list(features["stimulus_id"].values) == [f.stem for f in files]
