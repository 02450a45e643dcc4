"""The fair-test driver: its table of steps (each stage step a stage config), the gate and the part
merge on real files, and the whole table end to end on CPU with the small real model. The executor
itself: test_steps.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_script

from alice.config import parse, to_argv
from alice.errors import AliceError
from alice.fair import FairTest, gate_result, load_config
from alice.metrics import summarize_scores
from alice.stages.uncertainty import merge_parts


def write_eval(run: Path, name: str, correct: int, n: int = 100) -> None:
    """An evaluation as eval.py writes it: per-question rows (4 questions per template) and the summary."""
    rows = [{"id": f"q{i:03d}", "cluster": f"template {i // 4}", "correct": (i * 37) % n < correct, "parsed": True}
            for i in range(n)]  # right answers spread over the templates
    (run / f"eval-{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = summarize_scores([r["correct"] for r in rows], [True] * n)
    (run / f"eval-{name}.summary.json").write_text(json.dumps(summary))


def test_gate_reads_seed_means_and_names_what_fails(tmp_path):
    config = {"gate": {"chance": 0.0, "min_gap": 0.15}}
    for seed, (weak, ceiling) in enumerate([(58, 84), (60, 85), (62, 86)]):
        write_eval(tmp_path, f"weak-seed{seed}", weak)
        write_eval(tmp_path, f"ceiling-seed{seed}", ceiling)
    write_eval(tmp_path, "zero_shot", 50)
    gate = gate_result(tmp_path, config, [0, 1, 2], [0, 1, 2])
    assert gate["passed"] and abs(gate["gap"] - 0.25) < 1e-9 and gate["zero_shot"]["accuracy"] == 0.5
    assert gate["weak"]["seeds"] == [0.58, 0.6, 0.62] and abs(gate["ceiling"]["accuracy"] - 0.85) < 1e-9
    # Intervals resample the 25 templates and the seeds.
    low, high = gate["weak"]["accuracy_ci95"]
    assert gate["weak"]["units"] == 25 and low < 0.6 < high
    # Seed 0 alone would pass (80 against 58); the means decide: a gap of 14.7 points, under 15.
    for seed, ceiling in enumerate([80, 74, 70]):
        write_eval(tmp_path, f"ceiling-seed{seed}", ceiling)
    gate = gate_result(tmp_path, config, [0, 1, 2], [0, 1, 2])
    assert not gate["checks"]["gap_at_least_min"] and abs(gate["gap"] - (0.7466666 - 0.6)) < 1e-6
    # Memorising templates: the ceiling falls below the untrained student.
    write_eval(tmp_path, "zero_shot", 90)
    gate = gate_result(tmp_path, config, [0, 1, 2], [0, 1, 2])
    assert not gate["passed"] and not gate["checks"]["ceiling_not_below_zero_shot"]
    # A weak model at chance with a ceiling too close: three checks fail.
    for seed in (0, 1, 2):
        write_eval(tmp_path, f"weak-seed{seed}", 0)
        write_eval(tmp_path, f"ceiling-seed{seed}", 2)
    checks = gate_result(tmp_path, config, [0, 1, 2], [0, 1, 2])["checks"]
    assert not checks["weak_above_chance"] and not checks["gap_at_least_min"] and not checks["intervals_apart"]
    with pytest.raises(AliceError, match="missing"):
        gate_result(tmp_path, config, [3], [0])


def test_probe_parts_merge_into_one_output_with_summed_counts(tmp_path):
    parts = []
    for i, ids in enumerate((["q1", "q2"], ["q3"]), start=1):
        part = tmp_path / f"uncertainty-p{i}.jsonl"
        part.write_text("".join(json.dumps({"id": q, "status": "certain"}) + "\n" for q in ids))
        manifest = {"status": "complete", "command": f"uncertainty.py --pool-part {i}/2",
                    "counts": {"questions": len(ids), "certain": len(ids)}, "timings": {"probing_s": 1.5}}
        (tmp_path / f"uncertainty-p{i}.manifest.json").write_text(json.dumps(manifest))
        parts.append(part)
    merged = tmp_path / "uncertainty.jsonl"
    assert merge_parts(parts, merged) == {"questions": 3, "certain": 3}
    assert [json.loads(line)["id"] for line in merged.read_text().splitlines()] == ["q1", "q2", "q3"]
    manifest = json.loads((tmp_path / "uncertainty.manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["timings"]["probing_s"] == 3.0
    assert manifest["commands"] == ["uncertainty.py --pool-part 1/2", "uncertainty.py --pool-part 2/2"]


def test_shipped_config_builds_every_arm_and_seed(tmp_path):
    path = Path(__file__).resolve().parent.parent / "configs" / "fair.toml"
    config = load_config(path)
    test = FairTest(config, tmp_path / "run", gpus=["0", "1"], config_path=str(path))
    names = {s.name for s in test.build()}
    arms = ("alice", "alice_no_statement", "alice_structured", "self_training", "w2s_cot", "w2s_qa")
    for arm in (*arms, "ceiling", "weak"):
        assert {f"train {arm}-seed{s}" for s in (0, 1, 2)} <= names
    for arm in ("ceiling", "weak"):  # the gate's inputs: one evaluation step each, on both test sets
        assert {f"eval {arm}-seed2", f"eval {arm}-seed2 (held-out)"} <= names
    # The student arms: one step per seed evaluates its six models on both test sets in one engine.
    batch = next(s for s in test.steps if s.name == "eval seed1 arms")
    assert set(batch.needs) == {f"train {arm}-seed1" for arm in arms}
    assert batch.argv()[2:4] == ["evaluate", "--config"] and batch.argv()[-6:] == [f"{a}-seed1" for a in arms]
    held_out = test.eval_configs("alice-seed1")[1]
    assert held_out.data == config["data"] + ",eval=held_out" and held_out.batch_invariant
    assert {"gate", "uncertainty", "uncertainty 4/4", "noise floor", "eval zero_shot", "eval weak-seed0"} <= names
    gated = [s for s in test.steps if s.name.startswith("train ") and "gate" in s.needs]
    assert len(gated) == 18  # every trained student arm waits for the gate (weak and ceiling feed it)
    gate = next(s for s in test.steps if s.name == "gate")
    assert set(gate.needs) == {"eval zero_shot", *(f"eval {m}-seed{s}" for m in ("weak", "ceiling") for s in (0, 1, 2))}
    # Every step that runs a stage script is that script's config; its command is the config's flags.
    structured = next(s for s in test.steps if s.name == "data alice_structured")
    assert structured.script == "student_generate" and structured.config.statement == "structured"
    assert structured.argv()[1:] == ["student_generate.py", *to_argv(structured.config)]
    assert {s.script for s in test.steps if s.config is not None} == {"train", "eval", "uncertainty", "w2s_labels",
                                                                      "student_generate"}
    assert all(s.helper[1] == "scripts/fair.py" for s in test.steps if s.helper is not None)
    # A part of the table: what the gate and the training data need, and nothing of the student arms.
    part = test.targets(["gate", "data *"])
    assert "gate" in part and "data alice_structured" in part and not [n for n in part if n.startswith("train ")]
    with pytest.raises(AliceError, match="matches no step"):
        test.targets(["nothing like this"])


SMOKE = """
data = "gsm_symbolic"
limit = 4
k = 2
arms = ["alice", "self_training"]
context_evals = false
max_tries = 0   # unchecked: 24 tokens of the 135M model are rarely a clean target, and this checks the plumbing
[gate]
chance = -1.0
min_gap = -1.0
intervals_apart = false
[seeds]
student = [0]
weak = [0]
[models.teacher]
path = "smollm2"
[models.student]
path = "smollm2"
[args]
generation = ["--backend", "hf", "--max-new-tokens", "24", "--batch-size", "16"]
eval = []
# Clusters by meaning, singletons kept: every non-empty sample of the 135M teacher counts, so every
# question gives Alice a training row (on GSM-style math it rarely writes a parsable number).
probe = ["--save-samples", "--keep-singletons", "--clustering", "semantic", "--summarizer-max-new-tokens", "24"]
train = ["--max-steps", "1", "--total-batch-size", "2", "--per-device-batch-size", "2", "--max-length", "320",
         "--no-gradient-checkpointing", "--lr", "5e-5", "--warmup-steps", "0"]
