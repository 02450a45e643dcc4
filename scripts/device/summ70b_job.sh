#!/usr/bin/env bash
# Does the 70B-architecture summarizer fit ONE H200 in bf16, in process through uncertainty.py, and how fast is it?
# (transfer in pieces; started by job.sh once w.tar is in; v.tar and the 0.5B teacher's GGUF arrive later).
# Llama-3-70B's shape with the teacher's Qwen2.5 tokenizer is 70.95B parameters, 132.2 GiB in bf16, so the engine
# gets a fixed 2 GiB KV cache, a 4096-token context and no CUDA graphs. Random weights: memory and speed, never
# quality. Results: /tmp/job/out (packed by `job.sh wait`).
set -uo pipefail
source "$(dirname "$0")/job_common.sh"
T=$TEACHER

tokenizer_and_rows
vllm_and_teacher
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
item 70b_summarizer_tp1 540 python3 bench/bench_70b_summarizer.py --teacher "$T" --modes inprocess \
  --tensor-parallel-size 1 --enforce-eager --kv-cache-gb 2 --max-model-len 4096 --limit 200 --timeout 520 \
  --out "$O/70b_summarizer_tp1"
say "all done"
