"""Stage 1 (cot_generate_filter.py): the base teacher answers its own half of the training data step
by step, and the answers its task scores as correct are kept (GSM8K's worked solutions stand in
for them where the dataset ships rationales)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backends import Backend
from ..cli import (
    GenerationSettings,
    ModelSettings,
    OutputSettings,
    TeacherDataSettings,
    resolve_role,
    result_settings,
    role,
    sampling_from_args,
    task_from_args,
)
from ..config import setting
from ..records import JsonlAppender, Manifest
from ..tasks import Example
from .common import generate_once, slug


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
