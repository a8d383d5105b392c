#!/usr/bin/env bash
# Table 2 (FMNIST-adv) and Table 3 (WRN-40-2, CIFAR-10) on a GPU in one call, on reduced
# schedules stated in the outputs: adversarial training (PGD-7) of CNN-F and its CNN twin for
# each table, then the paper's robustness table (clean, FGSM, PGD-40, SPSA, transfer, APGD-CE)
# and the gradient-masking report. Every run folder comes back packed as one .tar.gz.
#   Usage (repository root): analyses/gpu_tables.sh OUT [ADV_EPOCHS] [WRN_EPOCHS]
#     OUT         a folder for the results (the device tool's $OUT)
#     ADV_EPOCHS  FMNIST-adv epochs (default 20; the paper: 200)
#     WRN_EPOCHS  WRN-40-2 epochs (default 4; the paper: 500); 0 skips Table 3
#   NEUROCNNF_DATA: the data folder (a carried copy of ../shared/data); DEVICE (default cuda);
#   QUICK=1 shrinks everything to check the script on a CPU. Wheels in .whl/ (carried) are
#   installed first: the GPU image lacks h5netcdf (analyses/README.md).
set -uo pipefail
out=${1:?usage: analyses/gpu_tables.sh OUT [ADV_EPOCHS] [WRN_EPOCHS]}
adv_epochs=${2:-20}
wrn_epochs=${3:-4}
device=${DEVICE:-cuda}
py=${PYTHON:-python3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
runs=$(mktemp -d)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
source benchmarks/carried_wheels.sh && use_carried_wheels "$PWD"
attacks=fgsm,pgd,spsa,transfer,apgd-ce  # APGD is neurocnnf's own (attacks/autoattack.py)
limit=1000 quick=() attack_options=()
if [ -n "${QUICK:-}" ]; then
  limit=8 quick=(--set data.train_limit=256 --set data.test_limit=50)
  attack_options=(--pgd-steps 2 --spsa-steps 1)
fi
bf16=$([ "$device" = cpu ] && echo false || echo true)
log() { echo "== $(date +%T) $*" | tee -a "$out/log.txt"; }
train() {  # preset, run name, epochs
  log "train $2 ($1, $3 epochs, bf16 $bf16)"
  "$py" -m neurocnnf.cli train "$1" --out "$runs/$2" --device "$device" --no-progress \
    --set optim.epochs="$3" --set bf16="$bf16" "${quick[@]}" >> "$out/log.txt" 2>&1 \
    || log "train $2 failed"
}
table() {  # name, dataset, CNN-F run, CNN run, eps
  log "evaluate $1"
  "$py" -m neurocnnf.cli evaluate "$runs/$3" --twin "$runs/$4" --dataset "$2" --eps "$5" \
    --limit "$limit" --attacks "$attacks" --device "$device" \
    --eps-grid "$5" "${attack_options[@]}" --no-progress --out "$runs/$1" >> "$out/log.txt" 2>&1 \
    || log "evaluate $1 failed"
}
pack() {  # run folders -> OUT/<name>.tar.gz (best weights, metrics, results: < 16 MiB each)
  for name in "$@"; do
    [ -d "$runs/$name" ] && tar -czf "$out/$name.tar.gz" -C "$runs" --exclude resume.pt \
      --exclude last.safetensors "$name"
  done
}
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$out/log.txt"
fi
train fmnist-adv table2-cnnf "$adv_epochs"
train fmnist-adv-cnn table2-cnn "$adv_epochs"
table table2 fashion_mnist table2-cnnf table2-cnn 0.1
pack table2-cnnf table2-cnn table2
if [ "$wrn_epochs" -gt 0 ]; then
  train cifar-wrn-adv table3-cnnf "$wrn_epochs"
  train cifar-wrn-adv-cnn table3-cnn "$wrn_epochs"
  table table3 cifar10 table3-cnnf table3-cnn 0.031372549
  pack table3-cnnf table3-cnn table3
fi
log "done"
rm -rf "$runs"
