"""Our engine against the authors' reference code (github.com/yjhuangcd/CNNF, MIT licence) on
the architecture both have, FMNIST-adv (4 convs, 3 FCs) as CNN-F with 1 cycle, the reference's
own Fashion-MNIST setting (``run_train_mnist.sh``: ind 2, res 0.1, mse 0.1, clean 0.1, grad
clip 0.5): its adversarial training step (PGD-7 on the first pass, then the clean and
adversarial batch through the cycle with the reconstruction losses, backward, SGD) and
inference through the cycle, timed alternately in one process (reference, ours eager, ours
compiled, reference, ...; medians), then each code in its own fresh processes as its training
script runs it.

The reference is read from a checkout (``git clone https://github.com/yjhuangcd/CNNF``); its
model module imports torchvision, tensorboardX and matplotlib for its training script, which the
model does not use: missing ones are stood in for by empty modules. Its PGD (advertorch's
LinfPGDAttack) is written out below with advertorch's steps (random start, sign steps, the eps
ball and the input range), since advertorch 0.2.3 does not install beside torch 2.

Run: ``python benchmarks/bench_reference.py --reference /path/to/CNNF [--repeats 7] [--rounds 3]
[--write]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_cli import publish
from bench_engine import describe_machine
from bench_train import training_step

from neurocnnf.allocator import keep_freed_memory
from neurocnnf.models import build_model

MARK = "<!-- reference -->"
CODES = ("reference", "ours", "ours, compiled")
KINDS = ("training step", "inference (T = 1)")
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


def workloads(reference_root: Path, batch: int, codes: tuple[str, ...]) -> dict:
    """kind -> code -> a closure running it once, for ``codes`` out of CODES."""
    torch.manual_seed(0)
    x01, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    work: dict[str, dict] = {"training step": {}, "inference (T = 1)": {}}
    if "reference" in codes:
        reference = reference_model(reference_root)
        work["training step"]["reference"] = reference_step(
            reference, torch.optim.SGD(reference.parameters(), 0.05, momentum=0.9), x01 * 2 - 1,
            y)
        work["inference (T = 1)"]["reference"] = reference_inference(reference, x01 * 2 - 1)
    for code in (c for c in codes if c != "reference"):
        model = build_model("fmnist_adv", iterations=CYCLES)
        model.compiled = code == "ours, compiled"
        work["training step"][code] = training_step(
            model, torch.optim.SGD(model.parameters(), 0.05, momentum=0.9), x01, y,
            adversarial=True, grad_clip=0.5)
        work["inference (T = 1)"][code] = ours_inference(model, x01)
    return work


def time_alternately(work: dict, repeats: int) -> dict[tuple[str, str], list[float]]:
    """Seconds per run of each (kind, code), the codes of a kind alternating; two warm-up runs
    each (and the compilation) outside the timings."""
    times: dict[tuple[str, str], list[float]] = {}
    for kind, variants in work.items():
        for run in variants.values():
            run()
            run()
        for _ in range(repeats):
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                times.setdefault((kind, name), []).append(time.perf_counter() - start)
    return times


def rows(medians: dict[tuple[str, str], float]) -> str:
    lines = []
    for (kind, code), median in medians.items():
        base = medians[kind, "reference"]
        lines.append(f"| {kind} | {code} | {1000 * median:.0f} | {base / median:.2f} |")
    return "| work | code | ms | speed-up over the reference |\n|---|---|---|---|\n" + \
        "\n".join(lines)


def child(args: argparse.Namespace) -> None:
    """One process, one code, as its training runs it: ours with the allocator setting that
    ``neurocnnf train`` applies, the reference with glibc's defaults; prints JSON medians."""
    code = " ".join(args.child)
    if code != "reference":
        keep_freed_memory()
    times = time_alternately(workloads(args.reference, args.batch, (code,)), args.repeats)
    print(json.dumps({kind: statistics.median(t) for (kind, _), t in times.items()}))


def in_processes(args: argparse.Namespace) -> str:
    """Fresh processes alternating over the codes, ``args.rounds`` rounds; medians of rounds."""
    runs: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for code in CODES:
            out = subprocess.run(
                [sys.executable, __file__, "--reference", str(args.reference), "--batch",
                 str(args.batch), "--repeats", str(args.repeats), "--child", *code.split()],
                capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
            for kind, seconds in json.loads(out.stdout.strip().splitlines()[-1]).items():
                runs.setdefault((kind, code), []).append(seconds)
    medians = {key: statistics.median(v) for key, v in sorted(runs.items(), key=_in_order)}
    return (f"Each code in its own fresh processes, as its training script runs it (ours with "
            f"`keep_freed_memory()`, which `neurocnnf train` applies; the reference with "
            f"glibc's defaults), alternating, {args.rounds} rounds of {args.repeats} repeats "
            f"(median of the rounds' medians), {torch.get_num_threads()} threads, load average "
            f"{os.getloadavg()[0]:.1f} at the end.\n\n" + rows(medians))


def _in_order(item: tuple[tuple[str, str], list[float]]) -> tuple[int, int]:
    (kind, code), _ = item
    return list(KINDS).index(kind), CODES.index(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True,
                        help="a checkout of github.com/yjhuangcd/CNNF")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of fresh processes")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    describe_machine(torch.device("cpu"))
    times = time_alternately(workloads(args.reference, args.batch, CODES), args.repeats)
    shared = (f"FMNIST-adv CNN-F, 1 cycle, batch {args.batch}. In one process, alternating, "
              f"{args.repeats} repeats (medians), {torch.get_num_threads()} threads, load "
              f"average {os.getloadavg()[0]:.1f} at the end; the allocator at glibc's defaults "
              "for all three:\n\n"
              + rows({key: statistics.median(t) for key, t in times.items()}))
    text = (f"{shared}\n\n{in_processes(args)}\n\n(`benchmarks/bench_reference.py "
            "--reference CNNF --write`)")
    publish(text, MARK, args.write)


if __name__ == "__main__":
    main()
