"""Original weak-to-strong labels (the paper's W2S baselines): the trained teacher answers the
student pool once (temperature 0.6) and its answers, right or wrong, become the student's
training rows (id, question, response), ready for train.py.

Both teacher variants of the paper go through here: the teacher trained on its filtered CoT
(W2S-CoT) and the teacher trained on answers only (W2S-QA, ``train.py --ground-truth --no-rationale``).
The student labelling the pool itself (``--teacher`` the student, temperature 0.9) is the
self-training control.

Labels are checked (alice/hygiene.py) unless ``--max-tries 0``: a label with no final answer, two
that differ, an echo of the prompt's instructions, or cut off at the token limit is sampled again,
up to ``--max-tries`` tries, then the question is dropped; right or wrong is never checked (no
ground truth). ``<output>.rejected.jsonl`` logs the rejected labels; the manifest counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backends import Backend
from ..cli import (
    CheckSettings,
    DataSettings,
    GenerationSettings,
    ModelSettings,
    OutputSettings,
    resolve_role,
    result_settings,
    role,
    sampling_from_args,
    task_from_args,
)
from ..config import setting
from ..hygiene import answer_check
from ..records import Manifest, iter_jsonl
from ..tasks import Example
from .common import (
    Checked,
    LazyBackend,
    check_counts,
    generate_checked,
    generate_once,
    record_generation,
    sibling,
    slug,
)


@dataclass(kw_only=True)
class W2SLabelsConfig(OutputSettings, CheckSettings, GenerationSettings, ModelSettings, DataSettings):
    """w2s_labels.py."""

    teacher: str | None = role("teacher")
    temperature: float = setting(0.6, "the paper's label temperature")
    top_p: float = setting(1.0, "nucleus sampling of the labels")


def w2s_labels(args: W2SLabelsConfig, backend: Backend | None = None) -> dict:
    """The trained teacher labels the student pool; rows keyed by id, resumable."""
    task = task_from_args(args)
    examples = task.examples("student", args.split_seed, args.limit)
    teacher = resolve_role(args, "teacher")
    output = Path(args.output or f"data/w2s-{slug(task.name)}-{slug(teacher.adapter or teacher.path)}.jsonl")
    manifest = Manifest(output, "w2s_labels", args, result_settings(args, {"teacher": teacher}))
    manifest.claim([output], args.overwrite)
    manifest.data["models"]["teacher"] = teacher.describe()
    manifest.save()

    def make_row(ex: Example, outs: list[str]) -> dict:
        score = task.score(outs[0], ex)
        # Wrong answers stay: the student learns from the teacher's labels as they are (the
        # baseline's point). Only an empty reply has nothing to train on.
        return {"id": ex.id, "question": ex.question, "response": outs[0], "label": "w2s",
                "prediction": score.prediction, "parsed": score.parsed, "kept": bool(outs[0].strip())}

    sampling = sampling_from_args(args, args.temperature, top_p=args.top_p)
    if args.max_tries > 0:
        lazy = LazyBackend(args, teacher, backend)
        try:
            rows, stats = generate_checked(output, lazy, examples, task.messages, make_row, sampling, args,
                                           "teacher labels (W2S)", Checked(answer_check(task), args.max_tries))
        finally:
            lazy.close()
        if lazy.backend is not None:
            manifest.data["backend"] = lazy.backend.describe()
        record_generation(manifest, stats)
    else:
        rows, stats = generate_once(manifest, args, teacher, backend, output, examples, task.messages, make_row,
                                    sampling, "teacher labels (W2S)")
    counts = {"questions": len(examples), "labels": len(rows), "kept": sum(r["kept"] for r in rows),
              "unparsable": sum(not r["parsed"] for r in rows),
              "skipped_long_prompts": stats.get("skipped_long_prompts", 0)}
    if args.max_tries > 0:
        log = sibling(output, "rejected")
        counts["checks"] = check_counts(rows, [r for _, r in iter_jsonl(log)] if log.is_file() else [], len(examples))
    manifest.complete(counts, output=str(output), dataset=task.name, pool="student")
    print(f"{output}: {counts['labels']} teacher labels ({counts['unparsable']} unparsable)")
    return counts
