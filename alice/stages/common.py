"""What the stages share: file names (``slug``, ``summary_path``, ``sibling``), a backend started only
when there is something to generate (``LazyBackend``), and the resume-or-generate pass over a list
of examples (``generate_stage``, ``generate_once``). Each stage function takes its config (and
optionally a ready backend, so tests and cascades can share one engine) and writes its outputs."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..backends import Backend, Sampling
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


# Try t (from 1) of a checked stage samples with seed + RETRY_SEED_STRIDE * (t - 1): the first try draws what an
# unchecked stage draws, later ones new samples.
RETRY_SEED_STRIDE = 1_000_003
# The temperature of later tries when the first is greedy (the paper samples its summarizer at 0.9).
RETRY_TEMPERATURE = 0.9


@dataclass
class Checked:
    """How a checked stage judges what it generated (alice/hygiene.py) and what it does when every try
    fails: ``check(example, text)`` gives a reason or None (clean); ``fallback(example)`` gives a row to
    write instead, or None to drop the question."""

    check: Callable[[Example, str], str | None]
    max_tries: int = 4
    fallback: Callable[[Example], dict | None] | None = None


def generate_checked(output: Path, lazy: LazyBackend, examples: list[Example],
                     conversation: Callable[[Example], list[dict]], make_row: Callable[[Example, list[str]], dict],
                     sampling: Sampling, args: GenerationSettings, desc: str, checked: Checked) -> tuple[list[dict], dict]:
    """``generate_stage`` whose rows are written only when ``checked.check`` finds them clean: a rejected
    completion is logged (``<output>.rejected.jsonl``: id, try, reason, response) and its question sampled
    again with a new seed, up to ``checked.max_tries`` tries; then ``checked.fallback`` gives its row, or
    the question is dropped (logged as such). Rows carry ``tries`` (the try that gave them) and
    ``source`` ("generated" or "fallback"). A rerun resumes at each question's next try."""
    log_path = sibling(output, "rejected")
    stats: dict = {"generation_s": 0.0, "generated_tokens": 0, "skipped_long_prompts": 0}
    with JsonlAppender(output) as appender, JsonlAppender(log_path, key=lambda r: (str(r["id"]), r.get("try"))) as log:
        while True:
            dropped = {qid for qid, t in log.done if t is None}
            pending = [ex for ex in examples if ex.id not in appender.done and ex.id not in dropped]
            if not pending:
                break
            tried: dict[str, int] = {}
            for qid, t in log.done:
                if t is not None:
                    tried[qid] = max(tried.get(qid, 0), t)
            attempt = min(tried.get(ex.id, 0) + 1 for ex in pending)
            group = [ex for ex in pending if tried.get(ex.id, 0) + 1 == attempt]
            if attempt > checked.max_tries:  # every try was spent before a kill: only the fallback is left
                settle(appender, log, group, checked, attempt - 1)
                continue
            now = sampling if attempt == 1 else replace(
                sampling, seed=sampling.seed + RETRY_SEED_STRIDE * (attempt - 1),
                temperature=sampling.temperature if sampling.temperature > 0 else RETRY_TEMPERATURE)

            def row_for(ex: Example, outs: list[str], attempt: int = attempt) -> dict | None:
                reason = checked.check(ex, outs[0])
                if reason is None:
                    return {**make_row(ex, outs), "tries": attempt, "source": "generated"}
                log.write_many([{"id": ex.id, "try": attempt, "reason": reason, "response": str(outs[0])}])
                if attempt < checked.max_tries:
                    return None
                return settle(None, log, [ex], checked, attempt)

            run = generate_into(appender, lazy.get(), group, conversation, row_for, now, chunk_size=args.chunk_size,
                                skip_long=args.skip_long_prompts, desc=desc if attempt == 1 else f"{desc} (try {attempt})")
            stats["generation_s"] = round(stats["generation_s"] + run["generation_s"], 3)
            stats["generated_tokens"] += run["generated_tokens"]
            stats["skipped_long_prompts"] += run["skipped_long_prompts"]
            skipped = set(run["skipped_ids"])
            if skipped:  # too long for the context on every try: dropped
                log.write_many({"id": qid, "try": None, "reason": "prompt_too_long"} for qid in sorted(skipped))
        rows = [appender.done[ex.id] for ex in examples if ex.id in appender.done]
        stats["checks"] = check_counts(rows, list(log.done.values()), len(examples))
    return rows, stats


def settle(appender, log, group: list[Example], checked: Checked, tries: int) -> dict | None:
    """Questions whose every try failed: the fallback's row (written to ``appender`` when given, else
    returned for the caller to write), or a logged drop."""
    row = None
    for ex in group:
        row = checked.fallback(ex) if checked.fallback else None
        if row is None:
            log.write_many([{"id": ex.id, "try": None, "reason": "no_clean_try"}])
            continue
        row = {**row, "tries": tries, "source": "fallback"}
        if appender is not None:
            appender.write_many([row])
    return row


def check_counts(rows: list[dict], log: list[dict], questions: int) -> dict:
    """The manifest's account of a checked stage: questions by outcome, rejected completions by reason (all
    tries, and the first try alone: how clean the stage would have been unchecked)."""
    first = Counter(r["reason"] for r in log if r.get("try") == 1)
    return {
        "questions": questions,
        "clean_first_try": sum(r.get("source") == "generated" and r.get("tries") == 1 for r in rows),
        "clean_after_retry": sum(r.get("source") == "generated" and (r.get("tries") or 1) > 1 for r in rows),
        "fallback": sum(r.get("source") == "fallback" for r in rows),
        "dropped": sum(r.get("try") is None for r in log),
        "first_try_malformed": sum(first.values()),
        "first_try_malformed_by_reason": dict(sorted(first.items())),
        "rejected_by_reason": dict(sorted(Counter(r["reason"] for r in log if r.get("try") is not None).items())),
        "dropped_by_reason": dict(sorted(Counter(r["reason"] for r in log if r.get("try") is None).items())),
    }


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
    record_generation(manifest, stats)
    return rows, stats


def record_generation(manifest: Manifest, stats: dict) -> None:
    """This run's generation time and generated tokens in the manifest (a resumed run: this attempt's)."""
    manifest.data["timings"]["generation_s"] = stats.get("generation_s", 0.0)
    manifest.data["timings"]["generated_tokens"] = stats.get("generated_tokens", 0)
