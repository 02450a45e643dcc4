#!/usr/bin/env bash
# Size sweep: every dataset x teacher size x student size (teacher smaller than student), one
# experiment.py run each, then one report over the sweep. Run folders are named from the settings
# (<root>/<dataset>-<family>-t<teacher>-s<student>), so runs never collide; a finished run
# (experiment.json says "complete", with the same mid model) is skipped, an interrupted one resumes.
# With MIDLEVEL a finished pair's folder gains cascade Alice: its other steps are already done.
#
#   FAMILY=qwen2.5 TEACHERS="1.5B 3B" STUDENTS="3B 7B" bash scripts/sweep.sh [extra experiment.py options]
#   MIDLEVEL=3B TEACHERS=1.5B STUDENTS=7B bash scripts/sweep.sh       # cascade Alice 1.5B -> 3B -> 7B
#   GPUS="0 1 2 3" bash scripts/sweep.sh --seeds 0 1 2 --gate            # four runs at once, one GPU each
#   GPUS="0,1 2,3" bash scripts/sweep.sh                                 # two runs at once, two GPUs each
#
# Environment: FAMILY (qwen2.5 | llama3), TEACHERS, STUDENTS, MIDLEVEL (optional),
# DATASETS (default: gsm8k arc_challenge hotpotqa triviaqa), ROOT (default runs/sweep-<family>),
# GPUS (default: unset, one run after another on every visible GPU; else slots separated by spaces,
# each a comma-separated list of GPUs: that many runs at once, each seeing only its slot's GPUs, its
# output in <run>/sweep.log), PYTHON (default: .venv/bin/python if present, else python).
set -euo pipefail
cd "$(dirname "$0")/.."

FAMILY=${FAMILY:-qwen2.5}
TEACHERS=${TEACHERS:-"1.5B 3B"}
STUDENTS=${STUDENTS:-"3B 7B"}
MIDLEVEL=${MIDLEVEL:-}
DATASETS=${DATASETS:-"gsm8k arc_challenge hotpotqa triviaqa"}
ROOT=${ROOT:-runs/sweep-${FAMILY}}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}

size_of() {  # "1.5B" -> 1.5 (for the teacher < student check)
    echo "$1" | sed -E 's/[bB]$//'
}

finished() {  # a run folder whose experiment.json says complete (with this mid model, if any)
    [ -f "$1/experiment.json" ] && "$PYTHON" -c '
import json, sys
info = json.load(open(sys.argv[1]))
sys.exit(0 if info.get("status") == "complete" and (info.get("midlevel") or "") == sys.argv[2] else 1)' \
        "$1/experiment.json" "$MIDLEVEL"
}

GPUS=${GPUS:-}
declare -A slot_pid=() pid_name=()

reap() {  # a finished background run: its exit status
    local pid=$1
    if wait "$pid"; then
        echo "== ${pid_name[$pid]}: done"
    else
        echo "== ${pid_name[$pid]}: failed (its log: $ROOT/${pid_name[$pid]}/sweep.log; rerun this script to resume it)"
        failed=1
    fi
}

take_slot() {  # waits until a slot of GPUS has no run going; leaves it in $slot
    while :; do
        for slot in $GPUS; do
            local pid=${slot_pid[$slot]:-}
            if [ -z "$pid" ]; then return; fi
            if ! kill -0 "$pid" 2>/dev/null; then reap "$pid"; slot_pid[$slot]=""; return; fi
        done
        sleep 2
    done
}

mkdir -p "$ROOT"
failed=0
for data in $DATASETS; do
    for teacher in $TEACHERS; do
        for student in $STUDENTS; do
            if ! awk -v t="$(size_of "$teacher")" -v s="$(size_of "$student")" 'BEGIN { exit !(t < s) }'; then
                continue  # weak-to-strong: the teacher is the smaller model
            fi
            name="${data}-${FAMILY}-t${teacher}-s${student}"
            run="$ROOT/$name"
            if finished "$run"; then
                echo "== $name: finished, skipped"
                continue
            fi
            mid=()
            if [ -n "$MIDLEVEL" ]; then mid=(--midlevel "$MIDLEVEL"); else mid=(--no-cascade); fi
            command=("$PYTHON" experiment.py --data "$data" --model "$FAMILY" --teacher "$teacher"
                     --student "$student" "${mid[@]}" --run-dir "$run" "$@")
            if [ -z "$GPUS" ]; then
                echo "== $name"
                if ! "${command[@]}"; then
                    echo "== $name: failed (rerun this script to resume it)"
                    failed=1
                fi
                continue
            fi
            take_slot
            mkdir -p "$run"
            CUDA_VISIBLE_DEVICES=$slot "${command[@]}" > "$run/sweep.log" 2>&1 &
            slot_pid[$slot]=$!
            pid_name[$!]=$name
            echo "== $name: started on GPU $slot (log: $run/sweep.log)"
        done
    done
done
for slot in $GPUS; do  # the runs still going
    pid=${slot_pid[$slot]:-}
    if [ -n "$pid" ]; then reap "$pid"; fi
done
"$PYTHON" report.py "$ROOT" > /dev/null
echo "report: $ROOT/report.md, $ROOT/report.csv, $ROOT/report.png"
exit $failed
