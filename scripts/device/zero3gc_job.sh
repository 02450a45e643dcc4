#!/usr/bin/env bash
# ZeRO-3 + LoRA + gradient checkpointing on one offline GPU, by recompute form (transfer in pieces;
# started by job.sh once w.tar is in: TRL, datasets, DeepSpeed). Llama-3-70B's layer shape with 24
# layers (22.6B parameters), random weights, one process: DeepSpeed still partitions and gathers, so
# whatever stays gathered shows up as memory above the partition (45 GB in bf16).
# Results: /tmp/job/out (packed by `job.sh wait`).
set -uo pipefail
source "$(dirname "$0")/job_common.sh"
L=/tmp/llama70b-24

tokenizer_and_rows
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
