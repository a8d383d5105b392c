#!/usr/bin/env bash
# The Fashion-MNIST pairs issue 33 still needs on matched checkpoints: CNN-F-5 and its twin
# trained the same epochs and compared at their last checkpoints. Trains them (resumable), then
# attacks each pair at the plain pass and through the iterations (plain_pass.py, n = 1,000,
# paired against the twin) and reruns the n = 200 Fig. 5 grid of the 15-epoch seeds.
# Usage: analyses/matched_pairs.sh RUNS OUT
#   RUNS  run folders: cnn15-s<seed>, cnnf5-15-s<seed> (Adam, 15 epochs, seeds 1 and 2),
#         cnn-sgd-s<seed>, cnnf5-sgd-s<seed> (the reference's SGD, 6 epochs, seeds 0 and 1;
#         docs/reproduction/fig5-sgd/cnnf5-sgd-s0-config.yaml) and cnn-s0, cnnf5-s0 (Adam,
#         6 epochs, seed 0)
#   OUT   OUT/plain-pass/<pair>/, OUT/fig5-15-last/ and OUT/difficulty-15-s<seed>-retrained/
#         (fold them into docs/reproduction)
# Rerun the same command after an interruption: finished runs and CSVs are kept.
set -euo pipefail
runs=${1:?usage: matched_pairs.sh RUNS OUT}
out=${2:?usage: matched_pairs.sh RUNS OUT}
here=$(cd "$(dirname "$0")" && pwd)
adam15=(--set optim.epochs=15)
adam6=(--set optim.epochs=6)  # the presets' default is 30 epochs
sgd=(--set optim.optimizer=sgd --set optim.lr=0.05 --set optim.momentum=0.9
     --set optim.weight_decay=0.0005 --set optim.schedule=poly --set optim.power=0.9
     --set optim.grad_clip=0.5 --set optim.batch_size=256 --set optim.epochs=6)
train() {  # preset, run folder, seed, options
  local preset=$1 run=$2 seed=$3; shift 3
  neurocnnf train "$preset" --out "$run" --set seed="$seed" --resume --no-progress "$@"
}
attack() {  # pair name, CNN-F-5 run, twin run: the last checkpoints
  local pair=$1 cnnf=$2/last.safetensors twin=$3/last.safetensors
  for kind in apgd-ce apgd-dlr square; do
    python "$here/plain_pass.py" run "$pair" cnnf "$cnnf" "$kind" --out "$out/plain-pass"
    python "$here/plain_pass.py" run "$pair" twin "$twin" "$kind" --out "$out/plain-pass"
  done
  python "$here/plain_pass.py" run "$pair" cnnf "$cnnf" apgd-ce --at 5 --out "$out/plain-pass"
  python "$here/plain_pass.py" summary --out "$out/plain-pass" > /dev/null
}
for seed in 1 2; do
  train fmnist-small-cnn "$runs/cnn15-s$seed" "$seed" "${adam15[@]}"
  train fmnist-small "$runs/cnnf5-15-s$seed" "$seed" "${adam15[@]}"
  attack "fmnist-15ep-s$seed" "$runs/cnnf5-15-s$seed" "$runs/cnn15-s$seed"
  python "$here/reproduce_fig5.py" evaluate "$runs/cnn15-s$seed" "$runs/cnnf5-15-s$seed" \
    --twin "$runs/cnn15-s$seed" --checkpoint last --n 200 --out "$out/fig5-15-last"
done
for seed in 0 1; do
  train fmnist-small-cnn "$runs/cnn-sgd-s$seed" "$seed" "${sgd[@]}"
  train fmnist-small "$runs/cnnf5-sgd-s$seed" "$seed" "${sgd[@]}"
  attack "fmnist-sgd-s$seed" "$runs/cnnf5-sgd-s$seed" "$runs/cnn-sgd-s$seed"
done
# The 6-epoch seed 0 pair, retrained (the shipped CNN-F-5 is its epoch 5, the twin its epoch 6)
train fmnist-small-cnn "$runs/cnn-s0" 0 "${adam6[@]}"
train fmnist-small "$runs/cnnf5-s0" 0 "${adam6[@]}"
attack fmnist-6ep-s0-retrained "$runs/cnnf5-s0" "$runs/cnn-s0"
# Recurrence vs difficulty on the retrained 15-epoch CNN-F-5 at its last checkpoint (epoch 15)
for seed in 1 2; do
  "$here/difficulty.sh" "$runs/cnnf5-15-s$seed/last.safetensors" \
    "$out/difficulty-15-s$seed-retrained"
done
