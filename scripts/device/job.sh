#!/usr/bin/env bash
# Transfer in pieces: carry wheels and model files to an offline GPU machine that takes a small
# checkout per command and keeps /tmp only while it stays warm, and run a long job there in the
# background while later pieces still arrive. Here, once:
#
#   python scripts/device/pieces.py pack --prefix .pk --piece-mib 56 /tmp/w.tar FILE...
#
# (w.tar: the wheels the job needs, gguf among them when models come as GGUF files; FILE: model
# GGUFs, data caches; a piece and the checkout together must fit one upload), then one command per piece,
# back to back, each with the folder .pkN beside the checkout:
#
#   JOB=scripts/device/fair_job.sh bash scripts/device/job.sh store N
#
# Each command keeps its piece and writes out every file whose bytes have all arrived (into
# /tmp/keep/files). Once the wheels are in, JOB starts in the background (setsid, from a copy of
# the checkout in /tmp/job/repo, so it outlives the command); it can use each file as soon as it
# is complete. Then, until it is done:
#
#   bash scripts/device/job.sh wait 560 OUTDIR
#
# which prints the job's progress and packs /tmp/job (model weights left out) into OUTDIR as
# job.tar.xz.partNN (or .gz) pieces of 15 MiB. `restart` starts the job again (it resumes).
set -uo pipefail
KEEP=/tmp/keep FILES=/tmp/keep/files SITE=/tmp/site WORK=/tmp/job
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_WORKER_MULTIPROC_METHOD=spawn \
  HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 TOKENIZERS_PARALLELISM=false

start_job() {
  mkdir -p "$WORK" && rm -rf "$WORK/repo" && mkdir -p "$WORK/repo" &&
    if [ -f "$KEEP/snap.tgz" ]; then tar -xzf "$KEEP/snap.tgz" -C "$WORK/repo"; else cp -r . "$WORK/repo/"; fi &&
    rm -rf "$WORK"/repo/.pk* && echo "${JOB:?set JOB to the job script}" >"$WORK/job" &&
    touch "$WORK/started" && rm -f "$WORK/done"
  (cd "$WORK/repo" && setsid nohup bash "$WORK/repo/scripts/device/job.sh" run >>"$WORK/log" 2>&1 </dev/null &)
  echo "job started (log $WORK/log)"
}

case ${1:-} in
store)
  python3 scripts/device/pieces.py store ".pk$2" "$KEEP" || exit 1
  # A snapshot of one commit (git archive HEAD) carried as .snap.tgz: the job runs that code, whatever
  # the checkout of the later commands holds.
  [ -f .snap.tgz ] && cp .snap.tgz "$KEEP/snap.tgz"
  if [ -f "$FILES/w.tar" ] && [ ! -f "$SITE/.installed" ]; then
    mkdir -p "$KEEP/wh" && tar -xf "$FILES/w.tar" -C "$KEEP/wh" &&
      python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$KEEP"/wh/*.whl &&
      touch "$SITE/.installed" && echo "wheels installed" || exit 1
  fi
  if [ -f "$SITE/.installed" ] && [ ! -f "$WORK/started" ]; then start_job; fi ;;
restart)
  # The job and the runner under it: SIGTERM lets experiment.py stop its steps' process groups and engines
  # first; the job starts again only once the runner is gone (two runners on one run folder would collide).
  pkill -TERM -f "[j]ob.sh run"; pkill -TERM -f "[e]xperiment.py --config"
  for _ in $(seq 90); do pgrep -f "[e]xperiment.py --config" >/dev/null || break; sleep 1; done
  JOB=$(cat "$WORK/job") start_job ;;
run)
  date -u +"job start %FT%TZ"; nvidia-smi -L
  bash "$(cat "$WORK/job")"
  echo "exit $?" >"$WORK/done"; date -u +"job end %FT%TZ" ;;
wait)
  end=$((SECONDS + ${2:-560})) dest=${3:?give the folder for the packed results}
  while [ $SECONDS -lt $end ] && [ ! -f "$WORK/done" ]; do sleep 10; done
  nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader
  tail -n 40 "$WORK/log"
  [ -f "$WORK/done" ] && cat "$WORK/done"
  pack="xz -6 -T0" ext=xz; command -v xz >/dev/null || { pack="gzip -6"; ext=gz; }
  tar -C "$WORK" --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' --exclude='checkpoint-*' \
    --exclude='repo' --exclude='*.samples.jsonl' --exclude='uncertainty-p[0-9].jsonl' --exclude='tokenizer.json' \
    --exclude='vocab.json' --exclude='merges.txt' -cf - . 2>/dev/null | $pack | split -b 15M -d - "$dest/job.tar.$ext.part"
  ls -la "$dest" ;;
*)
  sed -n 2,22p "$0"; exit 2 ;;
esac
