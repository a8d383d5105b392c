"""Bad input gets one clear line, exit code != 0, and nothing already written changes
(issue 14, "Silent wrong answers"). The train/evaluate cases run the real CLI in a subprocess.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from PIL import Image
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
FAST_EVAL = ["--limit", "10", "--attacks", "fgsm", "--eps-grid", "0.1", "--no-progress"]
TINY_TRAIN = ["--set", "data.train_limit=256", "--set", "data.test_limit=100",
              "--set", "optim.epochs=1", "--device", "cpu", "--no-progress"]


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real command line in a fresh process (stdout + stderr as text)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "neurocnnf.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)


def invoke(*args: str):
    """The command line in this process (typer's runner), for the quick cases."""
    from neurocnnf.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def run(real: bool, *args: str):
    """The command line in a subprocess (``real``) or in this process (faster)."""
    return cli(*args) if real else invoke(*args)


def error_line(result) -> str:
    """The one error line of a failed command (no traceback)."""
    text = result.stderr if isinstance(result, subprocess.CompletedProcess) else result.output
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, text
    return lines[0]


def refused(result, message: str, out: Path, before: dict[str, str]) -> None:
    """Exit code 2, ``message`` in the one error line, and ``out`` as it was."""
    code = result.returncode if isinstance(result, subprocess.CompletedProcess) \
        else result.exit_code
    assert code == 2, (code, getattr(result, "stderr", None) or result.output)
    assert message in error_line(result)
    assert snapshot(out) == before


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (hidden files included)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def occupied(folder: Path) -> dict[str, str]:
    """A folder with something already written in it; returns its snapshot."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keep.txt").write_text("written before\n")
    return snapshot(folder)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from neurocnnf.models import fmnist_small
    from neurocnnf.train import save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "cnnf" / "seed0" / "best.safetensors"
    save_model(fmnist_small(iterations=1), path)
    return path


def tampered(checkpoint: Path, out: Path, edit=None, tensors=None, raw: str | None = None
             ) -> Path:
    """A copy of ``checkpoint`` with its metadata edited (``edit(meta)``, or ``raw`` text)
    and/or its tensors replaced."""
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="pt") as handle:
        meta = json.loads(handle.metadata()["neurocnnf"])
    state = load_file(str(checkpoint))
    if edit:
        edit(meta)
    if tensors:
        from neurocnnf.train.checkpoint import tensors_sha256

        state.update(tensors(state))
        meta["tensors_sha256"] = tensors_sha256(state)  # consistent: the values are the test
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata={"neurocnnf": raw if raw is not None else json.dumps(meta)})
    return out


def image_folder(folder: Path, ids: list[str], column: str = "filename", size: int = 8,
                 corrupt: int | None = None) -> Path:
    """A folder of small grey PNGs with a metadata CSV naming them in ``column``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i, _ in enumerate(ids):
        name = f"img{i:04d}.png"
        if i == corrupt:
            (folder / name).write_bytes(b"not a png")
        else:
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(folder / name)
        names.append(name)
    pd.DataFrame({"stimulus_id": ids, column: names}).to_csv(folder / "stimuli.csv", index=False)
    return folder


# ---------------------------------------------------------------- attacks asked for


@pytest.mark.parametrize("real, attacks, message", [
    (True, "FGSM", "unknown attack(s) ['FGSM']; choose from fgsm, pgd, spsa, apgd-ce"),
    (False, "fgsm,bogus", "unknown attack(s) ['bogus']; choose from fgsm"),
    (False, "fgsm,transfer", "the transfer attack needs the plain-CNN twin: pass --twin"),
    (False, ",", "--attacks names no attack; choose from fgsm, pgd"),
])
def test_evaluate_refuses_unknown_or_impossible_attacks(checkpoint, tmp_path, real, attacks,
                                                        message):
    out = tmp_path / "robustness"
    before = occupied(out)
    result = run(real, "evaluate", checkpoint, "--out", out, *FAST_EVAL, "--attacks", attacks)
    refused(result, message, out, before)


# ---------------------------------------------------------------- stimulus sets


def test_naming_columns_are_read_as_text(tmp_path):
    from neurocnnf.stimuli import load_stimuli

    ids = ["001", "002", "1e3", "1", "01"]
    source = image_folder(tmp_path / "src", ids)
    assert load_stimuli(f"folder:{source}").metadata["stimulus_id"].tolist() == ids
    result = invoke("stimuli", f"folder:{source}", "--out", tmp_path / "out", "--no-progress")
    assert result.exit_code == 0, result.output
    written = load_stimuli(f"folder:{tmp_path / 'out'}").metadata
    assert written["stimulus_id"].tolist() == ids
    assert written["source_filename"].tolist() == [f"img{i:04d}.png" for i in range(5)]


def test_stimuli_of_a_folder_with_a_filename_column_and_no_orphans(tmp_path):
    from neurocnnf.stimuli import load_stimuli

    good = image_folder(tmp_path / "good", [f"s{i}" for i in range(3)])
    out = tmp_path / "out"
    result = invoke("stimuli", f"folder:{good}", "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert len(load_stimuli(f"folder:{out}")) == 3
    before = snapshot(out)
    # image 260 (in the second batch of 256) is unreadable: the export fails after writing
    # a batch, and must leave the earlier export as it was
    bad = image_folder(tmp_path / "bad", [f"b{i}" for i in range(261)], corrupt=260)
    result = invoke("stimuli", f"folder:{bad}", "--out", out, "--no-progress")
    assert result.exit_code == 2
    assert "cannot read image" in error_line(result) and "img0260.png" in result.output
    assert snapshot(out) == before


@pytest.mark.data
def test_dataset_subsets_take_exactly_n_balanced_and_empty_csv_is_an_error(tmp_path):
    from neurocnnf.stimuli import load_stimuli

    for n in (5, 15):
        labels = load_stimuli(f"fashion_mnist:test:{n}").metadata["label"]
        assert len(labels) == n and np.bincount(labels).max() - np.bincount(labels).min() <= 1
    for spec, message in [("fashion_mnist:test:0", "n must be in [1, 10000]"),
                          ("fashion_mnist:test:x", "n a positive integer")]:
        out = tmp_path / "zero"
        before = occupied(out)
        result = invoke("stimuli", spec, "--out", out, "--no-progress")
        assert result.exit_code == 2 and message in error_line(result)
        assert snapshot(out) == before
    for text, message in [("", "is empty"), ("stimulus_id,filename\n", "lists no stimuli")]:
        folder = tmp_path / "empty"
        folder.mkdir(exist_ok=True)
        (folder / "stimuli.csv").write_text(text)
        result = invoke("stimuli", f"folder:{folder}", "--out", tmp_path / "e", "--no-progress")
        assert result.exit_code == 2 and message in error_line(result)


@pytest.mark.data
@pytest.mark.parametrize("perturb, message", [
    ("noise=nan", "noise levels [nan] are out of range: noise takes noise sd"),
    ("noise=-0.1", "noise levels [-0.1] are out of range"),
    ("contrast=0.5,2", "contrast levels [2.0] are out of range"),
    ("occlusion=1.5", "occlusion levels [1.5] are out of range"),
    ("blur=1,1.0", "blur level(s) ['1'] given twice"),
    ("noise=0.1,abc", "--perturb noise '0.1,abc': expected comma-separated numbers"),
])
def test_perturbation_levels_are_checked_per_kind(tmp_path, perturb, message):
    out = tmp_path / "out"
    before = occupied(out)
    result = invoke("stimuli", "fashion_mnist:test:10", "--out", out, "--perturb", perturb,
                    "--no-progress")
    refused(result, message, out, before)


def test_16_bit_and_transparent_images_are_read_at_their_range(tmp_path):
    from neurocnnf.stimuli import conversion_note, load_stimuli, render

    deep = (np.linspace(0, 65535, 64).reshape(8, 8)).astype(np.uint16)  # mean 0.5 of range
    Image.fromarray(deep).save(tmp_path / "deep.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red ...
    rgba[:4, :, 3] = 255  # ... opaque in the top half, transparent below
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    pd.DataFrame({"stimulus_id": ["deep", "rgba"], "filename": ["deep.png", "rgba.png"]}
                 ).to_csv(tmp_path / "stimuli.csv", index=False)
    stimuli = load_stimuli(f"folder:{tmp_path}")
    images = render(stimuli, np.arange(2), 3, 8)
    assert images[0].mean().item() == pytest.approx(deep.mean() / 65535, abs=1e-3)
    assert images[1, :, :4].tolist() == torch.tensor([1.0, 0, 0])[:, None, None].expand(
        3, 4, 8).tolist()
    assert torch.allclose(images[1, :, 4:], torch.full((3, 4, 8), 0.5))  # the stated grey
    assert "transparency composited on grey 0.5" in conversion_note(stimuli, 3, 8)


def test_model_input_far_outside_pixel_range_warns_and_float64_is_refused():
    import warnings

    from neurocnnf.models import fmnist_small
    from neurocnnf.models.engine import InputRangeWarning

    model = fmnist_small(iterations=1).eval()
    x = torch.rand(2, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(x)  # in range: silent
    for scale in (255.0, 1e6, 3e38):
        with pytest.warns(InputRangeWarning, match=r"far outside the pixel scale \[0, 1\]"):
            model(x * scale)
    with pytest.raises(TypeError, match="images must be torch.float32 .* got torch.float64"):
        model(x.double())


# ---------------------------------------------------------------- training and evaluation


@pytest.mark.data
@pytest.mark.parametrize("real, override, message", [
    (True, "data.train_limit=0", "data.train_limit must be >= 1 or null, got 0"),
    (False, "data.train_limit=-5", "data.train_limit must be >= 1 or null, got -5"),
    (False, "optim.batch_size=512", "optim.batch_size 512 is larger than the 256 training images"),
    (True, "model.iterations=abc", "model.iterations = 'abc': expected int, got str"),
    (False, "optim.lr=abc", "optim.lr = 'abc': expected float, got str"),
    (False, "optim.batch_size=1.5", "optim.batch_size = 1.5: expected int, got float"),
    (True, "optim.lr=.inf", "optim.lr must be a finite number, got inf"),
    (False, "loss.recon_weight=.nan", "loss.recon_weight must be a finite number, got nan"),
    (False, "optim.momentum=.nan", "optim.momentum must be a finite number, got nan"),
    (False, "optim.weight_decay=.inf", "optim.weight_decay must be a finite number, got inf"),
    (False, "optim.power=-1", "optim.power must be > 0, got -1.0"),
    (False, "seed=-1", "seed must be in [0, 2**32), got -1"),
    (False, "loss.ce_weight=-1", "loss.ce_weight must be >= 0, got -1.0"),
    (False, "optim.momentum=5", "optim.momentum must be in [0, 1), got 5.0"),
    (False, "data.mean=[.nan]", "data.mean must be a finite number, got [nan]"),
    (True, "data.dataset=cifar10", "model.arch fmnist_small takes images of shape (1, 28, 28) "
     "but data.dataset cifar10 holds (3, 32, 32)"),
])
def test_train_refuses_bad_settings_before_training(tmp_path, real, override, message):
    out = tmp_path / "run"
    before = occupied(out)
    result = run(real, "train", "quickstart", "--out", out, *TINY_TRAIN, "--set", override)
    refused(result, message, out, before)


@pytest.mark.parametrize("real, option, message", [
    (True, ["--limit", "-3"], "--limit must be >= 1"),
    (False, ["--limit", "0"], "--limit must be >= 1"),
    (False, ["--test-iterations=-1"], "--test-iterations must be integers >= 0, got [-1]"),
    (False, ["--test-iterations", "1.5"],
     "--test-iterations '1.5': expected comma-separated integers"),
    (False, ["--scorings", "last,mean"], "--scorings must name one or more of last, avg, first"),
])
def test_evaluate_refuses_bad_ranges(checkpoint, tmp_path, real, option, message):
    out = tmp_path / "robustness"
    before = occupied(out)
    result = run(real, "evaluate", checkpoint, "--out", out, *FAST_EVAL, *option)
    refused(result, message, out, before)


@pytest.mark.data
@pytest.mark.slow
def test_tampered_checkpoint_metadata_is_refused(checkpoint, tmp_path):
    from neurocnnf.train import CheckpointError, load_model

    bad_json = tampered(checkpoint, tmp_path / "json.safetensors", raw="{not json")
    result = invoke("info", bad_json)
    assert result.exit_code == 2 and "metadata is not valid JSON" in error_line(result)

    def relabel(meta):
        meta["model"]["arch"] = "fmnist_adv"

    with pytest.raises(CheckpointError, match="labelled 'fmnist_adv' but its layout differs"):
        load_model(tampered(checkpoint, tmp_path / "arch.safetensors", relabel))

    def nan(state):
        return {"body.layers.8.weight": torch.full_like(state["body.layers.8.weight"],
                                                        float("nan"))}

    out = tmp_path / "robustness"
    before = occupied(out)
    result = cli("evaluate", tampered(checkpoint, tmp_path / "nan" / "best.safetensors",
                                      tensors=nan), "--out", out, *FAST_EVAL)
    assert result.returncode == 2
    assert "non-finite (NaN or inf) values in ['body.layers.8.weight']" in error_line(result)
    assert snapshot(out) == before


def test_a_bad_later_checkpoint_fails_evaluate_before_any_attack(checkpoint, tmp_path):
    # every checkpoint is read up front: the first model's attacks do not run (and keep
    # nothing) only to fail on the second file
    from neurocnnf.models import fmnist_small
    from neurocnnf.train import save_model

    twin = tmp_path / "cnn" / "best.safetensors"
    save_model(fmnist_small(iterations=0), twin)
    junk = tmp_path / "junk" / "best.safetensors"
    junk.parent.mkdir()
    junk.write_bytes(b"not a safetensors file")
    out = tmp_path / "robustness"
    before = occupied(out)
    result = invoke("evaluate", checkpoint, junk, "--twin", twin, "--out", out, *FAST_EVAL)
    assert result.exit_code == 2 and str(junk) in error_line(result)
    assert snapshot(out) == before


def test_a_killed_evaluation_resumes_from_the_models_it_finished(checkpoint, tmp_path):
    from neurocnnf.attacks.paired import unpack
    from neurocnnf.models import fmnist_small
    from neurocnnf.train import save_model

    twin = tmp_path / "cnn" / "best.safetensors"
    torch.manual_seed(1)
    save_model(fmnist_small(iterations=0), twin)
    out = tmp_path / "robustness"
    args = ["evaluate", checkpoint, "--twin", twin, "--out", out, "--limit", "100",
            "--attacks", "pgd", "--pgd-steps", "20", "--eps-grid", "0.1", "--scorings", "last",
            "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen([sys.executable, "-m", "neurocnnf.cli", *map(str, args)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / ".partial"
    while job.poll() is None and not any(parts.glob("*.csv")):
        time.sleep(0.02)
    job.kill()  # the twin is done; the CNN-F's attacks (several seconds more) are not
    job.wait()
    kept = list(parts.glob("*.csv"))
    assert len(kept) == 1 and not (out / "results.csv").exists()
    twin_rows = pd.read_csv(kept[0])
    assert set(twin_rows["label"]) == {"CNN"}
    twin_rows.loc[twin_rows["attack"] == "clean", "accuracy"] = 0.123  # marks the kept rows
    twin_rows.to_csv(kept[0], index=False)

    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "resuming: cnn/best was evaluated by an earlier run" in result.output
    results = pd.read_csv(out / "results.csv")
    clean = results[results["attack"] == "clean"].set_index("label")["accuracy"]
    assert clean["CNN"] == 0.123 and clean.drop("CNN").ne(0.123).all()  # the CNN-F's: new
    assert results["label"].nunique() == 2 and not parts.exists()
    # the kept rows' per-image correctness came back through the part: the paired table
    # compares the CNN-F with that twin, image by image, and results.nc holds it as (row, image)
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["twin"]) == {"cnn/best"} and (paired["n"] == 100).all()
    assert "CNN-F minus its twin on the same images" in (out / "paired.md").read_text()
    with xr.open_dataset(out / "results.nc", engine="h5netcdf") as stored:
        assert stored["correct"].dims == ("row", "image") and stored.sizes["image"] == 100
        kept_clean = stored["correct"][(stored["attack"] == "clean").values
                                       & (stored["label"] == "CNN").values]
        assert kept_clean.mean().item() == pytest.approx(twin_rows.loc[
            twin_rows["attack"] == "clean", "correct"].map(lambda t: unpack(t).mean()).iloc[0])


def test_huge_sizes_in_metadata_are_refused_before_allocating(checkpoint, tmp_path):
    def hidden(meta):
        meta["model"]["hidden"] = [20000, 20000]  # 1.6 GB of float32 weights

    path = tampered(checkpoint, tmp_path / "huge.safetensors", hidden)
    # VmHWM: this process's own peak (ru_maxrss would carry over pytest's size across exec)
    code = ("from neurocnnf.train import CheckpointError, load_model\n"
            f"try:\n    load_model({str(path)!r})\nexcept CheckpointError as e:\n"
            "    print(e)\nstatus = open('/proc/self/status').read().split('VmHWM:')[1]\n"
            "print(status.split()[0])\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    message, peak_kib = result.stdout.strip().splitlines()
    assert "layout differs from fmnist_small in ['hidden']" in message
    assert int(peak_kib) < 1_000_000  # far below the 1.6 GB the metadata asks for


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("real, command, device, message", [
    (True, "train", "cuda", "device 'cuda' requested but CUDA is not available on this machine"),
    (False, "extract", "cuda",
     "device 'cuda' requested but CUDA is not available on this machine"),
    (True, "evaluate", "cuda",
     "device 'cuda' requested but CUDA is not available on this machine"),
    (False, "evaluate", "mps", "device 'mps' requested but MPS is not available on this machine"),
    (False, "train", "gpu", "unknown device 'gpu'; use auto, cpu, cuda, cuda:N or mps"),
])
def test_one_device_resolver_with_one_message(checkpoint, tmp_path, real, command, device,
                                              message):
    out = tmp_path / "out"
    before = occupied(out)
    args = {"train": ["train", "quickstart", "--out", out, *TINY_TRAIN[:-3]],
            "extract": ["extract", checkpoint, "--out", out / "a.nc", "--stimuli",
                        "fashion_mnist:test:10", "--no-progress"],
            "evaluate": ["evaluate", checkpoint, "--out", out, *FAST_EVAL]}[command]
    result = run(real, *args, "--device", device)
    refused(result, message, out, before)


@pytest.mark.parametrize("real, command", [(True, "train"), (True, "evaluate"),
                                           (False, "stimuli"), (False, "visualize"),
                                           (False, "data")])
def test_output_folder_under_a_file_fails_before_any_work(checkpoint, tmp_path, real, command):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be\n")
    out = blocker / "out"
    args = {"train": ["train", "quickstart", "--out", out, *TINY_TRAIN],
            # so many attacks that the command would run for hours if it worked first
            "evaluate": ["evaluate", checkpoint, "--out", out, "--limit", "10000",
                         "--attacks", "fgsm,pgd,spsa", "--pgd-steps", "1000", "--no-progress"],
            "stimuli": ["stimuli", "fashion_mnist:test:10", "--out", out, "--no-progress"],
            "visualize": ["visualize", checkpoint, "--out", out],
            "data": ["data", "fashion_mnist", "--out", out / "manifest.json"]}[command]
    result = cli(*args, timeout=120) if real else invoke(*args)
    assert (result.returncode if real else result.exit_code) == 2
    assert "which is a file; give a folder path" in error_line(result)
    assert blocker.read_text() == "a file where a folder should be\n"


def test_output_folder_not_writable_is_refused(checkpoint):
    result = invoke("stimuli", "fashion_mnist:test:10", "--out", "/proc/neurocnnf-test",
                    "--no-progress")
    assert result.exit_code == 2
    assert "output folder /proc/neurocnnf-test is not writable" in error_line(result)


@pytest.mark.data
@pytest.mark.slow
def test_train_does_not_overwrite_a_run_and_resume_names_the_changed_keys(tmp_path):
    out = tmp_path / "run"
    first = cli("train", "quickstart", "--out", out, *TINY_TRAIN)
    assert first.returncode == 0, first.stderr[-2000:]
    before = snapshot(out)
    again = invoke("train", "quickstart", "--out", out, *TINY_TRAIN)
    refused(again, "already holds a run (config.yaml, metrics.jsonl, last.safetensors, "
            "best.safetensors, resume.pt, results.json): use --resume to continue it or "
            "--overwrite to replace it", out, before)
    changed = invoke("train", "quickstart", "--out", out, *TINY_TRAIN, "--resume",
                     "--set", "optim.lr=0.01", "--set", "seed=3")
    refused(changed, "Changed: optim.lr (0.002 -> 0.01), seed (0 -> 3)", out, before)
    replaced = invoke("train", "quickstart", "--out", out, *TINY_TRAIN, "--overwrite",
                      "--set", "seed=3")
    assert replaced.exit_code == 0, replaced.output[-2000:]
    assert "seed: 3" in (out / "config.yaml").read_text()


def test_atomic_writes_keep_the_umask_mode(tmp_path):
    from neurocnnf.io import atomic_write

    previous = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("x"))
        os.umask(0o077)
        atomic_write(tmp_path / "b.txt", lambda tmp: Path(tmp).write_text("x"))
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600


def test_evaluation_memory_is_bounded_whatever_the_batch_size():
    from neurocnnf.attacks import AttackSpec
    from neurocnnf.attacks import evaluate as attacks
    from neurocnnf.models import fmnist_small

    model = fmnist_small(iterations=1)
    sizes = []
    model.register_forward_hook(lambda module, args, output: sizes.append(len(args[0])))
    images, labels = torch.rand(300, 1, 28, 28), torch.randint(0, 10, (300,))
    specs = [AttackSpec("clean"), AttackSpec("fgsm", 0.1, "first")]
    rows = attacks.evaluate(model, images, labels, specs, batch_size=100_000, progress=False)
    assert max(sizes) == attacks.MAX_BATCH and sum(sizes) > 300
    assert rows["n"].tolist() == [300] * 4
    assert len(attacks.predict(model, images)) == 300


def test_masking_report_compares_one_series_per_check(tmp_path):
    from neurocnnf.attacks import AttackSpec
    from neurocnnf.attacks.evaluate import evaluate
    from neurocnnf.attacks.masking import masking_report
    from neurocnnf.models import fmnist_small
    from neurocnnf.pipelines.robustness import unique_names

    runs = [tmp_path / m / "seed0" / "best.safetensors" for m in ("cnnf", "cnn")]
    assert unique_names(runs) == ["cnnf/seed0/best", "cnn/seed0/best"]
    images, labels = torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,))
    specs = [AttackSpec("pgd", 0.1, "first", 1), AttackSpec("pgd", 0.1, "first", 3)]
    # two models that share a name (as the quickstart's seed0/best did): two series
    results = pd.concat([
        evaluate(fmnist_small(iterations=0), images, labels, specs, name="seed0/best",
                 label="CNN", progress=False),
        evaluate(fmnist_small(iterations=2), images, labels, specs, name="seed0/best",
                 label="quickstart", progress=False)])
    steps = [c.detail for c in masking_report(results) if c.name == "more steps never help"]
    assert len(steps) == 3  # CNN last; CNN-F last and avg
    assert all("steps [1, 3] ->" in detail for detail in steps), steps


def test_importing_the_cli_leaves_the_matplotlib_backend_alone():
    """Only the entry point selects Agg: a notebook or script that imports neurocnnf.cli keeps
    its inline figures."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", "import os, neurocnnf.cli; "
                           "print(os.environ.get('MPLBACKEND'))"],
                          capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO)},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"


# ---------------------------------------------------------------- one writer per output (issue 36)


@pytest.mark.parametrize("real, command", [
    (True, ["train", "quickstart", *TINY_TRAIN, "--overwrite", "--set", "seed=3"]),
    (False, ["train", "quickstart", *TINY_TRAIN, "--resume"]),
    (False, ["evaluate", "CHECKPOINT", *FAST_EVAL]),
])
def test_a_second_writer_to_a_run_or_evaluation_folder_fails_naming_the_holder(
        checkpoint, tmp_path, real, command):
    import socket

    from neurocnnf.lock import output_lock

    out = tmp_path / "run"
    occupied(out)
    (out / "config.yaml").write_text("seed: 0\n")  # what --overwrite would delete first
    before = snapshot(out)
    args = [checkpoint if a == "CHECKPOINT" else a for a in command]
    with output_lock(out):  # the first writer, alive (this process)
        result = run(real, *args, "--out", out)
    refused(result, f"{out} is being written by pid {os.getpid()} on host "
            f"{socket.gethostname()}", out, before)


# ---------------------------------------------------------------- extraction options (issue 36)


@pytest.mark.parametrize("option, message", [
    (["--reduce", "pca:0"], "--reduce 'pca:0' must look like pca:K or random:K with K an "
     "integer >= 1"),
    (["--reduce", "pca:abc"], "--reduce 'pca:abc' must look like pca:K or random:K"),
    (["--reduce", "pca:256"], "pca:256 needs at least 256 reference rows (stimuli x "
     "iterations, of the first 500 stimuli); this set gives 8: ask for pca:8 or fewer"),
    (["--batch-size", "0"], "batch size must be an integer >= 1, got 0"),
    (["--batch-size", "-5"], "batch size must be an integer >= 1, got -5"),
    (["--time-start", "nan"], "time bins need finite times (ms), got start nan"),
    (["--layers", "conv1,conv9"], "unknown layer(s) ['conv9']"),
    ("DIRECTORY", "is a folder; a .nc output is one file: give another path"),
])
def test_extract_refuses_bad_options_before_any_work(checkpoint, tmp_path, option, message):
    stimuli = image_folder(tmp_path / "stim", ["a", "b", "c", "d"])
    out = tmp_path / "acts"
    before = occupied(out)
    if option == "DIRECTORY":  # an existing folder named as the .nc file
        (out / "a.nc").mkdir()
        option, before = [], snapshot(out)
    result = invoke("extract", checkpoint, "--out", out / "a.nc", "--stimuli",
                    f"folder:{stimuli}", "--no-progress", *option)
    refused(result, message, out, before)


def test_non_finite_activations_are_refused_before_they_are_written(checkpoint, tmp_path):
    def huge(state):  # finite weights whose activations overflow float32
        return {"body.layers.0.weight": state["body.layers.0.weight"] * 1e38}

    stimuli = image_folder(tmp_path / "stim", ["a", "b", "c", "d"])
    out = tmp_path / "acts"
    occupied(out)
    result = invoke("extract", tampered(checkpoint, tmp_path / "huge" / "best.safetensors",
                                        tensors=huge),
                    "--out", out / "a.zarr", "--stimuli", f"folder:{stimuli}", "--no-progress")
    assert result.exit_code == 2
    line = error_line(result)
    assert "non-finite (NaN or inf) activations in conv2 for " in line
    assert "of 4 images of the batch at presentation 0" in line, line
    assert not (out / "a.zarr").exists()


@pytest.mark.parametrize("where", ["extract", "model call"])
def test_layers_given_as_one_string_are_refused_by_name(where):
    from neurocnnf.activations.extract import resolve_layers
    from neurocnnf.models import fmnist_small

    model = fmnist_small(iterations=1)
    call = {"extract": lambda: resolve_layers(model, "conv1"),
            "model call": lambda: model(torch.rand(1, 1, 28, 28), layers="conv1")}[where]
    with pytest.raises(TypeError, match=r"layers must be a list of names, not the string "
                       r"'conv1' \(write \['conv1'\]\)"):
        call()


def test_small_sets_are_stored_in_chunks_of_their_size(checkpoint, tmp_path):
    from neurocnnf.activations import open_activations

    stimuli = image_folder(tmp_path / "stim", ["a", "b", "c", "d"])
    out = tmp_path / "a.zarr"
    result = invoke("extract", checkpoint, "--out", out, "--stimuli", f"folder:{stimuli}",
                    "--no-progress")
    assert result.exit_code == 0, result.output
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    with open_activations(out) as ds:
        data = sum(v.nbytes for v in ds.data_vars.values())
        assert ds["conv1"].encoding["chunks"][0] == 4
    assert size < 1.5 * data + 2**20, (size, data)  # was 64 images' worth per chunk


# ---------------------------------------------------------------- model calls (issue 36)


@pytest.mark.parametrize("case, message", [
    ("halt on predictive coding", r"the predictive-coding model takes no \['halt'\]: adaptive "
     "halting"),
    ("halt as text", r"halt must be a tolerance >= 0 \(relative logit change\), got '0.1'"),
    ("a function as backbone", r"backbone must be a torch.nn.Module \(images -> logits\), got "
     "function"),
])
def test_model_calls_refuse_what_they_cannot_take_in_one_line(case, message):
    from neurocnnf import from_backbone
    from neurocnnf.models import fmnist_pc, fmnist_small

    x = torch.rand(2, 1, 28, 28)
    call = {"halt on predictive coding": lambda: fmnist_pc(iterations=2)(x, halt=0.05),
            "halt as text": lambda: fmnist_small(iterations=2)(x, halt="0.1"),
            "a function as backbone": lambda: from_backbone(lambda v: v, "conv1", (1, 28, 28)),
            }[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_an_empty_batch_halts_at_once():
    from neurocnnf.models import fmnist_small

    trace = fmnist_small(iterations=2)(torch.rand(0, 1, 28, 28), halt=0.05, max_iterations=8)
    assert trace.halted_at.shape == (0,) and len(trace.logits) == 9
    assert trace.last.shape == (0, 10)


# ---------------------------------------------------------------- image files (issue 36)


def _one_image(folder: Path, name: str, save) -> Path:
    """A folder with one image ``name`` written by ``save(path)`` and a CSV naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    if save is not None:
        save(folder / name)
    pd.DataFrame({"stimulus_id": ["s0"], "filename": [name]}).to_csv(folder / "stimuli.csv",
                                                                     index=False)
    return folder


def _float_tiff(values):
    return lambda path: Image.fromarray(np.asarray(values, np.float32)).save(path)


def _damaged_jpeg(path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 200] = bytes(200)
    path.write_bytes(bytes(data))


def _frames(path: Path) -> None:
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (0, 128, 255)]
    frames[0].save(path, save_all=True, append_images=frames[1:])


def _big_png(path: Path) -> None:
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(path)  # 4096 pixels: a bomb at 1000


@pytest.mark.parametrize("name, save, message", [
    ("bomb.png", _big_png, "exceeds limit of 2000 pixels, could be decompression bomb"),
    (".", None, "1 path(s) listed in"),
    ("../outside.png", None, "1 image path(s) in"),
    ("nan.tif", _float_tiff([[0.5, np.nan], [0.2, 0.1]]), "nan.tif: 1 pixels are NaN or infinite"),
    ("all-nan.tif", _float_tiff(np.full((4, 4), np.nan)), "all-nan.tif: 16 pixels are NaN"),
    ("inf.tif", _float_tiff([[0.5, np.inf], [0.2, 0.1]]), "inf.tif: 1 pixels are NaN or infinite"),
    ("255.tif", _float_tiff([[0, 255.0], [3, 4]]), "255.tif: a float image must hold pixel "
     "values in [0, 1], got [0, 255]"),
    ("damaged.jpg", _damaged_jpeg, "its JPEG data hold a run of 64 or more zero bytes"),
    ("frames.gif", _frames, "frames.gif holds 3 frames (an animation or a stack)"),
    ("frames.tif", _frames, "frames.tif holds 3 frames"),
])
def test_unsafe_or_damaged_image_files_are_refused_in_one_line(tmp_path, monkeypatch, name,
                                                               save, message):
    import PIL.Image

    if name == "bomb.png":  # PIL's limit lowered so that the bomb is small to write
        monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)
    (tmp_path / "outside.png").write_bytes(b"")  # what ../outside.png would have read
    source = _one_image(tmp_path / "src", name, save)
    out = tmp_path / "out"
    before = occupied(out)
    result = invoke("stimuli", f"folder:{source}", "--out", out, "--no-progress")
    refused(result, message, out, before)


