"""The GPU numbers of one ``benchmarks/gpu.sh`` run as benchmarks/README.md's GPU section.

Reads the logs that ``gpu.sh OUT`` leaves in OUT (engine.txt, train.txt, attack.txt,
extract.txt, lever_<lever>.txt, utilization_summary.txt, gpu.csv), turns their tables into
markdown and states the ranges that the text quotes, so no number is typed by hand.
Run: ``python benchmarks/gpu_report.py benchmarks/gpu/h200-2026-12-04 --write``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bench_cli import publish

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- gpu -->"
LEVERS = ("compile", "channels_last", "bf16")
STEADY = ("engine", "train", "lever_channels_last", "lever_bf16", "attack")  # no compiling, no disk
COLUMNS = {  # the whitespace tables: markdown header of each
    "engine.txt": ("arch", "T", "forward ms", "forward / iteration ms", "forward / T=0",
                   "fwd+bwd / T=0", "GFLOP fwd+bwd", "FLOPs / T=0", "activations MB",
                   "/ T=0"),
    "train.txt": ("arch", "T", "training img/s", "speed vs CNN", "activations MB",
                  "memory vs CNN", "CUDA peak MB"),
    "attack.txt": ("arch", "T", "PGD-40 first-pass img/s", "end-to-end img/s",
                   "end-to-end / first", "CUDA peak MB"),
}


def whitespace_table(path: Path) -> list[list[str]]:
    """The rows of a fixed-width table in ``path``: lines whose second field is T (a digit)."""
    rows = [line.split() for line in path.read_text().splitlines()]
    return [row for row in rows if len(row) > 2 and row[1].isdigit() and row[0] != "arch"]


def markdown(header: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def cells(line: str) -> list[str]:
    """The cells of one markdown table row."""
    return [cell.strip() for cell in line.strip("|").split("|")]


def lever_rows(path: Path) -> list[list[str]]:
    """The rows of a lever's markdown table (``bench_train.py --compile``), each once."""
    rows, seen = [], set()
    for line in path.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| setting") and line not in seen:
            seen.add(line)
            rows.append(cells(line))
    return rows


def span(values: list[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def times(ratio: str) -> str:
    """'1.61 (1.55-1.65)' -> '1.61x (1.55-1.65)'."""
    value, _, rest = ratio.partition(" ")
    return f"{value}x {rest}".strip()


def machine(folder: Path) -> str:
    name, memory, driver = folder.joinpath("gpu.csv").read_text().splitlines()[1].split(", ")
    first = folder.joinpath("engine.txt").read_text().splitlines()[0]
    torch_version = re.search(r"torch (\S+),", first).group(1)
    return f"{name} ({memory}, driver {driver}), torch {torch_version}"


def levers(folder: Path) -> tuple[str, dict[str, list[float]]]:
    """One table of every lever's speed-ups and the wall speed-ups per lever."""
    table, speedups = [], {}
    for lever in LEVERS:
        path = folder / f"lever_{lever}.txt"
        if not path.exists():
            continue
        rows = lever_rows(path)
        speedups[lever] = [float(row[3]) for row in rows]
        table += [[lever, row[0], row[1], row[2], row[3], row[5], row[6]] for row in rows]
    header = ("lever", "setting", "eager s", "lever s", "speed-up (wall)", "first lever step s",
              "break-even steps")
    return markdown(header, table), speedups


def report(folder: Path) -> str:
    train = whitespace_table(folder / "train.txt")
    attack = whitespace_table(folder / "attack.txt")
    lever_table, speedups = levers(folder)
    utilisation = [line.split() for line in
                   folder.joinpath("utilization_summary.txt").read_text().splitlines()[1:]]
    busy = [float(row[1]) for row in utilisation if row[0] in STEADY]
    cnnf = [float(row[3]) for row in train if row[1] != "0"]
    extract = [line for line in folder.joinpath("extract.txt").read_text().splitlines()
               if line.startswith("|")]
    ratios = {row[0]: row for row in map(cells, extract[2:])}
    forward, unstored = float(ratios[".zarr"][2]), float(ratios[".zarr"][3])
    parts = [
        f"{machine(folder)}; one process per benchmark, batch 128, float32 unless a lever "
        f"says otherwise (`benchmarks/gpu.sh`; logs in `{folder.relative_to(ROOT)}`"
        ", this section by `benchmarks/gpu_report.py`).",
        f"These models are small for this GPU: its mean utilisation over the benchmarks that "
        f"neither compile nor write ({', '.join(STEADY)}) was "
        f"{span(busy, 0)} %, so a step is bound by kernel launches more than by FLOPs. A CNN-F "
        f"training step runs at {span(cnnf)} of its twin's images/s (T = 1 to 5). Fusing "
        f"kernels pays: compile speeds a training step up {span(speedups['compile'])}x. bf16 "
        f"autocast ({span(speedups['bf16'])}x) and channels_last "
        f"({span(speedups['channels_last'])}x) do not.",
        "#### Engine cost (`bench_engine.py --iterations 1 2 5`)\n\n"
        + markdown(COLUMNS["engine.txt"], whitespace_table(folder / "engine.txt")),
        "#### Training images/s and memory (`bench_train.py`)\n\n"
        + markdown(COLUMNS["train.txt"], train),
        "#### Training levers (`bench_train.py --compile --lever ...`, eager and lever steps "
        "alternating, 10 each, medians; the inductor cache empty on a fresh machine)\n\n"
        + lever_table,
        "#### PGD-40 evaluation (`bench_attack.py --n 2048`)\n\n"
        + markdown(COLUMNS["attack.txt"], attack),
        "#### Extraction with storage (`bench_extract.py --n 2048`, fmnist_small, T = 5)\n\n"
        + "\n".join(extract)
        + f"\n\nOn this GPU the T = 5 pass is fast and what surrounds it is not: the same work "
        f"without storage (every layer's arrays copied to the CPU, the mask statistics) runs "
        f"at {forward / unstored:.0f}x fewer images/s than the pass alone, and extraction with "
        f"storage takes {times(ratios['.zarr'][5])} (Zarr) and {times(ratios['.nc'][5])} "
        "(NetCDF) of that work's time.",
        "#### GPU utilisation and memory (nvidia-smi every 0.5 s)\n\n"
        + markdown(("benchmark", "mean utilisation %", "peak memory MiB", "samples"),
                   utilisation),
    ]
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the OUT folder of one gpu.sh run")
    parser.add_argument("--write", action="store_true",
                        help="put the section between the <!-- gpu --> markers of the README")
    args = parser.parse_args()
    publish(report(args.folder.resolve()), MARK, args.write)


if __name__ == "__main__":
    main()
