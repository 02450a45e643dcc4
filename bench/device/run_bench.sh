#!/usr/bin/env bash
# Runs bench/bench_decode.py on the device machine, after the device-wheels install (docs/GPU.md).
#   bash bench/device/run_bench.sh [bench_decode.py all options...]
# Writes $OUT/decode.json (merge it here with `python bench/bench_decode.py merge FILE`) and $OUT/log.
set -o pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_WORKER_MULTIPROC_METHOD=spawn \
  HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1
nvidia-smi -L | tee "$OUT/device.txt"
timeout "${BENCH_TIMEOUT:-540}" python3 bench/bench_decode.py all --tokenizer "${BENCH_TOKENIZER:-.dw6/tok}" \
  --out "$OUT/decode.json" "$@" 2>&1 | tee "$OUT/log" | grep -v -e '^INFO' -e '^(EngineCore' -e 'WARNING'
exit 0
