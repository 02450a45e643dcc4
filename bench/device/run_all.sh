#!/usr/bin/env bash
# One device call for issues 7 and 4 (after the device-wheels install, docs/GPU.md):
# P1 (VLLMBackend n=K vs the prompt repeated K times, same engine) + vLLM vs transformers, then P3 training.
#   DECODE_S=300 TRAIN_S=190 PROMPTS=24 bash bench/device/run_all.sh
# Writes $OUT/{device.txt,log,decode.json,train.json,train.log,train_parts.tar}.
set -o pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_WORKER_MULTIPROC_METHOD=spawn \
  HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1
decode_s=${DECODE_S:-300}
BENCH_TIMEOUT=$decode_s bash bench/device/run_bench.sh --engines v1 --hf --sweep "" --diag-batch 0 \
  --prompts "${PROMPTS:-24}" --k 100 --max-tokens 128 --budget-s $((decode_s - 15)) --engine-timeout $((decode_s - 85))
nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | xargs -r kill -9
timeout "${TRAIN_S:-190}" python3 bench/bench_train.py --tokenizer .dw6/tok --steps "${STEPS:-8}" --rows 256 \
  --variants full_paper,full_padfree,lora_paper,lora_padfree,full_packed,lora_packed \
  --out "$OUT/train.json" --no-write 2>&1 | tee "$OUT/train.log"
(cd /tmp/bench-train && tar -cf "$OUT/train_parts.tar" ./*.json) 2>/dev/null  # per-variant results if cut off
exit 0
