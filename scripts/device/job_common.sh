# What the device job scripts share (sourced; transfer in pieces, see job.sh): the environment, the
# result folder, timed items with GPU memory sampled, and the tokenizer and GSM rows once they are in.
export ALICE_CACHE=/tmp/alice-cache PYTHONPATH=/tmp/job/repo:${PYTHONPATH:-} PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
O=/tmp/job/out F=/tmp/keep/files GSM=reasoning-gym-0.1.25-instance-train24-test4-held0-seed0-dedup.json
mkdir -p "$O" "$ALICE_CACHE/gsm_symbolic"
say() { echo "$(date -u +%T) $*"; }
free_gpus() {  # leftovers of an item that was cut short must not hold memory for the next one
  pkill -f "[v]llm.entrypoints" ; pkill -f "[u]ncertainty.py" ; pkill -f "[t]rain.py" ; sleep 3
  nvidia-smi --query-gpu=index,memory.used --format=csv,noheader | tr '\n' ' '; echo
}
item() {  # name timeout command...: logs to $O/name.log, GPU memory sampled every 2 s to $O/name.smi
  local name=$1 limit=$2; shift 2
  free_gpus; say "start $name"
  nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader -l 2 >"$O/$name.smi" 2>&1 &
  local smi=$!
  timeout "$limit" "$@" >"$O/$name.log" 2>&1
  say "end $name: exit $?"; kill $smi
}
wait_for() { until [ -e "$1" ]; do sleep 3; done; }
tokenizer_and_rows() {  # the small model's tokenizer in /tmp/tok, the GSM rows in the cache
  wait_for "$F/tok.tar"; mkdir -p /tmp/tok && tar -xf "$F/tok.tar" -C /tmp/tok
  wait_for "$F/$GSM"; cp "$F/$GSM" "$ALICE_CACHE/gsm_symbolic/"
}
TEACHER=/tmp/alice-cache/models/Qwen2.5-Coder-0.5B-Instruct
vllm_and_teacher() {  # vLLM and the rest (v.tar) into /tmp/site, then the 0.5B teacher from its GGUF into $TEACHER
  wait_for "$F/v.tar"; mkdir -p /tmp/keep/vw && tar -xf "$F/v.tar" -C /tmp/keep/vw &&
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/keep/vw/*.whl
  say "vllm wheels installed"
  wait_for "$F/qwen2.5-coder-0.5b-instruct.gguf"
  python3 -m alice.models "$F/qwen2.5-coder-0.5b-instruct.gguf" Qwen2.5-Coder-0.5B-Instruct >"$O/convert.log" 2>&1
  say "teacher converted"
}
