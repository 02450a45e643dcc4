"""Arguments shared by the stage scripts, declared once, with the paper's flag names."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

from .answers import DEFAULT_SCORING, SCORING_RULES
from .backends import BACKENDS, Backend, Sampling, make_backend
from .errors import AliceError
from .models import ModelRef, resolve_model
from .tasks import Task, load_task, parse_pool_part

SIZE = re.compile(r"^\d+(\.\d+)?[bBmM]$")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default once: appended as "(default: X)" unless the help already says
    what the default is; unset (None) and off (False) defaults are not shown."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text.lower() or "%(default)" in text
                or action.default is None or action.default is False or action.default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)".strip()


class Parser(argparse.ArgumentParser):
    """argparse with ``--config recipe.yaml``: the recipe's keys are the flags' names (``max_new_tokens``
    for --max-new-tokens) and set their values; flags given on the command line override the recipe.
    A key the script has no flag for is refused, like an unknown flag."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--config", metavar="RECIPE.yaml",
                          help="settings from a YAML recipe (configs/recipes/); flags override them")

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else [str(a) for a in args]
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--config")
        recipe = pre.parse_known_args(args)[0].config
        if recipe:  # a namespace's values come before the defaults; the command line still wins
            namespace = namespace or argparse.Namespace()
            for key, value in self._recipe_values(recipe).items():
                setattr(namespace, key, value)
        return super().parse_known_args(args, namespace)

    def _recipe_values(self, recipe: str) -> dict:
        import yaml

        try:
            values = yaml.safe_load(Path(recipe).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            self.error(f"--config {recipe}: {err}")
        if not isinstance(values, dict):
            self.error(f"--config {recipe}: expected a mapping of settings")
        actions = {a.dest: a for a in self._actions if a.option_strings and a.dest not in ("help", "config")}
        out = {}
        for key, value in values.items():
            action = actions.get(str(key).replace("-", "_"))
            if action is None:
                self.error(f"--config {recipe}: {key!r} is not a setting of this script")
            if isinstance(value, str) and action.type is not None:
                value = action.type(value)  # YAML reads 1e-5 as a string
            if action.choices is not None and value not in action.choices:
                self.error(f"--config {recipe}: {key}: {value!r} is not one of {list(action.choices)}")
            action.required = False  # the recipe gives it
            out[action.dest] = value
        return out


def parser(doc: str | None) -> argparse.ArgumentParser:
    return Parser(description=doc, formatter_class=HelpFormatter)


def add_data_args(p: argparse.ArgumentParser, split_seed: bool = True, pool_part: bool = True) -> None:
    """The data flags; a script that does not use --split-seed or --pool-part leaves them out, so
    they are refused there instead of silently ignored."""
    g = p.add_argument_group("data")
    g.add_argument("--data", default="arc_challenge",
                   help="arc_challenge, gsm8k, hotpotqa, triviaqa, a saved ARC folder, or a custom .jsonl")
    g.add_argument("--answer-type", choices=["number", "choice", "text"],
                   help="answer type of a custom .jsonl dataset")
    if split_seed:
        g.add_argument("--split-seed", type=int, default=None,
                       help="shuffle train before the teacher/student halves (default: the paper's order)")
    g.add_argument("--limit", type=int, default=None, help="use only the first N questions")
    if pool_part:
        g.add_argument("--pool-part", default=None, metavar="K/N",
                       help="use only part K of N of the student pool (cascade stages: disjoint, contiguous parts)")
    g.add_argument("--scoring", choices=list(SCORING_RULES), default=DEFAULT_SCORING,
                   help="how open answers (HotpotQA, TriviaQA, text .jsonl) are judged; " + "; ".join(
                       f"{name}: {text}" for name, text in SCORING_RULES.items())
                   + ". Choice and number answers score the same under both")


def add_model_args(p: argparse.ArgumentParser, *roles: str) -> None:
    g = p.add_argument_group("models")
    g.add_argument("--model", help="model family shortcut (qwen2.5, llama3) used with sizes in the role "
                                   "flags, or a hub id / local folder / .gguf / 'smollm2'")
    for role in roles:
        g.add_argument(f"--{role}", help=f"{role} size for --model (e.g. 1.5B), or a hub id / folder / .gguf")
    add_revision_arg(g)


def add_revision_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--revision", default=None,
                   help="hub revision (branch, tag or commit sha) of every hub model this script loads (default: "
                        "main); local folders ignore it. Manifests record each hub model's commit sha either way")


