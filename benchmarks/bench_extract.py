"""Extraction throughput: images/s writing every layer at T = 5 against a plain forward pass
(logits only, T = 0) and against the same T = 5 forward pass without storage, on the same
model and images; peak memory for N vs 10 N stimuli.

Run: ``python benchmarks/bench_extract.py [--arch fmnist_small] [--n 512] [--dtype float16]
[--compile]``. The comparison with Brain-Score's PytorchWrapper runs where brainscore-vision is
installed (``.venv-brainscore/bin/python``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from bench_cli import publish
from bench_engine import describe_machine

from neurocnnf.activations import extract, resolve_layers, trace_arrays
from neurocnnf.activations.direct import DirectWriter
from neurocnnf.models import build_model
from neurocnnf.stimuli import StimulusSet, render
from neurocnnf.stimuli.sets import _base_metadata


def stimuli(n: int, shape: tuple[int, int, int]) -> StimulusSet:
    images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    return StimulusSet(f"random{n}", _base_metadata([str(i) for i in range(n)]), images=images)


def load_model(arch: str, pretrained: str | None, device: str):
    """The shipped model ``pretrained`` if given, else ``arch`` initialised under seed 0; in
    eval mode on ``device``."""
    torch.manual_seed(0)
    if pretrained:
        from neurocnnf import pretrained as zoo

        return zoo.load(pretrained).eval().to(device)
    return build_model(arch).eval().to(device)


def forward_rate(model, x: torch.Tensor, iterations: int, batch: int, layers=()) -> float:
    """images/s of ``model`` on ``x`` (on the model's device) in batches, no storage."""
    device = next(model.parameters()).device
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            trace = model(x[i:i + batch].to(device), iterations=iterations, layers=layers)
            trace.last.cpu()  # waits for the device; extraction brings everything back likewise
    return len(x) / (time.perf_counter() - start)


def batch_arrays(model, stim: StimulusSet, iterations: int, batch: int, layers=None):
    """Each batch's arrays as a Zarr extraction computes them for ``layers`` (None: every
    layer; rendering, the pass with the mask statistics, the per-iteration arrays on the CPU,
    feedback laid out by iteration), writing nothing."""
    names = resolve_layers(model, layers)
    channels, size = model.input_shape[0], model.input_shape[1]
    device = next(model.parameters()).device
    for first in range(0, len(stim), batch):
        rows = np.arange(first, min(first + batch, len(stim)))
        yield trace_arrays(model, render(stim, rows, channels, size, model).to(device), names,
                           iterations, None, feedback_by_iteration=True)


def compute_only(model, stim: StimulusSet, iterations: int, batch: int, layers=None) -> float:
    """Seconds of ``batch_arrays`` over the whole set."""
    start = time.perf_counter()
    for _ in batch_arrays(model, stim, iterations, batch, layers):
        pass
    return time.perf_counter() - start


def stored(values: np.ndarray) -> list[np.ndarray]:
    """The pieces of an array that a Zarr store writes, one chunk file each, from their own
    memory: a block repeated along the iteration axis (a layer computed once) once, feedback
    (laid out by iteration) one piece per iteration but its all-NaN iteration 0, any other
    array whole."""
    # imported here: bench_commits.py imports this module beside older trees, without it
    from neurocnnf.activations.store import repeated_block

    block = repeated_block(values)
    if block is not None:
        return [block]
    if values.ndim > 2 and np.isnan(values[:, 0]).all():
        return [values[:, t] for t in range(1, values.shape[1])]
    return [values]


def stored_bytes(batches: list[dict[str, np.ndarray]]) -> int:
    """The bytes a Zarr store writes for ``batches`` (``stored``)."""
    return sum(piece.nbytes for arrays in batches for a in arrays.values()
               for piece in stored(a))


def write_alone(batches: list[dict[str, np.ndarray]], folder: Path) -> None:
    """Write the bytes of ``batches`` (variable -> array, as ``trace_arrays`` gives them), one
    file per chunk, with no compute, as a Zarr store writes them (``stored``,
    ``DirectWriter``): what storing them costs at best on this file system."""
    folder.mkdir()
    writer = DirectWriter()
    for index, arrays in enumerate(batches):
        for name, values in arrays.items():
            for piece, data in enumerate(stored(values)):
                writer.write(folder / f"{name}.{index}.{piece}", data, whole=True)


def compute_beside_writes(model, stim: StimulusSet, iterations: int, batch: int,
                          batches: list[dict[str, np.ndarray]], folder: Path) -> float:
    """Seconds of ``compute_only`` while a second thread writes ``batches`` again and again
    (``write_alone``), as an extraction's writer thread does but without pause: what the
    disk's writes cost the pass that runs beside them."""
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            write_alone(batches, folder)
            remove(folder)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        return compute_only(model, stim, iterations, batch)
    finally:
        stop.set()
        writer.join()


def remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def throughput(arch: str, n: int, iterations: int, batch: int, dtype: str = "float32",
               compiled: bool = False, device: str = "cpu", repeats: int = 3,
               pretrained: str | None = None, alone: bool = True
               ) -> tuple[dict[str, list[float]], int]:
    """Seconds for ``n`` images, per repeat, alternating within each repeat: a plain forward
    pass (T = 0), the T-iteration forward pass keeping every layer (no storage), the same work
    as extraction without storage, and ``extract`` of every layer to .zarr and to .nc
    ({kind: [wall seconds per repeat], "<kind> cpu": [the process's CPU seconds]}). ``alone``:
    also the same bytes written with no compute ("write"; the arrays of every batch are held in
    memory for it, so a peak-memory run leaves it out); and the bytes those arrays hold."""
    model = load_model(arch, pretrained, device)
    model.compiled = compiled
    stim = stimuli(n, model.input_shape)
    x = stim.images.float() / 255
    if compiled:  # compile outside the timings (the rates are steady-state)
        forward_rate(model, x[:batch], 0, batch)
        forward_rate(model, x[:batch], iterations, batch, None)
    batches = list(batch_arrays(model, stim, iterations, batch)) if alone else []
    times: dict[str, list[float]] = {}

    def timed(kind: str, work) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        times.setdefault(kind, []).append(time.perf_counter() - wall)
        times.setdefault(f"{kind} cpu", []).append(time.process_time() - cpu)

    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            timed("plain", lambda: forward_rate(model, x, 0, batch))
            timed("forward", lambda: forward_rate(model, x, iterations, batch, None))
            timed("compute", lambda: compute_only(model, stim, iterations, batch))
            if alone:
                timed("write", lambda: write_alone(batches, Path(tmp) / "alone"))
                remove(Path(tmp) / "alone")
                os.sync()
            for suffix in (".zarr", ".nc"):
                out = Path(tmp) / f"a{suffix}"
                timed(suffix, lambda out=out: extract(model, stim, out, iterations=iterations,
                                                      batch_size=batch, progress=False,
                                                      dtype=dtype))
                remove(out)  # each extraction starts from the same page cache and disk state:
                os.sync()  # no dirty pages of an earlier run to write back
    return times, stored_bytes(batches)


def overhead_lines(times: dict[str, list[float]], n: int) -> list[str]:
    """Per format: images/s of each pass, and the extraction's time over the time of the same
    work without storage and over the bare forward pass, in the same repeat (median and range
    over repeats)."""

    def ratio(kind: str, base: str) -> str:
        ratios = sorted(t / b for t, b in zip(times[kind], times[base], strict=True))
        return f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})"

    rate = {kind: f"{n / statistics.median(values):.0f}" for kind, values in times.items()}
    serial = sorted((c + w) / c for c, w in zip(times["compute"], times["write"], strict=True))
    return [f"| {suffix} | {rate['plain']} | {rate['forward']} | {rate['compute']} | "
            f"{rate[suffix]} | {ratio(suffix, 'compute')} | "
            f"{ratio(f'{suffix} cpu', 'compute cpu')} | {ratio(suffix, 'forward')} | "
            f"{statistics.median(serial):.2f} |" for suffix in (".zarr", ".nc")]


