"""The stage logic behind the scripts: each function takes parsed arguments (and optionally a
ready backend, so tests and cascades can share one engine) and writes its outputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .backends import Backend
from .cli import (
    GenerationSettings,
    ModelSettings,
    OutputSettings,
    TeacherDataSettings,
    TestDataSettings,
    backend_from_args,
    resolve_role,
    result_settings,
    role,
    sampling_from_args,
    task_from_args,
)
from .config import setting
from .errors import AliceError
from .metrics import summarize_scores
from .models import ModelRef
from .records import JsonlAppender, Manifest, atomic_write_json, read_jsonl
from .runner import generate_into
from .tasks import Example, Task


def slug(text: str) -> str:
    """A file-name-safe short name for a model or dataset."""
    text = text.rstrip("/").split("/")[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def summary_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name.removesuffix(".jsonl") + ".summary.json")


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


# ----------------------------------------------------------------------------- stage 1


@dataclass(kw_only=True)
class CotConfig(OutputSettings, GenerationSettings, ModelSettings, TeacherDataSettings):
    """cot_generate_filter.py (the teacher's half: no student pool here)."""

    teacher: str | None = role("teacher")
    temperature: float = setting(0.0, "0 = greedy")


def cot_generate_filter(args: CotConfig, backend: Backend | None = None) -> dict:
    """Stage 1: the base teacher answers its own half step by step; keep the correct ones."""
    task = task_from_args(args)
    examples = task.examples("teacher", args.split_seed, args.limit)
    use_rationales = any(ex.rationale for ex in examples)
    ref = None if use_rationales else resolve_role(args, "teacher")
    output = Path(args.output or f"data/cot-{slug(task.name)}-{slug(ref.path if ref else 'rationales')}.jsonl")
    manifest = Manifest(output, "cot_generate_filter", args, result_settings(args, {"teacher": ref} if ref else {}))
    manifest.claim([output], args.overwrite)
    if ref:
        manifest.data["models"]["teacher"] = ref.describe()
    manifest.data["scoring"] = task.scoring  # the rule that decides which CoT answers are kept
    manifest.save()

    def make_row(ex: Example, outs: list[str]) -> dict:
        score = task.score(outs[0], ex)
        return {"id": ex.id, "question": ex.question, "response": outs[0], "answer": ex.gold,
                "prediction": score.prediction, "parsed": score.parsed, "kept": score.correct}

    if use_rationales:  # GSM8K ships worked solutions: they are the filtered CoT
        with JsonlAppender(output) as appender:
            appender.write_many(make_row(ex, [task.ground_truth_response(ex)]) for ex in examples)
            rows = [appender.done[ex.id] for ex in examples]
        stats = {"source": "dataset rationales"}
    else:
        rows, stats = generate_once(manifest, args, ref, backend, output, examples, task.messages, make_row,
                                    sampling_from_args(args, args.temperature), "teacher CoT")
    counts = {"questions": len(examples), "generated": len(rows), "kept": sum(r["kept"] for r in rows),
              "unparsable": sum(not r["parsed"] for r in rows),
              "skipped_long_prompts": stats.get("skipped_long_prompts", 0)}
    manifest.complete(counts, output=str(output), dataset=task.name, pool="teacher")
    print(f"{output}: {counts['generated']} responses, {counts['kept']} kept, "
          f"{counts['unparsable']} unparsable")
    return counts


# ----------------------------------------------------------------------------- evaluation


@dataclass(kw_only=True)
class EvalConfig(OutputSettings, GenerationSettings, ModelSettings, TestDataSettings):
    """eval.py (the test split: never shuffled or split)."""

    teacher: str | None = role("teacher")
    student: str | None = role("student")
    split: str | None = setting(None, "split to evaluate (default: the task's test split)")
    predictions: str | None = setting(None, "re-score a JSONL of saved responses (id, response); loads no model")


def score_rows(task: Task, examples: list[Example], responses: dict[str, str]) -> list[dict]:
    """Scored rows: ``correct`` under the task's rule, plus ``correct_by_rule`` where the rules can differ."""
    rows = []
    for ex in examples:
        score = task.score(responses[ex.id], ex)
        row = {"id": ex.id, "question": ex.question, "gold": ex.gold, "response": responses[ex.id],
               "prediction": score.prediction, "parsed": score.parsed, "correct": score.correct}
        if score.by_rule is not None:
            row["correct_by_rule"] = score.by_rule
        rows.append(row)
    return rows


def evaluate(args: EvalConfig, backend: Backend | None = None) -> dict:
    """Greedy accuracy on the task's evaluation split; unparsable counts as wrong."""
    task = task_from_args(args)
    split = args.split or task.eval_split
    examples = task.examples(split, limit=args.limit)
    if args.predictions:
        return rescore(args, task, split, examples)
    role = next((r for r in ("student", "teacher") if getattr(args, r, None)), None)
    ref = resolve_role(args, role)
    output = Path(args.output or f"data/eval-{slug(task.name)}-{slug(ref.adapter or ref.path)}.jsonl")
    manifest = Manifest(output, "eval", args, result_settings(args, {"model": ref}))
    manifest.claim([output, summary_path(output)], args.overwrite)
    manifest.data["models"]["model"] = ref.describe()
    manifest.data["scoring"] = task.scoring
    manifest.save()

    def make_row(ex: Example, outs: list[str]) -> dict:
        return score_rows(task, [ex], {ex.id: outs[0]})[0]

    rows, stats = generate_once(manifest, args, ref, backend, output, examples, task.messages, make_row,
                                sampling_from_args(args, temperature=0.0), "evaluating")
    summary = write_summary(output, rows, task, split, model=ref.describe(), skipped=stats["skipped_ids"])
    manifest.complete({k: summary[k] for k in ("n", "correct", "parsed")}, output=str(output))
    return summary


def write_summary(output: Path, rows: list[dict], task: Task, split: str, model, skipped=()) -> dict:
    # Skipped (too long) prompts count as wrong and unparsed: nothing leaves the denominator.
    correct = [r["correct"] for r in rows] + [False] * len(skipped)
    parsed = [r["parsed"] for r in rows] + [False] * len(skipped)
    summary = {"dataset": task.name, "split": split, "model": model, "scoring": task.scoring,
               **summarize_scores(correct, parsed), "skipped_long_prompts": len(skipped)}
    if len(task.scoring_rules) > 1 and all("correct_by_rule" in r for r in rows):
        # Open answers: every rule's accuracy (same denominator), so a report can show both.
        n = max(1, summary["n"])
        summary["accuracy_by_rule"] = {rule: sum(bool(r["correct_by_rule"].get(rule)) for r in rows) / n
                                       for rule in task.scoring_rules}
    atomic_write_json(summary_path(output), summary)
    others = "".join(f", {rule} {acc:.3f}" for rule, acc in summary.get("accuracy_by_rule", {}).items()
                     if rule != task.scoring)
    print(f"{task.name} {split}: accuracy {summary['accuracy']:.3f} "
          f"[{summary['accuracy_ci95'][0]:.3f}, {summary['accuracy_ci95'][1]:.3f}] ({task.scoring} scoring{others}) "
          f"on n={summary['n']}, parse rate {summary['parse_rate']:.3f} -> {summary_path(output)}")
    return summary


def rescore(args: EvalConfig, task: Task, split: str, examples: list[Example]) -> dict:
    """Score saved responses (rows with id and response) without loading a model."""
    saved = read_jsonl(args.predictions, required=("id", "response"))
    by_id = {ex.id: ex for ex in task.load(split)}
    unknown = [r["id"] for r in saved if r["id"] not in by_id]
    if unknown:
        raise AliceError(f"{args.predictions}: id {unknown[0]!r} is not in {task.name} {split} "
                         f"({len(unknown)} unknown ids)")
    picked = [by_id[r["id"]] for r in saved]
    rows = score_rows(task, picked, {r["id"]: r["response"] for r in saved})
    output = Path(args.output or Path(args.predictions).with_name(
        Path(args.predictions).name.removesuffix(".jsonl") + ".rescored.jsonl"))
    from .records import write_jsonl_atomic

    write_jsonl_atomic(output, rows)
    return write_summary(output, rows, task, split, model={"predictions": str(args.predictions)})
