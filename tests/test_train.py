"""train.py on the real small model (SmolLM2-135M-Instruct) on CPU: full and LoRA fine-tuning,
the loss mask on a real tokenized example, reloading and evaluating what was saved, resuming a
killed run, and the one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_script

from alice.errors import AliceError
from alice.records import manifest_path
from alice.tasks import load_task

# Few, short rows and steps: the point is the real path end to end, not a good model.
FAST = ["--total-batch-size", "2", "--per-device-batch-size", "2", "--warmup-steps", "0",
        "--logging-steps", "1", "--no-gradient-checkpointing", "--max-length", "256"]


@pytest.fixture(scope="module")
def sums(tmp_path_factory) -> Path:
    """A custom number task with short questions: 72 train rows (a 36-row teacher half) and 3 test rows."""
    path = tmp_path_factory.mktemp("data") / "sums.jsonl"
    rows = [{"id": f"s{i:03d}", "question": f"What is {i} plus {i + 3}?", "answer": str(2 * i + 3)}
            for i in range(72)]
    rows += [{"id": f"t{i}", "question": f"What is {i} plus {i}?", "answer": str(2 * i), "split": "test"}
             for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def train_file(sums: Path) -> Path:
    """A stage-style training file: 32 kept rows plus 4 rows cot_generate_filter marked kept: false."""
    task = load_task(str(sums), "number")
    rows = []
    for i, ex in enumerate(task.examples("teacher")[:36]):
        kept = i >= 4
        response = f"{ex.question.split('?')[0]} equals {ex.gold}.\n#### {ex.gold}" if kept else "#### 0"
        rows.append({"id": ex.id, "question": ex.question, "response": response, "kept": kept})
    path = sums.with_name("cot-sums.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _manifest(folder: Path) -> dict:
    return json.loads(manifest_path(folder).read_text())


def _eval(model: Path, sums: Path, tmp: Path) -> dict:
    """eval.py's main in this process: it loads the saved folder or adapter as a new process would (a process
    of its own would add ~8 s of imports on 2 cores)."""
    from eval import main

    out = tmp / f"eval-{model.name}.jsonl"
    return main(["--data", str(sums), "--answer-type", "number", "--model", str(model), "--backend", "hf",
                 "--limit", "3", "--max-new-tokens", "32", "--output", str(out)])


def _main(*argv: str) -> None:
    """train.py's main in this process (a run that trains nothing still imports for ~8 s in a new one)."""
    from train import main

    main(list(argv))


def test_sft_config_reads_train_py_settings(tmp_path):
    """TRL's SFTConfig is built from train.py's parsed settings themselves (no mirror of them)."""
    from alice.config import parse
    from alice.stages.train import TrainConfig
    from alice.training import lora_config, sft_config

    config = parse(TrainConfig, ["--lr", "3e-5", "--max-steps", "2", "--warmup-steps", "5", "--no-bf16",
                                 "--lora", "--lora-target-modules", "q_proj,v_proj"])
    sft = sft_config(config, tmp_path / "run", processes=1)
    assert (sft.learning_rate, sft.max_steps, sft.warmup_steps, sft.bf16) == (3e-5, 2, 5, False)
    assert sft.output_dir == str(tmp_path / "run") and sft.gradient_accumulation_steps == 16  # the recipe's 16
    assert sft.num_train_epochs == 3 and sft.save_total_limit == 2
    assert set(lora_config(config).target_modules) == {"q_proj", "v_proj"}


