#!/usr/bin/env bash
# The fair test (experiment.py --config configs/fair.yaml, packed onto GPU 0) on an offline GPU machine,
# started by job.sh once the wheels are in: the GGUF models arrive in /tmp/keep/files (their conversion
# waits for them), and so does the gsm_symbolic data set's cached rows (reasoning-gym's compiled
# dependencies are not needed then) and, when w.tar leaves it out, vLLM's wheels as v.tar.
# FAIR_TARGETS: steps to run to, separated by ';' (e.g. "gate;student_generate*"; default: everything);
# FAIR_ARGS: more experiment.py options; FAIR_FROM: an earlier part's deliverables in the checkout
# (experiment.py --results wrote them), restored into the run folder first so the run resumes from them.
# The deliverables of this part go to /tmp/job/results.
set -uo pipefail
export ALICE_CACHE=/tmp/alice-cache
F=/tmp/keep/files
mkdir -p "$ALICE_CACHE/gsm_symbolic" /tmp/job/run
until ls $F/reasoning-gym-*.json >/dev/null 2>&1; do sleep 3; done
cp $F/reasoning-gym-*.json "$ALICE_CACHE/gsm_symbolic/"
# The GPU's power, utilization and memory every 2 s, beside the run's own timings (is a step GPU-bound?).
nvidia-smi --query-gpu=timestamp,power.draw,utilization.gpu,memory.used --format=csv -l 2 >/tmp/job/smi.csv 2>&1 &
# vLLM may come last, in its own v.tar: trainings and the GGUF conversion do not need it, so they start
# first; it is installed as soon as it arrives (before any evaluation, which starts after the trainings).
if [ ! -f /tmp/site/vllm/__init__.py ]; then
  (until [ -f $F/v.tar ]; do sleep 3; done
   mkdir -p /tmp/keep/vw && tar -xf $F/v.tar -C /tmp/keep/vw &&
     python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/keep/vw/*.whl &&
     echo "$(date -u +%T) vllm wheels installed") &
fi
for gguf in qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct; do until [ -f $F/$gguf.gguf ]; do sleep 3; done; done
IFS=';' read -ra targets <<<"${FAIR_TARGETS:-}"
python3 experiment.py --config configs/fair.yaml --run-dir /tmp/job/run --results /tmp/job/results \
  --teacher $F/qwen2.5-coder-0.5b-instruct.gguf --student $F/qwen2.5-coder-1.5b-instruct.gguf \
  --summarizer $F/qwen2.5-coder-1.5b-instruct.gguf --gpus 0 --kv-cache-gb 6 --eval-batches --probe-parts 4 \
  ${FAIR_FROM:+--restore-from "$FAIR_FROM"} ${targets[@]:+--targets "${targets[@]}"} ${FAIR_ARGS:-}
