"""experiment.py: the whole chain on the small real model (transformers backend, a few arithmetic
questions, one LoRA step per training; cascade Alice in its own process beside the rest), its
report, what it logs to TensorBoard, and a rerun that has nothing left to do."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from test_cascade import sums_dataset

import experiment
from alice.errors import AliceError
from alice.stages.experiment import DEMO, apply_preset, run_folder
from alice.steps import slug_name

TRAIN_ARGS = ("--lora --max-steps 1 --total-batch-size 1 --warmup-steps 0 --lr 1e-4 "
              "--no-gradient-checkpointing --max-length 256 --logging-steps 1")


@pytest.mark.slow
def test_whole_chain_report_and_resume(tmp_path, small_model):
    data = sums_dataset(tmp_path / "sums.jsonl", train=8, test=3)
    run = tmp_path / "run"
    argv = ["--data", str(data), "--answer-type", "number", "--model", small_model, "--backend", "hf",
            "--limit", "4", "--student-limit", "3", "--eval-limit", "3", "--k", "3", "--max-new-tokens", "24",
            "--summarizer-max-new-tokens", "24", "--uncertainty-args=--keep-singletons --clustering semantic",
            f"--train-args={TRAIN_ARGS}", "--midlevel", small_model, "--parallel-cascade", "--run-dir", str(run),
            "--report-to", "tensorboard"]
    result = experiment.main(argv)

    assert result["preset"] == "demo" and "same base model" in result["note"]
    assert result["failed"] == {} and result["status"] == "complete"
    # The cascade ran in its own process, beside the main chain, and its steps were merged back.
    assert result["cascade_process"]["pid"] != os.getpid()
    assert {"cascade (parallel)", "eval cascade (parallel)"} <= set(result["timings_s"])
    stages = sorted(p.parent.name for p in (run / "cascade").glob("stage*/stage.json"))
    assert stages == ["stage1", "stage2"]
    report = (run / "report.md").read_text()
    csv_rows = (run / "report.csv").read_text().splitlines()
    methods = [line.split(",")[4] for line in csv_rows[1:]]
    assert methods == ["weak", "ceiling", "zero_shot", "w2s_qa", "w2s_cot", "alice", "cascade"]
    assert "Cascade Alice" in report and (run / "report.png").exists()
    for method in methods:  # the report names methods with underscores; experiment.py's files with hyphens
        summary = json.loads((run / f"eval-{method.replace('_', '-')}.summary.json").read_text())
        assert summary["n"] == 3
    logged_like_the_files(run, methods)
    # Each training is a TensorBoard run of its own, named after its step; the cascade's stages within its step.
    for step in ("train-teacher-cot", "train-student-ceiling", "train-student-alice", "cascade/stage1",
                 "cascade/stage2"):
        losses = scalars(run / "tensorboard" / step)["train/loss"]
        assert [s for s, _ in losses] == [1] and all(v > 0 for _, v in losses), step
    # The answers-only teacher differs from the weak one here (the dataset ships rationales).
    weak_rows = json.loads((run / "teacher-gt" / "manifest.json").read_text())["data"]
    qa_rows = json.loads((run / "teacher-qa" / "manifest.json").read_text())["data"]
    assert weak_rows["rationale"] is True and qa_rows["rationale"] is False
    # W2S labels: the CoT teacher's answers on the same student questions, keyed by id.
    labels = [json.loads(line) for line in (run / "w2s-cot.jsonl").read_text().splitlines()]
    alice_ids = {json.loads(line)["id"] for line in (run / "uncertainty.jsonl").read_text().splitlines()}
    assert {r["id"] for r in labels} == alice_ids and len(labels) == 3
    alice_model = json.loads((run / "student-alice" / "manifest.json").read_text())
    assert alice_model["data"]["source"] == str(run / "alice.jsonl") and alice_model["status"] == "complete"

    # A rerun resumes everything: no model is loaded, nothing is trained again.
    before = (run / "student-alice" / "manifest.json").read_text()
    again = experiment.main(argv)
    assert again["engine_starts"] == [] and (run / "student-alice" / "manifest.json").read_text() == before
    assert result["attempts"] == 1 and again["attempts"] == 2 and again["failed"] == result["failed"]
    logged_like_the_files(run, methods)  # the rerun's values replace the first run's: still one point each


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard shows for one run folder: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def logged_like_the_files(run, methods) -> None:
    """--report-to tensorboard: each evaluation's accuracy and parse rate, the report's PGR and paired
    differences, with the values of the run's own files."""
    for method in methods:
        summary = json.loads((run / f"eval-{method.replace('_', '-')}.summary.json").read_text())
        logged = scalars(run / "tensorboard" / f"eval-{method.replace('_', '-')}")
        assert logged == {"eval/accuracy": [(0, pytest.approx(summary["accuracy"]))],
                          "eval/parse_rate": [(0, pytest.approx(summary["parse_rate"]))]}, method
    group = json.loads((run / "report.json").read_text())["groups"][0]
    report = scalars(run / "tensorboard" / "report")
    for pair in group["paired"]:
        assert report[f"paired/{pair['a']}_vs_{pair['b']}"] == [(0, pytest.approx(pair["delta"]))]
        assert report[f"paired/{pair['a']}_vs_{pair['b']}/p"] == [(0, pytest.approx(pair["p_clusters"]))]
    assert len(group["paired"]) >= 10
    for method, row in group["methods"].items():
        assert (f"pgr/{method}" in report) == (row["pgr"] is not None), method
        if row["pgr"] is not None:
            assert report[f"pgr/{method}"] == [(0, pytest.approx(row["pgr"]))]


def test_presets():
    parser = experiment.build_parser()
    demo = apply_preset(parser.parse_args([]))
    assert demo.preset == "demo" and demo.k == 4 and demo.train_args["max_steps"] == 2
    assert demo.uncertainty_args == {"keep_singletons": True, "max_new_tokens": 100}  # the probes parse
    assert demo.midlevel == "smollm2" and demo.summarizer is None  # the teacher states its own uncertainty
    assert demo.backend == "hf"  # no GPU in the test machines: tiny steps start faster without vLLM
    assert str(run_folder(demo)) == "runs/arc_challenge-smollm2-smollm2-demo"
    paper = apply_preset(parser.parse_args(["--model", "qwen2.5", "--teacher", "1.5B", "--student", "3B"]))
    assert paper.preset == "paper" and paper.k == 100 and paper.limit is None and paper.train_args == {}
    assert paper.midlevel is None and paper.max_new_tokens == 512 and paper.uncertainty_args == {}
    assert str(run_folder(paper)) == "runs/arc_challenge-qwen2.5-1.5B-3B"
    mine = apply_preset(parser.parse_args(["--k", "7", "--eval-limit", "0"]))
    assert mine.k == 7 and mine.eval_limit is None  # user values win; 0 = all
    assert paper.backend == "auto" and apply_preset(parser.parse_args(["--backend", "vllm"])).backend == "vllm"
    # A stage's settings merge over the preset's, key by key: the demo keeps its two training steps.
    lr = apply_preset(parser.parse_args(["--train-args=--lr 3e-5"]))
    assert lr.train_args == {**DEMO["train_args"], "lr": 3e-5} and DEMO["train_args"]["lr"] == 5e-5


