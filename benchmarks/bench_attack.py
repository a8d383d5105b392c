"""PGD-40 evaluation throughput: images/s of a PGD-40 attack (eps 0.1) aimed at the first pass
and end to end through all iterations, then scored on the last logits, per architecture, with
the ratio e2e / first and the peak device memory (CUDA).

Run: ``python benchmarks/bench_attack.py [--device cuda] [--n 256] [--batch 128]
[--archs fmnist_small fmnist_adv wrn]``.
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_engine import describe_machine

from neurocnnf.attacks import logits_fn, pgd
from neurocnnf.models import build_model


def attack_rate(model, x: torch.Tensor, y: torch.Tensor, target: str, batch: int,
                steps: int = 40, eps: float = 0.1) -> float:
    """images/s of PGD-``steps`` on ``target`` plus scoring, over ``x`` in batches."""
    fn = logits_fn(model, target)
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        adv = pgd(fn, x[i:i + batch], y[i:i + batch], eps, 2.5 * eps / steps, steps,
                  generator=torch.Generator().manual_seed(i))  # pgd draws on the CPU
        with torch.no_grad():
            model(adv).last.argmax(1).cpu()
    return len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--archs", nargs="+", default=["fmnist_small", "fmnist_adv"])
    args = parser.parse_args()
    device = torch.device(args.device)
    describe_machine(device)
    print(f"PGD-40 (eps 0.1), {args.n} images, batch {args.batch}, device {device}")
    print(f"{'arch':<13}{'T':>3}{'first img/s':>13}{'e2e img/s':>11}{'e2e/first':>11}"
          f"{'cuda peak MB':>14}")
    for arch in args.archs:
        torch.manual_seed(0)
        model = build_model(arch).eval().to(device)
        x = torch.rand(args.n, *model.input_shape, device=device)
        y = torch.randint(0, model.num_classes, (args.n,), device=device)
        attack_rate(model, x[:args.batch], y[:args.batch], "first", args.batch, steps=2)  # warm
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        first = attack_rate(model, x, y, "first", args.batch)
        e2e = attack_rate(model, x, y, "e2e", args.batch)
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0
        print(f"{arch:<13}{model.iterations:>3}{first:>13.1f}{e2e:>11.1f}{e2e / first:>11.2f}"
              f"{peak:>14.0f}", flush=True)


if __name__ == "__main__":
    main()
