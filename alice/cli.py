"""The setting groups the stage configs share (data, models, generation, output), declared once with
the paper's flag names, and what the stages read off them (task, models, backend, sampling)."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace

from .answers import DEFAULT_SCORING, SCORING_RULES
from .backends import BACKENDS, Backend, Sampling, make_backend
from .config import Settings, field_map, fingerprint_settings, setting
from .errors import AliceError
from .models import ModelRef, resolve_model
from .tasks import Task, load_task, parse_pool_part

SIZE = re.compile(r"^\d+(\.\d+)?[bBmM]$")


# ----------------------------------------------------------------------------- shared setting groups


@dataclass(kw_only=True)
class TestDataSettings(Settings):
    """The data settings of a stage on the test split (eval.py: never shuffled or split)."""

    data: str = setting("arc_challenge", "arc_challenge, gsm8k, hotpotqa, triviaqa, gsm_symbolic[:key=value,...] "
                        "(GSM-style math generated offline; options in alice/tasks.py: split, train, test, held_out, "
                        "eval, seed), a saved ARC folder, or a custom .jsonl", group="data")
    answer_type: str | None = setting(None, "answer type of a custom .jsonl dataset",
                                      choices=["number", "choice", "text"], group="data")
    limit: int | None = setting(None, "use only the first N questions", group="data", operational=True)
    scoring: str = setting(DEFAULT_SCORING, "how open answers (HotpotQA, TriviaQA, text .jsonl) are judged; " + "; ".join(
        f"{name}: {text}" for name, text in SCORING_RULES.items()) + ". Choice and number answers score the same "
        "under both", choices=list(SCORING_RULES), group="data", later_default=DEFAULT_SCORING)


@dataclass(kw_only=True)
class TeacherDataSettings(TestDataSettings):
    """The data settings of a stage on the train split's halves (no --pool-part: stage 1 works on the
    teacher's half; the cascade and the experiment split the student pool themselves)."""

    split_seed: int | None = setting(None, "shuffle train before the teacher/student halves (default: the "
                                     "paper's order)", group="data")


@dataclass(kw_only=True)
class DataSettings(TeacherDataSettings):
    pool_part: str | None = setting(None, "use only part K of N of the student pool (cascade stages: disjoint, "
                                    "contiguous parts)", metavar="K/N", group="data")


@dataclass(kw_only=True)
class ModelSettings(Settings):
    model: str | None = setting(None, "model family shortcut (qwen2.5, llama3) used with sizes in the role flags, "
                                "or a hub id / local folder / .gguf / 'smollm2'", group="models")
    revision: str | None = setting(None, "hub revision (branch, tag or commit sha) of every hub model this script "
                                   "loads (default: main); local folders ignore it. Manifests record each hub "
                                   "model's commit sha either way", group="models", later_default=None)


def role(name: str) -> str | None:
    """A model role's setting (--teacher, --student, ...): a size for --model, or a model."""
    return setting(None, f"{name} size for --model (e.g. 1.5B), or a hub id / folder / .gguf", group="models")


@dataclass(kw_only=True)
class GenerationSettings(Settings):
    backend: str = setting("auto", "auto = vllm where it imports, else transformers (hf)", choices=BACKENDS,
                           group="generation")
    base_url: str | None = setting(None, "OpenAI-compatible server for --backend openai (key: OPENAI_API_KEY); "
                                   "several serving the same model: comma-separated URLs share the questions",
                                   group="generation", operational=True)
    max_new_tokens: int = setting(512, "tokens generated per answer at most", group="generation")
    batch_size: int = setting(16, "--backend hf: prompts x samples per generate() call (sampled batches are "
                              "seeded together, so with this backend it also changes which samples are drawn)",
                              group="generation", operational=True)
    chunk_size: int | None = setting(None, "questions per checkpointed chunk (default: 64 on CPU; on GPU about "
                                     "4096 sequences, so vLLM keeps its batch full)", group="generation",
                                     operational=True)
    tensor_parallel_size: int = setting(1, "vLLM GPUs per model", group="generation", operational=True)
    max_model_len: int | None = setting(None, "vLLM context length cap", group="generation")
    gpu_memory_utilization: float | None = setting(None, "vLLM: share of the GPU's memory the engine may take "
                                                   "(default: vLLM's)", group="generation", operational=True)
    kv_cache_gb: float | None = setting(None, "vLLM on GPU: a fixed KV cache size instead of profiling free "
                                        "memory; lets several jobs share one GPU (memory profiling fails when "
                                        "another process frees memory meanwhile)", group="generation",
                                        operational=True)
    enforce_eager: bool = setting(False, "vLLM on GPU: skip CUDA-graph capture and compilation (engine starts "
                                  "~20 s sooner, decodes slower; for quick runs)", group="generation",
                                  operational=True)
    disable_custom_all_reduce: bool = setting(False, "vLLM with --tensor-parallel-size > 1: NCCL's all-reduce instead "
                                              "of vLLM's custom one, which failed during CUDA-graph capture "
                                              "('custom_all_reduce.cuh invalid argument') on a 2 x H200 machine",
                                              group="generation", operational=True)
    batch_invariant: bool = setting(False, "vLLM: batch-invariant kernels, meant to make greedy outputs independent "
                                    "of which other prompts share the batch; measured on an H200 (1.5B, 340 "
                                    "questions), 4%% of outcomes still changed with the batch composition, as "
                                    "many as without it", group="generation")
    vllm_runner: str = setting("auto", "vLLM on GPU: its model runner. v2 draws the noise of seeded samples (every "
                               "question's samples are seeded) for all sequences in one kernel, where v1 (vLLM 0.24's "
                               "choice for Qwen2 models) loops over the running sequences at every step; the two "
                               "draw different samples from the same distribution. auto: vLLM's choice",
                               choices=("auto", "v1", "v2"), group="generation", later_default="auto")
    concurrency: int = setting(16, "parallel requests per server for --backend openai", group="generation",
                               operational=True)
    seed: int = setting(0, "sampling seed (each question's samples are seeded from it and the question's id)",
                        group="generation")
    skip_long_prompts: bool = setting(False, "skip (and count) prompts longer than the context instead of "
                                      "stopping", group="generation", operational=True)


