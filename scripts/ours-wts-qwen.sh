#!/usr/bin/env bash
# The paper's Qwen2.5 grid: teachers 1.5B, 3B; students 3B, 7B; all four datasets; then the
# cascade 1.5B -> 3B -> 7B. Extra arguments go to experiment.py (e.g. --summarizer ...).
set -euo pipefail
here="$(dirname "$0")"
FAMILY=qwen2.5 TEACHERS="1.5B 3B" STUDENTS="3B 7B" bash "$here/sweep.sh" "$@"
FAMILY=qwen2.5 TEACHERS="1.5B" MIDLEVEL=3B STUDENTS="7B" bash "$here/sweep.sh" "$@"
