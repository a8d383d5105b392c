"""The CNN-F training step over its plain twin's, as training runs them (``keep_freed_memory()``,
the clean losses, SGD), with CNN-F eager and compiled (the twin eager: compiled it is slower):
for each architecture, fresh processes that alternate the two (eager, compiled, eager, ...),
each timing the twin (T = 0) and CNN-F alternately (``bench_train.step_ratio``), with the FLOP
ratio beside them and whether ``compile: auto`` compiles that CNN-F. Inductor's cache
(``~/.cache/neurocnnf/torchinductor``) is filled by one untimed compiled process per
architecture first, so the timed ones compile from a warm cache.

Run: ``python benchmarks/bench_step_ratio.py [--rounds 3] [--write]``.
"""

from __future__ import annotations

import argparse
import os

import torch
from bench_allocator import medians, run
from bench_cli import publish
from bench_engine import describe_machine

from neurocnnf.train.loop import COMPILE_BREAK_EVEN_STEPS

MARK = "<!-- step-ratio -->"
# (arch, T, batch): every registered architecture at its presets' T (the predictive-coding
# comparators' step is their Predify one), WRN at a smaller batch
SETTINGS = (("vgg6", 1, 128), ("fmnist_small", 5, 128), ("fmnist_adv", 1, 128), ("wrn", 2, 32),
            ("vgg6_pc", 1, 128), ("fmnist_pc", 5, 128))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="steps timed per process")
    parser.add_argument("--archs", nargs="+", help="a subset of the settings' architectures")
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    describe_machine(torch.device("cpu"))
    rows, verdicts = [], {True: [], False: []}
    for arch, iterations, batch in SETTINGS:
        if args.archs and arch not in args.archs:
            continue
        run(arch, iterations, True, batch, 1, True)  # fills inductor's cache, untimed
        results: dict[bool, list[dict]] = {False: [], True: []}
        for _ in range(args.rounds):
            for compiled in (False, True):
                results[compiled].append(run(arch, iterations, True, batch, args.repeats,
                                             compiled))
        m = medians(results)
        spread = {c: f"{min(r['ratio'] for r in results[c]):.2f}-"
                     f"{max(r['ratio'] for r in results[c]):.2f}" for c in (False, True)}
        compiles = ("cpu", arch, iterations) in COMPILE_BREAK_EVEN_STEPS
        auto = "yes" if compiles else "no"
        flop, trained = results[False][0]["flop_ratio"], m[compiles, "ratio"]
        verdicts[trained <= flop].append(
            f"{arch} (T = {iterations}, {'compiled' if compiles else 'eager'} as `compile: auto` "
            f"trains it: {trained:.2f} against {flop:.2f}"
            + ("" if trained <= flop else f", {100 * (trained / flop - 1):.0f} % above") + ")")
        rows.append(f"| {arch}, T = {iterations}, batch {batch} | "
                    f"{results[False][0]['flop_ratio']:.2f} | "
                    f"{m[False, 'ratio']:.2f} ({spread[False]}) | "
                    f"{m[True, 'ratio']:.2f} ({spread[True]}) | "
                    f"{m[False, 'cnnf_s'] / m[True, 'cnnf_s']:.2f} | {auto} |")
        print(rows[-1], flush=True)
    text = (f"Training steps (SGD, the clean losses, training's allocator setting) in fresh "
            f"processes alternating CNN-F eager and compiled (the twin eager in both), "
            f"{args.rounds} rounds of {args.repeats} steps each (medians, range over rounds); "
            f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at the "
            "end (`benchmarks/bench_step_ratio.py --write`). The predictive-coding comparators "
            "(`_pc`) stand in CNN-F's column with their Predify step.\n\n| arch, T | FLOP ratio | "
            "CNN-F step / twin's, eager | CNN-F compiled | CNN-F step speed-up compiled | "
            "`compile: auto` compiles it |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
            + "\n\n- At or below the FLOP ratio as training runs them: "
            + ("; ".join(verdicts[True]) or "none") + ".\n- Above it: "
            + ("; ".join(verdicts[False]) or "none") + ".")
    publish(text, MARK, args.write)


if __name__ == "__main__":
    main()
