#!/usr/bin/env bash
# Device side of the ARC small-scale replication (scripts/arc_small.py, issue 11) on the borrowed
# GPU machine, which has no network and takes 64 MiB per call. Here, once:
#
#   /work/shared/tools/device-wheels gguf==0.19.0 && cat .dw[0-9]*/piece > /tmp/w.tar
#   python scripts/device/pieces.py pack --prefix .pk --piece-mib 62 /tmp/w.tar \
#       ~/.cache/small-models/{SmolLM2-135M-Instruct.Q4_1.gguf,qwen2.5-coder-0.5b-instruct.gguf,qwen2.5-coder-1.5b-instruct.gguf}
#
# then one `run` call per piece, back to back (carry [".pkN"]):
#   bash scripts/device/arc_small_device.sh store N
# Each call keeps its piece and assembles the files whose bytes have all arrived. Once the wheels
# are in, the job starts in the background (setsid, so it outlives the call): it converts and
# evaluates each model as soon as its GGUF is complete, while later pieces still arrive, then runs
# the whole of scripts/arc_small.py. Then, until it is done:
#   bash scripts/device/arc_small_device.sh wait 560
# which prints progress and returns everything but model weights in $OUT/arc_small.tgz.
# `restart` starts the job again (it resumes).
set -uo pipefail
KEEP=/tmp/keep FILES=/tmp/keep/files SITE=/tmp/site WORK=/tmp/arc_small
export PYTHONPATH=$SITE PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_WORKER_MULTIPROC_METHOD=spawn \
  HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 TOKENIZERS_PARALLELISM=false
MODELS=(smollm2:SmolLM2-135M-Instruct.Q4_1.gguf qwen-coder-0.5b:qwen2.5-coder-0.5b-instruct.gguf
        qwen-coder-1.5b:qwen2.5-coder-1.5b-instruct.gguf)
ARGS=(--gguf-dir "$FILES" --run-dir "$WORK/run" --results "$WORK/results")

start_job() {
  mkdir -p "$WORK" && touch "$WORK/started" && rm -f "$WORK/done"
  setsid nohup bash "$0" job >>"$WORK/log" 2>&1 </dev/null &
  echo "job started (log $WORK/log)"
}

case ${1:-} in
store)
  python3 scripts/device/pieces.py store ".pk$2" "$KEEP" || exit 1
  if [ -f "$FILES/w.tar" ] && [ ! -f "$SITE/.installed" ]; then
    mkdir -p "$KEEP/wh" && tar -xf "$FILES/w.tar" -C "$KEEP/wh" &&
      python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$KEEP"/wh/*.whl &&
      touch "$SITE/.installed" && echo "wheels installed" || exit 1
  fi
  if [ -f "$SITE/.installed" ] && [ ! -f "$WORK/started" ]; then start_job; fi ;;
restart)
  pkill -f "arc_small_device.sh job" ; sleep 2; start_job ;;
job)
  date -u +"job start %FT%TZ"; nvidia-smi -L
  pids=()
  for entry in "${MODELS[@]}"; do  # each model as soon as its file is complete
    name=${entry%%:*} file=${entry#*:}
    until [ -f "$FILES/$file" ]; do sleep 3; done
    python3 scripts/arc_small.py "${ARGS[@]}" --only "$name" >"$WORK/zeroshot-$name.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || echo "a zero-shot job failed: see $WORK/zeroshot-*.log"; done
  python3 scripts/arc_small.py "${ARGS[@]}"
  echo "exit $?" >"$WORK/done"; date -u +"job end %FT%TZ" ;;
wait)
  end=$((SECONDS + ${2:-560}))
  while [ $SECONDS -lt $end ] && [ ! -f "$WORK/done" ]; do sleep 10; done
  nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv,noheader
  grep -hE "^== |^selection|error|Error|accuracy|^done|^\\$ " "$WORK"/zeroshot-*.log "$WORK/log" 2>/dev/null | tail -n 60
  tail -n 15 "$WORK/log"
  [ -f "$WORK/done" ] && cat "$WORK/done"
  tar -czf "$OUT/arc_small.tgz" --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' \
    --exclude='checkpoint-*' --exclude='tokenizer.json' --exclude='vocab.json' --exclude='merges.txt' -C "$WORK" . 2>/dev/null
  ls -la "$OUT" ;;
*)
  sed -n 2,20p "$0"; exit 2 ;;
esac
