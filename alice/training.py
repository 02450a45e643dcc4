"""Supervised fine-tuning (stages 2 and 6, and the baselines) on the Hugging Face stack.

One code path for every trained model in the method: the teacher on its filtered CoT, the student
on Alice's answers, the original-W2S student on teacher labels, and the weak / strong-ceiling
baselines on ground truth. TRL's ``SFTTrainer`` sees conversational prompt/completion rows whose
prompt is exactly ``Task.messages(example)`` (the prompt every other stage uses), so the model is
trained on the same context it is evaluated in and the loss falls only on the assistant's tokens.

    rows = read_training_rows("data/cot-arc.jsonl")              # kept rows of any stage
    records = sft_records(task, rows)                            # prompt/completion conversations
    config = parse(TrainConfig, ["--lora"])                      # train.py's settings (the recipe)
    trainer = make_trainer(model, tokenizer, records, config, "runs/teacher")
    trainer.train()

The recipe is train.py's ``TrainConfig`` (alice/stages/train.py), read here as it is: ``sft_config``
turns it into TRL's SFTConfig. The train.py stage (``alice.stages.train.run_training``) adds the run
management (resume, manifest); ``bench/bench_train.py`` reuses ``make_trainer`` on random-weight models.
alice.stages.train imports this module inside its functions and this module names ``TrainConfig``
only for type checking, so neither imports the other when loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AliceError
from .models import ModelRef, resolve_model
from .records import iter_jsonl
from .tasks import Example, Task

if TYPE_CHECKING:
    from .stages.train import TrainConfig

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
SAVE_TOTAL_LIMIT = 2  # checkpoints kept while training (a rerun resumes from the last)


# ----------------------------------------------------------------------------- data


def training_prompt(task: Task, question: str, row_id: str = "") -> list[dict]:
    """The user turn for ``question``: exactly what ``task.messages`` gives every other stage,
    so training and evaluation prompts match token for token."""
    return task.messages(Example(id=row_id, question=question, gold=""))


def read_training_rows(path: str | Path) -> tuple[list[dict], int]:
    """Rows (id, question, response) of any stage's JSONL; rows marked ``"kept": false`` (filtered
    out by cot_generate_filter.py) are skipped. Returns (rows, number skipped)."""
    path = Path(path)
    rows, seen, skipped = [], {}, 0
    for number, row in iter_jsonl(path):
        if "id" not in row or row["id"] in (None, ""):
            raise AliceError(f"{path}:{number}: row has no 'id'")
        row_id = str(row["id"])
        if row_id in seen:
            raise AliceError(f"{path}:{number}: duplicate id {row_id!r} (first on line {seen[row_id]})")
        seen[row_id] = number
        if row.get("kept") is False:
            skipped += 1
            continue
        for key in ("question", "response"):
            value = row.get(key)
            if not isinstance(value, str) or not value.strip():
                raise AliceError(f"{path}:{number}: row {row_id!r} has no '{key}' to train on")
        rows.append({"id": row_id, "question": row["question"], "response": row["response"]})
    if not rows:
        why = f" (all {skipped} rows are marked kept: false)" if skipped else ""
        raise AliceError(f"{path}: no rows to train on{why}")
    return rows, skipped


def ground_truth_rows(task: Task, pool: str, split_seed: int | None = None, limit: int | None = None,
                      rationale: bool = True) -> list[dict]:
    """The gold targets of a pool (weak and strong-ceiling baselines): GSM8K rationales, ARC
    'My choice is X.', short answers for open QA; ``rationale=False`` gives answers only."""
    return [{"id": ex.id, "question": ex.question, "response": task.ground_truth_response(ex, rationale)}
            for ex in task.examples(pool, split_seed, limit)]


def sft_records(task: Task, rows: list[dict]) -> list[dict]:
    """Conversational prompt/completion records: TRL masks the prompt, trains on the completion."""
    return [{"prompt": training_prompt(task, row["question"], row["id"]),
             "completion": [{"role": "assistant", "content": row["response"]}]} for row in rows]


def data_hash(records: list[dict]) -> str:
    """Identity of the training data as the model sees it (order included)."""
    blob = json.dumps(records, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_train_file_task(path: str | Path, data: str) -> None:
    """A training file made for another dataset would get the wrong answer instruction."""
    from .records import manifest_path
    from .tasks import ALIASES, TASKS

    manifest = manifest_path(path)
    if not manifest.is_file():
        return
    try:
        made_for = json.loads(manifest.read_text(encoding="utf-8")).get("args", {}).get("data")
    except json.JSONDecodeError:
        return
    if not isinstance(made_for, str):
        return
    made_for, given = (ALIASES.get(d.lower(), d.lower()) for d in (made_for, data))
    if made_for in TASKS and given in TASKS and made_for != given:
        raise AliceError(f"{path} was made for --data {made_for} (its manifest says so), "
                         f"not {given}: pass --data {made_for}")


# ----------------------------------------------------------------------------- recipe


def trains_adapter(config: TrainConfig) -> bool:
    """A LoRA adapter trains (--lora, or --qlora on a 4-bit base) rather than every weight."""
    return config.lora or config.qlora


def lora_target_modules(config: TrainConfig) -> list[str] | str:
    """--lora-target-modules as PEFT takes it: "all-linear", or the list of comma-separated names."""
    targets = config.lora_target_modules
    return targets if targets == "all-linear" else targets.split(",")


def lora_settings(config: TrainConfig) -> dict | None:
    """The adapter's settings as manifests record them; None for full fine-tuning."""
    if not trains_adapter(config):
        return None
    return {"rank": config.lora_rank, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
            "target_modules": lora_target_modules(config), "quantize_4bit": config.qlora}


