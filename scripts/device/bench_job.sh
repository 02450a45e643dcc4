#!/usr/bin/env bash
# The adaptive-probing and 70B-class benchmarks on an offline 2-GPU machine, started by job.sh once the wheels
# are in (transfer in pieces; see job.sh). Model GGUFs and the gsm_symbolic rows arrive later in
# /tmp/keep/files; each item waits for what it needs, runs under a time limit, and a failure moves on.
# Results: /tmp/job/out (packed by `job.sh wait`).
set -uo pipefail
export ALICE_CACHE=/tmp/alice-cache PYTHONPATH=/tmp/job/repo:${PYTHONPATH:-} PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
O=/tmp/job/out F=/tmp/keep/files M=/tmp/alice-cache/models
T=$M/Qwen2.5-Coder-0.5B-Instruct S=$M/Qwen2.5-Coder-1.5B-Instruct
mkdir -p "$O" "$ALICE_CACHE/gsm_symbolic"
say() { echo "$(date -u +%T) $*"; }
item() {  # name timeout command...: logs to $O/name.log
  local name=$1 limit=$2; shift 2
  say "start $name"
  timeout "$limit" "$@" >"$O/$name.log" 2>&1
  say "end $name: exit $?"
}
wait_for() { until [ -e "$1" ]; do sleep 3; done; }

(wait_for "$F/reasoning-gym-0.1.25-instance-train24-test4-held0-seed0-dedup.json"; cp "$F"/reasoning-gym-*.json "$ALICE_CACHE/gsm_symbolic/"
 say "gsm rows in") &
(item convert_teacher 600 python3 -m alice.models "$F/qwen2.5-coder-0.5b-instruct.gguf" Qwen2.5-Coder-0.5B-Instruct
 item convert_student 600 python3 -m alice.models "$F/qwen2.5-coder-1.5b-instruct.gguf" Qwen2.5-Coder-1.5B-Instruct) &
ready() { wait_for "$T/config.json"; wait_for "$ALICE_CACHE/gsm_symbolic/reasoning-gym-0.1.25-instance-train24-test4-held0-seed0-dedup.json"; }

# 1. 70B LoRA, FSDP2 over both GPUs (random weights; no files needed).
item 70b_fsdp 420 torchrun --standalone --nproc_per_node 2 bench/bench_70b.py fsdp --lr 5e-4 --out "$O/70b"
rm -rf "$O"/70b/*adapter*/*.safetensors

# 2. One GPU each: P5 (GPU 0); training MFU and QLoRA (GPU 1).
ready; wait_for "$S/config.json"
(export CUDA_VISIBLE_DEVICES=0
 item p5 780 python3 bench/bench_p5.py --teacher "$T" --student "$S" --train-teacher --out "$O/p5") &
p5=$!
(export CUDA_VISIBLE_DEVICES=1
 item mfu 300 python3 bench/bench_train.py --tokenizer "$S" --steps 10 --rows 512 --no-write --work /tmp/bt \
   --variants "full_packed,full_packed+nogc,full_packed+nogc+fused,full_packed+nogc+fused+liger,full_packed+nogc+fused+liger+b8192+x2,lora_packed+nogc+fused" \
   --out "$O/mfu.json"
 item 70b_qlora 330 python3 bench/bench_70b.py qlora --lr 5e-4 --out "$O/70b"
 rm -rf "$O"/70b/*adapter*/*.safetensors) &
gpu1=$!
wait $p5 $gpu1

# 3. The 70B-architecture summarizer at TP=2, in process (teacher: the 0.5B model).
item 70b_summarizer 420 python3 bench/bench_70b_summarizer.py --teacher "$T" --modes inprocess --out "$O/70b_summarizer"

# 4. Probing: V1 and V2 model runners on one GPU, then the pool split over both GPUs and one
# data-parallel server (with the faster runner); then the summarizer served.
item probe_gpus 540 python3 bench/bench_probe_gpus.py --teacher "$T" --variants v1,v2,parts2,serve_dp2 --out "$O/probe"
item 70b_served 420 python3 bench/bench_70b_summarizer.py --teacher "$T" --modes served --out "$O/70b_served"
say "all done"