def test_float_tiffs_are_read_as_pixel_values(tmp_path):
    from neurocnnf.stimuli import load_stimuli, render

    values = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    source = _one_image(tmp_path / "src", "float.tif", _float_tiff(values))
    image = render(load_stimuli(f"folder:{source}"), np.arange(1), 1, 28)[0, 0]
    assert torch.allclose(image, torch.from_numpy(values), atol=1e-6)  # was black


@pytest.mark.parametrize("shape", [(1, 1), (10, 300)])
def test_tiny_or_oblong_images_warn_once_what_they_lose(tmp_path, shape):
    from neurocnnf.stimuli import load_stimuli, render
    from neurocnnf.stimuli.sets import StimulusSizeWarning

    source = image_folder(tmp_path / "src", ["a"], size=1)
    Image.fromarray(np.zeros(shape, np.uint8)).save(source / "img0000.png")
    with pytest.warns(StimulusSizeWarning, match=r"lose more than 50% of their area to the "
                      r"centre crop, or are enlarged more than 4x"):
        render(load_stimuli(f"folder:{source}"), np.arange(1), 1, 28)


def test_large_images_are_decoded_reduced_to_the_models_size(tmp_path):
    """A 9000 x 9000 PNG costs far less than its 324 MB of float pixels, and a reduced
    decode renders (nearly) what the full one does."""
    from neurocnnf.stimuli import convert
    from neurocnnf.stimuli.sets import _read_image

    ramp = np.add.outer(np.arange(1200), np.arange(1200)) % 256
    Image.fromarray(ramp.astype(np.uint8)).resize((1200, 1200)).save(tmp_path / "ramp.png")
    full = convert(_read_image(tmp_path / "ramp.png"), 1, 28)
    reduced = convert(_read_image(tmp_path / "ramp.png", size=28), 1, 28)
    assert (full - reduced).abs().mean() < 0.01
    Image.fromarray(np.add.outer(np.arange(9000) // 36, np.arange(9000) // 36).astype(np.uint8)
                    ).save(tmp_path / "big.png")
    code = ("import sys\nfrom neurocnnf.stimuli.sets import _read_image\n"
            "def peak():\n    status = open('/proc/self/status').read()\n"
            "    return int(status.split('VmHWM:')[1].split()[0])\n"
            "before = peak()\n_read_image(sys.argv[1], size=28)\nprint(peak() - before)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.png")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 200_000  # KiB: the 81 MB decoded file, not 4 float copies


# ---------------------------------------------------------------- checkpoint contents (issue 36)


def _flip_last_byte(source: Path, out: Path) -> Path:
    data = bytearray(source.read_bytes())
    data[-1] ^= 0x01  # a bit of the last tensor's data
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(data))
    return out


