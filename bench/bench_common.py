"""What the benchmark scripts share: adding their keys to bench/results.json, and running several
commands at once under one time limit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results.json"


def add_results(keys: dict, meta: dict) -> None:
    """Each key into bench/results.json with the report's meta (card, date, command) beside its figures."""
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for key, value in keys.items():
        data[key] = {**value, **meta} if isinstance(value, dict) else value
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(keys, indent=2))


def run_at_once(commands: list[tuple[list[str], dict, Path]], timeout: float, cwd: Path = REPO) -> tuple[float, list[int]]:
    """(command, environment, log file) triples started together; wall seconds and exit codes (124: timed out).
    Each command runs in its own process group, and a timed-out one is killed with its whole group: vLLM's
    engine processes outlive a killed parent and keep their GPU memory, so every later variant would fail
    to start (seen on an H200: 88 GB held by six orphaned engines)."""
    started = time.time()
    procs = []
    for command, env, log_file in commands:
        log(" ".join(command), f"(GPUs {env.get('CUDA_VISIBLE_DEVICES', 'all')})")
        procs.append(subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file.open("w"), stderr=subprocess.STDOUT,
                                      start_new_session=True))
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(1.0, timeout - (time.time() - started))))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            codes.append(124)
    return round(time.time() - started, 1), codes


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def env_for(gpus: str | None = None, **extra: str) -> dict:
    """This environment with the checkout on PYTHONPATH, and the GPUs a command may use."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if gpus is not None:
        env.update(CUDA_VISIBLE_DEVICES=gpus, NCCL_NVLS_ENABLE="0")
    env.update(extra)
    return env


def read_manifest(output: Path) -> dict:
    """The manifest a stage wrote beside its output (or inside its output folder); {} before it exists."""
    from alice.records import manifest_path

    path = manifest_path(output)
    return json.loads(path.read_text()) if path.is_file() else {}


def tail(path: Path, lines: int = 3) -> str:
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) if path.is_file() else ""


def wait_for_servers(urls: list[str], servers: list[subprocess.Popen], timeout: float) -> bool:
    """True once every OpenAI-compatible server answers /models; False if one exits or time runs out."""
    deadline = time.time() + timeout
    pending = list(urls)
    while pending and time.time() < deadline:
        if any(s.poll() is not None for s in servers):
            return False
        try:
            urllib.request.urlopen(pending[0] + "/models", timeout=2)
            pending.pop(0)
        except OSError:
            time.sleep(2)
    return not pending


def merge_report(path: str, keys: Callable[[dict], dict]) -> None:
    """A report JSON from the GPU machine: its keys into bench/results.json."""
    report = json.loads(Path(path).read_text())
    add_results(keys(report), report["meta"])
