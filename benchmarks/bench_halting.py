"""Adaptive halting versus a fixed number of iterations: a speed-accuracy curve per noise level.

For a trained CNN-F (default: the quickstart run) and FMNIST test images with Gaussian pixel
noise of several levels, prints one row per setting: fixed T = 0..T_max (every image runs T
iterations) and halting with tolerance tol (``model(x, halt=tol, max_iterations=T_max)``):
accuracy, mean iterations per image and body passes per image (counted on the model, exact).
Then, per tolerance, the median wall time per batch of the fixed T_max run and of the halting
run, timed back to back on the same batches.
Run: ``python benchmarks/bench_halting.py [--model /tmp/halt-model] [--n 1000]``.
"""

from __future__ import annotations

import argparse
import time

import torch

import neurocnnf
from neurocnnf.data import load_dataset
from neurocnnf.stimuli.perturb import apply


def noisy(images: torch.Tensor, level: float, seed: int = 0) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float in [0, 1] with the package's per-image Gaussian noise."""
    x = images.float() / 255
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([apply(image, "noise", level, generator) for image in x])


def run(model, x: torch.Tensor, labels: torch.Tensor, batch: int, **kwargs) -> dict:
    """Accuracy, mean iterations and body passes per image (counted by a hook, exact)."""
    passes = []
    hook = model.body.register_forward_hook(lambda m, a, o: passes.append(a[0].shape[0]))
    correct, iterations = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(x), batch):
            trace = model(x[start:start + batch], **kwargs)
            correct += int((trace.last.argmax(1) == labels[start:start + batch]).sum())
            steps = trace.halted_at if trace.halted_at is not None else torch.full(
                (len(trace.last),), trace.iterations)
            iterations += float(steps.sum())
    hook.remove()
    return {"accuracy": correct / len(x), "iterations": iterations / len(x),
            "passes": sum(passes) / len(x)}


def seconds_per_batch(model, x: torch.Tensor, batch: int, repeats: int, t_max: int,
                      tolerance: float) -> tuple[float, float]:
    """Median seconds per batch of the fixed T_max run and of the halting run, timed back to
    back on the same batch (so that load from other jobs hits both alike)."""
    fixed, halting = [], []
    with torch.no_grad():
        for _ in range(repeats):
            for start in range(0, len(x), batch):
                images = x[start:start + batch]
                for times, kwargs in ((fixed, {"iterations": t_max}),
                                      (halting, {"halt": tolerance, "max_iterations": t_max})):
                    began = time.perf_counter()
                    model(images, **kwargs)
                    times.append(time.perf_counter() - began)
    return sorted(fixed)[len(fixed) // 2], sorted(halting)[len(halting) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="/tmp/halt-model")
    parser.add_argument("--n", type=int, default=1000, help="test images")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--max-iterations", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats per batch")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6])
    parser.add_argument("--tolerances", type=float, nargs="+",
                        default=[0.02, 0.05, 0.1, 0.2, 0.5])
    args = parser.parse_args()
    model = neurocnnf.load(args.model).eval()
    test = load_dataset("fashion_mnist", "test")
    images, labels = test.images[:args.n], test.labels[:args.n]
    t_max = args.max_iterations
    print(f"model {args.model} (trained with T = {model.iterations}), {args.n} test images, "
          f"batch {args.batch}, T_max = {t_max}, {torch.get_num_threads()} threads")
    print("| noise | setting | accuracy | iterations/image | body passes/image |")
    print("|---|---|---|---|---|")
    inputs = {level: noisy(images, level) for level in args.noise}
    for level, x in inputs.items():
        rows = [(f"fixed T={t}", run(model, x, labels, args.batch, iterations=t))
                for t in range(t_max + 1)]
        rows += [(f"halt tol={tol:g}", run(model, x, labels, args.batch, halt=tol,
                                           max_iterations=t_max)) for tol in args.tolerances]
        for name, r in rows:
            print(f"| {level:g} | {name} | {r['accuracy']:.3f} | {r['iterations']:.2f} | "
                  f"{r['passes']:.2f} |", flush=True)
    print(f"\n| noise | tol | s/batch fixed T={t_max} | s/batch halting | saved |")
    print("|---|---|---|---|---|")
    for level, x in inputs.items():
        for tol in args.tolerances:
            fixed, halting = seconds_per_batch(model, x, args.batch, args.repeats, t_max, tol)
            print(f"| {level:g} | {tol:g} | {fixed:.3f} | {halting:.3f} | "
                  f"{1 - halting / fixed:.0%} |", flush=True)

if __name__ == "__main__":
    main()
