"""Training configuration: typed dataclasses validated at load; presets are YAML files.

A preset may name a ``base`` preset and override parts of it (the ``*-cnn`` twins set
``model.iterations: 0``). Overrides from the command line use dotted keys: ``optim.lr=0.01``.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from neurocnnf.device import DeviceError, check_device_name
from neurocnnf.errors import NeurocnnfError
from neurocnnf.models import architecture, architecture_names

PRESET_DIR = Path(__file__).parent / "presets"


class ConfigError(NeurocnnfError, ValueError):
    """A training configuration that cannot be run, with the reason."""


@dataclass
class ModelConfig:
    arch: str = "fmnist_small"
    iterations: int = 1  # T used in training; 0 trains the plain-CNN twin
    eta: float | None = 0.1  # CNN-F step size; null: the default (null for the PC comparators)
    options: dict[str, Any] = field(default_factory=dict)  # extra builder arguments


@dataclass
class DataConfig:
    dataset: str = "fashion_mnist"
    val_fraction: float = 0.1  # carved from the training set, stratified
    train_limit: int | None = None  # use only this many training images (quick runs, tests)
    test_limit: int | None = None
    augment_pad: int = 0  # random crop after zero padding (CIFAR: 4)
    augment_flip: bool = False
    root: str | None = None
    # per-channel normalisation (pixel scale); null: computed on the training split, for an
    # architecture that takes them (vgg6, feedback_convnet); stored in the model's config
    mean: list[float] | None = None
    std: list[float] | None = None
    # dataset 'folder': root/{train,test}/<class>/<image>, decoded to channels x size x size
    image_size: int = 32
    channels: int = 3
    workers: int = 0  # DataLoader processes decoding a folder's images (0: in the main one)
    augment_min_scale: float | None = None  # folder: random-resized crop, min area fraction


@dataclass
class OptimConfig:
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "poly"  # poly | cosine | constant, stepped per batch
    power: float = 0.9
    grad_clip: float | None = 0.5  # max global gradient norm; None disables
    batch_size: int = 256
    epochs: int = 1


@dataclass
class LossConfig:
    ce_weight: float = 1.0
    recon_weight: float = 0.1  # ||h - g_t(k)||^2 at layer k
    inter_weight: float = 0.1  # ||f_0(l) - g_t(l)||^2 at the other feedback layers
    clean_weight: float = 1.0  # adversarial training: weight of the clean cross-entropy


@dataclass
class AdversarialConfig:
    enabled: bool = False
    eps: float = 0.1  # L_inf radius in pixel scale [0, 1]
    step_size: float = 0.0355
    steps: int = 7


@dataclass
class TrainConfig:
    name: str = "run"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    bf16: bool = False  # bfloat16 autocast of the training passes (device.bf16_autocast)
    # torch.compile the training passes (the model's ``compiled``); auto: when the run is long
    # enough to repay the compilation on its device (loop.COMPILE_BREAK_EVEN_STEPS;
    # benchmarks/README.md)
    compile: bool | str = False
    eval_batch_size: int = 1000
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first setting that cannot work."""
        _check_finite(self.to_dict())
        buildable = architecture_names(buildable=True)
        if self.model.arch not in buildable:
            raise ConfigError(f"model.arch {self.model.arch!r} is not one of {list(buildable)}")
        has_eta = architecture(self.model.arch).has_eta
        checks = [
            (self.model.iterations >= 0, "model.iterations must be >= 0"),
            (has_eta or self.model.eta is None,
             f"model.eta must be null for {self.model.arch}: it has no CNN-F step size (its "
             "dynamics are set in model.options)"),
            (self.model.eta is None or 0 < self.model.eta <= 1,
             "model.eta must be in (0, 1] (or null: the architecture's default)"),
            (self.data.dataset in ("fashion_mnist", "cifar10", "folder"),
             f"data.dataset {self.data.dataset!r} is not 'fashion_mnist', 'cifar10' or "
             "'folder'"),
            (self.data.dataset != "folder" or self.data.root is not None,
             "data.dataset 'folder' needs data.root: the folder holding train/ and test/"),
            (self.data.image_size >= 1, "data.image_size must be >= 1"),
            (self.data.channels in (1, 3), "data.channels must be 1 or 3"),
            (self.data.workers >= 0, "data.workers must be >= 0"),
            (self.data.augment_min_scale is None or 0 < self.data.augment_min_scale <= 1,
             "data.augment_min_scale must be in (0, 1] or null"),
            (0 <= self.data.val_fraction < 1, "data.val_fraction must be in [0, 1)"),
            (self.data.train_limit is None or self.data.train_limit >= 1,
             f"data.train_limit must be >= 1 or null, got {self.data.train_limit}"),
            (self.data.test_limit is None or self.data.test_limit >= 1,
             f"data.test_limit must be >= 1 or null, got {self.data.test_limit}"),
            (self.data.augment_pad >= 0, "data.augment_pad must be >= 0"),
            (self.data.std is None or all(v > 0 for v in self.data.std),
             f"data.std must be > 0 in every channel, got {self.data.std}"),
            ((self.data.mean is None) == (self.data.std is None),
             "data.mean and data.std are given together (or both null: computed)"),
            (self.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
            (self.optim.optimizer in ("sgd", "adam"), "optim.optimizer must be 'sgd' or 'adam'"),
            (self.optim.lr > 0, f"optim.lr must be > 0, got {self.optim.lr}"),
            (0 <= self.optim.momentum < 1,
             f"optim.momentum must be in [0, 1), got {self.optim.momentum}"),
            (self.optim.weight_decay >= 0, "optim.weight_decay must be >= 0"),
            (self.optim.schedule in ("poly", "cosine", "constant"),
             "optim.schedule must be 'poly', 'cosine' or 'constant'"),
            (self.optim.power > 0, f"optim.power must be > 0, got {self.optim.power}"),
            (0 <= self.seed < 2**32, f"seed must be in [0, 2**32), got {self.seed}"),
            *((getattr(self.loss, name) >= 0,
               f"loss.{name} must be >= 0, got {getattr(self.loss, name)}")
              for name in ("ce_weight", "recon_weight", "inter_weight", "clean_weight")),
            (self.optim.batch_size >= 1, "optim.batch_size must be >= 1"),
            (self.optim.epochs >= 1, "optim.epochs must be >= 1"),
            (self.optim.grad_clip is None or self.optim.grad_clip > 0,
             "optim.grad_clip must be > 0 or null"),
            (0 <= self.adversarial.eps <= 1,
             f"adversarial.eps must be in [0, 1] (pixel scale), got {self.adversarial.eps}"),
            (0 < self.adversarial.step_size <= 1, "adversarial.step_size must be in (0, 1]"),
            (self.adversarial.steps >= 1, "adversarial.steps must be >= 1"),
            (self.compile in (True, False, "auto"),
             f"compile must be true, false or auto, got {self.compile!r}"),
            (self.compile is not True
             or any(shutil.which(cc) for cc in ("c++", "g++", "clang++")),
             "compile: true needs a C++ compiler on PATH (torch.compile's CPU code); "
             "install g++ or set compile: false"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        try:
            check_device_name(self.device)
        except DeviceError as error:
            raise ConfigError(str(error)) from None
        return self


def _check_finite(values: dict[str, Any], prefix: str = "") -> None:
    """ConfigError naming the first number (or list entry) that is NaN or infinite."""
    for key, value in values.items():
        if isinstance(value, dict):
            _check_finite(value, f"{prefix}{key}.")
        elif any(isinstance(v, float) and not math.isfinite(v)
                 for v in (value if isinstance(value, list) else [value])):
            raise ConfigError(f"{prefix}{key} must be a finite number, got {value}")


def _build(cls, values: dict[str, Any], where: str):
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)} in {where}; "
                          f"known: {sorted(known)}")
    types = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        sub = known[name].default_factory
        key = f"{where}.{name}".removeprefix("config.")
        if isinstance(sub, type) and dataclasses.is_dataclass(sub):
            if not isinstance(value, dict):
                raise ConfigError(f"{key} = {value!r}: expected a mapping of settings")
            kwargs[name] = _build(sub, value, f"{where}.{name}")
        else:
            kwargs[name] = _check_type(key, value, types[name])
    return cls(**kwargs)