def recipe_record(config: TrainConfig, output_dir: str | Path) -> dict:
    """The recipe as train.py's manifest records it (its "recipe" block, under the names manifests have
    always used: learning_rate for --lr, bf16 None where the hardware decides, ...)."""
    return {
        "output_dir": str(output_dir), "epochs": config.epochs, "learning_rate": config.lr,
        "weight_decay": config.weight_decay, "warmup_ratio": config.warmup_ratio,
        "warmup_steps": config.warmup_steps, "scheduler": config.scheduler,
        "total_batch_size": config.total_batch_size, "per_device_batch_size": config.per_device_batch_size,
        "max_steps": config.max_steps, "max_length": config.max_length, "seed": config.seed,
        "lora": lora_settings(config), "packing": config.packing, "padding_free": config.padding_free,
        "gradient_checkpointing": config.gradient_checkpointing,
        "reentrant_checkpointing": config.reentrant_checkpointing, "save_steps": config.save_steps,
        "save_total_limit": SAVE_TOTAL_LIMIT, "logging_steps": config.logging_steps,
        "bf16": False if config.no_bf16 else None, "report_to": list(config.report_to),
        "max_grad_norm": config.max_grad_norm, "optim": config.optim, "torch_compile": config.torch_compile,
        "use_liger_kernel": config.use_liger_kernel, "random_init": config.random_init,
    }


def world_size() -> int:
    from accelerate import PartialState

    return PartialState().num_processes


def gradient_accumulation_steps(total_batch_size: int, per_device_batch_size: int, processes: int) -> int:
    """The one source of truth for the effective batch: total = per-device x accumulation x processes."""
    per_step = per_device_batch_size * processes
    if total_batch_size < 1 or per_device_batch_size < 1:
        raise AliceError("--total-batch-size and --per-device-batch-size must be at least 1")
    if total_batch_size % per_step:
        raise AliceError(f"--total-batch-size {total_batch_size} is not a multiple of per-device batch "
                         f"{per_device_batch_size} x {processes} process(es) = {per_step}")
    return total_batch_size // per_step


