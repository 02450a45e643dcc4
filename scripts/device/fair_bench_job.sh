#!/usr/bin/env bash
# A part of the fair test (scripts/device/fair_job.sh, FAIR_* from the environment), then, on the same offline
# GPU machine and its converted models, one Alice stage measured (bench/bench_p5.py: the student served once
# for statements and answers, probing on vLLM's V2 runner), training steps as new processes vs forked from a
# preloaded one (bench/bench_preload.py), and probing with CUDA graphs on V1 and V2 side by side
# (bench/bench_probe_gpus.py). Started by job.sh once the wheels are in; each item runs under a time
# limit and a failure moves on. Results: /tmp/job/results (the fair test's deliverables), /tmp/job/out.
# P5_ARGS, PROBE_VARIANTS, PROBE_LIMIT: override the benchmarks' settings; SKIP_FAIR=1 runs the benchmarks only;
# BENCH_ITEMS: which of the benchmarks run (default "p5 preload probe", in that order; empty: none).
set -uo pipefail
source scripts/device/job_common.sh

if [ -z "${SKIP_FAIR:-}" ]; then
  say "start fair"
  bash scripts/device/fair_job.sh
  say "end fair: exit $?"
fi
ITEMS=" ${BENCH_ITEMS-p5 preload probe} "
wanted() { [[ "$ITEMS" == *" $1 "* ]]; }
[ -z "${ITEMS// /}" ] && exit 0
# P5 runs on bench_p5.py's own data (plain gsm_symbolic, as its recorded figure): its cached rows come with the files.
wait_for "$F/$GSM"; cp "$F"/reasoning-gym-*.json "$ALICE_CACHE/gsm_symbolic/"
# The folders the fair run converted the GGUF files into (named by their content: no second conversion).
teacher=$(python3 -m alice.models "$F/qwen2.5-coder-0.5b-instruct.gguf" | tail -n 1)
student=$(python3 -m alice.models "$F/qwen2.5-coder-1.5b-instruct.gguf" | tail -n 1)
say "teacher $teacher, student $student"
wanted p5 && item p5 780 python3 bench/bench_p5.py --teacher "$teacher" --student "$student" --train-teacher \
  --modes adaptive --serve-student 8011 --probe-args "--vllm-runner v2" ${P5_ARGS:-} --out "$O/p5"
# Training steps started as new processes vs forked from a preloaded one: the fair test's Alice training, cut short.
xz -dc results/fair-repeat/alice.jsonl.xz >/tmp/job/alice.jsonl
wanted preload && item preload 600 python3 bench/bench_preload.py --gpus 0 --trainings 3 --out "$O/preload" --train-args \
  "--data gsm_symbolic:held_out=17,train=30,test=10 --student $student --train-file /tmp/job/alice.jsonl \
   --per-device-batch-size 16 --padding-free --no-gradient-checkpointing --optim adamw_torch_fused --max-steps 40"
wanted probe && item probe 600 python3 bench/bench_probe_gpus.py --teacher "$teacher" --data "gsm_symbolic:held_out=17,train=30,test=10" \
  --limit "${PROBE_LIMIT:-50}" --k 100 --variants "${PROBE_VARIANTS:-one4_graphs_v1,one4_graphs_v2}" --timeout 280 \
  --out "$O/probe"
