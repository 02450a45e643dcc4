"""Alice stages 4-5 (docs/METHOD.md), behind student_generate.py: zero-shot answers
(``<output>.zeroshot.jsonl``) for the questions where the teacher was uncertain, then proactive
answers; the output is the student's training JSONL (id, question, response, label), ``original``
rows from certain questions first.

Every target is checked (alice/hygiene.py) unless ``--max-tries 0``: a malformed proactive answer
is sampled again, up to ``--max-tries`` tries; then the student's own zero-shot answer is its target
when that is clean, else the question is dropped. A certain question whose teacher answer is malformed
is dropped. ``<output>.rejected.jsonl`` logs every rejected answer with its reason; the manifest counts
them.

``--statement`` picks what the proactive prompt says of the teacher's doubts: the summarizer's
statement (the method), a statement written by rule from the clusters (``structured``: the alternatives
the teacher reached and how often), or nothing (``none``: a control).

Questions on which the teacher had no answer (``status: "no_answer"`` in the uncertainty output)
give the student no training row (counted as ``no_teacher_answer``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..backends import Backend, Sampling
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
from ..errors import AliceError
from ..hygiene import answer_check, check_target, is_truncated, structured_from_row
from ..prompts import PROACTIVE_FORBIDDEN, PROACTIVE_HEADERS, proactive_instructions, proactive_messages
from ..records import JsonlAppender, Manifest, iter_jsonl, read_jsonl
from ..tasks import Example, Task
from .common import (
    Checked,
    LazyBackend,
    check_counts,
    generate_checked,
    generate_stage,
    sibling,
    slug,
)

STATEMENTS = {"summarizer": "the summarizer's uncertainty statement (the method)",
              "structured": "a statement written by rule from the teacher's clusters: the results it reached and "
                            "how often (alice/hygiene.py)",
              "none": "no statement (control: the same prompt with no word of the teacher's doubts)"}
# The Alice arms of a comparison and the statement each one's proactive prompt carries.
ALICE_STATEMENTS = {"alice": "summarizer", "alice_no_statement": "none", "alice_structured": "structured"}


@dataclass(kw_only=True)
class StudentGenerateConfig(OutputSettings, CheckSettings, GenerationSettings, ModelSettings, DataSettings):
    """student_generate.py."""

    student: str | None = role("student")
    uncertainty: str | None = setting(None, "uncertainty.py output (JSONL keyed by id)", required=True)
    temperature: float = setting(0.9, "zero-shot sampling temperature")
    proactive_temperature: float = setting(0.9, "proactive answer sampling temperature")
    top_p: float = setting(1.0, "nucleus sampling of both answers")
    statement: str = setting("summarizer", "what the proactive prompt says of the teacher's doubts: " + "; ".join(
        f"{name}: {text}" for name, text in STATEMENTS.items()), choices=list(STATEMENTS))


def statement_for(row: dict, kind: str, task: Task, example: Example) -> str | None:
    """The uncertainty statement an uncertain row gives the student under ``--statement kind``."""
    if kind == "none":
        return None
    if kind == "structured":
        return structured_from_row(row, task, example)
    return row.get("statement")


def load_uncertainty(path: str, task: Task, args: StudentGenerateConfig) -> tuple[list[Example], dict[str, dict]]:
    """The uncertainty rows joined with the task's student pool by id (pool order, --limit)."""
    rows = read_jsonl(path, required=("id", "status"))
    pool = task.examples("student", args.split_seed)
    pool_ids = {ex.id for ex in pool}
    unknown = [r["id"] for r in rows if r["id"] not in pool_ids]
    if unknown:
        raise AliceError(f"{path}: id {unknown[0]!r} is not in the {task.name} student pool "
                         f"({len(unknown)} unknown ids; same --data and --split-seed as uncertainty.py?)")
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        if r["status"] not in ("certain", "uncertain", "no_answer"):
            raise AliceError(f"{path}: id {r['id']!r} has unknown status {r['status']!r}")
        if r["status"] != "no_answer" and not r.get("teacher_answer"):
            raise AliceError(f"{path}: id {r['id']!r} has no teacher_answer")
    examples = [ex for ex in pool if ex.id in by_id]
    return (examples[:args.limit] if args.limit else examples), by_id


