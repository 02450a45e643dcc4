#!/usr/bin/env bash
# On an offline GPU machine (started by scripts/device/job.sh once the wheels are in): the 0.5B teacher from
# its GGUF, then P1 over the whole fair-test pool (4 engines with CUDA graphs, 255 questions each), then
# bench/bench_engine_start.py: eager against CUDA graphs for the 0.5B (probing) and a random-weight 1.5B (short
# steps). ONLY=start skips P1.
set -uo pipefail
export ALICE_CACHE=/tmp/alice-cache
O=/tmp/job/out F=/tmp/keep/files
mkdir -p "$ALICE_CACHE/gsm_symbolic" "$O"
until ls $F/reasoning-gym-*.json >/dev/null 2>&1 && [ -f $F/qwen2.5-coder-0.5b-instruct.gguf ]; do sleep 3; done
cp $F/reasoning-gym-*.json "$ALICE_CACHE/gsm_symbolic/"
teacher=$(python3 -m alice.models $F/qwen2.5-coder-0.5b-instruct.gguf Qwen2.5-Coder-0.5B-Instruct | tail -n 1)
echo "$(date -u +%T) teacher: $teacher"
if [ "${ONLY:-}" != start ]; then
  python3 bench/bench_probe_gpus.py --teacher "$teacher" --data "gsm_symbolic:held_out=17,train=30,test=10" \
    --limit 255 --k 100 --variants one4_graphs --timeout 780 --out $O/p1
  echo "$(date -u +%T) P1 done"; pkill -f "[E]ngineCore"; sleep 3
fi
# a 1.5B of the student's architecture: its config, the 0.5B's tokenizer (same vocabulary), random weights
python3 - "$teacher" <<'PY'
import json, shutil, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path("/tmp/q15")
dst.mkdir(exist_ok=True)
config = json.loads((src / "config.json").read_text())
config.update(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
              intermediate_size=8960, tie_word_embeddings=True)
config.pop("layer_types", None)
(dst / "config.json").write_text(json.dumps(config))
for f in src.iterdir():
    if f.name.startswith(("tokenizer", "vocab", "merges", "special_tokens", "generation_config")):
        shutil.copy(f, dst / f.name)
PY
python3 bench/bench_engine_start.py --model "0.5B=$teacher" --workloads probe --out $O/start-05.json
python3 bench/bench_engine_start.py --model "1.5B=dummy:/tmp/q15" --workloads short --out $O/start-15.json
echo "$(date -u +%T) start bench done"