def test_training_prompt_is_the_stage_prompt_and_only_the_response_is_trained(small_model):
    from alice.backends import apply_template, load_tokenizer
    from alice.config import parse
    from alice.models import resolve_model
    from alice.stages.train import TrainConfig
    from alice.training import load_base_model, make_trainer, sft_records, training_prompt

    task = load_task("arc_challenge")
    examples = task.examples("teacher", limit=2)
    assert training_prompt(task, examples[0].question, examples[0].id) == task.messages(examples[0])
    rows = [{"id": ex.id, "question": ex.question, "response": f"Step by step. My choice is {ex.gold}."}
            for ex in examples]
    ref = resolve_model(small_model)
    tokenizer = load_tokenizer(ref)
    config = parse(TrainConfig, ["--max-length", "1024"])
    trainer = make_trainer(load_base_model(ref, config), tokenizer, sft_records(task, rows), config,
                           "/tmp/unused-masking-check", 1)
    for row, ex, item in zip(rows, examples, trainer.train_dataset):
        prompt_ids = tokenizer(apply_template(tokenizer, task.messages(ex)), add_special_tokens=False)["input_ids"]
        full_text = tokenizer.apply_chat_template(
            task.messages(ex) + [{"role": "assistant", "content": row["response"]}], tokenize=False)
        full_ids = tokenizer(full_text, add_special_tokens=False)["input_ids"]
        ids, labels = item["input_ids"], item["labels"]
        assert ids == full_ids  # the real chat template, tokenized once
        assert ids[:len(prompt_ids)] == prompt_ids
        assert all(label == -100 for label in labels[:len(prompt_ids)])  # every prompt token masked
        assert all(label == tok for label, tok in zip(labels[len(prompt_ids):], ids[len(prompt_ids):]))
        trained = tokenizer.decode(ids[len(prompt_ids):])
        assert trained.startswith(row["response"]) and tokenizer.eos_token in trained  # learns to stop
        starts = [i for i, tok in enumerate(ids[:3]) if tok == tokenizer.bos_token_id]
        assert len(starts) <= 1 and ids[0] != ids[1]  # no doubled BOS


def test_full_fine_tuning_reloads_evaluates_and_is_not_retrained(small_model, sums, train_file, tmp_path, capsys):
    """Full fine-tuning with a warm-up that is a share of the run: 3 of its 4 steps (ceil(0.6 x 4))."""
    out = tmp_path / "teacher"
    fast = [a for a in FAST if a not in ("--warmup-steps", "0")]
    args = ["--data", str(sums), "--answer-type", "number", "--teacher", small_model,
            "--train-file", str(train_file), "--max-steps", "4", "--lr", "2e-4", "--warmup-ratio", "0.6",
            "--output-dir", str(out), *fast]
    done = run_script("train.py", *args)
    manifest = _manifest(out)
    assert manifest["status"] == "complete" and manifest["counts"]["steps"] == 4
    assert manifest["counts"]["rows"] == 32 and manifest["counts"]["skipped_not_kept"] == 4
    training = manifest["training"]
    assert training["final_loss"] < training["first_loss"], training
    assert training["tokens_per_s"] > 0 and manifest["data"]["data_hash"]
    assert manifest["recipe"]["gradient_accumulation_steps"] == 1
    assert not list(out.glob("checkpoint-*"))  # removed once the model is saved
    # The warm-up: what it took and what the run reached, and a warning that it is most of the run.
    assert (training["steps"], training["max_steps"], training["warmup_steps"]) == (4, 4, 3)
    assert abs(training["peak_lr_reached"] - 2e-4) < 1e-12  # the warm-up ends inside the run
    assert manifest["recipe"]["warmup_ratio"] == 0.6 and manifest["recipe"]["warmup_steps"] is None
    assert "warning: the warm-up takes 3 of the run's 4 optimizer steps" in done.stderr

    import torch

    from alice.backends import load_hf_model
    from alice.models import resolve_model

    ref = resolve_model(str(out))
    assert ref.path == str(out) and ref.adapter is None
    trained = load_hf_model(ref, device="cpu", dtype=torch.bfloat16)
    base = load_hf_model(resolve_model(small_model), device="cpu", dtype=torch.bfloat16)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"  # the base model's dtype
    changed = [name for (name, p), (_, q) in zip(trained.named_parameters(), base.named_parameters())
               if not torch.equal(p, q)]
    assert len(changed) > 10  # full fine-tuning moved the weights
    summary = _eval(out, sums, tmp_path)
    assert summary["n"] == 3

    capsys.readouterr()
    _main(*args)
    assert "complete" in capsys.readouterr().out
    from alice.models import drop_weights, has_weights

    drop_weights(out)  # evaluated, its weights dropped (--drop-weights), or restored from deliverables
    _main(*args)
    assert "weights are gone: training it again" in capsys.readouterr().out
    assert has_weights(out) and _manifest(out)["status"] == "complete"
    with pytest.raises(AliceError, match="different run"):  # the scripts' one-line error (exit 2)
        _main(*[a if a != "2e-4" else "1e-4" for a in args])