def student_generate(args: StudentGenerateConfig, backend: Backend | None = None) -> dict:
    """Stages 4-5: zero-shot answers, then proactive answers; writes the student's training JSONL."""
    task = task_from_args(args)
    examples, teacher_rows = load_uncertainty(args.uncertainty, task, args)
    student = resolve_role(args, "student")
    output = Path(args.output or f"data/student-{slug(task.name)}-{slug(student.adapter or student.path)}.jsonl")
    zeroshot_path = sibling(output, "zeroshot")
    manifest = Manifest(output, "student_generate", args, result_settings(args, {"student": student}))
    manifest.claim([output, zeroshot_path], args.overwrite)
    manifest.data["models"]["student"] = student.describe()
    manifest.save()
    timings = manifest.data["timings"]

    certain = [ex for ex in examples if teacher_rows[ex.id]["status"] == "certain"]
    uncertain = [ex for ex in examples if teacher_rows[ex.id]["status"] == "uncertain"]
    plain_check = answer_check(task)
    checking = args.max_tries > 0
    # A certain teacher's answer is the target (label original), when it is clean.
    malformed_original = {ex.id: why for ex in certain if checking and
                          (why := plain_check(ex, teacher_rows[ex.id]["teacher_answer"])) is not None}
    with JsonlAppender(output) as appender:
        appender.write_many({"id": ex.id, "question": ex.question, "response": teacher_rows[ex.id]["teacher_answer"],
                             "label": "original"} for ex in certain if ex.id not in malformed_original)
        pending = [ex for ex in uncertain if ex.id not in appender.done]

    lazy = LazyBackend(args, student, backend)
    checks: dict = {}
    try:
        zero_rows, stats = generate_stage(
            zeroshot_path, lazy, pending, task.messages,
            lambda ex, outs: {"id": ex.id, "response": outs[0], "truncated": is_truncated(outs[0])},
            sampling_from_args(args, args.temperature, top_p=args.top_p), args, "student zero-shot")
        timings["zero_shot_s"] = round(timings.get("zero_shot_s", 0) + stats.get("generation_s", 0.0), 3)
        zero_shot = {r["id"]: r for r in zero_rows}
        own = {qid: r["response"] for qid, r in zero_shot.items()}
        statements = {ex.id: statement_for(teacher_rows[ex.id], args.statement, task, ex) for ex in pending}

        def proactive_prompt(ex: Example) -> list[dict]:
            return proactive_messages(task, ex, own[ex.id], teacher_rows[ex.id]["teacher_answer"], statements[ex.id],
                                      with_statement=args.statement != "none")

        def new_row(ex: Example, outs: list[str]) -> dict:
            score = task.score(outs[0], ex)
            teacher_prediction = task.score(teacher_rows[ex.id]["teacher_answer"], ex).prediction
            return {"id": ex.id, "question": ex.question, "response": outs[0], "label": "new",
                    "zero_shot": own[ex.id], "teacher_answer": teacher_rows[ex.id]["teacher_answer"],
                    "statement": statements[ex.id], "prediction": score.prediction, "parsed": score.parsed,
                    "differs_from_teacher": score.prediction != teacher_prediction}

        def proactive_check(ex: Example, text: str) -> str | None:
            return check_target(text, task.format.final_answers(text, ex.question), truncated=is_truncated(text),
                                question=ex.question, shown=(own[ex.id], teacher_rows[ex.id]["teacher_answer"]),
                                headers=PROACTIVE_HEADERS, forbidden=PROACTIVE_FORBIDDEN,
                                instructions=proactive_instructions(task, ex, args.statement != "none"),
                                statement=statements[ex.id])

        def own_answer(ex: Example) -> dict | None:
            """Every proactive try failed: the student's zero-shot answer, when it is clean."""
            row = zero_shot[ex.id]
            text = row["response"]
            if row.get("truncated") or plain_check(ex, text) is not None:
                return None
            return {**new_row(ex, [text]), "label": "new"}

        proactive = Sampling(n=1, temperature=args.proactive_temperature, top_p=args.top_p,
                             max_tokens=args.max_new_tokens, seed=args.seed + 1)
        todo = [ex for ex in pending if ex.id in own]
        if checking:
            _, stats = generate_checked(output, lazy, todo, proactive_prompt, new_row, proactive, args,
                                        "student proactive", Checked(proactive_check, args.max_tries, own_answer))
        else:
            _, stats = generate_stage(output, lazy, todo, proactive_prompt, new_row, proactive, args, "student proactive")
        timings["proactive_s"] = round(timings.get("proactive_s", 0) + stats.get("generation_s", 0.0), 3)
        if lazy.backend is not None:
            manifest.data["backend"] = lazy.backend.describe()
    finally:
        lazy.close()

    with JsonlAppender(output) as appender:
        done = [appender.done[ex.id] for ex in examples if ex.id in appender.done]
    if checking:  # from the files, so a finished rerun counts the same
        log = sibling(output, "rejected")
        checks = check_counts([r for r in done if r["label"] == "new"],
                              [row for _, row in iter_jsonl(log)] if log.is_file() else [], len(uncertain))
    new = [r for r in done if r["label"] == "new"]
    counts = {
        "questions": len(examples), "rows": len(done),
        "certain": len(certain), "uncertain": len(uncertain),
        "no_teacher_answer": sum(teacher_rows[ex.id]["status"] == "no_answer" for ex in examples),
        "original": len(done) - len(new), "new": len(new),
        "new_unparsable": sum(not r["parsed"] for r in new),
        "new_differs_from_teacher": sum(r["differs_from_teacher"] for r in new),
        "statement": args.statement,
    }
    if checking:
        counts["original_malformed"] = len(malformed_original)
        counts["original_malformed_by_reason"] = dict(sorted(Counter(malformed_original.values()).items()))
        counts["checks"] = checks
    manifest.complete(counts, output=str(output), dataset=task.name, uncertainty=str(args.uncertainty))
    print(f"{output}: {counts['original']} original + {counts['new']} new rows "
          f"({counts['new_unparsable']} unparsable, {counts['new_differs_from_teacher']} differ from the teacher)")
    return counts
