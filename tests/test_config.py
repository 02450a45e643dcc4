"""One declaration per setting (alice/config.py): every stage config travels through its script's
flags and back, fingerprints follow the fields' metadata, another stage's settings are a mapping checked
by that stage's own declaration (from flags, dotted flags or a recipe), and a manifest's rerun command
reproduces its step."""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess
import sys

import pytest
from conftest import REPO

from alice.config import fingerprint_settings, overrides, parse, settings_dict, to_argv
from alice.errors import AliceError
from alice.records import manifest_path
from alice.stages.cascade import CascadeConfig, derive
from alice.stages.cot_generate_filter import CotConfig
from alice.stages.evaluate import EvalConfig
from alice.stages.experiment import ExperimentConfig
from alice.stages.student_generate import StudentGenerateConfig
from alice.stages.train import TrainConfig
from alice.stages.uncertainty import UncertaintyConfig
from alice.stages.w2s_labels import W2SLabelsConfig

CONFIGS = [CotConfig, EvalConfig, UncertaintyConfig, StudentGenerateConfig, W2SLabelsConfig, TrainConfig,
           CascadeConfig, ExperimentConfig]


def changed_value(f: dataclasses.Field, current):
    """A value other than the default that the field's flag can express."""
    if f.metadata.get("stage") is not None:  # another stage's settings: every stage config has a seed
        return {"seed": 7}
    choices = f.metadata.get("choices")
    if choices and isinstance(current, list):
        return [choices[-1]]
    if choices:
        return next(c for c in choices if c != current)
    if isinstance(current, bool):
        return not current
    if isinstance(current, int) or f.type in ("int | None", "int"):
        return (current or 0) + 7
    if isinstance(current, float) or "float" in str(f.type):
        return (current or 0.0) + 0.25
    if "list[int]" in str(f.type):
        return [3, 7]
    if "list" in str(f.type):
        return ["first model", "second"]
    return f"value of {f.name}"


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_setting_travels_through_the_flags_and_back(cls):
    defaults = cls(**{f.name: "x" for f in dataclasses.fields(cls) if f.metadata.get("required")})
    values = {f.name: changed_value(f, getattr(defaults, f.name)) for f in dataclasses.fields(cls) if f.name != "config"}
    if "pool_part" in values:
        values["pool_part"] = "1/2"
    config = cls(**values)
    argv = to_argv(config)
    assert parse(cls, argv) == config, argv
    if not any(f.metadata.get("required") for f in dataclasses.fields(cls)):
        assert to_argv(cls()) == [] and parse(cls, []) == cls()


def test_fingerprint_follows_the_metadata():
    base = UncertaintyConfig(teacher="t", output="a.jsonl")
    same = dataclasses.replace(base, output="b.jsonl", batch_size=4, concurrency=64, chunk_size=8, limit=5,
                               tensor_parallel_size=2, overwrite=True)
    assert fingerprint_settings(same) == fingerprint_settings(base)  # operational: how, not what
    for change in ({"k": 20}, {"seed": 1}, {"temperature": 0.5}, {"max_new_tokens": 64}, {"backend": "hf"}):
        assert fingerprint_settings(dataclasses.replace(base, **change)) != fingerprint_settings(base), change
    # Settings added later stay out at their default (older outputs still resume), and count otherwise.
    assert "scoring" not in fingerprint_settings(base) and "revision" not in fingerprint_settings(base)
    assert fingerprint_settings(dataclasses.replace(base, scoring="strict"))["scoring"] == "strict"


def test_flag_fragments_are_checked_by_the_stage_declaration():
    assert overrides(TrainConfig, "--lora --max-steps 4 --lr 5e-5", "--train-args") == {
        "lora": True, "max_steps": 4, "lr": 5e-5}
    assert overrides(TrainConfig, "--no-gradient-checkpointing", "--train-args") == {"gradient_checkpointing": False}
    with pytest.raises(AliceError, match="--k 3 is not a setting of train.py"):
        overrides(TrainConfig, "--lora --k 3", "--train-args", "train.py")
    with pytest.raises(AliceError, match="invalid int value"):
        overrides(TrainConfig, "--max-steps four", "--train-args")
    with pytest.raises(AliceError, match="not one of"):
        UncertaintyConfig(clustering="fuzzy")


def test_a_stages_settings_are_one_mapping_however_they_are_given(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train: {lr: 3e-5, epochs: 2, max-steps: 4, report_to: tensorboard}\n"
                      "uncertainty: {keep_singletons: true}\n")
    texts = parse(CascadeConfig, ["--train-args", "--lr 3e-5 --epochs 2", "--uncertainty-args=--keep-singletons"])
    dotted = parse(CascadeConfig, ["--train.lr", "3e-5", "--train.epochs=2", "--uncertainty.keep_singletons"])
    from_recipe = parse(CascadeConfig, ["--config", str(recipe)])
    assert texts.train_args == dotted.train_args == {"lr": 3e-5, "epochs": 2.0}
    assert texts.uncertainty_args == dotted.uncertainty_args == {"keep_singletons": True}
    # YAML reads 3e-5 as a string and 2 as an int; a list setting may be one value: each is typed here.
    assert from_recipe.train_args == {"lr": 3e-5, "epochs": 2.0, "max_steps": 4, "report_to": ["tensorboard"]}
    assert from_recipe.uncertainty_args == {"keep_singletons": True}
    # Key by key: the command line over the recipe, a later flag over an earlier one; the rest is kept.
    merged = parse(CascadeConfig, ["--config", str(recipe), "--train-args", "--lr 1e-4 --lora", "--train.epochs", "1"])
    assert merged.train_args == {"lr": 1e-4, "epochs": 1.0, "max_steps": 4, "report_to": ["tensorboard"], "lora": True}
    # Recorded as data; the rerun command writes them as the script's flags, read back the same.
    assert settings_dict(merged)["train_args"] == merged.train_args
    argv = to_argv(merged)
    assert argv[argv.index("--train-args") + 1] == "--lr 0.0001 --epochs 1.0 --max-steps 4 --report-to tensorboard --lora"
    assert parse(CascadeConfig, argv) == dataclasses.replace(merged, config=None)
    # The fingerprint reads them as that text, as it did when they were text (older runs still resume).
    assert fingerprint_settings(texts)["train_args"] == "--lr 3e-05 --epochs 2.0"
    assert CascadeConfig(train_args={"lr": "3e-5"}).train_args == {"lr": 3e-5}  # a config built in code is checked too


