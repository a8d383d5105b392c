"""Float32 linear maps on this CPU: torch's ``F.linear`` (MKL) against ``neurocnnf.nn.linear``
(oneDNN), in GFLOP/s, for the built-in architectures' fully connected layers and their feedback.

Each product (forward ``x @ W.T`` and the feedback's ``g @ W``, at several batch sizes) is timed
through torch's path, then through ours (medians of ``--repeats`` calls); ``--write`` puts the
table in benchmarks/README.md. Run: ``python benchmarks/bench_linear.py [--write]``.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F
from bench_cli import publish
from bench_engine import cpu_name, timed

from neurocnnf.allocator import keep_freed_memory
from neurocnnf.nn.linear import MIN_ONEDNN_MACS, linear, linear_transposed

MARK = "<!-- linear-rates -->"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    keep_freed_memory()
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
    publish(text, MARK, args.write)


if __name__ == "__main__":
    main()
