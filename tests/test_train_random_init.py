"""train.py --random-init on CPU: a tiny Llama-shaped folder with no weights (config.json written by
bench/bench_70b.py folder, the small model's tokenizer), LoRA on a few repeated ARC rows, in one
process and in two processes started by accelerate launch with the FSDP2 config. accelerate runs
FSDP on GPUs only, so on CPU the two processes train data-parallel over gloo (the FSDP2 sharding
itself runs on CPU in tests/test_bench_70b.py, through the same alice.random_init pieces); and
--qlora, whose NF4 base is built layer by layer (bitsandbytes>=0.50 quantizes on the CPU); and
LoRA under DeepSpeed ZeRO-3 with gradient checkpointing (DeepSpeed's CPU accelerator, gloo)."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_script

from alice.errors import AliceError

# 4 rows, 6 steps of 2: every row seen 3 times; a high rate so the adapter visibly learns them.
TRAIN = ["--data", "arc_challenge", "--ground-truth", "--limit", "4", "--random-init", "--lora", "--max-steps", "6",
         "--total-batch-size", "2", "--per-device-batch-size", "1", "--max-length", "256", "--lr", "1e-2",
         "--warmup-steps", "0", "--logging-steps", "1", "--no-gradient-checkpointing"]


@pytest.fixture(scope="module")
def tokenizer_dir(small_model, tmp_path_factory) -> Path:
    """The small model's tokenizer with 3 tokens added: 49,155, not a multiple of 128."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(small_model)
    tokenizer.add_tokens(["<extra_1>", "<extra_2>", "<extra_3>"])
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_folder(tokenizer_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    run_script("bench/bench_70b.py", "folder", str(folder), "--tiny", "--tokenizer", str(tokenizer_dir))
    return folder


def check_run(out: Path, folder: Path, processes: int) -> None:
    """Complete manifest naming the random weights, a falling loss, one adapter that reloads."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["steps"] == 6
    assert manifest["recipe"]["random_init"] is True and manifest["args"]["random_init"] is True
    assert manifest["models"]["base"]["weights"].startswith("random weights")
    assert manifest["recipe"]["world_size"] == processes
    assert manifest["recipe"]["gradient_accumulation_steps"] == 2 // processes
    losses = [e["loss"] for e in manifest["log_history"] if "loss" in e]
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses)
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    assert abs(losses[0] - math.log(vocab)) < 0.3  # the random init took effect (no trained weights)
    assert sum(losses[-2:]) / 2 < losses[0] - 0.3, losses  # falls on the repeated rows
    assert manifest["training"]["tokens_per_s"] > 0
    assert all(manifest["timings"][k] > 0 for k in ("load_s", "train_s", "save_s"))

    assert [p.relative_to(out) for p in out.rglob("*.safetensors")] == [Path("adapter_model.safetensors")]
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(folder)
    saved = load_file(out / "adapter_model.safetensors")
    assert len(saved) == 2 * 7 * 2  # lora_A and lora_B of 7 linear layers in each of 2 decoder layers
    assert any(v.abs().sum() > 0 for k, v in saved.items() if "lora_B" in k)  # trained (B starts at zero)

    config = AutoConfig.from_pretrained(folder)
    base = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    loaded = PeftModel.from_pretrained(base, str(out))
    state = loaded.state_dict()
    for key, tensor in saved.items():
        name = key.replace(".weight", ".default.weight")
        assert torch.equal(state[name].to(tensor.dtype), tensor), key


def test_folder_has_no_weights_and_covers_the_tokenizer(tiny_folder, tokenizer_dir):
    from transformers import AutoTokenizer

    assert not list(tiny_folder.glob("*.safetensors")) and not list(tiny_folder.glob("*.bin"))
    config = json.loads((tiny_folder / "config.json").read_text())
    assert config["model_type"] == "llama" and config["dtype"] == "bfloat16" and config["num_hidden_layers"] == 2
    assert len(AutoTokenizer.from_pretrained(tokenizer_dir)) == 49155
    assert config["vocab_size"] == 49280  # the tokenizer's size rounded up to a multiple of 128
    readme = (tiny_folder / "README.txt").read_text()
    assert "vocab_size 49280: the tokenizer's 49155 tokens rounded up" in readme and "random weights" in readme


def test_one_process(tiny_folder, tmp_path):
    out = tmp_path / "one"
    args = [*TRAIN, "--student", str(tiny_folder), "--output-dir", str(out)]
    done = run_script("train.py", *args, timeout=600)
    assert "loss" in done.stdout
    check_run(out, tiny_folder, 1)
    # --random-init is part of the run's identity: the same folder trained from its (absent) weights is another
    # run (train.py's main in this process: a new one would spend ~8 s on imports to say so).
    from train import main

    with pytest.raises(AliceError, match="different run.*random_init"):
        main([a for a in args if a != "--random-init"])


def launch_two(config: str, *args: str, launcher: tuple = (), env: dict | None = None) -> subprocess.CompletedProcess:
    """train.py in two processes started by accelerate launch with ``configs/accelerate/<config>``."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    with socket.socket() as probe:  # a free port for the processes' rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "configs" / "accelerate" / config), "--num_processes", "2", "--main_process_port",
               str(port), *launcher, "train.py", *args]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": path, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_processes_under_accelerate_launch(tiny_folder, tmp_path):
    out = tmp_path / "two"
    done = launch_two("fsdp.yaml", *TRAIN, "--student", str(tiny_folder), "--output-dir", str(out))
    assert "x 2 process(es)" in done.stderr  # both processes counted from the start
    check_run(out, tiny_folder, 2)


def test_qlora_base_is_built_in_nf4_layer_by_layer(tiny_folder, tmp_path):
    import torch
    from bitsandbytes.nn import Linear4bit

    from alice.random_init import random_model

    model = random_model(str(tiny_folder), torch.bfloat16, seed=0, nf4=True)
    linears = [m for m in model.model.layers.modules() if isinstance(m, (torch.nn.Linear, Linear4bit))]
    assert len(linears) == 2 * 7 and all(isinstance(m, Linear4bit) for m in linears)
    assert all(m.weight.quant_state.quant_type == "nf4" for m in linears)
    assert model.is_loaded_in_4bit and not any(t.is_meta for t in model.parameters())
    assert model.lm_head.weight.dtype == torch.bfloat16 and model.model.norm.weight.eq(1).all()
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.isfinite(model(input_ids=ids).logits).all()

    out = tmp_path / "qlora"
    run_script("train.py", *TRAIN, "--student", str(tiny_folder), "--output-dir", str(out), "--qlora", timeout=600)
    check_run(out, tiny_folder, 1)
    assert json.loads((out / "manifest.json").read_text())["recipe"]["lora"]["quantize_4bit"] is True


def test_zero3_lora_recomputes_in_the_non_reentrant_form(tiny_folder, tmp_path):
    """TRL checkpoints PEFT under ZeRO-3 in the reentrant form, which keeps the whole frozen base gathered
    through backward (bench/bench_zero3_gc.py); train.py switches it back (DeepSpeed >= 0.19.3)."""
    out = tmp_path / "zero3"
    args = [a for a in TRAIN if a != "--no-gradient-checkpointing"]
    # DeepSpeed's CPU accelerator; no bf16 on CPU, so mixed precision off (the config asks for bf16).
    launch_two("deepspeed_zero3.yaml", *args, "--student", str(tiny_folder), "--output-dir", str(out),
               launcher=("--mixed_precision", "no"), env={"DS_ACCELERATOR": "cpu"})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["gradient_checkpointing"] == "non-reentrant"
    check_run(out, tiny_folder, 2)
