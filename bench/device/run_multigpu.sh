#!/usr/bin/env bash
# P3 and the multi-GPU benchmarks on a machine with two GPUs, set up as in docs/GPU.md (ZeRO-3 also
# needs `pip install deepspeed`; BENCH_TOKENIZER: a Qwen2.5 tokenizer folder):
#   bash bench/device/run_multigpu.sh p3      # P3: full variants on GPU 0, LoRA variants on GPU 1, side by side
#   bash bench/device/run_multigpu.sh train   # train.py: 1 GPU vs DDP / FSDP / ZeRO-3 on 2 GPUs
#   bash bench/device/run_multigpu.sh tp      # uncertainty.py with vLLM tensor parallelism 1 vs 2
# Results land in $RESULTS_DIR (default bench-out); merge them with bench_train.py merge / bench_multigpu.py merge.
set -o pipefail
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0 \
  VLLM_WORKER_MULTIPROC_METHOD=spawn VLLM_NO_USAGE_STATS=1 NCCL_NVLS_ENABLE=0
RESULTS_DIR=${RESULTS_DIR:-bench-out}; mkdir -p "$RESULTS_DIR"
tok=${BENCH_TOKENIZER:-}
nvidia-smi -L | tee "$RESULTS_DIR/device.txt"
case "$1" in
  p3)
    profile_full=(--profile full_paper,full_padfree --raw) profile_lora=(--profile lora_paper)
    [[ -n ${NO_PROFILE:-} ]] && profile_full=() profile_lora=()
    common=(--steps "${STEPS:-8}" --rows 256 --no-write ${tok:+--tokenizer "$tok"})
    CUDA_VISIBLE_DEVICES=0 timeout "${P3_S:-500}" python3 bench/bench_train.py "${common[@]}" --work /tmp/bt-full \
      --variants full_paper,full_padfree,full_packed "${profile_full[@]}" \
      --out "$RESULTS_DIR/train_full.json" > "$RESULTS_DIR/train_full.log" 2>&1 &
    CUDA_VISIBLE_DEVICES=1 timeout "${P3_S:-500}" python3 bench/bench_train.py "${common[@]}" --work /tmp/bt-lora \
      --variants lora_paper,lora_padfree,lora_packed "${profile_lora[@]}" \
      --out "$RESULTS_DIR/train_lora.json" > "$RESULTS_DIR/train_lora.log" 2>&1 &
    wait
    # The profiles and manifests in one archive beside the reports.
    tar -cf "$RESULTS_DIR/extras.tar" /tmp/bt-*/*.profile.txt /tmp/bt-*/runs/*/manifest.json 2>/dev/null
    grep -h "tokens/s" "$RESULTS_DIR"/train_*.log ;;
  train)
    timeout "${TRAIN_S:-560}" python3 bench/bench_multigpu.py train --gpus 2 --strategies "${STRATEGIES:-ddp,fsdp,zero3}" \
      --steps "${STEPS:-8}" ${tok:+--tokenizer "$tok"} --out "$RESULTS_DIR/multigpu_train.json" 2>&1 \
      | grep -v -e '^INFO' -e 'WARNING' | tee "$RESULTS_DIR/train.log" | tail -40
    tar -cf "$RESULTS_DIR/extras.tar" /tmp/bench-multigpu/*.log /tmp/bench-multigpu/runs/*/manifest.json 2>/dev/null ;;
  tp)
    timeout "${TP_S:-560}" python3 bench/bench_multigpu.py tp --gpus 2 --eager --out "$RESULTS_DIR/multigpu_tp.json" 2>&1 \
      | grep -v -e '^INFO' -e '^(EngineCore' -e 'WARNING' | tee "$RESULTS_DIR/tp.log" | tail -40
    tar -cf "$RESULTS_DIR/extras_tp.tar" /tmp/bench-multigpu/*.log /tmp/bench-multigpu/*.manifest.json 2>/dev/null ;;
  *) echo "usage: $0 p3|train|tp" >&2; exit 2 ;;
esac
nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | xargs -r kill -9
exit 0
