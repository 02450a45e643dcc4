"""Evaluation (eval.py): greedy accuracy of a model on the task's evaluation split, or the saved
responses of an earlier run re-scored without a model (``rescore``); per-question rows and a
summary JSON with the accuracy, its interval and the parse rate."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..backends import Backend
from ..cli import (
    GenerationSettings,
    ModelSettings,
    OutputSettings,
    TestDataSettings,
    resolve_role,
    result_settings,
    role,
    sampling_from_args,
    task_from_args,
)
from ..config import setting
from ..errors import AliceError
from ..metrics import summarize_scores
from ..models import ModelRef, has_weights
from ..records import Manifest, atomic_write_json, complete_manifest, read_batch_listing, read_jsonl
from ..tasks import Example, Task
from .common import generate_once, slug, summary_path


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
        cluster = task.cluster_of(ex.id)
        if cluster != ex.id:  # questions that come in groups (templates): intervals resample the groups
            row["cluster"] = cluster
        rows.append(row)
    return rows


def evaluated_name(args: EvalConfig) -> str | None:
    """The model eval.py evaluates, as given: --student, else --teacher (the weak model is a trained teacher)."""
    return args.student or args.teacher


def evaluated_model(args: EvalConfig) -> ModelRef:
    """``evaluated_name`` resolved (a size with --model, or --model alone)."""
    return resolve_role(args, "student" if args.student else "teacher" if args.teacher else None)


def evaluate(args: EvalConfig, backend: Backend | None = None) -> dict:
    """Greedy accuracy on the task's evaluation split; unparsable counts as wrong."""
    task = task_from_args(args)
    split = args.split or task.eval_split
    examples = task.examples(split, limit=args.limit)
    if args.predictions:
        return rescore(args, task, split, examples)
    ref = evaluated_model(args)
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
    if task.describe():
        summary["data"] = task.describe()
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
    from ..records import write_jsonl_atomic

    write_jsonl_atomic(output, rows)
    return write_summary(output, rows, task, split, model={"predictions": str(args.predictions)})


def evaluate_many(configs: list, record: Path | None = None, wait_for: Sequence[str] = ()) -> list[dict]:
    """Several eval.py runs (their ``EvalConfig``) in one process sharing one generation engine: a model of
    the architecture of the one loaded takes its place by loading its weights into the running engine (vLLM;
    ``Engines``), the same model is not loaded again for its second test set. A model in ``wait_for`` (a folder
    a training is still writing) is evaluated once its training is complete. Each run writes its own output
    and manifest, as eval.py would. Returns the engine record (starts and weight loads), also written to
    ``record`` with the wall time of the whole batch and the time spent waiting for trainings."""
    from ..engines import Engines

    started, waited = time.time(), 0.0
    engines = Engines(configs[0], share_adapters=False)
    try:
        for config in configs:
            if evaluated_name(config) in wait_for:  # a training's output folder, named as it was given
                waited += wait_until_trained(evaluated_name(config))
            evaluate(config, engines.handle(evaluated_model(config)))
    finally:
        engines.close()
    for start in engines.starts:
        print("engine: " + ", ".join(f"{k} {v}" for k, v in start.items()), flush=True)
    if record is not None:
        atomic_write_json(record, {"outputs": [str(c.output) for c in configs], "engines": engines.starts,
                                   "wall_s": round(time.time() - started, 1), "waited_s": round(waited, 1)})
    return engines.starts


def wait_until_trained(folder: str, poll_s: float = 5.0) -> float:
    """Wait until the training that writes ``folder`` has finished it (its manifest complete, its weights
    there); the seconds waited. The process that started this one (experiment.py) stops it if that training
    fails; if that process is gone, so is the wait."""
    began, parent, told = time.time(), os.getppid(), False
    while True:
        if complete_manifest(folder) is not None and has_weights(folder):
            return time.time() - began
        if os.getppid() != parent:
            raise AliceError(f"{folder}: still training and the run that started this batch is gone")
        if not told:
            print(f"waiting for {folder} (its training)", flush=True)
            told = True
        time.sleep(poll_s)


def evaluate_batch_file(path: str | Path) -> list[dict]:
    """``evaluate_many`` of the eval.py configs a JSON file lists (each its full settings, as a dry run prints
    them), as a list or as ``{"evaluations": [...], "wait_for": [model folders still training]}``: the batch
    step ``experiment.py --gpus --eval-batches`` runs as ``python -m alice.stages.evaluate FILE``."""
    listed, wait_for = read_batch_listing(path)
    known = set(EvalConfig.__dataclass_fields__)
    configs = []
    for settings in listed:
        unknown = set(settings) - known
        if unknown:
            raise AliceError(f"{path}: settings eval.py does not have: {', '.join(sorted(unknown))}")
        configs.append(EvalConfig(**settings))
    if not configs:
        raise AliceError(f"{path}: no evaluations listed")
    return evaluate_many(configs, Path(path).with_suffix(".engines.json"), wait_for)


if __name__ == "__main__":
    import sys

    from alice.errors import run_main
    from alice.stages.evaluate import evaluate_batch_file as batch  # the package's classes, not a second copy

    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        raise SystemExit("usage: python -m alice.stages.evaluate BATCH.json  (eval.py configs, one engine for all)")
    run_main(lambda: batch(sys.argv[1]))
