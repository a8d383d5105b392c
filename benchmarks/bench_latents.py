"""Latents no feedback pass reads, skipped against kept, alternating in one process.

The engine tells the latent layers that no feedback pass will read (the encoder's unless
decoding, the body's at T = 0; ``engine.encode``) to compute their output alone. Kept: every
latent layer makes its mask or indices as before that change (``encode`` replaced, within this
process, by one that keeps them all). Per architecture, eager: inference (no gradients,
T = ``--iterations``), the CNN-F training step (the clean losses, same T) and its plain twin's
(T = 0), and with ``--compiled`` compiled inference; median seconds of ``--repeats`` calls per
way, the two ways alternating, with the allocator as every ``neurocnnf`` command runs
(``keep_freed_memory``). Every output is bit-identical either way
(``tests/test_performance_paths.py``). Run: ``python benchmarks/bench_latents.py [--archs
fmnist_small] [--compiled] [--write]``; ``--write`` puts the table
between ``<!-- latents -->`` markers in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from bench_cli import publish
from bench_train import training_step

from neurocnnf.allocator import keep_freed_memory
from neurocnnf.models import build_model, engine

MARK = "<!-- latents -->"
SKIPPED = engine.encode


def kept(model, x, state, iterations: int, decode: bool):
    """``engine.encode`` as before the change: every latent layer keeps its latents."""
    state.latents = True
    return model.encoder(x, state)


def calls(arch: str, iterations: int, batch: int, compiled: bool
          ) -> dict[str, Callable[[], object]]:
    """The timed calls of ``arch``: inference, CNN-F's training step, the twin's, and with
    ``compiled`` inference through ``torch.compile`` (each way compiles on its first call)."""
    out = {}
    settings = [("inference", iterations, False), ("CNN-F step", iterations, True),
                ("twin step", 0, True)] + [("compiled inference", iterations, False)] * compiled
    for name, t, train in settings:
        torch.manual_seed(0)
        model = build_model(arch, iterations=t)
        model.compiled = name.startswith("compiled")
        x, y = torch.rand(batch, *model.input_shape), torch.randint(0, 10, (batch,))
        if train:
            optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)
            out[name] = training_step(model, optimizer, x, y, adversarial=False)
        else:
            model.eval()
            out[name] = torch.no_grad()(lambda model=model, x=x: model(x))
    return out


def seconds(call: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median seconds per call with the latents skipped and kept, alternating."""
    times: dict[str, list[float]] = {"skipped": [], "kept": []}
    for _ in range(repeats + 1):  # the first round warms both up (and compiles)
        for way, encode in (("skipped", SKIPPED), ("kept", kept)):
            engine.encode = encode
            start = time.perf_counter()
            call()
            times[way].append(time.perf_counter() - start)
    engine.encode = SKIPPED
    return {way: statistics.median(values[1:]) for way, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["fmnist_small", "fmnist_adv", "vgg6"])
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--compiled", action="store_true",
                        help="also compiled inference (compiles twice per architecture)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    keep_freed_memory()
    rows = []
    for arch in args.archs:
        for name, call in calls(arch, args.iterations, args.batch, args.compiled).items():
            result = seconds(call, args.repeats)
            rows.append(f"| {arch} | {name} | {result['kept'] * 1e3:.1f} | "
                        f"{result['skipped'] * 1e3:.1f} | "
                        f"{result['kept'] / result['skipped']:.2f} |")
            print(rows[-1], flush=True)
    text = (f"Batch {args.batch}, T = {args.iterations} (the twin: T = 0), eager unless the row "
            "says compiled, median of "
            f"{args.repeats} calls per way, the two ways alternating in one process; "
            f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at the "
            f"end (`benchmarks/bench_latents.py{' --compiled' * args.compiled} --write`). "
            "Speed-up: kept over skipped.\n\n"
            "| arch | call | latents kept, ms | skipped, ms | speed-up |\n|---|---|---|---|---|\n"
            + "\n".join(rows))
    publish(text, MARK, args.write)


if __name__ == "__main__":
    main()