def test_tracker_logs_the_report_and_an_evaluation_to_tensorboard(tmp_path):
    from test_report import IDS, write_eval

    from alice.report import build_report
    from alice.tracking import Tracker

    run = tmp_path / "run"
    write_eval(run, "weak", set(IDS[:4]))                             # 0.4
    write_eval(run, "ceiling", set(IDS[:8]))                          # 0.8
    write_eval(run, "alice", set(IDS[:6]), parsed_ids=set(IDS[:9]))   # 0.6 -> PGR 0.5; parse rate 0.9
    write_eval(run, "zero-shot", set(IDS[:8]))                        # 0.8 -> PGR 1.0
    tracker = Tracker(["tensorboard"], run)
    tracker.evaluation("alice", json.loads((run / "eval-alice.summary.json").read_text()))
    tracker.report(build_report(run, samples=200))
    assert scalars(run / "tensorboard" / "eval-alice") == {"eval/accuracy": [(0, pytest.approx(0.6))],
                                                            "eval/parse_rate": [(0, pytest.approx(0.9))]}
    report = scalars(run / "tensorboard" / "report")
    assert report["pgr/alice"] == [(0, pytest.approx(0.5))] and report["pgr/zero_shot"] == [(0, pytest.approx(1.0))]
    assert "pgr/weak" not in report and "pgr/ceiling" not in report  # the ends are not rated
    assert report["paired/alice_vs_zero_shot"] == [(0, pytest.approx(-0.2))]
    assert report["paired/weak_vs_zero_shot"] == [(0, pytest.approx(-0.4))]
    low, high = report["paired/alice_vs_zero_shot/ci_low"][0][1], report["paired/alice_vs_zero_shot/ci_high"][0][1]
    assert low <= -0.2 <= high and 0 < report["paired/alice_vs_zero_shot/p"][0][1] <= 1


def test_report_to_reaches_every_training_step_from_a_recipe(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("report_to: tensorboard\n")  # one value for a list setting, as a recipe may give it
    experiment.main(["--config", str(recipe), "--dry-run"])
    commands = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("python ")]
    trainings = [line for line in commands if line.startswith("python train.py")]
    cascade = next(line for line in commands if line.startswith("python cascade.py"))
    assert len(trainings) == 6 + 2 and all("--report-to tensorboard" in line for line in trainings)
    assert "--report-to tensorboard" in cascade.split("--train-args", 1)[1]
    experiment.main(["--report-to", "wandb", "--train-args=--report-to trackio", "--dry-run"])
    trainings = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("python train.py")]
    assert all("--report-to trackio" in line for line in trainings)  # the stage's own setting wins


def test_dry_run_shows_merged_settings_and_the_evaluations_engine_settings(capsys):
    experiment.main(["--train-args=--lr 3e-5", "--dry-run"])
    text = capsys.readouterr().out
    train_line = next(line for line in text.splitlines() if line.strip().startswith("python train.py"))
    assert "--lr 3e-05" in train_line and "--max-steps 2" in train_line
    result = experiment.main(["--eval-args=--batch-invariant --batch-size 3", "--dry-run"])
    capsys.readouterr()
    evals = [s["settings"] for s in result["steps"] if s["script"] == "eval.py"]
    assert evals and all(e["batch_invariant"] and e["batch_size"] == 3 for e in evals)
    assert not any(s["settings"].get("batch_invariant") for s in result["steps"] if s["script"] != "eval.py")


def test_an_evaluations_engine_settings_reach_its_engine(small_model, capfd):
    """--eval.batch-size (an engine setting): the evaluation's engine is built with it, beside the run's
    engine for the same model, and --eval.batch-invariant reaches the engine's build (transformers refuses it)."""
    from alice.cli import resolve_role
    from alice.engines import Engines
    from alice.stages.cascade import derive
    from alice.stages.evaluate import EvalConfig
    from alice.stages.experiment import ExperimentConfig, apply_preset

    args = apply_preset(ExperimentConfig(model=small_model, preset="demo"))
    engines = Engines(args, share_adapters=False)
    ref = resolve_role(args, "student")
    try:
        run_engine = engines.handle(ref)._ready()
        own = derive(EvalConfig, args, {"batch_size": 3}, "--eval-args", student=small_model)
        eval_engine = engines.handle(ref, own)._ready()
        assert eval_engine is not run_engine and eval_engine.batch_size == 3 != run_engine.batch_size
        assert engines.starts[-1]["own_settings"] == {"batch_size": 3}
        # Each new engine says why, in the log and in the run's record.
        assert [s["new_engine_because"] for s in engines.starts] == ["no engine running",
                                                                    "other engine settings (batch_size=3)"]
        assert "engine: starting one for" in capfd.readouterr().err
        engines.handle(ref)._ready()
        assert engines.starts[-1]["new_engine_because"] == "other engine settings (the run's own)"
        invariant = derive(EvalConfig, args, {"batch_invariant": True}, "--eval-args", student=small_model)
        with pytest.raises(AliceError, match="batch-invariant"):
            engines.handle(ref, invariant)._ready()
    finally:
        engines.close()


def test_the_probing_may_have_its_own_model_runner_and_its_engines_are_built_with_it(small_model, capsys):
    """--uncertainty.vllm-runner (the one engine setting the probing may have of its own): only the probing
    steps carry it, and the probing's engines (teacher and summarizer) are built with it (here the transformers
    backend refuses it, which shows it reached the build); other engine settings stay the run's."""
    from alice.cli import resolve_role
    from alice.engines import Engines
    from alice.stages.cascade import derive
    from alice.stages.experiment import ExperimentConfig, apply_preset
    from alice.stages.uncertainty import UncertaintyConfig

    result = experiment.main(["--uncertainty.vllm-runner", "v1", "--dry-run"])
    capsys.readouterr()
    runners = {(s["script"], s["settings"].get("vllm_runner")) for s in result["steps"] if "vllm_runner" in s["settings"]}
    assert ("uncertainty.py", "v1") in runners and ("eval.py", "auto") in runners
    assert not {r for r in runners if r[0] != "uncertainty.py" and r[1] != "auto"}
    with pytest.raises(AliceError, match="--uncertainty-args --enforce-eager: a setting of the generation engine"):
        experiment.main(["--uncertainty.enforce-eager", "--dry-run"])

    args = apply_preset(ExperimentConfig(model=small_model, preset="demo", backend="hf"))
    engines = Engines(args, share_adapters=False)
    try:
        own = derive(UncertaintyConfig, args, {"vllm_runner": "v1"}, "--uncertainty-args", teacher=small_model)
        assert engines.own_settings(own) == (("vllm_runner", "v1"),)
        with pytest.raises(AliceError, match="--vllm-runner v1 needs the vllm backend"):
            engines.handle(resolve_role(own, "teacher"), own)._ready()
    finally:
        engines.close()