"""


@pytest.mark.slow
def test_fair_test_end_to_end_on_cpu(tmp_path, small_model):
    """Every kind of step with the small model on both sides (a plumbing check, not a result): the
    gate (thresholds opened), the arms, the noise floor, evidence, report and deliverables; a rerun
    has nothing left to do."""
    config = tmp_path / "fair.toml"
    config.write_text(SMOKE)
    run, results = tmp_path / "run", tmp_path / "results"
    args = ["--config", str(config), "--run-dir", str(run), "--results", str(results), "--gpus", ""]
    done = run_script("scripts/fair.py", *args, timeout=1500)
    steps = json.loads((run / "steps.json").read_text())["steps"]
    assert all(s["status"] == "done" for s in steps.values()), steps
    assert "gate passed" in done.stdout and json.loads((run / "gate.json").read_text())["passed"]
    report = json.loads((results / "report.json").read_text())
    assert {"in_template", "held_out_templates", "gate", "near_duplicates", "hygiene"} <= set(report)
    methods = report["in_template"]["methods"]
    assert set(methods) == {"weak", "ceiling", "zero_shot", "alice", "self_training"}
    assert methods["alice"]["seeds"] == [methods["alice"]["accuracy"]]
    assert any(p["a"] == "alice" and p["b"] == "self_training" for p in report["in_template"]["paired"])
    assert report["hygiene"]["alice"]["final"]["rows"] > 0 and "statements" in report["hygiene"]
    # Three CPU evaluations of one model in different chunks agree question by question.
    noise = json.loads((run / "noise_floor.json").read_text())
    assert noise["outcome_agreement"] == 1.0 and noise["without_batch_invariance"]["identical_responses"] == 4
    evidence = json.loads((results / "evidence.json").read_text())
    assert evidence["pool_questions"] == 4 and "room_for_transfer" in evidence
    assert evidence["training_runs"]["alice-seed0"]["steps"] == 1
    assert not list(run.glob("models/alice-seed0/*.safetensors"))  # evaluated: weights dropped
    assert (results / "eval-alice-seed0.jsonl.xz").is_file() and (results / "manifests" / "uncertainty.manifest.json").is_file()
    assert (results / "data" / "alice.jsonl.xz").is_file()
    again = run_script("scripts/fair.py", *args)
    assert "0 steps to run" in again.stdout


def test_several_evaluations_share_one_process(tmp_path, small_model, other_small_model):
    """evaluate_many (a batch step of the fair test): each evaluation writes its own output and manifest,
    whose rerun is its eval.py command; the same model on its second test set is not loaded again."""
    from alice.stages.evaluate import evaluate_many

    def argv(model: str, name: str, extra: str = "") -> list[str]:
        return ["--data", "gsm_symbolic" + extra, "--limit", "2", "--max-new-tokens", "8", "--backend", "hf",
                "--student", model, "--output", str(tmp_path / f"{name}.jsonl")]

    from alice.stages.evaluate import EvalConfig

    record = tmp_path / "engines" / "a+b.json"
    starts = evaluate_many([parse(EvalConfig, argv(small_model, "a")),
                            parse(EvalConfig, argv(small_model, "a-again", ":seed=0")),
                            parse(EvalConfig, argv(other_small_model, "b"))], record)
    assert [s["model"] for s in starts if "load_s" in s] == [small_model, other_small_model]
    # The batch's record: its outputs and engine starts, and its wall time against their generation time.
    assert json.loads(record.read_text())["engines"] == starts
    from alice.fair import eval_batch_costs

    (batch,) = eval_batch_costs(tmp_path)
    assert batch["models"] == ["a", "b"] and batch["evaluations"] == 3
    assert batch["wall_s"] >= batch["generation_s"] > 0 and batch["wall_over_generation"] >= 1
    for name, model in (("a", small_model), ("a-again", small_model), ("b", other_small_model)):
        summary = json.loads((tmp_path / f"{name}.summary.json").read_text())
        manifest = json.loads((tmp_path / f"{name}.manifest.json").read_text())
        assert summary["n"] == 2 and manifest["status"] == "complete"
        assert manifest["rerun"].startswith("python eval.py") and model in manifest["rerun"]


def test_deliverables_leave_out_trained_models_never_evaluated(tmp_path):
    """A run cut short after training alice-seed1 but before evaluating it: its weights are not in the
    deliverables, so neither is its manifest; restored elsewhere, that training runs again."""
    from alice.fair import collect, restore

    run, results, again = tmp_path / "run", tmp_path / "results", tmp_path / "again"
    for name in ("alice-seed0", "alice-seed1", "teacher"):
        (run / "models" / name).mkdir(parents=True)
        (run / "models" / name / "manifest.json").write_text(json.dumps({"status": "complete"}))
    write_eval(run, "alice-seed0", 60)
    config = tmp_path / "fair.toml"
    config.write_text(SMOKE)
    collect(run, results, config)
    kept = sorted(p.parent.name for p in (results / "manifests" / "models").glob("*/manifest.json"))
    assert kept == ["alice-seed0", "teacher"]
    assert restore(results, again) > 0
    assert (again / "models" / "teacher" / "manifest.json").is_file()
    assert not (again / "models" / "alice-seed1").exists()


def test_the_fair_recipe_and_the_packed_runners_config_declare_the_same_test(tmp_path, capsys):
    """configs/fair.yaml (experiment.py) and configs/fair.toml (scripts/fair.py): step for step, the same
    settings, apart from where files go, the GPU packing (fixed KV caches, probing in parts) and the CoT
    teacher's rows, which are the same rows by two routes (stage 1 writes GSM's rationales; fair.py reads
    them as the teacher half's ground truth)."""
    import re

    import experiment
    from alice.config import settings_dict
    from alice.stages.cot_generate_filter import CotConfig, cot_generate_filter
    from alice.tasks import load_task
    from alice.training import ground_truth_rows, read_training_rows

    packed = FairTest(load_config(REPO / "configs/fair.toml"), tmp_path / "fair", from_hub=True)
    fair = {s.name: settings_dict(s.config) for s in packed.build(batched=False) if s.config is not None}
    result = experiment.main(["--config", str(REPO / "configs/fair.yaml"), "--dry-run"])
    capsys.readouterr()
    single = {s["step"]: s["settings"] for s in result["steps"]}
    data_steps = {"w2s_cot": "w2s-cot labels", "w2s_qa": "w2s-qa labels", "self_training": "self-training labels",
                  "alice": "student_generate"}

    def experiment_name(name: str) -> str:
        trained = re.fullmatch(r"train (\w+)-seed(\d)", name)
        if trained:
            arm, seed = trained.groups()
            return f"train teacher-gt-seed{seed}" if arm == "weak" else f"train student-{arm.replace('_', '-')}-seed{seed}"
        if name.startswith("data "):
            return data_steps.get(name[5:], f"student_generate {name[5:]}")
        if name.startswith("noise "):
            return f"eval zero-shot (noise {name[6:]})"
        if name.startswith("eval "):
            return "eval " + name[5:].replace("_", "-").replace(" (held-out)", " (held_out_templates)")
        return {"train teacher": "train teacher-cot", "train teacher_qa": "train teacher-qa"}.get(
            name, "uncertainty" if name.startswith("uncertainty") else name)

    where = {"output", "output_dir", "teacher", "student", "summarizer", "uncertainty", "train_file", "kv_cache_gb",
             "pool_part", "resume", "overwrite", "config"}
    differences = {}
    for name, settings in fair.items():
        other = single[experiment_name(name)]
        differ = {k for k in set(settings) | set(other) if k not in where and settings.get(k) != other.get(k)}
        if differ:
            differences[name] = differ
    assert differences == {"train teacher": {"ground_truth", "pool"}}
    assert len(fair) == 89 and set(single) - {experiment_name(n) for n in fair} == {"cot_generate_filter"}
    # The CoT teacher's rows: stage 1 on GSM-style data against the teacher half's ground truth.
    data = single["cot_generate_filter"]["data"]
    cot_generate_filter(parse(CotConfig, ["--data", data, "--limit", "6", "--output", str(tmp_path / "cot.jsonl")]))
    rows, _ = read_training_rows(tmp_path / "cot.jsonl")
    assert [{k: r[k] for k in ("id", "question", "response")} for r in rows] == ground_truth_rows(
        load_task(data), "teacher", limit=6)