def bf16_available() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def sft_config(config: TrainConfig, output_dir: str | Path, processes: int | None = None):
    """TRL's SFTConfig for train.py's settings ``config`` (the paper's recipe unless told otherwise),
    writing to ``output_dir``, over ``processes`` processes (default: those of this launch)."""
    from trl import SFTConfig

    processes = processes or world_size()
    accumulation = gradient_accumulation_steps(config.total_batch_size, config.per_device_batch_size, processes)
    bf16 = False if config.no_bf16 else bf16_available()
    # TRL refuses padding-free rows without packing when max_length is set: such rows are cut to
    # max_length beforehand (see make_trainer), so the collator sees no limit.
    max_length = None if config.padding_free and not config.packing else config.max_length
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        optim=config.optim,
        max_grad_norm=config.max_grad_norm,
        torch_compile=config.torch_compile,
        use_liger_kernel=config.use_liger_kernel,
        lr_scheduler_type=config.scheduler,
        # transformers 5: an int is a step count, a float in [0, 1) a share of the run.
        warmup_steps=config.warmup_steps if config.warmup_steps is not None else float(config.warmup_ratio),
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        bf16=bf16,
        fp16=False,
        seed=config.seed,
        data_seed=config.seed,
        max_length=max_length,
        packing=config.packing,
        packing_strategy="bfd",
        padding_free=config.padding_free,
        completion_only_loss=True,
        gradient_checkpointing=config.gradient_checkpointing,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=SAVE_TOTAL_LIMIT,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        include_num_input_tokens_seen="non_padding",
        report_to=list(config.report_to),
        dataset_num_proc=None,
        disable_tqdm=False,
        use_cpu=not _cuda(),
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def lora_config(config: TrainConfig):
    """PEFT's LoraConfig for the adapter ``config`` describes (--lora-rank, --lora-alpha, ...)."""
    from peft import LoraConfig

    return LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=lora_target_modules(config), task_type="CAUSAL_LM", bias="none")


def require_bitsandbytes() -> None:
    """QLoRA's 4-bit layers come from bitsandbytes: on a CUDA GPU, or on the CPU (slowly) from 0.50."""
    try:
        import bitsandbytes
    except ImportError:
        raise AliceError("--qlora needs the bitsandbytes package (pip install bitsandbytes)") from None
    version = tuple(int(x) for x in bitsandbytes.__version__.split(".")[:2] if x.isdigit())
    if not _cuda() and version < (0, 50):
        raise AliceError(f"--qlora on the CPU needs bitsandbytes>=0.50 (this is {bitsandbytes.__version__}); "
                         "use --lora, or a CUDA GPU")


def load_base_model(ref: ModelRef, config: TrainConfig):
    """The model to train. Full fine-tuning keeps fp32 master weights (bf16 autocast on GPU);
    LoRA keeps a bf16 base on GPU; QLoRA a 4-bit NF4 base. An adapter folder is merged first.
    ``config.random_init``: the folder's config.json with random weights (alice.random_init);
    ``training_attention(config)``: the attention kernels."""
    import torch

    lora, nf4 = trains_adapter(config), config.qlora
    if nf4:
        require_bitsandbytes()
    attention = training_attention(config)
    if attention == "varlen":
        from .attention import register

        register()
    if config.random_init:
        from .random_init import random_model

        dtype = torch.bfloat16 if lora and bf16_available() else torch.float32
        model = random_model(ref.path, dtype, config.seed, lora_config(config) if lora else None,
                             attention, ref.load_revision(), nf4=nf4)
    else:
        model = _load_pretrained(ref, lora, nf4, attention)
    if nf4:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, config.gradient_checkpointing)
    return model


def training_attention(config: TrainConfig) -> str | None:
    """The attention implementation to train with: --attn-implementation if given; for padding-free or
    packed rows on a CUDA GPU, varlen (alice/attention.py: the rows kept apart without a dense mask;
    a fair-test training 1.7x faster than with SDPA's masked path, bench/RESULTS.md); else the model's
    own (the CPU keeps its outputs)."""
    if config.attn_implementation:
        return config.attn_implementation
    return "varlen" if (config.padding_free or config.packing) and _cuda() else None


