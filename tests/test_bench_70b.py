"""bench/bench_70b.py on CPU with a tiny Llama: FSDP2 over 2 gloo processes, and QLoRA where bitsandbytes is here."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(REPO / "bench" / "bench_70b.py")
TINY = ["--tiny", "--device", "cpu", "--steps", "6", "--rows", "4", "--seq-len", "32", "--lr", "1e-2"]


def check(result: dict, adapter: Path) -> None:
    for key in ("losses", "step_times_s", "tokens_per_s", "init_s", "mfu", "model_flops_per_token",
                "hardware_flops_per_token", "formula", "peak_flops_per_gpu", "peak_memory_per_gpu", "n_trainable",
                "adapter_mb", "loss_expected_at_init"):
        assert key in result, key
    assert result["finished"] is True and "error" not in result
    assert len(result["losses"]) == 6 and all(math.isfinite(x) for x in result["losses"])
    assert result["loss_finite"] and result["loss_falling"]
    assert abs(result["losses"][0] - result["loss_expected_at_init"]) < 0.1  # the random init took effect
    assert result["adapter_reloads"] is True and result["adapter_tensors"] == 2 * 7 * 2  # A, B x 7 linears x 2 layers
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()


def run(command: list[str]) -> None:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_fsdp_tiny_cpu(tmp_path: Path) -> None:
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", SCRIPT, "fsdp",
         "--out", str(tmp_path), *TINY])
    result = json.loads((tmp_path / "fsdp.json").read_text())
    check(result, tmp_path / "fsdp_adapter")
    assert result["world_size"] == 2
    assert sorted(p.name for p in tmp_path.rglob("*.safetensors")) == ["adapter_model.safetensors"]  # one writer
    assert not list(tmp_path.glob("*.error.txt"))


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None,
                    reason="bitsandbytes is not installed (not a project dependency); its CPU 4-bit path is needed")
def test_qlora_tiny_cpu(tmp_path: Path) -> None:
    run([sys.executable, SCRIPT, "qlora", "--out", str(tmp_path), *TINY])
    result = json.loads((tmp_path / "qlora.json").read_text())
    check(result, tmp_path / "qlora_adapter")
    assert result["prepare_model_for_kbit_training"] is True
