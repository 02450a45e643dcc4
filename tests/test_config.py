"""One declaration per setting (alice/config.py): every stage config travels through its script's
flags and back, fingerprints follow the fields' metadata, flag fragments are checked by the stage's own
declaration, and a manifest's rerun command reproduces its step."""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess
import sys

import pytest
from conftest import REPO

from alice.config import fingerprint_settings, flag_text, overrides, parse, to_argv
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
    assert flag_text(TrainConfig, {"lora": True, "max_steps": 4, "gradient_checkpointing": False}) == (
        "--lora --max-steps 4 --no-gradient-checkpointing")
    with pytest.raises(AliceError, match="--k 3 is not a setting of that stage"):
        overrides(TrainConfig, "--lora --k 3", "--train-args")
    with pytest.raises(AliceError, match="invalid int value"):
        overrides(TrainConfig, "--max-steps four", "--train-args")
    with pytest.raises(AliceError, match="not one of"):
        UncertaintyConfig(clustering="fuzzy")


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
