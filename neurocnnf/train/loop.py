"""The training loop: standard or adversarial CNN-F training with validation-based selection.

Run folder layout (``out_dir``):
  config.yaml        the validated config of the run
  metrics.jsonl      one JSON line per epoch (train loss/accuracy, validation accuracy, lr, img/s)
  last.safetensors   weights after the latest epoch; resume.pt: optimizer/schedule state
  best.safetensors   weights with the best validation accuracy (never chosen on the test set)
  results.json       the test set, scored once at the end with the best weights
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from neurocnnf.allocator import keep_freed_memory
from neurocnnf.attacks.pgd import logits_fn, pgd
from neurocnnf.data import (
    Augment,
    Batches,
    ImageDataset,
    channel_statistics,
    dataset_digest,
    load_dataset,
    train_val_split,
)
from neurocnnf.data.datasets import IMAGE_SHAPES
from neurocnnf.data.folder import (
    FolderBatches,
    ImageFolder,
    folder_digest,
    folder_statistics,
    image_folder,
)
from neurocnnf.device import bf16_autocast, resolve_device
from neurocnnf.io import atomic_write
from neurocnnf.lock import output_lock
from neurocnnf.models import FeedbackModel, architecture, build_model
from neurocnnf.train.checkpoint import (
    load_resume_state,
    load_weights,
    read_metadata,
    save_model,
    save_resume_state,
)
from neurocnnf.train.config import ConfigError, TrainConfig, save_config
from neurocnnf.train.losses import adversarial_loss, standard_loss

TrainingData = ImageDataset | ImageFolder
SYNC_EVERY = 25  # training steps between reads of the running loss (each waits for the device)
# (device type, architecture, T) -> training steps from which ``compile: auto`` compiles: the
# compilation with a cold cache repaid by faster steps, measured by ``benchmarks/bench_train.py
# --compile --cold`` (2 threads, cores free; its break-even column in benchmarks/README.md,
# "Compile"), for the settings at least 10 % faster compiled (smaller differences change sign
# from run to run). The others train eagerly: the plain twins (T = 0) and FMNIST-small's CNN-F
# are slower compiled, FMNIST-adv's CNN-F and the PC comparators 3-6 % faster. On CUDA (an
# H200, benchmarks/gpu.sh, cache empty) every CNN-F setting measured is faster compiled; its
# break-even is the larger of the clean and adversarial steps' (WRN-40-2: the clean one alone).
COMPILE_BREAK_EVEN_STEPS: dict[tuple[str, str, int], int] = {
    ("cpu", "vgg6", 1): 248,
    ("cuda", "fmnist_adv", 1): 6030,
    ("cuda", "fmnist_small", 5): 2149,
    ("cuda", "vgg6", 1): 5167,
    ("cuda", "wrn", 2): 1861,
}
RUN_FILES = ("config.yaml", "metrics.jsonl", "last.safetensors", "best.safetensors",
             "resume.pt", "results.json")


def config_differences(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every setting that differs between two configs."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out


@dataclass
class Distributed:
    """Rank and world size; world 1 when not started by torchrun."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _slurm_to_torchrun_environment() -> None:
    """`srun --ntasks N` without torchrun: set torchrun's variables from SLURM's task ones.

    Rendezvous on the step's first node, port 20000 + job id mod 20000 (MASTER_ADDR and
    MASTER_PORT, when set, win). Nothing happens under torchrun or outside a multi-task step.
    """
    env = os.environ
    if "WORLD_SIZE" in env or int(env.get("SLURM_STEP_NUM_TASKS", "1")) <= 1:
        return
    if "MASTER_ADDR" not in env:
        nodes = subprocess.run(["scontrol", "show", "hostnames", env["SLURM_STEP_NODELIST"]],
                               capture_output=True, text=True, check=True).stdout.split()
        env["MASTER_ADDR"] = nodes[0]
    env.setdefault("MASTER_PORT", str(20000 + int(env["SLURM_JOB_ID"]) % 20000))
    env.update(WORLD_SIZE=env["SLURM_STEP_NUM_TASKS"], RANK=env["SLURM_PROCID"],
               LOCAL_RANK=env["SLURM_LOCALID"])