@pytest.mark.parametrize("argv, message", [
    (["--train.lrr", "3"], "--train-args: --lrr 3 is not a setting of train.py"),
    (["--train-args=--max-steps four"], "--train-args --max-steps four: argument --max-steps: invalid int value"),
    (["--uncertainty-args=--kv-cache-gb 3"], "--uncertainty-args --kv-cache-gb: a setting of the generation engine"),
    (["--generate.backend", "openai"], "--generate-args --backend: a setting of the generation engine"),
    (["--uncertainty.k", "3"], "--uncertainty-args --k: the run sets this for each uncertainty.py step itself"),
])
def test_a_bad_stage_setting_is_one_line_and_nothing_is_written(tmp_path, argv, message):
    done = subprocess.run([sys.executable, "cascade.py", "--ladder", "smollm2", "smollm2", *argv,
                           "--output-dir", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", [
    ("train: {lrr: 3e-5}", "--config RECIPE: train: 'lrr' is not a setting of train.py"),
    ("train: {max_steps: 2.5}", "--config RECIPE: train: max_steps: 2.5 is not a valid int"),
    ("train: {lora: yes please}", "--config RECIPE: train: lora: 'yes please' is not a valid bool"),
    ("train: {scheduler: 3}", None),  # a string setting takes a number as its text
    ("uncertainty: {clustering: fuzzy}", "--config RECIPE: uncertainty: clustering: 'fuzzy' is not one of"),
    ("generate: {batch_size: 4}", "--config RECIPE: generate --batch-size: a setting of the generation engine"),
    ("train: [--lr, 3e-5]", "--config RECIPE: train: ['--lr', '3e-5'] is neither train.py's flags nor a mapping"),
])
def test_a_recipes_stage_mapping_is_checked_by_that_stage(tmp_path, text, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text + "\n")
    if message is None:
        assert parse(ExperimentConfig, ["--config", str(recipe)]).train_args == {"scheduler": "3"}
        return
    with pytest.raises(AliceError) as err:
        parse(ExperimentConfig, ["--config", str(recipe)])
    assert message.replace("RECIPE", str(recipe)) in str(err.value) and "\n" not in str(err.value)


def test_a_step_takes_the_runs_groups_but_not_a_settings_namesake():
    run = ExperimentConfig(data="gsm8k", model="qwen2.5", split_seed=3, seed=11, backend="openai", concurrency=64,
                           scoring="strict", limit=40)
    train = derive(TrainConfig, run, student="3B", output_dir="o")
    assert (train.data, train.model, train.split_seed, train.scoring) == ("gsm8k", "qwen2.5", 3, "strict")
    assert train.seed == 0  # the run's sampling seed is not the training seed
    assert train.limit is None  # each step gets its own question budget
    evaluation = derive(EvalConfig, run, student="3B")
    assert (evaluation.concurrency, evaluation.backend, evaluation.seed) == (64, "openai", 11)
    assert not hasattr(evaluation, "split_seed")  # the test split is never shuffled


def test_experiment_refuses_a_stage_flag_that_does_not_exist_before_running_anything(tmp_path):
    done = subprocess.run([sys.executable, "experiment.py", "--dry-run", "--run-dir", str(tmp_path / "run"),
                           "--train-args", "--lora --temprature 0.5"], cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=300)
    assert done.returncode != 0
    lines = [line for line in done.stderr.strip().splitlines() if line]
    assert lines and "--train-args" in lines[-1] and "--temprature" in lines[-1]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_the_manifest_records_the_command_that_reruns_the_step(tmp_path):
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i),
                                        "rationale": f"{i} + {i} = {2 * i}\n#### {2 * i}", "split": "train"}) + "\n"
                            for i in range(8)))
    output = tmp_path / "cot.jsonl"
    # With shipped rationales stage 1 keeps them and loads no model: the manifest alone is under test.
    subprocess.run([sys.executable, "cot_generate_filter.py", "--data", str(data), "--answer-type", "number",
                    "--limit", "4", "--max-new-tokens", "64", "--output", str(output)], cwd=REPO, check=True,
                   capture_output=True, timeout=300)
    manifest = json.loads(manifest_path(output).read_text())
    rerun = shlex.split(manifest["rerun"])
    assert rerun[:2] == ["python", "cot_generate_filter.py"]
    assert parse(CotConfig, rerun[2:]) == CotConfig(data=str(data), answer_type="number", limit=4, max_new_tokens=64,
                                                   output=str(output))
    done = subprocess.run([sys.executable, *rerun[1:]], cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    again = json.loads(manifest_path(output).read_text())
    assert again["fingerprint"] == manifest["fingerprint"] and again["status"] == "complete"
