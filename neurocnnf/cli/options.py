"""What the commands share: option texts and defaults (one convention for every command;
tests/test_cli.py checks it by walking the app) and the parsing of option values. Nothing heavy
is imported at module level, so that `--help` and a rejected option answer without torch."""

from __future__ import annotations

from pathlib import Path

MODEL_HELP = "checkpoint file, run folder or pretrained:NAME"
DEVICE_HELP = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps"
PROGRESS_HELP = "show progress bars"
FORWARD_BATCH = 64  # images per model call when the model only runs forward
ATTACK_BATCH = 256  # images per batch of an attack evaluation (its seeds are drawn per batch)
ATTACKS_HELP = ("comma-separated, from fgsm, pgd, spsa, transfer (needs --twin), apgd-ce, "
                "apgd-dlr, apgd-t, square")
STIMULI_HELP = ("kriegeskorte92, algonauts92, algonauts78, fashion_mnist[:split[:n]], "
                "cifar10[:split[:n]] or folder:PATH[:CSV] (without a CSV: every image in PATH, "
                "ids from the file names, category from subfolders)")
LAYERS_HELP = ("comma-separated store variables: layers (conv1, ...), their feedback "
               "(conv2_feedback: brings its layer too), h_hat, logits, probabilities; the "
               "scalars (reconstruction_error, ...) are always stored; default all")


def device_name(name: str) -> str:
    """The device a --device option names, checked to be available here (DeviceError)."""
    from neurocnnf.device import resolve_device

    return str(resolve_device(name))


def check_writable(folder: Path) -> None:
    """Fail (OutputError) before any work when the output folder cannot be written."""
    from neurocnnf.outputs import check_output_folder

    check_output_folder(folder)


def split_names(text: str) -> tuple[str, ...]:
    """'pgd, apgd-ce' -> ('pgd', 'apgd-ce'): comma-separated names, blanks dropped."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def split_numbers(text: str, option: str, kind: type = float) -> tuple:
    """'0.1,0.2' -> (0.1, 0.2) as ``kind`` (float or int); ValueError naming the option if
    not."""
    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected comma-separated "
                         f"{'integers' if kind is int else 'numbers'}") from None


def one_output(positional: Path | None, option: Path | None) -> Path:
    """The output of a command taking it as --out or (the older form) as an argument."""
    if positional is not None and option is not None and positional != option:
        raise ValueError(f"two outputs given: {positional} and --out {option}; give one")
    if positional is None and option is None:
        raise ValueError("no output given: pass --out PATH")
    return option or positional