def peak_mib(arch: str, n: int) -> float:
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r});"
            "import bench_extract as b, resource;"
            f"b.throughput({arch!r}, {n}, 2, 64, repeats=1, alone=False);"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="fmnist_small")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--compile", action="store_true", help="CNNF.compiled = True")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true",
                        help="put the storage-overhead table into benchmarks/README.md")
    parser.add_argument("--pretrained", default=None,
                        help="a shipped model (e.g. fmnist-small-cnnf5) instead of --arch's")
    parser.add_argument("--wrapper-only", action="store_true",
                        help="only the comparison with Brain-Score's PytorchWrapper")
    parser.add_argument("--block", default="extract-storage",
                        help="the README block the storage-overhead table goes into")
    parser.add_argument("--compile-gain", action="store_true",
                        help="only extraction eager against compiled, alternating")
    parser.add_argument("--layers", nargs="+", help="--compile-gain: these layers only")
    parser.add_argument("--contention", action="store_true",
                        help="only the pass alone against the pass beside continuous writes")
    parser.add_argument("--codecs", action="store_true",
                        help="only lossless codecs on the stored arrays: size and CPU time")
    parser.add_argument("--load", choices=["quiet", "loaded"], default="quiet",
                        help="the wrapper comparison's README block: cores free, or other "
                             "jobs running beside it")
    args = parser.parse_args()
    describe_machine(torch.device(args.device))
    print(f"{args.arch}, {args.n} images, batch {args.batch}, T={args.iterations}, "
          f"dtype {args.dtype}, compiled {args.compile}")
    if args.compile_gain:
        compile_gain(args)
        return
    if args.contention:
        contention(args)
        return
    if args.codecs:
        codecs(args)
        return
    if not args.wrapper_only:
        storage_overhead(args)
    try:
        import brainscore_vision  # noqa: F401
    except ImportError:
        print("brainscore-vision not installed: PytorchWrapper comparison skipped "
              "(run this script with .venv-brainscore/bin/python)")
        return
    rates = versus_pytorch_wrapper(args.arch, args.n // 2, args.iterations, args.batch,
                                   args.dtype, args.repeats)

    def block(wrapped: str, how: str) -> str:
        theirs = rates[wrapped][wrapped]
        return (f"Brain-Score PytorchWrapper {how} {theirs:.1f} img/s, neurocnnf "
                + ", ".join(f"extract to {kind} {rate:.1f} img/s (**{rate / theirs:.2f}x**)"
                            for kind, rate in rates[wrapped].items() if kind.startswith(".")))

    text = (f"{args.n // 2} images from PNG files, {args.arch}, every layer at every iteration "
            f"(T = {args.iterations}), {args.repeats} alternating repeats (medians; outputs "
            f"deleted and the page cache synced between runs), "
            f"{'cores free' if args.load == 'quiet' else 'other jobs running beside it'}, load "
            f"average {os.getloadavg()[0]:.1f}. " + block("wrapper", "keeping the activations "
                                                          "in memory")
            + "; then, in a second block, " + block("wrapper, stored", "storing them "
                                                    "(result_caching, as for an identified "
                                                    "stimulus set)")
            + " (`.venv-brainscore/bin/python benchmarks/bench_extract.py --wrapper-only "
            f"--load {args.load} --write`).")
    publish(text, f"<!-- extract-wrapper-{args.load} -->", args.write)


