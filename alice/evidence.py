"""What a run's arms were trained on, and whether their trainings did what the recipe says:
``evidence.json`` beside the report (experiment.py writes it).

- ``training_targets``: how often each arm's training targets are right, scored against the student
  pool's ground truth (which no weak-to-strong arm sees), and Alice's ``original`` and ``new`` rows apart;
- ``hygiene``: the checks' counts from the stages' manifests (the first try alone is what an unchecked
  run would have trained on) and every row of each training file judged again (``alice/hygiene.py``);
- ``uncertainty``: the probing's counts and how often the teacher's majority answer is right;
- ``room_for_transfer``: on the pool, how often the teacher is right where the student's own sample is
  wrong, and the reverse (needs the self-training control's labels);
- ``training_runs``: each trained model's rows, steps, warm-up, whether it reached its peak learning
  rate, first and final loss;
- ``gpu_time``: the steps' wall time per kind, split into work, loading and saving (``alice/costs.py``);
- ``evaluation_batches``: each batch of evaluations sharing one engine, its wall time against its generation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .costs import eval_batch_costs, gpu_time
from .metrics import summarize_scores
from .records import iter_jsonl, manifest_path, read_json
from .tasks import Task


def counts_of(output: Path) -> dict:
    """The counts in an output's manifest ({} when it has none)."""
    manifest = manifest_path(output)
    return read_json(manifest).get("counts", {}) if manifest.is_file() else {}


def target_accuracy(task: Task, pool: dict, rows: list[dict]) -> dict:
    """How often a training file's targets are right (scored against the pool's ground truth)."""
    rows = [row for row in rows if row.get("response") is not None and str(row["id"]) in pool]
    if not rows:
        return {"rows": 0}
    scores = [task.score(row["response"], pool[str(row["id"])]) for row in rows]
    return {"rows": len(rows), **{k: v for k, v in summarize_scores([s.correct for s in scores],
                                                                   [s.parsed for s in scores]).items()
                                  if k in ("accuracy", "accuracy_ci95", "parse_rate")}}


def hygiene(task: Task, files: dict[str, list[dict]], counts: dict[str, dict], uncertainty: list[dict] | None,
            uncertainty_counts: dict) -> dict:
    """How clean each arm's training targets (``files``: its rows; ``counts``: its manifest's) and the
    statements are (see the module docstring)."""
    from .hygiene import audit_rows, audit_statements

    result: dict = {}
    statements = {}
    if uncertainty is not None:
        statements = {str(r["id"]): r.get("statement") for r in uncertainty if r.get("status") == "uncertain"}
        result["statements"] = {"checks": uncertainty_counts.get("statement_checks"),
                                "final": audit_statements(uncertainty)}
    for arm, rows in files.items():
        result[arm] = {"checks": counts[arm].get("checks"),
                       "teacher_answers_malformed": counts[arm].get("original_malformed_by_reason"),
                       "final": audit_rows(task, rows, statements if arm == "alice" else None)}
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
    manifests; ``limit`` and ``split_seed``: the student pool the run used. Each file is read once."""
    pool = {ex.id: ex for ex in task.examples("student", split_seed, limit)}
    files = {arm: [row for _, row in iter_jsonl(path)] for arm, path in data_files.items() if path.is_file()}
    counts = {arm: counts_of(data_files[arm]) for arm in files}
    result: dict = {"pool_questions": len(pool)}
    teacher_right = student_right = None
    uncertainty_path = run / "uncertainty.jsonl"
    uncertainty = [row for _, row in iter_jsonl(uncertainty_path)] if uncertainty_path.is_file() else None
    uncertainty_counts = counts_of(uncertainty_path)
    if uncertainty is not None and manifest_path(uncertainty_path).is_file():
        teacher_right = {str(r["id"]): r.get("teacher_answer") is not None
                         and task.score(r["teacher_answer"], pool[str(r["id"])]).correct
                         for r in uncertainty if str(r["id"]) in pool}
        result["uncertainty"] = {
            **uncertainty_counts,
            "certain_rate": uncertainty_counts.get("certain", 0) / max(1, uncertainty_counts.get("questions", 1)),
            "teacher_majority_accuracy": sum(teacher_right.values()) / max(1, len(teacher_right))}
    if "self_training" in files:
        student_right = {str(r["id"]): task.score(r["response"], pool[str(r["id"])]).correct
                         for r in files["self_training"] if str(r["id"]) in pool}
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
    result["training_targets"] = {arm: target_accuracy(task, pool, files[arm]) if arm in files else None
                                  for arm in data_files}
    if "alice" in files:
        for label in ("original", "new"):
            result["training_targets"][f"alice ({label} rows)"] = target_accuracy(
                task, pool, [r for r in files["alice"] if r.get("label") == label])
    for arm in ("alice", "alice_no_statement", "alice_structured"):
        if arm in files and manifest_path(data_files[arm]).is_file():
            result[f"student_generate {arm}"] = counts[arm]
    result["hygiene"] = hygiene(task, files, counts, uncertainty, uncertainty_counts)
    result["training_runs"] = training_runs(model_manifests)
    result["gpu_time"] = gpu_time(run)
    batches = eval_batch_costs(run)
    if batches:
        result["evaluation_batches"] = batches
    return result
