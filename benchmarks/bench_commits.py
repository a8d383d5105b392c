"""Speed of this checkout against another commit (e.g. today's main) on the same settings.

For exact engine changes that leave no switch behind: the other commit is checked out in a
temporary git worktree, and each measurement runs in a fresh process with ``PYTHONPATH`` set to
one tree or the other, alternating (base, here, base, here, ...) so that both share the
machine's load. A measurement is the median time of ``--steps`` calls after one warm-up call of
a training step (clean, or adversarial: PGD-7 on the first pass) or of an inference call
(``model(x)`` with the model's T, no gradients; ``compiled``: the same through
``torch.compile``, the compilation in the warm-up call). Prints per setting and mode the
medians over ``--rounds`` and the speed-up base / here (> 1: this checkout is faster). Mode
``ratio`` instead measures, in each process, the clean training step of CNN-F over its plain twin's
(T = 0; ``bench_train.step_ratio``, the two alternating) and prints the medians of that ratio
for both trees with the steps' FLOP ratio (the bound the ratio should reach). Modes ``zarr``
and ``netcdf`` time an extraction of every layer of ``EXTRACTED`` random images to a new store
of that format (after one warm-up extraction; the previous store deleted and the page cache
synced before each).
Run: ``python benchmarks/bench_commits.py --base main~1 [--settings fmnist_small:5]
[--modes clean adversarial inference compiled] [--rounds 3] [--write MARK]``; ``--write`` puts the
table between ``<!-- MARK -->`` markers in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODES = ("clean", "adversarial", "inference", "compiled", "ratio", "zarr", "netcdf")
EXTRACTED = 500  # images per extraction (modes zarr and netcdf)


def measure(arch: str, iterations: int, mode: str, batch: int, steps: int) -> dict[str, float]:
    """Median seconds per call of one mode, or the step ratio's numbers (in the child)."""
    import torch
    from bench_engine import timed

    from neurocnnf.models import build_model

    if mode == "ratio":
        from bench_train import step_ratio

        return step_ratio(arch, iterations, batch, steps)
    if mode in ("zarr", "netcdf"):
        return {"seconds": extraction_seconds(arch, iterations, mode, steps)}
    torch.manual_seed(0)
    model = build_model(arch, iterations=iterations)
    x = torch.rand(batch, *model.input_shape)
    y = torch.randint(0, 10, (batch,))
    if mode in ("inference", "compiled"):
        model.eval()
        model.compiled = mode == "compiled"

        def call():
            with torch.no_grad():
                model(x)
    else:  # bench_train imports from neurocnnf what older commits may lack: only here
        from bench_train import training_step

        optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)
        call = training_step(model, optimizer, x, y, mode == "adversarial")
    return {"seconds": timed(call, steps, torch.device("cpu"))}


def extraction_seconds(arch: str, iterations: int, mode: str, steps: int) -> float:
    """Median seconds of ``steps`` extractions (after one warm-up) of every layer of
    ``EXTRACTED`` random images to a new .zarr or .nc store, each from a synced page cache."""
    import shutil
    import time

    import torch
    from bench_extract import stimuli

    from neurocnnf.activations import extract
    from neurocnnf.models import build_model

    torch.manual_seed(0)
    model = build_model(arch, iterations=iterations).eval()
    images = stimuli(EXTRACTED, model.input_shape)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ("a.zarr" if mode == "zarr" else "a.nc")
        for _ in range(steps + 1):
            os.sync()
            start = time.perf_counter()
            extract(model, images, out, iterations=iterations, progress=False)
            times.append(time.perf_counter() - start)
            shutil.rmtree(out) if out.is_dir() else out.unlink()
    return statistics.median(times[1:])


def run_child(tree: Path, setting: str, mode: str, args: argparse.Namespace
              ) -> dict[str, float]:
    """``measure``'s numbers from a fresh process importing neurocnnf from ``tree``."""
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{HERE}"}
    command = [sys.executable, str(Path(__file__)), "--child", setting, mode,
               "--batch", str(args.batch), "--steps", str(args.steps)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{setting} {mode} under {tree} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def ratio_details(runs: dict[str, list[dict[str, float]]]) -> str:
    """The FLOP ratio, every round's step ratio and the median seconds of the twin's and
    CNN-F's steps of both trees (a ratio also moves when the twin's step gets faster)."""
    def seconds(tree: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[tree])

    return (f"  FLOP ratio {runs['here'][0]['flop_ratio']:.2f}; rounds "
            f"{[round(r['ratio'], 2) for r in runs['base']]} vs "
            f"{[round(r['ratio'], 2) for r in runs['here']]}; twin s "
            f"{seconds('base', 'twin_s'):.3f} vs {seconds('here', 'twin_s'):.3f}, CNN-F s "
            f"{seconds('base', 'cnnf_s'):.3f} vs {seconds('here', 'cnnf_s'):.3f}")


def compare(args: argparse.Namespace) -> None:
    import torch
    from bench_cli import publish
    from bench_engine import describe_machine

    describe_machine()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base),
                        args.base], check=True, capture_output=True)
        try:
            described = subprocess.run(["git", "-C", str(base), "log", "-1", "--format=%h %s"],
                                       capture_output=True, text=True, check=True).stdout
            print(f"base: {described.strip()}\nhere: {ROOT} (working tree)", flush=True)
            rows = []
            for setting in args.settings:
                for mode in args.modes:
                    runs: dict[str, list[dict[str, float]]] = {"base": [], "here": []}
                    for _ in range(args.rounds):
                        runs["base"].append(run_child(base, setting, mode, args))
                        runs["here"].append(run_child(ROOT, setting, mode, args))
                    key = "ratio" if mode == "ratio" else "seconds"
                    b, h = (statistics.median(r[key] for r in runs[k]) for k in ("base", "here"))
                    # ratio: base and here are the CNN-F step over the twin's
                    what = f"ratio ({ratio_details(runs).strip()})" if mode == "ratio" else mode
                    rows.append(f"| {setting} | {what} | {b:.3f} | {h:.3f} | {b / h:.2f} |")
                    print(rows[-1], flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=False, capture_output=True)
    text = (f"This tree against `{described.split()[0]}`: "
            f"batch {args.batch}, median of {args.steps} calls per fresh process, "
            f"{args.rounds} alternating rounds (medians); {torch.get_num_threads()} threads, "
            f"load average {os.getloadavg()[0]:.1f} at the end "
            f"(`benchmarks/bench_commits.py --base {args.base}`). Speed-up: base over here."
            + (f" Modes zarr and netcdf: seconds per extraction of every layer of {EXTRACTED} "
               "random images (extraction's own batch size) to a new store."
               if {"zarr", "netcdf"} & set(args.modes) else "") + "\n\n"
            "| arch:T | mode | base s | here s | speed-up |\n|---|---|---|---|---|\n"
            + "\n".join(rows))
    publish(text, f"<!-- {args.write} -->", bool(args.write))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="the commit to compare against")
    parser.add_argument("--settings", nargs="+", default=["fmnist_adv:1", "fmnist_small:5"],
                        help="arch:T")
    parser.add_argument("--modes", nargs="+", choices=MODES,
                        default=["clean", "adversarial", "inference", "ratio"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", metavar="MARK",
                        help="put the table between <!-- MARK --> markers in benchmarks/README.md")
    parser.add_argument("--child", nargs=2, metavar=("SETTING", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        setting, mode = args.child
        arch, iterations = setting.split(":")
        print(json.dumps(measure(arch, int(iterations), mode, args.batch, args.steps)))
    else:
        compare(args)


if __name__ == "__main__":
    main()
