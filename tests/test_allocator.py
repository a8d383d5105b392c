"""neurocnnf.allocator: the setting applies where it should, is switched off by its variable,
and changes no number (a read of uninitialised memory would show as a difference once freed
memory is reused instead of handed back zero-filled). Each in fresh processes: the setting is
process-wide and one-way."""

import json
import os
import subprocess
import sys

import pytest
from safetensors import safe_open

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

TRAIN = """
import hashlib, json, sys
from neurocnnf import allocator
from neurocnnf.train import config_from_dict, train
config = config_from_dict({
    "name": "tiny", "seed": 1, "device": "cpu", "eval_batch_size": 256,
    "model": {"arch": "fmnist_small", "iterations": 2},
    "data": {"train_limit": 192, "test_limit": 64},
    "optim": {"optimizer": "adam", "lr": 0.003, "batch_size": 64, "epochs": 1}})
train(config, sys.argv[1], progress=False)
print(json.dumps({"applied": allocator.keep_freed_memory()}))
"""


def run(out, switch: str) -> tuple[bool, str]:
    env = {**os.environ, "NEUROCNNF_KEEP_FREED_MEMORY": switch, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", TRAIN, str(out)], capture_output=True,
                          text=True, check=True, env=env)
    applied = json.loads(done.stdout.strip().splitlines()[-1])["applied"]
    with safe_open(out / "last.safetensors", "pt") as file:  # the weights' hash (the metadata
        return applied, json.loads(file.metadata()["neurocnnf"])["tensors_sha256"]  # has times)


@pytest.mark.data
def test_training_gives_the_same_weights_with_freed_memory_kept_or_returned(tmp_path):
    kept, returned = run(tmp_path / "kept", "1"), run(tmp_path / "returned", "0")
    assert kept[0] is True and returned[0] is False
    assert kept[1] == returned[1]
