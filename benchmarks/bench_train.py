"""Training throughput (images/s) of CNN-F with T = 1, 2, 5 and its plain-CNN twin (T = 0).

One optimizer step of the real training loss per measurement (Table 1 losses; ``--adversarial``
adds PGD-7 on the first pass), reported as images/s and as ratios to the twin in the same run,
with the activation memory saved for backward (and CUDA peak memory on a GPU).
Run: ``python benchmarks/bench_train.py [--device cuda] [--batch 128] [--adversarial]``.
"""

from __future__ import annotations

import argparse

import torch
from bench_engine import saved_bytes, timed

from neurocnnf.attacks import logits_fn, pgd
from neurocnnf.models import build_model
from neurocnnf.train.config import LossConfig
from neurocnnf.train.losses import adversarial_loss, standard_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--adversarial", action="store_true")
    parser.add_argument("--archs", nargs="+", default=["fmnist_small", "fmnist_adv", "wrn"])
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, batch {args.batch}, adversarial {args.adversarial}")
    print(f"{'arch':<13}{'T':>3}{'img/s':>9}{'speed vs CNN':>14}{'act MB':>8}{'mem vs CNN':>12}"
          f"{'cuda peak MB':>14}")
    for arch in args.archs:
        results = {}
        for t in (0, 1, 2, 5):
            torch.manual_seed(0)
            model = build_model(arch, iterations=t).to(device)
            optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)
            x = torch.rand(args.batch, *model.input_shape, device=device)
            y = torch.randint(0, 10, (args.batch,), device=device)
            taps = model.reconstruction_taps

            def step(model=model, optimizer=optimizer, x=x, y=y, taps=taps):
                images = x
                if args.adversarial:
                    adv = pgd(logits_fn(model, "first"), x, y, 0.1, 0.0355, 7)
                    images = torch.cat([x, adv])
                trace = model(images, layers=taps)
                loss_fn = adversarial_loss if args.adversarial else standard_loss
                loss = loss_fn(trace, y, taps, LossConfig()).total
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                return loss

            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            seconds = timed(step, args.repeats, device)
            peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0
            mem = saved_bytes(lambda model=model, x=x, taps=taps: model(x, layers=taps).last.sum())
            results[t] = (args.batch / seconds, mem, peak)
            rate0, mem0 = results[0][0], results[0][1]
            rate = args.batch / seconds
            print(f"{arch:<13}{t:>3}{rate:>9.0f}{rate / rate0:>14.2f}"
                  f"{mem / 2**20:>8.1f}{mem / mem0:>12.2f}{peak:>14.0f}")


if __name__ == "__main__":
    main()
