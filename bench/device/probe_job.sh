#!/usr/bin/env bash
# bench/bench_probe_gpus.py's one-GPU variants (N engines probing at once on GPU 0) on an offline GPU machine,
# started by scripts/device/job.sh once the wheels are in: the teacher's GGUF is converted when it arrives, then
# probed at K=100 on the fair test's data set (its cached rows arrive beside it; reasoning-gym is not needed).
# PROBE_VARIANTS (default one4_graphs,one6_graphs; one4_graphs_v1,one4_graphs_v2 compares vLLM's model runners),
# PROBE_LIMIT (questions per engine; default 50, the whole pool in 4 parts: 255), PROBE_TIMEOUT (s per variant; 300).
set -uo pipefail
export ALICE_CACHE=/tmp/alice-cache
mkdir -p "$ALICE_CACHE/gsm_symbolic" /tmp/job/out
until ls /tmp/keep/files/reasoning-gym-*.json >/dev/null 2>&1; do sleep 3; done
cp /tmp/keep/files/reasoning-gym-*.json "$ALICE_CACHE/gsm_symbolic/"
teacher=$(python3 -m alice.models /tmp/keep/files/qwen2.5-coder-0.5b-instruct.gguf Qwen2.5-Coder-0.5B-Instruct | tail -n 1)
echo "teacher: $teacher"
python3 bench/bench_probe_gpus.py --teacher "$teacher" --data "gsm_symbolic:held_out=17,train=30,test=10" \
  --limit "${PROBE_LIMIT:-50}" --k 100 --variants "${PROBE_VARIANTS:-one4_graphs,one6_graphs}" --timeout "${PROBE_TIMEOUT:-300}" \
  --out /tmp/job/out
