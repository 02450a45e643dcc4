#!/usr/bin/env bash
# Rows written as questions finish, on a GPU (transfer in pieces; started by job.sh once w.tar is in): uncertainty.py
# with the 0.5B teacher is killed (SIGKILL, whole process group) while its one probing chunk is generating, then
# rerun; the job prints how many rows survived the kill and checks the finished output. Results: /tmp/job/out.
set -uo pipefail
source "$(dirname "$0")/job_common.sh"
T=$TEACHER

tokenizer_and_rows
vllm_and_teacher
mkdir -p "$O/s"
U=(python3 uncertainty.py --data gsm_symbolic --limit 300 --teacher "$T" --k 8 --max-new-tokens 256 --kv-cache-gb 20
   --output "$O/s/u.jsonl")
S=$O/s/u.samples.jsonl
setsid "${U[@]}" >"$O/s/killed.log" 2>&1 &
PID=$!
start=$SECONDS
until [ -f "$S" ] && [ "$(wc -l <"$S")" -ge 20 ]; do
  sleep 0.5; kill -0 $PID 2>/dev/null || break; [ $((SECONDS - start)) -gt 400 ] && break
done
kill -9 -- -$PID; sleep 3
say "killed after $((SECONDS - start)) s: $(wc -l <"$S" 2>/dev/null) of 300 probed rows kept"
cp "$S" "$O/s/kept.samples.jsonl"
free_gpus
item resumed 300 "${U[@]}"
python3 - "$O/s" <<'PY'
import json, sys
from pathlib import Path
d = Path(sys.argv[1])
kept = (d / "kept.samples.jsonl").read_text().splitlines()
now = (d / "u.samples.jsonl").read_text().splitlines()
ids = [json.loads(x)["id"] for x in now]
m = json.loads((d / "u.manifest.json").read_text())
print(json.dumps({"kept_rows": len(kept), "rows_now": len(now), "unique_ids": len(set(ids)),
                  "kept_unchanged": now[:len(kept)] == kept, "attempts": m.get("attempts"),
                  "status": m.get("status"), "counts": m.get("counts"), "timings": m.get("timings")}))
PY
say "all done"
