#!/usr/bin/env bash
# Size sweep: every dataset x teacher size x student size (teacher smaller than student), one
# experiment.py run each, then one report over the sweep. Run folders are named from the settings
# (<root>/<dataset>-<family>-t<teacher>-s<student>), so runs never collide; a finished run
# (experiment.json says "complete", with the same mid model) is skipped, an interrupted one resumes.
# With MIDLEVEL a finished pair's folder gains cascade Alice: its other steps are already done.
#
#   FAMILY=qwen2.5 TEACHERS="1.5B 3B" STUDENTS="3B 7B" bash scripts/sweep.sh [extra experiment.py options]
#   MIDLEVEL=3B TEACHERS=1.5B STUDENTS=7B bash scripts/sweep.sh       # cascade Alice 1.5B -> 3B -> 7B
#
# Environment: FAMILY (qwen2.5 | llama3), TEACHERS, STUDENTS, MIDLEVEL (optional),
# DATASETS (default: gsm8k arc_challenge hotpotqa triviaqa), ROOT (default runs/sweep-<family>),
# PYTHON (default: .venv/bin/python if present, else python).
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
            echo "== $name"
            mid=()
            if [ -n "$MIDLEVEL" ]; then mid=(--midlevel "$MIDLEVEL"); else mid=(--no-cascade); fi
            if ! "$PYTHON" experiment.py --data "$data" --model "$FAMILY" --teacher "$teacher" \
                    --student "$student" "${mid[@]}" --run-dir "$run" "$@"; then
                echo "== $name: failed (rerun this script to resume it)"
                failed=1
            fi
        done
    done
done
"$PYTHON" report.py "$ROOT" > /dev/null
echo "report: $ROOT/report.md, $ROOT/report.csv, $ROOT/report.png"
exit $failed
