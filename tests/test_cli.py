"""The scripts' command lines, run as a user runs them: --help, flags a script does not use,
experiment.py --dry-run (what each step would get), the run folder's name, and --overwrite."""

from __future__ import annotations

import argparse
import importlib
import json
import re

import pytest
from conftest import run_script

SCRIPTS = ["cot_generate_filter", "eval", "train", "uncertainty", "student_generate", "w2s_labels", "cascade",
           "experiment", "report"]
GENERATING = {"cot_generate_filter.py", "eval.py", "w2s_labels.py", "uncertainty.py", "student_generate.py",
              "cascade.py"}


def option_help(text: str) -> dict[str, str]:
    """--help text -> {first flag: its whole entry (flags, metavar and help, unwrapped)}."""
    entries = {}
    for chunk in re.split(r"\n(?=  -)", text):
        if chunk.startswith("  -"):
            chunk = chunk.split("\n\n")[0]
            entry = " ".join(line for line in chunk.splitlines() if line.startswith("  "))
            entries[entry.split()[0].rstrip(",")] = " ".join(entry.split())
    return entries


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_each_default_once(script):
    done = run_script(f"{script}.py", "--help" if script == "report" else "--help-all",
                      env={"COLUMNS": "200"})
    entries = option_help(done.stdout)
    parser = importlib.import_module(script).build_parser()
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        entry = entries[action.option_strings[0]]
        assert entry.lower().count("default") <= 1, entry  # never twice
        assert "(default: None)" not in entry, entry
        if isinstance(action, argparse._StoreFalseAction):  # --no-X: off unless given; "(default: True)" misleads
            assert "default" not in entry.lower(), entry
        elif action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in entry.lower(), f"{script}.py {action.option_strings[0]} shows no default: {entry}"


@pytest.mark.parametrize("script", sorted(GENERATING))
def test_help_names_the_shared_settings_once_and_every_data_set(script):
    short = run_script(script, "--help", env={"COLUMNS": "100"}).stdout
    full = run_script(script, "--help-all", env={"COLUMNS": "100"}).stdout
    assert "generation (shared by every generating script; --help-all describes each)" in short
    assert "--kv-cache-gb" in short and "fixed KV cache" not in short and "fixed KV cache" in " ".join(full.split())
    assert len(short.splitlines()) < len(full.splitlines())
    data = " ".join(short.split())
    assert all(name in data for name in ("arc_challenge", "gsm8k", "hotpotqa", "triviaqa", "gsm_symbolic"))


@pytest.mark.parametrize("script, flags", [
    ("experiment.py", ["--pool-part", "1/2", "--dry-run"]),  # the stages never got it
    ("cascade.py", ["--pool-part", "1/2", "--ladder", "a", "b"]),  # the cascade splits the pool itself
    ("eval.py", ["--pool-part", "1/2"]),  # the test split has no pool
    ("eval.py", ["--split-seed", "3"]),  # ... and is never shuffled
    ("cot_generate_filter.py", ["--pool-part", "1/2"]),  # the teacher's half
])
def test_a_flag_the_script_does_not_use_is_refused(script, flags):
    done = run_script(script, *flags, check=False)
    assert done.returncode == 2 and f"unrecognized arguments: {flags[0]}" in done.stderr, done.stderr[-500:]


def planned_steps(stdout: str) -> list[tuple[str, dict]]:
    """experiment.py --dry-run output -> [(script, settings)] for every step, cascade stages included."""
    steps, script = [], None
    for line in stdout.splitlines():
        if line.startswith("   python "):
            script = line.split()[1]
        elif line.startswith("   settings: "):
            steps.append((script, json.loads(line.removeprefix("   settings: "))))
    return steps


def test_dry_run_passes_concurrency_to_every_generating_step(tmp_path):
    run = tmp_path / "run"
    done = run_script("experiment.py", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                      "--concurrency", "64", "--batch-invariant", "--run-dir", str(run), "--dry-run")
    steps = planned_steps(done.stdout)
    scripts = [script for script, _ in steps]
    # The whole run: stage 1, four trained teachers/ceiling/students, labels, Alice, evaluations, and both
    # cascade stages (uncertainty, student_generate, train each).
    assert scripts.count("eval.py") == 7 and scripts.count("train.py") == 8 and scripts.count("uncertainty.py") == 3
    generating = [(script, settings) for script, settings in steps if script in GENERATING]
    assert len(generating) == 1 + 7 + 2 + 3 + 3 + 1
    for script, settings in generating:
        assert settings["concurrency"] == 64 and settings["backend"] == "openai", script
        assert settings["batch_invariant"] is True and settings["base_url"] == "http://127.0.0.1:9/v1", script
    assert not run.exists()  # a dry run writes nothing


