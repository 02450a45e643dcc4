#!/usr/bin/env bash
# Padding-free training with --attn-implementation varlen against transformers' masked SDPA, on one
# GPU, random weights from a Qwen2.5(-Coder)-1.5B folder's config (same speed and memory as the real
# weights):
#   1. the fair test's recipe whole (configs/fair.yaml: batch 16 padding-free, no checkpointing, 3
#      epochs) on its Alice rows: as recorded (SDPA, adamw_torch) and with varlen + fused AdamW;
#   2. bench/bench_train.py's P3 command (synthetic rows, 20 steps) with and without varlen, the
#      varlen padding-free variant profiled (VARIANTS, SKIP_RECORDED, RECIPES_ONLY: fewer runs);
#   SHARE=1 instead: the new recipe with Liger, then two of it at once (as a packed run trains them).
#   bash bench/device/train_attention.sh MODEL_DIR TRAIN_FILE RESULTS_DIR
# MODEL_DIR needs config.json and the tokenizer only; the gsm_symbolic rows must be in ALICE_CACHE.
# RESULTS_DIR gets each run's log and manifest (the trained weights are deleted) and bench_train's report.
set -uo pipefail
model=$1 rows=$2 results=$3
mkdir -p "$results/runs"
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
python3 - <<'PY'
import inspect, torch
try:
    from torch.nn.attention.varlen import varlen_attn
    print("torch", torch.__version__, "varlen_attn", inspect.signature(varlen_attn))
except ImportError as err:
    print("torch", torch.__version__, "no varlen_attn:", err)
PY
recipe() {  # name, extra flags
  python3 train.py --data gsm_symbolic:held_out=17,train=30,test=10 --student "$model" --random-init \
    --train-file "$rows" --per-device-batch-size 16 --padding-free --no-gradient-checkpointing --save-steps 100000 \
    --output-dir "$results/runs/$1" --overwrite "${@:2}" >"$results/runs/$1.log" 2>&1
  echo "$1: exit $?"
  find "$results/runs/$1" -mindepth 1 ! -name manifest.json -delete 2>/dev/null  # 3 GB of weights each
}
start=$SECONDS
if [ -n "${SHARE:-}" ]; then  # the new recipe with Liger, then two of it at once (as a packed run trains)
  [ -n "${SKIP_LIGER:-}" ] || recipe varlen-fused-liger --attn-implementation varlen --optim adamw_torch_fused --use-liger-kernel
  recipe two-a --attn-implementation varlen --optim adamw_torch_fused &
  recipe two-b --attn-implementation varlen --optim adamw_torch_fused --seed 1 &
  wait; echo "share: $((SECONDS - start)) s"
else
  [ -n "${SKIP_NEW:-}" ] || recipe varlen-fused --attn-implementation varlen --optim adamw_torch_fused
  [ -n "${SKIP_RECORDED:-}" ] || recipe as-recorded --attn-implementation sdpa
  echo "recipes: $((SECONDS - start)) s"
  if [ -z "${RECIPES_ONLY:-}" ]; then
    python3 bench/bench_train.py --tokenizer "$model" --steps 20 --rows 512 --no-write --work "$results/bench-train" \
      --variants "${VARIANTS:-full_padfree+nogc+fused+varlen,full_padfree+nogc+fused,full_packed+nogc+fused+varlen,full_packed+nogc+fused,full_padfree+nogc+fused+liger+varlen,full_packed+nogc+fused+liger+varlen}" \
      --profile full_padfree+nogc+fused+varlen --out "$results/mfu.json" >"$results/bench_train.log" 2>&1
    echo "bench_train: exit $?"
    tail -n 25 "$results/bench_train.log"
  fi
fi
python3 bench/train_runs.py "$results"/runs/*/
