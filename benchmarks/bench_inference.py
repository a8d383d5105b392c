"""Inference against its FLOP time at this machine's conv peak, per architecture, eager and
compiled, under glibc's allocator defaults and under ``keep_freed_memory()`` (the setting every
``neurocnnf`` command applies).

Each (architecture, setting) runs in a fresh process (the setting is process-wide and one-way),
alternating defaults and kept over ``--rounds``. A process times ``model(x, iterations=T)``
under ``no_grad`` eagerly and compiled, and the convolutions and matmuls alone (profiler self
times): its FLOPs at the rate this machine reaches on them. "At peak" puts the same FLOPs at the
best such rate over every architecture of the run, which is the issue's target (at most 2x).
Run: ``python benchmarks/bench_inference.py [--archs vgg6 fmnist_adv] [--rounds 3] [--write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import torch
from bench_allocator import fresh_process
from bench_cli import publish
from bench_engine import describe_machine, flop_time, flops

MARK = "<!-- inference-bound -->"
ARCHS = ("fmnist_small", "fmnist_adv", "vgg6", "wrn", "vgg6_pc", "fmnist_pc")


def child(arch: str, iterations: int, keep: bool, batch: int, repeats: int) -> None:
    """One process: the allocator setting (or not), then eager and compiled inference of
    ``arch``; prints its JSON (GFLOP, and per path the wall and conv+matmul seconds)."""
    from neurocnnf.allocator import keep_freed_memory
    from neurocnnf.models import build_model

    applied = keep_freed_memory() if keep else False
    torch.manual_seed(0)
    model = build_model(arch).eval()
    x = torch.rand(batch, *model.input_shape)

    def forward():
        with torch.no_grad():
            return model(x, iterations=iterations).last

    result = {"gflop": flops(forward) / 1e9, "applied": applied}
    for compiled in (False, True):
        model.compiled = compiled
        total, kernels = flop_time(forward, repeats)
        result["compiled" if compiled else "eager"] = {"s": total, "flop_s": kernels}
    print(json.dumps(result))


def run(arch: str, iterations: int, keep: bool, batch: int, repeats: int) -> dict:
    """``child`` in a fresh process; its JSON."""
    return fresh_process(__file__, arch, str(iterations), str(int(keep)), "--batch", str(batch),
                         "--repeats", str(repeats))


def table(results: dict[str, dict[bool, list[dict]]], rounds: int, args) -> str:
    """The markdown block: per arch and path, the medians over processes of each setting."""
    def median(arch, keep, path, key):
        return statistics.median(r[path][key] for r in results[arch][keep])

    # the best conv+matmul rate seen anywhere: the machine's peak on this run's convolutions
    peak = max(r["gflop"] / r[path]["flop_s"] for per_arch in results.values()
               for runs in per_arch.values() for r in runs for path in ("eager", "compiled"))
    rows, verdicts = [], {True: [], False: []}
    for arch, per_arch in results.items():
        gflop = per_arch[True][0]["gflop"]
        flop_s = min(median(arch, keep, path, "flop_s") for keep in (False, True)
                     for path in ("eager", "compiled"))
        at_peak_s = gflop / peak  # its FLOPs at the run's best rate
        for path in ("eager", "compiled"):
            default, kept = (median(arch, keep, path, "s") for keep in (False, True))
            at_peak = kept / at_peak_s
            rows.append(f"| {arch} | {path} | {gflop:.2f} | {gflop / flop_s:.0f} | "
                        f"{1e3 * default:.1f} | {1e3 * kept:.1f} | {default / kept:.2f} | "
                        f"{kept / flop_s:.2f} | {at_peak:.2f} |")
            # this path's own convolutions and matmuls (eager: with oneDNN's layout copies)
            kernels = median(arch, True, path, "flop_s") / at_peak_s
            verdicts[at_peak <= 2].append(
                f"{arch} {path} ({at_peak:.2f}: its convolutions and matmuls {kernels:.2f}, "
                f"the rest of the pass {at_peak - kernels:.2f})")
    return (f"Inference (`no_grad`, T = {args.iterations}, batch {args.batch}) in fresh processes "
            f"alternating glibc's allocator defaults and `keep_freed_memory()` (as every "
            f"`neurocnnf` command runs), {rounds} rounds of {args.repeats} calls per path "
            f"(medians); {torch.get_num_threads()} threads, load average "
            f"{os.getloadavg()[0]:.1f} at the end. FLOP time: the convolutions and matmuls "
            f"alone (profiler self times); at peak: the same FLOPs at the best rate of the run, "
            f"{peak:.0f} GFLOP/s (`benchmarks/bench_inference.py --write`).\n\n"
            "| arch | path | GFLOP | conv rate GFLOP/s | ms, glibc defaults | ms, kept | "
            "speed-up kept | kept / its FLOP time | kept / FLOP time at peak |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
            + "\n\nIn units of the FLOP time at peak, kept:\n\n- Within 2x: "
            + ("; ".join(verdicts[True]) or "none") + ".\n- Over 2x: "
            + ("; ".join(verdicts[False]) or "none") + ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", nargs="?", default="table", choices=["table", "child"])
    parser.add_argument("args", nargs="*", help="child: ARCH T KEEP")
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="calls timed per path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    if args.step == "child":
        arch, iterations, keep = args.args
        child(arch, int(iterations), keep == "1", args.batch, args.repeats)
        return
    describe_machine(torch.device("cpu"))
    results: dict[str, dict[bool, list[dict]]] = {}
    for arch in args.archs:
        run(arch, args.iterations, True, args.batch, 1)  # fills inductor's cache, untimed
        results[arch] = {False: [], True: []}
        for _ in range(args.rounds):
            for keep in (False, True):
                results[arch][keep].append(run(arch, args.iterations, keep, args.batch,
                                               args.repeats))
        print(arch, {k: [round(r["eager"]["s"] * 1e3, 1) for r in v]
                     for k, v in results[arch].items()}, flush=True)
    publish(table(results, args.rounds, args), MARK, args.write)


if __name__ == "__main__":
    main()
