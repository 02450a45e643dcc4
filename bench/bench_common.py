"""What the benchmark scripts share: adding their keys to bench/results.json, and running several
commands at once under one time limit."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.json"


def add_results(keys: dict, meta: dict) -> None:
    """Each key into bench/results.json with the report's meta (card, date, command) beside its figures."""
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for key, value in keys.items():
        data[key] = {**value, **meta} if isinstance(value, dict) else value
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(keys, indent=2))


def run_at_once(commands: list[tuple[list[str], dict, Path]], timeout: float, cwd: Path) -> tuple[float, list[int]]:
    """(command, environment, log file) triples started together; wall seconds and exit codes (124: timed out)."""
    started = time.time()
    procs = []
    for command, env, log_file in commands:
        print(time.strftime("%H:%M:%S"), " ".join(command), flush=True)
        procs.append(subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file.open("w"), stderr=subprocess.STDOUT))
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(1.0, timeout - (time.time() - started))))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(124)
    return round(time.time() - started, 1), codes
