"""Training: configs and presets, Table 1 losses, the loop, checkpoints."""

from neurocnnf.train.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    load_checkpoint,
    load_model,
    read_metadata,
    save_model,
)
from neurocnnf.train.config import (
    ConfigError,
    TrainConfig,
    available_presets,
    config_from_dict,
    load_config,
)
from neurocnnf.train.loop import evaluate, train

__all__ = [
    "CheckpointError", "ConfigError", "LoadedCheckpoint", "TrainConfig", "available_presets",
    "config_from_dict", "evaluate", "load_checkpoint", "load_config", "load_model",
    "read_metadata", "save_model", "train",
]
