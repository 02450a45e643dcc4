"""What the stages share: file names (``slug``, ``summary_path``, ``sibling``), a backend started only
when there is something to generate (``LazyBackend``), and the resume-or-generate pass over a list
of examples (``generate_stage``, ``generate_once``). Each stage function takes its config (and
optionally a ready backend, so tests and cascades can share one engine) and writes its outputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ..backends import Backend
from ..cli import GenerationSettings, backend_from_args
from ..models import ModelRef
from ..records import JsonlAppender, Manifest
from ..runner import generate_into
from ..tasks import Example


def slug(text: str) -> str:
    """A file-name-safe short name for a model or dataset."""
    text = text.rstrip("/").split("/")[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def summary_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name.removesuffix(".jsonl") + ".summary.json")


def sibling(output: Path, suffix: str) -> Path:
    """``data/x.jsonl`` -> ``data/x.<suffix>.jsonl`` (a phase file beside the final output)."""
    return output.with_name(output.name.removesuffix(".jsonl") + f".{suffix}.jsonl")


class LazyBackend:
    """Starts the model only when there is something to generate (a finished rerun loads nothing)."""

    def __init__(self, args: GenerationSettings, ref: ModelRef | None, ready: Backend | None = None):
        self.args, self.ref, self.backend = args, ref, ready
        self.owned = ready is None

    def get(self) -> Backend:
        if self.backend is None:
            self.backend = backend_from_args(self.args, self.ref)
        return self.backend

    def close(self) -> None:
        if self.owned and self.backend is not None:
            self.backend.close()


def generate_stage(
    output: Path,
    lazy: LazyBackend,
    examples: list[Example],
    conversation: Callable[[Example], list[dict]],
    make_row: Callable[[Example, list[str]], dict],
    sampling,
    args: GenerationSettings,
    desc: str,
) -> tuple[list[dict], dict]:
    """Resume-or-generate into ``output``; returns this run's rows in example order and stats."""
    with JsonlAppender(output) as appender:
        stats = {"generated_now": 0, "skipped_long_prompts": 0, "skipped_ids": []}
        if any(ex.id not in appender.done for ex in examples):
            stats = generate_into(appender, lazy.get(), examples, conversation, make_row, sampling,
                                  chunk_size=args.chunk_size, skip_long=args.skip_long_prompts, desc=desc)
        rows = [appender.done[ex.id] for ex in examples if ex.id in appender.done]
    return rows, stats


def generate_once(manifest: Manifest, args: GenerationSettings, ref: ModelRef | None, backend: Backend | None,
                  output: Path, examples: list[Example], conversation: Callable[[Example], list[dict]],
                  make_row: Callable[[Example, list[str]], dict], sampling, desc: str) -> tuple[list[dict], dict]:
    """One model, one pass over the examples: start it only if needed, close it if we started it,
    and record the backend and the generation time in the manifest."""
    lazy = LazyBackend(args, ref, backend)
    try:
        rows, stats = generate_stage(output, lazy, examples, conversation, make_row, sampling, args, desc)
    finally:
        lazy.close()
    if lazy.backend is not None:
        manifest.data["backend"] = lazy.backend.describe()
    manifest.data["timings"]["generation_s"] = stats.get("generation_s", 0.0)
    return rows, stats
