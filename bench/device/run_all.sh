#!/usr/bin/env bash
# P1 (VLLMBackend n=K vs the prompt repeated K times, same engine) + vLLM vs transformers, then P3
# training, on one GPU machine set up as in docs/GPU.md (BENCH_TOKENIZER: a Qwen2.5 tokenizer folder):
#   RESULTS_DIR=out DECODE_S=300 TRAIN_S=190 PROMPTS=24 bash bench/device/run_all.sh
# Writes $RESULTS_DIR/{device.txt,log,decode.json,train.json,train.log,train_parts.tar}.
set -o pipefail
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0 \
  VLLM_WORKER_MULTIPROC_METHOD=spawn VLLM_NO_USAGE_STATS=1
RESULTS_DIR=${RESULTS_DIR:-bench-out}; mkdir -p "$RESULTS_DIR"
decode_s=${DECODE_S:-300}
BENCH_TIMEOUT=$decode_s bash bench/device/run_bench.sh --engines v1 --hf --sweep "" --diag-batch 0 \
  --prompts "${PROMPTS:-24}" --k 100 --max-tokens 128 --budget-s $((decode_s - 15)) --engine-timeout $((decode_s - 85))
nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | xargs -r kill -9
timeout "${TRAIN_S:-190}" python3 bench/bench_train.py --tokenizer "${BENCH_TOKENIZER:-tok}" --steps "${STEPS:-8}" --rows 256 \
  --variants full_paper,full_padfree,lora_paper,lora_padfree,full_packed,lora_packed \
  --out "$RESULTS_DIR/train.json" --no-write 2>&1 | tee "$RESULTS_DIR/train.log"
(cd /tmp/bench-train && tar -cf "$RESULTS_DIR/train_parts.tar" ./*.json) 2>/dev/null  # per-variant results if cut off
exit 0