def _load_pretrained(ref: ModelRef, lora: bool, nf4: bool, attn_implementation: str | None):
    """``ref``'s weights in the dtype (or NF4 quantization) the training needs; an adapter is merged."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if nf4:
        from accelerate import PartialState
        from transformers import BitsAndBytesConfig

        device = PartialState().local_process_index if _cuda() else "cpu"
        kwargs.update(dtype=torch.bfloat16, device_map={"": device},
                      quantization_config=BitsAndBytesConfig(
                          load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                          bnb_4bit_compute_dtype=torch.bfloat16))
    elif lora and bf16_available():
        kwargs["dtype"] = torch.bfloat16
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForCausalLM.from_pretrained(ref.path, revision=ref.load_revision(), **kwargs)
    except OSError as err:
        raise AliceError(f"could not load model {ref.path}: {str(err).splitlines()[0]}") from None
    if ref.adapter:
        if lora:
            raise AliceError(f"{ref.adapter} is a LoRA adapter: write a merged model first "
                             "(train.py --merge-adapter) and train a new adapter on that")
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, ref.adapter).merge_and_unload()
    return model


def _cut_to_length(records: list[dict], tokenizer, max_length: int) -> tuple[list[dict], int]:
    """Padding-free rows are not truncated by TRL: drop the rare row longer than ``max_length``."""
    kept = []
    for record in records:
        ids = tokenizer.apply_chat_template(record["prompt"] + record["completion"], tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        if len(ids) <= max_length:
            kept.append(record)
    return kept, len(records) - len(kept)


def throughput_callback(final_checkpoint: bool = True):
    """A callback noting the tokens, step and time at the start of this attempt, so a resumed run's
    throughput counts only its own tokens, and the checkpoints written. ``final_checkpoint`` False: no
    checkpoint at the last step (the Trainer writes one, weights and optimizer state, ~18 GB and ~30 s
    for a 1.5B model on an H200, which train.py deletes once it has saved the model)."""
    from transformers import TrainerCallback

    class Throughput(TrainerCallback):
        def __init__(self) -> None:
            self.start_tokens, self.start_step, self.start_time = 0, 0, time.time()
            self.warmup_steps: int | None = None
            self.peak_lr = 0.0
            self.checkpoints = 0

        def on_step_end(self, args, state, control, **kwargs):
            if not final_checkpoint and state.global_step >= state.max_steps:
                control.should_save = False  # runs after the Trainer's own flow callback has asked for one

        def on_save(self, args, state, control, **kwargs):
            self.checkpoints += 1

        def on_train_begin(self, args, state, control, **kwargs):
            self.start_tokens, self.start_step, self.start_time = \
                state.num_input_tokens_seen, state.global_step, time.time()
            self.warmup_steps = args.get_warmup_steps(state.max_steps)
            if state.is_world_process_zero and self.warmup_steps > state.max_steps / 2:
                print(f"warning: the warm-up takes {self.warmup_steps} of the run's {state.max_steps} optimizer "
                      "steps, so the learning rate stays below its peak for most of the run (use "
                      "--warmup-ratio, or fewer --warmup-steps)", file=sys.stderr)

        def on_step_begin(self, args, state, control, lr_scheduler=None, **kwargs):
            if lr_scheduler is not None:  # the rate this optimizer step uses
                self.peak_lr = max(self.peak_lr, float(lr_scheduler.get_last_lr()[0]))

    return Throughput()


def make_trainer(model, tokenizer, records: list[dict], config: TrainConfig, output_dir: str | Path,
                 processes: int | None = None):
    """SFTTrainer on conversational prompt/completion ``records`` with the recipe in train.py's settings
    ``config``, writing its checkpoints to ``output_dir``."""
    import torch
    from datasets import Dataset
    from trl import SFTTrainer

    if not _cuda():
        # fp32 on CPU: tiny optimizer-state values turn denormal and each step gets many times slower.
        torch.set_flush_denormal(True)
    else:
        # torch's SDPA prefers cuDNN attention on Hopper, which builds a new cuDNN graph for every
        # new sequence length (~10 ms of CPU per call): with training rows of varying length the
        # GPU sat idle 80-90% of the time (bench/RESULTS.md, P3 profile). Flash / memory-efficient
        # SDPA kernels need no per-shape build.
        torch.backends.cuda.enable_cudnn_sdp(False)
    dropped = 0
    if config.padding_free and not config.packing and config.max_length:
        records, dropped = _cut_to_length(records, tokenizer, config.max_length)
        if not records:
            raise AliceError(f"every training row is longer than --max-length {config.max_length}")
    training_args = sft_config(config, output_dir, processes)
    # A model sharded by alice.random_init under FSDP comes with its LoRA adapter already.
    peft_config = lora_config(config) if trains_adapter(config) and not hasattr(model, "peft_config") else None
    throughput = throughput_callback(final_checkpoint=config.keep_checkpoints)
    trainer = _adapter_saving_trainer(SFTTrainer)(model=model, args=training_args,
                                                  train_dataset=Dataset.from_list(records),
                                                  processing_class=tokenizer, peft_config=peft_config,
                                                  callbacks=[throughput])
    if trainer.is_fsdp_enabled:
        from .random_init import is_fsdp2_sharded

        if is_fsdp2_sharded(model):
            # Nothing is left to wrap, and accelerate's wrap policy would look the decoder layer class up by
            # name, which fully_shard has changed (LlamaDecoderLayer -> FSDPLlamaDecoderLayer), and fail.
            trainer.accelerator.state.fsdp_plugin.auto_wrap_policy = None
    if training_args.gradient_checkpointing:
        # Set here, after TRL: it makes PEFT under ZeRO-3 recompute in the reentrant form (DeepSpeed < 0.19.3
        # failed the non-reentrant recompute with frozen weights). Reentrant, DeepSpeed keeps every frozen weight
        # gathered during backward until backward ends: the whole base model on every GPU (out of memory at 70B,
        # bench/RESULTS.md run 6; 90% of the model against 11% non-reentrant, bench/bench_zero3_gc.py). The
        # Trainer reads these kwargs when training starts.
        reentrant = config.reentrant_checkpointing or (zero3_lora_checkpointing(trainer)
                                                         and not deepspeed_recomputes_frozen_weights())
        trainer.args.gradient_checkpointing_kwargs = {**(trainer.args.gradient_checkpointing_kwargs or {}),
                                                      "use_reentrant": reentrant}
    trainer.alice_throughput = throughput
    trainer.alice_dropped_long = dropped
    return trainer


def zero3(trainer) -> bool:
    """The Trainer runs under DeepSpeed ZeRO stage 3 (parameters partitioned over the processes)."""
    plugin = getattr(trainer.args, "deepspeed_plugin", None)
    return plugin is not None and plugin.zero_stage == 3


def sharded_training(trainer) -> bool:
    """The model's weights are split over the processes: FSDP2 or DeepSpeed ZeRO-3."""
    if trainer.is_fsdp_enabled:
        return getattr(trainer.accelerator.state.fsdp_plugin, "fsdp_version", 1) == 2
    return zero3(trainer)


