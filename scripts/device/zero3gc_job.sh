#!/usr/bin/env bash
# ZeRO-3 + LoRA + gradient checkpointing on one offline GPU, by recompute form (transfer in pieces;
# started by job.sh once w.tar is in: TRL, datasets, DeepSpeed). Llama-3-70B's layer shape with 24
# layers (22.6B parameters), random weights, one process: DeepSpeed still partitions and gathers, so
# whatever stays gathered shows up as memory above the partition (45 GB in bf16).
# Results: /tmp/job/out (packed by `job.sh wait`).
set -uo pipefail
export ALICE_CACHE=/tmp/alice-cache PYTHONPATH=/tmp/job/repo:${PYTHONPATH:-} PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
O=/tmp/job/out F=/tmp/keep/files L=/tmp/llama70b-24 GSM=reasoning-gym-0.1.25-instance-train24-test4-held0-seed0.json
mkdir -p "$O" "$ALICE_CACHE/gsm_symbolic"
say() { echo "$(date -u +%T) $*"; }
item() {  # name timeout command...: logs to $O/name.log, GPU memory sampled every 2 s to $O/name.smi
  local name=$1 limit=$2; shift 2
  pkill -f "[t]rain.py"; sleep 2; say "start $name"
  nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader -l 2 >"$O/$name.smi" 2>&1 &
  local smi=$!
  timeout "$limit" "$@" >"$O/$name.log" 2>&1
  say "end $name: exit $?"; kill $smi
}
wait_for() { until [ -e "$1" ]; do sleep 3; done; }

wait_for "$F/tok.tar"; mkdir -p /tmp/tok && tar -xf "$F/tok.tar" -C /tmp/tok
wait_for "$F/$GSM"; cp "$F/$GSM" "$ALICE_CACHE/gsm_symbolic/"
python3 -c "import deepspeed, trl; print('deepspeed', deepspeed.__version__, 'trl', trl.__version__)"
python3 bench/bench_70b.py folder "$L" --layers 24 --tokenizer /tmp/tok >"$O/folder.log" 2>&1; say "folder: $(tail -1 $O/folder.log)"
Z3=(accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml --num_processes 1 train.py --data gsm_symbolic
    --student "$L" --random-init --lora --ground-truth --pool student --limit 8 --max-steps 3 --total-batch-size 8
    --per-device-batch-size 8 --max-length 512 --lr 5e-4 --warmup-steps 0 --logging-steps 1 --save-steps 1000)
item z3_nonreentrant 240 "${Z3[@]}" --output-dir "$O/z3_nonreentrant"
item z3_reentrant 240 "${Z3[@]}" --reentrant-checkpointing --output-dir "$O/z3_reentrant"
item z3_nogc 240 "${Z3[@]}" --no-gradient-checkpointing --output-dir "$O/z3_nogc"
rm -f "$O"/z3_*/*.safetensors
say "all done"
