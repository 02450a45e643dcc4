"""--attn-implementation varlen (alice/attention.py) on the real small model: a padding-free batch's
rows stay apart exactly as under transformers' block-diagonal mask, and train.py trains the same
with it."""

from __future__ import annotations

import json

import pytest
import torch

from alice import attention
from alice.records import manifest_path

ROW_LENGTHS = [37, 80, 5, 120]


@pytest.fixture(scope="module")
def packed_batch():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 40000, (1, sum(ROW_LENGTHS)), generator=generator)
    positions = torch.cat([torch.arange(n) for n in ROW_LENGTHS]).unsqueeze(0)
    return ids, positions


def _forward_backward(model_dir: str, implementation: str, ids, positions):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=implementation)
    model.train()
    out = model(input_ids=ids, position_ids=positions, labels=ids, use_cache=False)
    out.loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return out.loss.detach(), out.logits.detach(), grads


def test_packed_rows_attend_only_to_themselves(small_model, packed_batch):
    ids, positions = packed_batch
    name = attention.register()
    masked = _forward_backward(small_model, "sdpa", ids, positions)
    varlen = _forward_backward(small_model, name, ids, positions)
    assert torch.allclose(masked[0], varlen[0], atol=1e-5)
    assert torch.allclose(masked[1], varlen[1], atol=5e-4)
    assert (masked[2] - varlen[2]).abs().max() <= 1e-4 * masked[2].abs().max()
    # Each row alone gives the same logits: no row sees another.
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(small_model, dtype=torch.float32)
    start = 0
    for length in ROW_LENGTHS:
        alone = model(input_ids=ids[:, start:start + length]).logits.detach()
        assert torch.allclose(alone, varlen[1][:, start:start + length], atol=5e-4)
        start += length
    # Flattened rows joined without a position reset would attend across rows: the test can fail.
    joined = _forward_backward(small_model, name, ids, torch.arange(ids.shape[1]).unsqueeze(0))
    assert not torch.allclose(joined[1], varlen[1], atol=1e-2)


def test_padded_batches_and_generation_use_sdpa_unchanged(small_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(small_model)
    tokenizer.padding_side = "left"
    batch = tokenizer(["What is two plus two?", "Name a colour."], return_tensors="pt", padding=True)
    outputs = {}
    for implementation in ("sdpa", attention.register()):
        model = AutoModelForCausalLM.from_pretrained(small_model, dtype=torch.float32,
                                                     attn_implementation=implementation)
        outputs[implementation] = model.generate(**batch, max_new_tokens=8, do_sample=False)
    assert torch.equal(outputs["sdpa"], outputs[attention.NAME])


def test_train_py_padding_free_with_varlen_trains_as_with_the_mask(small_model, tmp_path):
    """Two optimizer steps of padding-free full fine-tuning: the same losses with either attention, and
    the saved model loads without the registration (config.json does not name it). No checkpoint is
    written at the last step unless checkpoints are kept (the model is saved whole right after)."""
    from train import main

    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i:03d}", "question": f"What is {i} plus {i + 3}?",
                                        "answer": str(2 * i + 3)}) + "\n" for i in range(40)))
    losses = {}
    for implementation in ("sdpa", "varlen"):
        out = tmp_path / implementation
        keep = ["--keep-checkpoints"] if implementation == "sdpa" else []
        main(["--data", str(data), "--answer-type", "number", "--teacher", small_model, "--ground-truth",
              "--max-steps", "2", *keep,
              "--total-batch-size", "8", "--per-device-batch-size", "8", "--padding-free", "--warmup-steps", "0",
              "--logging-steps", "1", "--no-gradient-checkpointing", "--attn-implementation", implementation,
              "--output-dir", str(out)])
        manifest = json.loads(manifest_path(out).read_text())
        assert manifest["status"] == "complete" and manifest["training"]["attention"] == implementation
        losses[implementation] = [entry["loss"] for entry in manifest["log_history"] if "loss" in entry]
        assert "attn_implementation" not in json.loads((out / "config.json").read_text())
        # save_steps (200) is past the run's 2 steps: only the final checkpoint, and only when kept.
        assert manifest["training"]["checkpoints_this_attempt"] == len(keep)
        assert [p.name for p in out.glob("checkpoint-*")] == (["checkpoint-2"] if keep else [])
    assert len(losses["sdpa"]) == 2 and losses["sdpa"] == pytest.approx(losses["varlen"], rel=1e-4)


def test_padding_free_training_takes_varlen_only_on_a_gpu():
    from alice.stages.train import TrainConfig
    from alice.training import training_attention

    on_gpu = torch.cuda.is_available()  # the CPU keeps the model's own attention (and its outputs)
    assert training_attention(TrainConfig(padding_free=True)) == ("varlen" if on_gpu else None)
    assert training_attention(TrainConfig(packing=True)) == ("varlen" if on_gpu else None)
    assert training_attention(TrainConfig()) is None
    assert training_attention(TrainConfig(padding_free=True, attn_implementation="varlen")) == "varlen"
    assert training_attention(TrainConfig(attn_implementation="eager")) == "eager"
