#!/usr/bin/env bash
# Plain pass (0 iterations) vs all iterations, paired against the twin (issue 33), on the
# checkpoints shipped here, most informative first; resumable (each model x attack CSV is
# kept). Usage: analyses/plain_pass.sh [OUT] [ABLATION_RUN]
#   OUT           default docs/reproduction/plain-pass
#   ABLATION_RUN  the ablation twin's run folder (recurrent=false; default: its committed copy
#                 with best.safetensors), used once it has finished
# One thread at nice 5: the machine's long training runs come first.
set -euo pipefail
out=${1:-docs/reproduction/plain-pass}
ablation=${2:-docs/reproduction/ablation-twin}
here=$(cd "$(dirname "$0")" && pwd)
py() { OMP_NUM_THREADS=1 nice -n 5 python "$here/plain_pass.py" "$@" --out "$out"; }
pair() {  # attack, pair name, CNN-F checkpoint, twin checkpoint
  py run "$2" cnnf "$3" "$1"
  py run "$2" twin "$4" "$1"
  py summary > /dev/null
}
ablation_pair() {  # attack: CNN-F-5 against the ablation twin, once it has finished training
  if [ -e "$ablation/results.json" ]; then
    pair "$1" fmnist-6ep-ablation pretrained:fmnist-small-cnnf5 "$ablation/best.safetensors"
  fi
}
for k in 1 2 5; do  # the cheap check: plain-pass PGD-40 vs training iterations k, n = 200
  OMP_NUM_THREADS=1 nice -n 5 python "$here/plain_pass.py" run "fmnist-6ep-n200-cnnf$k" cnnf \
    "pretrained:fmnist-small-cnnf$k" pgd --n 200 --out "$out"
  OMP_NUM_THREADS=1 nice -n 5 python "$here/plain_pass.py" run "fmnist-6ep-n200-cnnf$k" twin \
    pretrained:fmnist-small-cnn pgd --n 200 --out "$out"
done
if [ -e "$ablation/results.json" ]; then
  for role in cnnf twin; do
    model=pretrained:fmnist-small-cnnf5
    [ $role = twin ] && model="$ablation/best.safetensors"
    OMP_NUM_THREADS=1 nice -n 5 python "$here/plain_pass.py" run fmnist-6ep-ablation-n200 $role \
      "$model" pgd --n 200 --out "$out"
  done
fi
for attack in apgd-ce apgd-dlr; do
  pair "$attack" fmnist-6ep pretrained:fmnist-small-cnnf5 pretrained:fmnist-small-cnn
  ablation_pair "$attack"
done
pair apgd-ce fmnist-15ep pretrained:fmnist-small-cnnf5-15ep pretrained:fmnist-small-cnn-15ep
pair square fmnist-6ep pretrained:fmnist-small-cnnf5 pretrained:fmnist-small-cnn
ablation_pair square
pair apgd-dlr fmnist-15ep pretrained:fmnist-small-cnnf5-15ep pretrained:fmnist-small-cnn-15ep
pair square fmnist-15ep pretrained:fmnist-small-cnnf5-15ep pretrained:fmnist-small-cnn-15ep
