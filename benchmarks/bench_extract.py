"""Extraction throughput: images/s writing every layer at T = 5 vs a plain forward pass
(logits only, T = 0) on the same model and images, and peak memory for N vs 10 N stimuli.

Run: ``python benchmarks/bench_extract.py [--arch fmnist_small] [--n 512]``. The comparison
with Brain-Score's PytorchWrapper runs where brainscore-vision is installed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from neurocnnf.activations import extract
from neurocnnf.models import build_model
from neurocnnf.stimuli import StimulusSet
from neurocnnf.stimuli.sets import _base_metadata


def stimuli(n: int, shape: tuple[int, int, int]) -> StimulusSet:
    images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    return StimulusSet(f"random{n}", _base_metadata([str(i) for i in range(n)]), images=images)


def throughput(arch: str, n: int, iterations: int, batch: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = build_model(arch).eval()
    stim = stimuli(n, model.input_shape)
    x = stim.images.float() / 255
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n, batch):
            model(x[i:i + batch], iterations=0)
    plain = n / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        extract(model, stim, Path(tmp) / "a.nc", iterations=iterations, batch_size=batch,
                progress=False)
        full = n / (time.perf_counter() - start)
    return plain, full


def peak_mib(arch: str, n: int) -> float:
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r});"
            "import bench_extract as b, resource, tempfile, pathlib;"
            f"d = tempfile.mkdtemp(); b.throughput({arch!r}, {n}, 2, 64);"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="fmnist_small")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    plain, full = throughput(args.arch, args.n, args.iterations, args.batch)
    print(f"{args.arch}: plain forward {plain:.0f} img/s; extraction of all layers at "
          f"T={args.iterations} to NetCDF {full:.0f} img/s; ratio {full / plain:.3f}")
    small, large = peak_mib(args.arch, args.n // 4), peak_mib(args.arch, args.n * 10 // 4)
    print(f"peak RSS: {small:.0f} MiB for {args.n // 4} stimuli, {large:.0f} MiB for "
          f"{args.n * 10 // 4} (ratio {large / small:.2f})")
    try:
        import brainscore_vision  # noqa: F401
    except ImportError:
        print("brainscore-vision not installed: PytorchWrapper comparison skipped "
              "(run this script with .venv-brainscore/bin/python)")
        return
    ours, theirs = versus_pytorch_wrapper(args.arch, args.n // 2, args.iterations, args.batch)
    print(f"same images from PNG files, every layer at every iteration: neurocnnf extract "
          f"{ours:.0f} img/s, Brain-Score PytorchWrapper on the unrolled model {theirs:.0f} "
          f"img/s (ratio {ours / theirs:.2f})")


def versus_pytorch_wrapper(arch: str, n: int, iterations: int, batch: int) -> tuple[float, float]:
    """images/s of our extraction and of Brain-Score's PytorchWrapper on the same PNG files."""
    import pandas as pd
    from PIL import Image

    from neurocnnf.brainscore.commitment import activations_model, configure_environment
    from neurocnnf.brainscore.unrolled import Unrolled
    from neurocnnf.stimuli import from_folder

    torch.manual_seed(0)
    model = build_model(arch).eval()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        configure_environment(folder / "cache")
        os.environ["RESULTCACHING_DISABLE"] = "1"  # time the extraction, not a cache hit
        images = stimuli(n, model.input_shape).images
        for i, image in enumerate(images):
            Image.fromarray(image[0].numpy()).save(folder / f"{i}.png")
        pd.DataFrame({"stimulus_id": [str(i) for i in range(n)],
                      "filename": [f"{i}.png" for i in range(n)]}).to_csv(
            folder / "stimuli.csv", index=False)
        start = time.perf_counter()
        extract(model, from_folder(folder), folder / "a.nc", iterations=iterations,
                batch_size=batch, progress=False)
        ours = n / (time.perf_counter() - start)
        wrapper = activations_model(model, f"bench-{arch}", iterations)
        layers = [name for name in Unrolled(model, iterations).layer_names()
                  if not name.startswith("logits")]
        start = time.perf_counter()
        wrapper([str(folder / f"{i}.png") for i in range(n)], layers=layers)
        theirs = n / (time.perf_counter() - start)
    return ours, theirs


if __name__ == "__main__":
    main()
