#!/usr/bin/env bash
# Runs bench/bench_decode.py on a GPU machine set up as in docs/GPU.md.
#   RESULTS_DIR=out bash bench/device/run_bench.sh [bench_decode.py all options...]
# Writes $RESULTS_DIR/decode.json (merge it with `python bench/bench_decode.py merge FILE`) and $RESULTS_DIR/log.
set -o pipefail
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0 \
  VLLM_WORKER_MULTIPROC_METHOD=spawn VLLM_NO_USAGE_STATS=1
RESULTS_DIR=${RESULTS_DIR:-bench-out}; mkdir -p "$RESULTS_DIR"
nvidia-smi -L | tee "$RESULTS_DIR/device.txt"
timeout "${BENCH_TIMEOUT:-540}" python3 bench/bench_decode.py all --tokenizer "${BENCH_TOKENIZER:-tok}" \
  --out "$RESULTS_DIR/decode.json" "$@" 2>&1 | tee "$RESULTS_DIR/log" | grep -v -e '^INFO' -e '^(EngineCore' -e 'WARNING'
exit 0
