#!/usr/bin/env bash
# Recurrence vs difficulty on one CNN-F (docs/reproduction.md's protocol): the first 500 test
# images at each level of four perturbations, 10 test iterations, then the settling analysis.
# Writes FOLDER/<kind>.nc and FOLDER/<kind>/difficulty_summary.json; a kind whose summary exists
# is kept, so a rerun resumes. Usage: analyses/difficulty.sh MODEL FOLDER
#   MODEL   checkpoint file, run folder or pretrained:NAME
set -euo pipefail
model=${1:?usage: difficulty.sh MODEL FOLDER}
folder=${2:?usage: difficulty.sh MODEL FOLDER}
for spec in noise=0,0.1,0.2,0.3,0.4 blur=0,0.5,1,1.5,2 occlusion=0,0.1,0.2,0.3,0.4 \
            adversarial=0,0.02,0.05,0.1; do
  kind=${spec%%=*}
  [ -e "$folder/$kind/difficulty_summary.json" ] && continue
  neurocnnf extract "$model" --stimuli fashion_mnist:test:500 --perturb "$spec" --iterations 10 \
    --layers logits,probabilities --out "$folder/$kind.nc" --no-progress
  neurocnnf analyze difficulty "$folder/$kind.nc" --out "$folder/$kind"
done
