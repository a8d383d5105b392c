"""Natural-image training on this machine (issue 30): the CIFAR-10 zoo's training step and the
image-folder loader.

``steps``: images/s of one training step (the real loss, backward, SGD update) of the zoo's
models at their settings (VGG-6 width 48, batch 128): the twin (T = 0), CNN-F (T = 1) and the
predictive-coding comparator (T = 1), measured alternately (A, B, C, A, B, C, ...) so that the
medians share the machine's load; the ratio to the twin, and the epoch time it implies
(45,000 training images).
``loader``: an image folder of N CIFAR-10 JPEGs (unpacked from ``cifar10-jpeg.tar.gz``) read
through ``FolderBatches`` with the zoo's augmentation, in a fresh process per N and worker
count: images/s and the process's peak RSS (memory must not grow with N).
Run: ``python benchmarks/bench_natural.py steps [--repeats 7]``,
``python benchmarks/bench_natural.py loader [--sizes 5000 50000] [--workers 0 2]``.
Prints a Markdown table (benchmarks/README.md keeps the latest).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from neurocnnf.allocator import keep_freed_memory
from neurocnnf.data import data_roots
from neurocnnf.models import build_model
from neurocnnf.train.config import LossConfig
from neurocnnf.train.losses import standard_loss

MODELS = {"twin (vgg6, T=0)": ("vgg6", 0), "CNN-F (vgg6, T=1)": ("vgg6", 1),
          "PC (vgg6_pc, T=1)": ("vgg6_pc", 1)}
TRAIN_IMAGES = 45_000


def steps(repeats: int, batch: int, json_path: Path | None = None) -> None:
    keep_freed_memory()  # as training does
    torch.manual_seed(0)
    x, y = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    runs = {}
    for name, (arch, t) in MODELS.items():
        model = build_model(arch, iterations=t, **({} if arch == "vgg6" else {"eta": None}))
        optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)
        taps = model.reconstruction_taps

        def step(model=model, optimizer=optimizer, taps=taps):
            loss = standard_loss(model(x, layers=taps), y, taps, LossConfig()).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step()  # warm-up
        runs[name] = (step, [])
    for _ in range(repeats):
        for step, times in runs.values():
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    twin = statistics.median(runs["twin (vgg6, T=0)"][1])
    if json_path is not None:
        load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() \
            else "?"
        json_path.write_text(json.dumps({
            "threads": torch.get_num_threads(), "batch": batch, "repeats": repeats,
            "load_1min": load, "models": {name: {"images_per_s": batch / statistics.median(t),
                                                 "step_over_twin": statistics.median(t) / twin}
                                          for name, (_, t) in runs.items()}}, indent=2))
    print(f"threads {torch.get_num_threads()}, batch {batch}, {repeats} alternating repeats "
          "(median)\n")
    print("| model | img/s | step time / twin's | epoch (45k images) |")
    print("|---|---|---|---|")
    for name, (_, times) in runs.items():
        median = statistics.median(times)
        print(f"| {name} | {batch / median:.0f} | {median / twin:.2f} | "
              f"{TRAIN_IMAGES / (batch / median) / 60:.1f} min |")


def _unpack(count: int, out: Path) -> None:
    """The first ``count`` training JPEGs of cifar10-jpeg.tar.gz (all classes) under out/train,
    and 10 test images a class under out/test."""
    archive = next(root / "cifar10-jpeg.tar.gz" for root in data_roots()
                   if (root / "cifar10-jpeg.tar.gz").exists())
    taken = {"train": 0}
    per_test: dict[str, int] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4:
                continue
            split, label = parts[1], parts[2]
            if split == "train" and taken["train"] >= count:
                continue
            if split == "test" and per_test.get(label, 0) >= 10:
                continue
            target = out / split / label / parts[3]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
            if split == "train":
                taken["train"] += 1
            else:
                per_test[label] = per_test.get(label, 0) + 1


def loader_child(folder: str, workers: int) -> None:
    """One pass over the folder's training split; prints JSON (images/s, peak RSS MiB)."""
    from neurocnnf.data.batches import Augment
    from neurocnnf.data.folder import FolderBatches, image_folder

    data = image_folder(folder, "train")
    batches = FolderBatches(data, 128, shuffle=True, augment=Augment(4, True), workers=workers)
    start, seen = time.perf_counter(), 0
    for images, _ in batches.epoch(0):
        seen += len(images)
    elapsed = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"images": seen, "images_per_s": seen / elapsed,
                      "peak_rss_mib": rss / 1024, "worker_peak_rss_mib": children / 1024}))


def loader(sizes: list[int], workers: list[int]) -> None:
    print("| images | workers | img/s | peak RSS (main) | peak RSS (a worker) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            folder = Path(tmp) / str(size)
            _unpack(size, folder)
            for count in workers:
                result = json.loads(subprocess.run(
                    [sys.executable, __file__, "loader-child", str(folder), str(count)],
                    capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
                print(f"| {result['images']} | {count} | {result['images_per_s']:.0f} | "
                      f"{result['peak_rss_mib']:.0f} MiB | "
                      f"{result['worker_peak_rss_mib']:.0f} MiB |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("steps")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    p = sub.add_parser("loader")
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p = sub.add_parser("loader-child")
    p.add_argument("folder")
    p.add_argument("workers", type=int)
    args = parser.parse_args()
    if args.command == "steps":
        steps(args.repeats, args.batch, args.json)
    elif args.command == "loader":
        loader(args.sizes, args.workers)
    else:
        loader_child(args.folder, args.workers)


if __name__ == "__main__":
    main()