def _check_type(key: str, value: Any, expected: Any) -> Any:
    """``value`` if it has the setting's type (an int is accepted as a float), else
    ConfigError naming the key, the value and the expected type."""
    allowed = typing.get_args(expected) if isinstance(expected, types.UnionType) \
        else (expected,)
    for kind in allowed:
        origin = typing.get_origin(kind) or kind
        if kind is type(None) and value is None:
            return value
        if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin in (str, bool, dict) and isinstance(value, origin):
            return value
        if origin is list and isinstance(value, list) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return [float(v) for v in value]
    names = " or ".join("null" if k is type(None) else getattr(typing.get_origin(k) or k,
                                                                "__name__", str(k))
                        for k in allowed)
    raise ConfigError(f"{key} = {value!r}: expected {names.replace('dict', 'a mapping')}, "
                      f"got {type(value).__name__}")


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A validated TrainConfig from nested dicts (unknown keys are errors)."""
    return _build(TrainConfig, values, "config").validate()


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a mapping of settings")
    base = values.pop("base", None)
    return _merge(_preset_dict(base), values) if base else values


def _preset_dict(name: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown preset {name!r}; available: {available_presets()}")
    return _read_yaml(path)


def parse_override(text: str) -> dict[str, Any]:
    """'optim.lr=0.01' -> {'optim': {'lr': 0.01}} (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    value: Any = yaml.safe_load(raw)
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return value


def load_config(
    preset_or_path: str, overrides: list[str] | tuple[str, ...] = ()
) -> TrainConfig:
    """A preset name (see ``available_presets``) or a YAML path, plus dotted overrides."""
    path = Path(preset_or_path)
    values = _read_yaml(path) if path.suffix in (".yaml", ".yml") and path.exists() \
        else _preset_dict(preset_or_path)
    values.setdefault("name", path.stem if path.exists() else preset_or_path)
    for text in overrides:
        values = _merge(values, parse_override(text))
    return config_from_dict(values)


def save_config(config: TrainConfig, path: Path) -> None:
    """Write ``config`` as YAML to ``path`` atomically."""
    from neurocnnf.io import atomic_write

    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
