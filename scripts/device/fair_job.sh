#!/usr/bin/env bash
# The fair test (scripts/fair.py) on an offline GPU machine, started by job.sh once the wheels are
# in: the GGUF models arrive in /tmp/keep/files (their conversion waits for them), and so does the
# gsm_symbolic data set's cached rows (reasoning-gym's compiled dependencies are not needed then) and,
# when w.tar leaves it out, vLLM's wheels as v.tar.
# FAIR_TARGETS: steps to run to, separated by ';' (e.g. "gate;data *"; default: everything);
# FAIR_ARGS: more scripts/fair.py options. An earlier part's deliverables in the checkout
# (results/fair: its JSONL, evaluations, gate and manifests) are restored into the run folder first,
# so the run resumes from them.
set -uo pipefail
export ALICE_CACHE=/tmp/alice-cache
mkdir -p "$ALICE_CACHE/gsm_symbolic" /tmp/job/run
until ls /tmp/keep/files/reasoning-gym-*.json >/dev/null 2>&1; do sleep 3; done
cp /tmp/keep/files/reasoning-gym-*.json "$ALICE_CACHE/gsm_symbolic/"
[ -d results/fair/manifests ] && python3 scripts/fair.py restore results/fair /tmp/job/run
# The GPU's power, utilization and memory every 2 s, beside the run's own timings (is a step GPU-bound?).
nvidia-smi --query-gpu=timestamp,power.draw,utilization.gpu,memory.used --format=csv -l 2 >/tmp/job/smi.csv 2>&1 &
# vLLM may come last, in its own v.tar: trainings and the GGUF conversion do not need it, so they start
# first; it is installed as soon as it arrives (before any evaluation, which starts after the trainings).
if [ ! -f /tmp/site/vllm/__init__.py ]; then
  (until [ -f /tmp/keep/files/v.tar ]; do sleep 3; done
   mkdir -p /tmp/keep/vw && tar -xf /tmp/keep/files/v.tar -C /tmp/keep/vw &&
     python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/keep/vw/*.whl &&
     echo "$(date -u +%T) vllm wheels installed") &
fi
IFS=';' read -ra targets <<<"${FAIR_TARGETS:-}"
python3 scripts/fair.py --gguf-dir /tmp/keep/files --run-dir /tmp/job/run --results /tmp/job/results \
  ${targets[@]:+--targets "${targets[@]}"} ${FAIR_ARGS:-}
