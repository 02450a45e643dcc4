"""What a run's arms were trained on, and whether their trainings did what the recipe says:
``evidence.json`` beside the report (experiment.py and the fair test write it).

- ``training_targets``: how often each arm's training targets are right, scored against the student
  pool's ground truth (which no weak-to-strong arm sees), and Alice's ``original`` and ``new`` rows apart;
- ``hygiene``: the checks' counts from the stages' manifests (the first try alone is what an unchecked
  run would have trained on) and every row of each training file judged again (``alice/hygiene.py``);
- ``uncertainty``: the probing's counts and how often the teacher's majority answer is right;
- ``room_for_transfer``: on the pool, how often the teacher is right where the student's own sample is
  wrong, and the reverse (needs the self-training control's labels);
- ``training_runs``: each trained model's rows, steps, warm-up, whether it reached its peak learning
  rate, first and final loss;
- ``gpu_time``: the steps' wall time per kind, split into work, loading and saving (``alice/costs.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .costs import gpu_time
from .gate import outcomes
from .metrics import summarize_scores
from .records import iter_jsonl, read_json
from .tasks import Task


def manifest_of(output: Path) -> Path:
    return output.with_name(output.name.removesuffix(".jsonl") + ".manifest.json")


def target_accuracy(task: Task, pool: dict, path: Path, key: str = "response", where=lambda row: True) -> dict | None:
    """How often a training file's targets are right (scored against the pool's ground truth)."""
    if not path.is_file():
        return None
    rows = [row for _, row in iter_jsonl(path) if where(row) and row.get(key) is not None and str(row["id"]) in pool]
    if not rows:
        return {"rows": 0}
    scores = [task.score(row[key], pool[str(row["id"])]) for row in rows]
    return {"rows": len(rows), **{k: v for k, v in summarize_scores([s.correct for s in scores],
                                                                   [s.parsed for s in scores]).items()
                                  if k in ("accuracy", "accuracy_ci95", "parse_rate")}}


def hygiene(run: Path, task: Task, data_files: dict[str, Path]) -> dict:
    """How clean each arm's training targets and the statements are (see the module docstring)."""
    from .hygiene import audit_rows, audit_statements

    result: dict = {}
    uncertainty = run / "uncertainty.jsonl"
    statements = {}
    if uncertainty.is_file():
        rows = [row for _, row in iter_jsonl(uncertainty)]
        statements = {str(r["id"]): r.get("statement") for r in rows if r.get("status") == "uncertain"}
        manifest = read_json(manifest_of(uncertainty)) if manifest_of(uncertainty).is_file() else {}
        result["statements"] = {"checks": manifest.get("counts", {}).get("statement_checks"),
                                "final": audit_statements(rows)}
    for arm, path in data_files.items():
        if not path.is_file():
            continue
        counts = read_json(manifest_of(path)).get("counts", {}) if manifest_of(path).is_file() else {}
        result[arm] = {"checks": counts.get("checks"),
                       "teacher_answers_malformed": counts.get("original_malformed_by_reason"),
                       "final": audit_rows(task, [row for _, row in iter_jsonl(path)],
                                           statements if arm == "alice" else None)}
    return result


def training_runs(manifests: Iterable[Path]) -> dict[str, dict]:
    """Each trained model (its folder's manifest.json): did it train as the recipe says?"""
    runs = {}
    for manifest in manifests:
        info = read_json(manifest)
        training = info.get("training", {})
        runs[manifest.parent.name] = {
            "rows": info.get("counts", {}).get("rows"), "steps": training.get("steps"),
            "warmup_steps": training.get("warmup_steps"), "peak_lr_reached": training.get("peak_lr_reached"),
            "learning_rate": info.get("recipe", {}).get("learning_rate"), "first_loss": training.get("first_loss"),
            "final_loss": training.get("final_loss"), "train_s": info.get("timings", {}).get("train_s"),
            "tokens_per_s": training.get("tokens_per_s")}
    return runs


def evidence(run: Path, task: Task, data_files: dict[str, Path], model_manifests: Iterable[Path],
             limit: int | None = None, split_seed: int | None = None) -> dict:
    """The whole of ``evidence.json`` for a run folder: ``data_files`` maps each arm to its training file
    (``alice``, ``self_training``, ... as the report names them), ``model_manifests`` the trained models'
    manifests; ``limit`` and ``split_seed``: the student pool the run used."""
    pool = {ex.id: ex for ex in task.examples("student", split_seed, limit)}
    result: dict = {"pool_questions": len(pool)}
    teacher_right = student_right = None
    uncertainty = run / "uncertainty.jsonl"
    if uncertainty.is_file() and manifest_of(uncertainty).is_file():
        rows = outcomes(uncertainty)
        teacher_right = {i: r.get("teacher_answer") is not None and task.score(r["teacher_answer"], pool[i]).correct
                         for i, r in rows.items() if i in pool}
        counts = read_json(manifest_of(uncertainty)).get("counts", {})
        result["uncertainty"] = {**counts, "certain_rate": counts.get("certain", 0) / max(1, counts.get("questions", 1)),
                                 "teacher_majority_accuracy": sum(teacher_right.values()) / max(1, len(teacher_right))}
    self_training = data_files.get("self_training")
    if self_training is not None and self_training.is_file():
        rows = outcomes(self_training)
        student_right = {i: task.score(r["response"], pool[i]).correct for i, r in rows.items() if i in pool}
    if teacher_right is not None and student_right is not None:
        ids = sorted(set(teacher_right) & set(student_right))
        n = max(1, len(ids))
        result["room_for_transfer"] = {
            "n": len(ids),
            "teacher_right_student_wrong": sum(teacher_right[i] and not student_right[i] for i in ids) / n,
            "teacher_wrong_student_right": sum(student_right[i] and not teacher_right[i] for i in ids) / n,
            "both_right": sum(teacher_right[i] and student_right[i] for i in ids) / n,
            "both_wrong": sum(not teacher_right[i] and not student_right[i] for i in ids) / n,
            "note": "teacher: the answer of its largest cluster of K samples; student: one zero-shot sample "
                    "(temperature 0.9, the self-training labels)",
        }
    result["training_targets"] = {arm: target_accuracy(task, pool, path) for arm, path in data_files.items()}
    if "alice" in data_files:
        for label in ("original", "new"):
            result["training_targets"][f"alice ({label} rows)"] = target_accuracy(
                task, pool, data_files["alice"], where=lambda r, want=label: r.get("label") == want)
    for arm in ("alice", "alice_no_statement", "alice_structured"):
        if arm in data_files and manifest_of(data_files[arm]).is_file():
            result[f"student_generate {arm}"] = read_json(manifest_of(data_files[arm])).get("counts")
    result["hygiene"] = hygiene(run, task, data_files)
    result["training_runs"] = training_runs(model_manifests)
    result["gpu_time"] = gpu_time(run)
    return result