def zero3_lora_checkpointing(trainer) -> bool:
    """A PEFT adapter trained under DeepSpeed ZeRO-3 with gradient checkpointing."""
    return bool(trainer.args.gradient_checkpointing and zero3(trainer) and hasattr(trainer.model, "peft_config"))


def deepspeed_recomputes_frozen_weights() -> bool:
    """DeepSpeed >= 0.19.3 re-gathers frozen weights in a non-reentrant checkpoint recompute
    (deepspeedai/DeepSpeed#8148)."""
    import deepspeed
    from packaging.version import Version

    return Version(deepspeed.__version__).release >= (0, 19, 3)


def checkpointing_form(trainer) -> str | None:
    """How activations are recomputed, for the manifest: None without gradient checkpointing."""
    if not trainer.args.gradient_checkpointing:
        return None
    reentrant = (trainer.args.gradient_checkpointing_kwargs or {}).get("use_reentrant", False)
    return "reentrant" if reentrant else "non-reentrant"


def _adapter_saving_trainer(base):
    """``base`` (SFTTrainer) saving a LoRA adapter under FSDP2 or ZeRO-3 by gathering the adapter's
    weights alone, at every checkpoint and at the end. Under FSDP2 the Trainer gathers the whole
    model's state dict onto the main process's CPU (141 GB for a 70B base) to keep the adapter from
    it; under ZeRO-3 it all-gathers every layer's frozen weights too, one layer at a time, and copies
    out the adapter's (bench/bench_zero3_gc.py times both)."""

    class AdapterSavingTrainer(base):
        def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
            if not (hasattr(self.model, "peft_config") and sharded_training(self)):
                return super().save_model(output_dir, _internal_call)
            from .random_init import trainable_full_state_dict

            state_dict = trainable_full_state_dict(self.model)  # every process: a collective
            if self.args.should_save:  # the main process writes
                self._save(output_dir or self.args.output_dir, state_dict=state_dict)
            return None

    return AdapterSavingTrainer


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (trainer_state.json is written last, so a kill mid-save
    leaves a folder without it, which is passed over)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in output_dir.iterdir()
             if p.is_dir() and (m := CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()]
    return max(found)[1] if found else None