def _start_distributed(device: torch.device) -> Distributed:
    _slurm_to_torchrun_environment()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), world)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum) or Adam over the model's parameters, each appearing exactly once."""
    params = list(model.parameters())
    if len({id(p) for p in params}) != len(params):
        raise RuntimeError("a parameter appears twice: weight decay would be applied twice")
    o = config.optim
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.Adam(params, o.lr, weight_decay=o.weight_decay)


def lr_factor(step: int, total: int, schedule: str, power: float = 0.9) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total`` (stepped per batch)."""
    progress = min(step / max(total, 1), 1.0)
    if schedule == "poly":
        return (1.0 - progress) ** power
    if schedule == "cosine":
        return 1e-5 + (1 - 1e-5) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


@torch.no_grad()
def evaluate(model: FeedbackModel, batches: Batches, iterations: int | None = None
             ) -> dict[str, float]:
    """Accuracy of the first, last and averaged logits over ``batches``."""
    model.eval()
    correct = {"first": 0, "last": 0, "avg": 0}
    count = 0
    for images, labels in batches.epoch(0):
        trace = model(images, iterations=iterations)
        for scoring in correct:
            correct[scoring] += int((trace.scored(scoring).argmax(1) == labels).sum())
        count += len(labels)
    return {f"acc_{k}": v / max(count, 1) for k, v in correct.items()}


def normalisation(config: TrainConfig, train_set: ImageDataset) -> dict[str, list[float]]:
    """``{"mean", "std"}`` for an architecture whose builder takes them: ``data.mean/std`` or,
    when null, the training split's per-channel statistics (pixel scale); else ``{}``."""
    build = architecture(config.model.arch).build
    if build is None or not {"mean", "std"} <= set(inspect.signature(build).parameters):
        return {}
    if config.data.mean is not None:
        return {"mean": config.data.mean, "std": config.data.std}
    mean, std = folder_statistics(train_set) if isinstance(train_set, ImageFolder) \
        else channel_statistics(train_set.images)
    return {"mean": mean, "std": std}


def check_input_shape(config: TrainConfig) -> None:
    """ConfigError when the architecture takes images of another (C, H, W) than
    ``data.dataset`` holds; before any data is loaded."""
    d = config.data
    shape = (d.channels, d.image_size, d.image_size) if d.dataset == "folder" \
        else IMAGE_SHAPES.get(d.dataset)
    try:
        takes = build_model(config.model.arch, iterations=0, **config.model.options).input_shape
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model settings: {error}") from None
    if shape is not None and tuple(takes) != shape:
        raise ConfigError(f"model.arch {config.model.arch} takes images of shape "
                          f"{tuple(takes)} but data.dataset {config.data.dataset} holds "
                          f"{shape}: choose a matching architecture or data set")