def _reconstruct_at_conv9(meta: dict) -> None:
    meta["model"]["reconstruction_taps"] = ["conv9"]


@pytest.mark.parametrize("case, message", [
    ("flipped byte", "its tensors do not match the checksum in its metadata (tensors_sha256): "
     "the file is damaged or was edited"),
    ("conv9", "cannot rebuild the model (reconstruction taps ['conv9'] are not body taps of "
     "this model ['conv2'])"),
])
def test_damaged_or_inconsistent_checkpoints_are_refused_on_load(checkpoint, tmp_path, case,
                                                                 message):
    path = tmp_path / "bad" / "best.safetensors"
    if case == "flipped byte":
        _flip_last_byte(checkpoint, path)
    else:
        tampered(checkpoint, path, _reconstruct_at_conv9)
    stimuli = image_folder(tmp_path / "stim", ["a", "b"])
    out = tmp_path / "acts"
    before = occupied(out)
    result = invoke("extract", path, "--out", out / "a.nc", "--stimuli", f"folder:{stimuli}",
                    "--no-progress")
    refused(result, message, out, before)


def test_checkpoints_without_a_checksum_still_load(checkpoint, tmp_path):
    from neurocnnf import pretrained
    from neurocnnf.train import load_model, read_metadata

    assert len(read_metadata(checkpoint)["tensors_sha256"]) == 64

    def older(meta):  # as written before the checksum
        del meta["tensors_sha256"]

    model = load_model(tampered(checkpoint, tmp_path / "old.safetensors", older))
    assert model.iterations == 1
    name = "fmnist-small-cnn"  # shipped before the checksum: none; its card's sha256 holds
    assert "tensors_sha256" not in read_metadata(pretrained.path(name))
    assert load_model(f"pretrained:{name}").config["arch"] == pretrained.card(name)["arch"]


