"""The command line's conventions, checked on every command by walking the typer app, so that
new commands keep them: help on every option, --out on every command that writes, --device
(default auto) where a model runs, one batch-size default per kind of work, `pretrained:NAME`
on every model argument; and a start-up that loads no torch for --help or a rejected option."""

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import xarray as xr
from typer.main import get_command

from neurocnnf import cli
from neurocnnf.activations.store import FINGERPRINT
from neurocnnf.attacks.registry import attack_names

READ_ONLY = {"presets", "info", "pretrained list", "pretrained info"}
MODEL_PARAMS = {"checkpoint", "checkpoints", "model", "twin"}
# commands with a model argument and no --device, each with the reason: none of them runs it
NO_DEVICE = {
    "info": "reads the checkpoint's metadata only",
    "brainscore export": "writes the plugin; Brain-Score runs it",
}
# what a command's code does to run a model: load it, or hand named models to a pipeline
RUNS_A_MODEL = re.compile(r"\bload_model\(|_named_models\(|run_evaluation\(")
ATTACK_COMMANDS = {"evaluate"}


def _commands(group, prefix: str = "") -> dict:
    """'sub command' -> the command object, for every leaf command of the app."""
    found = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found.update(_commands(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


COMMANDS = _commands(get_command(cli.app))


def _params(command) -> dict:
    return {p.name: p for p in command.params if p.name != "help"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_follows_the_convention(name):
    command = COMMANDS[name]
    params = _params(command)
    undocumented = [p for p, param in params.items() if not getattr(param, "help", None)]
    assert not undocumented, f"{name}: options without help text: {undocumented}"
    if name not in READ_ONLY:
        assert any("--out" in getattr(p, "opts", ()) for p in params.values()), \
            f"{name} writes but takes no --out"
    for model_param in MODEL_PARAMS & set(params):
        assert "pretrained:NAME" in params[model_param].help, f"{name} {model_param}"
    if MODEL_PARAMS & set(params) and name not in NO_DEVICE:
        assert "device" in params, f"{name} runs a model but has no --device"
    runs_a_model = RUNS_A_MODEL.search(inspect.getsource(command.callback))
    if runs_a_model:
        assert "device" in params, f"{name} calls {runs_a_model.group()} but has no --device"
    if name in NO_DEVICE:
        assert not runs_a_model, f"{name} is listed as running no model: {NO_DEVICE[name]}"
    if "device" in params:
        assert params["device"].default == "auto" or (name == "train"
                                                      and params["device"].default is None)
        assert params["device"].help.startswith(cli.DEVICE_HELP)
    if "batch_size" in params:
        kind = cli.ATTACK_BATCH if name in ATTACK_COMMANDS else cli.FORWARD_BATCH
        assert params["batch_size"].default == kind, name


def test_the_shared_texts_name_every_attack_and_pretrained_models():
    assert all(a in cli.ATTACKS_HELP for a in attack_names())
    assert "pretrained:NAME" in (cli.app.registered_callback.callback.__doc__ or "")


def _cli(*args: str, block: str = "", cwd=None) -> subprocess.CompletedProcess:
    """The command line in a fresh process; ``block``: top-level modules made unimportable.
    The last line of stderr says whether torch was imported."""
    script = textwrap.dedent(f"""
        import sys
        BLOCKED = set({block.split(",") if block else []!r})

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, Block())
        sys.argv = ["neurocnnf", *sys.argv[1:]]
        from neurocnnf.cli import main
        try:
            main()
        finally:
            print("TORCH" if "torch" in sys.modules else "NO-TORCH", file=sys.stderr)
    """)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "NO_COLOR": "1"})


@pytest.mark.parametrize("args", [["--help"], ["extract", "--help"], ["--version"],
                                  ["extract", "x", "--out", "a.nc", "--batch-size", "x"],
                                  ["evaluate", "x", "--no-such-option"]])
def test_help_and_a_rejected_option_do_not_load_torch(args):
    done = _cli(*args)
    assert done.stderr.strip().splitlines()[-1] == "NO-TORCH", done.stderr[-2000:]
    assert done.returncode in (0, 2)


def test_a_missing_extra_gives_the_extras_message_not_a_traceback(tmp_path):
    done = _cli("extract", "pretrained:fmnist-small-cnnf1", "--out", str(tmp_path / "a.nc"),
                "--stimuli", "fashion_mnist:test:2", block="xarray")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "`analysis` extra" in done.stderr and "pip install 'neurocnnf[analysis]'" in \
        done.stderr and "Traceback" not in done.stderr


def test_a_feedback_variable_can_be_requested_in_layers(tmp_path):
    out = tmp_path / "a.nc"
    done = _cli("extract", "pretrained:fmnist-small-cnnf1", "--out", str(out), "--stimuli",
                "fashion_mnist:test:4", "--layers", "conv2_feedback,reconstruction_error",
                "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    with xr.open_dataset(out, engine="h5netcdf") as store:
        assert "conv2_feedback" in store and "conv2" in store and "conv1" not in store
        assert "reconstruction_error" in store


def test_extract_bf16_is_an_opt_in_the_store_records(tmp_path):
    out = tmp_path / "a.nc"
    done = _cli("extract", "pretrained:fmnist-small-cnnf1", "--out", str(out), "--stimuli",
                "fashion_mnist:test:4", "--layers", "logits", "--bf16", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    with xr.open_dataset(out, engine="h5netcdf") as store:
        assert json.loads(store.attrs[FINGERPRINT])["bf16"] is True
        assert store["logits"].dtype == "float32"


def test_every_error_class_of_the_package_is_a_neurocnnf_error(tmp_path):
    """One error family: each error class the package defines derives from NeurocnnfError (and
    keeps its builtin base), and the command line prints any of them as one line, exit 2."""
    import ast
    import importlib
    from pathlib import Path

    import neurocnnf
    from neurocnnf.errors import NeurocnnfError

    package = Path(neurocnnf.__file__).parent
    defined = [(".".join(("neurocnnf", *path.relative_to(package).with_suffix("").parts)),
                node.name) for path in package.rglob("*.py") if "template" not in path.parts
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.ClassDef) and node.name.endswith("Error")]
    assert len(defined) >= 18, defined
    for module, name in defined:
        try:
            error = getattr(importlib.import_module(module.removesuffix(".__init__")), name)
        except ModuleNotFoundError as missing:  # the Brain-Score stack's modules, elsewhere
            assert missing.name.startswith("brainscore"), missing
            continue
        assert issubclass(error, NeurocnnfError), f"{module}.{name}"
    done = _cli("info", str(tmp_path / "none.safetensors"))
    lines = done.stderr.strip().splitlines()[:-1]  # (the last line: whether torch was loaded)
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("error: checkpoint") and "does not exist" in lines[0]
