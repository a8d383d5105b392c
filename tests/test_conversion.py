"""Photographs meet the right model: a conversion the model needs is named in a warning (or
refused with --strict), and the extraction records the model's name, input and normalisation."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from neurocnnf import pretrained
from neurocnnf.activations import extract_dataset
from neurocnnf.cli import app
from neurocnnf.models import build_model
from neurocnnf.stimuli import ConversionWarning, StimulusError, from_folder


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colour")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (28, 28, 3), np.uint8)).save(folder / f"{i}.png")
    (folder / "stimuli.csv").write_text("stimulus_id,filename\n" +
                                        "".join(f"s{i},{i}.png\n" for i in range(3)))
    return folder


def test_colour_on_a_greyscale_model_warns_naming_the_conversion(colour_folder, tmp_path):
    model = pretrained.load("fmnist-small-cnn")
    with pytest.warns(ConversionWarning, match=r"colour images shown to a 1-channel model: "
                                               r"converted \(RGB->grey"):
        extract_dataset(model, from_folder(colour_folder), tmp_path / "a.nc", progress=False)


def test_strict_refuses_the_conversion(colour_folder, tmp_path):
    model = pretrained.load("fmnist-small-cnn")
    with pytest.raises(StimulusError, match="strict mode refuses"):
        extract_dataset(model, from_folder(colour_folder), tmp_path / "a.nc", strict=True,
                        progress=False)
    assert not (tmp_path / "a.nc").exists()


def test_matching_images_pass_silently(colour_folder, tmp_path):
    model = build_model("vgg6", iterations=1, image_size=28, mean=[0.4, 0.5, 0.6],
                        std=[0.2, 0.25, 0.3])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConversionWarning)
        ds = extract_dataset(model, from_folder(colour_folder), tmp_path / "b.nc",
                             layers=["conv6"], progress=False, model_id="vgg6-28")
    assert json.loads(ds.attrs["input_shape"]) == [3, 28, 28]
    normalisation = json.loads(ds.attrs["normalisation"])
    assert normalisation["mean"] == pytest.approx([0.4, 0.5, 0.6])
    assert normalisation["std"] == pytest.approx([0.2, 0.25, 0.3])


def test_cli_stores_the_pretrained_name_and_strict_fails_in_one_line(colour_folder, tmp_path):
    runner = CliRunner()
    out = tmp_path / "c.nc"
    result = runner.invoke(app, ["extract", "pretrained:fmnist-small-cnn", "--out", str(out),
                                 "--stimuli", f"folder:{colour_folder}", "--layers", "conv1",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    import xarray as xr

    with xr.open_dataset(out) as ds:
        assert ds.attrs["model_id"] == "fmnist-small-cnn"
        assert json.loads(ds.attrs["input_shape"]) == [1, 28, 28]
    refused = runner.invoke(app, ["extract", "pretrained:fmnist-small-cnn", "--out",
                                  str(tmp_path / "d.nc"), "--stimuli", f"folder:{colour_folder}",
                                  "--strict", "--no-progress"])
    assert refused.exit_code != 0
    assert "strict mode refuses" in refused.output and "Traceback" not in refused.output
