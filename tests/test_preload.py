"""Training steps forked from a process that has already imported their modules (alice/preload.py): the
same model as a training started as its own process, its log and exit code where the executor expects
them, one process group that stopping ends, and a failing script's exit code."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from alice.preload import StagePreloader
from alice.steps import Executor, Step, end_groups, stage_config


@pytest.fixture(scope="module")
def sums(tmp_path_factory) -> Path:
    """A number task with short questions (its teacher half trains the teacher)."""
    path = tmp_path_factory.mktemp("data") / "sums.jsonl"
    rows = [{"id": f"s{i:03d}", "question": f"What is {i} plus {i + 3}?", "answer": str(2 * i + 3)}
            for i in range(24)]
    rows += [{"id": "t0", "question": "What is 1 plus 1?", "answer": "2", "split": "test"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def preloader() -> StagePreloader:
    return StagePreloader()


def training(small_model: str, sums: Path, out: Path) -> Step:
    config = stage_config("train", ["--data", str(sums), "--answer-type", "number", "--teacher", small_model,
                                    "--ground-truth", "--pool", "teacher", "--max-steps", "2", "--lr", "1e-4",
                                    "--total-batch-size", "2", "--per-device-batch-size", "2", "--warmup-steps", "0",
                                    "--logging-steps", "1", "--no-gradient-checkpointing", "--max-length", "128",
                                    "--output-dir", str(out)])
    return Step(f"train {out.name}", "train", config, done=lambda: (out / "manifest.json").is_file())


def test_a_forked_training_gives_the_same_model_as_its_own_process(small_model, sums, preloader, tmp_path):
    own, forked = tmp_path / "own", tmp_path / "forked"
    plain = Executor([training(small_model, sums, own)], log_dir=tmp_path / "logs").make([f"train {own.name}"])
    fast = Executor([training(small_model, sums, forked)], log_dir=tmp_path / "logs",
                    preloader=preloader).make([f"train {forked.name}"])
    assert plain[f"train {own.name}"]["status"] == fast[f"train {forked.name}"]["status"] == "done"
    assert "forked_from_preloaded" not in plain[f"train {own.name}"]
    assert fast[f"train {forked.name}"]["forked_from_preloaded"] is True
    for folder in (own, forked):
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["status"] == "complete" and manifest["counts"]["steps"] == 2
    weights = load_file(own / "model.safetensors"), load_file(forked / "model.safetensors")
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])
    # The script's own output went to the step's log, after the executor's command line.
    log = (tmp_path / "logs" / "train_forked.log").read_text()
    assert log.startswith("$ ") and "train.py" in log.splitlines()[0]
    assert f"{forked}: 2 steps" in log


def test_a_forked_stage_has_its_own_group_environment_and_exit_code(preloader, tmp_path):
    script = tmp_path / "stage.py"
    script.write_text("import os, sys, time\n"
                      "print(os.getpgid(0) == os.getpid(), os.environ.get('CUDA_VISIBLE_DEVICES'), os.getcwd(),"
                      " sys.argv[1:], flush=True)\n"
                      "sys.exit(int(sys.argv[1])) if sys.argv[1] != 'wait' else time.sleep(600)\n")
    log = tmp_path / "stage.log"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "3"}
    done = preloader.start([sys.executable, str(script), "7"], env, log, tmp_path)
    assert done.wait(120) == 7 and done.poll() == 7
    assert log.read_text().split() == ["True", "3", str(tmp_path), "['7']"]
    waiting = preloader.start([sys.executable, str(script), "wait"], env, None, tmp_path)
    deadline = time.time() + 60
    while waiting.poll() is None and os.getpgid(waiting.pid) != waiting.pid and time.time() < deadline:
        time.sleep(0.1)
    assert waiting.poll() is None
    end_groups([waiting], grace_s=30)  # the executor's stop: SIGTERM to its process group
    assert waiting.poll() is not None and waiting.poll() < 0


def test_a_qlora_training_starts_as_its_own_process(small_model, sums, preloader, tmp_path):
    """QLoRA needs bitsandbytes, which the preloading server leaves out (importing it initializes CUDA)."""
    out = tmp_path / "qlora"
    config = stage_config("train", ["--data", str(sums), "--answer-type", "number", "--teacher", small_model,
                                    "--ground-truth", "--pool", "teacher", "--qlora", "--max-steps", "1",
                                    "--output-dir", str(out)])
    step = Step("train qlora", "train", config, done=lambda: (out / "manifest.json").is_file())
    status = Executor([step], log_dir=tmp_path / "logs", preloader=preloader, poll_s=0.2).make(["train qlora"])
    assert "forked_from_preloaded" not in status["train qlora"]
    log = (tmp_path / "logs" / "train_qlora.log").read_text()
    assert "No module named 'bitsandbytes'" not in log and "bitsandbytes" not in str(status["train qlora"]["error"])


def test_a_forked_training_that_fails_is_tried_again_as_its_own_process(small_model, sums, preloader, tmp_path):
    """A training step that fails forked (here: its outputs are not yet what the step's check wants) is
    started again as its own process, in case forking was what failed; its status says so."""
    out, log = tmp_path / "again", tmp_path / "logs" / "train_again.log"
    step = training(small_model, sums, out)
    # complete only once tried twice (the executor writes the command line to the log at each try)
    step.done = lambda: (out / "manifest.json").is_file() and log.read_text().count("$ ") >= 2
    step.retries = 1
    executor = Executor([step], log_dir=tmp_path / "logs", preloader=preloader, poll_s=0.2)
    status = executor.make([step.name])
    assert status[step.name]["status"] == "done" and executor.retried == {step.name: 1}
    assert "forked_from_preloaded" not in status[step.name]
