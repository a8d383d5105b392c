"""Start-up time of the command line: ``neurocnnf --help``, a rejected option and
``neurocnnf --version``, here and (``--base REV``) at another commit, in fresh processes,
alternating (base, here, base, here, ...) so that both share the machine's load.

Each case runs ``python -c 'from neurocnnf.cli import main; main()' ARGS`` with ``PYTHONPATH``
set to one tree or the other, ``--rounds`` times; prints the median wall time per case and
tree, whether torch was imported, and (``--write``) replaces the table between the
``<!-- cli-startup -->`` markers of benchmarks/README.md with the numbers.
Run: ``python benchmarks/bench_cli.py --base 9d73b64 --rounds 5 --write``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = {"neurocnnf --help": ["--help"],
         "rejected option (extract --batch-size x)": ["extract", "run", "--out", "a.nc",
                                                      "--batch-size", "x"],
         "neurocnnf --version": ["--version"]}
MARK = "<!-- cli-startup -->"
PROBE = ("import sys; sys.argv = ['neurocnnf'] + sys.argv[1:]\n"
         "try:\n    from neurocnnf.cli import main; main()\n"
         "except SystemExit: pass\n"
         "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)")


def run_once(tree: Path, args: list[str]) -> tuple[float, bool]:
    """Wall seconds of one command-line call importing neurocnnf from ``tree``, and whether
    it imported torch."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True,
                          text=True, check=False, cwd=tempfile.gettempdir())
    seconds = time.perf_counter() - start
    return seconds, done.stderr.strip().endswith("\nTORCH") or done.stderr.strip() == "TORCH"


def measure(trees: dict[str, Path], rounds: int) -> dict[tuple[str, str], tuple[float, bool]]:
    """(case, tree label) -> (median wall seconds, torch imported)."""
    times: dict[tuple[str, str], list[float]] = {}
    torch_loaded: dict[tuple[str, str], bool] = {}
    for _ in range(rounds):
        for case, args in CASES.items():
            for label, tree in trees.items():
                seconds, loaded = run_once(tree, args)
                times.setdefault((case, label), []).append(seconds)
                torch_loaded[case, label] = loaded
    return {key: (statistics.median(v), torch_loaded[key]) for key, v in times.items()}


def table(results: dict, labels: list[str], rounds: int) -> str:
    """The results as a Markdown table with the machine and protocol stated."""
    lines = [f"Median wall time of {rounds} fresh processes per cell, alternating trees "
             f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
             f"average {os.getloadavg()[0]:.1f}; `benchmarks/bench_cli.py --write`).", "",
             "| case | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for case in CASES:
        cells = [f"{results[case, label][0]:.2f} s"
                 f"{' (imports torch)' if results[case, label][1] else ''}" for label in labels]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def publish(text: str, mark: str, write: bool) -> None:
    """Print ``text``; with ``write``, also put it between ``mark``'s markers in the README."""
    print(text, flush=True)
    if write:
        write_readme(text, mark)


def write_readme(text: str, mark: str = MARK) -> None:
    """Replace the block between the two markers of benchmarks/README.md."""
    readme = HERE / "README.md"
    before, _, rest = readme.read_text().partition(mark)
    _, _, after = rest.partition(mark)
    readme.write_text(f"{before}{mark}\n{text}\n{mark}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="another commit to compare with (a git worktree)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        trees = {}
        if args.base:
            base = Path(scratch) / "base"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base),
                            args.base], check=True, capture_output=True)
            trees[f"at {args.base}"] = base
        trees["this checkout"] = ROOT
        try:
            results = measure(trees, args.rounds)
        finally:
            if args.base:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(trees[f"at {args.base}"])], check=False)
    text = table(results, list(trees), args.rounds)
    publish(text, MARK, args.write)


if __name__ == "__main__":
    main()