def test_lora_resumes_after_a_kill_and_the_adapter_reloads(small_model, sums, tmp_path, capsys):
    out = tmp_path / "student-lora"
    args = ["train.py", "--data", str(sums), "--answer-type", "number", "--student", small_model,
            "--ground-truth", "--pool", "student", "--lora", "--lr", "2e-3", "--max-steps", "4",
            "--save-steps", "1", "--output-dir", str(out), *FAST]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "checkpoint-2" / "trainer_state.json").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline, "no checkpoint written"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _manifest(out)["status"] == "running"

    # The same command again continues from the last checkpoint (no --resume needed, as in every stage).
    resumed = run_script(*args)
    assert "resuming from checkpoint-" in resumed.stderr
    manifest = _manifest(out)
    assert manifest["status"] == "complete" and manifest["counts"]["steps"] == 4
    assert manifest["resumed_from"].startswith("checkpoint-")
    resumed_at = int(manifest["resumed_from"].split("-")[1])
    assert 2 <= resumed_at < 4 and manifest["training"]["steps_this_attempt"] == 4 - resumed_at
    steps_logged = [e["step"] for e in manifest["log_history"] if "loss" in e]
    assert steps_logged == sorted(set(steps_logged)) and steps_logged[-1] == 4
    assert manifest["training"]["final_loss"] < manifest["training"]["first_loss"]
    capsys.readouterr()
    _main(*args[1:], "--resume")  # the old flag is still accepted; a finished run is left as it is
    assert "nothing to do" in capsys.readouterr().out and _manifest(out) == manifest

    from alice.models import resolve_model

    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    ref = resolve_model(str(out))
    assert ref.adapter == str(out) and ref.path == small_model
    assert _eval(out, sums, tmp_path)["n"] == 3


def test_qlora_trains_an_nf4_base_on_the_cpu(small_model, sums, tmp_path):
    """--qlora loads the real model through bitsandbytes (NF4, double quantization) and trains an adapter
    on it; bitsandbytes>=0.50 runs this on the CPU (the qlora extra). Two steps: on 2 cores one NF4 step of
    this model takes ~25 s (its bf16 matmuls and the dequantization of every layer, forward and backward)."""
    out = tmp_path / "student-qlora"
    run_script("train.py", "--data", str(sums), "--answer-type", "number", "--student", small_model, "--ground-truth",
               "--pool", "student", "--qlora", "--lr", "2e-3", "--max-steps", "2", "--output-dir", str(out), *FAST)
    manifest = _manifest(out)
    assert manifest["status"] == "complete" and manifest["recipe"]["lora"]["quantize_4bit"] is True
    assert manifest["training"]["final_loss"] < manifest["training"]["first_loss"]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    # The adapter is an ordinary LoRA adapter: it loads onto the unquantized model as well.
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(small_model), str(out))
    assert sum(p.abs().sum().item() for n, p in model.named_parameters() if "lora_B" in n) > 0


def test_clear_errors(small_model, sums, tmp_path):
    from alice.training import gradient_accumulation_steps, read_training_rows

    base = ["--data", str(sums), "--answer-type", "number", "--model", small_model, "--output-dir",
            str(tmp_path / "out")]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(AliceError, match="no rows to train on"):
        _main(*base, "--train-file", str(empty))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "response": "r"}\n{not json\n')
    with pytest.raises(AliceError, match=r"bad.jsonl:2: malformed JSON"):
        _main(*base, "--train-file", str(bad))
    no_response = tmp_path / "no_response.jsonl"
    no_response.write_text('{"id": "a", "question": "q", "response": "r"}\n{"id": "b", "question": "q"}\n')
    with pytest.raises(AliceError, match=r"no_response.jsonl:2: row 'b' has no 'response'"):
        _main(*base, "--train-file", str(no_response))
    all_dropped = tmp_path / "dropped.jsonl"
    all_dropped.write_text('{"id": "a", "question": "q", "response": "r", "kept": false}\n')
    with pytest.raises(AliceError, match="all 1 rows are marked kept: false"):
        read_training_rows(all_dropped)
    with pytest.raises(AliceError, match="not a multiple"):
        _main(*base, "--ground-truth", "--total-batch-size", "16", "--per-device-batch-size", "3")
    assert gradient_accumulation_steps(16, 1, 1) == 16 and gradient_accumulation_steps(16, 2, 2) == 4

    no_template = tmp_path / "no-template"
    no_template.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(Path(small_model) / name, no_template / name)
    config = json.loads((Path(small_model) / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (no_template / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(AliceError, match="no chat template"):
        _main(*base[:4], "--model", str(no_template), "--ground-truth", "--output-dir", str(tmp_path / "o2"))

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "model.safetensors").write_text("someone else's model")
    with pytest.raises(AliceError, match="exists without a manifest"):
        _main(*base[:6], "--ground-truth", "--output-dir", str(foreign))
    assert (foreign / "model.safetensors").read_text() == "someone else's model"
