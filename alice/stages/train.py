"""The train.py stage: its settings (``TrainConfig``, the one declaration of the paper's recipe) and
``run_training``, the run management around the training machinery of alice/training.py: the
training rows (a stage's JSONL or the task's ground truth), the output folder, the manifest, resuming
from the last checkpoint, and the processes of a multi-GPU launch waiting for the main one.

alice/training.py takes ``TrainConfig`` as it is (``sft_config`` builds TRL's SFTConfig from it) and
names it only for type checking; this module imports alice.training (torch, TRL) only inside its
functions, so neither module imports the other when loaded.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..cli import DataSettings, ModelSettings, role
from ..config import setting
from ..errors import AliceError
from ..models import ModelRef, has_weights
from ..records import Manifest
from ..tasks import Task
from .common import slug

TRAINING_DATA, RECIPE, LORA, OUTPUT = "training data", "recipe (paper defaults)", "LoRA", "output"


# The paper's recipe (docs/METHOD.md, stage 2): full fine-tuning, 3 epochs, lr 1e-5, AdamW with
# weight decay 0.01, cosine schedule, effective batch 16, bf16. The paper states 100 warm-up steps,
# but its code stepped the scheduler per micro-batch, so its runs warmed up for roughly 10-15% of
# the run; 100 optimizer steps would leave a run of <= 100 steps warming up throughout (the ARC
# replication's W2S-CoT teacher never passed lr 9e-7). So the warm-up is a share of the run by
# default; --warmup-steps 100 gives the literal setting. The recipe's values are TrainConfig's defaults
# (alice.training.sft_config reads the settings from here).
@dataclass(kw_only=True)
class TrainConfig(ModelSettings, DataSettings):
    """train.py: its settings, declared once (flags, recipes, manifests)."""

    teacher: str | None = role("teacher")
    student: str | None = role("student")
    train_file: str | None = setting(None, "JSONL of (id, question, response) rows from any stage; rows with "
                                     "\"kept\": false are skipped", group=TRAINING_DATA)
    ground_truth: bool = setting(False, "train on the task's gold answers/rationales (weak and strong-ceiling "
                                 "baselines)", group=TRAINING_DATA)
    pool: str | None = setting(None, "pool for --ground-truth (default: student with --student, else teacher)",
                               choices=["teacher", "student"], group=TRAINING_DATA)
    no_rationale: bool = setting(False, "--ground-truth with answers only (the answers-only teacher variant)",
                                 group=TRAINING_DATA)
    epochs: float = setting(3, "passes over the training rows", group=RECIPE)
    lr: float = setting(1e-5, "peak learning rate (AdamW)", group=RECIPE)
    weight_decay: float = setting(0.01, "AdamW weight decay", group=RECIPE)
    warmup_ratio: float = setting(0.1, "linear warm-up over this share of the run's optimizer "
                                  "steps", group=RECIPE)
    warmup_steps: int | None = setting(None, "a fixed number of warm-up steps instead of --warmup-ratio (the "
                                       "paper states 100)", group=RECIPE)
    scheduler: str = setting("cosine", "learning-rate schedule after the warm-up (a transformers "
                             "lr_scheduler_type)", group=RECIPE)
    total_batch_size: int = setting(16, "effective batch = per-device batch x gradient "
                                    "accumulation x processes", group=RECIPE)
    per_device_batch_size: int = setting(1, "rows per device per forward pass; gradient accumulation makes up "
                                         "the rest", group=RECIPE, operational=True)
    max_steps: int = setting(-1, "stop after N optimizer steps (quick runs)", group=RECIPE)
    max_length: int = setting(2048, "tokens per training row (longer ones are cut)", group=RECIPE)
    seed: int = setting(0, "training seed (initialization of LoRA weights, data order)", group=RECIPE)
    packing: bool = setting(False, "pack rows into --max-length blocks (padding-free)", group=RECIPE)
    padding_free: bool = setting(False, "flatten each batch into one row, no padding", group=RECIPE)
    gradient_checkpointing: bool = setting(True, "recompute activations in the backward pass (less memory, "
                                           "slower steps)", negatable=True, group=RECIPE, operational=True)
    reentrant_checkpointing: bool = setting(False, "recompute in torch's reentrant form (default: non-reentrant, "
                                            "also for LoRA under ZeRO-3 from DeepSpeed 0.19.3, where the reentrant "
                                            "form keeps the whole frozen base gathered; same losses)", group=RECIPE,
                                            operational=True)
    no_bf16: bool = setting(False, "train in fp32 even where bf16 is available", group=RECIPE)
    max_grad_norm: float = setting(1.0, "clip the gradient to this norm before each step (transformers' default)",
                                   group=RECIPE, later_default=1.0)
    optim: str = setting("adamw_torch", "transformers optimizer name (adamw_torch_fused: one fused kernel per "
                         "step on GPU)", group=RECIPE)
    torch_compile: bool = setting(False, "compile the model with torch.compile", group=RECIPE)
    use_liger_kernel: bool = setting(False, "Liger's fused Triton kernels (pip install liger-kernel; GPU)",
                                     group=RECIPE)
    random_init: bool = setting(False, "random weights from the model folder's config.json alone (no weights "
                                "read): measures speed, memory and plumbing, not quality (sharded at creation "
                                "under FSDP2 and ZeRO-3)", group=RECIPE, later_default=False)
    attn_implementation: str | None = setting(None, "sdpa, flash_attention_2, eager, varlen (default: varlen "
                                              "for --padding-free or --packing on a CUDA GPU, else the "
                                              "model's); varlen keeps the rows apart without a mask (torch's "
                                              "variable-length flash attention on a GPU, one SDPA call per "
                                              "row elsewhere)",
                                              group=RECIPE, operational=True)
    lora: bool = setting(False, "train a PEFT LoRA adapter instead of all weights", group=LORA)
    qlora: bool = setting(False, "LoRA on a 4-bit (bitsandbytes NF4) base; CUDA GPU (or CPU, slowly, with "
                         "bitsandbytes>=0.50)", group=LORA)
    lora_rank: int = setting(16, "LoRA rank r", group=LORA)
    lora_alpha: int = setting(32, "LoRA scaling alpha", group=LORA)
    lora_dropout: float = setting(0.05, "dropout on the LoRA inputs", group=LORA)
    lora_target_modules: str = setting("all-linear", "comma-separated module names, or all-linear", group=LORA)
    merge_adapter: bool = setting(False, "write a merged full model (adapter in adapter/)", group=LORA)
    output_dir: str | None = setting(None, "where the model, checkpoints and manifest.json go", group=OUTPUT,
                                     operational=True)
    report_to: list[str] = setting([], "where the losses are logged besides the manifest: tensorboard, wandb, "
                                   "trackio, ... (transformers' report_to; the default logs nowhere else)",
                                   group=OUTPUT, operational=True)
    save_steps: int = setting(200, "checkpoint every N steps (a rerun resumes from the last one)", group=OUTPUT,
                              operational=True)
    logging_steps: int = setting(10, "log the loss every N optimizer steps", group=OUTPUT, operational=True)
    keep_checkpoints: bool = setting(False, "keep checkpoint-N folders after success", group=OUTPUT,
                                     operational=True)
    resume: bool = setting(False, "accepted for compatibility: a rerun always continues from the last checkpoint",
                           group=OUTPUT, operational=True)
    overwrite: bool = setting(False, "replace the output folder, even a finished one", group=OUTPUT,
                              operational=True)


def _training_data(args: TrainConfig, task: Task, role: str | None) -> tuple[list[dict], dict]:
    from ..training import check_train_file_task, ground_truth_rows, read_training_rows

    if bool(args.train_file) == bool(args.ground_truth):
        raise AliceError("give exactly one of --train-file (a stage's JSONL) or --ground-truth")
    if args.train_file:
        check_train_file_task(args.train_file, args.data)
        rows, skipped = read_training_rows(args.train_file)
        if args.limit:
            rows = rows[:args.limit]
        return rows, {"source": str(args.train_file), "skipped_not_kept": skipped}
    pool = args.pool or ("student" if role == "student" else "teacher")
    rows = ground_truth_rows(task, pool, args.split_seed, args.limit, rationale=not args.no_rationale)
    return rows, {"source": f"ground truth of {task.name} {pool} pool", "pool": pool,
                  "rationale": not args.no_rationale}


def _default_output_dir(task: Task, ref: ModelRef, args: TrainConfig, source: dict) -> Path:
    data = f"gt-{source['pool']}" if args.ground_truth else slug(Path(args.train_file).stem)
    kind = "-qlora" if args.qlora else "-lora" if args.lora else ""
    return Path("runs") / f"sft-{slug(task.name)}-{slug(ref.adapter or ref.path)}-{data}{kind}"


def _main_first(state, fn) -> None:
    """Run ``fn`` on the main process only; the others wait for it."""
    if state.is_main_process:
        fn()
    state.wait_for_everyone()


def run_training(args: TrainConfig) -> dict:
    """train.py: fine-tune a base model on a stage's rows or on ground truth, resumably."""
    from accelerate import PartialState

    from ..backends import load_tokenizer
    from ..cli import resolve_role, result_settings, task_from_args
    from ..training import (
        _cuda,
        data_hash,
        gradient_accumulation_steps,
        last_checkpoint,
        load_base_model,
        make_trainer,
        recipe_record,
        release_accelerator_memory,
        require_bitsandbytes,
        save_trained,
        sft_config,
        sft_records,
        training_summary,
    )

    # cpu=True on a machine without CUDA: otherwise processes started by accelerate launch / torchrun each
    # count one process here until the TrainingArguments set the state up again (with cpu=True).
    state = PartialState(cpu=not _cuda())
    if args.merge_adapter and not (args.lora or args.qlora):
        raise AliceError("--merge-adapter needs --lora or --qlora")
    if args.qlora:
        require_bitsandbytes()
    if args.random_init and args.merge_adapter:
        raise AliceError("--random-init does not combine with --merge-adapter (random weights are for speed, "
                         "memory and plumbing; merging needs a base with weights)")
    if not 0 <= args.warmup_ratio < 1:
        raise AliceError(f"--warmup-ratio {args.warmup_ratio}: give a share of the run in [0, 1)")
    if args.warmup_steps is not None and args.warmup_steps < 0:
        raise AliceError("--warmup-steps must be 0 or more")
    if args.packing and args.padding_free:
        raise AliceError("choose one of --packing (already padding-free) or --padding-free")
    role = next((r for r in ("student", "teacher") if getattr(args, r, None)), None)
    ref = resolve_role(args, role)
    if ref.adapter and args.random_init:
        raise AliceError(f"--random-init needs a model folder with a config.json, not the adapter {ref.adapter}")
    if ref.adapter and (args.lora or args.qlora):
        raise AliceError(f"{ref.adapter} is a LoRA adapter: write a merged model first "
                         "(train.py --merge-adapter) and train a new adapter on that")
    task = task_from_args(args)
    rows, source = _training_data(args, task, role)
    records = sft_records(task, rows)
    output_dir = Path(args.output_dir) if args.output_dir else _default_output_dir(task, ref, args, source)
    accumulation = gradient_accumulation_steps(args.total_batch_size, args.per_device_batch_size,
                                               state.num_processes)
    tokenizer = load_tokenizer(ref)  # fails early for a model without a chat template

    fingerprint_settings = result_settings(args, {"base": ref})
    fingerprint_settings["data_hash"] = data_hash(records)
    output_dir.mkdir(parents=True, exist_ok=True)  # so the manifest goes inside it: dir/manifest.json
    manifest = Manifest(output_dir, "train", args, fingerprint_settings)
    previous = manifest.previous()
    finished = (previous and previous.get("status") == "complete" and not args.overwrite
                and previous.get("fingerprint") == manifest.data["fingerprint"])
    if finished and has_weights(output_dir):
        if state.is_main_process:
            print(f"{output_dir}: already trained ({previous.get('counts', {}).get('steps')} steps); "
                  "complete, nothing to do (pass --overwrite to train again)")
        return previous
    retrain = bool(finished)  # its weights were dropped once evaluated, or never came with restored deliverables
    if retrain and state.is_main_process:
        print(f"{output_dir}: trained before, but its weights are gone: training it again")
    existing = [output_dir] if output_dir.is_dir() and any(output_dir.iterdir()) else []
    if args.overwrite or retrain:
        _main_first(state, lambda: manifest.claim(existing, overwrite=True))
    else:
        manifest.claim(existing, overwrite=False)  # read-only here: every process checks
    # Like every stage, a rerun resumes: an unfinished run of the same training continues from its
    # last checkpoint (--overwrite has just removed it when asked to start over).
    checkpoint = last_checkpoint(output_dir)
    if checkpoint and state.is_main_process:
        print(f"{output_dir}: resuming from {checkpoint.name}", file=sys.stderr)

    manifest.data["models"]["base"] = ref.describe()
    if args.random_init:
        from ..random_init import RANDOM_WEIGHTS_NOTE

        manifest.data["models"]["base"]["weights"] = RANDOM_WEIGHTS_NOTE
    manifest.data["data"] = {**source, "rows": len(records), "data_hash": fingerprint_settings["data_hash"]}
    manifest.data["recipe"] = {**recipe_record(args, output_dir), "gradient_accumulation_steps": accumulation,
                               "world_size": state.num_processes}
    manifest.data["resumed_from"] = checkpoint.name if checkpoint else None
    _main_first(state, manifest.save)
    if state.is_main_process:
        print(f"training {ref.adapter or ref.path} on {len(records)} rows ({source['source']}); "
              f"effective batch {args.total_batch_size} = {args.per_device_batch_size} per device x "
              f"{accumulation} accumulation x {state.num_processes} process(es) -> {output_dir}", file=sys.stderr)

    # Before the model, and kept alive while it is built: under DeepSpeed ZeRO-3 the TrainingArguments hold
    # the only reference to the config transformers reads (a weak reference) to create the model partitioned.
    training_args = sft_config(args, output_dir, state.num_processes)
    try:
        started = time.perf_counter()
        model = load_base_model(ref, args)
        load_s = time.perf_counter() - started
        del training_args
        trainer = make_trainer(model, tokenizer, records, args, output_dir, state.num_processes)
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        summary = training_summary(trainer)

        started = time.perf_counter()
        save_trained(trainer, tokenizer, ref, output_dir, merge=args.merge_adapter)
        save_s = time.perf_counter() - started
        if state.is_main_process:
            if not args.keep_checkpoints:
                for folder in output_dir.glob("checkpoint-*"):
                    shutil.rmtree(folder, ignore_errors=True)
            history = summary.pop("log_history")
            counts = {"rows": len(records), "skipped_not_kept": source.get("skipped_not_kept", 0),
                      "dropped_too_long": trainer.alice_dropped_long, "steps": summary["steps"]}
            manifest.data["log_history"] = history
            manifest.data["timings"].update(load_s=round(load_s, 3), train_s=summary["train_seconds_this_attempt"],
                                            save_s=round(save_s, 3))
            manifest.complete(counts, training=summary, output_dir=str(output_dir),
                              saved="merged model" if args.merge_adapter else
                              "adapter" if (args.lora or args.qlora) else "model")
            print(f"{output_dir}: {summary['steps']} steps, loss {summary['first_loss']} -> {summary['final_loss']}, "
                  f"{summary['tokens_per_s']:.0f} tokens/s")
    finally:
        # Free the GPU for the engines that come next (this process's cached blocks, too).
        model = trainer = None
        release_accelerator_memory()
    state.wait_for_everyone()
    return manifest.data