def storage_overhead(args: argparse.Namespace) -> None:
    """The storage-overhead table (and, unless --skip-memory, peak memory for N vs 10 N)."""
    times, written = throughput(args.arch, args.n, args.iterations, args.batch, args.dtype,
                                args.compile, args.device, args.repeats, args.pretrained)
    mib = written / 2**20
    load = os.getloadavg()[0]
    text = (f"Storage overhead: extraction time over the time of the same work without storage "
            f"(rendering, the T={args.iterations} pass with mask statistics, every layer's "
            f"arrays on the CPU) and over the bare T={args.iterations} forward pass keeping every "
            f"layer; median (range) of {args.repeats} alternating repeats (outputs deleted and "
            f"the page cache synced between runs); "
            f"{args.pretrained or args.arch}, {args.n} images, batch {args.batch}, dtype "
            f"{args.dtype}; load average {load:.1f} at the end. CPU: the process's CPU seconds "
            f"(all threads), less swayed by other jobs than wall time "
            f"(`benchmarks/bench_extract.py{_options(args)} --write`).\n\n"
            "| store | plain forward T=0 img/s | T forward img/s | same work, no storage img/s "
            "| extraction img/s | extraction / no storage | same, CPU | extraction / forward "
            "| no storage + writing alone, over no storage |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(overhead_lines(times, args.n))
            + f"\n\nWriting the bytes of the Zarr store alone ({mib:.0f} MiB: one file per "
            f"chunk, a layer computed once written once, feedback's all-NaN iteration 0 not "
            f"written; no compute): "
            f"{mib / statistics.median(times['write']):.0f} MiB/s. The last "
            "column is the ratio with no overlap at all: storing costs at least this much CPU "
            "and disk beside the computation, whatever thread writes.")
    publish(text, f"<!-- {args.block} -->", args.write)
    if not args.skip_memory:
        small, large = peak_mib(args.arch, args.n // 4), peak_mib(args.arch, args.n * 10 // 4)
        print(f"peak RSS: {small:.0f} MiB for {args.n // 4} stimuli, {large:.0f} MiB for "
              f"{args.n * 10 // 4} (ratio {large / small:.2f})")


def contention(args: argparse.Namespace) -> None:
    """The same work without storage alone and beside a thread that writes its bytes
    continuously (alternating), and the CPU seconds of writing those bytes alone."""
    model = load_model(args.arch, args.pretrained, args.device)
    stim = stimuli(args.n, model.input_shape)
    batches = list(batch_arrays(model, stim, args.iterations, args.batch))
    times: dict[str, list[float]] = {"alone": [], "beside": [], "write": [], "write cpu": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "alone"
        for _ in range(args.repeats):
            times["alone"].append(compute_only(model, stim, args.iterations, args.batch))
            times["beside"].append(compute_beside_writes(model, stim, args.iterations,
                                                         args.batch, batches, folder))
            os.sync()
            wall, cpu = time.perf_counter(), time.process_time()
            write_alone(batches, folder)
            times["write"].append(time.perf_counter() - wall)
            times["write cpu"].append(time.process_time() - cpu)
            remove(folder)
            os.sync()
    median = {kind: statistics.median(values) for kind, values in times.items()}
    ratios = sorted(b / a for a, b in zip(times["alone"], times["beside"], strict=True))
    mib = stored_bytes(batches) / 2**20
    text = (f"The same work without storage ({args.pretrained or args.arch}, {args.n} images, "
            f"T = {args.iterations}, batch {args.batch}) alone: {args.n / median['alone']:.0f} "
            f"img/s; beside a thread writing its bytes ({mib:.0f} MiB) with `O_DIRECT` without "
            f"pause: {args.n / median['beside']:.0f} img/s, **{statistics.median(ratios):.2f}x** "
            f"the time ({ratios[0]:.2f}-{ratios[-1]:.2f}; {args.repeats} alternating repeats, "
            f"load average {os.getloadavg()[0]:.1f} at the end). Writing those bytes alone takes "
            f"{median['write']:.2f} s, of which {median['write cpu']:.2f} s of this process's "
            f"CPU (all threads) (`benchmarks/bench_extract.py --contention{_options(args)} "
            "--write`).")
    publish(text, "<!-- extract-contention -->", args.write)


def test_images(pretrained: str | None, n: int, shape: tuple[int, int, int]) -> StimulusSet:
    """The first ``n`` test images of the dataset ``pretrained`` was trained on (activations of
    real images: their zeros decide how well they compress), or random ones without it."""
    if pretrained is None:
        return stimuli(n, shape)
    from neurocnnf.data.datasets import load_dataset
    from neurocnnf.pretrained import registry

    data = load_dataset(registry.card(pretrained)["data"]["dataset"], "test")
    return StimulusSet(f"{data.name}-test{n}", _base_metadata([str(i) for i in range(n)]),
                       images=data.images[:n])


def codecs(args: argparse.Namespace) -> None:
    """Whether compressing the stored arrays would pay: each lossless codec's size ratio and
    one-thread encoding time on the arrays an extraction stores, against the pass that
    computes them (the same work without storage, on every thread)."""
    import numcodecs
    from numcodecs import LZ4, Blosc, Zlib

    numcodecs.blosc.set_nthreads(1)  # one thread: the other computes
    candidates = {
        "Blosc LZ4, no shuffle": Blosc("lz4", 1, Blosc.NOSHUFFLE),
        "Blosc LZ4, byte shuffle": Blosc("lz4", 1, Blosc.SHUFFLE),
        "Blosc LZ4, bit shuffle": Blosc("lz4", 1, Blosc.BITSHUFFLE),
        "Blosc Zstd level 1, byte shuffle": Blosc("zstd", 1, Blosc.SHUFFLE),
        "LZ4": LZ4(1),
        "zlib level 1 (NetCDF's deflate)": Zlib(1),
    }
    model = load_model(args.arch, args.pretrained, args.device)
    stim = test_images(args.pretrained, args.n, model.input_shape)
    arrays = [np.ascontiguousarray(piece) for batch in batch_arrays(model, stim, args.iterations,
                                                                args.batch)
              for a in batch.values() for piece in stored(a)]
    total = sum(a.nbytes for a in arrays)
    zeros = sum(int(np.count_nonzero(a == 0)) for a in arrays) / sum(a.size for a in arrays)
    times: dict[str, list[float]] = {"pass": [], **{name: [] for name in candidates}}
    sizes = {}
    for _ in range(args.repeats):
        times["pass"].append(compute_only(model, stim, args.iterations, args.batch))
        for name, codec in candidates.items():
            start = time.process_time()
            sizes[name] = sum(len(codec.encode(a)) for a in arrays)
            times[name].append(time.process_time() - start)
    compute = statistics.median(times["pass"])
    rows = [f"| {name} | {total / sizes[name]:.2f} | "
            f"{total / 2**20 / statistics.median(times[name]):.0f} | "
            f"{statistics.median(times[name]):.2f} | "
            f"{statistics.median(times[name]) / compute:.2f} |" for name in candidates]
    text = (f"Lossless codecs on the arrays an extraction stores "
            f"({args.pretrained or args.arch}, the first {args.n} "
            f"{'test images of its dataset' if args.pretrained else 'random images'}, "
            f"T = {args.iterations}, batch {args.batch}: {total / 2**20:.0f} MiB, "
            f"{zeros:.0%} of the values zero), each encoding them on one thread (CPU seconds), "
            f"against the pass that computes them without storage on {torch.get_num_threads()} "
            f"threads: {compute:.2f} s; medians of {args.repeats} alternating repeats, load "
            f"average {os.getloadavg()[0]:.1f} at the end "
            f"(`benchmarks/bench_extract.py --codecs{_options(args)} --write`).\n\n"
            "| codec | size ratio | encode MiB/s | encode CPU s | over the pass's wall time |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows))
    publish(text, "<!-- extract-codecs -->", args.write)


def _options(args: argparse.Namespace) -> str:
    """This run's options that shape its numbers, as given on its command line (defaults
    left out)."""
    given = [("--pretrained", args.pretrained, None), ("--n", args.n, 512),
             ("--iterations", args.iterations, 5), ("--batch", args.batch, 64),
             ("--dtype", args.dtype, "float32"), ("--device", args.device, "cpu"),
             ("--repeats", args.repeats, 3), ("--block", args.block, "extract-storage")]
    flags = [("--compile", args.compile), ("--skip-memory", args.skip_memory)]
    return "".join(f" {name} {value}" for name, value, default in given if value != default) \
        + "".join(f" {name}" for name, on in flags if on)


def compile_gain(args: argparse.Namespace) -> None:
    """Whether ``--compile`` pays for an extraction (of ``--layers``, default every layer): the
    same model eager and compiled, alternating in one process over ``--repeats``, timing the
    work without storage and the extraction to .zarr (the compilation itself is left out: a
    warm-up round first); and, as the ceiling of any gain, the bare T-iteration pass over the
    same images (no layer kept, no mask statistics, no arrays)."""
    model = load_model(args.arch, args.pretrained, args.device)
    stim = stimuli(args.n, model.input_shape)
    x = stim.images.float() / 255
    seconds: dict[tuple[bool, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "a.zarr"
        for repeat in range(args.repeats + 1):  # the first round warms up (and compiles)
            for compiled in (False, True):
                model.compiled = compiled
                bare = args.n / forward_rate(model, x, args.iterations, args.batch)
                if repeat:
                    seconds.setdefault((compiled, "bare"), []).append(bare)
                start = time.perf_counter()
                compute_only(model, stim, args.iterations, args.batch, args.layers)
                middle = time.perf_counter()
                extract(model, stim, out, iterations=args.iterations, batch_size=args.batch,
                        progress=False, dtype=args.dtype, layers=args.layers)
                end = time.perf_counter()
                remove(out)
                os.sync()
                if repeat:
                    seconds.setdefault((compiled, "compute"), []).append(middle - start)
                    seconds.setdefault((compiled, "extract"), []).append(end - middle)
    rate = {key: args.n / statistics.median(values) for key, values in seconds.items()}
    chosen = args.layers or []
    layers = " and ".join(chosen) or "every layer"
    options = (f" --pretrained {args.pretrained}" if args.pretrained else "") + (
        f" --layers {' '.join(chosen)}" if chosen else "")
    rows = [f"| {work} | {rate[False, key]:.0f} | {rate[True, key]:.0f} | "
            f"{rate[True, key] / rate[False, key]:.2f} |"
            for key, work in (("bare", "the bare pass (no layer kept, no statistics)"),
                              ("compute", "same work, no storage"), ("extract", "to .zarr"))]
    text = (f"Extraction eager and compiled, alternating in one process: "
            f"{args.pretrained or args.arch}, {layers} at T = {args.iterations}, {args.n} "
            f"images, batch {args.batch}, {args.repeats} repeats after a warm-up (medians); "
            f"load average {os.getloadavg()[0]:.1f} at the end (`benchmarks/bench_extract.py "
            f"--compile-gain{options} --n {args.n} --write`).\n\n"
            "| work | eager img/s | compiled img/s | compiled speed-up |\n|---|---|---|---|\n"
            + "\n".join(rows))
    mark = "-".join(["extract-compile", args.pretrained or args.arch, *chosen])
    publish(text, f"<!-- {mark} -->", args.write)


def versus_pytorch_wrapper(arch: str, n: int, iterations: int, batch: int,
                           dtype: str = "float32", repeats: int = 3
                           ) -> dict[str, dict[str, float]]:
    """images/s of our extraction (to .zarr and .nc) and of Brain-Score's PytorchWrapper on
    the same PNG files, alternating ``repeats`` times (medians), in two blocks: the wrapper in
    memory (no stimulus identifier, result_caching off), then storing its activations as
    Brain-Score does for an identified stimulus set (result_caching on, its default pickle
    format, a fresh identifier and cache each time): the same work as ours, which stores.
    Between runs (untimed) the outputs are deleted and the page cache synced, so that no run
    pays for an earlier one's writeback. {block: {kind: images/s}}."""
    import pandas as pd
    from PIL import Image

    from neurocnnf.allocator import keep_freed_memory
    from neurocnnf.brainscore.caches import configure_environment
    from neurocnnf.brainscore.unrolled import Unrolled
    from neurocnnf.stimuli import from_folder

    keep_freed_memory()  # as every neurocnnf command does; the wrapper runs under it too
    torch.manual_seed(0)
    model = build_model(arch).eval()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        configure_environment(folder / "cache")
        from neurocnnf.brainscore.commitment import activations_model  # (after the caches)

        os.environ["RESULTCACHING_DISABLE"] = "1"  # time the extraction, not a cache hit
        images = stimuli(n, model.input_shape).images
        for i, image in enumerate(images):
            Image.fromarray(image[0].numpy()).save(folder / f"{i}.png")
        pd.DataFrame({"stimulus_id": [str(i) for i in range(n)],
                      "filename": [f"{i}.png" for i in range(n)]}).to_csv(
            folder / "stimuli.csv", index=False)
        wrapper = activations_model(model, f"bench-{arch}", iterations)
        layers = [name for name in Unrolled(model, iterations).layer_names()
                  if not name.startswith("logits")]
        paths = [str(folder / f"{i}.png") for i in range(n)]
        rates = {}
        for wrapped in ("wrapper", "wrapper, stored"):  # the in-memory block first: the
            # stored pickles (GBs) would slow the runs after them
            times: dict[str, list[float]] = {".zarr": [], ".nc": [], wrapped: []}
            for repeat in range(repeats):  # alternating, so that the medians share the load
                for kind in times:
                    start = time.perf_counter()
                    if kind == "wrapper":
                        wrapper(paths, layers=layers)
                    elif kind == "wrapper, stored":
                        os.environ["RESULTCACHING_DISABLE"] = "0"
                        wrapper(paths, layers=layers, stimuli_identifier=f"bench-{repeat}")
                        os.environ["RESULTCACHING_DISABLE"] = "1"
                    else:
                        extract(model, from_folder(folder), folder / f"a{kind}",
                                iterations=iterations, batch_size=batch, progress=False,
                                dtype=dtype)
                    times[kind].append(time.perf_counter() - start)
                    if kind.startswith("."):
                        remove(folder / f"a{kind}")
                    elif kind == "wrapper, stored":
                        remove(Path(os.environ["RESULTCACHING_HOME"]))
                    os.sync()  # each run starts with no dirty pages from an earlier one
            rates[wrapped] = {kind: n / statistics.median(values)
                              for kind, values in times.items()}
    return rates


if __name__ == "__main__":
    main()
