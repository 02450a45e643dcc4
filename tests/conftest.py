"""Shared fixtures: the small real model (SmolLM2-135M-Instruct, built offline from PyPI) and
one vLLM engine per test module where vLLM runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def small_model() -> str:
    from alice.models import resolve_model

    return resolve_model("smollm2").path


def run_script(script: str, *args: str, check: bool = True, env: dict | None = None,
               timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a stage script as a user would: a subprocess from the repo root."""
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run([sys.executable, str(REPO / script), *args], check=False, cwd=REPO, capture_output=True,
                          text=True, env=full_env, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{script} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done
