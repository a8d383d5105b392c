"""Training throughput (images/s) of CNN-F with T = 1, 2, 5 and its plain-CNN twin (T = 0),
and the speed-up of ``torch.compile`` (``CNNF.compiled``) over the eager engine.

One optimizer step of the real training loss per measurement (Table 1 losses; ``--adversarial``
adds PGD-7 on the first pass), reported as images/s and as ratios to the twin in the same run,
with the activation memory saved for backward (and CUDA peak memory on a GPU).
``--compile`` instead times eager steps and steps with a speed lever (``--lever compile``, the
default, ``channels_last`` or ``bf16`` autocast) of the same model alternately (A, B, A, B, ...:
the medians share the machine's load) for the issue-17 settings (FMNIST-adv T = 1 and
FMNIST-small T = 5, batch 128, clean and adversarial), with wall and CPU-time ratios and the
first lever step's time (for compile: the compilation) and the break-even: the number of
steps after which the lever's faster steps have repaid that first step's extra time ("never"
when the lever is not faster).
Run: ``python benchmarks/bench_train.py [--device cuda] [--batch 128] [--adversarial]``,
``python benchmarks/bench_train.py --compile [--lever channels_last|bf16] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time

import torch
from bench_cli import publish
from bench_engine import describe_machine, flops, saved_bytes, timed

from neurocnnf.attacks import logits_fn, pgd
from neurocnnf.models import build_model
from neurocnnf.train.config import LossConfig
from neurocnnf.train.losses import adversarial_loss, standard_loss

COMPILE_SETTINGS = (("fmnist_adv", 1), ("fmnist_small", 5))


def training_step(model, optimizer, x, y, adversarial: bool, grad_clip: float | None = None):
    """One step of the training loop's work (attack, loss, backward, update; the gradient
    norm clipped to ``grad_clip`` when given) as a closure."""
    taps = model.reconstruction_taps
    loss_fn = adversarial_loss if adversarial else standard_loss

    def step():
        images = x
        if adversarial:
            model.eval()
            adv = pgd(logits_fn(model, "first"), x, y, 0.1, 0.0355, 7)
            model.train()
            images = torch.cat([x, adv])
        loss = loss_fn(model(images, layers=taps), y, taps, LossConfig()).total
        optimizer.zero_grad()
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return loss

    return step


def step_ratio(arch: str, iterations: int, batch: int, repeats: int, compiled: bool = False
               ) -> dict[str, float]:
    """The CNN-F training step (T = ``iterations``) over its plain twin's (T = 0), timed
    alternately in this process (twin, CNN-F, twin, ...: the medians share the load), and the
    FLOP ratio of the two steps (convolutions and matmuls, torch's FlopCounterMode).
    ``compiled``: CNN-F's training pass through ``torch.compile`` (compiled before the
    timing), the twin's eager, as ``compile: auto`` trains them (a compiled twin is slower:
    benchmarks/README.md, "Compile")."""
    steps, work = {}, {}
    for t in (0, iterations):
        torch.manual_seed(0)
        model = build_model(arch, iterations=t)
        optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)
        x, y = torch.rand(batch, *model.input_shape), torch.randint(0, 10, (batch,))
        steps[t] = training_step(model, optimizer, x, y, adversarial=False)
        work[t] = flops(steps[t])  # also the warm-up
        if compiled and t > 0:
            model.compiled = True
            steps[t]()  # the compilation
    times: dict[int, list[float]] = {0: [], iterations: []}
    for _ in range(repeats):
        for t, step in steps.items():
            start = time.perf_counter()
            step()
            times[t].append(time.perf_counter() - start)
    twin, cnnf = (statistics.median(times[t]) for t in (0, iterations))
    return {"twin_s": twin, "cnnf_s": cnnf, "ratio": cnnf / twin,
            "flop_ratio": work[iterations] / work[0]}


def throughput(args: argparse.Namespace, device: torch.device) -> None:
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
            step = training_step(model, optimizer, x, y, args.adversarial)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            seconds = timed(step, args.repeats, device)
            peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0
            taps = model.reconstruction_taps
            mem = saved_bytes(lambda model=model, x=x, taps=taps: model(x, layers=taps).last.sum())
            results[t] = (args.batch / seconds, mem, peak)
            rate0, mem0 = results[0][0], results[0][1]
            rate = args.batch / seconds
            print(f"{arch:<13}{t:>3}{rate:>9.0f}{rate / rate0:>14.2f}"
                  f"{mem / 2**20:>8.1f}{mem / mem0:>12.2f}{peak:>14.0f}")


def use_lever(model, lever: str, on: bool) -> None:
    """Switch ``lever`` on or off for ``model``: 'compile' (``CNNF.compiled``) or
    'channels_last' (weights in NHWC; the step's input is converted likewise); 'bf16' acts on
    the step (autocast), not the model."""
    if lever == "compile":
        model.compiled = on
    elif lever == "channels_last":
        model.to(memory_format=torch.channels_last if on else torch.contiguous_format)


def with_autocast(step, device: torch.device):
    """``step`` under the training loop's ``bf16: true`` autocast."""
    from neurocnnf.device import bf16_autocast  # here: bench_commits imports this module
    # under older commits, which lack it

    def autocast_step():
        with bf16_autocast(device):
            return step()
    return autocast_step


def lever_speedup(args: argparse.Namespace, device: torch.device) -> None:
    """Eager vs ``args.lever`` training steps of one model, alternating, with training's
    allocator setting; medians and ratios as a table (``--write``: into benchmarks/README.md)."""
    from neurocnnf.allocator import keep_freed_memory  # (bench_commits: not in older commits)

    keep_freed_memory()
    if args.cold:  # compile with an empty cache: what a first run pays
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    rows = []
    for arch, t in args.settings:
        for adversarial in args.modes:
            torch.manual_seed(0)
            model = build_model(arch, iterations=t).to(device)
            optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)
            x = torch.rand(args.batch, *model.input_shape, device=device)
            y = torch.randint(0, 10, (args.batch,), device=device)
            x_lever = x.contiguous(memory_format=torch.channels_last) \
                if args.lever == "channels_last" else x
            steps = {False: training_step(model, optimizer, x, y, adversarial),
                     True: training_step(model, optimizer, x_lever, y, adversarial)}
            if args.lever == "bf16":
                steps[True] = with_autocast(steps[True], device)
            steps[False]()  # eager warm-up
            use_lever(model, args.lever, True)
            start = time.perf_counter()
            steps[True]()  # compile: compiles the training graph, and the attack's
            first_s = time.perf_counter() - start
            times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for _ in range(args.repeats):
                for on in (False, True):
                    use_lever(model, args.lever, on)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    wall, cpu = time.perf_counter(), time.process_time()
                    steps[on]()
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times[on].append((time.perf_counter() - wall, time.process_time() - cpu))
            eager = [statistics.median(v) for v in zip(*times[False], strict=True)]
            fast = [statistics.median(v) for v in zip(*times[True], strict=True)]
            rows.append(f"| {arch}, T = {t}{', adversarial' if adversarial else ''} | "
                        f"{eager[0]:.3f} | {fast[0]:.3f} | {eager[0] / fast[0]:.2f} | "
                        f"{eager[1] / fast[1]:.2f} | {first_s:.1f} | "
                        f"{break_even(first_s, eager[0], fast[0])} |")
            print(rows[-1], flush=True)
    cache = "empty (cold)" if args.cold else "as left by earlier runs"
    text = (f"Eager and {args.lever} training steps of one model alternating in one process, "
            f"{args.repeats} each (medians), batch {args.batch}, {device.type}, "
            f"{torch.get_num_threads()} threads, training's allocator setting, inductor's cache "
            f"{cache}; load average "
            f"{os.getloadavg()[0]:.1f} at the end (`benchmarks/bench_train.py --compile"
            f"{' --cold' if args.cold else ''} --write`).\n\n"
            f"| setting | eager s | {args.lever} s | speed-up (wall) | speed-up (CPU time) | "
            f"first {args.lever} step s | break-even steps |\n|---|---|---|---|---|---|---|\n"
            + "\n".join(rows))
    publish(text, f"<!-- {args.lever}-speed -->", args.write)


