"""CIFAR-10H and its map onto the CIFAR-10 JPEG test tree (neurocnnf.data.cifar10h)."""

import numpy as np
import pytest

from neurocnnf.data import DataIntegrityError
from neurocnnf.data.cifar10h import cifar10_test_in_original_order, cifar10h, jpeg_positions


def test_jpeg_positions_number_each_class_in_order():
    assert jpeg_positions(np.array([3, 8, 8, 0, 3, 8])).tolist() == [0, 0, 1, 0, 1, 2]


@pytest.mark.data
def test_human_labels_shapes_and_agreement_with_the_test_labels():
    human = cifar10h()
    assert human.counts.shape == human.probs.shape == (10_000, 10)
    assert human.labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert human.counts.sum(1).min() >= 47 and human.counts.sum(1).max() <= 63
    assert np.allclose(human.probs, human.counts / human.counts.sum(1, keepdims=True))
    assert (human.plurality() == human.labels).mean() >= 0.99
    assert human.entropy().min() >= 0 and human.entropy().max() <= np.log(10)


@pytest.mark.data
def test_every_test_image_maps_to_a_jpeg_of_its_own_class():
    data = cifar10_test_in_original_order()
    labels = cifar10h().labels
    assert len(data) == 10_000 and len(set(data.metadata["files"])) == 10_000
    folders = [name.split("/")[0] for name in data.metadata["files"]]
    assert [data.classes.index(f) for f in folders] == labels.tolist()
    assert np.array_equal(data.labels.numpy(), labels)  # the class folder is the label
    assert (cifar10h().plurality() == data.labels.numpy()).mean() >= 0.99


@pytest.mark.data
def test_a_changed_file_fails_the_checksum(tmp_path):
    folder = tmp_path / "cifar10h"
    folder.mkdir()
    np.save(folder / "cifar10h-counts.npy", np.zeros((10_000, 10), dtype=np.int64))
    with pytest.raises(DataIntegrityError, match="checksum"):
        cifar10h(root=tmp_path)
