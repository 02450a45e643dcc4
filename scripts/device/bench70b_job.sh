#!/usr/bin/env bash
# 70B-class and multi-GPU measurements on an offline 2-GPU machine, started by job.sh once the first wheels are in
# (transfer in pieces; see job.sh). w.tar holds what training needs (TRL, datasets, DeepSpeed); v.tar
# (vLLM and the rest) and the 0.5B teacher's GGUF arrive later in /tmp/keep/files while training runs.
# Each item waits for what it needs, runs under a time limit, and a failure moves on; the GPUs are
# checked free before each. Results: /tmp/job/out (packed by `job.sh wait`).
set -uo pipefail
source "$(dirname "$0")/job_common.sh"
T=$TEACHER L70=/tmp/llama70b

# The 70B-architecture folder (config + the small model's tokenizer, no weights) and the GSM rows.
tokenizer_and_rows
python3 bench/bench_70b.py folder "$L70" --tokenizer /tmp/tok >"$O/folder.log" 2>&1; say "70B folder: $(ls $L70 | tr '\n' ' ')"
# 8 rows, 8 rows a step: the same rows every step, so the loss must fall.
TRAIN=(train.py --data gsm_symbolic --student "$L70" --random-init --lora --ground-truth --pool student --limit 8
       --max-steps 8 --total-batch-size 8 --max-length 512 --lr 5e-4 --warmup-steps 0 --logging-steps 1 --save-steps 1000)

# vLLM and the teacher arrive while training runs.
vllm_and_teacher &

# 1. 70B LoRA through train.py under ZeRO-3 over 2 GPUs with gradient checkpointing, recomputed in the
# non-reentrant form (the reentrant form kept the whole model gathered: out of memory, 137.8 GB per GPU),
# and the adapter saved by gathering its own partitions only.
item 70b_zero3_gc 360 accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml --num_processes 2 \
  "${TRAIN[@]}" --output-dir "$O/70b_zero3_gc"
rm -f "$O"/70b_*/*.safetensors "$O"/70b_*/*/*.safetensors

# 2. The 70B-architecture summarizer at TP=2 in process, with NCCL's all-reduce (teacher: the 0.5B model).
# 200 questions give about 170 statements.
wait_for "$T/config.json"
item 70b_summarizer_inprocess 480 python3 bench/bench_70b_summarizer.py --teacher "$T" --modes inprocess --limit 200 \
  --timeout 460 --out "$O/70b_summarizer_inprocess"

# 3. Collecting the LoRA adapter for saving under ZeRO-3, the Trainer's way and the adapter's partitions
# alone, on 8 layers of Llama-3-70B's shape over 2 GPUs.
item zero3_save 240 python3 bench/bench_zero3_gc.py --hidden 8192 --layers 8 --steps 1 --kinds lora --forms none \
  --out "$O/zero3_save.json"

# 4. The same summarizer behind `vllm serve` at TP=2 (the paper's setup), the teacher in process on GPU 0.
item 70b_summarizer_served 420 python3 bench/bench_70b_summarizer.py --teacher "$T" --modes served --limit 200 \
  --timeout 400 --out "$O/70b_summarizer_served"
say "all done"
