"""AdaPool's pooled sign per call: ``sign(sign(g) + 1/2)`` against ``torch.where(g >= 0, 1, -1)``.

Both give +1 where g >= 0 (-0.0 included) and -1 elsewhere (``tests/test_layers.py``). For each
architecture, the shapes of the feedback g that its AdaPool layers receive at ``--batch`` (read
from one forward pass by hooks); per shape, the median seconds of each form over ``--repeats``
calls, the two alternating. Run: ``python benchmarks/bench_sign.py [--archs fmnist_adv]
[--write]``; ``--write`` puts the table between ``<!-- sign -->`` markers in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from bench_cli import publish

from neurocnnf.models import build_model
from neurocnnf.nn.functional import _sign
from neurocnnf.nn.modules import AdaPool

MARK = "<!-- sign -->"


def pooled_shapes(arch: str, batch: int) -> list[tuple[int, ...]]:
    """The shapes (N, C, h, w) of g at each AdaPool of ``arch``: the shapes of its outputs."""
    model = build_model(arch, iterations=1)
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
             for m in model.modules() if isinstance(m, AdaPool)]
    with torch.no_grad():
        model(torch.rand(batch, *model.input_shape))
    for hook in hooks:
        hook.remove()
    return list(dict.fromkeys(shapes))


def seconds(shape: tuple[int, ...], repeats: int) -> tuple[float, float]:
    """Median seconds per call of the two forms on one random g of ``shape``."""
    g = torch.randn(shape)
    forms = (lambda: _sign(g, torch.float32), lambda: torch.where(g >= 0, 1.0, -1.0))
    times: list[list[float]] = [[], []]
    for _ in range(repeats + 1):
        for form, record in zip(forms, times, strict=True):
            start = time.perf_counter()
            form()
            record.append(time.perf_counter() - start)
    return statistics.median(times[0][1:]), statistics.median(times[1][1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["fmnist_small", "fmnist_adv", "vgg6"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=51)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    lines = [f"Batch {args.batch}, median of {args.repeats} calls, the two forms alternating; "
             f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} "
             "(`benchmarks/bench_sign.py`).", "",
             "| arch | g's shape | sign(sign(g) + 1/2) ms | where(g >= 0, 1, -1) ms | speed-up |",
             "|---|---|---|---|---|"]
    for arch in args.archs:
        for shape in pooled_shapes(arch, args.batch):
            ours, where = seconds(shape, args.repeats)
            lines.append(f"| {arch} | {' x '.join(map(str, shape))} | {ours * 1e3:.2f} | "
                         f"{where * 1e3:.2f} | {where / ours:.1f} |")
    publish("\n".join(lines), MARK, args.write)


if __name__ == "__main__":
    main()
