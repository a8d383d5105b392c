#!/usr/bin/env bash
# The GPU numbers of issues 17 and 37 in one prepared run (sized for one of the device tool's
# 10-minute calls): every benchmark on CUDA for the four CNN-F architectures (VGG-6: the
# CIFAR-10 zoo's backbone) and the two predictive-coding comparators, the training levers
# (compile, channels_last, bf16), extraction (where zarr and h5netcdf are installed), PGD-40
# evaluation, and the GPU's utilisation and memory sampled every 0.5 s throughout, summarised
# per benchmark.
#   Usage: benchmarks/gpu.sh OUT           (OUT: a folder for the logs, e.g. $OUT of the device)
#   DEVICE=cpu QUICK=1 benchmarks/gpu.sh /tmp/gpu-dry-run    checks the script itself on a CPU
#   PARTS="tests extract compile" SETTINGS="wrn:2" benchmarks/gpu.sh OUT   a follow-up: some parts
#   (tests: the CUDA tests, where pytest is installed or carried), the levers on some settings
# Needs only torch and the package on PYTHONPATH (run from the repository root); wheels in
# .whl/ (carried) are installed first, e.g. zarr and h5netcdf for extraction (analyses/README.md).
set -uo pipefail
out=${1:?usage: benchmarks/gpu.sh OUT}
device=${DEVICE:-cuda}
py=${PYTHON:-python3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")"
export PYTHONPATH=$(cd .. && pwd)${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
source carried_wheels.sh && use_carried_wheels ..  # zarr, h5netcdf, ...
if [ -n "${QUICK:-}" ]; then  # a dry run: tiny sizes, three architectures
  archs="fmnist_small fmnist_adv fmnist_pc"; batch=16; n=32; repeats=1; settings="fmnist_small:1"
else
  archs="fmnist_small fmnist_adv vgg6 wrn vgg6_pc fmnist_pc"; batch=128; n=2048; repeats=10
  settings="fmnist_adv:1 fmnist_small:5 vgg6:1 wrn:2"
fi
settings=${SETTINGS:-$settings}
parts=" ${PARTS:-tests engine train channels_last bf16 attack extract compile} "
want() { [[ $parts == *" $1 "* ]]; }
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv"
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits \
    -lms 500 > "$out/utilization.csv" &
  trap 'kill $!' EXIT
fi
run() {  # name, script and arguments: the log in OUT/name.txt, start and end in OUT/marks.txt
  local name=$1; shift
  echo "$name start $(date +%s.%N)" >> "$out/marks.txt"
  "$py" "$@" > "$out/$name.txt" 2>&1 || echo "$name failed (rc $?)" | tee -a "$out/failed.txt"
  echo "$name end $(date +%s.%N)" >> "$out/marks.txt"
  cat "$out/$name.txt"
}
if want tests && "$py" -c "import pytest" 2> /dev/null; then
  run tests -m pytest -q -p no:cacheprovider ../tests/test_performance_paths.py -k gpu
fi
want engine && run engine bench_engine.py --device "$device" --batch "$batch" --iterations 1 2 5 \
  --archs $archs --repeats "$repeats"
want train && run train bench_train.py --device "$device" --batch "$batch" --archs $archs \
  --repeats "$repeats"
lever() {  # a training speed lever against eager steps
  want "$1" && run "lever_$1" bench_train.py --device "$device" --batch "$batch" --compile \
    --lever "$1" --repeats "$repeats" --settings $settings
}
lever channels_last
lever bf16
want attack && run attack bench_attack.py --device "$device" --n "$n" --batch "$batch" \
  --archs $archs
if want extract && "$py" -c "import zarr, h5netcdf" 2> /dev/null; then
  run extract bench_extract.py --device "$device" --n "$n" --batch "$batch" --skip-memory
elif want extract; then
  echo "extract skipped: zarr and h5netcdf are not installed" | tee -a "$out/failed.txt"
fi
lever compile  # last: its compilations take the longest, and a cut call keeps the rest
if [ -s "$out/utilization.csv" ]; then  # mean and peak utilisation per benchmark
  "$py" - "$out" <<'EOF'
import sys
from datetime import datetime
from pathlib import Path

out = Path(sys.argv[1])
samples = []
for line in (out / "utilization.csv").read_text().splitlines():
    stamp, util, memory = (part.strip() for part in line.split(","))
    when = datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp()
    samples.append((when, float(util), float(memory)))
marks = {}
for line in (out / "marks.txt").read_text().splitlines():
    name, kind, when = line.split()
    marks.setdefault(name, {})[kind] = float(when)
lines = ["benchmark  mean GPU utilisation %  peak memory MiB  samples"]
for name, span in marks.items():
    inside = [s for s in samples if span["start"] <= s[0] <= span.get("end", 1e20)]
    if inside:
        mean = sum(s[1] for s in inside) / len(inside)
        lines.append(f"{name}  {mean:.0f}  {max(s[2] for s in inside):.0f}  {len(inside)}")
(out / "utilization_summary.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
fi
