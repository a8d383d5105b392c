#!/usr/bin/env bash
# Fig. 5 (with the predictive-coding comparator beside it) and recurrence-vs-difficulty
# reproduction (docs/reproduction.md), resumable: rerun the
# same command after an interruption. Usage: analyses/reproduce_fig5.sh OUT [SEEDS] [EPOCHS]
#   OUT     folder for runs and results (e.g. results/reproduction)
#   SEEDS   e.g. "0 1 2" (default "0")
#   EPOCHS  training epochs of every model (default 6; the paper does not state FMNIST-small's)
# DEVICE=cuda to train and attack on a GPU; N_IMAGES test images for the attacks (default 200).
set -euo pipefail
out=${1:?usage: reproduce_fig5.sh OUT [SEEDS] [EPOCHS]}
seeds=${2:-0}
epochs=${3:-6}
device=${DEVICE:-auto}
here=$(cd "$(dirname "$0")" && pwd)
train() {  # preset, run folder, extra --set options
  local preset=$1 run=$2; shift 2
  neurocnnf train "$preset" --out "$run" --set optim.epochs="$epochs" --device "$device" \
    --resume --no-progress "$@"
}
for seed in $seeds; do
  train fmnist-small-cnn "$out/runs/cnn-s$seed" --set seed="$seed"
  for k in 1 2 5; do
    train fmnist-small "$out/runs/cnnf$k-s$seed" --set seed="$seed" --set model.iterations=$k
  done
  train fmnist-small-pc "$out/runs/pc-s$seed" --set seed="$seed"  # the PC comparator
done
for seed in $seeds; do
  for run in cnn cnnf1 cnnf2 cnnf5 pc; do
    python "$here/reproduce_fig5.py" evaluate "$out/runs/$run-s$seed" \
      --twin "$out/runs/cnn-s$seed" --out "$out/fig5" --n "${N_IMAGES:-200}" --device "$device"
  done
done
python "$here/reproduce_fig5.py" figures --out "$out/fig5"
# recurrence vs difficulty on each seed's CNN-F-5: 500 images per kind, 10 test iterations
for seed in $seeds; do
  "$here/difficulty.sh" "$out/runs/cnnf5-s$seed" "$out/difficulty-s$seed"
done