def test_a_run_builds_only_the_probings_engine_with_its_own_model_runner(tmp_path, capsys):
    """The same through a whole in-process run (transformers backend, which refuses a runner): the probing
    fails on it in one line, every other step ran with the run's engines."""
    result = experiment.main(["--backend", "hf", "--uncertainty.vllm-runner", "v1", "--arms", "alice",
                              "--no-cascade", "--run-dir", str(tmp_path / "run")])
    capsys.readouterr()
    assert result["failed"]["uncertainty"] == "--vllm-runner v1 needs the vllm backend (a server chooses its own runner)"
    assert set(result["failed"]) == {"uncertainty", "student_generate", "train student-alice", "eval alice"}
    assert (tmp_path / "run" / "eval-weak.summary.json").exists()


def test_dotted_flags_and_recipe_mappings_reach_each_steps_config(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train: {lr: 3.0e-5, epochs: 2}\neval: {max_new_tokens: 32}\nuncertainty: {embedder: e5}\n")
    result = experiment.main(["--config", str(recipe), "--train.epochs", "1", "--generate.statement", "structured",
                              "--dry-run"])
    capsys.readouterr()
    steps = result["steps"]
    trainings = [s["settings"] for s in steps if s["script"] == "train.py"]
    # Key by key over the demo preset: its two steps and batch of 1 stay, the recipe's lr, the flag's epochs.
    assert len(trainings) == 6 + 2 and all(
        (t["lr"], t["epochs"], t["max_steps"], t["total_batch_size"]) == (3e-5, 1.0, 2, 1) for t in trainings)
    assert all(s["settings"]["max_new_tokens"] == 32 for s in steps if s["script"] == "eval.py")
    probes = [s["settings"] for s in steps if s["script"] == "uncertainty.py"]
    assert len(probes) == 3 and all(p["embedder"] == "e5" and p["keep_singletons"] for p in probes)
    answers = [s["settings"] for s in steps if s["script"] == "student_generate.py"]
    assert len(answers) == 3 and all(a["statement"] == "structured" for a in answers)
    # The cascade gets the same mappings, not text; its rerun command writes them as its flags.
    cascade = next(s for s in steps if s["script"] == "cascade.py")
    assert cascade["settings"]["train_args"] == {**DEMO["train_args"], "lr": 3e-5, "epochs": 1.0}
    assert cascade["settings"]["generate_args"] == {"statement": "structured"}
    argv = cascade["argv"]
    assert argv[argv.index("--generate-args") + 1] == "--statement structured"


@pytest.mark.parametrize("argv, message", [
    (["--generate-args=--kv-cache-gb 20 --enforce-eager"],
     "--generate-args --kv-cache-gb, --enforce-eager: a setting of the generation engine"),
    (["--uncertainty.batch-size", "4"], "--uncertainty-args --batch-size: a setting of the generation engine"),
    (["--uncertainty.summarizer-load-format", "dummy"],
     "--uncertainty-args --summarizer-load-format: a setting of the summarizer's engine"),
    (["--eval.limit", "3"], "--eval-args --limit: the run sets this for each eval.py step itself"),
    (["--uncertainty.summarizer-max-new-tokens", "9"],
     "--uncertainty-args --summarizer-max-new-tokens: the run sets this for each uncertainty.py step itself"),
])
def test_a_stage_setting_the_run_decides_is_refused(argv, message):
    with pytest.raises(AliceError) as err:
        experiment.main([*argv, "--dry-run"])
    assert message in str(err.value)


def test_seeds_controls_and_gate_make_the_table(capsys):
    """--seeds, --arms and --gate: weak, ceiling and every student arm once per seed (seed flag on the
    training, -seed<N> on names), the controls' data steps, and every student training behind the gate."""
    result = experiment.main(["--seeds", "0", "1", "--arms", "alice_structured", "self_training", "alice",
                              "alice_no_statement", "--gate", "--no-cascade", "--dry-run"])
    printed = [line.split("] ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("== [")]
    steps = {s["step"]: s for s in result["steps"]}
    trainings = [n for n in steps if n.startswith("train student-")]
    assert trainings == [f"train student-{arm}-seed{s}" for s in (0, 1) for arm in
                         ("ceiling",)] + [f"train student-{arm}-seed{s}" for s in (0, 1) for arm in
                                          ("alice", "self-training", "alice-no-statement", "alice-structured")]
    assert {"eval weak-seed0", "eval weak-seed1", "eval ceiling-seed1", "eval alice-structured-seed1",
            "eval self-training-seed0"} <= set(steps)
    assert not {"w2s-cot labels", "w2s-qa labels", "train teacher-qa", "cascade"} & set(steps)
    assert steps["train student-alice-seed1"]["settings"]["seed"] == 1
    assert steps["self-training labels"]["settings"]["teacher"] == steps["eval zero-shot"]["settings"]["student"]
    assert steps["self-training labels"]["settings"]["temperature"] == 0.9
    statements = {steps[n]["settings"]["output"].rsplit("/", 1)[1]: steps[n]["settings"]["statement"]
                  for n in steps if n.startswith("student_generate")}
    assert statements == {"alice.jsonl": "summarizer", "alice-no-statement.jsonl": "none",
                          "alice-structured.jsonl": "structured"}
    # The gate (an in-process check) comes after what it reads and before any student arm trains.
    assert printed.index("gate") > max(printed.index(n) for n in ("eval zero-shot", "eval weak-seed1",
                                                                  "eval ceiling-seed1"))
    assert printed.index("gate") < min(printed.index(n) for n in trainings if "ceiling" not in n)


@pytest.mark.slow
def test_a_failed_gate_stops_the_student_arms_and_says_why(tmp_path, small_model):
    """A real run on the small model (one seed pair, the self-training control): weak and a ceiling
    both trained two steps from one 135M model cannot be 15 points apart, so the gate fails, gate.json
    says which checks, the student arms are skipped and the report is still written."""
    run = tmp_path / "run"
    result = experiment.main(["--run-dir", str(run), "--seeds", "0", "1", "--arms", "self_training", "--gate",
                              "--no-cascade", "--limit", "6", "--student-limit", "4", "--eval-limit", "4",
                              "--max-new-tokens", "24"])
    gate = json.loads((run / "gate.json").read_text())
    assert gate["passed"] is False and gate["checks"]["gap_at_least_min"] is False
    assert gate["evaluations"] == {"weak": ["weak-seed0", "weak-seed1"], "ceiling": ["ceiling-seed0", "ceiling-seed1"],
                                   "zero_shot": "zero-shot"}
    assert result["failed"]["gate"].startswith("the weak-to-strong frame does not hold here (")
    assert result["failed"]["train student-self-training-seed0"] == "needs gate"
    assert not (run / "student-self-training-seed0").exists() and (run / "self-training.jsonl").is_file()
    report = json.loads((run / "report.json").read_text())
    methods = report["groups"][0]["methods"]
    assert len(methods["weak"]["seeds"]) == 2 and "self_training" not in methods
    assert "gate" in (run / "report.md").read_text().lower()


def test_a_second_test_set_evaluates_every_model_again(capsys):
    """--second-test: each evaluation has a twin right after it, on --data with the options added, into
    the run's held_out_templates/ (the report's second group)."""
    with pytest.raises(AliceError, match="eval=held_out needs held_out=N templates"):
        experiment.main(["--data", "gsm_symbolic", "--second-test", "eval=held_out", "--dry-run"])
    result = experiment.main(["--data", "gsm_symbolic:held_out=2", "--second-test", "eval=held_out", "--no-cascade",
                              "--dry-run"])
    capsys.readouterr()
    evals = [s for s in result["steps"] if s["script"] == "eval.py"]
    firsts, twins = evals[::2], evals[1::2]
    assert len(firsts) == len(twins) == 6  # zero-shot, weak, ceiling and the three arms
    for first, twin in zip(firsts, twins, strict=True):
        assert twin["step"] == first["step"] + " (held_out_templates)"
        assert twin["settings"]["data"] == "gsm_symbolic:held_out=2,eval=held_out"
        assert first["settings"]["data"] == "gsm_symbolic:held_out=2"
        assert twin["settings"]["output"].endswith("held_out_templates/" + first["settings"]["output"].rsplit("/", 1)[1])
        assert (twin["settings"]["student"], twin["settings"]["teacher"]) == (first["settings"]["student"],
                                                                              first["settings"]["teacher"])


def test_evidence_scores_each_arms_targets_and_reads_each_training(tmp_path):
    """evidence.json from a run folder's own files: each arm's targets scored against the pool's ground
    truth, the rows judged again by the checks (one malformed: two different final answers), and each
    trained model's manifest read for its steps and whether it reached its learning rate."""
    from alice.stages.experiment import ExperimentConfig, write_evidence
    from alice.tasks import load_task

    task = load_task("arc_challenge")
    pool = task.examples("student", limit=3)
    right = {ex.id: task.ground_truth_response(ex) for ex in pool}
    alice = [{"id": ex.id, "question": ex.question, "response": right[ex.id], "label": "original"} for ex in pool]
    alice[2]["response"] = "My choice is A. My choice is B."  # two different final answers
    w2s = [{"id": ex.id, "question": ex.question, "response": "My choice is Z."} for ex in pool]
    for name, rows in (("alice.jsonl", alice), ("w2s-cot.jsonl", w2s)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for model, peak in (("student-alice", 1e-5), ("student-w2s-cot", 4e-6)):  # the second stopped in its warm-up
        (tmp_path / model).mkdir()
        (tmp_path / model / "manifest.json").write_text(json.dumps(
            {"counts": {"rows": 3}, "recipe": {"learning_rate": 1e-5},
             "training": {"steps": 2, "peak_lr_reached": peak, "final_loss": 0.5}}))
    args = apply_preset(ExperimentConfig(arms=["alice", "w2s_cot"], student_limit=3))
    evidence = write_evidence(args, tmp_path, task)
    assert json.loads((tmp_path / "evidence.json").read_text()) == evidence
    targets = evidence["training_targets"]
    assert targets["alice"]["rows"] == 3 and targets["alice"]["accuracy"] == pytest.approx(2 / 3)
    assert targets["w2s_cot"]["accuracy"] == 0 and targets["w2s_cot"]["parse_rate"] == 0
    assert evidence["hygiene"]["alice"]["final"]["rows"] == 3 and evidence["hygiene"]["alice"]["final"]["clean"] == 2
    assert evidence["training_runs"]["student-alice"] == {
        "rows": 3, "steps": 2, "warmup_steps": None, "peak_lr_reached": 1e-5, "learning_rate": 1e-5,
        "first_loss": None, "final_loss": 0.5, "train_s": None, "tokens_per_s": None}
    # The report quotes it before its table.
    from alice.report import evidence_text

    text = evidence_text(evidence)
    assert "| Alice | 3 | 66.7 | 2 of 3 |" in text and "| W2S-CoT | 3 | 0.0 | 0 of 3 |" in text  # Z is no option: no final answer
    assert "Trainings: 1 of 2 reached their peak learning rate; not: student-w2s-cot." in text


def test_the_fair_recipe_lists_every_step_of_the_fair_test(capsys):
    """configs/fair.yaml: every arm x seed trained and evaluated on both test sets, weak and ceiling on the
    student pool's ground truth with three seeds, the gate before any student arm trains, the noise floor;
    batch-invariant kernels in the evaluations only (not in the noise floor's plain reruns)."""
    result = experiment.main(["--config", str(REPO / "configs/fair.yaml"), "--dry-run"])
    printed = [line.split("] ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("== [")]
    steps = {s["step"]: s["settings"] for s in result["steps"]}
    arms = ("alice", "alice-no-statement", "alice-structured", "self-training", "w2s-cot", "w2s-qa")
    for seed in (0, 1, 2):
        for name in (*arms, "weak", "ceiling"):
            assert f"eval {name}-seed{seed}" in steps and f"eval {name}-seed{seed} (held_out_templates)" in steps
            assert steps[f"eval {name}-seed{seed} (held_out_templates)"]["data"].endswith(",eval=held_out")
        for arm in arms:
            assert steps[f"train student-{arm}-seed{seed}"]["seed"] == seed
            assert printed.index(f"train student-{arm}-seed{seed}") > printed.index("gate")
        weak = steps[f"train teacher-gt-seed{seed}"]
        assert (weak["pool"], weak["ground_truth"], weak["seed"]) == ("student", True, seed)
    assert {"gate", "noise floor", "eval zero-shot (noise plain-a)"} <= set(printed) and "cascade" not in printed
    assert steps["uncertainty"]["k"] == 100 and steps["uncertainty"]["summarizer"].endswith("1.5B-Instruct")
    assert steps["train student-alice-seed0"]["per_device_batch_size"] == 16
    invariant = {n for n, s in steps.items() if s.get("batch_invariant")}
    assert invariant == {n for n in steps if n.startswith("eval ") and "plain" not in n}
    assert steps["eval zero-shot (noise rerun)"]["chunk_size"] == 48


@pytest.mark.slow
def test_a_small_version_of_the_fair_recipe_reports_paired_statistics_and_the_gate(tmp_path, small_model):
    """configs/fair.yaml on the small model (every role), a few questions, 2 seeds, every control, the noise
    floor and the held-out templates. One 135M model in every role cannot pass the gate; --override-gate
    runs the arms anyway, and the report carries the verdict, the paired differences and the noise floor."""
    import yaml

    recipe = yaml.safe_load((REPO / "configs/fair.yaml").read_text())
    for key in ("eval", "train", "enforce_eager", "preset", "k", "max_new_tokens", "summarizer_max_new_tokens"):
        recipe.pop(key)  # vLLM-only kernels and the GPU's training batch; the demo preset's sizes instead
    recipe.update(teacher=small_model, student=small_model, summarizer=small_model, backend="hf", seeds=[0, 1],
                  override_gate=True, run_dir=str(tmp_path / "run"))
    (tmp_path / "fair.yaml").write_text(yaml.safe_dump(recipe))
    result = experiment.main(["--config", str(tmp_path / "fair.yaml"), "--preset", "demo", "--limit", "4",
                              "--student-limit", "4", "--eval-limit", "4", "--max-new-tokens", "24"])
    run = tmp_path / "run"
    assert not result["failed"], result["failed"]
    gate = json.loads((run / "gate.json").read_text())
    assert gate["passed"] is False and gate["overridden"] is True
    report = json.loads((run / "report.json").read_text())
    first, held_out = report["groups"]  # the test split, then the held-out templates
    assert held_out["folder"].endswith("held_out_templates")
    methods = first["methods"]
    for arm in ("alice", "alice_no_statement", "alice_structured", "self_training", "w2s_cot", "w2s_qa",
                "weak", "ceiling"):
        assert len(methods[arm]["seeds"]) == 2, arm
    pairs = {(p["a"], p["b"]): p for p in first["paired"]}
    assert pairs[("alice", "w2s_cot")]["seeds_a"] == pairs[("alice", "w2s_cot")]["seeds_b"] == [0, 1]
    assert len(pairs[("alice", "w2s_cot")]["per_seed"]) == 2 and ("alice", "alice_structured") in pairs
    assert first["gate"]["overridden"] and "NOT passed" in (run / "report.md").read_text()
    noise = json.loads((run / "noise_floor.json").read_text())
    assert noise["eval_settings"]["n"] == 4 and first["noise_floor"] == noise
    # evidence.json: what each arm trained on, the checks' counts, and every training's run.
    evidence = json.loads((run / "evidence.json").read_text())
    arms = ("alice", "alice_no_statement", "alice_structured", "self_training", "w2s_cot", "w2s_qa")
    assert evidence["pool_questions"] == 4 and set(arms) <= set(evidence["training_targets"])
    assert set(arms) <= set(evidence["hygiene"]) and evidence["hygiene"]["alice"]["final"]["rows"] > 0
    assert "room_for_transfer" in evidence and "statements" in evidence["hygiene"]
    assert {f"student-{a.replace('_', '-')}-seed{s}" for a in arms for s in (0, 1)} <= set(evidence["training_runs"])
    assert evidence["training_runs"]["student-alice-seed1"]["steps"] == 2


def test_gpus_runs_each_stage_as_its_script_with_a_share_of_a_card(tmp_path, capsys):
    """--gpus: the same table, every stage step a subprocess running its script with its config's command,
    each with its share of a card (student trainings, teacher trainings, engines) and its needs; the gate
    stays in this process. vLLM engines sharing a card need a fixed KV cache, so --gpus without
    --kv-cache-gb is refused (the transformers backend needs none)."""
    with pytest.raises(AliceError, match="give --kv-cache-gb"):
        experiment.main(["--gpus", "0", "--backend", "vllm", "--dry-run"])
    with pytest.raises(AliceError, match="--tensor-parallel-size needs the in-process mode"):
        experiment.main(["--gpus", "0", "--backend", "hf", "--tensor-parallel-size", "2", "--dry-run"])
    with pytest.raises(AliceError, match="--share-engine must be in"):
        experiment.main(["--gpus", "0", "--backend", "hf", "--share-engine", "1.5", "--dry-run"])
    with pytest.raises(AliceError, match="--preload-trainings: only with --gpus"):
        experiment.main(["--preload-trainings", "--dry-run"])
    result = experiment.main(["--gpus", "0", "--backend", "hf", "--run-dir", str(tmp_path), "--seeds", "0", "1",
                              "--arms", "alice", "self_training", "--gate", "--no-cascade", "--share-train-student", "0.5",
                              "--dry-run"])
    out = capsys.readouterr().out
    heads = dict(line.split("  [", 1) for line in out.splitlines() if "  [" in line and not line.startswith(" "))
    assert heads["train student-alice-seed1"] == "gpu 0.50; needs student_generate, gate]"
    assert heads["train teacher-gt-seed0"] == "gpu 0.12; needs -]"
    assert heads["uncertainty"].startswith("gpu 0.12; ")
    assert heads["eval self-training-seed1"] == "gpu 0.09; needs train student-self-training-seed1]"
    assert heads["gate"].startswith("cpu; needs eval zero-shot, eval weak-seed0")
    assert heads["train teacher-cot"] == "gpu 0.12; needs cot_generate_filter]"
    steps = {s["step"]: s for s in result["steps"]}
    assert len(steps) == len(heads) - 1  # every step but the gate is a stage command
    for step in steps.values():  # each a subprocess running the command its config makes (as its manifest records)
        assert "    " + shlex.join([sys.executable, step["script"], *step["argv"]]) + "\n" in out, step["step"]


@pytest.mark.slow
def test_gpus_none_runs_the_table_as_subprocesses_and_reports(tmp_path, small_model):
    """--gpus none on the small model: every stage its own script in a subprocess (two at once), each with
    its log and manifest, each seed's arms evaluated in one batch step (--eval-batches), the trainings forked
    from a process that imported their modules (--preload-trainings), the gate in-process, then the same
    report, evidence and status as in-process."""
    run, results = tmp_path / "run", tmp_path / "results"
    argv = ["--gpus", "none", "--run-dir", str(run), "--seeds", "0", "1", "--arms", "alice", "self_training", "--gate",
            "--override-gate", "--no-cascade", "--eval-batches", "--preload-trainings", "--results", str(results)]
    result = experiment.main(argv)
    assert not result["failed"], result["failed"]
    status = json.loads((run / "steps.json").read_text())["steps"]
    assert {s["status"] for s in status.values()} == {"done"} and len(status) == 21  # 4 evaluations in 2 batches
    # --preload-trainings: every training forked from the process that imported its modules, nothing else
    assert {name for name, s in status.items() if s.get("forked_from_preloaded")} == {
        name for name in status if name.startswith("train ")}
    assert "eval seed1 arms" in status and (run / "logs" / "eval_seed1_arms.engines.json").is_file()
    assert (run / "logs" / "train_student-alice-seed1.log").is_file()
    manifest = json.loads((run / "eval-alice-seed1.manifest.json").read_text())
    # Evaluated in its seed's batch step: the manifest's rerun is still its own eval.py command.
    assert manifest["rerun"].startswith("python eval.py") and "student-alice-seed1" in manifest["rerun"]
    report = json.loads((run / "report.json").read_text())
    methods = report["groups"][0]["methods"]
    assert len(methods["alice"]["seeds"]) == 2 and len(methods["self_training"]["seeds"]) == 2
    assert report["groups"][0]["gate"]["overridden"] is True
    assert "Missing" not in (run / "report.md").read_text()  # the report knew the run's arms
    evidence = json.loads((run / "evidence.json").read_text())
    assert evidence["training_runs"]["student-alice-seed0"]["steps"] == 2
    assert evidence["gpu_time"] is None or "by_kind" in evidence["gpu_time"]
    assert [b["batch"] for b in evidence["evaluation_batches"]] == ["eval_seed0_arms", "eval_seed1_arms"]
    # Each seed's batch may start once its first arm is trained (self-training: its labels need no probing),
    # where a slot is left for the other's training, and evaluates Alice's model once that training has ended.
    listing = json.loads((run / "logs" / "eval_seed1_arms.json").read_text())
    assert listing["wait_for"] == [str(run / "student-alice-seed1")]
    assert listing["evaluations"][0]["output"] == str(run / "eval-self-training-seed1.jsonl")
    # The deliverables, and a later part on a machine that kept nothing: alice-seed1's evaluation is missing
    # there, so its model (weights not kept) is trained again and evaluated; nothing else runs again.
    assert json.loads((results / "report.json").read_text())["gate"]["overridden"] is True
    assert not list(results.rglob("*.safetensors")) and (results / "alice.jsonl.xz").is_file()
    for path in results.glob("eval-alice-seed1.*"):
        path.unlink()
    # seed 0's batch as an earlier version of the runner listed it (a bare list of settings)
    earlier = results / "logs" / "eval_seed0_arms.json"
    seed0_listing = json.dumps(json.loads(earlier.read_text())["evaluations"])
    earlier.write_text(seed0_listing)
    shutil.rmtree(run)
    with pytest.raises(AliceError, match="give --run-dir"):
        experiment.main([*argv, "--restore-from", str(results), "--run-dir", str(tmp_path / "elsewhere")])
    again = experiment.main([*argv, "--restore-from", str(results)])
    assert not again["failed"], again["failed"]
    ran = {name for name, s in json.loads((run / "steps.json").read_text())["steps"].items() if s.get("command")}
    assert ran == {"train student-alice-seed1", "eval seed1 arms"}
    listing = json.loads((run / "logs" / "eval_seed1_arms.json").read_text())
    assert [c["output"] for c in listing["evaluations"]] == [str(run / "eval-alice-seed1.jsonl")]
    assert listing["wait_for"] == []  # the one model it evaluates is trained before it starts
    # A batch done in the earlier part keeps the listing of what it ran (the evidence reads its outputs there).
    assert (run / "logs" / "eval_seed0_arms.json").read_text() == seed0_listing
    assert json.loads((run / "eval-alice-seed1.summary.json").read_text())["n"] > 0


def test_eval_batches_make_one_step_per_seed_of_the_arms_evaluations(tmp_path, capsys):
    """--gpus --eval-batches: each seed's student-arm evaluations (both test sets) become one step that needs
    that seed's arm trainings and runs python -m alice.stages.evaluate on their configs; weak, ceiling and
    zero-shot each evaluate both test sets in one step, which the gate needs; nothing is written in a dry run."""
    result = experiment.main(["--gpus", "0", "--backend", "hf", "--run-dir", str(tmp_path), "--seeds", "0", "1",
                              "--arms", "alice", "self_training", "--gate", "--no-cascade", "--eval-batches", "--data",
                              "gsm_symbolic:held_out=2", "--second-test", "eval=held_out", "--dry-run"])
    out = capsys.readouterr().out
    heads = dict(line.split("  [", 1) for line in out.splitlines() if "  [" in line and not line.startswith(" "))
    # Self-training's labels need no probing: its model comes first, and the batch starts once it is trained;
    # the table lists each seed's trainings in that order too (the arms were given Alice first).
    assert heads["eval seed1 arms"] == ("gpu 0.09; needs train student-self-training-seed1, train student-alice-seed1; "
                                        "starts after train student-self-training-seed1]")
    names = list(heads)
    for seed in (0, 1):
        assert names.index(f"train student-self-training-seed{seed}") < names.index(f"train student-alice-seed{seed}")
    assert not any(name.startswith(("eval alice", "eval self-training")) for name in heads)
    assert {"eval ceiling-seed1 (both test sets)", "eval weak-seed0 (both test sets)", "gate"} <= set(heads)
    assert not any(name in heads for name in ("eval ceiling-seed1", "eval ceiling-seed1 (held_out_templates)"))
    assert heads["eval ceiling-seed1 (both test sets)"] == "gpu 0.09; needs train student-ceiling-seed1]"
    assert "eval zero-shot (both test sets)" in heads["gate"] and "eval weak-seed1 (both test sets)" in heads["gate"]
    pair = os.path.join(result["run_dir"], "logs", slug_name("eval ceiling-seed1 (both test sets)") + ".json")
    assert f"-m alice.stages.evaluate {pair}\n" in out
    listing = os.path.join(result["run_dir"], "logs", "eval_seed1_arms.json")
    assert f"-m alice.stages.evaluate {listing}\n" in out and not os.path.exists(listing)


def test_an_evaluation_batch_file_runs_every_evaluation_in_one_process(tmp_path, small_model):
    """python -m alice.stages.evaluate FILE (the batch step): every listed eval.py config writes its output,
    summary and manifest (whose rerun is its eval.py command), the engine record beside the file; a model given
    as --teacher (the weak model's batch) is evaluated as eval.py would; a setting eval.py does not have is
    refused in one line."""
    from alice.config import parse, settings_dict
    from alice.stages.evaluate import EvalConfig

    def settings(name: str, data: str, role: str = "--student") -> dict:
        return settings_dict(parse(EvalConfig, ["--data", data, "--limit", "2", "--max-new-tokens", "8", "--backend",
                                                "hf", role, small_model, "--output", str(tmp_path / name)]))

    listing = tmp_path / "batch.json"
    listing.write_text(json.dumps([settings("a.jsonl", "gsm_symbolic"),
                                   settings("b.jsonl", "gsm_symbolic:seed=1", "--teacher")]))
    done = subprocess.run([sys.executable, "-m", "alice.stages.evaluate", str(listing)], cwd=REPO, text=True, check=False,
                          capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("a", "b"):
        manifest = json.loads((tmp_path / f"{name}.manifest.json").read_text())
        assert manifest["status"] == "complete" and manifest["rerun"].startswith("python eval.py")
        assert json.loads((tmp_path / f"{name}.summary.json").read_text())["n"] == 2
        assert manifest["models"]["model"]["path"] == small_model
    record = json.loads((tmp_path / "batch.engines.json").read_text())
    assert record["outputs"] == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    # What the GPU time went to (evidence.json): the batch step's command names the manifests it wrote.
    from alice.costs import step_outputs

    command = f"{sys.executable} -m alice.stages.evaluate {listing}"
    assert step_outputs(command, tmp_path) == [tmp_path / "a.manifest.json", tmp_path / "b.manifest.json"]
    listing.write_text(json.dumps([{**settings("c.jsonl", "gsm_symbolic"), "lr": 1e-5}]))
    refused = subprocess.run([sys.executable, "-m", "alice.stages.evaluate", str(listing)], cwd=REPO, text=True, check=False,
                             capture_output=True)
    assert refused.returncode == 2 and refused.stderr.strip().endswith("settings eval.py does not have: lr")


def test_probe_parts_split_the_pool_and_merge_into_the_probing_output(tmp_path, capsys):
    """--gpus --probe-parts N: the probing step as N uncertainty.py steps on disjoint parts of the pool, each
    its own output, then an in-process merge under the step's own name, so what needs it is unchanged; a
    question limit, which applies after the part, is refused in one line."""
    with pytest.raises(AliceError, match="--probe-parts splits the whole student pool"):
        experiment.main(["--gpus", "none", "--probe-parts", "3", "--no-cascade", "--dry-run"])
    with pytest.raises(AliceError, match="--probe-parts must be 1 or more"):
        experiment.main(["--gpus", "none", "--probe-parts", "0", "--no-cascade", "--dry-run"])
    result = experiment.main(["--gpus", "0", "--backend", "hf", "--probe-parts", "3", "--preset", "paper",
                              "--run-dir", str(tmp_path), "--no-cascade", "--dry-run"])
    out = capsys.readouterr().out
    heads = dict(line.split("  [", 1) for line in out.splitlines() if "  [" in line and not line.startswith(" "))
    steps = {s["step"]: s["settings"] for s in result["steps"]}
    for i in (1, 2, 3):
        assert steps[f"uncertainty {i}/3"]["pool_part"] == f"{i}/3" and steps[f"uncertainty {i}/3"]["limit"] is None
        assert steps[f"uncertainty {i}/3"]["output"].endswith(f"/uncertainty-p{i}.jsonl")
        assert heads[f"uncertainty {i}/3"] == "gpu 0.12; needs train teacher-cot]"
    assert heads["uncertainty"] == "cpu; needs uncertainty 1/3, uncertainty 2/3, uncertainty 3/3]"
    assert heads["student_generate"].endswith("needs uncertainty]")


def test_an_evaluation_batch_evaluates_a_model_once_its_training_is_complete(tmp_path, small_model):
    """A batch listing with ``wait_for``: the model folder named there is evaluated only once its training has
    written it (manifest complete, weights there); the time waited is in the engine record."""
    from alice.config import parse, settings_dict
    from alice.stages.evaluate import EvalConfig

    trained = tmp_path / "student-trained"
    config = parse(EvalConfig, ["--data", "gsm_symbolic", "--limit", "2", "--max-new-tokens", "8", "--backend", "hf",
                                "--student", str(trained), "--output", str(tmp_path / "eval.jsonl")])
    listing = tmp_path / "batch.json"
    listing.write_text(json.dumps({"evaluations": [settings_dict(config)], "wait_for": [str(trained)]}))
    batch = subprocess.Popen([sys.executable, "-m", "alice.stages.evaluate", str(listing)], cwd=REPO, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(4)
        shutil.copytree(small_model, trained)  # the training writes its model, then its manifest last
        time.sleep(2)
        assert batch.poll() is None and not (tmp_path / "eval.summary.json").exists()
        (trained / "manifest.json").write_text(json.dumps({"status": "complete"}))
        out, _ = batch.communicate(timeout=300)
    finally:
        batch.kill()
    assert batch.returncode == 0, out[-2000:]
    assert f"waiting for {trained} (its training)" in out
    assert json.loads((tmp_path / "eval.summary.json").read_text())["n"] == 2
    assert json.loads((tmp_path / "batch.engines.json").read_text())["waited_s"] >= 5


def test_each_probing_part_is_done_by_its_own_output(tmp_path):
    """--probe-parts: a part whose output is complete as configured is done (a rerun skips it, the run goes on
    to the merge), the part not yet written is not, whatever the whole's output says."""
    from alice.config import parse, settings_dict
    from alice.records import scrub
    from alice.stages.experiment import ExperimentConfig, packed_steps
    from alice.stages.uncertainty import UncertaintyConfig
    from alice.steps import Step

    probing = parse(UncertaintyConfig, ["--teacher", "smollm2", "--output", str(tmp_path / "uncertainty.jsonl")])
    args = parse(ExperimentConfig, ["--gpus", "0", "--probe-parts", "2", "--run-dir", str(tmp_path)])
    table = {s.name: s for s in packed_steps(args, tmp_path, [Step("uncertainty", "uncertainty", probing)])}
    first, second = table["uncertainty 1/2"], table["uncertainty 2/2"]
    assert not first.done() and not second.done() and not table["uncertainty"].done()
    (tmp_path / "uncertainty-p1.jsonl").write_text("")
    (tmp_path / "uncertainty-p1.manifest.json").write_text(
        json.dumps({"status": "complete", "args": scrub(settings_dict(first.config))}, default=str))
    assert first.done() and not second.done() and not table["uncertainty"].done()


def test_targets_run_only_what_they_need_and_packed_settings_need_gpus(tmp_path, capsys):
    """--gpus --targets: only the steps the named ones (or shell patterns) need, in table order; a pattern
    that matches nothing, and the packed-only settings without --gpus, are refused in one line."""
    experiment.main(["--gpus", "none", "--run-dir", str(tmp_path), "--targets", "eval w2s-cot", "--no-cascade",
                     "--dry-run"])
    heads = [line.split("  [", 1)[0] for line in capsys.readouterr().out.splitlines()
             if "  [" in line and not line.startswith(" ")]
    assert heads == ["cot_generate_filter", "train teacher-cot", "w2s-cot labels", "train student-w2s-cot",
                     "eval w2s-cot"]
    with pytest.raises(AliceError, match="--targets 'nothing' matches no step"):
        experiment.main(["--gpus", "none", "--targets", "train *", "nothing", "--no-cascade", "--dry-run"])
    with pytest.raises(AliceError, match="--probe-parts, --eval-batches, --targets: only with --gpus"):
        experiment.main(["--probe-parts", "2", "--eval-batches", "--targets", "gate", "--dry-run"])


def test_a_trained_model_without_its_weights_is_trained_again_only_for_an_unfinished_reader(tmp_path):
    """training_done: a training whose manifest is complete as configured is done while its weights exist, or,
    once they are gone (dropped once evaluated, or a run restored from its deliverables), while every step that
    reads it is done; otherwise it runs again, before its reader."""
    from dataclasses import replace

    from alice.config import parse, settings_dict
    from alice.records import scrub
    from alice.stages.evaluate import EvalConfig
    from alice.stages.experiment import finished_as_configured, training_done
    from alice.stages.train import TrainConfig
    from alice.steps import Step, needed_steps

    def finished(config, manifest: Path) -> None:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps({"status": "complete", "args": scrub(settings_dict(config))}, default=str))

    table = []
    for name in ("a", "b"):
        train = parse(TrainConfig, ["--train-file", str(tmp_path / "rows.jsonl"), "--output-dir", str(tmp_path / name)])
        evaluation = parse(EvalConfig, ["--student", str(tmp_path / name), "--output", str(tmp_path / f"eval-{name}.jsonl")])
        finished(train, tmp_path / name / "manifest.json")
        table += [Step(f"train {name}", "train", train), Step(f"eval {name}", "eval", evaluation, needs=(f"train {name}",))]
    finished(table[1].config, tmp_path / "eval-a.manifest.json")  # a: evaluated, then its weights dropped
    (tmp_path / "eval-a.summary.json").write_text("{}")
    (tmp_path / "b" / "model.safetensors").write_text("weights")  # b: trained, not evaluated yet
    table = [replace(s, done=lambda s=s: finished_as_configured(s)) if s.script == "eval" else s
             for s in training_done(table)]
    every = [s.name for s in table]
    assert [s.name for s in needed_steps(table, every)] == ["eval b"]
    (tmp_path / "eval-a.summary.json").unlink()  # a's evaluation is needed again: so is its model
    assert [s.name for s in needed_steps(table, every)] == ["train a", "eval a", "eval b"]


def test_drop_weights_after_a_models_last_evaluation_keeps_models_later_steps_read(tmp_path):
    """--drop-weights: a trained model read only by its evaluations (the twin after the first) loses its
    *.safetensors once the last succeeds (manifest and config stay); a model that a labelling step also
    reads keeps them."""
    from alice.config import parse
    from alice.stages.evaluate import EvalConfig
    from alice.stages.experiment import with_weight_drops
    from alice.stages.train import TrainConfig
    from alice.stages.w2s_labels import W2SLabelsConfig
    from alice.steps import Executor, Step

    student, teacher = tmp_path / "student-alice", tmp_path / "teacher-cot"
    for folder in (student, teacher):
        folder.mkdir()
        for name in ("model.safetensors", "config.json", "manifest.json"):
            (folder / name).write_text("{}")

    def train(name: str, folder) -> Step:
        return Step(f"train {name}", "train", parse(TrainConfig, ["--student", "smollm2", "--train-file", "x.jsonl",
                                                                  "--output-dir", str(folder)]))

    def evaluation(name: str, needs: tuple[str, ...]) -> Step:
        return Step(name, "eval", parse(EvalConfig, ["--student", str(student), "--output", str(tmp_path / name)]),
                    needs=needs)

    steps = with_weight_drops([
        train("teacher-cot", teacher), train("student-alice", student),
        Step("labels", "w2s_labels", parse(W2SLabelsConfig, ["--teacher", str(teacher), "--output", "l.jsonl"])),
        evaluation("eval alice", ("train student-alice",)), evaluation("eval alice (second)", ("eval alice",))])
    hooks = {s.name: s.after for s in steps if s.after is not None}
    assert list(hooks) == ["eval alice (second)"]
    Executor(steps).record(steps[-1], True, 1.0, "")  # the step succeeded: its hook runs
    assert not (student / "model.safetensors").exists() and (student / "manifest.json").is_file()
    assert (teacher / "model.safetensors").is_file()


def test_a_finished_step_is_known_by_its_manifest_and_settings(tmp_path, small_model):
    """--gpus: a stage step whose output's manifest is complete with the same result-defining settings starts
    no process on a rerun; another result setting runs it again, an operational one does not."""
    from dataclasses import replace

    from alice.config import parse
    from alice.stages.evaluate import EvalConfig, evaluate
    from alice.stages.experiment import finished_as_configured
    from alice.steps import Step

    config = parse(EvalConfig, ["--data", "gsm_symbolic", "--limit", "2", "--max-new-tokens", "8", "--backend", "hf",
                                "--student", small_model, "--output", str(tmp_path / "eval-a.jsonl")])
    step = Step("eval a", "eval", config)
    assert not finished_as_configured(step)
    evaluate(config)
    assert finished_as_configured(step)
    assert finished_as_configured(replace(step, config=replace(config, batch_size=3)))  # operational
    assert not finished_as_configured(replace(step, config=replace(config, max_new_tokens=16)))
    (tmp_path / "eval-a.summary.json").unlink()
    assert not finished_as_configured(step)
