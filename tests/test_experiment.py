"""experiment.py: the whole chain on the small real model (transformers backend, a few arithmetic
questions, one LoRA step per training; cascade Alice in its own process beside the rest), its
report, what it logs to TensorBoard, and a rerun that has nothing left to do."""

from __future__ import annotations

import json
import os

import pytest
from test_cascade import sums_dataset

import experiment
from alice.errors import AliceError
from alice.stages.experiment import DEMO, apply_preset, run_folder

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
    assert demo.uncertainty_args == {"keep_singletons": True}
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


def test_dry_run_shows_merged_settings_and_refuses_engine_settings_for_evaluation(capsys):
    experiment.main(["--train-args=--lr 3e-5", "--dry-run"])
    text = capsys.readouterr().out
    train_line = next(line for line in text.splitlines() if line.strip().startswith("python train.py"))
    assert "--lr 3e-05" in train_line and "--max-steps 2" in train_line
    with pytest.raises(AliceError, match="--eval-args --batch-invariant: a setting of the generation engine"):
        experiment.main(["--eval-args=--batch-invariant", "--dry-run"])


def test_dotted_flags_and_recipe_mappings_reach_each_steps_config(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train: {lr: 3.0e-5, epochs: 2}\neval: {max_new_tokens: 64}\nuncertainty: {embedder: e5}\n")
    result = experiment.main(["--config", str(recipe), "--train.epochs", "1", "--generate.statement", "structured",
                              "--dry-run"])
    capsys.readouterr()
    steps = result["steps"]
    trainings = [s["settings"] for s in steps if s["script"] == "train.py"]
    # Key by key over the demo preset: its two steps and batch of 2 stay, the recipe's lr, the flag's epochs.
    assert len(trainings) == 6 + 2 and all(
        (t["lr"], t["epochs"], t["max_steps"], t["total_batch_size"]) == (3e-5, 1.0, 2, 2) for t in trainings)
    assert all(s["settings"]["max_new_tokens"] == 64 for s in steps if s["script"] == "eval.py")
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
    (["--eval.batch_invariant"], "--eval-args --batch-invariant: a setting of the generation engine"),
    (["--eval-args=--kv-cache-gb 20 --enforce-eager"],
     "--eval-args --kv-cache-gb, --enforce-eager: a setting of the generation engine"),
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
