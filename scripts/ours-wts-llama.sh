#!/usr/bin/env bash
# The paper's Llama 3 grid: teachers 1B, 3B (Llama-3.2); students 3B, 8B (Llama-3.1-8B); all four
# datasets; then the cascade 1B -> 3B -> 8B. Extra arguments go to experiment.py.
set -euo pipefail
here="$(dirname "$0")"
FAMILY=llama3 TEACHERS="1B 3B" STUDENTS="3B 8B" bash "$here/sweep.sh" "$@"
FAMILY=llama3 TEACHERS="1B" MIDLEVEL=3B STUDENTS="8B" bash "$here/sweep.sh" "$@"