def steady_tokens_per_s(log_history: list[dict], first_step: int = 2) -> float | None:
    """Tokens/s of one attempt between the log at ``first_step`` and the last log (start-up
    excluded); needs per-step logs carrying num_input_tokens_seen and train_runtime."""
    logs = [e for e in log_history if "num_input_tokens_seen" in e and "train_runtime" in e and "loss" in e]
    logs = [e for e in logs if e["step"] >= first_step]
    if len(logs) < 2:
        return None
    seconds = float(logs[-1]["train_runtime"]) - float(logs[0]["train_runtime"])
    tokens = float(logs[-1]["num_input_tokens_seen"]) - float(logs[0]["num_input_tokens_seen"])
    return round(tokens / seconds, 2) if seconds > 0 else None


def _peak_gpu_memory_gb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def _peak_gpu_memory_gb_per_process() -> list[float] | None:
    """Every process's peak (a collective: all processes call it); None without a GPU."""
    from accelerate.utils import gather_object

    peak = _peak_gpu_memory_gb()
    return None if peak is None else [float(x) for x in gather_object([peak])]


def training_summary(trainer) -> dict:
    """Steps, losses and throughput for the manifest."""
    state = trainer.state
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    callback = trainer.alice_throughput
    seconds = max(time.time() - callback.start_time, 1e-9)
    tokens = state.num_input_tokens_seen - callback.start_tokens
    return {
        "steps": state.global_step,
        "max_steps": state.max_steps,
        "warmup_steps": callback.warmup_steps,
        "peak_lr_reached": callback.peak_lr,  # this attempt's; a resumed run starts past the warm-up
        "epochs": round(state.epoch or 0.0, 4),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "train_loss": next((e["train_loss"] for e in reversed(state.log_history) if "train_loss" in e), None),
        "tokens_seen": state.num_input_tokens_seen,
        "tokens_this_attempt": tokens,
        "train_seconds_this_attempt": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 2),
        "steps_this_attempt": state.global_step - callback.start_step,
        "steady_tokens_per_s": steady_tokens_per_s(state.log_history, callback.start_step + 2),
        "checkpoints_this_attempt": callback.checkpoints,
        "gradient_checkpointing": checkpointing_form(trainer),
        "attention": getattr(trainer.model.config, "_attn_implementation", None),
        "peak_gpu_memory_gb": _peak_gpu_memory_gb(),
        "peak_gpu_memory_gb_per_process": _peak_gpu_memory_gb_per_process(),
        "log_history": state.log_history,
    }


def release_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()  # the trainer holds reference cycles
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def save_trained(trainer, tokenizer, ref: ModelRef, output_dir: Path, merge: bool) -> None:
    """Model + tokenizer (or the adapter + tokenizer) through save_pretrained, main process only;
    ``merge`` also writes a merged full model, reloaded from the saved adapter so it works the
    same after FSDP or ZeRO-3 sharding."""
    from accelerate import PartialState

    state = PartialState()
    is_adapter = hasattr(trainer.model, "peft_config")
    if is_adapter:
        # eval.py and the backends reload the adapter on the base named here.
        for config in trainer.model.peft_config.values():
            config.base_model_name_or_path = ref.path
    adapter_dir = output_dir / "adapter" if merge else output_dir
    if not is_adapter and not (trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled):
        # fp32 master weights are saved in the base model's own dtype (bf16 for released models).
        from transformers import AutoConfig

        base_dtype = getattr(AutoConfig.from_pretrained(ref.path, revision=ref.load_revision()), "dtype", None)
        if isinstance(base_dtype, str):
            import torch

            base_dtype = getattr(torch, base_dtype, None)
        if base_dtype is not None:
            trainer.model.to(base_dtype)
    trainer.save_model(str(adapter_dir))  # gathers sharded weights; writes on the main process only
    if state.is_main_process:
        tokenizer.save_pretrained(str(adapter_dir))
        if is_adapter:
            saved = resolve_model(str(adapter_dir))
            if saved.path != ref.path:
                raise AliceError(f"{adapter_dir}: adapter names base {saved.path}, expected {ref.path}")
        if merge:
            merge_adapter(ref, adapter_dir, output_dir, tokenizer)
    state.wait_for_everyone()


def merge_adapter(ref: ModelRef, adapter_dir: Path, output_dir: Path, tokenizer) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if bf16_available() else torch.float32
    base = AutoModelForCausalLM.from_pretrained(ref.path, dtype=dtype, revision=ref.load_revision())
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