# ------------------------------------------------------------ full or read-only disks (issue 36)


def _file_size_limit(limit: int):
    """A subprocess preexec setting RLIMIT_FSIZE (a full disk: writes past it fail with
    EFBIG, 'File too large'), without core dumps."""
    import resource

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


@pytest.mark.parametrize("command, limit", [
    pytest.param("train", 64 << 10, marks=[pytest.mark.data, pytest.mark.slow]),
    pytest.param("evaluate", 16 << 10, marks=pytest.mark.data),
    ("stimuli", 100),
])
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(checkpoint, tmp_path, command,
                                                                 limit):
    out = tmp_path / "out"
    before = occupied(out)
    source = image_folder(tmp_path / "src", ["a", "b"])
    args = {"train": ["train", "quickstart", "--out", out, *TINY_TRAIN],
            "evaluate": ["evaluate", checkpoint, "--out", out, *FAST_EVAL],
            "stimuli": ["stimuli", f"folder:{source}", "--out", out, "--no-progress"]}[command]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "neurocnnf.cli", *map(str, args)],
                            capture_output=True, text=True, env=env, timeout=300,
                            preexec_fn=_file_size_limit(limit))
    assert result.returncode == 2, result.stderr[-3000:]
    line = error_line(result)
    assert f"error: cannot write {out}" in line and "File too large" in line, line
    left = snapshot(out)
    assert not [name for name in left if name.endswith(".tmp") or ".images-" in name], left
    if command == "stimuli":
        assert left == before
    assert not (tmp_path / "out.lock").exists()


