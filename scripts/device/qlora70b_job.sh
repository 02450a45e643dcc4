#!/usr/bin/env bash
# 70B-class QLoRA through train.py on one offline GPU (transfer in pieces; started by job.sh once
# w.tar is in: TRL, datasets, bitsandbytes). The NF4 base is built layer by layer from the
# architecture's config.json alone (--random-init): speed, memory and plumbing, never quality.
# Results: /tmp/job/out (packed by `job.sh wait`).
set -uo pipefail
source "$(dirname "$0")/job_common.sh"
L70=/tmp/llama70b

tokenizer_and_rows
python3 -c "import bitsandbytes, trl, datasets; print('bitsandbytes', bitsandbytes.__version__, 'trl', trl.__version__)"
python3 bench/bench_70b.py folder "$L70" --tokenizer /tmp/tok >"$O/folder.log" 2>&1; say "70B folder: $(ls $L70 | tr '\n' ' ')"
# The rows and steps of the 2-GPU LoRA runs (bench/RESULTS.md run 6): 8 GSM rows, every step the same 8.
TRAIN=(train.py --data gsm_symbolic --student "$L70" --random-init --qlora --ground-truth --pool student --limit 8
       --max-steps 8 --total-batch-size 8 --max-length 512 --lr 5e-4 --warmup-steps 0 --logging-steps 1 --save-steps 1000)
item 70b_qlora_b1 300 python3 "${TRAIN[@]}" --per-device-batch-size 1 --output-dir "$O/70b_qlora_b1"
item 70b_qlora_b8 200 python3 "${TRAIN[@]}" --per-device-batch-size 8 --output-dir "$O/70b_qlora_b8"
rm -f "$O"/70b_*/*.safetensors
say "all done"