@dataclass(kw_only=True)
class CheckSettings(Settings):
    """The checks on generated training data (alice/hygiene.py)."""

    max_tries: int = setting(4, "tries per question for a clean target (or statement): a malformed one is sampled "
                             "again with a new seed, then replaced by the stage's fallback or dropped, and counted "
                             "in the manifest; 0: no checks, every completion is kept (the reference code)",
                             group="checks", later_default=0)


@dataclass(kw_only=True)
class OutputSettings(Settings):
    output: str | None = setting(None, "output JSONL (a manifest is written beside it)", group="output",
                                 operational=True)
    overwrite: bool = setting(False, "start over: replace this command's outputs instead of resuming them",
                              group="output", operational=True)


def add_revision_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--revision for a script outside the stage configs (scripts/lm_eval_arc.py)."""
    meta = field_map(ModelSettings)["revision"].metadata
    p.add_argument("--revision", default=None, help=meta["help"])


def with_revision(ref: ModelRef, args) -> ModelRef:
    """``ref`` at ``--revision`` (hub ids only; a local folder is what it is)."""
    revision = getattr(args, "revision", None)
    return replace(ref, revision=revision) if revision and ref.on_hub else ref


def resolve_role(args, role: str | None) -> ModelRef:
    """--model qwen2.5 --teacher 1.5B, or --teacher <id/folder>, or --model <id/folder>."""
    value = getattr(args, role, None) if role else None
    if value and SIZE.match(value):
        if not args.model:
            raise AliceError(f"--{role} {value} is a size: also give --model (qwen2.5 or llama3)")
        return with_revision(resolve_model(args.model, value), args)
    if value:
        return with_revision(resolve_model(value), args)
    if args.model:
        return with_revision(resolve_model(args.model), args)
    raise AliceError(f"give --{role} (a size with --model, or a model id/folder)" if role else "give --model")


def task_from_args(args: argparse.Namespace) -> Task:
    task = load_task(args.data, args.answer_type)
    task.student_part = parse_pool_part(getattr(args, "pool_part", None))
    task.set_scoring(getattr(args, "scoring", DEFAULT_SCORING))
    return task


def backend_from_args(args: argparse.Namespace, ref: ModelRef | None, **vllm_options) -> Backend:
    """The backend the generation arguments ask for (``vllm_options``: enable_lora, max_lora_rank)."""
    return make_backend(
        args.backend, ref, model_name=getattr(args, "served_model_name", None), base_url=args.base_url,
        batch_size=args.batch_size, tensor_parallel_size=args.tensor_parallel_size,
        max_model_len=args.max_model_len, gpu_memory_utilization=args.gpu_memory_utilization,
        kv_cache_gb=getattr(args, "kv_cache_gb", None),
        seed=args.seed, concurrency=args.concurrency, enforce_eager=getattr(args, "enforce_eager", False) or None,
        batch_invariant=getattr(args, "batch_invariant", False), load_format=getattr(args, "load_format", "auto"),
        disable_custom_all_reduce=getattr(args, "disable_custom_all_reduce", False),
        vllm_runner=getattr(args, "vllm_runner", "auto"), **vllm_options,
    )


def sampling_from_args(args: argparse.Namespace, temperature: float, n: int = 1, top_p: float = 1.0) -> Sampling:
    return Sampling(n=n, temperature=temperature, top_p=top_p, max_tokens=args.max_new_tokens, seed=args.seed)


def result_settings(config, refs: dict[str, ModelRef]) -> dict:
    """The settings that define a stage's outputs (for its manifest's fingerprint), with the models."""
    settings = fingerprint_settings(config)
    settings["models"] = {role: (r.path, r.adapter) for role, r in refs.items()}
    return settings
