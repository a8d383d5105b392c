"""Engine speed and cost relative to the plain CNN, per architecture (ratios from one run).

For each architecture (the CNN-F ones and the predictive-coding comparator ``fmnist_pc``):
forward time per iteration, a full T-iteration forward+backward over the plain CNN's (T = 0),
the analytic FLOP count of that call (torch's FlopCounterMode, which counts convolutions and
matmuls from their shapes), and the activation memory saved for backward. Inference against
its FLOP time is ``bench_inference.py``.
Run: ``python benchmarks/bench_engine.py [--device cuda] [--batch 128] [--archs fmnist_pc]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from neurocnnf.models import build_model


def describe_machine(device: torch.device | None = None) -> None:
    """Print the machine the numbers come from, and warn when it is busy: with more runnable
    tasks than cores, times (not only absolute ones) are distorted several-fold."""
    device = device or torch.device("cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    print(f"machine: {name}, {cores} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {load:.2f}")
    if load > cores:
        print(f"WARNING: load average {load:.1f} exceeds the {cores} cores: other jobs share this "
              "machine and the timings below are unreliable")


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def saved_bytes(fn) -> int:
    """Bytes of tensors autograd saves for backward during ``fn()`` (training activations)."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


# self times: the FLOP work (neurocnnf.nn.linear's products are mkldnn::_linear_pointwise)
FLOP_OPS = ("conv", "aten::mm", "aten::addmm", "aten::bmm", "mkldnn::_linear_pointwise")


def flop_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall seconds of ``fn()`` and of its convolutions and matmuls alone.

    The second is the model's FLOP count at this machine's measured rate for exactly these
    convolutions (the profiler's self time of the conv/matmul kernels per call).
    """
    fn()
    total = timed(fn, repeats, torch.device("cpu"))
    with torch.profiler.profile() as profile:
        for _ in range(repeats):
            fn()
    kernels = sum(event.self_cpu_time_total for event in profile.key_averages()
                  if any(op in event.key for op in FLOP_OPS)) / 1e6 / repeats
    return total, kernels


def measure(arch: str, args: argparse.Namespace, device: torch.device) -> None:
    """Print one row per T for ``arch``; every ratio is over T = 0 in this same run."""
    torch.manual_seed(0)
    model = build_model(arch).to(device)
    x = torch.rand(args.batch, *model.input_shape, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def forward(t):
        with torch.no_grad():
            return model(x, iterations=t).last

    def step(t):
        trace = model(x, iterations=t, layers=model.reconstruction_taps)
        torch.stack([F.cross_entropy(z, y) for z in trace.logits]).mean().backward()

    rows = {}
    for t in [0, *args.iterations]:
        rows[t] = (
            timed(lambda t=t: forward(t), args.repeats, device),
            timed(lambda t=t: step(t), args.repeats, device),
            flops(lambda t=t: step(t)),
            saved_bytes(lambda t=t: model(x, iterations=t).last.sum()),
        )
        fwd, stp, fl, mem = rows[t]
        fwd0, stp0, fl0, mem0 = rows[0]
        print(f"{arch:<13}{t:>3}{fwd * 1e3:>9.1f}{fwd * 1e3 / (t + 1):>12.1f}{fwd / fwd0:>10.2f}"
              f"{stp / stp0:>14.2f}{fl / 1e9:>10.2f}{fl / fl0:>11.2f}{mem / 2**20:>8.1f}"
              f"{mem / mem0:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument("--archs", nargs="+", default=["fmnist_small", "fmnist_pc", "fmnist_adv",
                                                       "wrn"])
    args = parser.parse_args()
    device = torch.device(args.device)
    describe_machine(device)
    print(f"device {device}, batch {args.batch}")
    header = (f"{'arch':<13}{'T':>3}{'fwd ms':>9}{'fwd/iter ms':>12}{'fwd ratio':>10}"
              f"{'fwd+bwd ratio':>14}{'GFLOP f+b':>10}{'FLOP ratio':>11}{'act MB':>8}"
              f"{'mem ratio':>10}")
    print(header)
    for arch in args.archs:
        measure(arch, args, device)


if __name__ == "__main__":
    main()