def test_the_vllm_model_runner_reaches_every_generating_step_and_only_a_chosen_one_is_fingerprinted(tmp_path):
    from alice.cli import GenerationSettings
    from alice.config import fingerprint_settings

    done = run_script("experiment.py", "--vllm-runner", "v2", "--run-dir", str(tmp_path / "run"), "--dry-run")
    generating = [(script, settings) for script, settings in planned_steps(done.stdout) if script in GENERATING]
    assert generating and all(settings["vllm_runner"] == "v2" for _, settings in generating), generating
    # Outputs made before the setting existed keep their fingerprint (and resume); a chosen runner draws other
    # samples, so it is part of the fingerprint.
    assert "vllm_runner" not in fingerprint_settings(GenerationSettings())
    assert fingerprint_settings(GenerationSettings(vllm_runner="v1"))["vllm_runner"] == "v1"


def test_a_served_summarizer_is_not_given_the_probings_vllm_engine_settings(small_model):
    """--vllm-runner and --batch-invariant are the probing engine's: a summarizer behind --summarizer-base-url
    runs with its server's engine, so its backend is built (an OpenAI client) instead of being refused."""
    from alice.cli import backend_from_args, resolve_role
    from alice.stages.uncertainty import UncertaintyConfig, summarizer_setup

    config = UncertaintyConfig(teacher=small_model, vllm_runner="v2", batch_invariant=True, summarizer="served-model",
                               summarizer_base_url="http://127.0.0.1:9/v1")
    ref, summ_args, shared = summarizer_setup(config, resolve_role(config, "teacher"))
    assert ref is None and not shared and summ_args.vllm_runner == "auto" and not summ_args.batch_invariant
    assert backend_from_args(summ_args, ref).describe()["backend"] == "openai"


def test_run_folder_is_named_from_the_models_used():
    from alice.stages.experiment import apply_preset, run_folder

    parser = importlib.import_module("experiment").build_parser()
    args = apply_preset(parser.parse_args(["--teacher", "Qwen/Qwen2.5-1.5B-Instruct",
                                           "--student", "Qwen/Qwen2.5-3B-Instruct"]))
    assert str(run_folder(args)) == "runs/arc_challenge-Qwen2.5-1.5B-Instruct-Qwen2.5-3B-Instruct"
    assert args.model is None
    # No model named at all: the embedded small model, as before.
    assert str(run_folder(apply_preset(parser.parse_args([])))) == "runs/arc_challenge-smollm2-smollm2-demo"


def test_experiment_overwrite_is_passed_to_every_step_and_removes_no_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    done = run_script("experiment.py", "--run-dir", str(run), "--overwrite", "--dry-run")
    steps = planned_steps(done.stdout)
    assert steps and all(settings["overwrite"] for _, settings in steps)
    assert (run / "notes.txt").read_text() == "mine"


def test_a_recipe_sets_the_flags_and_flags_override_it(tmp_path):
    from conftest import REPO

    recipe = "configs/recipes/arc_challenge/qwen2.5-1.5B-7B.yaml"
    done = run_script("experiment.py", "--config", recipe, "--k", "7", "--backend", "hf",
                      "--run-dir", str(tmp_path / "run"), "--dry-run")
    steps = planned_steps(done.stdout)
    probe = next(settings for script, settings in steps if script == "uncertainty.py")
    assert probe["k"] == 7  # the flag wins over the recipe's 100
    assert probe["model"] == "qwen2.5" and probe["max_new_tokens"] == 512 and probe["summarizer_max_new_tokens"] == 256
    cascade = next(settings for script, settings in steps if script == "cascade.py")
    assert cascade["ladder"][1:] == ["3B", "7B"]  # the recipe's mid model and student
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: arc_challenge\npool_part: 1/2\n")
    refused = run_script("experiment.py", "--config", str(bad), "--dry-run", check=False)
    assert refused.returncode == 2 and "'pool_part' is not a setting" in refused.stderr
    # Every shipped recipe is a valid experiment.py setting, and the train.py recipe keys parse too.
    parser = importlib.import_module("experiment").build_parser()
    recipes = sorted((REPO / "configs" / "recipes").rglob("*.yaml"))
    assert len(recipes) == 25
    for path in recipes:
        assert parser.parse_args(["--config", str(path)]).preset == "paper"
    small = parser.parse_args(["--config", str(REPO / "configs/recipes/arc_challenge/small-models.yaml")])
    assert small.seeds == [0, 1, 2] and small.gate and "self_training" in small.arms
    assert small.train_args == {"per_device_batch_size": 8, "padding_free": True}
    train_recipe = tmp_path / "train.yaml"
    train_recipe.write_text("lr: 1e-5\nepochs: 2\nlora: true\n")
    train = importlib.import_module("train").build_parser().parse_args(["--config", str(train_recipe), "--epochs", "1"])
    assert train.lr == 1e-5 and train.epochs == 1 and train.lora is True
