"""Float32 linear maps on this CPU: torch's ``F.linear`` (MKL) against ``neurocnnf.nn.linear``
(oneDNN), in GFLOP/s, for the built-in architectures' fully connected layers and their feedback.

Each product (forward ``x @ W.T`` and the feedback's ``g @ W``, at several batch sizes) is timed
through torch's path, then through ours (medians of ``--repeats`` calls); ``--write`` puts the
table in benchmarks/README.md (``--block``: between other markers). ``--model ARCH``: a whole
model instead, its inference and training step (T = 1, batch 128) with the oneDNN products on
and off, alternating in one process. Run: ``python benchmarks/bench_linear.py [--model
fmnist_adv] [--write] [--block MARK]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from bench_cli import publish
from bench_engine import cpu_name, timed

import neurocnnf.nn.linear as onednn
from neurocnnf.allocator import keep_freed_memory
from neurocnnf.models import build_model
from neurocnnf.nn.linear import MIN_ONEDNN_MACS, linear, linear_transposed

MARK = "linear-rates"
SHAPES = {"fmnist_adv 3136 -> 1000": (3136, 1000), "fmnist_adv 1000 -> 128": (1000, 128),
          "fmnist_small 3136 -> 10": (3136, 10)}
BATCHES = (1, 8, 32, 128)


def rates(in_features: int, out_features: int, batch: int, repeats: int) -> list[float]:
    """GFLOP/s of ``F.linear`` and ``linear`` for the forward product and the feedback's (the
    same where ``linear`` keeps a small product on ``F.linear``)."""
    torch.manual_seed(0)
    weight = torch.randn(out_features, in_features)
    x, g = torch.randn(batch, in_features), torch.randn(batch, out_features)
    gflop = 2 * batch * in_features * out_features / 1e9
    out = []
    with torch.no_grad():
        pairs = ((lambda: F.linear(x, weight), lambda: linear(x, weight)),
                 (lambda: F.linear(g, weight.t()), lambda: linear_transposed(g, weight)))
        for reference, ours in pairs:
            out += [gflop / timed(fn, repeats, torch.device("cpu")) for fn in (reference, ours)]
    return out


def model_ab(arch: str, rounds: int) -> str:
    """Inference and a training step (SGD, cross-entropy) of ``arch`` at T = 1, batch 128,
    with the oneDNN products on and off (``nn.linear.ONEDNN``), alternating: per round the
    best of 3 calls each; the markdown text with the medians over rounds."""
    torch.manual_seed(0)
    model = build_model(arch)
    x, y = torch.rand(128, *model.input_shape), torch.randint(0, 10, (128,))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def infer():
        with torch.no_grad():
            model.eval()(x, iterations=1)

    def step():
        loss = F.cross_entropy(model.train()(x, iterations=1).last, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    available, times = onednn.ONEDNN, {}
    for _ in range(rounds):
        for on in (True, False):
            onednn.ONEDNN = on and available
            for name, fn in (("inference", infer), ("training step", step)):
                fn()  # warm-up
                calls = []
                for _ in range(3):
                    start = time.perf_counter()
                    fn()
                    calls.append(time.perf_counter() - start)
                times.setdefault((name, on), []).append(min(calls))
    onednn.ONEDNN = available
    rows = []
    for name in ("inference", "training step"):
        on, off = (statistics.median(times[(name, flag)]) for flag in (True, False))
        rows.append(f"| {name} | {1e3 * off:.1f} | {1e3 * on:.1f} | {off / on:.2f} |")
    return (f"{arch} (T = 1, batch 128) on {cpu_name()}, {torch.get_num_threads()} threads, "
            f"its linear maps on `F.linear` and on oneDNN, alternating in one process, {rounds} "
            f"rounds (best of 3 calls each, medians); load average {os.getloadavg()[0]:.1f} at "
            f"the end (`benchmarks/bench_linear.py --model {arch} --write`).\n\n"
            "| work | `F.linear` ms | oneDNN ms | oneDNN speed-up |\n|---|---|---|---|\n"
            + "\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--model", help="time this architecture with and without oneDNN")
    parser.add_argument("--rounds", type=int, default=8, help="--model: alternating rounds")
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    parser.add_argument("--block", help="the README's markers to write between")
    args = parser.parse_args()
    keep_freed_memory()
    if args.model:
        block = args.block or f"linear-model-{args.model}"
        publish(model_ab(args.model, args.rounds), f"<!-- {block} -->", args.write)
        return
    rows = []
    for name, (in_features, out_features) in SHAPES.items():
        for batch in BATCHES:
            mkl, onednn, mkl_t, onednn_t = rates(in_features, out_features, batch, args.repeats)
            rows.append(f"| {name} | {batch} | {mkl:.0f} | {onednn:.0f} | {onednn / mkl:.2f} | "
                        f"{mkl_t:.0f} | {onednn_t:.0f} | {onednn_t / mkl_t:.2f} |")
            print(rows[-1], flush=True)
    text = (f"Float32 products on {cpu_name()}, {torch.get_num_threads()} threads, load average "
            f"{os.getloadavg()[0]:.1f} at the end: GFLOP/s, medians of {args.repeats} calls "
            "(`benchmarks/bench_linear.py --write`). Forward: `x @ W.T` (`linear`); feedback: "
            "`g @ W` (`linear_transposed`); both keep products under "
            f"{MIN_ONEDNN_MACS:,} multiply-adds on `F.linear`.\n\n"
            "| layer | batch | forward `F.linear` | forward `linear` | speed-up | "
            "feedback `F.linear` | feedback `linear_transposed` | speed-up |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    publish(text, f"<!-- {args.block or MARK} -->", args.write)


if __name__ == "__main__":
    main()
