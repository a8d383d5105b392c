"""Config loading and validation, and the path helpers every rule file uses. Every output
path comes from neurocnnf.pipelines.layout (LAYOUT), which the report reads too."""

import shlex
from pathlib import Path

import jsonschema
import yaml
from snakemake.utils import min_version, validate

from neurocnnf.pipelines.layout import PURPOSES, ResultsLayout

min_version("8.0")

WORKFLOW_DIR = Path(workflow.main_snakefile).parent
SCHEMA = WORKFLOW_DIR / "schemas" / "config.schema.yaml"


def explain_config_errors(config):
    """Raise one readable error listing every setting the schema rejects."""
    validator = jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"  {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors
        ]
        raise ValueError(f"invalid workflow config ({SCHEMA.name}):\n" + "\n".join(lines))


# no --configfile: the quickstart, with any --config overrides (config/config.yaml beside
# workflow/ in a copy made by `neurocnnf workflow init`)
DEFAULT_CONFIG = next(
    p
    for p in (
        WORKFLOW_DIR / "config" / "quickstart.yaml",
        WORKFLOW_DIR.parent / "config" / "config.yaml",
    )
    if p.exists()
)
if "models" not in config:
    config.update({**yaml.safe_load(DEFAULT_CONFIG.read_text()), **config})
explain_config_errors(config)
validate(config, "../schemas/config.schema.yaml")  # fills in the defaults


def check_model_names(config):
    """Every model named by an analysis section must be trained by `models`."""
    named = [
        ("robustness.model", config["robustness"]["model"]),
        ("figure6.model", config["figure6"]["model"]),
        ("brainscore.model", config["brainscore"]["model"]),
    ]
    if "twin" in config["robustness"]:
        named.append(("robustness.twin", config["robustness"]["twin"]))
    named += [("difficulty.models", m) for m in config["difficulty"]["models"]]
    named += [
        (f"predictive_coding.models.{label}", m)
        for label, m in config["predictive_coding"]["models"].items()
    ]
    for section in ("neural", "human_uncertainty"):
        named += [
            (f"{section}.models.{label}", m)
            for label, m in config.get(section, {}).get("models", {}).items()
        ]
    for where, name in named:
        if name not in config["models"]:
            raise ValueError(
                f"config {config['name']!r}: {where} names model {name!r}, which "
                f"is not in models ({sorted(config['models'])})"
            )


check_model_names(config)

SHARDS = config["shards"]  # extraction jobs per activation store (> 1: a sharded Zarr store)
LAYOUT = ResultsLayout(Path(config["results"]) / config["name"], ".zarr" if SHARDS > 1 else ".nc")
SEEDS = config["seeds"]
SEED0 = SEEDS[0]  # the seed whose models the activations and analyses use
THREADS = config["threads"]
DEVICE = config["device"]
GPU = 1 if DEVICE in ("cuda", "auto") else 0
ENV = "../envs/neurocnnf.yaml"  # relative to the rule files
# what the report waits for (name -> paths): each rule file adds the outputs of its rules
REPORTED = {}


def trained(model, seed=SEED0):
    """The results.json a finished training run writes last (its checkpoint lies beside)."""
    return str(LAYOUT.trained(model, seed))


def checkpoint(model, seed=SEED0):
    return str(LAYOUT.checkpoint(model, seed))


def named_models(section):
    """--model LABEL=CHECKPOINT arguments of an analysis section's models."""
    return " ".join(
        f"--model {shlex.quote(label)}={checkpoint(model)}"
        for label, model in config[section]["models"].items()
    )


def shard_marker(part):
    """The done-marker of a sharded extraction's step ('init' or a shard's index)."""
    return str(LAYOUT.activation_shard("{model}", "{purpose}", part))


def stimulus_input(purpose):
    """The image shape a purpose's stimuli are rendered to: its section's model_input, else
    the top-level one."""
    return config[purpose].get("model_input", config["model_input"])


def log_path(*parts):
    return str(LAYOUT.log(*parts))


def noise_grid(levels):
    """--perturb argument for a noise grid: noise=L1,L2,..."""
    return "noise=" + ",".join(str(v) for v in levels)


def train_command(wildcards):
    """`neurocnnf train` of the model's preset (resumed, restarted if its config changed), or
    `neurocnnf pretrained export` of a shipped model."""
    model = config["models"][wildcards.model]
    folder = shlex.quote(str(LAYOUT.model_run(wildcards.model, wildcards.seed)))
    if "pretrained" in model:
        return f"neurocnnf pretrained export {shlex.quote(model['pretrained'])} --out {folder}"
    return (
        f"neurocnnf train {shlex.quote(model['preset'])} --out {folder} "
        f"{train_overrides(wildcards)} --resume --restart-if-changed --no-progress"
    )


def train_overrides(wildcards):
    """--set arguments: the model's own settings, then seed and device."""
    settings = config["models"][wildcards.model].get("set", [])
    settings = [
        *settings,
        f"seed={wildcards.seed}",
        f"device={DEVICE}",
        f"name={config['name']}-{wildcards.model}-seed{wildcards.seed}",
    ]
    return " ".join(f"--set {shlex.quote(s)}" for s in settings)