def prepare_data(config: TrainConfig) -> tuple[TrainingData, TrainingData, TrainingData]:
    """(train, validation, test) datasets; validation is carved from the training split.
    In memory (Fashion-MNIST, CIFAR-10) or an image folder streamed from disk."""
    d = config.data
    if d.dataset == "folder":
        train_full = image_folder(d.root, "train", d.image_size, d.channels)
        test = image_folder(d.root, "test", d.image_size, d.channels)
    else:
        train_full = load_dataset(d.dataset, "train", d.root)
        test = load_dataset(d.dataset, "test", d.root)
    train_idx, val_idx = train_val_split(train_full.labels, d.val_fraction, config.seed)
    if d.train_limit is not None:
        train_idx = train_idx[torch.randperm(len(train_idx), generator=torch.Generator()
                                             .manual_seed(config.seed))[:d.train_limit].numpy()]
        val_idx = val_idx[: max(1, d.train_limit // 5)]
    if d.test_limit is not None:
        test = test.subset(torch.arange(min(d.test_limit, len(test))))
    return train_full.subset(train_idx), train_full.subset(val_idx), test


def make_batches(data: TrainingData, config: TrainConfig, device: torch.device,
                 training: bool = False) -> Batches | FolderBatches:
    """Training batches (shuffled, augmented, last partial batch dropped) or evaluation ones."""
    d = config.data
    augment = Augment(d.augment_pad, d.augment_flip) if training else Augment()
    augment = augment if augment.pad or augment.flip else None
    size = config.optim.batch_size if training else config.eval_batch_size
    if isinstance(data, ImageFolder):
        return FolderBatches(data, size, shuffle=training, augment=augment, seed=config.seed,
                             device=device, drop_last=training, workers=d.workers,
                             min_scale=d.augment_min_scale if training else None)
    return Batches(data, size, shuffle=training, augment=augment, seed=config.seed,
                   device=device, drop_last=training)


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    restart_if_changed: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train a model as ``config`` says; returns the final results (also in results.json).

    resume: continue from ``out_dir/resume.pt`` (same config); the result equals an
    uninterrupted run. stop_after: leave after this many epochs in this call (for time-limited
    jobs; continue with ``resume=True``); the test set is then not scored yet.
    restart_if_changed: when resuming a run folder trained with another config, set its resume
    state aside (``resume.stale.pt``) and start over instead of raising (workflows use this).
    overwrite: without ``resume``, delete a run already in ``out_dir`` and train anew (else
    ConfigError). A second writer to ``out_dir`` (another train, with or without --resume or
    --overwrite) fails at once with LockError naming the holder; a dead holder's lock is taken
    over.
    """
    config.validate()
    check_input_shape(config)
    keep_freed_memory()  # fewer page faults per step (neurocnnf.allocator)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # one writer per run folder (``<out>.lock``, taken before anything in it is touched);
    # under torchrun rank 0 holds it for the job
    _slurm_to_torchrun_environment()  # an srun task knows its rank before taking the lock
    main_rank = os.environ.get("RANK", "0") == "0"
    with output_lock(out) if main_rank else contextlib.nullcontext():
        return _train(config, out, resume, progress, stop_after, restart_if_changed, overwrite)


def _train(config: TrainConfig, out: Path, resume: bool, progress: bool,
           stop_after: int | None, restart_if_changed: bool, overwrite: bool
           ) -> dict[str, Any]:
    """:func:`train`'s body, run while holding the run folder's lock."""
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not resume:
        if not overwrite:
            raise ConfigError(f"{out} already holds a run ({', '.join(existing)}): use --resume "
                              "to continue it or --overwrite to replace it")
        if os.environ.get("RANK", "0") == "0":  # the old run goes as a whole, not file by file
            for name in existing:
                (out / name).unlink(missing_ok=True)
    device = resolve_device(config.device)
    ddp = _start_distributed(device)
    if ddp.world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    out.mkdir(parents=True, exist_ok=True)

    train_set, val_set, test_set = prepare_data(config)
    digest = folder_digest(train_set) if isinstance(train_set, ImageFolder) \
        else dataset_digest(train_set)
    train_batches = make_batches(train_set, config, device, training=True)
    if len(train_batches) == 0:
        raise ConfigError(f"optim.batch_size {config.optim.batch_size} is larger than the "
                          f"{len(train_set)} training images: not one step would be trained "
                          "(lower optim.batch_size or raise data.train_limit)")
    val_batches = make_batches(val_set, config, device)

    torch.manual_seed(config.seed)
    step_size = {} if config.model.eta is None else {"eta": config.model.eta}
    options = {**normalisation(config, train_set), **config.model.options}
    try:
        model = build_model(config.model.arch, iterations=config.model.iterations, **step_size,
                            **options).to(device)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model settings: {error}") from None
    optimizer = make_optimizer(model, config)
    steps_per_epoch = math.ceil(len(train_batches) / ddp.world)
    total_steps = config.optim.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, config.optim.schedule, config.optim.power))

    start_epoch, best_val, history = 0, -1.0, []
    resume_path = out / "resume.pt"
    state = load_resume_state(resume_path) if resume and resume_path.exists() else None
    if state is not None:  # settings added since the run started count at their defaults
        state["config"] = _with_defaults(state["config"])
    if state is not None and state["config"] != config.to_dict():
        if not restart_if_changed:
            changed = ", ".join(f"{key} ({old!r} -> {new!r})" for key, old, new
                                in config_differences(state["config"], config.to_dict()))
            raise ConfigError(f"{out} was trained with a different config; resume needs the "
                              f"same. Changed: {changed}")
        resume_path.replace(out / "resume.stale.pt")
        tqdm.write(f"{out}: the config changed; starting over (old state in resume.stale.pt)")
        state = None
    if state is not None:
        load_weights(model, {k: v.to(device) for k, v in state["model"].items()}, str(resume_path))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_val, history = state["epoch"], state["best_val"], state["history"]
    if ddp.main:
        save_config(config, out / "config.yaml")
        _write_history(out / "metrics.jsonl", history)
    net = nn.parallel.DistributedDataParallel(model) if ddp.world > 1 else model

    end_epoch = config.optim.epochs if stop_after is None else min(
        config.optim.epochs, start_epoch + stop_after)
    compiled = compiles(config, model, device, (end_epoch - start_epoch) * steps_per_epoch)
    for epoch in range(start_epoch, end_epoch):
        torch.manual_seed(config.seed * 1000 + epoch)  # attack noise: same on resume
        stats = _train_epoch(net, model, train_batches, optimizer, scheduler, config, epoch,
                             ddp, device, progress and ddp.main, compiled)
        broken = [name for name, p in model.named_parameters() if not bool(p.isfinite().all())]
        if broken:  # (the loss of the last step was computed before its update)
            raise FloatingPointError(f"the weights became non-finite (NaN or inf) in epoch "
                                     f"{epoch + 1} ({broken[:3]}): lower optim.lr or enable "
                                     "optim.grad_clip; nothing of this epoch was saved")
        val = evaluate(model, val_batches)
        record = {"epoch": epoch + 1, **stats, **{f"val_{k}": v for k, v in val.items()},
                  "lr": scheduler.get_last_lr()[0]}
        history.append(record)
        if ddp.main:
            meta = dict(config=config.to_dict(), epoch=epoch + 1, metrics=record,
                        data_sha256=digest)
            if val["acc_last"] > best_val:
                best_val = val["acc_last"]
                save_model(model, out / "best.safetensors", **meta)
            save_model(model, out / "last.safetensors", **meta)
            save_resume_state(resume_path, dict(
                config=config.to_dict(), model=model.state_dict(),
                optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                epoch=epoch + 1, best_val=best_val, history=history))
            _write_history(out / "metrics.jsonl", history)
            tqdm.write(_summary(record))
            sys.stdout.flush()  # visible in log files too

    finished = end_epoch == config.optim.epochs
    results = _final_test(model, out, test_set, config, device) if ddp.main and finished else {}
    if ddp.world > 1:
        dist.barrier()
    return results


def compiles(config: TrainConfig, model: FeedbackModel, device: torch.device, steps: int
             ) -> bool:
    """Whether this run's training passes are compiled: ``compile: true`` / ``false`` as set;
    ``compile: auto`` when the ``steps`` this process trains reach the break-even measured for
    the device, architecture and T (``COMPILE_BREAK_EVEN_STEPS``)."""
    if config.compile != "auto":
        return bool(config.compile)
    break_even = COMPILE_BREAK_EVEN_STEPS.get((device.type, config.model.arch,
                                               config.model.iterations))
    return hasattr(model, "compiled") and break_even is not None and steps >= break_even


def _train_epoch(net, model: FeedbackModel, batches: Batches, optimizer, scheduler,
                 config: TrainConfig, epoch: int, ddp: Distributed, device: torch.device,
                 progress: bool, compiled: bool) -> dict:
    model.train()
    model.compiled = compiled  # training passes only: evaluation stays eager
    autocast = bf16_autocast(device) if config.bf16 else contextlib.nullcontext()
    attack = logits_fn(model, "first")
    # running sums over images (loss, CE, reconstruction, correct) stay on the device: reading
    # them waits for it, so that happens once every SYNC_EVERY steps, not every step
    sums, seen, step = torch.zeros(4, device=device), 0, 0
    started = time.perf_counter()
    bar = tqdm(batches.epoch(epoch, (ddp.rank, ddp.world)), total=len(batches) // ddp.world,
               desc=f"epoch {epoch + 1}/{config.optim.epochs}", disable=not progress,
               leave=False)
    for step, (images, labels) in enumerate(bar, 1):
        if config.adversarial.enabled:
            model.eval()
            a = config.adversarial
            adv = pgd(attack, images, labels, a.eps, a.step_size, a.steps, random_start=True)
            model.train()
            images_in = torch.cat([images, adv])
        else:
            images_in = images
        with autocast:
            trace = net(images_in, layers=model.reconstruction_taps)
            loss_fn = adversarial_loss if config.adversarial.enabled else standard_loss
            terms = loss_fn(trace, labels, model.reconstruction_taps, config.loss)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        if config.optim.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        optimizer.step()
        scheduler.step()
        n = len(labels)
        correct = (trace.last[:n].argmax(1) == labels).sum()
        sums += torch.stack([terms.total.detach() * n, terms.ce * n, terms.reconstruction * n,
                             correct.float()])
        seen += n
        if step % SYNC_EVERY == 0:
            loss, *_, correct = _read_sums(sums, step, epoch)
            rate = seen / (time.perf_counter() - started)
            bar.set_postfix(loss=f"{loss / seen:.3f}", acc=f"{correct / seen:.3f}",
                            img_s=f"{rate:.0f}")
    model.compiled = False
    loss, ce, reconstruction, correct = (v / max(seen, 1) for v in _read_sums(sums, step, epoch))
    rate = seen * ddp.world / (time.perf_counter() - started)
    return {"train_loss": loss, "train_ce": ce, "train_reconstruction": reconstruction,
            "train_acc": correct, "images_per_s": rate}


def _read_sums(sums: torch.Tensor, step: int, epoch: int) -> list[float]:
    """The running sums as floats (waits for the device); FloatingPointError if the loss is
    no longer finite."""
    values = sums.tolist()
    if not math.isfinite(values[0]):
        raise FloatingPointError(f"the loss became {values[0]} by step {step} of epoch "
                                 f"{epoch + 1}: lower optim.lr or enable optim.grad_clip")
    return values


def _final_test(model: FeedbackModel, out: Path, test_set: TrainingData, config: TrainConfig,
                device: torch.device) -> dict[str, Any]:
    best = out / "best.safetensors"
    load_weights(model, load_file(str(best), device=str(device)), str(best))
    test = evaluate(model, make_batches(test_set, config, device))
    meta = read_metadata(best)
    results = {"name": config.name, "best_epoch": meta["epoch"], "val": meta["metrics"],
               "test": test, "iterations": model.iterations, "checkpoint": str(best)}
    kept = {k: v for k, v in meta.items()
            if k not in ("format", "package_version", "model", "iterations", "eta", "test")}
    save_model(model, best, **kept, test=test)
    atomic_write(out / "results.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(results, indent=2)))
    return results


def _with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config with the settings added to TrainConfig since it was written, at their
    defaults (a run started before them resumes); other keys are kept as they are."""
    fresh = TrainConfig().to_dict()

    def fill(values: dict, defaults: dict) -> dict:
        out = dict(values)
        for key, default in defaults.items():
            if key not in out:
                out[key] = default
            elif isinstance(default, dict) and isinstance(out[key], dict) and key != "options":
                out[key] = fill(out[key], default)
        return out

    return fill(saved, fresh)


def _write_history(path: Path, history: list[dict]) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(
        "".join(json.dumps(r) + "\n" for r in history)))


def _summary(record: dict) -> str:
    return (f"epoch {record['epoch']}: loss {record['train_loss']:.4f} "
            f"train acc {record['train_acc']:.4f} val acc (last) {record['val_acc_last']:.4f} "
            f"{record['images_per_s']:.0f} img/s")