@pytest.mark.parametrize("command", ["pretrained export", "brainscore export"])
def test_a_read_only_output_is_refused_in_one_line(checkpoint, command):
    from neurocnnf import pretrained

    args = {"pretrained export": ["pretrained", "export", pretrained.list()[0]],
            "brainscore export": ["brainscore", "export", checkpoint]}[command]
    result = invoke(*args, "/proc/neurocnnf-test")
    assert result.exit_code == 2
    assert "output folder /proc/neurocnnf-test is not writable" in error_line(result)


def test_a_killed_stimulus_export_leaves_nothing_the_next_one_keeps(tmp_path):
    source = image_folder(tmp_path / "src", ["a", "b"])
    out = tmp_path / "out"
    (out / ".images-k1ll3d").mkdir(parents=True)  # what a SIGKILL mid-export leaves
    (out / ".images-k1ll3d" / "000000.png").write_bytes(b"half")
    result = invoke("stimuli", f"folder:{source}", "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["images", "stimuli.csv"]


@pytest.mark.data
@pytest.mark.slow
def test_a_diverging_run_stops_in_one_line_before_saving_non_finite_weights(tmp_path):
    out = tmp_path / "run"
    result = invoke("train", "quickstart", "--out", out, *TINY_TRAIN, "--set",
                    "optim.lr=1.0e+30", "--set", "optim.grad_clip=null")
    assert result.exit_code == 2
    line = error_line(result)
    assert "became" in line and "lower optim.lr or enable optim.grad_clip" in line, line
    assert not (out / "best.safetensors").exists() and not (out / "last.safetensors").exists()
