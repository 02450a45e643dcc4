#!/usr/bin/env bash
# Device calls for issues 4, 7 (P3) and 9 on the 2xH100 kind, after the device-wheels install
# (docs/GPU.md; the DeepSpeed wheel travels in the last piece's folder, see below):
#   bash bench/device/run_multigpu.sh p3      # P3: full variants on GPU 0, LoRA variants on GPU 1, side by side
#   bash bench/device/run_multigpu.sh train   # train.py: 1 GPU vs DDP / FSDP / ZeRO-3 on 2 GPUs
#   bash bench/device/run_multigpu.sh tp      # uncertainty.py with vLLM tensor parallelism 1 vs 2
# Results land in $OUT; merge them here with bench_train.py merge / bench_multigpu.py merge.
set -o pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_WORKER_MULTIPROC_METHOD=spawn \
  HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 NCCL_NVLS_ENABLE=0
tok=${BENCH_TOKENIZER:-$(ls -d .dw*/tok 2>/dev/null | head -1)}
nvidia-smi -L | tee "$OUT/device.txt"
# DeepSpeed publishes only a source archive: a wheel built here (DS_BUILD_OPS=0, ops JIT-compiled
# at run time) travels as .dwN/deepspeed-*.whl; hjson is its one dependency the device lacks.
if ls .dw*/deepspeed-*.whl >/dev/null 2>&1 && ! python3 -c "import deepspeed" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .dw*/deepspeed-*.whl .dw*/hjson-*.whl 2>&1 | tail -2
fi
case "$1" in
  p3)
    profile_full=(--profile full_paper,full_padfree --raw) profile_lora=(--profile lora_paper)
    [[ -n ${NO_PROFILE:-} ]] && profile_full=() profile_lora=()
    common=(--steps "${STEPS:-8}" --rows 256 --no-write ${tok:+--tokenizer "$tok"})
    CUDA_VISIBLE_DEVICES=0 timeout "${P3_S:-500}" python3 bench/bench_train.py "${common[@]}" --work /tmp/bt-full \
      --variants full_paper,full_padfree,full_packed "${profile_full[@]}" \
      --out "$OUT/train_full.json" > "$OUT/train_full.log" 2>&1 &
    CUDA_VISIBLE_DEVICES=1 timeout "${P3_S:-500}" python3 bench/bench_train.py "${common[@]}" --work /tmp/bt-lora \
      --variants lora_paper,lora_padfree,lora_packed "${profile_lora[@]}" \
      --out "$OUT/train_lora.json" > "$OUT/train_lora.log" 2>&1 &
    wait
    # $OUT gives back at most 8 files: the rest travels in one archive.
    tar -cf "$OUT/extras.tar" /tmp/bt-*/*.profile.txt /tmp/bt-*/runs/*/manifest.json 2>/dev/null
    grep -h "tokens/s" "$OUT"/train_*.log ;;
  train)
    timeout "${TRAIN_S:-560}" python3 bench/bench_multigpu.py train --gpus 2 --strategies "${STRATEGIES:-ddp,fsdp,zero3}" \
      --steps "${STEPS:-8}" ${tok:+--tokenizer "$tok"} --out "$OUT/multigpu_train.json" 2>&1 \
      | grep -v -e '^INFO' -e 'WARNING' | tee "$OUT/train.log" | tail -40
    tar -cf "$OUT/extras.tar" /tmp/bench-multigpu/*.log /tmp/bench-multigpu/runs/*/manifest.json 2>/dev/null ;;
  tp)
    timeout "${TP_S:-560}" python3 bench/bench_multigpu.py tp --gpus 2 --eager --out "$OUT/multigpu_tp.json" 2>&1 \
      | grep -v -e '^INFO' -e '^(EngineCore' -e 'WARNING' | tee "$OUT/tp.log" | tail -40
    tar -cf "$OUT/extras_tp.tar" /tmp/bench-multigpu/*.log /tmp/bench-multigpu/*.manifest.json 2>/dev/null ;;
  *) echo "usage: $0 p3|train|tp" >&2; exit 2 ;;
esac
nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | xargs -r kill -9
exit 0
