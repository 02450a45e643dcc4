"""Shared fixtures: the small real model (SmolLM2-135M-Instruct, built offline from PyPI), another model
of its architecture, one in-process vLLM engine and one transformers backend of it for the session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def small_model() -> str:
    from alice.models import resolve_model

    return resolve_model("smollm2").path


@pytest.fixture(scope="session")
def vllm_engine(small_model):
    """One in-process vLLM engine of the small model for the whole session (an engine start costs tens of
    seconds on this CPU); tests that change its weights put them back."""
    pytest.importorskip("vllm")
    from alice.backends import VLLMBackend
    from alice.models import resolve_model

    backend = VLLMBackend(resolve_model(small_model), max_model_len=2048)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def _hf_small(small_model):
    from alice.backends import HFBackend
    from alice.models import resolve_model

    backend = HFBackend(resolve_model(small_model))
    yield backend
    backend.close()


@pytest.fixture
def hf_backend(_hf_small):
    """The session's transformers backend of the small model, for a stage's ``main(argv, backend=...)`` (a
    stage script in a new process spends ~10 s on 2 cores importing and loading it). Call it with the
    --batch-size the command would have: a sampled batch is seeded from its questions, so it decides the samples."""

    def with_batch_size(batch_size: int = 16):
        _hf_small.batch_size = batch_size
        return _hf_small

    return with_batch_size


@pytest.fixture(scope="session")
def other_small_model(small_model, tmp_path_factory) -> str:
    """Another model of the small model's architecture: its MLP weights moved by noise, so its greedy
    outputs differ (for tests that swap one model's weights for another's)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("other-model")
    model = AutoModelForCausalLM.from_pretrained(small_model, dtype=torch.float32)
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if ".mlp." in name:
                weight.add_(torch.randn(weight.shape, generator=noise) * weight.std() * 0.3)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(small_model).save_pretrained(folder)
    return str(folder)


def run_script(script: str, *args: str, check: bool = True, env: dict | None = None,
               timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a stage script as a user would: a subprocess from the repo root, importing this checkout's
    ``alice`` (whether or not a copy of the package is installed)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    full_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    done = subprocess.run([sys.executable, str(REPO / script), *args], check=False, cwd=REPO, capture_output=True,
                          text=True, env=full_env, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{script} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def kill_when(process: subprocess.Popen, path: Path, min_lines: int, timeout: int = 300) -> None:
    """SIGKILL the process once ``path`` holds at least ``min_lines`` rows."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(lines(path)) >= min_lines:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return
        if process.poll() is not None:
            raise AssertionError(f"finished before it could be killed: {process.stderr.read()[-2000:]}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"no output appeared in {path} in time")
