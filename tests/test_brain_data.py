"""Real brain and behavioural RDM loaders (neurocnnf.data.brain) on ../shared/data."""

import shutil

import numpy as np
import pytest

from neurocnnf.data import (
    DataIntegrityError,
    DataNotFoundError,
    brain_datasets,
    kriegeskorte92,
    load_brain_rdms,
)
from neurocnnf.data import brain as brain_module
from neurocnnf.data.roots import data_roots
from neurocnnf.stimuli import brain_stimuli

SUBJECTS = {("algonauts92", "EVC"): 15, ("algonauts92", "IT"): 15, ("algonauts78", "EVC"): 15,
            ("algonauts78", "IT"): 15, ("kriegeskorte92", "human_IT"): 4,
            ("kriegeskorte92", "macaque_IT"): 1, ("judgements92", "judgements"): 16}


def _shared(relative: str):
    return next(base / relative for base in data_roots() if (base / relative).exists())


def test_every_region_is_listed():
    assert {(d, r) for d, regions in brain_datasets().items() for r in regions} == set(SUBJECTS)


@pytest.mark.data
@pytest.mark.parametrize(("dataset", "region"), sorted(SUBJECTS))
def test_rdms_shapes_symmetry_diagonal_and_subjects(dataset, region):
    loaded = load_brain_rdms(dataset, region)
    n = 78 if dataset == "algonauts78" else 92
    assert loaded.rdms.dtype == np.float64
    assert loaded.rdms.shape == (SUBJECTS[(dataset, region)], n, n)
    assert len(set(loaded.subjects)) == len(loaded.subjects) == len(loaded.rdms)
    assert (loaded.rdms == loaded.rdms.transpose(0, 2, 1)).all()
    assert (np.diagonal(loaded.rdms, axis1=1, axis2=2) == 0).all()
    assert (loaded.rdms[:, ~np.eye(n, dtype=bool)] > 0).mean() > 0.99  # real dissimilarities
    assert (loaded.dataset, loaded.region) == (dataset, region)


@pytest.mark.data
@pytest.mark.parametrize("dataset", sorted(brain_datasets()))
def test_stimulus_ids_match_the_stimulus_set(dataset):
    stimuli = brain_stimuli(dataset)
    region = brain_datasets()[dataset][0]
    assert stimuli.metadata["stimulus_id"].tolist() == load_brain_rdms(dataset, region).stimulus_ids
    assert stimuli.n_sources == len(stimuli)
    first, last = stimuli.source_images(np.array([0, len(stimuli) - 1]))
    assert first.shape[0] == last.shape[0] == 3 and first.shape[1] in (175, 399, 400, 402)


@pytest.mark.data
def test_the_92_jpegs_are_the_kriegeskorte_images_in_the_same_order():
    from PIL import Image

    files = brain_module.algonauts_files("algonauts92")
    jpegs = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    jpegs = jpegs.transpose(0, 3, 1, 2)
    reference = kriegeskorte92().images.numpy()
    brain_module.check_order(jpegs, reference, background=128)
    swapped = np.arange(92)
    swapped[[3, 40]] = swapped[[40, 3]]
    with pytest.raises(DataIntegrityError, match=r"2 image\(s\) are not in the reference order"):
        brain_module.check_order(jpegs[swapped], reference, background=128)


@pytest.mark.data
def test_the_92_image_sets_agree_on_it():
    """Same images, same order: the mean Algonauts IT RDM resembles Kriegeskorte's human IT."""
    from neurocnnf.analysis.rsa import compare

    algonauts = load_brain_rdms("algonauts92", "IT").rdms.mean(0)
    kriegeskorte = load_brain_rdms("kriegeskorte92", "human_IT").rdms.mean(0)
    shuffle = np.random.default_rng(0).permutation(92)
    assert compare(algonauts, kriegeskorte) > 0.4
    assert abs(compare(algonauts[np.ix_(shuffle, shuffle)], kriegeskorte)) < 0.1


@pytest.mark.data
def test_to_rsatoolbox_is_lossless():
    pytest.importorskip("rsatoolbox")
    loaded = load_brain_rdms("judgements92", "judgements")
    converted = loaded.to_rsatoolbox()
    assert np.array_equal(converted.get_matrices(), loaded.rdms)
    assert converted.rdm_descriptors["subject"] == loaded.subjects
    assert converted.pattern_descriptors["stimulus_id"] == loaded.stimulus_ids
    assert converted.descriptors == {"dataset": "judgements92", "region": "judgements"}


@pytest.mark.data
def test_a_changed_rdm_file_fails_the_checksum(tmp_path):
    name, _ = brain_module.ALGONAUTS_RDMS[("algonauts78", "IT")]
    target = tmp_path / "algonauts2019" / name
    target.parent.mkdir(parents=True)
    data = bytearray(_shared(f"algonauts2019/{name}").read_bytes())
    data[-20] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(DataIntegrityError, match="sha256 checksum .* does not match"):
        load_brain_rdms("algonauts78", "IT", root=tmp_path)


@pytest.mark.data
def test_images_out_of_order_are_an_error(tmp_path):
    folder = tmp_path / "algonauts2019" / "78images" / "images"
    shutil.copytree(_shared("algonauts2019/78images/images"), folder)
    first, second = folder / "78images_00005.jpg", folder / "78images_00006.jpg"
    content = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(content)
    with pytest.raises(DataIntegrityError, match="not the published ones in the RDMs' order"):
        brain_stimuli("algonauts78", root=tmp_path)
    (folder / "78images_00077.jpg").unlink()
    with pytest.raises(DataIntegrityError, match="1 of the 78 images are missing"):
        brain_stimuli("algonauts78", root=tmp_path)


def test_unknown_dataset_or_region_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown brain data set 'algonauts'.*algonauts92"):
        load_brain_rdms("algonauts", "IT")
    with pytest.raises(ValueError, match="judgements92 has no region 'IT'; its regions: judge"):
        load_brain_rdms("judgements92", "IT")


def test_missing_files_offline_say_where_they_were_looked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(brain_module.roots, "_CHECKOUT", tmp_path / "nowhere" / "checkout")
    monkeypatch.setattr(brain_module.roots, "DEBIAN_DATASETS", tmp_path / "debian")
    monkeypatch.setenv("NEUROCNNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NEUROCNNF_OFFLINE", "1")
    monkeypatch.delenv("NEUROCNNF_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="92images_fmri_EVC_RDMs.gzip not found"):
        load_brain_rdms("algonauts92", "EVC", root=tmp_path / "mine")
    with pytest.raises(DataNotFoundError, match="78images_00001.jpg not found"):
        brain_stimuli("algonauts78", root=tmp_path / "mine")
