"""The allocator setting of training (``neurocnnf.allocator.keep_freed_memory``) against glibc's
defaults: training steps of each architecture's CNN-F and its twin, in fresh processes that
alternate (default, kept, default, kept, ...: the setting is process-wide and one-way), with
the CNN-F step over the twin's and the FLOP ratio beside it.

Run: ``python benchmarks/bench_allocator.py [--rounds 3] [--write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from bench_cli import publish
from bench_engine import describe_machine

SETTINGS = (("vgg6", 1), ("vgg6_pc", 1), ("fmnist_small", 5), ("fmnist_adv", 1))
MARK = "<!-- allocator -->"


def child(arch: str, iterations: int, keep: bool, batch: int, repeats: int,
          compiled: bool = False) -> None:
    """One process: the setting (or not), then bench_train.step_ratio (CNN-F ``compiled`` or
    not); prints its JSON."""
    from bench_train import step_ratio

    from neurocnnf.allocator import keep_freed_memory

    applied = keep_freed_memory() if keep else False
    print(json.dumps({**step_ratio(arch, iterations, batch, repeats, compiled),
                      "applied": applied}))


def medians(results: dict[bool, list[dict]]) -> dict[tuple[bool, str], float]:
    """(setting, key) -> the median over the processes of each setting, for the ratio and the
    twin's and CNN-F's step seconds."""
    return {(setting, key): statistics.median(r[key] for r in results[setting])
            for setting in results for key in ("ratio", "cnnf_s", "twin_s")}


def fresh_process(script: str, *args: str) -> dict:
    """``python script child *args`` in a fresh process; the JSON of its last line."""
    out = subprocess.run([sys.executable, script, "child", *args], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(arch: str, iterations: int, keep: bool, batch: int, repeats: int,
        compiled: bool = False) -> dict:
    """``child`` in a fresh process; its JSON."""
    return fresh_process(__file__, arch, str(iterations), str(int(keep)), str(int(compiled)),
                         "--batch", str(batch), "--repeats", str(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", nargs="?", default="table", choices=["table", "child"])
    parser.add_argument("args", nargs="*", help="child: ARCH T KEEP COMPILED")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="steps timed per process")
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    if args.step == "child":
        arch, iterations, keep, compiled = args.args
        child(arch, int(iterations), keep == "1", args.batch, args.repeats, compiled == "1")
        return
    describe_machine(torch.device("cpu"))
    rows = []
    for arch, iterations in SETTINGS:
        results: dict[bool, list[dict]] = {False: [], True: []}
        for _ in range(args.rounds):
            for keep in (False, True):
                results[keep].append(run(arch, iterations, keep, args.batch, args.repeats))
        if not all(r["applied"] for r in results[True]):
            sys.exit("keep_freed_memory() did not apply here (not glibc on Linux?)")
        m = medians(results)
        rows.append(f"| {arch}, T = {iterations} | {results[False][0]['flop_ratio']:.2f} | "
                    f"{m[False, 'ratio']:.2f} | {m[True, 'ratio']:.2f} | "
                    f"{m[False, 'cnnf_s'] / m[True, 'cnnf_s']:.2f} | "
                    f"{m[False, 'twin_s'] / m[True, 'twin_s']:.2f} |")
        print(rows[-1], flush=True)
    text = (f"Training steps (batch {args.batch}, SGD, the clean losses) in fresh processes "
            f"alternating glibc's defaults and `keep_freed_memory()`, {args.rounds} rounds of "
            f"{args.repeats} steps each (medians); {torch.get_num_threads()} threads, load "
            f"average {os.getloadavg()[0]:.1f} at the end (`benchmarks/bench_allocator.py "
            "--write`).\n\n| arch, T | FLOP ratio | CNN-F step / twin's, defaults | kept | "
            "CNN-F step speed-up | twin step speed-up |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows))
    publish(text, MARK, args.write)


if __name__ == "__main__":
    main()