def with_revision(ref: ModelRef, args: argparse.Namespace) -> ModelRef:
    """``ref`` at ``--revision`` (hub ids only; a local folder is what it is)."""
    revision = getattr(args, "revision", None)
    return replace(ref, revision=revision) if revision and ref.on_hub else ref


def resolve_role(args: argparse.Namespace, role: str | None) -> ModelRef:
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


def add_generation_args(p: argparse.ArgumentParser, max_new_tokens: int = 512) -> None:
    g = p.add_argument_group("generation")
    g.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto = vllm where it imports, else transformers (hf)")
    g.add_argument("--base-url", help="OpenAI-compatible server for --backend openai (key: OPENAI_API_KEY); "
                                      "several serving the same model: comma-separated URLs share the questions")
    g.add_argument("--max-new-tokens", type=int, default=max_new_tokens, help="tokens generated per answer at most")
    g.add_argument("--batch-size", type=int, default=16, help="--backend hf: prompts x samples per generate() call (sampled batches are "
                   "seeded together, so with this backend it also changes which samples are drawn)")
    g.add_argument("--chunk-size", type=int, default=None,
                   help="questions per checkpointed chunk (default: 64 on CPU; on GPU about 4096 sequences, "
                        "so vLLM keeps its batch full)")
    g.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM GPUs per model")
    g.add_argument("--max-model-len", type=int, default=None, help="vLLM context length cap")
    g.add_argument("--gpu-memory-utilization", type=float, default=None,
                   help="vLLM: share of the GPU's memory the engine may take (default: vLLM's)")
    g.add_argument("--kv-cache-gb", type=float, default=None,
                   help="vLLM on GPU: a fixed KV cache size instead of profiling free memory; lets several "
                        "jobs share one GPU (memory profiling fails when another process frees memory meanwhile)")
    g.add_argument("--enforce-eager", action="store_true",
                   help="vLLM on GPU: skip CUDA-graph capture and compilation (engine starts ~20 s sooner, "
                        "decodes slower; for quick runs)")
    g.add_argument("--batch-invariant", action="store_true",
                   help="vLLM: batch-invariant kernels, so greedy outputs do not depend on which other prompts "
                        "share the batch (reproducible evaluation; slower)")
    g.add_argument("--concurrency", type=int, default=16, help="parallel requests per server for --backend openai")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (each question's samples are seeded from it "
                   "and the question's id)")
    g.add_argument("--skip-long-prompts", action="store_true",
                   help="skip (and count) prompts longer than the context instead of stopping")


def add_output_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--output", default=default, help="output JSONL (a manifest is written beside it)")
    p.add_argument("--overwrite", action="store_true",
                   help="start over: replace this command's outputs instead of resuming them")


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
        **vllm_options,
    )


def sampling_from_args(args: argparse.Namespace, temperature: float, n: int = 1, top_p: float = 1.0) -> Sampling:
    return Sampling(n=n, temperature=temperature, top_p=top_p, max_tokens=args.max_new_tokens, seed=args.seed)


# Arguments that change how a run goes, not what it produces: left out of the fingerprint.
OPERATIONAL = {"config", "dry_run", "overwrite", "batch_size", "chunk_size", "concurrency", "gpu_memory_utilization", "kv_cache_gb",
               "tensor_parallel_size", "enforce_eager", "skip_long_prompts", "output", "output_dir", "resume", "limit",
               "base_url", "backend_instance"}


# Settings added after outputs existed: at these defaults they stay out of the fingerprint, so those
# outputs still resume; any other value is part of it (a strict rerun does not reuse paper-rule rows).
LATER_DEFAULTS = {"scoring": DEFAULT_SCORING, "revision": None, "random_init": False}


def result_settings(args: argparse.Namespace, refs: dict[str, ModelRef]) -> dict:
    settings = {k: v for k, v in vars(args).items() if k not in OPERATIONAL
                and not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])}
    settings["models"] = {role: (r.path, r.adapter) for role, r in refs.items()}
    return settings

