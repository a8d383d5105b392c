"""Our engine against the authors' reference code (github.com/yjhuangcd/CNNF, MIT licence) on
the architecture both have, FMNIST-adv (4 convs, 3 FCs) as CNN-F with 1 cycle, the reference's
own Fashion-MNIST setting (``run_train_mnist.sh``: ind 2, res 0.1, mse 0.1, clean 0.1, grad
clip 0.5): its adversarial training step (PGD-7 on the first pass, then the clean and
adversarial batch through the cycle with the reconstruction losses, backward, SGD) and
inference through the cycle, timed alternately in one process (reference, ours eager, ours
compiled, reference, ...; medians).

The reference is read from a checkout (``git clone https://github.com/yjhuangcd/CNNF``); its
model module imports torchvision, tensorboardX and matplotlib for its training script, which the
model does not use: missing ones are stood in for by empty modules. Its PGD (advertorch's
LinfPGDAttack) is written out below with advertorch's steps (random start, sign steps, the eps
ball and the input range), since advertorch 0.2.3 does not install beside torch 2.

Run: ``python benchmarks/bench_reference.py --reference /path/to/CNNF [--repeats 7] [--write]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_cli import publish
from bench_engine import describe_machine
from bench_train import training_step

from neurocnnf.models import build_model

MARK = "<!-- reference -->"
CYCLES, RES, MSE, CLEAN = 1, 0.1, 0.1, 0.1  # run_train_mnist.sh
EPS, EPS_ITER, STEPS = 0.2, 0.071, 7  # on the reference's [-1, 1] inputs (0.1 on [0, 1])


def reference_model(root: Path) -> torch.nn.Module:
    """The reference's CNNF (cnnf/model_mnist.py) for Fashion-MNIST as its script builds it."""
    for name in ("torchvision", "tensorboardX", "matplotlib", "matplotlib.pyplot"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    sys.modules["torchvision"].__dict__.setdefault("datasets", types.ModuleType("datasets"))
    sys.modules["torchvision"].__dict__.setdefault("transforms", types.ModuleType("transforms"))
    sys.modules["tensorboardX"].__dict__.setdefault("SummaryWriter", object)
    sys.modules["matplotlib"].__dict__.setdefault("pyplot", sys.modules["matplotlib.pyplot"])
    if not (root / "cnnf" / "model_mnist.py").exists():
        sys.exit(f"{root} is not a checkout of github.com/yjhuangcd/CNNF (no cnnf/model_mnist.py)")
    sys.path.insert(0, str(root))
    return importlib.import_module("cnnf.model_mnist").CNNF(10, ind=2, cycles=CYCLES,
                                                             res_param=RES)


def reference_pgd(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """advertorch's LinfPGDAttack as train.py sets it up (sum CE, random start, clip to
    [-1, 1]) on the first pass, under ctx_noparamgrad_and_eval."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    delta = torch.empty_like(x).uniform_(-EPS, EPS)
    delta = ((x + delta).clamp(-1, 1) - x).requires_grad_(True)
    for _ in range(STEPS):
        model.reset()
        loss = F.cross_entropy(model(x + delta), y, reduction="sum")
        loss.backward()
        with torch.no_grad():
            delta += EPS_ITER * delta.grad.sign()
            delta.clamp_(-EPS, EPS)
            delta.copy_((x + delta).clamp(-1, 1) - x)
        delta.grad.zero_()
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    return (x + delta).detach()


def reference_step(model, optimizer, x: torch.Tensor, y: torch.Tensor):
    """train.py's train_adv body for 'fashion' (cycles 1, clean 'supclean')."""
    def step():
        optimizer.zero_grad()
        model.reset()
        adv = reference_pgd(model, x, y)
        both = torch.cat((x, adv), 0)
        model.reset()
        logits, orig_all, block1_all, block2_all = model(both, first=True, inter=True)
        ff_prev = orig_all
        orig, _ = torch.split(orig_all, len(x))
        block1, _ = torch.split(block1_all, len(x))
        block2, _ = torch.split(block2_all, len(x))
        clean, adversarial = torch.split(logits, len(x))
        loss = (CLEAN * F.cross_entropy(clean, y) + F.cross_entropy(adversarial, y)) / (
            2 * (CYCLES + 1))
        for _ in range(CYCLES):
            recon, block1_recon, block2_recon = model(logits, step="backward", inter_recon=True)
            _, recon_adv = torch.split(recon, len(x))
            _, block1_adv = torch.split(block1_recon, len(x))
            _, block2_adv = torch.split(block2_recon, len(x))
            loss = loss + (F.mse_loss(recon_adv, orig) + F.mse_loss(block1_adv, block1)
                           + F.mse_loss(block2_adv, block2)) * MSE / (3 * CYCLES)
            ff_current = ff_prev + RES * (recon - ff_prev)
            logits = model(ff_current, first=False)
            ff_prev = ff_current
            clean, adversarial = torch.split(logits, len(x))
            loss = loss + (CLEAN * F.cross_entropy(clean, y) + F.cross_entropy(adversarial, y)) / (
                2 * (CYCLES + 1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
    return step


def reference_inference(model, x: torch.Tensor):
    """The reference's run_cycles without its .cuda()."""
    def run():
        with torch.no_grad():
            model.reset()
            output, orig, _, _ = model(x, first=True, inter=True)
            ff_prev = orig
            for _ in range(CYCLES):
                ff_current = ff_prev + RES * (model(output, step="backward") - ff_prev)
                output = model(ff_current, first=False)
                ff_prev = ff_current
        return output
    return run


def ours_inference(model, x: torch.Tensor):
    def run():
        with torch.no_grad():
            return model(x).last
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True,
                        help="a checkout of github.com/yjhuangcd/CNNF")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    describe_machine(torch.device("cpu"))
    torch.manual_seed(0)
    x01, y = torch.rand(args.batch, 1, 28, 28), torch.randint(0, 10, (args.batch,))
    reference = reference_model(args.reference)
    ours, compiled = (build_model("fmnist_adv", iterations=CYCLES) for _ in range(2))
    compiled.load_state_dict(ours.state_dict())
    compiled.compiled = True
    work = {"training step": {
        "reference": reference_step(reference, torch.optim.SGD(reference.parameters(), 0.05,
                                                               momentum=0.9), x01 * 2 - 1, y),
        "ours": training_step(ours, torch.optim.SGD(ours.parameters(), 0.05, momentum=0.9),
                              x01, y, adversarial=True),
        "ours, compiled": training_step(compiled, torch.optim.SGD(
            compiled.parameters(), 0.05, momentum=0.9), x01, y, adversarial=True)},
        "inference (T = 1)": {"reference": reference_inference(reference, x01 * 2 - 1),
                              "ours": ours_inference(ours, x01),
                              "ours, compiled": ours_inference(compiled, x01)}}
    times: dict[tuple[str, str], list[float]] = {}
    for kind, variants in work.items():
        for run in variants.values():  # warm-up (and the compilation) outside the timings
            run()
            run()
        for _ in range(args.repeats):
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                times.setdefault((kind, name), []).append(time.perf_counter() - start)
    rows = []
    for kind, variants in work.items():
        base = statistics.median(times[kind, "reference"])
        for name in variants:
            median = statistics.median(times[kind, name])
            rows.append(f"| {kind} | {name} | {1000 * median:.0f} | {base / median:.2f} |")
    text = (f"FMNIST-adv CNN-F, 1 cycle, batch {args.batch}, {args.repeats} alternating repeats "
            f"(medians), {torch.get_num_threads()} threads, load average "
            f"{os.getloadavg()[0]:.1f} at the end; the allocator at glibc's defaults for all "
            "three (`benchmarks/bench_reference.py --reference CNNF --write`).\n\n"
            "| work | code | ms | speed-up over the reference |\n|---|---|---|---|\n"
            + "\n".join(rows))
    publish(text, MARK, args.write)


if __name__ == "__main__":
    main()
