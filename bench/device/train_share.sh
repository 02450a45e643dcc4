#!/usr/bin/env bash
# Do several 1.5B trainings share one GPU better than one at a time? train.py on the fair test's
# Alice rows (the recipe of configs/fair.yaml: batch 16 padding-free, no checkpointing), random
# weights from a Qwen2.5(-Coder)-1.5B config (same speed and memory as the real weights), 40 steps:
# one alone, two at once, and each with fused AdamW. Prints each run's steady tokens/s and peak GB.
#   bash bench/device/train_share.sh MODEL_DIR TRAIN_FILE RUNS_DIR
set -uo pipefail
model=$1 rows=$2 runs=$3
mkdir -p "$runs"
train() {  # name, extra flags
  python3 train.py --data gsm_symbolic:held_out=17,train=30,test=10 --student "$model" --random-init \
    --train-file "$rows" --per-device-batch-size 16 --padding-free --no-gradient-checkpointing --max-steps 40 \
    --save-steps 1000 --output-dir "$runs/$1" --overwrite "${@:2}" >"$runs/$1.log" 2>&1
}
summary() { python3 bench/train_runs.py "${@/#/$runs/}"; }
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
for optim in adamw_torch adamw_torch_fused; do
  echo "== one alone ($optim)"; train "one-$optim" --optim "$optim"; summary "one-$optim"
  echo "== two at once ($optim)"
  train "two-a-$optim" --optim "$optim" & train "two-b-$optim" --optim "$optim" --seed 1 & wait
  summary "two-a-$optim" "two-b-$optim"
done
