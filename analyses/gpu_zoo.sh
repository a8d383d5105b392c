#!/usr/bin/env bash
# The CIFAR-10 zoo (issue 30) on a GPU, longer than the CPU's 15 epochs, in resumable chunks:
# the twin, CNN-F-1 and PC of each seed trained for EPOCHS (one after the other, each resumed
# where the last call stopped), then the robustness cells of finished seeds (resumable per
# cell, analyses/cifar10_zoo.py robustness). Everything lives in RUNS, which the next call
# carries back; OUT gets RUNS packed (runs.tar.gz, without resume.pt and last.safetensors unless
# KEEP_RESUME=1) and the log, also when the time budget cuts the call short.
#   Usage (repository root): analyses/gpu_zoo.sh OUT [EPOCHS] [SEEDS]
#     OUT     a folder for the results (the device tool's $OUT)
#     EPOCHS  training epochs of every run (default 60; the CPU zoo: 15)
#     SEEDS   e.g. "0 1 2" (default "0")
#   RUNS (default .gpu-runs/e<EPOCHS>): the run folders, carried between calls;
#   BUDGET: seconds this call may take (default 540: the device tool's 10 minutes, less the
#   packing); NEUROCNNF_DATA: a carried copy of ../shared/data (the CIFAR-10 JPEGs, CIFAR-10H);
#   DEVICE (default cuda); QUICK=1 shrinks it to check the script on a CPU.
set -uo pipefail
out=${1:?usage: analyses/gpu_zoo.sh OUT [EPOCHS] [SEEDS]}
epochs=${2:-60}
seeds=${3:-0}
device=${DEVICE:-cuda}
py=${PYTHON:-python3}
runs=${RUNS:-.gpu-runs/e$epochs}
deadline=$((SECONDS + ${BUDGET:-540}))
mkdir -p "$out" "$runs"
out=$(cd "$out" && pwd)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
source benchmarks/carried_wheels.sh && use_carried_wheels "$PWD"
quick=() n=1000
if [ -n "${QUICK:-}" ]; then
  quick=(--set data.train_limit=256 --set data.test_limit=50) n=8
fi
log() { echo "== $(date +%T) $*" | tee -a "$out/log.txt"; }
pack() {
  local keep=(--exclude resume.pt --exclude last.safetensors)
  [ -n "${KEEP_RESUME:-}" ] && keep=()
  tar -czf "$out/runs.tar.gz" "${keep[@]}" -C "$(dirname "$runs")" "$(basename "$runs")"
  log "packed $runs ($(du -sh "$out/runs.tar.gz" | cut -f1))"
}
trap pack EXIT
left() { echo $((deadline - SECONDS)); }
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$out/log.txt"
fi
for seed in $seeds; do
  for run in "cifar10-cnn cnn" "cifar10 cnnf1" "cifar10-pc pc"; do
    set -- $run
    folder="$runs/$2-s$seed"
    [ -e "$folder/results.json" ] && continue
    [ "$(left)" -gt 30 ] || { log "out of time before $2-s$seed"; exit 0; }
    log "train $2-s$seed ($1, $epochs epochs, $(left) s left)"
    resume=$([ -e "$folder/resume.pt" ] && echo --resume || echo --no-resume)
    timeout "$(left)" "$py" -m neurocnnf.cli train "$1" --out "$folder" $resume \
      --device "$device" --no-progress --set optim.epochs="$epochs" --set seed="$seed" \
      "${quick[@]}" >> "$out/log.txt" 2>&1 || { log "train $2-s$seed stopped"; exit 0; }
  done
  [ "$(left)" -gt 60 ] || exit 0
  log "robustness s$seed ($(left) s left)"
  timeout "$(left)" "$py" analyses/cifar10_zoo.py robustness --seed "$seed" --runs "$runs" \
    --n "$n" --out "$runs/eval" >> "$out/log.txt" 2>&1 || { log "robustness stopped"; exit 0; }
done
log "done"