def break_even(first_s: float, eager_s: float, lever_s: float) -> str:
    """Steps after which a lever whose first step took ``first_s`` (compiling) and whose later
    steps take ``lever_s`` has saved that first step's extra time over eager steps of
    ``eager_s``; 'never' when it is not faster."""
    if lever_s >= eager_s:
        return "never"
    return str(math.ceil((first_s - lever_s) / (eager_s - lever_s)))


def _setting(text: str) -> tuple[str, int]:
    arch, _, t = text.partition(":")
    return arch, int(t or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=None, help="64; 128 with --compile")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--adversarial", action="store_true")
    parser.add_argument("--compile", action="store_true",
                        help="time eager against --lever steps instead of the T table")
    parser.add_argument("--lever", choices=["compile", "channels_last", "bf16"], default="compile")
    parser.add_argument("--archs", nargs="+", default=["fmnist_small", "fmnist_adv", "wrn"])
    parser.add_argument("--settings", nargs="+", type=_setting, default=COMPILE_SETTINGS,
                        help="ARCH:T pairs for --compile (default fmnist_adv:1 fmnist_small:5)")
    parser.add_argument("--cold", action="store_true",
                        help="--compile with an empty inductor cache (a fresh folder)")
    parser.add_argument("--write", action="store_true",
                        help="--compile: put the table into benchmarks/README.md")
    parser.add_argument("--modes", nargs="+", choices=["clean", "adversarial"],
                        default=["clean", "adversarial"], help="training modes for --compile")
    args = parser.parse_args()
    args.modes = [mode == "adversarial" for mode in args.modes]
    args.batch = args.batch or (128 if args.compile else 64)
    device = torch.device(args.device)
    describe_machine(device)
    print(f"device {device}, batch {args.batch}, "
          f"adversarial {args.adversarial}" + (f", eager vs {args.lever}" if args.compile else ""))
    if args.compile:
        lever_speedup(args, device)
    else:
        throughput(args, device)


if __name__ == "__main__":
    main()
